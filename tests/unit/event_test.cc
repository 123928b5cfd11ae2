#include "domain/event.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace atw {
namespace {

using nlohmann::ordered_json;

AssetEvent pump_a_event() {
  AssetEvent e;
  e.message_id = asset_event_id("org-xyz-789", "device-abc-123", "uuid-12345", "asset-pump-a");
  e.asset_id = "asset-pump-a";
  e.device_id = "device-abc-123";
  e.organization_id = "org-xyz-789";
  e.timestamp = Timestamp::from_seconds(1769610600);  // 2026-01-28T14:30:00Z
  e.metrics = {{"power_input", 12.3},
               {"power_current", 2.5},
               {"motor_temperature", 25.5},
               {"power_consumption", 30.75}};
  e.health_score = 100;
  e.previous_health_score = 85;
  e.processed_at = Timestamp{1769610601234567};  // 2026-01-28T14:30:01.234567Z
  return e;
}

TEST(AssetEventId, KnownValue) {
  // Python: uuid.uuid5(UUID("6f1c2a52-5b0e-4c59-9d0a-6b7a0e3c1f20"),
  //                    "org-xyz-789\ndevice-abc-123\nuuid-12345\nasset-pump-a").
  EXPECT_EQ(asset_event_id("org-xyz-789", "device-abc-123", "uuid-12345", "asset-pump-a"),
            "73b3d55b-8141-5709-baff-78f560a4a132");
  EXPECT_EQ(asset_event_id("org-xyz-789", "device-abc-123", "uuid-12345", "asset-pump-b"),
            "c17f48da-5093-50a1-b4b4-698b7e64a73b");
}

TEST(AssetEventId, DeterministicAndDistinct) {
  EXPECT_EQ(asset_event_id("o", "d", "m1", "a1"), asset_event_id("o", "d", "m1", "a1"));
  std::set<std::string> ids;
  for (const char* m : {"m1", "m2", "m1\na", ""}) {
    for (const char* a : {"a1", "a2", "", "1"}) ids.insert(asset_event_id("o", "d", m, a));
  }
  EXPECT_EQ(ids.size(), 16u);
}

// SPEC D11: producers reuse message ids across tenants and devices (a gateway counting from 1);
// each (organization, device, messageId) is a message of its own, with events of its own.
TEST(AssetEventId, TheSameMessageIdOfAnotherTenantOrDeviceIsAnotherMessage) {
  const std::string mine = asset_event_id("org-a", "dev-1", "1", "asset");
  EXPECT_NE(mine, asset_event_id("org-b", "dev-1", "1", "asset"));
  EXPECT_NE(mine, asset_event_id("org-a", "dev-2", "1", "asset"));
  // Ids are free text: the parts cannot slide into each other.
  EXPECT_NE(asset_event_id("a", "bc", "1", "x"), asset_event_id("ab", "c", "1", "x"));
}

TEST(AssetEventJson, FieldsInSeedOrderWithExactValues) {
  const std::string json = to_json(pump_a_event());
  const ordered_json j = ordered_json::parse(json);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"messageId", "assetId", "deviceId", "organizationId",
                                      "timestamp", "metrics", "healthScore", "previousHealthScore",
                                      "processedAt", "processorVersion", "healthDetails"}));
  EXPECT_EQ(j["healthDetails"], ordered_json::array());  // a full score: no rule took points
  EXPECT_EQ(j["messageId"], "73b3d55b-8141-5709-baff-78f560a4a132");
  EXPECT_EQ(j["assetId"], "asset-pump-a");
  EXPECT_EQ(j["deviceId"], "device-abc-123");
  EXPECT_EQ(j["organizationId"], "org-xyz-789");
  EXPECT_EQ(j["timestamp"], "2026-01-28T14:30:00Z");
  EXPECT_EQ(j["processedAt"], "2026-01-28T14:30:01.234Z");
  EXPECT_EQ(j["processorVersion"], "asset-worker-v1");
  EXPECT_EQ(j["healthScore"], 100);
  EXPECT_EQ(j["previousHealthScore"], 85);
  const ordered_json expected_metrics = ordered_json::parse(
      R"({"power_input":12.3,"power_current":2.5,"motor_temperature":25.5,"power_consumption":30.75})");
  EXPECT_EQ(j["metrics"], expected_metrics);
  EXPECT_EQ(j["metrics"].dump(), expected_metrics.dump());  // same key order
  // Integral scores print as JavaScript does.
  EXPECT_NE(json.find(R"("healthScore":100,"previousHealthScore":85,)"), std::string::npos) << json;
}

TEST(AssetEventJson, NoPreviousScoreIsNullAndNamesAreEscaped) {
  AssetEvent e = pump_a_event();
  e.previous_health_score.reset();
  e.metrics = {{"we\"ird", 1}};
  e.device_id = "dev\n1";
  const ordered_json j = ordered_json::parse(to_json(e));
  EXPECT_TRUE(j["previousHealthScore"].is_null());
  EXPECT_EQ(j["metrics"]["we\"ird"], 1);
  EXPECT_EQ(j["deviceId"], "dev\n1");
}

TEST(AssetEventJson, EmptyMetricsIsEmptyObject) {
  AssetEvent e = pump_a_event();
  e.metrics = {};
  const ordered_json j = ordered_json::parse(to_json(e));
  EXPECT_TRUE(j["metrics"].is_object());
  EXPECT_TRUE(j["metrics"].empty());
}

TEST(EventEncoder, ReusedTextFollowsEveryChangeOfInstant) {
  // An encoder keeps the last text of each instant: it must never give an event another's.
  const AssetEvent base = pump_a_event();
  const Timestamp times[] = {base.timestamp, base.timestamp, Timestamp{base.timestamp.micros + 1},
                             base.timestamp, Timestamp{base.timestamp.micros + 1500}};
  EventEncoder encoder;
  for (size_t i = 0; i < std::size(times); ++i) {
    AssetEvent e = base;
    e.timestamp = times[i];
    e.processed_at = Timestamp{base.processed_at.micros + static_cast<int64_t>(i / 2) * 1000};
    EXPECT_EQ(encoder.encode(e), to_json(e)) << i;
    const ordered_json j = ordered_json::parse(encoder.encode(e));
    EXPECT_EQ(j["timestamp"], format_rfc3339(times[i])) << i;
    EXPECT_EQ(j["processedAt"], format_iso_millis(e.processed_at)) << i;
  }
}

TEST(AssetEventJson, HealthDetailsAndTheQualitiesThatAreNotGood) {
  AssetEvent e = pump_a_event();
  e.metrics = MetricSet{{"power_input", 12.3},
                        {"motor_temperature", 85, Quality::kBad},
                        {"vibration", 6, Quality::kUncertain}};
  e.health_score = 80;
  e.health_details = {{"vibration", 6, HealthOp::kGt, 5, 20}};
  const ordered_json j = ordered_json::parse(to_json(e));
  ASSERT_EQ(j["healthDetails"].size(), 1u);
  EXPECT_EQ(
      j["healthDetails"][0],
      ordered_json::parse(
          R"({"metric": "vibration", "value": 6, "op": ">", "threshold": 5, "penalty": 20})"));
  EXPECT_EQ(j["quality"],
            ordered_json::parse(R"({"motor_temperature": "bad", "vibration": "uncertain"})"));
  EXPECT_EQ(j["metrics"]["motor_temperature"], 85);  // carried, with its quality said
}

}  // namespace
}  // namespace atw
