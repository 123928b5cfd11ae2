#pragma once
// Reads a stream's stored messages back in order through an ordered, ephemeral consumer (one
// that nats.c recreates by itself from the next sequence after a gap or a reconnect), for
// reprocess. No durable consumer is touched and nothing is acknowledged.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "adapters/nats/nats_connection.h"
#include "common/status.h"
#include "domain/timestamp.h"

namespace atw {

struct ReplayedMessage {
  uint64_t sequence = 0;
  Timestamp stored_at;  // when the stream stored it
  std::string payload;
};

struct ReplayStart {
  uint64_t sequence = 0;  // from this sequence when set,
  Timestamp time;         // else from the first message stored at or after this time
};

class StreamReplay {
 public:
  // Starts the consumer on `subject` of `stream`; messages after `last_sequence` are not read.
  static Result<std::unique_ptr<StreamReplay>> open(NatsConnection& nc, const std::string& stream,
                                                    const std::string& subject, ReplayStart start,
                                                    uint64_t last_sequence);
  ~StreamReplay();
  StreamReplay(const StreamReplay&) = delete;
  StreamReplay& operator=(const StreamReplay&) = delete;

  // The next message; nullopt once every message up to the last sequence has been read (none
  // is left when the stream holds nothing more within `idle`).
  Result<std::optional<ReplayedMessage>> next(std::chrono::milliseconds idle);

 private:
  StreamReplay() = default;

  JetStreamContextPtr js_;
  SubscriptionPtr sub_;
  uint64_t last_sequence_ = 0;
  bool done_ = false;
};

}  // namespace atw
