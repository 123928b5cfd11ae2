#include "domain/event.h"

#include <array>

#include "domain/json_writer.h"
#include "domain/uuid.h"

namespace atw {
namespace {

// 6f1c2a52-5b0e-4c59-9d0a-6b7a0e3c1f20: fixed forever, or every event id would change.
constexpr std::array<uint8_t, 16> kEventNamespace = {
    0x6f, 0x1c, 0x2a, 0x52, 0x5b, 0x0e, 0x4c, 0x59, 0x9d, 0x0a, 0x6b, 0x7a, 0x0e, 0x3c, 0x1f, 0x20};

// The name both event ids start from: the source message's identity and the asset.
std::string asset_event_id_name(std::string_view organization_id, std::string_view device_id,
                                std::string_view message_id, std::string_view asset_id) {
  std::string name;
  name.reserve(organization_id.size() + device_id.size() + message_id.size() + asset_id.size() + 3);
  name.append(organization_id)
      .append(1, '\n')
      .append(device_id)
      .append(1, '\n')
      .append(message_id)
      .append(1, '\n')
      .append(asset_id);
  return name;
}

void write_health_details(JsonWriter& w, const std::vector<HealthDetail>& details) {
  w.begin_array();
  for (const HealthDetail& d : details) {
    w.begin_object();
    w.key("metric").string(d.metric);
    w.key("value").number(d.value);
    w.key("op").string(health_op_text(d.op));
    w.key("threshold").number(d.threshold);
    w.key("penalty").number(d.penalty);
    w.end_object();
  }
  w.end_array();
}

}  // namespace

std::string asset_event_id(std::string_view organization_id, std::string_view device_id,
                           std::string_view message_id, std::string_view asset_id) {
  return uuid_v5(kEventNamespace,
                 asset_event_id_name(organization_id, device_id, message_id, asset_id));
}

const std::string& EventEncoder::text_of(InstantText& cache, Timestamp t,
                                         std::string (*format)(Timestamp)) {
  if (cache.at != t) {
    cache.text = format(t);
    cache.at = t;
  }
  return cache.text;
}

std::string EventEncoder::encode(const AssetEvent& event) {
  std::string out;
  out.reserve(320 + event.metrics.size() * 32);
  JsonWriter w(out);
  w.begin_object();
  w.key("messageId").string(event.message_id);
  w.key("assetId").string(event.asset_id);
  w.key("deviceId").string(event.device_id);
  w.key("organizationId").string(event.organization_id);
  w.key("timestamp").string(text_of(timestamp_, event.timestamp, format_rfc3339));
  w.key("metrics").begin_object();
  for (const Metric& m : event.metrics) w.key(m.name).number(m.value);
  w.end_object();
  w.key("healthScore").number(event.health_score);
  w.key("previousHealthScore").optional_number(event.previous_health_score);
  w.key("processedAt").string(text_of(processed_at_, event.processed_at, format_iso_millis));
  w.key("processorVersion").string(kProcessorVersion);
  w.key("healthDetails");
  write_health_details(w, event.health_details);
  if (event.metrics.any_not_good()) {
    w.key("quality").begin_object();
    for (const Metric& m : event.metrics) {
      if (m.quality != Quality::kGood) w.key(m.name).string(quality_name(m.quality));
    }
    w.end_object();
  }
  w.end_object();
  return out;
}

std::string to_json(const AssetEvent& event) {
  return EventEncoder().encode(event);
}

std::string state_change_id(const StateChange& change) {
  std::string name = asset_event_id_name(change.organization_id, change.device_id,
                                         change.message_id, change.asset_id);
  name.append("\nstate");
  return uuid_v5(kEventNamespace, name);
}

std::string to_json(const StateChange& change) {
  std::string out;
  out.reserve(384 + change.reason.size() * 96);
  JsonWriter w(out);
  w.begin_object();
  w.key("id").string(state_change_id(change));
  w.key("assetId").string(change.asset_id);
  w.key("organizationId").string(change.organization_id);
  w.key("from").string(change.from);
  w.key("to").string(change.to);
  w.key("score").number(change.score);
  w.key("at").string(format_rfc3339(change.at));
  w.key("sequence").integer(change.sequence);
  w.key("reason");
  write_health_details(w, change.reason);
  w.key("deviceId").string(change.device_id);
  w.key("messageId").string(change.message_id);
  w.key("processorVersion").string(kProcessorVersion);
  w.end_object();
  return out;
}

}  // namespace atw
