// Data quality carried through and the score explained, with the real worker and
// servers: a bad reading is stored with its quality and leaves the score alone, a derived value
// inherits the worst quality of its inputs, and every event says which rules took points.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "support/servers.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

TEST(Quality, ABadReadingIsStoredWithItsQualityAndLeavesTheScoreAlone) {
  Scenario s;
  const auto p = s.load_example_plant();
  auto worker = s.start_worker();
  ASSERT_TRUE(worker->wait_ready(seconds(20))) << worker->log_path();
  // 1. A faulty temperature sensor: 95 degrees, marked bad by the gateway (an OPC UA name).
  json bad = Scenario::message(p, s.name("m1"), "2026-01-28T14:30:00Z",
                               {{"temperature", 95}, {"voltage", 12.3}, {"current", 2.5}});
  bad["quality"] = {{"temperature", "BadSensorFailure"}};
  // 2. A real 75 degrees and an uncertain voltage.
  json hot = Scenario::message(p, s.name("m2"), "2026-01-28T14:31:00Z",
                               {{"temperature", 75}, {"voltage", 12.3}, {"current", 2.5}});
  hot["quality"] = {{"voltage", "uncertain"}};
  // 3. No quality at all: today's event, plus healthDetails.
  json plain = Scenario::message(p, s.name("m3"), "2026-01-28T14:32:00Z");
  s.publish({bad.dump(), hot.dump(), plain.dump()});
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker->log_path();
  EXPECT_EQ(worker->stop(SIGTERM), 0);

  const auto rows = s.history({p.pump_a});
  auto has = [&](const std::string& row) {
    return std::find(rows.begin(), rows.end(), p.pump_a + " " + row) != rows.end();
  };
  EXPECT_TRUE(has("motor_temperature=95 2026-01-28T14:30:00 " + p.device + " bad Asset"));
  EXPECT_TRUE(has("power_input=12.3 2026-01-28T14:31:00 " + p.device + " uncertain Asset"));
  // Derived from an uncertain and a good input: uncertain.
  EXPECT_TRUE(has("power_consumption=30.75 2026-01-28T14:31:00 " + p.device + " uncertain Asset"));
  EXPECT_TRUE(has("motor_temperature=25.5 2026-01-28T14:32:00 " + p.device + " good Asset"));

  const auto a = s.events_of(p.pump_a);
  ASSERT_EQ(a.size(), 3u);
  // The bad 95 took no points: 100, nothing explained, its quality said.
  EXPECT_EQ(a[0]["healthScore"], 100);
  EXPECT_EQ(a[0]["healthDetails"], json::array());
  EXPECT_EQ(a[0]["quality"], json({{"motor_temperature", "bad"}}));
  // The real 75 took 10, and says so.
  EXPECT_EQ(a[1]["healthScore"], 90);
  EXPECT_EQ(a[1]["healthDetails"],
            json::parse(R"([{"metric": "motor_temperature", "value": 75, "op": ">",)"
                        R"( "threshold": 70, "penalty": 10}])"));
  EXPECT_EQ(a[1]["quality"],
            json({{"power_input", "uncertain"}, {"power_consumption", "uncertain"}}));
  // Without quality: no quality field.
  EXPECT_FALSE(a[2].contains("quality"));
  EXPECT_EQ(a[2]["healthDetails"], json::array());
  EXPECT_EQ(s.score(p.pump_a), "100");
  EXPECT_TRUE(s.dead_letters().empty());
}

TEST(Quality, AnUnreadableQualityIsAnInvalidMessageAndAnUnknownValueIsCounted) {
  Scenario s;
  const auto p = s.load_example_plant();
  auto worker = s.start_worker();
  ASSERT_TRUE(worker->wait_ready(seconds(20))) << worker->log_path();
  json unreadable = Scenario::message(p, s.name("m1"));
  unreadable["quality"] = json::array({"bad"});
  json unknown = Scenario::message(p, s.name("m2"), "2026-01-28T14:31:00Z");
  unknown["quality"] = "questionable";
  s.publish({unreadable.dump(), unknown.dump()});
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker->log_path();
  const auto dlq = s.dead_letters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0]["errorType"], "invalid_message");
  EXPECT_NE(dlq[0]["lastError"].get<std::string>().find("quality:"), std::string::npos);
  EXPECT_EQ(metric(worker->get("/metrics"), "asset_worker_quality_unknown_total"), 1);
  const auto a = s.events_of(p.pump_a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0]["quality"]["motor_temperature"], "uncertain");
  EXPECT_EQ(worker->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace atw::testing
