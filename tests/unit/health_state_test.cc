#include "domain/health_state.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "domain/event.h"

namespace atw {
namespace {

const Timestamp kT0 = Timestamp::from_seconds(1769610000);

Timestamp at_s(int64_t seconds) {
  return Timestamp{kT0.micros + seconds * 1'000'000};
}

// Feeds scores one a second to an asset in the best state, and says which changes they made,
// as "from>to" (and the state it ends in, as the last entry).
std::vector<std::string> run(const HealthStatePolicy& policy, const std::vector<double>& scores,
                             int64_t seconds_apart = 1) {
  std::vector<std::string> out;
  AssetHealthState state = initial_health_state(policy, scores.front(), kT0);
  for (size_t i = 0; i < scores.size(); ++i) {
    auto t =
        step_health_state(policy, state, scores[i], at_s(static_cast<int64_t>(i) * seconds_apart));
    if (t) out.push_back(t->from + ">" + t->to);
  }
  out.push_back("=" + state.state);
  return out;
}

using Changes = std::vector<std::string>;

TEST(HealthStates, StandardLevelsWithHysteresisOnTheWayBack) {
  const auto p = HealthStatePolicy::standard();
  EXPECT_EQ(run(p, {90, 70, 40, 60, 90}), (Changes{"good>warning", "warning>critical",
                                                   "critical>warning", "warning>good", "=good"}));
  // Down at once: below 80 is warning, below 50 critical, whatever the state was.
  EXPECT_EQ(run(p, {100, 79.9}), (Changes{"good>warning", "=warning"}));
  EXPECT_EQ(run(p, {100, 49.9}), (Changes{"good>critical", "=critical"}));
  EXPECT_EQ(run(p, {100, 80, 50}), (Changes{"good>warning", "=warning"}));
  // Up only 5 points past the threshold: critical needs 55 for warning and 85 for good.
  EXPECT_EQ(run(p, {40, 54.9, 55}), (Changes{"good>critical", "critical>warning", "=warning"}));
  EXPECT_EQ(run(p, {40, 84.9}), (Changes{"good>critical", "critical>warning", "=warning"}));
  EXPECT_EQ(run(p, {40, 85}), (Changes{"good>critical", "critical>good", "=good"}));
}

TEST(HealthStates, AValueHoveringAroundAThresholdDoesNotFlap) {
  const auto p = HealthStatePolicy::standard();
  EXPECT_EQ(run(p, {79, 81, 79, 81, 79, 81, 84.9, 79, 81}), (Changes{"good>warning", "=warning"}));
  EXPECT_EQ(run(p, {49, 51, 49, 51, 54, 49}), (Changes{"good>critical", "=critical"}));
}

TEST(HealthStates, NoHysteresisFollowsThePlainThresholds) {
  auto p = HealthStatePolicy::standard();
  p.hysteresis = 0;
  EXPECT_EQ(run(p, {79, 80, 79}),
            (Changes{"good>warning", "warning>good", "good>warning", "=warning"}));
}

TEST(HealthStates, AChangeWaitsForConsecutiveMeasurements) {
  auto p = HealthStatePolicy::standard();
  p.min_consecutive = 3;
  // Two low ones, then a good one: the run ends, nothing changes.
  EXPECT_EQ(run(p, {70, 70, 90, 70, 70}), (Changes{"=good"}));
  EXPECT_EQ(run(p, {70, 70, 70}), (Changes{"good>warning", "=warning"}));
  // A run points one way (worse) whichever worse state each measurement points to; it ends in
  // the state the last one points to.
  EXPECT_EQ(run(p, {70, 40, 40}), (Changes{"good>critical", "=critical"}));
  EXPECT_EQ(run(p, {40, 40, 70}), (Changes{"good>warning", "=warning"}));
  // On the way back as well, past the hysteresis; a 50 (not past 55) ends the run.
  EXPECT_EQ(run(p, {40, 40, 40, 90, 82, 50, 90, 90}), (Changes{"good>critical", "=critical"}));
  EXPECT_EQ(run(p, {40, 40, 40, 90, 90, 82}),
            (Changes{"good>critical", "critical>warning", "=warning"}));
}

TEST(HealthStates, AChangeWaitsForSecondsOfMeasurementTime) {
  auto p = HealthStatePolicy::standard();
  p.min_duration_s = 60;
  // A measurement every 20 s: the run must span 60 s, so the fourth one changes the state.
  EXPECT_EQ(run(p, {70, 70, 70}, 20), (Changes{"=good"}));
  EXPECT_EQ(run(p, {70, 70, 70, 70}, 20), (Changes{"good>warning", "=warning"}));
  // A measurement back in the state in between starts the clock again.
  EXPECT_EQ(run(p, {70, 70, 90, 70, 70, 70}, 20), (Changes{"=good"}));
  // Both: 2 measurements and 60 s.
  p.min_consecutive = 2;
  EXPECT_EQ(run(p, {70, 70}, 120), (Changes{"good>warning", "=warning"}));
}

TEST(HealthStates, StateKeepsWhenItEnteredAndCountsChanges) {
  const auto p = HealthStatePolicy::standard();
  AssetHealthState s = initial_health_state(p, 95, kT0);
  EXPECT_EQ(s.state, "good");
  EXPECT_EQ(s.changes, 0);
  EXPECT_FALSE(step_health_state(p, s, 95, at_s(1)));
  auto t = step_health_state(p, s, 72, at_s(2));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->sequence, 1);
  EXPECT_EQ(s.entered_at, at_s(2));
  EXPECT_EQ(s.entered_score, 72);
  t = step_health_state(p, s, 30, at_s(3));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->sequence, 2);
  EXPECT_EQ(s.changes, 2);
}

TEST(HealthStates, AStateTheLevelsNoLongerNameIsLeftAtOnce) {
  const auto p = HealthStatePolicy::standard();
  AssetHealthState s = initial_health_state(p, 95, kT0);
  s.state = "alarm";  // a level an earlier schema had
  auto t = step_health_state(p, s, 95, at_s(1));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->from, "alarm");
  EXPECT_EQ(t->to, "good");
}

TEST(HealthStatesPolicy, ParsesLevelsAndSettings) {
  auto r = parse_health_states(R"({"levels": [{"name": "normal", "min_score": 90},
      {"name": "watch", "min_score": 70}, {"name": "alarm", "min_score": 40}, {"name": "trip"}],
      "hysteresis": 2.5, "min_consecutive": 2, "min_duration_s": 30})");
  EXPECT_TRUE(r.problems.empty());
  ASSERT_TRUE(r.policy);
  ASSERT_EQ(r.policy->levels.size(), 4u);
  EXPECT_EQ(r.policy->levels[3].name, "trip");
  EXPECT_EQ(r.policy->level_for(69.9), 2u);
  EXPECT_EQ(r.policy->level_for(10), 3u);
  EXPECT_EQ(r.policy->hysteresis, 2.5);
  EXPECT_EQ(r.policy->min_consecutive, 2);
  EXPECT_EQ(r.policy->min_duration_s, 30);
  // Partly given: the rest stays standard.
  r = parse_health_states(R"({"hysteresis": 10})");
  ASSERT_TRUE(r.policy);
  EXPECT_EQ(r.policy->levels.size(), 3u);
  EXPECT_EQ(r.policy->hysteresis, 10);
  // false: no states kept.
  EXPECT_FALSE(parse_health_states("false").policy);
  EXPECT_TRUE(parse_health_states("null").policy);
}

TEST(HealthStatesPolicy, MistakesAreNamedAndTheDefaultApplies) {
  for (
      const char* bad : {
          R"({"levels": [{"name": "only"}]})",
          R"({"levels": [{"name": "a", "min_score": 50}, {"name": "b", "min_score": 60}, {"name": "c"}]})",
          R"({"levels": [{"name": "a", "min_score": 50}, {"name": "a"}]})",
          R"({"levels": [{"name": "has space", "min_score": 50}, {"name": "b"}]})",
          R"({"levels": [{"name": "a"}, {"name": "b"}]})",
      }) {
    SCOPED_TRACE(bad);
    const auto r = parse_health_states(bad);
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].where, "health_states.levels");
    ASSERT_TRUE(r.policy);
    EXPECT_EQ(r.policy->levels.size(), 3u);
  }
  auto r =
      parse_health_states(R"({"hysteresis": -1, "min_consecutive": 0, "min_duration_s": 1.5})");
  EXPECT_EQ(r.problems.size(), 3u);
  EXPECT_EQ(r.policy->hysteresis, 5);
  EXPECT_EQ(r.policy->min_consecutive, 1);
  EXPECT_EQ(r.policy->min_duration_s, 0);
  r = parse_health_states(R"("on")");
  EXPECT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(r.policy);
}

TEST(HealthStatesPolicy, AssetTypesKeepTheStandardStatesUnlessTheySayOtherwise) {
  auto model = AssetTypeModel::compile("pump", "null");
  ASSERT_TRUE(model->health_states());
  EXPECT_EQ(model->health_states()->levels.size(), 3u);
  model = AssetTypeModel::compile("pump", R"({"health_states": false})");
  EXPECT_FALSE(model->health_states());
  model = AssetTypeModel::compile("pump", R"({"health_states": {"min_consecutive": "three"}})");
  ASSERT_EQ(model->problems().size(), 1u);
  EXPECT_EQ(model->problems()[0].where, "health_states.min_consecutive");
  ASSERT_TRUE(model->health_states());
}

// The ledger moves a batch's assets through the machine in delivery order, in measurement-time
// order: a late message changes nothing, and the rows to write are the assets whose state moved.
TEST(HealthStateLedger, LateMessagesMoveNoStateAndEachMovedStateIsWrittenOnce) {
  const auto p = HealthStatePolicy::standard();
  HealthStateLedger ledger;
  AssetHealthState stored = initial_health_state(p, 90, at_s(0));
  ledger.load("a", stored, at_s(10));
  ledger.load("b", stored, at_s(10));
  ledger.load("c", std::nullopt, std::nullopt);
  // Older than a's stored score: late, whatever it says.
  EXPECT_FALSE(ledger.apply("a", "org", p, 20, at_s(5)));
  auto t = ledger.apply("a", "org", p, 70, at_s(20));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, "warning");
  // A late one in the same batch, after the newer one: nothing.
  EXPECT_FALSE(ledger.apply("a", "org", p, 100, at_s(15)));
  // The same measurement time counts (the later delivery wins, as scores do).
  t = ledger.apply("a", "org", p, 95, at_s(20));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, "good");
  EXPECT_EQ(t->sequence, 2);
  // b: nothing moves; c: its first measurement makes its row.
  EXPECT_FALSE(ledger.apply("b", "org", p, 90, at_s(30)));
  EXPECT_FALSE(ledger.apply("c", "org2", p, 88, at_s(30)));
  const auto rows = ledger.changed();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].asset_id, "a");
  EXPECT_EQ(rows[0].state.state, "good");
  EXPECT_EQ(rows[0].state.changes, 2);
  EXPECT_EQ(rows[1].asset_id, "c");
  EXPECT_EQ(rows[1].organization_id, "org2");
  EXPECT_EQ(rows[1].state.entered_at, at_s(30));
}

TEST(StateChangeEvent, CarriesTheChangeAndADeterministicId) {
  StateChange c{
      "pump-a",  "org", "dev",   "m1", "good",
      "warning", 70,    at_s(0), 1,    {{"motor_temperature", 82, HealthOp::kGt, 80, 30}}};
  const std::string json = to_json(c);
  EXPECT_EQ(json,
            "{\"id\":\"" + state_change_id(c) +
                "\",\"assetId\":\"pump-a\",\"organizationId\":\"org\",\"from\":\"good\","
                "\"to\":\"warning\",\"score\":70,\"at\":\"2026-01-28T14:20:00Z\",\"sequence\":1,"
                "\"reason\":[{\"metric\":\"motor_temperature\",\"value\":82,\"op\":\">\","
                "\"threshold\":80,\"penalty\":30}],\"deviceId\":\"dev\",\"messageId\":\"m1\","
                "\"processorVersion\":\"asset-worker-v1\"}");
  EXPECT_EQ(state_change_id(c), state_change_id(c));
  // Not the asset event's id, and another message or tenant gives another id.
  EXPECT_NE(state_change_id(c), asset_event_id("org", "dev", "m1", "pump-a"));
  StateChange other = c;
  other.organization_id = "org2";
  EXPECT_NE(state_change_id(other), state_change_id(c));
  other = c;
  other.message_id = "m2";
  EXPECT_NE(state_change_id(other), state_change_id(c));
}

}  // namespace
}  // namespace atw
