#pragma once
// The thread beside the pipeline: it runs the safety net (dead letters for the messages the
// server gave up on) and, every few seconds, reads the dead-letter stream's depth and the input
// consumer's state into the gauges of /metrics (the pipeline learns the backlog only from the
// messages it gets). It ends once `stop` is set, or when it is destroyed.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/nats_connection.h"
#include "pipeline/max_deliveries_dead_letterer.h"
#include "pipeline/worker_metrics.h"

namespace atw {

class SafetyNetThread {
 public:
  SafetyNetThread(MaxDeliveriesDeadLetterer& net, NatsConnection& nc, WorkerTopology topology,
                  std::string durable, WorkerMetrics& metrics, const std::atomic<bool>& stop);
  ~SafetyNetThread();
  SafetyNetThread(const SafetyNetThread&) = delete;
  SafetyNetThread& operator=(const SafetyNetThread&) = delete;

 private:
  void loop();
  void read_gauges();

  MaxDeliveriesDeadLetterer& net_;
  NatsConnection& nc_;
  WorkerTopology topology_;
  std::string durable_;
  WorkerMetrics& metrics_;
  const std::atomic<bool>& stop_;
  std::atomic<bool> destroying_{false};
  std::thread thread_;
};

}  // namespace atw
