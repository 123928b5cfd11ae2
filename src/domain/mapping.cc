#include "domain/mapping.h"

namespace atw {
namespace {

// Exactly one leading `prefix`, so that `device.a.b` names the device metric `a.b` (the seed's
// `split('.')[1]` would truncate it to `a`).
std::string_view strip_prefix(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) == prefix) name.remove_prefix(prefix.size());
  return name;
}

}  // namespace

MetricSet map_device_metrics(const MetricSet& device_metrics, const DeviceLink& link) {
  MetricSet asset;
  asset.reserve(link.metrics_mapping.size());
  for (const auto& [from, to] : link.metrics_mapping) {
    const std::string_view name = strip_prefix(to, "asset.");
    if (name.empty()) continue;  // "asset." names nothing; never write an unnamed metric
    if (const Metric* m = device_metrics.find_metric(strip_prefix(from, "device."))) {
      asset.set(name, m->value, m->quality);
    }
  }
  if (link.port) {
    // After the mapping, as in the seed: a port metric overwrites a mapped one of the same name.
    // `port_1_` alone would name an empty metric: skipped.
    std::string prefix;
    prefix.reserve(link.port->size() + 6);
    prefix.append("port_").append(*link.port).append(1, '_');
    for (const Metric& m : device_metrics) {
      if (m.name.size() > prefix.size() && m.name.compare(0, prefix.size(), prefix) == 0) {
        asset.set(std::string_view(m.name).substr(prefix.size()), m.value, m.quality);
      }
    }
  }
  return asset;
}

}  // namespace atw
