#include "pipeline/asset_transform.h"

#include <algorithm>

#include "domain/mapping.h"

namespace atw {

const AssetTypeModel& AssetTypeRegistry::model(const std::string& asset_type_id,
                                               const std::string& schema_json) {
  std::vector<Compiled>& texts = models_[asset_type_id];
  for (const Compiled& c : texts) {
    if (c.schema_json == schema_json) return *c.model;
  }
  auto compiled = AssetTypeModel::compile(asset_type_id, schema_json);
  if (!compiled->problems().empty() && report_) report_(*compiled);
  if (texts.size() == kTextsPerType) texts.erase(texts.begin());
  texts.push_back(Compiled{schema_json, std::move(compiled)});
  return *texts.back().model;
}

std::vector<AssetResult> transform_message(const TelemetryMessage& message, const LinkSet& links,
                                           AssetTypeRegistry& types, TransformCounts& counts) {
  // One entry per asset served, in order of its first valid link (SPEC D8: several links to one
  // asset give one result, merged in link-id order, the first link to give a metric keeping it).
  struct Served {
    const DeviceLink* first_link;
    MetricSet metrics;
  };
  std::vector<Served> served;
  for (const DeviceLink& link : links.links) {
    if (!link.valid_at(message.timestamp)) continue;
    MetricSet mapped = map_device_metrics(message.metrics, link);
    auto same_asset = [&link](const Served& s) { return s.first_link->asset_id == link.asset_id; };
    if (auto it = std::find_if(served.begin(), served.end(), same_asset); it != served.end()) {
      for (const Metric& m : mapped) {
        if (it->metrics.find(m.name) == nullptr) it->metrics.set(m.name, m.value, m.quality);
      }
      continue;
    }
    served.push_back(Served{&link, std::move(mapped)});
  }
  std::vector<AssetResult> out;
  out.reserve(served.size());
  for (Served& s : served) {
    if (s.metrics.empty()) {
      ++counts.assets_skipped_no_metrics;
      continue;
    }
    const AssetTypeModel& type =
        types.model(s.first_link->asset_type_id, s.first_link->telemetry_schema);
    type.derive(s.metrics, counts.derivation);
    HealthResult health = type.health_explained(s.metrics);
    out.push_back(AssetResult{s.first_link->asset_id, std::move(s.metrics), health.score,
                              std::move(health.details), type.health_states()});
  }
  return out;
}

}  // namespace atw
