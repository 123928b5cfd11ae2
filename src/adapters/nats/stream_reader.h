#pragma once
// Reads stored stream messages by sequence through the JetStream API (STREAM.MSG.GET): the DLQ
// tooling and the tests look at what a stream holds without a consumer of their own.

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/nats/nats_connection.h"

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
};

Result<StreamState> stream_state(NatsConnection& nc, const std::string& stream);

// Messages with sequence >= `from`, in order, at most `max` (deleted sequences are skipped).
Result<std::vector<StoredMessage>> read_stream(NatsConnection& nc, const std::string& stream,
                                               uint64_t from, size_t max);

Status delete_stream_message(NatsConnection& nc, const std::string& stream, uint64_t seq);

std::string base64_decode(std::string_view in);

}  // namespace atw
