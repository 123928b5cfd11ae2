// asset-worker formulas check | try against the real database.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/servers.h"

namespace atw::testing {
namespace {

using namespace std::chrono_literals;

// Runs `asset-worker args...` to its end; returns its exit code and output (stdout and stderr).
std::pair<std::optional<int>, std::string> run_command(Scenario& s, std::vector<std::string> args) {
  WorkerProcess command(s.worker_env(), std::move(args));
  std::optional<int> code;
  for (auto end = std::chrono::steady_clock::now() + 20s;
       !code && std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(20ms)) {
    code = command.exited();
  }
  return {code, read_file(command.log_path())};
}

class FormulasCommand : public ::testing::Test {
 protected:
  FormulasCommand() {
    good = s.name("type-good");
    bad = s.name("type-bad");
    s.sql().exec(
        "INSERT INTO asset_types (id, name, telemetry_schema) VALUES"
        " ($1, 'Good', $3::jsonb), ($2, 'Bad', $4::jsonb)",
        {good, bad,
         R"({"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current"}],
             "health_rules": [{"metric": "power_consumption", "bands": [{"op": "<", "value": 10, "penalty": 40}]}]})",
         R"json({"derived_metrics": [{"name": "broken", "formula": "power_input *"},
                                 {"name": "mystery", "formula": "frobnicate(power_input)"},
                                 {"name": "ok", "formula": "power_input + 1"}]
    })json"});
  }
  Scenario s;
  std::string good, bad;
};

TEST_F(FormulasCommand, CheckListsEachProblemWithItsAssetType) {
  const auto [code, out] = run_command(s, {"formulas", "check"});
  EXPECT_EQ(code, 1) << out;  // at least this scenario's broken type
  std::vector<std::string> ours;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(bad + "\t", 0) == 0) ours.push_back(line);
    EXPECT_EQ(line.rfind(good + "\t", 0), std::string::npos) << "no problem in " << good;
  }
  ASSERT_EQ(ours.size(), 2u) << out;
  EXPECT_NE(ours[0].find("derived_metrics[0] (broken)"), std::string::npos) << ours[0];
  EXPECT_NE(ours[1].find("derived_metrics[1] (mystery)"), std::string::npos) << ours[1];
  EXPECT_NE(out.find("problem(s)"), std::string::npos);
}

TEST_F(FormulasCommand, TryPrintsTheMetricsAndScoreAMessageWouldGiveAndWritesNothing) {
  const std::string before = *s.sql().scalar("SELECT count(*) FROM telemetry_history");
  const auto [code, out] =
      run_command(s, {"formulas", "try", "--asset-type", good, "--metrics",
                      R"({"power_input": 2, "power_current": 3, "motor_temperature": 75})"});
  ASSERT_EQ(code, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["assetType"], good);
  EXPECT_EQ(j["metrics"]["power_consumption"], 6.0);
  EXPECT_EQ(j["healthScore"], 60.0);  // power_consumption 6 < 10: -40
  EXPECT_TRUE(j["problems"].empty());
  EXPECT_EQ(*s.sql().scalar("SELECT count(*) FROM telemetry_history"), before);

  // The broken type: the good formula still derives, the problems are listed.
  const auto [code2, out2] = run_command(
      s, {"formulas", "try", "--asset-type", bad, "--metrics", R"({"power_input": 2})"});
  ASSERT_EQ(code2, 0) << out2;
  const auto k = nlohmann::json::parse(out2);
  EXPECT_EQ(k["metrics"]["ok"], 3.0);
  EXPECT_FALSE(k["metrics"].contains("broken"));
  EXPECT_EQ(k["problems"].size(), 2u);

  const auto [code3, out3] = run_command(
      s, {"formulas", "try", "--asset-type", bad, "--metrics", R"({"power_input": "x"})"});
  EXPECT_EQ(code3, 2) << out3;
  const auto [code4, out4] =
      run_command(s, {"formulas", "try", "--asset-type", s.name("nope"), "--metrics", "{}"});
  EXPECT_EQ(code4, 1) << out4;
}

}  // namespace
}  // namespace atw::testing
