#include "app/history_timer.h"

namespace atw {

HistoryTimer::HistoryTimer(SecretSource database_url, HistorySettings settings,
                           std::chrono::seconds interval, WorkerMetrics& metrics, Logger& log)
    : maintenance_(std::move(database_url), settings),
      settings_(settings),
      interval_(interval),
      metrics_(metrics),
      log_(log),
      thread_([this] { loop(); }) {}

HistoryTimer::~HistoryTimer() {
  stop();
}

void HistoryTimer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  maintenance_.stop();
  if (thread_.joinable()) thread_.join();
}

void HistoryTimer::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto actions = maintenance_.run();
    if (actions.ok()) {
      metrics_.add_history_maintenance(true);
      for (const HistoryAction& a : *actions) {
        log_.info("history maintenance", {{"action", a.action},
                                          {"relation", a.relation},
                                          {"rows", a.rows},
                                          {"detail", describe(a)}});
      }
      log_.debug("history maintained", {{"summary", summarize(*actions, settings_)}});
    } else {
      lock.lock();
      const bool stopping = stopping_;
      lock.unlock();
      if (!stopping) {
        metrics_.add_history_maintenance(false);
        log_.warn("history maintenance failed; retrying at the next interval",
                  {{"error", actions.status().message()},
                   {"retryInSeconds", static_cast<int64_t>(interval_.count())}});
      }
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace atw
