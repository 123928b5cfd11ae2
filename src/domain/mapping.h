#pragma once
// Device metrics to asset metrics (seed step 5a, SPEC D8).

#include "domain/links.h"
#include "domain/metrics.h"

namespace atw {

// For each metrics_mapping entry, in order, copy device metric X to asset metric Y, where the
// entry's key and value have exactly one leading "device." / "asset." stripped (names that
// themselves contain dots stay whole). Then, for a link with a port, copy every device metric
// `port_{port}_X` as `X`, overwriting.
MetricSet map_device_metrics(const MetricSet& device_metrics, const DeviceLink& link);

}  // namespace atw
