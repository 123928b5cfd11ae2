// The worker end to end, as a user would check it: real nats-server, PostgreSQL and Redis, the
// real binary run as a child process; assertions on table rows, scores, events and the DLQ.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <sstream>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "adapters/redis/redis_link_cache.h"
#include "domain/link_cache_codec.h"
#include "support/servers.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::vector<std::string> history(Scenario& s, const std::vector<std::string>& assets) {
  return s.history(assets);
}

std::optional<std::string> score(Scenario& s, const std::string& asset) {
  return s.score(asset);
}

const json* event_for(const std::vector<json>& events, const std::string& asset,
                      const std::string& ts = "") {
  for (const auto& e : events) {
    if (e["assetId"] == asset && (ts.empty() || e["timestamp"] == ts)) return &e;
  }
  return nullptr;
}

TEST(WorkerEndToEnd, DocumentExampleGivesItsRowsScoresAndEvents) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("msg")));
  ASSERT_TRUE(s.wait_stream_count(s.output_stream(), 2));
  ASSERT_TRUE(s.wait_all_acked());

  EXPECT_EQ(history(s, {plant.pump_a, plant.pump_b}), Scenario::document_example_history(plant));
  EXPECT_EQ(score(s, plant.pump_a), "100");
  EXPECT_EQ(score(s, plant.pump_b), "100");
  EXPECT_EQ(s.sql().scalar("SELECT health_score_computed_by || ' ' || to_char("
                           "health_score_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                           " FROM assets WHERE id = $1",
                           {plant.pump_a}),
            "asset-worker-v1 2026-01-28 14:30:00");

  const auto events = s.events();
  ASSERT_EQ(events.size(), 2u);
  const json* a = event_for(events, plant.pump_a);
  const json* b = event_for(events, plant.pump_b);
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*a)["metrics"], (json{{"power_input", 12.3},
                                   {"power_current", 2.5},
                                   {"motor_temperature", 25.5},
                                   {"power_consumption", 30.75}}));
  EXPECT_EQ((*b)["metrics"], (json{{"motor_temperature", 25.5}}));
  for (const json* e : {a, b}) {
    EXPECT_EQ((*e)["deviceId"], plant.device);
    EXPECT_EQ((*e)["organizationId"], plant.org);
    EXPECT_EQ((*e)["timestamp"], "2026-01-28T14:30:00Z");
    EXPECT_EQ((*e)["healthScore"], 100);
    EXPECT_TRUE((*e)["previousHealthScore"].is_null());
    EXPECT_EQ((*e)["processorVersion"], "asset-worker-v1");
    EXPECT_EQ((*e)["messageId"].get<std::string>().size(), 36u);
    EXPECT_TRUE((*e).contains("processedAt"));
  }
  EXPECT_NE((*a)["messageId"], (*b)["messageId"]);
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(worker->stop(SIGTERM), 0);
}

TEST(WorkerEndToEnd, UnlinkedDeviceIsAckedWithNothingWritten) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  Scenario::Plant stranger = plant;
  stranger.device = s.name("no-such-device");
  s.publish_one(Scenario::message(stranger, s.name("msg")));
  ASSERT_TRUE(s.wait_all_acked());
  EXPECT_TRUE(s.events().empty());
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(
      s.sql().scalar("SELECT count(*)::text FROM telemetry_history WHERE source_device_id = $1",
                     {stranger.device}),
      "0");
  EXPECT_EQ(s.sql().scalar("SELECT count(*)::text FROM processed_messages WHERE message_id = $1",
                           {s.name("msg")}),
            "0");
}

TEST(WorkerEndToEnd, SameMessageIdTwiceGivesOneSetOfRowsAndEvents) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  const auto msg = Scenario::message(plant, s.name("msg")).dump();
  s.publish(std::vector<std::string>{msg, msg});  // no Nats-Msg-Id: both copies reach the stream
  ASSERT_TRUE(s.wait_all_acked());
  s.publish(std::vector<std::string>{msg});  // and once more, in a later batch
  ASSERT_TRUE(s.wait_all_acked());
  EXPECT_EQ(s.stream(s.input_stream()).size(), 3u);
  EXPECT_EQ(history(s, {plant.pump_a, plant.pump_b}).size(), 5u);
  const auto events = s.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0]["messageId"], events[1]["messageId"]);
}

TEST(WorkerEndToEnd, OlderMessageLandsInHistoryButKeepsTheNewerScore) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  // Newer: 85 degrees (score 70); older: 75 degrees (score 90).
  s.publish_one(Scenario::message(plant, s.name("new"), "2026-01-28T15:00:00Z",
                                  {{"temperature", 85}, {"voltage", 12}, {"current", 2}}));
  ASSERT_TRUE(s.wait_all_acked());
  s.publish_one(Scenario::message(plant, s.name("old"), "2026-01-28T14:00:00Z",
                                  {{"temperature", 75}, {"voltage", 12}, {"current", 2}}));
  ASSERT_TRUE(s.wait_all_acked());

  EXPECT_EQ(score(s, plant.pump_a), "70");
  EXPECT_EQ(score(s, plant.pump_b), "70");
  EXPECT_EQ(s.sql().scalar("SELECT count(*)::text FROM telemetry_history WHERE entity_id = $1"
                           " AND metric_key = 'motor_temperature'",
                           {plant.pump_a}),
            "2");
  const auto events = s.events();
  ASSERT_EQ(events.size(), 4u);
  const json* old_a = event_for(events, plant.pump_a, "2026-01-28T14:00:00Z");
  ASSERT_TRUE(old_a);
  EXPECT_EQ((*old_a)["healthScore"], 90);
  EXPECT_EQ((*old_a)["previousHealthScore"], 70);  // the asset's score when it arrived
  const json* new_a = event_for(events, plant.pump_a, "2026-01-28T15:00:00Z");
  ASSERT_TRUE(new_a);
  EXPECT_TRUE((*new_a)["previousHealthScore"].is_null());
}

TEST(WorkerEndToEnd, TwoTenantsWithTheSameDeviceIdSeeOnlyTheirOwnAssets) {
  Scenario s;
  auto first = s.load_example_plant("org1", "shared-dev");
  auto second = s.load_example_plant("org2", "shared-dev");
  ASSERT_EQ(first.device, second.device);
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(first, s.name("m1"), "2026-01-28T14:30:00Z",
                                  {{"temperature", 90}, {"voltage", 12}, {"current", 2}}));
  s.publish_one(Scenario::message(second, s.name("m2"), "2026-01-28T14:30:00Z",
                                  {{"temperature", 20}, {"voltage", 12}, {"current", 2}}));
  ASSERT_TRUE(s.wait_all_acked());
  EXPECT_EQ(score(s, first.pump_a), "70");
  EXPECT_EQ(score(s, second.pump_a), "100");
  EXPECT_EQ(s.sql().scalar("SELECT string_agg(DISTINCT value::text, ',') FROM telemetry_history"
                           " WHERE entity_id = $1 AND metric_key = 'motor_temperature'",
                           {first.pump_a}),
            "90");
  EXPECT_EQ(s.sql().scalar("SELECT string_agg(DISTINCT value::text, ',') FROM telemetry_history"
                           " WHERE entity_id = $1 AND metric_key = 'motor_temperature'",
                           {second.pump_a}),
            "20");
  for (const auto& e : s.events()) {
    const bool mine_first = e["organizationId"] == first.org;
    const std::string asset = e["assetId"];
    EXPECT_EQ(mine_first, asset == first.pump_a || asset == first.pump_b) << e.dump();
  }
  EXPECT_EQ(s.events().size(), 4u);
}

TEST(WorkerEndToEnd, InvalidMessageIsDeadLetteredAtItsFirstDelivery) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  auto bad = Scenario::message(plant, s.name("bad"));
  bad["timestamp"] = "yesterday";
  s.publish(std::vector<std::string>{bad.dump(), "{not json",
                                     Scenario::message(plant, s.name("good")).dump()});
  ASSERT_TRUE(s.wait_stream_count(s.dlq_stream(), 2));
  ASSERT_TRUE(s.wait_all_acked());
  const auto dlq = s.dead_letters();
  ASSERT_EQ(dlq.size(), 2u);
  for (const auto& d : dlq) {
    EXPECT_EQ(d["originalStream"], s.input_stream());
    EXPECT_EQ(d["originalSubject"], s.input_subject());
    EXPECT_EQ(d["consumer"], s.durable());
    EXPECT_EQ(d["deliveryCount"], 1);
    EXPECT_EQ(d["errorType"], "invalid_message");
    EXPECT_TRUE(d.contains("failedAt"));
    EXPECT_GT(d["streamSequence"].get<int>(), 0);
  }
  const json* with_ts = nullptr;
  const json* not_json = nullptr;
  for (const auto& d : dlq) {
    if (d.contains("payload")) with_ts = &d;
    if (d.contains("payloadBase64")) not_json = &d;
  }
  ASSERT_TRUE(with_ts && not_json);
  EXPECT_EQ((*with_ts)["payload"], bad);
  EXPECT_NE((*with_ts)["lastError"].get<std::string>().find("timestamp"), std::string::npos);
  // The good message of the same batch still went through.
  EXPECT_EQ(s.events().size(), 2u);
  // Terminated, not redelivered: the consumer shows each delivered once.
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);

  // /metrics reads the DLQ's depth and the consumer's state from the server (every 5 s).
  std::string metrics;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
  while (std::chrono::steady_clock::now() < deadline) {
    metrics = worker->get("/metrics");
    if (metrics.find("\nasset_worker_dlq_depth 2\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(metrics.find("\nasset_worker_dlq_depth 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nasset_worker_consumer_ack_pending 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("nats_stream_messages_pending{stream=\"" + s.input_stream() + "\"} 0\n"),
            std::string::npos);
}

TEST(WorkerEndToEnd, WithoutRedisEverythingStillWorks) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker(/*with_redis=*/false);
  for (int i = 0; i < 3; ++i) {
    s.publish_one(Scenario::message(plant, s.name("m" + std::to_string(i)),
                                    fmt::format("2026-01-28T14:3{}:00Z", i)));
  }
  ASSERT_TRUE(s.wait_all_acked());
  EXPECT_EQ(s.events().size(), 6u);
  EXPECT_EQ(history(s, {plant.pump_a, plant.pump_b}).size(), 15u);
  const std::string metrics = worker->get("/metrics");
  EXPECT_NE(metrics.find("asset_worker_messages_processed_total"), std::string::npos);
  EXPECT_EQ(metrics.find("tier=\"redis\""), std::string::npos) << "no Redis tier without REDIS_URL";
}

TEST(WorkerEndToEnd, LinksAreCachedInRedisUnderTheTenantKey) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(plant, s.name("m")));
  ASSERT_TRUE(s.wait_all_acked());
  auto address = parse_redis_url(server_urls().redis);
  ASSERT_TRUE(address.ok());
  redisContext* ctx = redisConnect(address->host.c_str(), address->port);
  ASSERT_TRUE(ctx && !ctx->err);
  if (address->db) freeReplyObject(redisCommand(ctx, "SELECT %d", address->db));
  const std::string key = "device_asset_links:" + plant.org + ":" + plant.device;
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, "GET %s", key.c_str()));
  ASSERT_TRUE(reply && reply->type == REDIS_REPLY_STRING) << key;
  auto cached = parse_link_set(std::string_view(reply->str, reply->len), {plant.org, plant.device});
  ASSERT_TRUE(cached.ok());
  ASSERT_EQ(cached->links.size(), 2u);
  EXPECT_EQ(cached->links[0].asset_id, plant.pump_a);
  EXPECT_EQ(cached->links[1].port, "1");
  auto* ttl = static_cast<redisReply*>(redisCommand(ctx, "TTL %s", key.c_str()));
  EXPECT_GT(ttl->integer, 250);
  EXPECT_LE(ttl->integer, 300);
  freeReplyObject(ttl);
  freeReplyObject(reply);
  redisFree(ctx);
}

// The sizes of the batches a worker fetched, in order, from its debug log ("batch fetched").
std::vector<int> fetched_batches(const std::string& log_path) {
  std::vector<int> sizes;
  std::istringstream in(read_file(log_path));
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"batch fetched\"") == std::string::npos) continue;
    sizes.push_back(json::parse(line)["messages"].get<int>());
  }
  return sizes;
}

// A deep backlog (five batches or more) goes through in batches of BATCH_SIZE, a shallower one in
// batches of CATCH_UP_BATCH_SIZE; once the worker keeps up, a burst goes through in batches of
// at most LIVE_BATCH_SIZE. The backlog count the worker goes by comes from the real server, in
// every delivery's reply subject.
TEST(WorkerEndToEnd, ABacklogGetsFullBatchesAndABurstShortOnes) {
  Scenario s;
  auto plant = s.load_example_plant();
  const auto messages = [&](const std::string& base, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(Scenario::message(plant, s.name(fmt::format("{}{}", base, i))).dump());
    }
    return out;
  };
  s.publish(messages("backlog", 2000));
  auto env = s.worker_env();
  env["BATCH_SIZE"] = "100";
  env["LIVE_BATCH_SIZE"] = "10";
  env["CATCH_UP_BATCH_SIZE"] = "25";
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(20))) << worker.log_path();
  ASSERT_TRUE(s.wait_all_acked(seconds(60))) << worker.log_path();

  const std::vector<int> drained = fetched_batches(worker.log_path());
  EXPECT_EQ(std::accumulate(drained.begin(), drained.end(), 0), 2000);
  // Slow start (1, 2, 4, ... 64), full batches while 500 or more waited behind, then catch-up
  // batches of 25, then live ones.
  EXPECT_GE(std::count(drained.begin(), drained.end(), 100), 5) << worker.log_path();
  EXPECT_GE(std::count(drained.begin(), drained.end(), 25), 5) << worker.log_path();
  EXPECT_LE(*std::max_element(drained.begin(), drained.end()), 100);

  // A burst shorter than a catch-up batch.
  s.publish(messages("burst", 24));
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker.log_path();
  const std::vector<int> all = fetched_batches(worker.log_path());
  const std::vector<int> burst(all.begin() + static_cast<ptrdiff_t>(drained.size()), all.end());
  EXPECT_EQ(std::accumulate(burst.begin(), burst.end(), 0), 24);
  EXPECT_LE(*std::max_element(burst.begin(), burst.end()), 10) << worker.log_path();
  EXPECT_EQ(worker.stop(SIGTERM), 0);
}

}  // namespace
}  // namespace atw::testing

namespace atw::testing {
namespace {

TEST(Migrate, RunsTwiceAndKeepsData) {
  Scenario s;
  auto plant = s.load_example_plant();
  for (int i = 0; i < 2; ++i) {
    WorkerProcess migrate(s.worker_env(), {"migrate"});
    EXPECT_EQ(migrate.stop(0, std::chrono::seconds(30)), 0) << "see " << migrate.log_path();
  }
  EXPECT_EQ(
      s.sql().scalar("SELECT count(*)::text FROM entity_edges WHERE tenant_id = $1", {plant.org}),
      "2");
  EXPECT_EQ(s.sql().scalar("SELECT count(*)::text FROM asset_worker_migrations"),
            std::to_string(embedded_migrations().size()));
  // Room on each page of assets for its rows' next versions (migration 006).
  EXPECT_EQ(s.sql().scalar("SELECT array_to_string(reloptions, ',') FROM pg_class"
                           " WHERE oid = 'assets'::regclass"),
            "fillfactor=50");
}

}  // namespace
}  // namespace atw::testing
