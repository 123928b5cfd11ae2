#pragma once
// The dead-letter record (SPEC D14).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/base64.h"
#include "domain/timestamp.h"

namespace atw {

struct DeadLetter {
  std::string original_stream;
  std::string original_subject;
  uint64_t stream_sequence = 0;
  std::string consumer;
  uint64_t delivery_count = 0;
  std::string last_error;
  std::string error_type;
  Timestamp failed_at;
  std::string_view payload;  // the original bytes
};

// `payload` is embedded as JSON when the bytes are valid UTF-8 JSON, else base64 under
// `payloadBase64`. A record that would be larger than `max_bytes` (the NATS server's
// max_payload: the DLQ could not store it) carries `payloadOmitted: true` and `payloadBytes`
// instead; the original stays in its stream at `streamSequence` while the stream retains it.
std::string to_json(const DeadLetter& record, size_t max_bytes = SIZE_MAX);

// The original bytes of a record's embedded `payload` (what to_json wrote there, exactly), or
// nullopt when the record has none (a payloadBase64 or payloadOmitted record, or not a record).
std::optional<std::string_view> embedded_payload(std::string_view record_json);

// The Nats-Msg-Id of the dead-letter record of one stream message: every path that
// dead-letters the same message gives the same id, so the DLQ stream stores it once.
inline std::string dead_letter_msg_id(std::string_view stream, uint64_t stream_sequence) {
  return "dlq:" + std::string(stream) + ":" + std::to_string(stream_sequence);
}

}  // namespace atw
