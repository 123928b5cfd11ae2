#include "pipeline/worker.h"

#include <algorithm>
#include <chrono>
#include <iterator>

namespace atw {

void Worker::process_isolated(std::vector<Delivery> batch, Timestamp fetched_at) {
  size_t begin = 0;
  Timestamp kept_alive = fetched_at;
  while (begin < batch.size()) {
    const Timestamp now = clock_.now();
    if (now.micros - kept_alive.micros >= settings_.keepalive.count() * 1000) {
      for (size_t i = begin; i < batch.size(); ++i) (void)source_.in_progress(batch[i]);
      source_.keep_buffered_alive();
      (void)source_.flush();
      kept_alive = now;
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

  size_t window = 1;  // see the header: slow start, shrunk by redeliveries
  // The largest batch for the backlog behind the last batch fetched (see the header).
  const size_t live = std::min(settings_.batch_size, settings_.live_batch_size);
  const size_t catch_up = std::clamp(settings_.catch_up_batch_size, live, settings_.batch_size);
  const auto widest_for = [&](uint64_t behind) {
    if (behind >= WorkerSettings::kDeepBacklog * settings_.batch_size) return settings_.batch_size;
    return behind >= catch_up ? catch_up : live;
  };
  size_t widest = live;
  Timestamp buffer_kept_alive = clock_.now();
  while (!stop.load()) {
    if (on_cycle) on_cycle();
    // What the server sent for earlier, wider requests waits in the source's buffer while the
    // window is small (one message at a time after a redelivery): it must not expire there.
    if (const Timestamp now = clock_.now();
        now.micros - buffer_kept_alive.micros >= settings_.keepalive.count() * 1000) {
      source_.keep_buffered_alive();
      (void)source_.flush();
      buffer_kept_alive = now;
    }
    // The next batch is fetched and started before the pending one is finished: the pending
    // batch's write runs on its database connection while this fetch waits and while the next
    // batch is prepared, and the next batch's write runs while the pending batch's events are
    // published. The fetch waits at most fetch_wait, and no longer than the pending write:
    // finishing that batch (its events, its acks) is worth more than a fuller next batch, and
    // the messages that arrive meanwhile make the batch after it.
    const size_t want = std::min(window, widest);
    std::function<bool()> pending_written;
    if (pending) pending_written = [&pending] { return pending->written(); };
    auto batch =
        source_.fetch(want, settings_.fetch_wait, window >= widest ? want : 0, pending_written);
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
      window = 1;
      finish_pending();
      handled += batch->size();
      process_isolated(std::move(batch).value(), clock_.now());
      continue;
    }
    if (batch->empty()) {
      // No growth on an empty fetch: an idle worker must not be at its widest when the
      // redeliveries of a crashed one come due.
      widest = live;
      finish_pending();
      continue;
    }
    window = std::min(settings_.batch_size, window * 2);
    widest = widest_for(batch->back().stream_pending);
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
