#include "domain/mapping.h"

#include <gtest/gtest.h>

namespace atw {
namespace {

DeviceLink link_with(std::vector<std::pair<std::string, std::string>> mapping,
                     std::optional<std::string> port = std::nullopt) {
  DeviceLink l;
  l.link_id = "link";
  l.asset_id = "asset";
  l.metrics_mapping = std::move(mapping);
  l.port = std::move(port);
  return l;
}

// The seed's message (step 2).
const MetricSet kSeedMetrics = {
    {"temperature", 25.5}, {"voltage", 12.3}, {"current", 2.5}, {"pressure", 101.3}};

TEST(MapDeviceMetrics, SeedPumpA) {
  const DeviceLink pump_a = link_with({{"device.voltage", "asset.power_input"},
                                       {"device.current", "asset.power_current"},
                                       {"device.temperature", "asset.motor_temperature"}});
  const MetricSet expected = {
      {"power_input", 12.3}, {"power_current", 2.5}, {"motor_temperature", 25.5}};
  const MetricSet got = map_device_metrics(kSeedMetrics, pump_a);
  EXPECT_EQ(got, expected);  // values and the mapping's order
}

TEST(MapDeviceMetrics, SeedPumpBWithPort) {
  const DeviceLink pump_b =
      link_with({{"device.temperature", "asset.motor_temperature"}}, std::string("1"));
  EXPECT_EQ(map_device_metrics(kSeedMetrics, pump_b), (MetricSet{{"motor_temperature", 25.5}}));

  // The seed's RTU comment: { "port_1_temp": 25.5, "port_2_temp": 30.2 } gives port 1's only.
  const MetricSet rtu = {{"port_1_temp", 25.5}, {"port_2_temp", 30.2}, {"temperature", 20}};
  EXPECT_EQ(map_device_metrics(rtu, pump_b),
            (MetricSet{{"motor_temperature", 20}, {"temp", 25.5}}));
}

TEST(MapDeviceMetrics, DottedNamesKeepEverythingAfterTheFirstPrefix) {
  const MetricSet device = {{"a.b", 1}, {"a", 2}, {"device.x", 3}};
  const DeviceLink l =
      link_with({{"device.a.b", "asset.c.d"}, {"device.device.x", "asset.asset.y"}});
  EXPECT_EQ(map_device_metrics(device, l), (MetricSet{{"c.d", 1}, {"asset.y", 3}}));
}

TEST(MapDeviceMetrics, NamesWithoutPrefixAreUsedWhole) {
  const MetricSet device = {{"voltage", 12.3}, {"dev.x", 4}};
  const DeviceLink l = link_with({{"voltage", "power"}, {"dev.x", "asset.x"}});
  EXPECT_EQ(map_device_metrics(device, l), (MetricSet{{"power", 12.3}, {"x", 4}}));
}

TEST(MapDeviceMetrics, MissingDeviceMetricIsSkipped) {
  const DeviceLink l =
      link_with({{"device.vibration", "asset.vibration"}, {"device.voltage", "asset.power_input"}});
  EXPECT_EQ(map_device_metrics(kSeedMetrics, l), (MetricSet{{"power_input", 12.3}}));
}

TEST(MapDeviceMetrics, NoMappingNoPortGivesNothing) {
  EXPECT_TRUE(map_device_metrics(kSeedMetrics, link_with({})).empty());
  EXPECT_TRUE(map_device_metrics({}, link_with({{"device.a", "asset.a"}}, "1")).empty());
}

TEST(MapDeviceMetrics, PortMetricsOverwriteMappedValuesInPlace) {
  const MetricSet device = {
      {"temperature", 25.5}, {"port_1_motor_temperature", 40}, {"port_1_rpm", 900}};
  const DeviceLink l = link_with(
      {{"device.temperature", "asset.motor_temperature"}, {"device.temperature", "asset.ambient"}},
      std::string("1"));
  EXPECT_EQ(map_device_metrics(device, l),
            (MetricSet{{"motor_temperature", 40}, {"ambient", 25.5}, {"rpm", 900}}));
}

TEST(MapDeviceMetrics, PortPrefixMatchesOnlyItsOwnPort) {
  const MetricSet device = {{"port_10_x", 10}, {"port_1x", 99}, {"port_1_x", 1},
                            {"port_1_", 5},    {"Port_1_y", 7}, {"aport_1_z", 8}};
  EXPECT_EQ(map_device_metrics(device, link_with({}, std::string("1"))), (MetricSet{{"x", 1}}));
  EXPECT_EQ(map_device_metrics(device, link_with({}, std::string("10"))), (MetricSet{{"x", 10}}));
  EXPECT_TRUE(map_device_metrics(device, link_with({}, std::string("2"))).empty());
}

TEST(MapDeviceMetrics, PortMetricsKeepDeviceOrderAndDottedRest) {
  const MetricSet device = {{"port_A_b", 2}, {"port_A_a.c", 1}};
  EXPECT_EQ(map_device_metrics(device, link_with({}, std::string("A"))),
            (MetricSet{{"b", 2}, {"a.c", 1}}));
}

TEST(MapDeviceMetrics, EmptyAssetNameIsNeverWritten) {
  const DeviceLink l = link_with({{"device.voltage", "asset."}, {"device.current", ""}});
  EXPECT_TRUE(map_device_metrics(kSeedMetrics, l).empty());
}

}  // namespace
}  // namespace atw
