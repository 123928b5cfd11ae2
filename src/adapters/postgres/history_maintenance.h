#pragma once
// Maintenance of the time-partitioned telemetry_history: one call of the SQL function
// telemetry_history_maintain (migrations/004_partitioned_history.sql), which makes the daily
// partitions ahead of time, moves the DEFAULT partition's rows of a new day into it, and past a
// retention drops partitions and forgets old rows. The SQL does the work, in one transaction,
// under an advisory lock: replicas that run it together do it once.
//
// Owns a connection of its own with no statement timeout (moving or deleting many rows may take
// long; each lock it waits for is bounded in the SQL). run() is called from one thread at a
// time; stop() may be called from any thread.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"

namespace atw {

struct HistorySettings {
  int ahead_days = 7;      // daily partitions exist from today to today + ahead_days
  int retention_days = 0;  // 0: keep forever
};

// One thing a maintenance did, as the SQL function reports it.
struct HistoryAction {
  std::string action;    // "created", "dropped", "deleted" or "skipped"
  std::string relation;  // the partition or table; empty for "skipped"
  int64_t rows = 0;      // created: moved from the DEFAULT partition; deleted: rows deleted
};

// One line for a person: "created telemetry_history_p20261127", "dropped ...", ...
std::string describe(const HistoryAction& action);
// The closing line: what was created, dropped and deleted, or why nothing was done.
std::string summarize(const std::vector<HistoryAction>& actions, const HistorySettings& settings);

class HistoryMaintenance {
 public:
  HistoryMaintenance(SecretSource database_url, HistorySettings settings);
  HistoryMaintenance(const HistoryMaintenance&) = delete;
  HistoryMaintenance& operator=(const HistoryMaintenance&) = delete;

  // One maintenance. Blocks until done, or until stop(); a "skipped" action alone means another
  // session was maintaining.
  Result<std::vector<HistoryAction>> run();
  // Thread-safe: a run in progress returns within a tenth of a second whatever the server or
  // the network do (a connection attempt takes up to 5 s), and every later run fails at once. The
  // connection is dropped; the server finishes or rolls back the maintenance by itself (one
  // transaction: all of it or nothing).
  void stop() { stopping_.store(true); }

 private:
  PgConnection db_;
  HistorySettings settings_;
  std::atomic<bool> stopping_{false};
};

}  // namespace atw
