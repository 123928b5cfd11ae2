#include "pipeline/worker.h"

#include <algorithm>
#include <chrono>
#include <iterator>

namespace atw {

uint64_t Worker::run(const std::atomic<bool>& stop, const Sleeper& sleep,
                     const std::function<void()>& on_cycle) {
  uint64_t handled = 0;
  milliseconds backoff{100};
  // The batch whose events the stream is storing while the next one is fetched and written.
  std::unique_ptr<BatchProcessor::InFlight> pending;
  auto finish_pending = [&] {
    if (pending) processor_.finish(std::move(pending));
  };
  auto start = [&](std::vector<Delivery> batch) {
    const Timestamp fetched_at = clock_.now();
    if (log_.enabled(LogLevel::kDebug)) {
      log_.debug("batch fetched",
                 {{"messages", static_cast<uint64_t>(batch.size())},
                  {"firstSequence", batch.front().stream_sequence},
                  {"waitedMs", (fetched_at.micros - batch.front().published_at.micros) / 1000}});
    }
    handled += batch.size();
    return processor_.start(std::move(batch), fetched_at);
  };

  while (!stop.load()) {
    if (on_cycle) on_cycle();
    // The next batch is fetched and started before the pending one is finished: the pending
    // batch's write runs on its database connection while this fetch waits (at most
    // fetch_wait) and while the next batch is prepared, and the next batch's write runs while
    // the pending batch's events are published.
    auto batch = source_.fetch(settings_.batch_size, settings_.fetch_wait);
    if (!batch.ok()) {
      finish_pending();
      if (fetch_ok_.exchange(false)) {
        log_.warn("fetch failed",
                  {{"errorType", batch.status().type()}, {"error", batch.status().message()}});
      }
      sleep(backoff);
      backoff = std::min(backoff * 2, milliseconds{2000});
      continue;
    }
    if (!fetch_ok_.exchange(true)) log_.info("fetching again");
    backoff = milliseconds{100};
    if (batch->empty()) {
      finish_pending();
      continue;
    }
    auto next = start(std::move(batch).value());
    finish_pending();
    pending = std::move(next);
  }
  finish_pending();

  // Drain (SPEC D17): what the server already sent us is ours to finish, so it is processed
  // and acked rather than left to time out and be redelivered elsewhere.
  source_.close_intake();
  const auto deadline = std::chrono::steady_clock::now() + settings_.drain_limit;
  while (!source_.drained() && std::chrono::steady_clock::now() < deadline) {
    auto batch = source_.fetch(settings_.batch_size, settings_.fetch_wait);
    if (!batch.ok()) break;
    if (!batch->empty()) processor_.finish(start(std::move(batch).value()));
  }
  (void)source_.flush();
  return handled;
}

}  // namespace atw
