// Fuzz target: arbitrary bytes as a JetStream message payload, through validation (SPEC D3) and
// then through what the pipeline does with the outcome: a valid message is mapped onto the
// example plant's links, derived, scored and turned into events (D8-D13); an invalid one becomes
// a DLQ record (D14). Every output is checked against the documented limits and contracts.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "domain/asset_type.h"
#include "domain/dead_letter.h"
#include "domain/event.h"
#include "domain/json_writer.h"
#include "domain/links.h"
#include "domain/mapping.h"
#include "domain/telemetry.h"
#include "domain/utf8.h"
#include "fuzz_check.h"

namespace atw {
namespace {

// A fixed "now" keeps every crash reproducible: examples/message.json is 5 minutes before it.
Timestamp fuzz_now() {
  static const Timestamp now = *parse_rfc3339("2026-01-28T14:35:00Z");
  return now;
}

// RFC 3339 has no form for years outside 0000..9999 (an offset can push a parsed time there).
bool rfc3339_can_write(Timestamp t) {
  static const Timestamp first = *parse_rfc3339("0000-01-01T00:00:00Z");
  static const Timestamp last = *parse_rfc3339("9999-12-31T23:59:59.999999Z");
  return first <= t && t <= last;
}

constexpr const char* kPumpSchema =
    R"({"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current"}]})";

// Small limits, so that inputs the fuzzer can reach in a few KB cross every bound.
ValidationLimits tight_limits() {
  ValidationLimits limits;
  limits.max_payload_bytes = 2048;
  limits.max_id_bytes = 16;
  limits.max_metrics = 4;
  limits.max_metric_name_bytes = 16;
  limits.max_future_micros = 0;
  limits.max_depth = 3;
  return limits;
}

bool valid_metric_name(std::string_view name, size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void check_valid(const TelemetryMessage& msg, const ValidationLimits& limits) {
  for (const std::string* id : {&msg.message_id, &msg.device_id, &msg.organization_id}) {
    ATW_FUZZ_CHECK(!id->empty() && id->size() <= limits.max_id_bytes);
    for (char c : *id) ATW_FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20);
    ATW_FUZZ_CHECK(is_valid_utf8(*id));
  }

  ATW_FUZZ_CHECK(msg.timestamp.micros - fuzz_now().micros <= limits.max_future_micros);
  if (rfc3339_can_write(msg.timestamp)) {
    ATW_FUZZ_CHECK(parse_rfc3339(format_rfc3339(msg.timestamp)) == msg.timestamp);
  }

  ATW_FUZZ_CHECK(msg.skipped_metrics >= 0);
  ATW_FUZZ_CHECK(msg.metrics.size() + static_cast<size_t>(msg.skipped_metrics) <=
                 limits.max_metrics);
  std::unordered_set<std::string_view> names;
  for (const Metric& m : msg.metrics) {
    ATW_FUZZ_CHECK(valid_metric_name(m.name, limits.max_metric_name_bytes));
    ATW_FUZZ_CHECK(std::isfinite(m.value));
    ATW_FUZZ_CHECK(names.insert(m.name).second);
  }
}

void check_failure(const Status& status) {
  ATW_FUZZ_CHECK(!status.ok());
  ATW_FUZZ_CHECK((status.permanent() && status.type() == "invalid_message") ||
                 (status.retryable() && status.type() == "out_of_memory"));
  // The reason goes to the DLQ record and the log: short, readable, whatever the payload.
  ATW_FUZZ_CHECK(!status.message().empty() && status.message().size() <= 1024);
  ATW_FUZZ_CHECK(is_valid_utf8(status.message()));
}

bool same_message(const TelemetryMessage& a, const TelemetryMessage& b) {
  return a.message_id == b.message_id && a.device_id == b.device_id &&
         a.organization_id == b.organization_id && a.timestamp == b.timestamp &&
         a.metrics == b.metrics && a.skipped_metrics == b.skipped_metrics;
}

// examples/plant.sql's two links, and one that maps every metric of the message onto itself, so
// that mapping sees the fuzzed names (and a port, when the first metric names one).
LinkSet links_for(const TelemetryMessage& msg) {
  LinkSet set;
  DeviceLink a;
  a.link_id = "link-uuid-1";
  a.asset_id = "asset-pump-a";
  a.metrics_mapping = {{"device.voltage", "asset.power_input"},
                       {"device.current", "asset.power_current"},
                       {"device.temperature", "asset.motor_temperature"}};
  a.asset_type_id = "type-pump";
  a.telemetry_schema = kPumpSchema;
  set.links.push_back(a);

  DeviceLink b = a;
  b.link_id = "link-uuid-2";
  b.asset_id = "asset-pump-b";
  b.port = "1";
  b.metrics_mapping = {{"device.temperature", "asset.motor_temperature"}, {"device.x", "asset."}};
  b.valid_until = fuzz_now();  // closes exactly at "now": a message at now is not Pump B's
  set.links.push_back(b);

  DeviceLink own;
  own.link_id = "link-own";
  own.asset_id = "asset-own";
  own.asset_type_id = "type-none";
  own.telemetry_schema = "null";
  for (const Metric& m : msg.metrics)
    own.metrics_mapping.emplace_back("device." + m.name, "asset." + m.name);
  set.links.push_back(own);
  return set;
}

void check_event(const AssetEvent& event) {
  const std::string text = to_json(event);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ATW_FUZZ_CHECK(j.is_object());
  // The seed's ten fields, healthDetails, and quality when some metric is not good.
  ATW_FUZZ_CHECK(j.size() == (event.metrics.any_not_good() ? 12u : 11u));
  ATW_FUZZ_CHECK(j.at("healthDetails").is_array());
  ATW_FUZZ_CHECK(j.at("messageId").get<std::string>().size() == 36);
  ATW_FUZZ_CHECK(j.at("deviceId") == event.device_id);
  ATW_FUZZ_CHECK(j.at("organizationId") == event.organization_id);
  if (rfc3339_can_write(event.timestamp)) {
    ATW_FUZZ_CHECK(parse_rfc3339(j.at("timestamp").get<std::string>()).has_value());
  }
  const nlohmann::json& metrics = j.at("metrics");
  ATW_FUZZ_CHECK(metrics.is_object() && metrics.size() == event.metrics.size());
  for (const Metric& m : event.metrics) {
    ATW_FUZZ_CHECK(metrics.contains(m.name) && metrics.at(m.name).is_number());
    ATW_FUZZ_CHECK(metrics.at(m.name).get<double>() == m.value);  // shortest form round-trips
  }
  ATW_FUZZ_CHECK(j.at("healthScore").get<double>() == event.health_score);
}

// What the batch processor does with a valid message, without the I/O.
void process(const TelemetryMessage& msg) {
  static const std::shared_ptr<AssetTypeModel> pump =
      AssetTypeModel::compile("type-pump", kPumpSchema);
  static const std::shared_ptr<AssetTypeModel> none = AssetTypeModel::compile("type-none", "null");

  for (const DeviceLink& link : links_for(msg).links) {
    if (!link.valid_at(msg.timestamp)) continue;
    MetricSet metrics = map_device_metrics(msg.metrics, link);
    if (link.link_id == "link-own") ATW_FUZZ_CHECK(metrics == msg.metrics);
    if (metrics.empty()) continue;
    const AssetTypeModel& type = link.asset_type_id == "type-pump" ? *pump : *none;
    DerivationStats stats;
    const size_t before = metrics.size();
    type.derive(metrics, stats);
    ATW_FUZZ_CHECK(metrics.size() <= before + type.formula_count());
    for (const Metric& m : metrics) ATW_FUZZ_CHECK(std::isfinite(m.value));
    const double score = type.health(metrics);
    ATW_FUZZ_CHECK(score >= 0 && score <= 100);

    AssetEvent event{
        asset_event_id(msg.organization_id, msg.device_id, msg.message_id, link.asset_id),
        link.asset_id,
        msg.device_id,
        msg.organization_id,
        msg.timestamp,
        std::move(metrics),
        score,
        std::optional<double>(42.5),
        fuzz_now(),
        {}};
    check_event(event);
  }
}

// What the DLQ writer records for any payload: valid JSON that carries the payload as JSON or as
// base64, or, when the record would exceed `max_bytes`, says it omitted it and how big it was.
void check_dead_letter(std::string_view payload, const Status& status, size_t max_bytes) {
  DeadLetter record;
  record.original_stream = "TELEMETRY_NORMALIZED";
  record.original_subject = "telemetry.normalized.v1";
  record.stream_sequence = 7;
  record.consumer = "asset-processor-group";
  record.delivery_count = 1;
  record.last_error = status.ok() ? "db_write_failed: fuzz" : status.message();
  record.error_type = status.ok() ? "db_write_failed" : status.type();
  record.failed_at = fuzz_now();
  record.payload = payload;
  const std::string text = to_json(record, max_bytes);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ATW_FUZZ_CHECK(j.is_object());
  const int forms = int{j.contains("payload")} + int{j.contains("payloadBase64")} +
                    int{j.contains("payloadOmitted")};
  ATW_FUZZ_CHECK(forms == 1);
  if (j.contains("payloadOmitted")) {
    ATW_FUZZ_CHECK(j.at("payloadBytes").get<uint64_t>() == payload.size());
    return;
  }
  ATW_FUZZ_CHECK(text.size() <= max_bytes);
  if (j.contains("payloadBase64")) {
    ATW_FUZZ_CHECK(j.at("payloadBase64").get<std::string>().size() == (payload.size() + 2) / 3 * 4);
  } else {
    ATW_FUZZ_CHECK(j.at("payload") == nlohmann::json::parse(payload));
    // What `dlq replay` republishes: the original bytes, exactly.
    ATW_FUZZ_CHECK(embedded_payload(text) == payload);
  }
}

}  // namespace
}  // namespace atw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace atw;
  const std::string_view payload(reinterpret_cast<const char*>(data), size);

  // The tight limits first, then the defaults: the thread's parser changes depth between calls,
  // as it does when configured limits differ.
  const ValidationLimits tight = tight_limits();
  const ValidationLimits defaults;
  Result<TelemetryMessage> small = parse_telemetry(payload, fuzz_now(), tight);
  Result<TelemetryMessage> full = parse_telemetry(payload, fuzz_now(), defaults);

  if (small.ok()) {
    check_valid(*small, tight);
    // Whatever passes the tighter limits passes the defaults, unchanged.
    ATW_FUZZ_CHECK(full.ok() && same_message(*small, *full));
  } else {
    check_failure(small.status());
  }
  if (full.ok()) {
    check_valid(*full, defaults);
    process(*full);
  } else {
    check_failure(full.status());
  }
  check_dead_letter(payload, full.status(), SIZE_MAX);
  check_dead_letter(payload, full.status(), 1024);  // a small server max_payload
  return 0;
}
