// The shared link cache's key and value (SPEC D6): keys no two (organization, device) pairs
// share, values that say whose they are, and every link field read back exactly.

#include "domain/link_cache_codec.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace atw {
namespace {

const DeviceKey kKey{"org-xyz-789", "device-abc-123"};

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

void expect_error(std::string_view json, std::string_view type, const DeviceKey& key = kKey) {
  const Result<LinkSet> r = parse_link_set(json, key);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.status().type(), type) << json;
}

TEST(LinkCacheKey, CarriesTenantAndDevice) {
  EXPECT_EQ(link_cache_key(kKey), "device_asset_links:org-xyz-789:device-abc-123");
}

TEST(LinkCacheKey, NoTwoPairsShareAKey) {
  // Tenant "a:b" with device "c" and tenant "a" with device "b:c" joined with ':' alike.
  EXPECT_EQ(link_cache_key({"a:b", "c"}), "device_asset_links:a%3Ab:c");
  EXPECT_EQ(link_cache_key({"a", "b:c"}), "device_asset_links:a:b%3Ac");
  EXPECT_EQ(link_cache_key({"100%", "x"}), "device_asset_links:100%25:x");
  std::set<std::string> keys;
  const char* parts[] = {"", "a", ":", "%", "%3A", "a:b", "b:c", "a%3Ab", "%25", "::"};
  for (const char* org : parts) {
    for (const char* dev : parts) keys.insert(link_cache_key({org, dev}));
  }
  EXPECT_EQ(keys.size(), std::size(parts) * std::size(parts));
}

TEST(LinkSetJson, RoundTripsExactly) {
  const LinkSet set{{bare_link(), full_link()}};
  const Result<LinkSet> back = parse_link_set(serialize_link_set(kKey, set), kKey);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, set);
}

TEST(LinkSetJson, EveryInstantRoundTrips) {
  DeviceLink l = bare_link();
  for (auto [from, until] :
       {std::pair{kInfinitePast, kInfiniteFuture},
        std::pair{Timestamp{-210866803200000000}, Timestamp{INT64_MAX - 1}},
        std::pair{Timestamp{-62167219200000000}, Timestamp{253402300800000000}}}) {
    l.valid_from = from;
    l.valid_until = until;
    const Result<LinkSet> back = parse_link_set(serialize_link_set(kKey, {{l}}), kKey);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->links[0], l) << serialize_link_set(kKey, {{l}});
  }
}

TEST(LinkSetJson, EmptySetRoundTrips) {
  const std::string json = serialize_link_set(kKey, {});
  EXPECT_EQ(json, R"({"organizationId":"org-xyz-789","deviceId":"device-abc-123","links":[]})");
  const Result<LinkSet> back = parse_link_set(json, kKey);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->links.empty());
}

TEST(LinkSetJson, SerializedShape) {
  DeviceLink l = bare_link();
  l.metrics_mapping = {{"device.t", "asset.t"}};
  l.valid_until = Timestamp::from_seconds(1769610600);
  l.valid_from = kInfinitePast;
  l.telemetry_schema = "";  // none: written as null
  EXPECT_EQ(serialize_link_set(kKey, {{l}}),
            R"({"organizationId":"org-xyz-789","deviceId":"device-abc-123","links":[)"
            R"({"link_id":"link-uuid-1","asset_id":"asset-pump-a","port":null,"role":null,)"
            R"("metrics_mapping":{"device.t":"asset.t"},"asset_name":"Pump A",)"
            R"("asset_type_id":"type-pump","telemetry_schema":null,"valid_from":"-infinity",)"
            R"("valid_until":"2026-01-28T14:30:00Z"}]})");
}

TEST(LinkSetJson, AValueOfAnotherTenantOrDeviceIsAMismatch) {
  const std::string json = serialize_link_set({"a", "b:c"}, {{bare_link()}});
  expect_error(json, "cache_mismatch", {"a:b", "c"});
  expect_error(json, "cache_mismatch", {"a", "b:d"});
  EXPECT_TRUE(parse_link_set(json, {"a", "b:c"}).ok());
}

TEST(LinkSetJson, LinksComeBackInLinkIdOrder) {
  const std::string json = serialize_link_set(kKey, {{full_link(), bare_link()}});
  const Result<LinkSet> back = parse_link_set(json, kKey);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->links[0].link_id, "link-uuid-1");
  EXPECT_EQ(back->links[1].link_id, "link-uuid-2");
}

TEST(LinkSetJson, UnknownFieldsAreIgnored) {
  std::string json = serialize_link_set(kKey, {{bare_link()}});
  json.insert(json.find(R"("link_id")"), R"("future_field":{"x":[1,2]},)");
  json.insert(1, R"("version":9,)");
  const Result<LinkSet> r = parse_link_set(json, kKey);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->links[0], bare_link());
}

TEST(LinkSetJson, CorruptInputsAreCacheCorrupt) {
  const std::string good = serialize_link_set(kKey, {{full_link()}});
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    return s;
  };
  for (const std::string& bad : {
           std::string(""), std::string("not json"), good.substr(0, good.size() - 1),
           std::string("{}"), std::string("null"), std::string("[]"),
           // The earlier form, an array of rows that names no tenant: a miss, then rewritten.
           std::string(R"([{"link_id":"l","asset_id":"a"}])"),
           replaced(R"("links":[)", R"("links":{"x":[)"),
           replaced(R"("organizationId":"org-xyz-789")", R"("organizationId":7)"),
           replaced(R"("link_id":"link-uuid-2",)", ""),               // missing field
           replaced(R"("link_id":"link-uuid-2")", R"("link_id":7)"),  // wrong type
           replaced(R"("role":"secondary")", R"("role":["secondary"])"),
           replaced(R"("port":"1")", R"("port":1)"),  // the cache holds the port's text
           replaced(R"("asset.power_input")", "3"),   // mapping value not a string
           replaced(R"("metrics_mapping":{)", R"("metrics_mapping":[],"y":{)"),
           replaced(R"("valid_from":"2026)", R"("valid_from":"2026-02-30T00:00:00Z","v":"2026)"),
           replaced(R"("valid_until":"2027-01-15T08:00:00Z")", R"("valid_until":1800000000)"),
           replaced(R"("link_id":)", R"("link_id":"dup","link_id":)"),  // duplicate field
       }) {
    expect_error(bad, "cache_corrupt");
  }
}

TEST(LinkSetJson, SchemaTextIsKeptAsJsonNotString) {
  DeviceLink l = bare_link();
  l.telemetry_schema = R"({"health_rules": [ {"metric": "t", "bands": []} ], "z": 1})";
  const Result<LinkSet> r = parse_link_set(serialize_link_set(kKey, {{l}}), kKey);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->links[0].telemetry_schema, R"({"health_rules":[{"metric":"t","bands":[]}],"z":1})");
}

// A schema loaded from PostgreSQL (jsonb's text, with spaces) and the same schema read back from
// Redis are one text, so the worker compiles the asset type once, not at every alternation.
TEST(LinkSetJson, ASchemaReadsBackAsTheStoreGivesIt) {
  const std::string from_postgres =
      R"({"derived_metrics": [{"name": "power_consumption", "unit": "watts", "formula": "power_input * power_current"}]})";
  DeviceLink l = bare_link();
  l.telemetry_schema = from_postgres;
  const Result<LinkSet> from_redis = parse_link_set(serialize_link_set(kKey, {{l}}), kKey);
  ASSERT_TRUE(from_redis.ok()) << from_redis.status().to_string();
  EXPECT_EQ(minify_schema_text(from_postgres), from_redis->links[0].telemetry_schema);
}

}  // namespace
}  // namespace atw
