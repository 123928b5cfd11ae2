// Link-change invalidation against a real worker, PostgreSQL and Redis (SPEC D7):
// a committed link change, or `asset-worker links invalidate` after a change made behind the
// trigger's back, takes effect within 2 s while messages flow, though the caches' TTLs are far
// longer (30 s in process, 300 s in Redis).

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "support/servers.h"

namespace atw::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Sent {
  std::string timestamp;
  Clock::time_point at;
};

class LinkInvalidation : public ::testing::Test {
 protected:
  LinkInvalidation() : plant(s.load_example_plant()) {
    pump_c = s.name("pump-c");
    s.sql().exec(
        "INSERT INTO assets (id, tenant_id, name, asset_type_id) VALUES ($1, $2, 'Pump C', $3)",
        {pump_c, plant.org, plant.type});
  }

  // Publishes one message every 100 ms for `duration`, each with its own timestamp.
  void publish_for(std::chrono::milliseconds duration) {
    const auto end = Clock::now() + duration;
    while (Clock::now() < end) {
      const std::string ts = fmt::format("2026-01-28T15:{:02}:{:02}Z", next_ / 60, next_ % 60);
      s.publish_one(Scenario::message(plant, s.name(fmt::format("m{}", next_)), ts));
      sent.push_back({ts, Clock::now()});
      ++next_;
      std::this_thread::sleep_for(100ms);
    }
  }

  void move_pump_b_link_to_pump_c() {
    s.sql().exec("UPDATE entity_edges SET target_entity_id = $1 WHERE target_entity_id = $2",
                 {pump_c, plant.pump_b});
  }

  // The assets each message's events went to, by message timestamp.
  std::map<std::string, std::set<std::string>> assets_by_timestamp() {
    std::map<std::string, std::set<std::string>> out;
    for (const auto& e : s.events()) {
      out[e["timestamp"].get<std::string>()].insert(e["assetId"].get<std::string>());
    }
    return out;
  }

  // Every message sent 2 s or more after `changed` went to Pump A and Pump C; every message
  // sent before it went to Pump A and Pump B.
  void expect_new_link_within_two_seconds(Clock::time_point changed) {
    ASSERT_TRUE(s.wait_all_acked(20s));
    const auto by_ts = assets_by_timestamp();
    const std::set<std::string> before{plant.pump_a, plant.pump_b};
    const std::set<std::string> after{plant.pump_a, pump_c};
    size_t checked_after = 0;
    for (const auto& m : sent) {
      auto found = by_ts.find(m.timestamp);
      ASSERT_NE(found, by_ts.end()) << m.timestamp;
      if (m.at < changed) {
        EXPECT_EQ(found->second, before) << m.timestamp;
      } else if (m.at >= changed + 2s) {
        EXPECT_EQ(found->second, after) << m.timestamp;
        ++checked_after;
      }
    }
    EXPECT_GE(checked_after, 5u);
  }

  Scenario s;
  Scenario::Plant plant;
  std::string pump_c;
  std::vector<Sent> sent;
  int next_ = 0;
};

TEST_F(LinkInvalidation, ACommittedLinkChangeTakesEffectWithinTwoSeconds) {
  auto worker = s.start_worker();
  publish_for(1s);  // the old links are now in both caches
  ASSERT_TRUE(s.wait_all_acked(20s));
  move_pump_b_link_to_pump_c();
  const auto changed = Clock::now();
  publish_for(3500ms);
  expect_new_link_within_two_seconds(changed);
}

TEST_F(LinkInvalidation, LinksInvalidateByHandPurgesRedisAndEveryWorker) {
  auto worker = s.start_worker();
  publish_for(1s);
  ASSERT_TRUE(s.wait_all_acked(20s));
  // A change the trigger does not see (made while it was disabled, say): only the command helps.
  s.sql().exec("ALTER TABLE entity_edges DISABLE TRIGGER asset_worker_link_change");
  move_pump_b_link_to_pump_c();
  s.sql().exec("ALTER TABLE entity_edges ENABLE TRIGGER asset_worker_link_change");
  publish_for(1s);
  // Still the cached link: the caches outlive the change without a notice.
  ASSERT_TRUE(s.wait_all_acked(20s));
  EXPECT_EQ(assets_by_timestamp().at(sent.back().timestamp),
            (std::set<std::string>{plant.pump_a, plant.pump_b}));

  WorkerProcess command(s.worker_env(),
                        {"links", "invalidate", "--org", plant.org, "--device", plant.device});
  std::optional<int> code;
  for (auto end = Clock::now() + 10s; !code && Clock::now() < end;
       std::this_thread::sleep_for(50ms)) {
    code = command.exited();
  }
  ASSERT_EQ(code, 0) << command.log_path();
  const auto changed = Clock::now();
  publish_for(3500ms);
  ASSERT_TRUE(s.wait_all_acked(20s));
  const auto by_ts = assets_by_timestamp();
  size_t checked = 0;
  for (const auto& m : sent) {
    if (m.at < changed + 2s) continue;
    EXPECT_EQ(by_ts.at(m.timestamp), (std::set<std::string>{plant.pump_a, pump_c}));
    ++checked;
  }
  EXPECT_GE(checked, 5u);
}

TEST_F(LinkInvalidation, LinksInvalidateNeedsADeviceOrAll) {
  WorkerProcess command(s.worker_env(), {"links", "invalidate", "--org", plant.org});
  std::optional<int> code;
  for (auto end = Clock::now() + 10s; !code && Clock::now() < end;
       std::this_thread::sleep_for(50ms)) {
    code = command.exited();
  }
  EXPECT_EQ(code, 2);
}

}  // namespace
}  // namespace atw::testing
