#include "domain/links.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace atw {
namespace {

using Mapping = std::vector<std::pair<std::string, std::string>>;

DeviceLink full_link() {
  DeviceLink l;
  l.link_id = "link-uuid-2";
  l.asset_id = "asset-pump-b";
  l.port = "1";
  l.role = "secondary";
  // Deliberately not alphabetical: the order must survive.
  l.metrics_mapping = {{"device.voltage", "asset.power_input"},
                       {"device.current", "asset.power_current"},
                       {"device.a.b", "asset.x\"y"}};
  l.asset_name = "Pump B \xC3\xA9";
  l.asset_type_id = "type-pump";
  l.telemetry_schema =
      R"({"derived_metrics":[{"name":"power_consumption","formula":"power_input * power_current","unit":"watts"}],"a":1.5})";
  l.valid_from = Timestamp{1769610600123456};  // with microseconds
  l.valid_until = Timestamp::from_seconds(1800000000);
  return l;
}

DeviceLink bare_link() {
  DeviceLink l;
  l.link_id = "link-uuid-1";
  l.asset_id = "asset-pump-a";
  l.asset_name = "Pump A";
  l.asset_type_id = "type-pump";
  l.telemetry_schema = "null";
  return l;
}

void expect_corrupt(std::string_view json) {
  const Result<LinkSet> r = parse_link_set(json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_TRUE(r.status().permanent()) << json;
  EXPECT_EQ(r.status().type(), "cache_corrupt") << json;
}

TEST(LinkCacheKey, CarriesTenantAndDevice) {
  EXPECT_EQ(link_cache_key({"org-xyz-789", "device-abc-123"}),
            "device_asset_links:org-xyz-789:device-abc-123");
}

TEST(LinkSetJson, RoundTripsExactly) {
  const LinkSet set{{full_link(), bare_link()}};
  const std::string json = serialize_link_set(set);
  const Result<LinkSet> back = parse_link_set(json);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, set);
  EXPECT_EQ(back->links[0].metrics_mapping, full_link().metrics_mapping);
  EXPECT_EQ(back->links[0].valid_from, full_link().valid_from);
}

TEST(LinkSetJson, EmptySetRoundTrips) {
  EXPECT_EQ(serialize_link_set({}), "[]");
  const Result<LinkSet> back = parse_link_set("[]");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->links.empty());
}

TEST(LinkSetJson, SerializedShape) {
  DeviceLink l = bare_link();
  l.metrics_mapping = {{"device.t", "asset.t"}};
  l.valid_until = Timestamp::from_seconds(1769610600);
  l.telemetry_schema = "";  // none: written as null
  EXPECT_EQ(serialize_link_set({{l}}),
            R"([{"link_id":"link-uuid-1","asset_id":"asset-pump-a","port":null,"role":null,)"
            R"("metrics_mapping":{"device.t":"asset.t"},"asset_name":"Pump A",)"
            R"("asset_type_id":"type-pump","telemetry_schema":null,"valid_from":null,)"
            R"("valid_until":"2026-01-28T14:30:00Z"}])");
}

// The seed's example query result, with the validity window the cached form adds.
constexpr std::string_view kSeedRows = R"([
  {
    "link_id": "link-uuid-1",
    "asset_id": "asset-pump-a",
    "port": null,
    "role": "primary",
    "metrics_mapping": {
      "device.voltage": "asset.power_input",
      "device.current": "asset.power_current",
      "device.temperature": "asset.motor_temperature"
    },
    "asset_name": "Pump A",
    "asset_type_id": "type-pump",
    "telemetry_schema": {
      "derived_metrics": [
        {
          "name": "power_consumption",
          "formula": "power_input * power_current",
          "unit": "watts"
        }
      ]
    },
    "valid_from": null,
    "valid_until": null
  },
  {
    "link_id": "link-uuid-2",
    "asset_id": "asset-pump-b",
    "port": 1,
    "role": "secondary",
    "metrics_mapping": {
      "device.temperature": "asset.motor_temperature"
    },
    "asset_name": "Pump B",
    "asset_type_id": "type-pump",
    "telemetry_schema": null,
    "valid_from": "2026-01-01T00:00:00+02:00",
    "valid_until": null
  }
])";

TEST(LinkSetJson, ParsesSeedExampleRows) {
  const Result<LinkSet> r = parse_link_set(kSeedRows);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->links.size(), 2u);
  const DeviceLink& a = r->links[0];
  EXPECT_EQ(a.link_id, "link-uuid-1");
  EXPECT_EQ(a.asset_id, "asset-pump-a");
  EXPECT_EQ(a.port, std::nullopt);
  EXPECT_EQ(a.role, "primary");
  EXPECT_EQ(a.metrics_mapping, (Mapping{{"device.voltage", "asset.power_input"},
                                        {"device.current", "asset.power_current"},
                                        {"device.temperature", "asset.motor_temperature"}}));
  EXPECT_EQ(a.asset_name, "Pump A");
  EXPECT_EQ(a.asset_type_id, "type-pump");
  // Kept as JSON text, compacted, keys in their order.
  EXPECT_EQ(a.telemetry_schema,
            R"({"derived_metrics":[{"name":"power_consumption","formula":"power_input * )"
            R"(power_current","unit":"watts"}]})");
  EXPECT_FALSE(a.valid_from);
  EXPECT_FALSE(a.valid_until);

  const DeviceLink& b = r->links[1];
  EXPECT_EQ(b.port, "1");  // a number in the seed, text in the row type
  EXPECT_EQ(b.role, "secondary");
  EXPECT_EQ(b.metrics_mapping, (Mapping{{"device.temperature", "asset.motor_temperature"}}));
  EXPECT_EQ(b.telemetry_schema, "null");
  EXPECT_EQ(b.valid_from, Timestamp::from_seconds(1767218400));  // 2025-12-31T22:00:00Z
  EXPECT_TRUE(b.valid_at(Timestamp::from_seconds(1767218400)));
  EXPECT_FALSE(b.valid_at(Timestamp::from_seconds(1767218399)));
}

TEST(LinkSetJson, SeedRowsWithoutValidityWindowAreRejected) {
  // What the seed itself caches: no window, so validity at measurement time is unknown.
  nlohmann::ordered_json rows = nlohmann::ordered_json::parse(kSeedRows);
  for (auto& row : rows) {
    row.erase("valid_from");
    row.erase("valid_until");
  }
  expect_corrupt(rows.dump());
}

TEST(LinkSetJson, NumericPortsBecomeTheirText) {
  auto with_port = [](std::string_view port) {
    std::string json = serialize_link_set({{bare_link()}});
    json.replace(json.find(R"("port":null)"), 11, std::string(R"("port":)") + std::string(port));
    return parse_link_set(json);
  };
  EXPECT_EQ(with_port("12")->links[0].port, "12");
  EXPECT_EQ(with_port("-3")->links[0].port, "-3");
  EXPECT_EQ(with_port("18446744073709551615")->links[0].port, "18446744073709551615");
  EXPECT_EQ(with_port("1.5")->links[0].port, "1.5");
  EXPECT_EQ(with_port("2.0")->links[0].port, "2");  // as JavaScript's `port_${port}_` prints it
  EXPECT_EQ(with_port(R"("A")")->links[0].port, "A");
  EXPECT_FALSE(with_port("true").ok());
  EXPECT_FALSE(with_port("[1]").ok());
}

TEST(LinkSetJson, UnknownFieldsAreIgnored) {
  std::string json = serialize_link_set({{bare_link()}});
  json.insert(1 + json.find('{'), R"("future_field":{"x":[1,2]},)");
  const Result<LinkSet> r = parse_link_set(json);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->links[0], bare_link());
}

TEST(LinkSetJson, CorruptInputsAreCacheCorrupt) {
  const std::string good = serialize_link_set({{full_link()}});
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    return s;
  };
  expect_corrupt("");
  expect_corrupt("not json");
  expect_corrupt(good.substr(0, good.size() - 1));  // truncated
  expect_corrupt("{}");
  expect_corrupt("null");
  expect_corrupt("[1]");
  expect_corrupt("[{}]");
  expect_corrupt(replaced(R"("link_id":"link-uuid-2",)", ""));               // missing field
  expect_corrupt(replaced(R"("link_id":"link-uuid-2")", R"("link_id":7)"));  // wrong type
  expect_corrupt(replaced(R"("asset_name":"Pump B)", R"("asset_name":null,"x":"Pump B)"));
  expect_corrupt(replaced(R"("role":"secondary")", R"("role":["secondary"])"));
  expect_corrupt(replaced(R"("asset.power_input")", "3"));  // mapping value not a string
  expect_corrupt(replaced(R"("metrics_mapping":{)", R"("metrics_mapping":[],"y":{)"));
  expect_corrupt(
      replaced(R"("valid_from":"2026)", R"("valid_from":"2026-02-30T00:00:00Z","v":"2026)"));
  expect_corrupt(
      replaced(R"("valid_until":"2027-01-15T08:00:00Z")", R"("valid_until":1800000000)"));
  expect_corrupt(replaced(R"("link_id":)", R"("link_id":"dup","link_id":)"));  // duplicate field
}

TEST(LinkSetJson, SchemaTextIsKeptAsJsonNotString) {
  DeviceLink l = bare_link();
  l.telemetry_schema = R"({"health_rules": [ {"metric": "t", "bands": []} ], "z": 1})";
  const Result<LinkSet> r = parse_link_set(serialize_link_set({{l}}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->links[0].telemetry_schema, R"({"health_rules":[{"metric":"t","bands":[]}],"z":1})");
}

// A schema loaded from PostgreSQL (jsonb's text, with spaces) and the same schema read back from
// Redis are one text, so the worker compiles the asset type once, not at every alternation.
TEST(MinifySchemaText, GivesTheTextTheRedisTierGives) {
  const std::string from_postgres =
      R"({"derived_metrics": [{"name": "power_consumption", "unit": "watts", "formula": "power_input * power_current"}]})";
  DeviceLink l = bare_link();
  l.telemetry_schema = from_postgres;
  const Result<LinkSet> from_redis = parse_link_set(serialize_link_set({{l}}));
  ASSERT_TRUE(from_redis.ok()) << from_redis.status().to_string();
  EXPECT_EQ(minify_schema_text(from_postgres), from_redis->links[0].telemetry_schema);
  EXPECT_EQ(
      minify_schema_text(from_postgres),
      R"({"derived_metrics":[{"name":"power_consumption","unit":"watts","formula":"power_input * power_current"}]})");
  EXPECT_EQ(minify_schema_text("null"), "null");
  EXPECT_EQ(minify_schema_text("{not json"), "{not json");
}

TEST(ParseMetricsMapping, KeepsStringEntriesInOrder) {
  EXPECT_EQ(parse_metrics_mapping(R"({"device.z": "asset.z", "device.a": "asset.a"})"),
            (Mapping{{"device.z", "asset.z"}, {"device.a", "asset.a"}}));
  EXPECT_EQ(parse_metrics_mapping(R"({"a": 1, "b": "asset.b", "c": null, "d": {"x": "y"}})"),
            (Mapping{{"b", "asset.b"}}));
  EXPECT_EQ(parse_metrics_mapping(R"({"k\"\u00e9": "v\n"})"), (Mapping{{"k\"\xC3\xA9", "v\n"}}));
}

TEST(ParseMetricsMapping, AnythingElseIsEmpty) {
  EXPECT_TRUE(parse_metrics_mapping("").empty());
  EXPECT_TRUE(parse_metrics_mapping("null").empty());
  EXPECT_TRUE(parse_metrics_mapping(R"(["a","b"])").empty());
  EXPECT_TRUE(parse_metrics_mapping(R"("device.a")").empty());
  EXPECT_TRUE(parse_metrics_mapping(R"({"a": "b")").empty());
  EXPECT_TRUE(parse_metrics_mapping("{}").empty());
}

}  // namespace
}  // namespace atw
