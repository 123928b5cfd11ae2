// Real plants: links written the way people write them, tenants and devices that reuse
// ids, numbers past 64 bits, an output stream that refuses one event, every metric series from
// the start. The real worker against the real servers; assertions on rows, scores, events, the
// DLQ and /metrics.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include "adapters/redis/redis_link_cache.h"
#include "common/error_types.h"
#include "domain/link_cache_codec.h"
#include "support/servers.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// A link from `device` of `org` to `asset` with `metadata`, valid in [from, until) (SQL text).
void add_link(Scenario& s, const std::string& id, const std::string& org, const std::string& device,
              const std::string& asset, const std::string& metadata,
              std::optional<std::string> from = {}, std::optional<std::string> until = {}) {
  s.sql().exec(
      "INSERT INTO entity_edges (id, tenant_id, source_entity_id, source_entity_type,"
      " target_entity_id, target_entity_type, relationship_type, metadata, valid_from,"
      " valid_until) VALUES ($1, $2, $3, 'Device', $4, 'Asset', 'MONITORED_BY', $5::jsonb,"
      " $6::timestamptz, $7::timestamptz)",
      {id, org, device, asset, metadata, from, until});
}

void add_asset(Scenario& s, const Scenario::Plant& p, const std::string& asset) {
  s.sql().exec(
      "INSERT INTO assets (id, tenant_id, name, asset_type_id) VALUES ($1, $2, 'Pump', $3)",
      {asset, p.org, p.type});
}

TEST(RealPlants, LinksWithInfiniteBoundsServeTheirDevice) {
  Scenario s;
  auto plant = s.load_example_plant();
  s.sql().exec(
      "UPDATE entity_edges SET valid_from = '-infinity', valid_until = 'infinity'"
      " WHERE target_entity_id = $1",
      {plant.pump_a});
  s.sql().exec("UPDATE entity_edges SET valid_until = 'infinity' WHERE target_entity_id = $1",
               {plant.pump_b});
  // A link that starts at infinity serves nothing, as PostgreSQL's own comparison says.
  const std::string pump_c = s.name("pump-c");
  add_asset(s, plant, pump_c);
  add_link(s, s.name("link-c"), plant.org, plant.device, pump_c,
           R"({"metrics_mapping": {"device.voltage": "asset.v"}})", "infinity");
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("m1")));
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  EXPECT_EQ(s.history({plant.pump_a, plant.pump_b}).size(), 5u);
  EXPECT_EQ(s.events().size(), 2u);
  EXPECT_TRUE(s.events_of(pump_c).empty());
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);

  // And from the Redis tier, where the infinite bounds are cached: a fresh worker reads them.
  EXPECT_EQ(worker->stop(SIGTERM), 0);
  auto second = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("m2"), "2026-01-28T15:30:00Z"));
  ASSERT_TRUE(s.wait_all_acked()) << second->log_path();
  EXPECT_EQ(s.events().size(), 4u);
  EXPECT_EQ(metric(second->get("/metrics"),
                   "asset_worker_cache_lookups_total{cache=\"device_links\",tier=\"redis\","
                   "result=\"hit\"}"),
            1);
}

TEST(RealPlants, AnUnreadableLinkIsSkippedCountedAndNamedAndTheRestFlows) {
  Scenario s;
  auto plant = s.load_example_plant();
  const std::string pump_c = s.name("pump-c"), pump_d = s.name("pump-d");
  add_asset(s, plant, pump_c);
  add_asset(s, plant, pump_d);
  const std::string bad_port = s.name("link-bad-port"), bad_mapping = s.name("link-bad-mapping");
  add_link(s, bad_port, plant.org, plant.device, pump_c,
           R"({"port": {"n": 1}, "metrics_mapping": {"device.voltage": "asset.v"}})");
  add_link(s, bad_mapping, plant.org, plant.device, pump_d,
           R"({"metrics_mapping": ["device.voltage", "asset.v"]})");
  auto worker = s.start_worker();
  for (int i = 0; i < 3; ++i) {
    s.publish_one(Scenario::message(plant, s.name(fmt::format("m{}", i)),
                                    fmt::format("2026-01-28T14:3{}:00Z", i)));
  }
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  EXPECT_EQ(s.events().size(), 6u);
  EXPECT_TRUE(s.events_of(pump_c).empty());
  EXPECT_TRUE(s.events_of(pump_d).empty());
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);
  EXPECT_GE(metric(worker->get("/metrics"), "asset_worker_errors_total{type=\"link_unreadable\"}"),
            2);
  const std::string log = read_file(worker->log_path());
  EXPECT_NE(log.find("\"linkId\":\"" + bad_port + "\""), std::string::npos) << log;
  EXPECT_NE(log.find("metadata.port: an object"), std::string::npos) << log;
  EXPECT_NE(log.find("\"linkId\":\"" + bad_mapping + "\""), std::string::npos) << log;
}

TEST(RealPlants, SeveralLinksToOneAssetGiveOneSetOfRowsOneScoreAndOneEvent) {
  Scenario s;
  auto plant = s.load_example_plant();
  // Pump A re-linked with an overlapping window, through port 2, with a mapping of its own: its
  // id sorts after the first link's, so the first keeps the metrics both give.
  add_link(s, s.name(plant.org + "-" + plant.device + "-link") + "-3", plant.org, plant.device,
           plant.pump_a,
           R"({"port": 2, "metrics_mapping": {"device.pressure": "asset.pressure",)"
           R"( "device.voltage": "asset.motor_temperature"}})",
           "2026-01-01T00:00:00Z");
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("m1"), "2026-01-28T14:30:00Z",
                                  {{"temperature", 85},
                                   {"voltage", 12},
                                   {"current", 2},
                                   {"pressure", 101.3},
                                   {"port_2_flow", 7}}));
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  const auto a = s.events_of(plant.pump_a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0]["metrics"], (json{{"power_input", 12},
                                   {"power_current", 2},
                                   {"motor_temperature", 85},
                                   {"pressure", 101.3},
                                   {"flow", 7},
                                   {"power_consumption", 24}}));
  EXPECT_EQ(a[0]["healthScore"], 70);
  EXPECT_EQ(s.history({plant.pump_a}).size(), 6u) << "one set of rows";
  EXPECT_EQ(s.score(plant.pump_a), "70");
  EXPECT_EQ(s.events().size(), 2u);
}

TEST(RealPlants, NumbersPast64BitsOrADoubleKeepTheMessage) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  const std::string payload =
      fmt::format(R"({{"messageId": "{}", "deviceId": "{}", "organizationId": "{}",)"
                  R"( "timestamp": "2026-01-28T14:30:00.123456789Z", "metrics": {{"temperature":)"
                  R"( 18446744073709551616, "voltage": 1e309, "current": 2}}}})",
                  s.name("m1"), plant.device, plant.org);
  s.publish(std::vector<std::string>{payload});
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  EXPECT_TRUE(s.dead_letters().empty());
  const auto a = s.events_of(plant.pump_a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0]["metrics"],
            (json{{"power_current", 2}, {"motor_temperature", 1.8446744073709552e19}}));
  EXPECT_EQ(a[0]["timestamp"], "2026-01-28T14:30:00.123456Z");
  EXPECT_GE(metric(worker->get("/metrics"), "asset_worker_metrics_skipped_total"), 1);
}

// SPEC D6: tenant "a:b" with device "c" and tenant "a" with device "b:c" are two pairs, with two
// cache keys; each message lands on its own tenant's assets.
TEST(RealPlants, TenantsAndDevicesWithColonsNeverShareCachedLinks) {
  Scenario s;
  const Scenario::Plant first{s.name("o") + ":x", s.name("d"), s.name("first-a"), s.name("first-b"),
                              s.name("type-pump")};
  const Scenario::Plant second{s.name("o"), "x:" + s.name("d"), s.name("second-a"),
                               s.name("second-b"), s.name("type-pump")};
  s.load_plant(first);
  s.load_plant(second);
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(first, s.name("m1"), "2026-01-28T14:30:00Z",
                                  {{"temperature", 90}, {"voltage", 12}, {"current", 2}}));
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  // A fresh worker has only Redis to go by: the second pair must not find the first's links.
  EXPECT_EQ(worker->stop(SIGTERM), 0);
  auto fresh = s.start_worker();
  s.publish_one(Scenario::message(second, s.name("m1"), "2026-01-28T14:30:00Z",
                                  {{"temperature", 20}, {"voltage", 12}, {"current", 2}}));
  ASSERT_TRUE(s.wait_all_acked()) << fresh->log_path();
  EXPECT_EQ(s.score(first.pump_a), "70");
  EXPECT_EQ(s.score(second.pump_a), "100");
  ASSERT_EQ(s.events_of(second.pump_a).size(), 1u);
  EXPECT_EQ(s.events_of(second.pump_a)[0]["organizationId"], second.org);
  EXPECT_EQ(s.events_of(first.pump_a).size(), 1u);
}

struct RedisReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
struct RedisContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};

// SPEC D6: a cached value names its tenant and device and is checked on read.
TEST(RealPlants, ACachedValueOfAnotherTenantIsAMiss) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto other = s.load_example_plant("other-org", "dev");
  // Under this plant's key, the other tenant's links (as a collision once made it).
  auto address = parse_redis_url(server_urls().redis);
  ASSERT_TRUE(address.ok());
  std::unique_ptr<redisContext, RedisContextDeleter> ctx(
      redisConnect(address->host.c_str(), address->port));
  ASSERT_TRUE(ctx && !ctx->err);
  if (address->db) {
    std::unique_ptr<redisReply, RedisReplyDeleter>(
        static_cast<redisReply*>(redisCommand(ctx.get(), "SELECT %d", address->db)));
  }
  DeviceLink wrong;
  wrong.link_id = "wrong";
  wrong.asset_id = other.pump_a;
  wrong.asset_name = "Pump A";
  wrong.asset_type_id = other.type;
  wrong.telemetry_schema = "null";
  wrong.metrics_mapping = {{"device.temperature", "asset.motor_temperature"}};
  const std::string key = link_cache_key({plant.org, plant.device});
  const std::string value = serialize_link_set({other.org, other.device}, {{wrong}});
  std::unique_ptr<redisReply, RedisReplyDeleter>(static_cast<redisReply*>(redisCommand(
      ctx.get(), "SET %b %b EX 300", key.data(), key.size(), value.data(), value.size())));

  auto worker = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("m1")));
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  EXPECT_EQ(s.events_of(plant.pump_a).size(), 1u);
  EXPECT_TRUE(s.events_of(other.pump_a).empty());
  EXPECT_EQ(s.history({other.pump_a}).size(), 0u);
  EXPECT_EQ(metric(worker->get("/metrics"), "asset_worker_errors_total{type=\"cache_mismatch\"}"),
            1);
}

// SPEC D11: a message is (organizationId, deviceId, messageId); a gateway's devices counting from
// 1, or another tenant, reuse messageIds without losing data. A true redelivery still writes once.
TEST(RealPlants, MessageIdsReusedByAnotherTenantOrDeviceAreMessagesOfTheirOwn) {
  Scenario s;
  auto plant = s.load_example_plant("org", "dev-1");
  Scenario::Plant sibling = plant;  // another device of the same tenant, on its own assets
  sibling.device = s.name("dev-2");
  sibling.pump_a = s.name("org-sibling-a");
  sibling.pump_b = s.name("org-sibling-b");
  s.load_plant(sibling);
  auto stranger = s.load_example_plant("stranger", "dev-1");
  auto worker = s.start_worker();
  for (const auto* p : {&plant, &sibling, &stranger}) {
    s.publish_one(Scenario::message(*p, "1"));
  }
  s.publish_one(Scenario::message(plant, "1"));  // a true redelivery
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  EXPECT_EQ(s.events().size(), 6u);
  std::set<std::string> ids;
  for (const auto& e : s.events()) ids.insert(e["messageId"].get<std::string>());
  EXPECT_EQ(ids.size(), 6u);
  for (const auto* p : {&plant, &sibling, &stranger}) {
    EXPECT_EQ(s.history({p->pump_a, p->pump_b}).size(), 5u) << p->org << " " << p->device;
  }
  EXPECT_EQ(s.sql().scalar("SELECT count(*)::text FROM processed_messages WHERE message_id = '1'"
                           " AND organization_id = ANY($1::text[])",
                           {pg_text_array({plant.org, stranger.org})}),
            "3");
}

// SPEC D16: every error type and every cache tier is a series from the start.
TEST(RealPlants, EveryErrorTypeAndCacheTierIsExportedAtZeroFromTheStart) {
  Scenario s;
  auto worker = s.start_worker();
  const std::string text = worker->get("/metrics");
  for (std::string_view type : error_type::kAll) {
    EXPECT_EQ(metric(text, fmt::format("asset_worker_errors_total{{type=\"{}\"}}", type)), 0)
        << type;
  }
  for (const char* tier : {"memory", "redis"}) {
    for (const char* result : {"hit", "miss"}) {
      EXPECT_EQ(metric(text, fmt::format("asset_worker_cache_lookups_total{{cache=\"device_links\","
                                         "tier=\"{}\",result=\"{}\"}}",
                                         tier, result)),
                0)
          << tier << " " << result;
    }
  }
}

// Replaces the scenario's output stream by one with `limits` (JSON members), before a worker
// binds to it.
void limit_output_stream(Scenario& s, const std::string& limits) {
  ASSERT_TRUE(s.nats().api("$JS.API.STREAM.DELETE." + s.output_stream(), "").ok());
  const std::string config = fmt::format(R"({{"name":"{}","subjects":["{}"],"storage":"file",)"
                                         R"("duplicate_window":600000000000,{}}})",
                                         s.output_stream(), s.output_subject(), limits);
  auto r = s.nats().api("$JS.API.STREAM.CREATE." + s.output_stream(), config);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
}

// 60 port metrics: Pump B's event (port 1) is larger than a 1,000-byte stream takes (about
// 2,000 bytes), Pump A's is not (about 400).
json wide_metrics() {
  json m = {{"temperature", 25.5}, {"voltage", 12.3}, {"current", 2.5}};
  for (int i = 0; i < 60; ++i) m[fmt::format("port_1_vibration_sensor_{:02}", i)] = i;
  return m;
}

// A refusal that is one message's own fault (an event larger than the stream's max_msg_size) is
// that message's permanent error; the fleet goes on.
TEST(RealPlants, AnEventTheStreamRefusesForItsSizeDeadLettersItsMessageAlone) {
  Scenario s;
  auto plant = s.load_example_plant();
  limit_output_stream(s, R"("max_msg_size":1000)");
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("small-1"), "2026-01-28T14:30:00Z"));
  s.publish_one(Scenario::message(plant, s.name("wide"), "2026-01-28T14:31:00Z", wide_metrics()));
  s.publish_one(Scenario::message(plant, s.name("small-2"), "2026-01-28T14:32:00Z"));
  ASSERT_TRUE(s.wait_stream_count(s.dlq_stream(), 1)) << worker->log_path();
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  const auto dlq = s.dead_letters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0]["payload"]["messageId"], s.name("wide"));
  EXPECT_EQ(dlq[0]["errorType"], "publish_refused");
  EXPECT_NE(dlq[0]["lastError"].get<std::string>().find("maximum"), std::string::npos)
      << dlq[0].dump();
  EXPECT_EQ(dlq[0]["deliveryCount"], 1);
  // The other messages' events, and the wide one's event for Pump A, which fits.
  EXPECT_EQ(s.events().size(), 5u);
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);
}

// A stream that refuses everything (full, with discard new) is an outage: nothing is
// dead-lettered, the worker waits, and goes on once the stream takes messages again.
TEST(RealPlants, AStreamThatRefusesEveryEventIsAnOutage) {
  Scenario s;
  auto plant = s.load_example_plant();
  limit_output_stream(s, R"("max_msgs":2,"discard":"new")");
  auto env = s.worker_env();
  env["ACK_WAIT_S"] = "6";  // keepalives every 2 s: the wait below outlasts the AckWait
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(20))) << worker.log_path();
  s.publish_one(Scenario::message(plant, s.name("m1"), "2026-01-28T14:30:00Z"));
  ASSERT_TRUE(s.wait_all_acked()) << worker.log_path();  // its two events fill the stream
  s.publish_one(Scenario::message(plant, s.name("m2"), "2026-01-28T14:31:00Z"));
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (worker.http_status("/readyz") != 503 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(worker.http_status("/readyz"), 503) << worker.log_path();
  std::this_thread::sleep_for(seconds(8));  // longer than AckWait
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);

  // Room again: the stream takes the events, the message is acked.
  auto info = s.nats().api("$JS.API.STREAM.INFO." + s.output_stream(), "");
  ASSERT_TRUE(info.ok());
  json config = json::parse(*info)["config"];
  config["max_msgs"] = -1;
  ASSERT_TRUE(s.nats().api("$JS.API.STREAM.UPDATE." + s.output_stream(), config.dump()).ok());
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker.log_path();
  EXPECT_EQ(s.events().size(), 4u);
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(worker.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace atw::testing
