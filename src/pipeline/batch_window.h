#pragma once
// How many messages the worker asks for next (see worker.h for why), and when the messages in
// its hands need an InProgress. Both are pure: they see only what they are told.

#include <cstddef>
#include <cstdint>

#include "pipeline/ports.h"

namespace atw {

struct BatchSizes {
  size_t batch_size = 2000;          // the largest batch, over a deep backlog
  size_t live_batch_size = 100;      // the largest batch while the worker keeps up
  size_t catch_up_batch_size = 250;  // the largest batch over a shallow backlog
  // A backlog of this many full batches or more is deep.
  static constexpr size_t kDeepBacklog = 5;
};

class BatchWindow {
 public:
  explicit BatchWindow(const BatchSizes& sizes);

  // The size of the next fetch.
  size_t want() const { return window_ < widest_ ? window_ : widest_; }
  // How many more to request ahead for the fetch after it: none until the window has opened
  // to the widest batch the backlog allows.
  size_t ahead() const { return window_ >= widest_ ? want() : 0; }

  // A fetch brought first deliveries only, with `behind` messages left after the last one:
  // the window doubles (up to the batch size) and the widest batch follows the backlog.
  void grew(uint64_t behind);
  // A fetch brought a redelivered message: one message at a time from here.
  void redelivered() { window_ = 1; }
  // A fetch brought nothing: an idle worker must not be at its widest when the redeliveries of
  // a crashed one come due.
  void idle() { widest_ = live_; }

 private:
  BatchSizes sizes_;
  size_t live_;
  size_t catch_up_;
  size_t window_ = 1;
  size_t widest_;
};

// When messages held in hand are due an InProgress: every `interval` of clock time (the
// server's AckWait runs on wall time, failed calls and sleeps included).
class KeepaliveSchedule {
 public:
  KeepaliveSchedule(milliseconds interval, Timestamp start)
      : interval_micros_(interval.count() * 1000), last_(start) {}

  // Starts the interval again from `at` (new messages came into hand).
  void restart(Timestamp at) { last_ = at; }
  // Whether a keepalive is due at `now`; when it is, counts it as sent.
  bool due(Timestamp now) {
    if (now.micros - last_.micros < interval_micros_) return false;
    last_ = now;
    return true;
  }

 private:
  int64_t interval_micros_;
  Timestamp last_;
};

}  // namespace atw
