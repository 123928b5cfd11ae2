#pragma once
// What the batch pipeline needs from the outside world. Each interface is implemented by one
// adapter (src/adapters/...) and by a fake in tests/unit. Every method is called from the
// pipeline's own thread only, unless it says otherwise.

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "domain/asset_type.h"
#include "domain/links.h"
#include "domain/metrics.h"
#include "domain/timestamp.h"

namespace atw {

using std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;  // wall clock, UTC
};

// One message in hand, as the source delivered it.
struct Delivery {
  std::string payload;
  std::string subject;
  std::string ack_token;  // opaque to the pipeline; the source's handle for ack/nak/term
  std::string stream;
  std::string consumer;
  uint64_t stream_sequence = 0;
  uint64_t delivery_count = 1;  // 1 on first delivery
  Timestamp published_at;       // when the stream stored it (for end-to-end latency)
  uint64_t stream_pending = 0;  // messages left for the consumer after this one (a backlog hint)
};

// The durable pull consumer. Acknowledgements are fire-and-forget: a lost ack only causes a
// redelivery, which the idempotent writes absorb; flush() makes sure they reached the server.
class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // Up to `max` messages; returns early with fewer when `wait` has passed, or an empty batch
  // when none came within `wait`. Unavailable while disconnected. Up to `ahead` more are
  // requested for the next fetch, so that the server sends them while this batch is processed;
  // with 0, no more than `max` messages are ever in this worker's hands. `other_work`, when
  // given, is asked whenever the fetch would wait (at least every millisecond): once it says
  // the caller has something else to do, the fetch waits no more and returns what has already
  // arrived, even nothing.
  virtual Result<std::vector<Delivery>> fetch(size_t max, milliseconds wait, size_t ahead,
                                              const std::function<bool()>& other_work) = 0;
  virtual Status ack(const Delivery& d) = 0;
  virtual Status nak(const Delivery& d, milliseconds delay) = 0;
  virtual Status term(const Delivery& d) = 0;
  virtual Status in_progress(const Delivery& d) = 0;  // resets the server's AckWait timer
  virtual Status flush() = 0;
  // During an outage: messages the server has already sent but no fetch has returned yet are
  // kept alive (InProgress) like the ones in hand, so their AckWait does not run out and spend a
  // delivery; the next fetch returns them first.
  virtual void keep_buffered_alive() = 0;
  // Shutdown: ask for nothing more; fetch keeps returning what was already asked for.
  virtual void close_intake() = 0;
  // True once intake is closed and nothing more can arrive.
  virtual bool drained() const = 0;
  // Deliveries after which the server gives up on a message (MaxDeliver).
  virtual uint64_t max_deliver() const = 0;
};

// What a MAX_DELIVERIES advisory says: the server gave up on the message at `stream_sequence`
// of `stream` after `deliveries` deliveries to `consumer`.
struct MaxDeliveriesAdvisory {
  std::string stream;
  std::string consumer;
  uint64_t stream_sequence = 0;
  uint64_t deliveries = 0;
};
// Reads an advisory off its payload (a NATS wire format, the nats adapter's to read); nullopt
// when the payload is no MAX_DELIVERIES advisory.
using AdvisoryReader = std::function<std::optional<MaxDeliveriesAdvisory>(std::string_view)>;

// Stored stream messages, by sequence: what the DLQ's safety net needs of the input stream.
// Thread-safe.
struct StoredPayload {
  std::string subject;
  std::string payload;
};
class MessageStore {
 public:
  virtual ~MessageStore() = default;
  // The message `sequence` of `stream`; nullopt when the stream no longer holds it.
  virtual Result<std::optional<StoredPayload>> get(const std::string& stream,
                                                   uint64_t sequence) = 0;
  // Settles a message the consumer gave up on (MAX_DELIVER) once it is dead-lettered, so that
  // the consumer's ack floor moves past it.
  virtual Status term(const std::string& stream, const std::string& consumer,
                      uint64_t sequence) = 0;
};

struct OutboundMessage {
  std::string subject;
  std::string msg_id;  // sent as Nats-Msg-Id: the stream drops a second copy within its window
  std::string payload;
};

// Publishes to JetStream and waits for every PubAck. The returned statuses match `messages`
// one to one; a duplicate that the stream dropped counts as published.
class Publisher {
 public:
  // The answer to a publish_async: call it once to wait for the PubAcks.
  using PendingAcks = std::function<std::vector<Status>()>;

  virtual ~Publisher() = default;
  virtual std::vector<Status> publish(std::span<const OutboundMessage> messages) = 0;
  // Sends now and waits later, so the caller can work while the stream stores the messages.
  // Several may be outstanding; each is waited for once. The default waits at once.
  virtual PendingAcks publish_async(std::span<const OutboundMessage> messages) {
    return [statuses = publish(messages)] { return statuses; };
  }
};

// A tier of the link cache (Redis). Failures are never errors to the caller: a tier that cannot
// answer reports misses and counts the failure, because the cache being down slows the worker,
// never stops it (SPEC D6).
class LinkCache {
 public:
  virtual ~LinkCache() = default;
  virtual std::vector<std::optional<LinkSet>> get_many(std::span<const DeviceKey> keys) = 0;
  virtual void put_many(std::span<const DeviceKey> keys, std::span<const LinkSet> sets) = 0;
  virtual void invalidate(std::span<const DeviceKey> keys) = 0;
  virtual void invalidate_all() = 0;  // every device's links
};

// The source of truth for links (PostgreSQL). Returns one LinkSet per key, in order; an empty
// set where the device has no link.
class LinkStore {
 public:
  virtual ~LinkStore() = default;
  virtual Result<std::vector<LinkSet>> load(std::span<const DeviceKey> keys) = 0;
};

// What one message produced for one asset.
struct AssetResult {
  std::string asset_id;
  MetricSet metrics;  // each with its quality
  double health_score = 0;
  std::vector<HealthDetail> health_details{};  // the rules that took points
  // The asset type's health states (domain/health_state.h); null: the type keeps none.
  std::shared_ptr<const HealthStatePolicy> health_states{};
};

// What one message produced, ready to be written.
struct MessageResult {
  std::string message_id;
  std::string device_id;
  std::string organization_id;
  Timestamp timestamp;
  std::vector<AssetResult> assets;  // never empty: messages with nothing to write are not sent
};

// What the sink reports back for one message, in the order of the request.
struct WriteOutcome {
  bool duplicate = false;  // committed earlier: nothing was written this time
  // The asset's score before this message, per entry of MessageResult::assets (nullopt: none).
  // For a duplicate, the values recorded when it was first written.
  std::vector<std::optional<double>> previous_scores;
  // The health-state changes this message made, ready to publish; for a duplicate,
  // the ones recorded when it was first written, so that a change whose event was lost is
  // published now, and one that was published is dropped by its id.
  struct StateEvent {
    std::string id;
    std::string to;  // the state entered
    std::string payload;
  };
  std::vector<StateEvent> state_events;
};

// Writes the history rows and scores of many messages in one transaction (SPEC D11, D12).
// All or nothing: on failure nothing of the batch is committed. A permanent error means some
// message of the batch has data the database refuses; the caller splits the batch to find it.
class TelemetrySink {
 public:
  using Outcome = Result<std::vector<WriteOutcome>>;
  // The answer to a write_async: take() it once to wait for the transaction's outcome; ready()
  // says whether take() would return at once.
  class PendingWrite {
   public:
    PendingWrite() = default;
    explicit PendingWrite(std::future<Outcome> answer) : answer_(std::move(answer)) {}
    static PendingWrite done(Outcome outcome) {
      std::promise<Outcome> p;
      p.set_value(std::move(outcome));
      return PendingWrite(p.get_future());
    }
    explicit operator bool() const { return answer_.valid(); }
    bool ready() const {
      return answer_.valid() &&
             answer_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    Outcome take() { return answer_.get(); }

   private:
    std::future<Outcome> answer_;
  };

  virtual ~TelemetrySink() = default;
  virtual Result<std::vector<WriteOutcome>> write(std::span<const MessageResult> messages,
                                                  Timestamp received_at) = 0;
  // Starts the write and returns at once where the sink can write in the background (several
  // database connections), so the caller can prepare the next batch meanwhile. `messages` must
  // stay alive until the answer is taken. The default writes at once.
  virtual PendingWrite write_async(std::span<const MessageResult> messages, Timestamp received_at) {
    return PendingWrite::done(write(messages, received_at));
  }
};

}  // namespace atw
