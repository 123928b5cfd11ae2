#include "adapters/postgres/history_maintenance.h"

#include <fmt/format.h>
#include <poll.h>

#include <cstdlib>

namespace atw {

std::string describe(const HistoryAction& a) {
  if (a.action == "created") {
    if (a.rows == 0) return fmt::format("created {}", a.relation);
    return fmt::format("created {} (moved {} rows into it from the default partition)", a.relation,
                       a.rows);
  }
  if (a.action == "dropped") return fmt::format("dropped {}", a.relation);
  if (a.action == "deleted") {
    return fmt::format("deleted {} rows from {} (older than the retention)", a.rows, a.relation);
  }
  if (a.action == "skipped") return "skipped: another session is maintaining the history now";
  return fmt::format("{} {} {}", a.action, a.relation, a.rows);
}

std::string summarize(const std::vector<HistoryAction>& actions, const HistorySettings& s) {
  int created = 0, dropped = 0;
  int64_t moved = 0, deleted = 0;
  for (const HistoryAction& a : actions) {
    if (a.action == "skipped") {
      return "history not maintained: another session (a worker replica?) is doing it now";
    }
    if (a.action == "created") {
      ++created;
      moved += a.rows;
    } else if (a.action == "dropped") {
      ++dropped;
    } else if (a.action == "deleted") {
      deleted += a.rows;
    }
  }
  const std::string retention =
      s.retention_days > 0 ? fmt::format("retention {} days", s.retention_days) : "no retention";
  return fmt::format(
      "history maintained: {} partitions created ({} rows moved), {} dropped, {} rows deleted "
      "(partitions {} days ahead, {})",
      created, moved, dropped, deleted, s.ahead_days, retention);
}

HistoryMaintenance::HistoryMaintenance(std::string database_url, HistorySettings settings)
    : db_(std::move(database_url), /*statement_timeout_ms=*/0), settings_(settings) {}

bool HistoryMaintenance::wait_readable(Status& failure) {
  PGconn* conn = db_.raw();
  while (PQisBusy(conn)) {
    if (stopping_.load()) {
      failure = Status::unavailable("history_maintenance", "stopped");
      return false;
    }
    pollfd p{PQsocket(conn), POLLIN, 0};
    (void)poll(&p, 1, 100);
    if (!PQconsumeInput(conn)) {
      failure = pg_error_status(nullptr, conn, "history_maintenance");
      return false;
    }
  }
  return true;
}

Result<std::vector<HistoryAction>> HistoryMaintenance::run() {
  const Status stopped = Status::unavailable("history_maintenance", "stopped");
  if (stopping_.load()) return stopped;
  if (Status st = db_.ensure(); !st.ok()) return st;
  // libpq's asynchronous calls, so that stop() is heard while the server works (or never
  // answers); the connection is dropped whenever a run ends without its result.
  PGconn* conn = db_.raw();
  const std::string ahead = std::to_string(settings_.ahead_days);
  const std::string retention = std::to_string(settings_.retention_days);
  const char* values[] = {ahead.c_str(), retention.c_str()};
  if (!PQsendQueryParams(conn,
                         "SELECT action, coalesce(relation, ''), coalesce(row_count, 0)"
                         " FROM telemetry_history_maintain($1::int, $2::int)",
                         2, nullptr, values, nullptr, nullptr, 0)) {
    Status st = pg_error_status(nullptr, conn, "history_maintenance");
    db_.reset();
    return st;
  }
  Status failure;
  if (!wait_readable(failure)) {
    db_.reset();
    return failure;
  }
  PgResult result(PQgetResult(conn));
  // The end of the command, so that the connection is ready for the next run.
  while (true) {
    if (!wait_readable(failure)) {
      db_.reset();
      return failure;
    }
    PgResult extra(PQgetResult(conn));
    if (!extra) break;
  }
  if (!result || PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
    Status st = pg_error_status(result.get(), conn, "history_maintenance");
    if (st.unavailable()) db_.reset();
    return st;
  }
  std::vector<HistoryAction> actions;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    actions.push_back({PQgetvalue(result.get(), row, 0), PQgetvalue(result.get(), row, 1),
                       std::strtoll(PQgetvalue(result.get(), row, 2), nullptr, 10)});
  }
  return actions;
}

}  // namespace atw
