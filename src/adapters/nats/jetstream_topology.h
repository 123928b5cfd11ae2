#pragma once
// The JetStream streams and consumers the worker works on (SPEC D1, D2, D14): found by the
// subjects they capture, created where missing, an existing one used as it is.

#include <chrono>
#include <string>

#include "adapters/nats/nats_connection.h"
#include "common/log.h"
#include "common/status.h"

namespace atw {

// Which stream captures `subject` (SPEC D1: bind to it); empty if none.
Result<std::string> find_stream_for_subject(NatsConnection& nc, const std::string& subject);

struct StreamSpec {
  std::string default_name;  // created with this name where no stream captures the subject
  std::string subject;
  std::chrono::seconds duplicate_window{600};
  int replicas = 1;
  std::string retention = "limits";  // "workqueue": a message is gone once a consumer acks it
  std::chrono::seconds max_age{0};   // how long a message is kept; 0: until removed otherwise
};
// Returns the name of the stream that captures the subject, creating it where missing.
Result<std::string> ensure_stream(NatsConnection& nc, const StreamSpec& spec, Logger& log);

struct ConsumerSpec {
  std::string stream;
  std::string durable = "asset-processor-group";
  std::string filter_subject;
  int max_deliver = 3;
  std::chrono::seconds ack_wait{30};
  int max_ack_pending = 20000;
};
// Creates the durable pull consumer where missing (SPEC D2); an existing one is used as it is.
Status ensure_consumer(NatsConnection& nc, const ConsumerSpec& spec, Logger& log);

// What the worker reads from and writes to.
struct TopologySettings {
  std::string input_subject;
  std::string output_subject;
  std::string state_subject;
  std::string dlq_subject;
  std::string durable;
  int replicas = 1;
  std::chrono::seconds input_max_age{0}, output_max_age{0}, dlq_max_age{0};
  int max_deliver = 3;
  std::chrono::seconds ack_wait{30};
  int max_ack_pending = 20000;
};

// The names of the streams the worker found or created.
struct WorkerTopology {
  std::string input_stream;
  std::string advisory_stream;  // the input consumer's MAX_DELIVERIES advisories (SPEC D14)
  std::string dlq_stream;
};

// Ensures the input, output, state and dead-letter streams, the durable input consumer, and
// the advisory stream with its consumer. Fails with the first step that fails.
Result<WorkerTopology> ensure_worker_topology(NatsConnection& nc, const TopologySettings& s,
                                              Logger& log);

}  // namespace atw
