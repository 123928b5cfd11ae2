#pragma once
// MessageSource on a JetStream durable pull consumer (SPEC D2).
//
// The pull protocol is spoken directly instead of through natsSubscription_Fetch, whose 3.4.1
// version can return at once ignoring its timeout, and can block or overflow when more than half
// a batch is left over from an earlier timed-out fetch. Here every pull request has its own reply
// subject under one inbox subscription, so each arriving message or status is counted against
// the request it answers:
//   - at most `max_outstanding` messages are ever requested and not yet received, so the
//     client's buffer cannot overflow;
//   - a request ends when it is filled, when the server says so (408 expired, 409), or locally
//     `expires + grace` after it was sent (a lost status), or at a reconnect;
//   - a message that arrives for a request already written off is still delivered: it is a real
//     delivery that must be acked, never dropped.
// Up to one batch is kept requested ahead (the caller says how much), so the server delivers the
// next batch while the pipeline works on this one.
//
// Not thread-safe: owned by the pipeline thread. Acks are published without waiting (nats.c
// buffers them and its flusher thread writes them in bulk).

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "adapters/nats/nats_connection.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

struct PullSettings {
  std::string stream;
  std::string durable;
  uint64_t max_deliver = 3;
  std::chrono::milliseconds expires{1000};  // server-side life of one pull request
  std::chrono::milliseconds grace{2000};    // written off locally this long after expiry
  bool reports_pending = true;  // whether this consumer's backlog is the worker's pending gauge
};

// Parses a JetStream ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.
// <pending>, or the longer form with domain and account hash). False if it is not one.
bool parse_ack_subject(std::string_view reply, Delivery& out, uint64_t& pending);

class JetStreamSource final : public MessageSource {
 public:
  static Result<std::unique_ptr<JetStreamSource>> create(NatsConnection& nc, PullSettings settings,
                                                         WorkerMetrics& metrics, Logger& log);

  Result<std::vector<Delivery>> fetch(size_t max, milliseconds wait, size_t ahead,
                                      const std::function<bool()>& other_work) override;
  Status ack(const Delivery& d) override { return reply(d, "+ACK"); }
  Status nak(const Delivery& d, milliseconds delay) override;
  Status term(const Delivery& d) override { return reply(d, "+TERM"); }
  Status in_progress(const Delivery& d) override { return reply(d, "+WPI"); }
  Status flush() override;
  void keep_buffered_alive() override;
  uint64_t max_deliver() const override { return settings_.max_deliver; }

  // Shutdown: no new pull requests; fetch keeps returning what the requests already made bring.
  void close_intake() override { intake_open_ = false; }
  // True once intake is closed, every request made has ended and nothing is left to return.
  bool drained() const override;

  size_t outstanding() const;  // messages requested and not yet received

 private:
  struct PullRequest {
    size_t remaining;
    std::chrono::steady_clock::time_point written_off_at;
  };
  JetStreamSource(NatsConnection& nc, PullSettings settings, WorkerMetrics& metrics, Logger& log)
      : nc_(nc), settings_(std::move(settings)), metrics_(metrics), log_(log) {}

  // Messages (and status replies) the subscription holds that no fetch has taken yet.
  uint64_t queued() const;
  Status request_more(size_t want);
  void expire_requests();
  // Handles one message from the inbox; appends a delivery to `out` when it is one.
  void take(natsMsg* msg, std::vector<Delivery>& out);
  Status reply(const Delivery& d, std::string_view body);

  NatsConnection& nc_;
  PullSettings settings_;
  WorkerMetrics& metrics_;
  Logger& log_;
  SubscriptionPtr sub_;
  std::string inbox_;
  std::string next_subject_;
  uint64_t next_request_ = 0;
  uint64_t generation_ = 0;
  std::map<uint64_t, PullRequest> requests_;
  std::deque<Delivery> held_;  // taken off the subscription by keep_buffered_alive
  bool intake_open_ = true;
  size_t max_outstanding_ = 0;
};

}  // namespace atw
