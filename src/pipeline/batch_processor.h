#pragma once
// One batch through the whole pipeline (seed steps 2-8, SPEC D3-D14):
//   validate -> resolve links -> transform -> write (one transaction) -> publish events -> ack.
// Every delivery of the batch ends in exactly one way: acked after its rows and events are
// durable, dead-lettered then terminated (permanent errors, or the last delivery failed), or
// left to be redelivered (nak with a delay).
//
// Failures that are the outside world's (a server down) do not spend the message's deliveries:
// the processor waits for the server, keeping the messages in hand alive with InProgress, and
// reports the batch as stalled so readiness can say so.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "domain/telemetry.h"
#include "pipeline/asset_transform.h"
#include "pipeline/batch_window.h"
#include "pipeline/link_resolver.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

struct ProcessorSettings {
  std::string event_subject = "telemetry.asset.v1";
  std::string state_subject = "telemetry.asset.state.v1";  // health-state changes
  std::string dlq_subject = "telemetry.dlq";
  ValidationLimits limits;
  int retry_attempts = 3;           // in-process tries of a retryable (not outage) error
  milliseconds retry_initial{100};  // backoff between tries, doubling
  milliseconds retry_max{5000};
  milliseconds nak_delay{2000};        // redelivery delay, times the delivery count
  milliseconds keepalive{10000};       // InProgress interval while waiting out an outage
  size_t max_record_bytes = SIZE_MAX;  // largest dead-letter record the DLQ can store
};

// Sleeps for the retry loop; tests replace it to run without waiting.
using Sleeper = std::function<void(milliseconds)>;

class BatchProcessor {
 public:
  struct Dependencies {
    MessageSource& source;
    LinkResolver& links;
    TelemetrySink& sink;
    Publisher& publisher;
    const Clock& clock;
    WorkerMetrics& metrics;
    Logger& log;
  };

  BatchProcessor(Dependencies deps, ProcessorSettings settings, const std::atomic<bool>& stopping,
                 Sleeper sleep);

  // A batch between its two halves: transformed, its write under way.
  struct InFlight;

  // The first half: validate, resolve, transform, and start the write. `fetched_at` starts the
  // latency clock.
  std::unique_ptr<InFlight> start(std::vector<Delivery> batch, Timestamp fetched_at);
  // The second half: the write's outcome (retrying, or splitting a refused batch), the events
  // published and acknowledged by the stream, dead letters, acks. Batches are finished in the
  // order they were started. Between start and finish of one batch the worker starts the next,
  // so the database writes one batch while the previous one is published.
  void finish(std::unique_ptr<InFlight> batch);
  // Both halves at once (see above).
  void process(std::vector<Delivery>& batch, Timestamp fetched_at);

  // False while the last batch is waiting for a server to come back.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }

 private:
  enum class Fate { kPending, kAck, kDeadLetter, kRetry };
  struct Item {
    Delivery* delivery;
    std::optional<TelemetryMessage> message;
    Fate fate = Fate::kPending;
    Status error;
    int result = -1;      // index into the batch's MessageResults
    uint64_t rows = 0;    // history rows it wrote (0 for a duplicate)
    uint64_t events = 0;  // events it published
  };

  Status with_retries(const char* stage, size_t messages, const std::function<Status()>& op);
  void keep_alive();
  void write_results(InFlight& f);
  void write_range(const std::vector<Item*>& owners, const std::vector<MessageResult>& results,
                   std::vector<WriteOutcome>& outcomes, size_t begin, size_t end,
                   Timestamp received_at, TelemetrySink::PendingWrite first_answer);
  // What publish_all could not get acknowledged: indices into its messages.
  struct PublishOutcome {
    std::vector<size_t> unacked;                     // still failing when the retries ended
    std::vector<std::pair<size_t, Status>> refused;  // refused for good by the stream
    Status last;                                     // what ended the retries (ok if none)
  };
  // Publishes `messages` with retries until each is acknowledged or refused, or the retries
  // give up. `first_answer`, when given, answers the first try (a publish_async already sent).
  PublishOutcome publish_all(const char* stage, size_t in_hand,
                             const std::vector<OutboundMessage>& messages,
                             Publisher::PendingAcks first_answer, bool refusal_is_retryable);
  void send_events(InFlight& f);
  void await_events(InFlight& f);
  void dead_letter(std::vector<Item>& items);
  void settle(std::vector<Item>& items, Timestamp fetched_at);
  void fail_retry(Item& item, const Status& error);

  Dependencies d_;
  ProcessorSettings settings_;
  const std::atomic<bool>& stopping_;
  Sleeper sleep_;
  AssetTypeRegistry types_;
  // The batches between start and finish: every delivery in them waits for the slowest stage,
  // so every one is kept alive while a stage waits for a server, whatever its own fate.
  std::vector<InFlight*> in_hand_;
  // From when the oldest batch was fetched, or last kept alive.
  KeepaliveSchedule keepalive_{settings_.keepalive, Timestamp{}};
  std::atomic<bool> healthy_{true};
};

// Where a batch's time goes, for debug logs: "parse=0.4 resolve=0.1 ..." in milliseconds.
class StageTimer {
 public:
  void lap(const char* stage);
  const std::string& summary() const { return summary_; }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::string summary_;
};

struct BatchProcessor::InFlight {
  std::vector<Delivery> deliveries;
  std::vector<Item> items;  // one per delivery; items point into `deliveries`
  std::vector<MessageResult> results;
  std::vector<WriteOutcome> outcomes;
  std::vector<OutboundMessage> events;
  std::vector<Item*> event_owner;     // per event
  std::vector<Item*> publishing;      // items whose events were sent
  TelemetrySink::PendingWrite write;  // under way since start()
  Publisher::PendingAcks acks;
  Timestamp fetched_at;
  StageTimer timer;

  // True once finish() would not wait for the database.
  bool written() const { return !write || write.ready(); }
};

}  // namespace atw
