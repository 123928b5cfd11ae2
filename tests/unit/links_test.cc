// A link as entity_edges holds it (SPEC D5, D8): its metadata and validity bounds read from the
// text the link query gives, and the order in which links are merged.

#include "domain/links.h"

#include <gtest/gtest.h>

#include <string>

#include "domain/link_cache_codec.h"

namespace atw {
namespace {

using Mapping = std::vector<std::pair<std::string, std::string>>;

DeviceLink read(std::string_view metadata) {
  DeviceLink link;
  const Status st = read_link_metadata(metadata, link);
  EXPECT_TRUE(st.ok()) << metadata << ": " << st.to_string();
  return link;
}

void expect_unreadable(std::string_view metadata, std::string_view names) {
  DeviceLink link;
  const Status st = read_link_metadata(metadata, link);
  ASSERT_FALSE(st.ok()) << metadata;
  EXPECT_TRUE(st.permanent());
  EXPECT_EQ(st.type(), "link_unreadable");
  EXPECT_NE(st.message().find(names), std::string::npos) << st.message();
}

TEST(LinkMetadata, TheSeedExampleRows) {
  // Pump A's and Pump B's metadata as jsonb writes them.
  const DeviceLink a = read(
      R"({"role": "primary", "metrics_mapping": {"device.voltage": "asset.power_input",)"
      R"( "device.current": "asset.power_current", "device.temperature": "asset.motor_temperature"}})");
  EXPECT_EQ(a.port, std::nullopt);
  EXPECT_EQ(a.role, "primary");
  EXPECT_EQ(a.metrics_mapping, (Mapping{{"device.voltage", "asset.power_input"},
                                        {"device.current", "asset.power_current"},
                                        {"device.temperature", "asset.motor_temperature"}}));
  const DeviceLink b = read(
      R"({"port": 1, "role": "secondary", "metrics_mapping": {"device.temperature": "asset.motor_temperature"}})");
  EXPECT_EQ(b.port, "1");
  EXPECT_EQ(b.metrics_mapping, (Mapping{{"device.temperature", "asset.motor_temperature"}}));
}

TEST(LinkMetadata, APortIsANumberAsJavaScriptWritesItOrAString) {
  EXPECT_EQ(read(R"({"port": 12})").port, "12");
  EXPECT_EQ(read(R"({"port": -3})").port, "-3");
  EXPECT_EQ(read(R"({"port": 18446744073709551615})").port, "18446744073709551615");
  EXPECT_EQ(read(R"({"port": 1.5})").port, "1.5");
  EXPECT_EQ(read(R"({"port": 2.0})").port, "2");  // `port_${port}_` in JavaScript
  EXPECT_EQ(read(R"({"port": "A"})").port, "A");
  EXPECT_EQ(read(R"({"port": "1"})").port, "1");
  EXPECT_EQ(read(R"({"port": null})").port, std::nullopt);
}

TEST(LinkMetadata, NoMetadataOrNoMappingIsALinkWithoutMapping) {
  for (std::string_view m : {"", "null", "{}", R"({"metrics_mapping": null})"}) {
    const DeviceLink l = read(m);
    EXPECT_TRUE(l.metrics_mapping.empty()) << m;
    EXPECT_EQ(l.port, std::nullopt) << m;
  }
}

TEST(LinkMetadata, AMappingKeepsItsOrderAndANullEntryMapsNothing) {
  EXPECT_EQ(read(R"({"metrics_mapping": {"device.z": "asset.z", "device.a": "asset.a"}})")
                .metrics_mapping,
            (Mapping{{"device.z", "asset.z"}, {"device.a", "asset.a"}}));
  EXPECT_EQ(read(R"({"metrics_mapping": {"a": null, "b": "asset.b"}})").metrics_mapping,
            (Mapping{{"b", "asset.b"}}));
  EXPECT_EQ(read(R"({"metrics_mapping": {"k\"\u00e9": "v\n"}})").metrics_mapping,
            (Mapping{{"k\"\xC3\xA9", "v\n"}}));
}

TEST(LinkMetadata, ARoleIsTextAsTheSeedsQueryGivesIt) {
  EXPECT_EQ(read(R"({"role": "primary"})").role, "primary");
  EXPECT_EQ(read(R"({"role": 3})").role, "3");
  EXPECT_EQ(read(R"({"role": {"a": [1, 2]}})").role, R"({"a":[1,2]})");
  EXPECT_EQ(read(R"({"role": null})").role, std::nullopt);
}

TEST(LinkMetadata, WhatCannotBeReadIsNamed) {
  expect_unreadable(R"({"port": {"n": 1}})", "metadata.port: an object");
  expect_unreadable(R"({"port": [1]})", "metadata.port: an array");
  expect_unreadable(R"({"port": true})", "metadata.port: a boolean");
  expect_unreadable(R"({"metrics_mapping": ["device.a", "asset.a"]})",
                    "metadata.metrics_mapping: an array, not an object");
  expect_unreadable(R"({"metrics_mapping": "device.a=asset.a"})",
                    "metadata.metrics_mapping: a string, not an object");
  expect_unreadable(R"({"metrics_mapping": {"device.a": 3}})",
                    "metadata.metrics_mapping[\"device.a\"]: a number, not a string");
  expect_unreadable(R"(["port", 1])", "metadata: an array, not an object");
  expect_unreadable(R"("text")", "metadata: a string, not an object");
  expect_unreadable(R"({"port": 1)", "metadata: not JSON");
}

TEST(LinkBound, EveryFormPostgresWritesReads) {
  std::optional<Timestamp> t;
  ASSERT_TRUE(read_link_bound("valid_from", "2026-01-28 14:30:00+00", t).ok());
  EXPECT_EQ(t, Timestamp::from_seconds(1769610600));
  ASSERT_TRUE(read_link_bound("valid_from", "2026-01-28 16:30:00.5+02", t).ok());
  EXPECT_EQ(t, Timestamp{1769610600500000});
  ASSERT_TRUE(read_link_bound("valid_until", "infinity", t).ok());
  EXPECT_EQ(t, kInfiniteFuture);
  ASSERT_TRUE(read_link_bound("valid_from", "-infinity", t).ok());
  EXPECT_EQ(t, kInfinitePast);
  ASSERT_TRUE(read_link_bound("valid_from", "", t).ok());  // NULL
  EXPECT_EQ(t, std::nullopt);
  ASSERT_TRUE(read_link_bound("valid_until", "2026-01-28", t).ok());  // a date column
  EXPECT_EQ(t, Timestamp::from_seconds(1769558400));
  const Status st = read_link_bound("valid_until", "next tuesday", t);
  EXPECT_EQ(st.type(), "link_unreadable");
  EXPECT_NE(st.message().find("valid_until"), std::string::npos);
}

TEST(LinkValidity, InfinitiesAreOpenBoundsWhereTheyStand) {
  const Timestamp t = Timestamp::from_seconds(1769610600);
  DeviceLink l;
  l.valid_from = kInfinitePast;
  l.valid_until = kInfiniteFuture;
  EXPECT_TRUE(l.valid_at(t));
  EXPECT_TRUE(l.valid_at(Timestamp{INT64_MIN + 1}));
  l.valid_from = t;
  EXPECT_TRUE(l.valid_at(t));
  EXPECT_FALSE(l.valid_at(Timestamp{t.micros - 1}));
  // As PostgreSQL compares them: a link from infinity, or until -infinity, serves nothing.
  l.valid_from = kInfiniteFuture;
  l.valid_until.reset();
  EXPECT_FALSE(l.valid_at(t));
  l.valid_from.reset();
  l.valid_until = kInfinitePast;
  EXPECT_FALSE(l.valid_at(t));
}

TEST(LinkOrder, ByLinkIdBytes) {
  LinkSet set;
  for (const char* id : {"link-b", "link-a", "Link-z", "link-a"}) {
    DeviceLink l;
    l.link_id = id;
    l.asset_id = std::string("asset-") + id;
    set.links.push_back(l);
  }
  set.links[3].asset_id = "second link-a";
  order_by_link_id(set);
  std::vector<std::string> ids;
  for (const auto& l : set.links) ids.push_back(l.link_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"Link-z", "link-a", "link-a", "link-b"}));
  EXPECT_EQ(set.links[1].asset_id, "asset-link-a");  // stable
}

TEST(MinifySchemaText, JsonWithoutInsignificantSpaceAndAnythingElseAsItIs) {
  EXPECT_EQ(minify_schema_text(R"({"derived_metrics": [{"name": "p", "formula": "a * b"}]})"),
            R"({"derived_metrics":[{"name":"p","formula":"a * b"}]})");
  EXPECT_EQ(minify_schema_text("null"), "null");
  EXPECT_EQ(minify_schema_text("{not json"), "{not json");
}

}  // namespace
}  // namespace atw
