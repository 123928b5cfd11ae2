#include "pipeline/asset_transform.h"

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
  std::vector<AssetResult> out;
  for (const DeviceLink& link : links.links) {
    if (!link.valid_at(message.timestamp)) continue;
    MetricSet metrics = map_device_metrics(message.metrics, link);
    if (metrics.empty()) {
      ++counts.assets_skipped_no_metrics;
      continue;
    }
    const AssetTypeModel& type = types.model(link.asset_type_id, link.telemetry_schema);
    type.derive(metrics, counts.derivation);
    const double score = type.health(metrics);
    out.push_back(AssetResult{link.asset_id, std::move(metrics), score});
  }
  return out;
}

}  // namespace atw
