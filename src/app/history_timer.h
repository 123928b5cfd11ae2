#pragma once
// The worker's history maintenance on a timer: once at start, then every `interval`,
// on a thread and a PostgreSQL connection of its own, never the pipeline's. A failure is logged,
// counted (asset_worker_history_maintenance_runs_total{result="failed"}) and tried again at the
// next interval; it never stops the worker. Replicas all run it; the SQL's advisory lock makes
// one of them do the work each time (the others' runs count as ok: nothing was left to do).

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "adapters/postgres/history_maintenance.h"
#include "common/log.h"
#include "pipeline/worker_metrics.h"

namespace atw {

class HistoryTimer {
 public:
  HistoryTimer(SecretSource database_url, HistorySettings settings, std::chrono::seconds interval,
               WorkerMetrics& metrics, Logger& log);
  ~HistoryTimer();  // stop()
  HistoryTimer(const HistoryTimer&) = delete;
  HistoryTimer& operator=(const HistoryTimer&) = delete;

  // Wakes the thread, ends a maintenance in progress (HistoryMaintenance::stop) and joins.
  // Idempotent.
  void stop();

 private:
  void loop();

  HistoryMaintenance maintenance_;
  HistorySettings settings_;
  std::chrono::seconds interval_;
  WorkerMetrics& metrics_;
  Logger& log_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace atw
