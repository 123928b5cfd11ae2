#pragma once
// Reads stored stream messages by sequence through the JetStream API (STREAM.MSG.GET): the DLQ
// tooling and the tests look at what a stream holds without a consumer of their own.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adapters/nats/nats_connection.h"
#include "domain/base64.h"
#include "domain/timestamp.h"
#include "pipeline/ports.h"

namespace atw {

struct StoredMessage {
  uint64_t sequence = 0;
  std::string subject;
  std::string data;
  std::string headers;  // raw NATS header block ("NATS/1.0\r\nNats-Msg-Id: ...")
  std::string time;     // RFC 3339, as the server reports it
};

struct StreamState {
  uint64_t messages = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::optional<Timestamp> first_time;  // when the oldest message kept was stored
  std::chrono::seconds max_age{0};      // how long the stream keeps a message; 0: no limit
};

Result<StreamState> stream_state(NatsConnection& nc, const std::string& stream);

struct ConsumerState {
  uint64_t pending = 0;      // stored messages not yet delivered
  uint64_t ack_pending = 0;  // delivered, not yet acknowledged
  uint64_t redelivered = 0;  // delivered more than once and not yet acknowledged
};
Result<ConsumerState> consumer_state(NatsConnection& nc, const std::string& stream,
                                     const std::string& durable);

// The message `seq` of `stream`; nullopt when the stream no longer holds it.
Result<std::optional<StoredMessage>> read_message(NatsConnection& nc, const std::string& stream,
                                                  uint64_t seq);

// Messages with sequence >= `from`, in order, at most `max` (deleted sequences are skipped).
Result<std::vector<StoredMessage>> read_stream(NatsConnection& nc, const std::string& stream,
                                               uint64_t from, size_t max);

Status delete_stream_message(NatsConnection& nc, const std::string& stream, uint64_t seq);

// MessageStore over read_message. Thread-safe (NATS requests are).
class StreamMessageStore final : public MessageStore {
 public:
  explicit StreamMessageStore(NatsConnection& nc) : nc_(nc) {}
  Result<std::optional<StoredPayload>> get(const std::string& stream, uint64_t sequence) override;
  Status term(const std::string& stream, const std::string& consumer, uint64_t sequence) override;

 private:
  NatsConnection& nc_;
};

}  // namespace atw
