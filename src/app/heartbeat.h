#pragma once
// Liveness (/healthz): the pipeline thread beats at every loop cycle and at every wait for a
// server; a thread stuck in a call that never returns stops beating, and once it has been
// silent for the stall limit the worker reports itself not alive, so that Kubernetes restarts it.

#include <atomic>
#include <chrono>
#include <thread>

namespace atw {

class Heartbeat {
 public:
  explicit Heartbeat(std::chrono::nanoseconds stall_limit) : stall_limit_(stall_limit) { beat(); }

  void beat() { last_.store(now(), std::memory_order_relaxed); }
  // Beats, then sleeps: a wait the thread chose is not a stall.
  void sleep(std::chrono::milliseconds d) {
    beat();
    std::this_thread::sleep_for(d);
  }
  bool alive() const {
    return now() - last_.load(std::memory_order_relaxed) < stall_limit_.count();
  }

 private:
  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  std::chrono::nanoseconds stall_limit_;
  std::atomic<int64_t> last_{0};
};

}  // namespace atw
