#pragma once
// The DLQ's safety net (SPEC D14). A message whose every delivery crashed or hung a worker is
// never settled by one: the server gives up on it after MAX_DELIVER deliveries and says so in a
// MAX_DELIVERIES advisory naming its stream sequence. A stream captures those advisories (so
// none is lost while every worker is down) and this turns each into the message's dead-letter
// record, with the original payload read back from the input stream by sequence.
//
// The record's Nats-Msg-Id is the one the batch pipeline gives a dead letter of the same stream
// message, so a message both dead-lettered by a worker and reported by the server is stored once.

#include <string>
#include <utility>

#include "common/log.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

class MaxDeliveriesDeadLetterer {
 public:
  struct Dependencies {
    MessageSource& advisories;  // the advisory stream's durable consumer
    AdvisoryReader read_advisory;
    MessageStore& store;  // the input stream, read by sequence
    Publisher& publisher;
    const Clock& clock;
    WorkerMetrics& metrics;
    Logger& log;
  };
  MaxDeliveriesDeadLetterer(Dependencies d, std::string dlq_subject, milliseconds retry_delay,
                            size_t max_record_bytes = SIZE_MAX)
      : d_(std::move(d)),
        dlq_subject_(std::move(dlq_subject)),
        retry_delay_(retry_delay),
        max_record_bytes_(max_record_bytes) {}

  // Takes the advisories that arrive within `wait` and dead-letters the message each names.
  // An advisory is acked once the record is stored, nak'ed to come back when a server is not
  // answering, and terminated when it is not an advisory at all. Returns how many were handled.
  size_t poll(milliseconds wait);

 private:
  enum class Outcome { kStored, kRetry, kInvalid };
  Outcome handle(const Delivery& advisory);

  Dependencies d_;
  std::string dlq_subject_;
  milliseconds retry_delay_;
  size_t max_record_bytes_;
};

}  // namespace atw
