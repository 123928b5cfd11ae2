#include "domain/asset_type.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atw {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A schema with the given derived metrics, each {name, formula}.
std::string derived_schema(const std::vector<std::pair<std::string, std::string>>& formulas) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, formula] : formulas) {
    list.push_back({{"name", name}, {"formula", formula}, {"unit", "x"}});
  }
  return nlohmann::json{{"derived_metrics", list}}.dump();
}

std::vector<std::string> wheres(const AssetTypeModel& model) {
  std::vector<std::string> out;
  for (const auto& p : model.problems()) out.push_back(p.where);
  return out;
}

// Evaluates one formula against `metrics`; nullopt if it gave no value.
std::optional<double> eval(const std::string& formula, MetricSet metrics = {}) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"out", formula}}));
  EXPECT_THAT(model->problems(), IsEmpty()) << formula;
  DerivationStats stats;
  model->derive(metrics, stats);
  return metrics.get("out");
}

// --- The design document's example (seed step 3) ---

TEST(AssetTypeModel, PumpAGetsPowerConsumptionAndFullHealth) {
  auto model = AssetTypeModel::compile("type-pump", R"({
    "derived_metrics": [
      {"name": "power_consumption", "formula": "power_input * power_current", "unit": "watts"}
    ]})");
  EXPECT_EQ(model->asset_type_id(), "type-pump");
  EXPECT_THAT(model->problems(), IsEmpty());
  EXPECT_EQ(model->formula_count(), 1u);

  MetricSet metrics{{"power_input", 12.3}, {"power_current", 2.5}, {"motor_temperature", 25.5}};
  DerivationStats stats;
  model->derive(metrics, stats);

  ASSERT_EQ(metrics.size(), 4u);
  auto last = *(metrics.begin() + 3);
  EXPECT_EQ(last.name, "power_consumption");
  EXPECT_DOUBLE_EQ(last.value, 30.75);
  EXPECT_EQ(stats.missing_variable, 0);
  EXPECT_EQ(stats.non_finite, 0);
  EXPECT_EQ(model->health(metrics), 100);
}

TEST(AssetTypeModel, PumpBWithNullSchemaUsesDefaults) {
  auto model = AssetTypeModel::compile("type-pump", "null");
  EXPECT_THAT(model->problems(), IsEmpty());
  EXPECT_EQ(model->formula_count(), 0u);

  MetricSet metrics{{"motor_temperature", 25.5}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"motor_temperature", 25.5}}));
  EXPECT_EQ(model->health(metrics), 100);
  // The defaults are in force: a hot motor costs 30.
  EXPECT_EQ(model->health(MetricSet{{"motor_temperature", 85}}), 70);
}

// --- Schema text ---

TEST(AssetTypeModel, EmptyTextIsNoSchema) {
  for (const char* text : {"", "  \n"}) {
    auto model = AssetTypeModel::compile("t", text);
    EXPECT_THAT(model->problems(), IsEmpty());
    EXPECT_EQ(model->formula_count(), 0u);
    EXPECT_EQ(model->health(MetricSet{{"vibration", 6}}), 80);
  }
}

TEST(AssetTypeModel, InvalidJsonIsAProblemAndDefaultsApply) {
  auto model = AssetTypeModel::compile("t", R"({"derived_metrics": [)");
  EXPECT_THAT(wheres(*model), ElementsAre("telemetry_schema"));
  EXPECT_EQ(model->formula_count(), 0u);
  EXPECT_EQ(model->health(MetricSet{{"vibration", 6}}), 80);
}

TEST(AssetTypeModel, NonObjectSchemaIsAProblemAndDefaultsApply) {
  for (const char* text : {"[]", "42", R"("text")"}) {
    auto model = AssetTypeModel::compile("t", text);
    EXPECT_THAT(wheres(*model), ElementsAre("telemetry_schema")) << text;
    EXPECT_EQ(model->health(MetricSet{{"power_consumption", 1}}), 60);
  }
}

TEST(AssetTypeModel, ObjectWithoutEitherKeyUsesDefaults) {
  auto model = AssetTypeModel::compile("t", R"({"other": 1, "derived_metrics": null})");
  EXPECT_THAT(model->problems(), IsEmpty());
  EXPECT_EQ(model->formula_count(), 0u);
  EXPECT_EQ(model->health(MetricSet{{"power_consumption", 1}}), 60);
}

// --- Derived metrics (SPEC D9) ---

TEST(AssetTypeModel, LaterFormulasSeeEarlierDerivedValues) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"a", "x * 2"}, {"b", "a + 1"}}));
  MetricSet metrics{{"x", 5}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"x", 5}, {"a", 10}, {"b", 11}}));
}

TEST(AssetTypeModel, EarlierFormulasDoNotSeeLaterOnes) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"b", "a + 1"}, {"a", "x * 2"}}));
  MetricSet metrics{{"x", 5}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"x", 5}, {"a", 10}}));
  EXPECT_EQ(stats.missing_variable, 1);
}

TEST(AssetTypeModel, MissingVariableGivesNoValue) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"p", "power_input * power_current"}}));
  MetricSet metrics{{"power_input", 12.3}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"power_input", 12.3}}));
  EXPECT_EQ(stats.missing_variable, 1);
  EXPECT_EQ(stats.non_finite, 0);
}

TEST(AssetTypeModel, NonFiniteResultsGiveNoValue) {
  auto model = AssetTypeModel::compile(
      "t", derived_schema(
               {{"inf", "x / 0"}, {"nan", "sqrt(-1)"}, {"nan2", "0 / 0 * x"}, {"ok", "x + 1"}}));
  EXPECT_EQ(model->formula_count(), 4u);
  MetricSet metrics{{"x", 1}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"x", 1}, {"ok", 2}}));
  EXPECT_EQ(stats.non_finite, 3);
  EXPECT_EQ(stats.missing_variable, 0);
}

TEST(AssetTypeModel, CompiledOnceEvaluatedPerMessage) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"y", "x * x + 1"}}));
  for (double x : {0.0, 2.0, -3.0}) {
    MetricSet metrics{{"x", x}};
    DerivationStats stats;
    model->derive(metrics, stats);
    EXPECT_EQ(metrics.get("y"), x * x + 1) << x;
  }
}

TEST(AssetTypeModel, DerivedMetricMayOverwriteAnAssetMetric) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"x", "x * 2"}}));
  MetricSet metrics{{"x", 4}, {"z", 1}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"x", 8}, {"z", 1}}));
}

TEST(AssetTypeModel, AssignmentInAFormulaDoesNotChangeTheMetric) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"y", "x = x + 1"}, {"z", "x"}}));
  MetricSet metrics{{"x", 3}};
  DerivationStats stats;
  model->derive(metrics, stats);
  model->derive(metrics, stats);  // a redelivery derives the same values
  EXPECT_EQ(metrics, (MetricSet{{"x", 3}, {"y", 4}, {"z", 3}}));
}

TEST(AssetTypeModel, FormulaWithoutVariablesAlwaysGivesItsValue) {
  EXPECT_EQ(eval("2 ^ 10"), 1024);
  EXPECT_EQ(eval("_pi > 3 ? 1 : 0"), 1);
}

TEST(AssetTypeModel, BadFormulasAreListedAndOthersStillWork) {
  auto model = AssetTypeModel::compile("t", derived_schema({{"bad", "a *"},
                                                            {"good", "x + 1"},
                                                            {"unk", "foo(x)"},
                                                            {"parens", "(x + 1"},
                                                            {"good2", "good * 2"}}));
  EXPECT_THAT(wheres(*model), ElementsAre("derived_metrics[0] (bad)", "derived_metrics[2] (unk)",
                                          "derived_metrics[3] (parens)"));
  for (const auto& p : model->problems()) EXPECT_THAT(p.problem, Not(IsEmpty()));
  EXPECT_EQ(model->formula_count(), 2u);

  MetricSet metrics{{"x", 1}, {"a", 3}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics, (MetricSet{{"x", 1}, {"a", 3}, {"good", 2}, {"good2", 4}}));
}

TEST(AssetTypeModel, UnknownFunctionIsACompileProblem) {
  for (const char* formula : {"foo(x)", "rnd()", "random(1)", "x + system(1)"}) {
    auto model = AssetTypeModel::compile("t", derived_schema({{"y", formula}}));
    EXPECT_THAT(wheres(*model), ElementsAre("derived_metrics[0] (y)")) << formula;
    EXPECT_EQ(model->formula_count(), 0u) << formula;
  }
}

TEST(AssetTypeModel, WrongArgumentCountsAreCompileProblems) {
  for (const char* formula : {"sum()", "sqrt(1, 2)", "atan2(1)", "x, y", "sin()"}) {
    auto model = AssetTypeModel::compile("t", derived_schema({{"y", formula}}));
    EXPECT_EQ(model->problems().size(), 1u) << formula;
    EXPECT_EQ(model->formula_count(), 0u) << formula;
  }
}

TEST(AssetTypeModel, FormulaLengthLimit) {
  std::string at_limit = "x";
  for (int i = 0; i < 499; ++i) at_limit += "+1";
  at_limit += " ";
  ASSERT_EQ(at_limit.size(), AssetTypeModel::kMaxFormulaLength);
  std::string over = at_limit + " ";
  std::string huge(5000, ' ');
  huge.front() = 'x';

  auto model = AssetTypeModel::compile(
      "t", derived_schema({{"ok", at_limit}, {"over", over}, {"huge", huge}}));
  EXPECT_THAT(wheres(*model),
              ElementsAre("derived_metrics[1] (over)", "derived_metrics[2] (huge)"));
  for (const auto& p : model->problems()) EXPECT_THAT(p.problem, HasSubstr("1000"));
  EXPECT_EQ(model->formula_count(), 1u);

  MetricSet metrics{{"x", 1}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics.get("ok"), 500);
}

TEST(AssetTypeModel, DeepNestingDoesNotCrash) {
  // The deepest nesting that fits the length limit evaluates.
  std::string deep = std::string(499, '(') + "x" + std::string(499, ')');
  EXPECT_EQ(eval(deep, MetricSet{{"x", 7}}), 7);

  // 1000 levels are over the length limit: rejected, not parsed.
  std::string deeper = std::string(1000, '(') + "x" + std::string(1000, ')');
  auto model = AssetTypeModel::compile("t", derived_schema({{"y", deeper}}));
  EXPECT_THAT(wheres(*model), ElementsAre("derived_metrics[0] (y)"));

  // Unbalanced deep nesting is a compile problem.
  std::string unbalanced = std::string(900, '(') + "x";
  model = AssetTypeModel::compile("t", derived_schema({{"y", unbalanced}}));
  EXPECT_THAT(wheres(*model), ElementsAre("derived_metrics[0] (y)"));
}

TEST(AssetTypeModel, MalformedEntriesAreSkippedAndListed) {
  auto model = AssetTypeModel::compile("t", R"({"derived_metrics": [
      {"formula": "1"},
      {"name": 5, "formula": "1"},
      {"name": "a"},
      {"name": "b", "formula": 3},
      "c = 1",
      {"name": "bad name!", "formula": "1"},
      {"name": "", "formula": "1"},
      {"name": "fine", "formula": "1"}
    ]})");
  EXPECT_THAT(wheres(*model),
              ElementsAre("derived_metrics[0]", "derived_metrics[1]", "derived_metrics[2] (a)",
                          "derived_metrics[3] (b)", "derived_metrics[4]", "derived_metrics[5]",
                          "derived_metrics[6]"));
  EXPECT_EQ(model->formula_count(), 1u);
}

TEST(AssetTypeModel, DerivedMetricsNotAnArrayIsAProblem) {
  auto model = AssetTypeModel::compile("t", R"({"derived_metrics": {"name": "a"}})");
  EXPECT_THAT(wheres(*model), ElementsAre("derived_metrics"));
  EXPECT_EQ(model->formula_count(), 0u);
}

TEST(AssetTypeModel, MetricNamesMuParserCannotSpellAreStillCarried) {
  // A metric named with '.' or ':' cannot be referenced, but does not disturb formulas.
  auto model = AssetTypeModel::compile("t", derived_schema({{"y", "x * 2"}}));
  MetricSet metrics{{"a.b", 1}, {"c:d-e", 2}, {"x", 3}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics.get("y"), 6);

  // A formula cannot name one: muParser stops at the '.', which is a compile problem.
  model = AssetTypeModel::compile("t", derived_schema({{"y", "a.b * 2"}}));
  EXPECT_THAT(wheres(*model), ElementsAre("derived_metrics[0] (y)"));
}

TEST(AssetTypeModel, AllowedFunctions) {
  EXPECT_EQ(eval("min(3, 1, 2)"), 1);
  EXPECT_EQ(eval("max(3, 1, 2)"), 3);
  EXPECT_EQ(eval("sum(3, 1, 2)"), 6);
  EXPECT_EQ(eval("avg(3, 1, 2)"), 2);
  EXPECT_EQ(eval("abs(-2.5)"), 2.5);
  EXPECT_EQ(eval("sqrt(16)"), 4);
  EXPECT_EQ(eval("exp(0)"), 1);
  EXPECT_DOUBLE_EQ(*eval("ln(_e)"), 1);
  EXPECT_DOUBLE_EQ(*eval("log(_e)"), 1);  // muParser's log is the natural logarithm
  EXPECT_DOUBLE_EQ(*eval("log10(1000)"), 3);
  EXPECT_DOUBLE_EQ(*eval("log2(8)"), 3);
  EXPECT_EQ(eval("sign(-3)"), -1);
  EXPECT_EQ(eval("rint(2.5)"), 3);
  EXPECT_DOUBLE_EQ(*eval("atan2(1, 1)"), std::atan(1.0));
  EXPECT_DOUBLE_EQ(*eval("sin(1) + cos(1) + tan(1)"), std::sin(1) + std::cos(1) + std::tan(1));
  EXPECT_DOUBLE_EQ(*eval("asin(0.5) + acos(0.5) + atan(0.5)"),
                   std::asin(0.5) + std::acos(0.5) + std::atan(0.5));
  EXPECT_DOUBLE_EQ(*eval("sinh(1) + cosh(1) + tanh(1)"),
                   std::sinh(1) + std::cosh(1) + std::tanh(1));
  EXPECT_NEAR(*eval("asinh(1) + acosh(2) + atanh(0.5)"),
              std::asinh(1) + std::acosh(2) + std::atanh(0.5), 1e-12);
}

// --- Health score (SPEC D10) ---

double default_health(MetricSet metrics) {
  return health_score(metrics, default_health_rules());
}

TEST(HealthScore, DefaultRulesAtEachThreshold) {
  EXPECT_EQ(default_health({}), 100);
  EXPECT_EQ(default_health({{"motor_temperature", 70}}), 100);
  EXPECT_EQ(default_health({{"motor_temperature", 70.0001}}), 90);
  EXPECT_EQ(default_health({{"motor_temperature", 80}}), 90);  // not > 80, but > 70
  EXPECT_EQ(default_health({{"motor_temperature", 80.0001}}), 70);
  EXPECT_EQ(default_health({{"vibration", 5.0}}), 100);
  EXPECT_EQ(default_health({{"vibration", 5.0001}}), 80);
  EXPECT_EQ(default_health({{"power_consumption", 10}}), 100);
  EXPECT_EQ(default_health({{"power_consumption", 9.99}}), 60);
  EXPECT_EQ(default_health({{"motor_temperature", 95}, {"vibration", 6}, {"power_consumption", 0}}),
            10);
}

TEST(HealthScore, ClampedToZeroAndHundred) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": [
      {"metric": "a", "bands": [{"op": ">", "value": 0, "penalty": 60}]},
      {"metric": "b", "bands": [{"op": ">", "value": 0, "penalty": 70}]},
      {"metric": "c", "bands": [{"op": ">", "value": 0, "penalty": -50}]}
    ]})");
  EXPECT_THAT(model->problems(), IsEmpty());
  EXPECT_EQ(model->health(MetricSet{{"a", 1}, {"b", 1}}), 0);
  EXPECT_EQ(model->health(MetricSet{{"c", 1}}), 100);
  // Clamping happens once, at the end: a bonus can offset penalties.
  EXPECT_EQ(model->health(MetricSet{{"a", 1}, {"c", 1}}), 90);
}

TEST(HealthScore, CustomRulesReplaceDefaults) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": [
      {"metric": "pressure", "bands": [{"op": ">", "value": 5, "penalty": 15}]}
    ]})");
  EXPECT_THAT(model->problems(), IsEmpty());
  EXPECT_EQ(model->health(MetricSet{{"motor_temperature", 95}, {"power_consumption", 0}}), 100);
  EXPECT_EQ(model->health(MetricSet{{"pressure", 6}}), 85);
  EXPECT_EQ(model->health(MetricSet{{"pressure", 2.5}}), 100);
}

TEST(HealthScore, EmptyRulesReplaceDefaultsToo) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": []})");
  EXPECT_EQ(model->health(MetricSet{{"motor_temperature", 95}}), 100);
}

TEST(HealthScore, NullRulesKeepDefaults) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": null})");
  EXPECT_THAT(model->problems(), IsEmpty());
  EXPECT_EQ(model->health(MetricSet{{"motor_temperature", 95}}), 70);
}

TEST(HealthScore, RulesNotAnArrayIsAProblemAndDefaultsApply) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": {"metric": "x"}})");
  EXPECT_THAT(wheres(*model), ElementsAre("health_rules"));
  EXPECT_EQ(model->health(MetricSet{{"motor_temperature", 95}}), 70);
}

TEST(HealthScore, FirstMatchingBandOnly) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": [
      {"metric": "t", "bands": [{"op": ">", "value": 50, "penalty": 5},
                                {"op": ">", "value": 10, "penalty": 20}]}
    ]})");
  EXPECT_EQ(model->health(MetricSet{{"t", 60}}), 95);
  EXPECT_EQ(model->health(MetricSet{{"t", 20}}), 80);
  EXPECT_EQ(model->health(MetricSet{{"t", 5}}), 100);
}

TEST(HealthScore, EachOperator) {
  struct Case {
    const char* op;
    bool below, equal, above;  // does 9, 10, 11 match "op 10"?
  };
  for (const Case& c : {Case{">", false, false, true}, Case{">=", false, true, true},
                        Case{"<", true, false, false}, Case{"<=", true, true, false},
                        Case{"==", false, true, false}, Case{"!=", true, false, true}}) {
    nlohmann::json schema = {
        {"health_rules",
         {{{"metric", "m"}, {"bands", {{{"op", c.op}, {"value", 10}, {"penalty", 25}}}}}}}};
    auto model = AssetTypeModel::compile("t", schema.dump());
    ASSERT_THAT(model->problems(), IsEmpty()) << schema.dump();
    EXPECT_EQ(model->health(MetricSet{{"m", 9}}), c.below ? 75 : 100) << c.op;
    EXPECT_EQ(model->health(MetricSet{{"m", 10}}), c.equal ? 75 : 100) << c.op;
    EXPECT_EQ(model->health(MetricSet{{"m", 11}}), c.above ? 75 : 100) << c.op;
    // A missing metric matches nothing, not even "!=".
    EXPECT_EQ(model->health(MetricSet{{"other", 10}}), 100) << c.op;
  }
}

TEST(HealthScore, MalformedRulesAndBandsAreSkippedAndListed) {
  auto model = AssetTypeModel::compile("t", R"({"health_rules": [
      {"metric": "a", "bands": [
        {"op": "=>", "value": 1, "penalty": 10},
        {"op": ">", "value": "1", "penalty": 10},
        {"op": ">", "value": 1},
        {"value": 1, "penalty": 10},
        {"op": ">", "value": 1, "penalty": true},
        7,
        {"op": ">", "value": 1, "penalty": 10}
      ]},
      {"bands": [{"op": ">", "value": 0, "penalty": 50}]},
      {"metric": "", "bands": []},
      {"metric": "b", "bands": {"op": ">"}},
      "rule",
      {"metric": "c", "bands": [{"op": "<", "value": 0, "penalty": 5}]}
    ]})");
  EXPECT_THAT(wheres(*model),
              ElementsAre("health_rules[0].bands[0]", "health_rules[0].bands[1]",
                          "health_rules[0].bands[2]", "health_rules[0].bands[3]",
                          "health_rules[0].bands[4]", "health_rules[0].bands[5]", "health_rules[1]",
                          "health_rules[2]", "health_rules[3]", "health_rules[4]"));
  EXPECT_THAT(model->problems()[0].problem, HasSubstr("=>"));
  // The valid band of rule 0 and rule 5 apply; the defaults do not.
  EXPECT_EQ(model->health(MetricSet{{"a", 2}, {"c", -1}, {"motor_temperature", 95}}), 85);
}

TEST(AssetTypeModel, BothSectionsTogether) {
  auto model = AssetTypeModel::compile("t", R"({
    "derived_metrics": [{"name": "load", "formula": "current / rated * 100"}],
    "health_rules": [{"metric": "load", "bands": [{"op": ">=", "value": 90, "penalty": 50}]}]
  })");
  EXPECT_THAT(model->problems(), IsEmpty());
  MetricSet metrics{{"current", 9.5}, {"rated", 10}};
  DerivationStats stats;
  model->derive(metrics, stats);
  EXPECT_EQ(metrics.get("load"), 95);
  EXPECT_EQ(model->health(metrics), 50);
}

TEST(HealthExplained, EachRuleThatTookPointsWithItsBand) {
  const auto r = health_explained(
      MetricSet{{"motor_temperature", 75}, {"vibration", 6}, {"power_consumption", 30}},
      default_health_rules());
  EXPECT_EQ(r.score, 70);
  ASSERT_EQ(r.details.size(), 2u);
  EXPECT_EQ(r.details[0], (HealthDetail{"motor_temperature", 75, HealthOp::kGt, 70, 10}));
  EXPECT_EQ(r.details[1], (HealthDetail{"vibration", 6, HealthOp::kGt, 5, 20}));
  EXPECT_TRUE(health_explained(MetricSet{{"motor_temperature", 20}}, default_health_rules())
                  .details.empty());
}

TEST(HealthExplained, ABadReadingIsMissingAndAnUncertainOneCountsUnlessThePolicySaysNo) {
  const MetricSet bad{{"motor_temperature", 95, Quality::kBad}};
  EXPECT_EQ(health_explained(bad, default_health_rules()).score, 100);
  const MetricSet uncertain{{"motor_temperature", 95, Quality::kUncertain}};
  EXPECT_EQ(health_explained(uncertain, default_health_rules()).score, 70);
  EXPECT_EQ(health_explained(uncertain, default_health_rules(), QualityPolicy{false}).score, 100);
}

TEST(AssetTypeModel, ADerivedMetricHasTheWorstQualityOfItsInputs) {
  const auto m = AssetTypeModel::compile(
      "t",
      R"({"derived_metrics": [{"name": "p", "formula": "a * b"}, {"name": "q", "formula": "a + 1"}]})");
  MetricSet s{{"a", 2, Quality::kGood}, {"b", 3, Quality::kUncertain}};
  DerivationStats stats;
  m->derive(s, stats);
  EXPECT_EQ(s.find_metric("p")->value, 6);
  EXPECT_EQ(s.find_metric("p")->quality, Quality::kUncertain);
  EXPECT_EQ(s.find_metric("q")->quality, Quality::kGood);
}

TEST(AssetTypeModel, ABadInputLeavesTheFormulaWithoutAValue) {
  const auto m =
      AssetTypeModel::compile("t", R"({"derived_metrics": [{"name": "p", "formula": "a * b"}]})");
  MetricSet s{{"a", 2}, {"b", 3, Quality::kBad}};
  DerivationStats stats;
  m->derive(s, stats);
  EXPECT_EQ(s.find("p"), nullptr);
  EXPECT_EQ(stats.missing_variable, 1);
}

TEST(AssetTypeModel, QualityPolicyGoodOnly) {
  const auto strict = AssetTypeModel::compile(
      "t",
      R"({"quality_policy": "good_only", "derived_metrics": [{"name": "p", "formula": "a * 2"}]})");
  EXPECT_TRUE(strict->problems().empty());
  EXPECT_FALSE(strict->quality_policy().use_uncertain);
  MetricSet s{{"a", 2, Quality::kUncertain}, {"motor_temperature", 95, Quality::kUncertain}};
  DerivationStats stats;
  strict->derive(s, stats);
  EXPECT_EQ(s.find("p"), nullptr);
  EXPECT_EQ(strict->health(s), 100);
  const auto wrong = AssetTypeModel::compile("t", R"({"quality_policy": "whatever"})");
  ASSERT_EQ(wrong->problems().size(), 1u);
  EXPECT_EQ(wrong->problems()[0].where, "quality_policy");
  EXPECT_TRUE(wrong->quality_policy().use_uncertain);
}

}  // namespace
}  // namespace atw
