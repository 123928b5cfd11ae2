#pragma once
// The worker's main loop: fetch a batch, process it, repeat; on stop, finish the batch in hand,
// flush the acknowledgements and return (SPEC D17).
//
// A message that crashes the worker takes down everything in its hands, and a redelivered
// message may be such a message: every message in hand when it crashes again moves one delivery
// closer to MAX_DELIVER (and the DLQ) with it. So the worker keeps one message in hand while
// there is a sign of trouble: it starts with a window of one message and nothing requested
// ahead, and doubles the window up to the batch size while the messages it gets are first
// deliveries; a redelivered message sets the window back to one and is processed alone. A
// message that crashes every delivery then reaches its last delivery alone, and only it goes
// to the DLQ (through the MAX_DELIVERIES advisory).
//
// How big a batch may be depends on what waits behind it (the count comes with every
// delivery). A deep backlog (a drain: five full batches or more) goes through in batches of
// batch_size, which drain it fastest. A shallow one (a burst, or what queued during a stall of a
// server) goes through in batches of at most catch_up_batch_size, each acked as soon as it is
// done, instead of a few long ones that hold every message they carry for their whole write. A
// worker that keeps up takes at most live_batch_size.

#include <atomic>
#include <functional>

#include "common/log.h"
#include "pipeline/batch_processor.h"
#include "pipeline/ports.h"

namespace atw {

struct WorkerSettings {
  size_t batch_size = 2000;         // the largest batch, over a deep backlog (see above)
  milliseconds fetch_wait{20};      // how long a fetch waits for a batch to fill
  milliseconds drain_limit{10000};  // at shutdown, the longest wait for requested messages
  // InProgress interval (a third of AckWait) for messages in hand that wait their turn: those
  // of a batch in process_isolated, and those the server sent ahead that wait in the source's
  // buffer. One at a time, they can take longer than AckWait to get through.
  milliseconds keepalive{10000};
  size_t live_batch_size = 100;      // the largest batch while the worker keeps up (see above)
  size_t catch_up_batch_size = 250;  // the largest batch over a shallow backlog (see above)
};

class Worker {
 public:
  Worker(MessageSource& source, BatchProcessor& processor, const Clock& clock, Logger& log,
         WorkerSettings settings)
      : source_(source), processor_(processor), clock_(clock), log_(log), settings_(settings) {}

  // Runs until `stop` is set, then drains: processes what was already requested, flushes the
  // acknowledgements. `on_cycle` runs between batches (health checks). Returns the number of
  // messages handled.
  uint64_t run(const std::atomic<bool>& stop, const Sleeper& sleep,
               const std::function<void()>& on_cycle = {});

  // False while NATS cannot be fetched from or a batch waits for a server.
  bool healthy() const { return fetch_ok_.load() && processor_.healthy(); }

 private:
  // Processes a fetched batch that holds redelivered messages, in delivery order: each
  // redelivered message alone, the first deliveries between them together; nothing else is in
  // flight meanwhile. The messages still waiting their turn, and those the server sent ahead,
  // are kept alive meanwhile, or they would expire and come back as redeliveries themselves.
  void process_isolated(std::vector<Delivery> batch, Timestamp fetched_at);

  MessageSource& source_;
  BatchProcessor& processor_;
  const Clock& clock_;
  Logger& log_;
  WorkerSettings settings_;
  std::atomic<bool> fetch_ok_{true};
};

}  // namespace atw
