#include "pipeline/asset_transform.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace atw {
namespace {

constexpr const char* kPowerSchema =
    R"({"derived_metrics":[{"name":"power_consumption","formula":"power_input * power_current"}]})";
constexpr const char* kBrokenSchema =
    R"({"derived_metrics":[{"name":"bad","formula":"power_input *"},{"name":"double_input","formula":"power_input * 2"}]})";

DeviceLink link(const std::string& asset, const std::string& schema,
                std::vector<std::pair<std::string, std::string>> mapping) {
  DeviceLink l;
  l.link_id = "link-" + asset;
  l.asset_id = asset;
  l.asset_type_id = "type-" + asset;
  l.telemetry_schema = schema;
  l.metrics_mapping = std::move(mapping);
  return l;
}

TelemetryMessage message(MetricSet metrics) {
  TelemetryMessage m;
  m.message_id = "m1";
  m.device_id = "device-1";
  m.organization_id = "org-1";
  m.timestamp = Timestamp::from_seconds(1769610600);
  m.metrics = std::move(metrics);
  return m;
}

TEST(TransformMessage, OneResultPerLinkWithMetricsInLinkOrder) {
  LinkSet links{
      {link("pump-a", kPowerSchema,
            {{"device.voltage", "asset.power_input"}, {"device.current", "asset.power_current"}}),
       link("pump-b", "null", {{"device.temperature", "asset.motor_temperature"}}),
       link("pump-c", "null", {{"device.missing", "asset.x"}})}};
  AssetTypeRegistry types;
  TransformCounts counts;
  const auto out = transform_message(
      message({{"voltage", 12.3}, {"current", 2.5}, {"temperature", 85}}), links, types, counts);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].asset_id, "pump-a");
  EXPECT_EQ(out[0].metrics,
            (MetricSet{
                {"power_input", 12.3}, {"power_current", 2.5}, {"power_consumption", 12.3 * 2.5}}));
  EXPECT_EQ(out[0].health_score, 100);
  EXPECT_EQ(out[1].asset_id, "pump-b");
  EXPECT_EQ(out[1].health_score, 70);
  EXPECT_EQ(counts.assets_skipped_no_metrics, 1u);  // pump-c: nothing to say (SPEC D10a)
}

TEST(TransformMessage, LinksOutsideTheirWindowAreIgnored) {
  DeviceLink old_link = link("pump-old", "null", {{"device.t", "asset.motor_temperature"}});
  old_link.valid_until = Timestamp::from_seconds(1769610600);
  DeviceLink new_link = link("pump-new", "null", {{"device.t", "asset.motor_temperature"}});
  new_link.valid_from = Timestamp::from_seconds(1769610600);
  AssetTypeRegistry types;
  TransformCounts counts;
  const auto out =
      transform_message(message({{"t", 1}}), LinkSet{{old_link, new_link}}, types, counts);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].asset_id, "pump-new");
  EXPECT_EQ(counts.assets_skipped_no_metrics, 0u);
}

// SPEC D8: several valid links from one device to one asset (re-linked with overlapping windows,
// two ports of one RTU) give one result for the message: metrics merged in link-id order, the
// first link to give an asset metric keeping it, then derived metrics and the score once.
TEST(TransformMessage, SeveralLinksToOneAssetGiveOneResult) {
  DeviceLink port1 = link("pump-a", kPowerSchema, {{"device.voltage", "asset.power_input"}});
  port1.link_id = "link-1";
  port1.port = "1";
  DeviceLink port2 = link("pump-a", kPowerSchema, {{"device.current", "asset.power_current"}});
  port2.link_id = "link-2";
  port2.port = "2";
  DeviceLink other = link("pump-b", "null", {{"device.voltage", "asset.v"}});
  other.link_id = "link-0";
  const LinkSet links{{other, port1, port2}};  // in link-id order
  AssetTypeRegistry types;
  TransformCounts counts;
  const auto out = transform_message(message({{"voltage", 12},
                                              {"current", 2},
                                              {"port_1_temp", 40},
                                              {"port_2_temp", 90},
                                              {"port_2_flow", 7}}),
                                     links, types, counts);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].asset_id, "pump-b");
  EXPECT_EQ(out[1].asset_id, "pump-a");
  // link-1 gives power_input and temp (its port); link-2 adds power_current and flow, and its
  // temp loses to link-1's; power_consumption is derived once, from the merged metrics.
  EXPECT_EQ(out[1].metrics, (MetricSet{{"power_input", 12},
                                       {"temp", 40},
                                       {"power_current", 2},
                                       {"flow", 7},
                                       {"power_consumption", 24}}));
  EXPECT_EQ(counts.assets_skipped_no_metrics, 0u);
}

TEST(TransformMessage, ALinkThatGivesNothingDoesNotSkipAnAssetAnotherLinkServes) {
  DeviceLink empty = link("pump-a", "null", {{"device.missing", "asset.x"}});
  empty.link_id = "link-1";
  DeviceLink full = link("pump-a", "null", {{"device.voltage", "asset.v"}});
  full.link_id = "link-2";
  // Re-linked: the first link's window ended before the message, the second's began.
  DeviceLink expired = link("pump-a", "null", {{"device.current", "asset.v"}});
  expired.link_id = "link-0";
  expired.valid_until = Timestamp::from_seconds(1769610000);
  AssetTypeRegistry types;
  TransformCounts counts;
  const auto out = transform_message(message({{"voltage", 12}, {"current", 3}}),
                                     LinkSet{{expired, empty, full}}, types, counts);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].metrics, (MetricSet{{"v", 12}}));
  EXPECT_EQ(counts.assets_skipped_no_metrics, 0u);
  // One asset skipped once, however many of its links gave nothing.
  const auto none =
      transform_message(message({{"other", 1}}), LinkSet{{expired, empty, full}}, types, counts);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(counts.assets_skipped_no_metrics, 1u);
}

TEST(AssetTypeRegistry, CompilesOnceAndReportsProblemsOncePerType) {
  int reports = 0;
  AssetTypeRegistry types([&](const AssetTypeModel& model) {
    ++reports;
    EXPECT_EQ(model.asset_type_id(), "type-pump-x");
    EXPECT_EQ(model.problems().size(), 1u);
  });
  LinkSet links{{link("pump-x", kBrokenSchema, {{"device.voltage", "asset.power_input"}})}};
  TransformCounts counts;
  for (int i = 0; i < 100; ++i) {
    const auto out = transform_message(message({{"voltage", 12}}), links, types, counts);
    ASSERT_EQ(out.size(), 1u);
    // The broken formula is skipped; the good one and the telemetry still flow (SPEC D9).
    EXPECT_EQ(out[0].metrics, (MetricSet{{"power_input", 12}, {"double_input", 24}}));
  }
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(types.size(), 1u);
  EXPECT_EQ(&types.model("type-pump-x", kBrokenSchema), &types.model("type-pump-x", kBrokenSchema));
}

// After a schema edit, links cached before carry the old text and links loaded since the new
// one: messages alternate between them, and each text is compiled once.
TEST(AssetTypeRegistry, TwoTextsOfOneTypeInTurnCompileOnceEach) {
  int compiled_with_problems = 0;
  AssetTypeRegistry types([&](const AssetTypeModel&) { ++compiled_with_problems; });
  const std::string edited = std::string(kBrokenSchema) + " ";
  for (int i = 0; i < 50; ++i) {
    (void)types.model("type-pump-x", kBrokenSchema);
    (void)types.model("type-pump-x", edited);
  }
  EXPECT_EQ(compiled_with_problems, 2);
  EXPECT_EQ(types.size(), 1u);
  // Only the latest texts stay: one more than that many evicts the oldest, which compiles again.
  for (size_t k = 0; k < AssetTypeRegistry::kTextsPerType - 1; ++k) {
    (void)types.model("type-pump-x", edited + std::string(k + 1, ' '));
  }
  EXPECT_EQ(compiled_with_problems, 1 + static_cast<int>(AssetTypeRegistry::kTextsPerType));
  (void)types.model("type-pump-x", kBrokenSchema);
  EXPECT_EQ(compiled_with_problems, 2 + static_cast<int>(AssetTypeRegistry::kTextsPerType));
}

TEST(AssetTypeRegistry, RecompilesWhenTheSchemaChanges) {
  AssetTypeRegistry types;
  const AssetTypeModel& before = types.model("type-pump", "null");
  EXPECT_EQ(before.formula_count(), 0u);
  const AssetTypeModel& after = types.model("type-pump", kPowerSchema);
  EXPECT_EQ(after.formula_count(), 1u);
  EXPECT_EQ(types.size(), 1u);
}

}  // namespace
}  // namespace atw
