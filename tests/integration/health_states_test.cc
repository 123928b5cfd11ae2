// Health states with hysteresis, with the real worker and servers: a value hovering
// around a threshold changes the state once, each change is published once on the state
// subject in measurement order and kept in asset_health_states, and two replicas sharing the
// consumer give exactly the changes one worker would.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "domain/timestamp.h"
#include "support/servers.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// Pump A's score is 100 minus the first band its motor temperature reaches: 60 degrees or more
// 40, 25 degrees 79, 20 degrees 81, 15 degrees 90, 5 degrees 100.
constexpr const char* kBandedRules = R"("health_rules": [{"metric": "motor_temperature", "bands": [
    {"op": ">=", "value": 60, "penalty": 60}, {"op": ">=", "value": 21, "penalty": 21},
    {"op": ">=", "value": 19, "penalty": 19}, {"op": ">=", "value": 10, "penalty": 10}]}])";

double temperature_for(int score) {
  switch (score) {
    case 40:
      return 70;
    case 79:
      return 25;
    case 81:
      return 20;
    case 90:
      return 15;
    default:
      return 5;
  }
}

void set_schema(Scenario& s, const Scenario::Plant& p, const std::string& extra) {
  s.sql().exec("UPDATE asset_types SET telemetry_schema = $2::jsonb WHERE id = $1",
               {p.type, fmt::format("{{{}{}}}", kBandedRules, extra)});
}

// The message that gives Pump A `score`, `minute` minutes after 14:00.
json scored(Scenario& s, const Scenario::Plant& p, const std::string& id, int score, int minute) {
  return Scenario::message(
      p, s.name(id), format_rfc3339(Timestamp::from_seconds(1769608800 + minute * 60)),
      {{"temperature", temperature_for(score)}, {"voltage", 12.3}, {"current", 2.5}});
}

// "from>to@score" for each change of `asset` on the state subject, by sequence; checks that
// no change is there twice and that the sequence numbers run 1, 2, 3...
std::vector<std::string> changes_of(Scenario& s, const std::string& asset) {
  std::vector<json> mine;
  std::set<std::string> ids;
  for (auto& e : s.state_changes()) {
    if (e["assetId"] != asset) continue;
    EXPECT_TRUE(ids.insert(e["id"].get<std::string>()).second) << "published twice: " << e;
    mine.push_back(std::move(e));
  }
  std::sort(mine.begin(), mine.end(),
            [](const json& a, const json& b) { return a["sequence"] < b["sequence"]; });
  std::vector<std::string> out;
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(mine[i]["sequence"], i + 1) << mine[i];
    out.push_back(fmt::format("{}>{}@{}", mine[i]["from"].get<std::string>(),
                              mine[i]["to"].get<std::string>(), mine[i]["score"].get<double>()));
  }
  return out;
}

// Two replicas of the worker sharing the scenario's consumer: replica-1 and replica-2.
std::vector<std::unique_ptr<WorkerProcess>> start_replicas(std::map<std::string, std::string> env) {
  std::vector<std::unique_ptr<WorkerProcess>> out;
  for (const char* id : {"replica-1", "replica-2"}) {
    env["WORKER_ID"] = id;
    out.push_back(std::make_unique<WorkerProcess>(env));
  }
  for (auto& w : out) EXPECT_TRUE(w->wait_ready(seconds(20))) << w->log_path();
  return out;
}

TEST(HealthStates, AHoveringValueChangesTheStateOnceAndEachChangeIsPublishedOnce) {
  Scenario s;
  const auto p = s.load_example_plant();
  set_schema(s, p, "");
  auto worker = s.start_worker();
  ASSERT_TRUE(worker->wait_ready(seconds(20))) << worker->log_path();
  // 90, then hovering around 80 (79, 81, 79, 81, 79, 81), then 40, 81, 90.
  const std::vector<int> scores = {90, 79, 81, 79, 81, 79, 81, 40, 81, 90};
  std::vector<std::string> payloads;
  for (size_t i = 0; i < scores.size(); ++i) {
    payloads.push_back(scored(s, p, fmt::format("m{}", i), scores[i], static_cast<int>(i)).dump());
  }
  // A late message (13:00, 40 points): lands in history, moves no state.
  payloads.push_back(scored(s, p, "late", 40, -60).dump());
  // Two batches, so that the state is read back from the table in between.
  s.publish(std::vector<std::string>(payloads.begin(), payloads.begin() + 5));
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker->log_path();
  s.publish(std::vector<std::string>(payloads.begin() + 5, payloads.end()));
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker->log_path();

  EXPECT_EQ(changes_of(s, p.pump_a),
            (std::vector<std::string>{"good>warning@79", "warning>critical@40",
                                      "critical>warning@81", "warning>good@90"}));
  const auto a = s.state_changes();
  const auto last = std::find_if(a.begin(), a.end(), [&](const json& e) {
    return e["assetId"] == p.pump_a && e["sequence"] == 4;
  });
  ASSERT_NE(last, a.end());
  EXPECT_EQ((*last)["at"], "2026-01-28T14:09:00Z");
  EXPECT_EQ((*last)["organizationId"], p.org);
  EXPECT_EQ((*last)["messageId"], s.name("m9"));
  // The change to critical says which rule took the points.
  const auto critical = std::find_if(a.begin(), a.end(), [&](const json& e) {
    return e["assetId"] == p.pump_a && e["to"] == "critical";
  });
  ASSERT_NE(critical, a.end());
  EXPECT_EQ((*critical)["reason"],
            json::parse(R"([{"metric": "motor_temperature", "value": 70, "op": ">=",)"
                        R"( "threshold": 60, "penalty": 60}])"));
  // The table: the state, when it was entered, how many changes.
  EXPECT_EQ(s.sql().scalar("SELECT state || ' ' || changes || ' ' || entered_score || ' ' ||"
                           " to_char(entered_at AT TIME ZONE 'UTC', 'HH24:MI')"
                           " FROM asset_health_states WHERE asset_id = $1",
                           {p.pump_a}),
            "good 4 90 14:09");
  // Pump B is of the same type and gets the same motor temperature: the same changes.
  EXPECT_EQ(changes_of(s, p.pump_b).size(), 4u);
  EXPECT_EQ(metric(worker->get("/metrics"), "asset_worker_state_changes_total{to=\"warning\"}"), 4);
  EXPECT_EQ(metric(worker->get("/metrics"), "asset_worker_state_changes_total{to=\"critical\"}"),
            2);
  EXPECT_EQ(worker->stop(SIGTERM), 0);
  EXPECT_TRUE(s.dead_letters().empty());
}

// A change needs two measurements in a row here (min_consecutive), so the run in progress is
// kept in the table between batches, and the two replicas read each other's: with each round of
// messages processed before the next is published, both replicas together give exactly the
// changes the sequence calls for, each published once.
TEST(HealthStates, TwoReplicasGiveExactlyTheExpectedChanges) {
  Scenario s;
  constexpr int kPlants = 12;
  std::vector<Scenario::Plant> plants;
  for (int i = 0; i < kPlants; ++i) {
    plants.push_back(s.load_example_plant(fmt::format("o{}", i), fmt::format("d{}", i)));
  }
  // One asset type for all the plants (load_example_plant gives each the scenario's type).
  set_schema(s, plants[0], R"(, "health_states": {"min_consecutive": 2})");
  auto env = s.worker_env();
  env["BATCH_SIZE"] = "4";  // several batches per round, on both replicas
  auto replicas = start_replicas(env);

  // good; 79 twice: warning; 81 and 40 (a run towards better, then one towards worse: no
  // change); 40 again: critical; 90 twice: good.
  const std::vector<int> scores = {90, 79, 79, 81, 40, 40, 90, 90};
  for (size_t round = 0; round < scores.size(); ++round) {
    std::vector<std::string> payloads;
    for (const auto& p : plants) {
      payloads.push_back(scored(s, p, fmt::format("{}-r{}", p.device, round), scores[round],
                                static_cast<int>(round))
                             .dump());
    }
    s.publish(payloads);
    ASSERT_TRUE(s.wait_all_acked(seconds(30))) << replicas[0]->log_path();
  }
  for (const auto& p : plants) {
    SCOPED_TRACE(p.pump_a);
    EXPECT_EQ(
        changes_of(s, p.pump_a),
        (std::vector<std::string>{"good>warning@79", "warning>critical@40", "critical>good@90"}));
  }
  // Both replicas did some of the work.
  for (const char* id : {"replica-1", "replica-2"}) {
    EXPECT_NE(
        s.sql().scalar("SELECT count(*) FROM processed_messages WHERE processed_by = $1", {id}),
        "0")
        << id;
  }
  for (auto& w : replicas) EXPECT_EQ(w->stop(SIGTERM), 0);
}

// Everything at once: two replicas, each with two writer lanes and small batches, write the
// same two assets at the same time. Which messages count (late ones do not) depends on timing,
// but the changes published must form one unbroken chain per asset (sequence 1, 2, 3..., each
// from where the last one went), none twice, ending where the table says.
TEST(HealthStates, ConcurrentWritersKeepOneUnbrokenChainPerAsset) {
  Scenario s;
  const auto p = s.load_example_plant();
  set_schema(s, p, "");
  auto env = s.worker_env();
  env["BATCH_SIZE"] = "8";
  env["LIVE_BATCH_SIZE"] = "8";
  env["CATCH_UP_BATCH_SIZE"] = "8";
  env["DB_WRITERS"] = "2";
  auto replicas = start_replicas(env);
  const int scores[] = {90, 79, 40, 81, 90, 40, 100};
  std::vector<std::string> payloads;
  for (int i = 0; i < 400; ++i) {
    payloads.push_back(scored(s, p, fmt::format("m{}", i), scores[i % 7], i).dump());
  }
  s.publish(payloads);
  ASSERT_TRUE(s.wait_all_acked(seconds(60))) << replicas[0]->log_path();
  for (const auto& asset : {p.pump_a, p.pump_b}) {
    SCOPED_TRACE(asset);
    const auto chain = changes_of(s, asset);  // no change twice, sequences 1, 2, 3...
    ASSERT_FALSE(chain.empty());
    std::string state = "good";
    for (const auto& c : chain) {
      EXPECT_EQ(c.substr(0, c.find('>')), state) << c;
      state = c.substr(c.find('>') + 1, c.find('@') - c.find('>') - 1);
    }
    EXPECT_EQ(s.sql().scalar("SELECT state || ' ' || changes FROM asset_health_states"
                             " WHERE asset_id = $1",
                             {asset}),
              fmt::format("{} {}", state, chain.size()));
  }
  for (auto& w : replicas) EXPECT_EQ(w->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace atw::testing
