#pragma once
// Renders the worker's metrics in Prometheus' text exposition format (SPEC D16), with the
// design document's names exactly, plus the histogram, counters and gauges behind them.

#include <string>

#include "pipeline/worker_metrics.h"

namespace atw {

struct BuildInfo {
  std::string version;
  std::string worker_id;
  std::string stream;  // the input stream, label of nats_stream_messages_pending
};

std::string render_prometheus(const MetricsSnapshot& s, const BuildInfo& info);

}  // namespace atw
