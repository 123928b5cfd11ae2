#include "app/safety_net_thread.h"

#include "adapters/nats/stream_reader.h"

namespace atw {

namespace {

constexpr std::chrono::seconds kPoll(1);
constexpr std::chrono::seconds kGaugeInterval(5);

}  // namespace

SafetyNetThread::SafetyNetThread(MaxDeliveriesDeadLetterer& net, NatsConnection& nc,
                                 WorkerTopology topology, std::string durable,
                                 WorkerMetrics& metrics, const std::atomic<bool>& stop)
    : net_(net),
      nc_(nc),
      topology_(std::move(topology)),
      durable_(std::move(durable)),
      metrics_(metrics),
      stop_(stop),
      thread_([this] { loop(); }) {}

SafetyNetThread::~SafetyNetThread() {
  destroying_.store(true);
  thread_.join();
}

void SafetyNetThread::loop() {
  auto next_gauges = std::chrono::steady_clock::now();
  while (!stop_.load() && !destroying_.load()) {
    if (net_.poll(kPoll) == 0 && !nc_.connected()) std::this_thread::sleep_for(kPoll);
    if (std::chrono::steady_clock::now() < next_gauges || !nc_.connected()) continue;
    next_gauges = std::chrono::steady_clock::now() + kGaugeInterval;
    read_gauges();
  }
}

void SafetyNetThread::read_gauges() {
  if (auto dlq = stream_state(nc_, topology_.dlq_stream); dlq.ok()) {
    metrics_.set_dlq_depth(static_cast<int64_t>(dlq->messages));
  }
  if (auto consumer = consumer_state(nc_, topology_.input_stream, durable_); consumer.ok()) {
    metrics_.set_stream_pending(static_cast<int64_t>(consumer->pending));
    metrics_.set_ack_pending(static_cast<int64_t>(consumer->ack_pending));
  }
}

}  // namespace atw
