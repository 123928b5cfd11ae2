#include "pipeline/worker.h"

#include <algorithm>
#include <chrono>
#include <iterator>

#include "pipeline/batch_window.h"

namespace atw {

void Worker::process_isolated(std::vector<Delivery> batch, Timestamp fetched_at) {
  size_t begin = 0;
  KeepaliveSchedule keepalive(settings_.keepalive, fetched_at);
  while (begin < batch.size()) {
    if (keepalive.due(clock_.now())) {
      for (size_t i = begin; i < batch.size(); ++i) (void)source_.in_progress(batch[i]);
      source_.keep_buffered_alive();
      (void)source_.flush();
    }
    size_t end = begin + 1;
    if (batch[begin].delivery_count == 1) {
      while (end < batch.size() && batch[end].delivery_count == 1) ++end;
    }
    std::vector<Delivery> run(
        std::make_move_iterator(batch.begin() + static_cast<ptrdiff_t>(begin)),
        std::make_move_iterator(batch.begin() + static_cast<ptrdiff_t>(end)));
    if (log_.enabled(LogLevel::kDebug)) {
      log_.debug("isolated run", {{"messages", static_cast<uint64_t>(run.size())},
                                  {"firstSequence", run.front().stream_sequence},
                                  {"deliveryCount", run.front().delivery_count}});
    }
    processor_.process(run, fetched_at);
    begin = end;
  }
}

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

  // Slow start, shrunk by redeliveries, widest by the backlog (see the header).
  BatchWindow window(
      {settings_.batch_size, settings_.live_batch_size, settings_.catch_up_batch_size});
  KeepaliveSchedule buffer_keepalive(settings_.keepalive, clock_.now());
  while (!stop.load()) {
    if (on_cycle) on_cycle();
    // What the server sent for earlier, wider requests waits in the source's buffer while the
    // window is small (one message at a time after a redelivery): it must not expire there.
    if (buffer_keepalive.due(clock_.now())) {
      source_.keep_buffered_alive();
      (void)source_.flush();
    }
    // The next batch is fetched and started before the pending one is finished: the pending
    // batch's write runs on its database connection while this fetch waits and while the next
    // batch is prepared, and the next batch's write runs while the pending batch's events are
    // published. The fetch waits at most fetch_wait, and no longer than the pending write:
    // finishing that batch (its events, its acks) is worth more than a fuller next batch, and
    // the messages that arrive meanwhile make the batch after it.
    std::function<bool()> pending_written;
    if (pending) pending_written = [&pending] { return pending->written(); };
    auto batch =
        source_.fetch(window.want(), settings_.fetch_wait, window.ahead(), pending_written);
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
    if (std::any_of(batch->begin(), batch->end(),
                    [](const Delivery& d) { return d.delivery_count > 1; })) {
      window.redelivered();
      finish_pending();
      handled += batch->size();
      process_isolated(std::move(batch).value(), clock_.now());
      continue;
    }
    if (batch->empty()) {
      window.idle();
      finish_pending();
      continue;
    }
    window.grew(batch->back().stream_pending);
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
    auto batch = source_.fetch(settings_.batch_size, settings_.fetch_wait, 0, {});
    if (!batch.ok()) break;
    if (!batch->empty()) processor_.finish(start(std::move(batch).value()));
  }
  (void)source_.flush();
  return handled;
}

}  // namespace atw
