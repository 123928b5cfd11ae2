#pragma once
// Publisher on JetStream (SPEC D13): every message goes out at once, each with its own reply
// subject under one inbox subscription and its Nats-Msg-Id header, then the PubAcks are
// collected. A batch of events costs one round trip, not one per event.
//
// Not thread-safe: one instance per thread.

#include <chrono>
#include <memory>
#include <string>

#include "adapters/nats/nats_connection.h"
#include "pipeline/ports.h"

namespace atw {

class JetStreamPublisher final : public Publisher {
 public:
  static Result<std::unique_ptr<JetStreamPublisher>> create(NatsConnection& nc,
                                                            std::chrono::milliseconds ack_timeout);
  ~JetStreamPublisher() override;

  std::vector<Status> publish(std::span<const OutboundMessage> messages) override;

 private:
  JetStreamPublisher(NatsConnection& nc, std::chrono::milliseconds ack_timeout)
      : nc_(nc), ack_timeout_(ack_timeout) {}

  NatsConnection& nc_;
  std::chrono::milliseconds ack_timeout_;
  natsSubscription* sub_ = nullptr;
  std::string inbox_;
  uint64_t next_id_ = 0;
};

// Reads one PubAck body: ok, or the stream's error (storage trouble and unknown errors are
// Unavailable, so they are waited out rather than dead-lettered).
Status parse_pub_ack(std::string_view body);

}  // namespace atw
