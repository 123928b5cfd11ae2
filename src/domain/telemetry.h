#pragma once
// The normalized device message (seed step 2) and its validation (SPEC D3).

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "domain/metrics.h"
#include "domain/timestamp.h"

namespace atw {

struct ValidationLimits {
  size_t max_payload_bytes = 1 << 20;
  size_t max_id_bytes = 256;
  size_t max_metrics = 1000;
  size_t max_metric_name_bytes = kMaxMetricNameBytes;
  int64_t max_future_micros = 300LL * 1'000'000;  // 5 min
  size_t max_depth = 64;                          // nesting of the JSON document
};

struct TelemetryMessage {
  std::string message_id;
  std::string device_id;
  std::string organization_id;
  Timestamp timestamp;
  MetricSet metrics;          // numbers as they are, booleans as 1/0, in payload order
  int skipped_metrics = 0;    // strings, nulls, arrays, objects: skipped, not fatal
  int unknown_qualities = 0;  // quality values not understood: read as uncertain
};

// Parses and validates one payload. Every failure is permanent (type "invalid_message") with a
// message that names the offending field, e.g. "timestamp: not RFC 3339". `now` bounds how far
// in the future the timestamp may be.
Result<TelemetryMessage> parse_telemetry(std::string_view payload, Timestamp now,
                                         const ValidationLimits& limits);

}  // namespace atw
