#pragma once
// Publisher on JetStream (SPEC D13): every message goes out at once, each with its own reply
// subject under one inbox subscription and its Nats-Msg-Id header, then the PubAcks are
// collected. A batch of events costs one round trip, not one per event.
//
// Not thread-safe: one instance per thread.

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "adapters/nats/nats_connection.h"
#include "pipeline/ports.h"

namespace atw {

class JetStreamPublisher final : public Publisher {
 public:
  static Result<std::unique_ptr<JetStreamPublisher>> create(NatsConnection& nc,
                                                            std::chrono::milliseconds ack_timeout);

  std::vector<Status> publish(std::span<const OutboundMessage> messages) override;
  PendingAcks publish_async(std::span<const OutboundMessage> messages) override;

 private:
  // One publish_async: reply ids [first_id, first_id + statuses.size()).
  struct Ticket {
    uint64_t first_id = 0;
    std::vector<Status> statuses;  // filled in as PubAcks arrive
    std::vector<bool> answered;
    size_t waiting = 0;
    std::chrono::steady_clock::time_point deadline;
  };
  std::shared_ptr<Ticket> send(std::span<const OutboundMessage> messages);
  std::vector<Status> collect(Ticket& ticket);
  // Records a PubAck for whichever outstanding ticket it answers.
  void deliver(uint64_t id, Status status);

  JetStreamPublisher(NatsConnection& nc, std::chrono::milliseconds ack_timeout)
      : nc_(nc), ack_timeout_(ack_timeout) {}

  NatsConnection& nc_;
  std::chrono::milliseconds ack_timeout_;
  SubscriptionPtr sub_;
  std::string inbox_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::weak_ptr<Ticket>> outstanding_;  // by first_id
};

// Reads one PubAck body: ok; Permanent (publish_refused) when the stream refuses that message
// for what it is (larger than its max_msg_size); else Unavailable (a full stream, storage
// trouble, anything unknown), so that it is waited out rather than dead-lettered.
Status parse_pub_ack(std::string_view body);

}  // namespace atw
