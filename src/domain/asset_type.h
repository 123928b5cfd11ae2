#pragma once
// An asset type's telemetry_schema, compiled once: its derived metrics (SPEC D9) and health rules
// (SPEC D10). This is the only code that sees muParser.
//
// Thread safety: evaluation writes into the compiled formulas' variable slots, so one
// AssetTypeModel must be used by one thread at a time.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "domain/metrics.h"

namespace atw {

struct HealthStatePolicy;  // domain/health_state.h

struct SchemaProblem {
  std::string where;    // e.g. "derived_metrics[1] (power_consumption)" or "health_rules[0]"
  std::string problem;  // e.g. "Unexpected token \"*\" found at position 4."
};

// Counts of what evaluation left out, for metrics.
struct DerivationStats {
  int missing_variable = 0;  // a formula named a metric the asset did not have
  int non_finite = 0;        // a formula gave NaN or an infinity
};

enum class HealthOp { kGt, kGe, kLt, kLe, kEq, kNe };

struct HealthBand {
  HealthOp op;
  double value;
  double penalty;
};

struct HealthRule {
  std::string metric;
  std::vector<HealthBand> bands;  // the first that matches subtracts its penalty
};

// The seed's algorithm as rules: motor_temperature >80:-30, >70:-10; vibration >5:-20;
// power_consumption <10:-40.
const std::vector<HealthRule>& default_health_rules();

// A rule that took points: the metric, its value, the band that matched, the penalty.
struct HealthDetail {
  std::string metric;
  double value = 0;
  HealthOp op = HealthOp::kGt;
  double threshold = 0;
  double penalty = 0;
  bool operator==(const HealthDetail&) const = default;
};
std::string_view health_op_text(HealthOp op);  // ">", ">=", ...

struct HealthResult {
  double score = 100;
  std::vector<HealthDetail> details;  // in rule order; empty when no rule took points
};

// Starts at 100, applies each rule, clamps to 0..100. A missing metric matches nothing, nor does
// one whose quality the policy does not use (bad never, uncertain by default).
HealthResult health_explained(const MetricSet& metrics, const std::vector<HealthRule>& rules,
                              QualityPolicy policy = {});
inline double health_score(const MetricSet& metrics, const std::vector<HealthRule>& rules) {
  return health_explained(metrics, rules).score;
}

class AssetTypeModel {
 public:
  static constexpr size_t kMaxFormulaLength = 1000;

  // Never fails: what cannot be compiled is left out and listed in problems(), so telemetry
  // still flows (SPEC D9). `schema_json` is the telemetry_schema JSON text ("null" for none).
  static std::shared_ptr<AssetTypeModel> compile(std::string asset_type_id,
                                                 std::string_view schema_json);
  ~AssetTypeModel();
  AssetTypeModel(const AssetTypeModel&) = delete;
  AssetTypeModel& operator=(const AssetTypeModel&) = delete;

  // Adds each derived metric, in order; each may use the asset's metrics and earlier derived
  // ones. A formula that names a missing metric (or one whose quality the policy does not use),
  // or gives a non-finite value, adds nothing. A derived metric has the worst quality of its
  // inputs.
  void derive(MetricSet& metrics, DerivationStats& stats) const;
  HealthResult health_explained(const MetricSet& metrics) const {
    return atw::health_explained(metrics, health_rules_, policy_);
  }
  double health(const MetricSet& metrics) const { return health_explained(metrics).score; }
  QualityPolicy quality_policy() const { return policy_; }
  // telemetry_schema.health_states (the standard states when absent); null when turned off.
  const std::shared_ptr<const HealthStatePolicy>& health_states() const { return health_states_; }

  const std::string& asset_type_id() const { return asset_type_id_; }
  const std::vector<SchemaProblem>& problems() const { return problems_; }
  size_t formula_count() const;

 private:
  struct Formula;
  AssetTypeModel() = default;

  std::string asset_type_id_;
  std::vector<std::unique_ptr<Formula>> formulas_;
  std::vector<HealthRule> health_rules_;
  QualityPolicy policy_;
  std::shared_ptr<const HealthStatePolicy> health_states_;
  std::vector<SchemaProblem> problems_;
};

}  // namespace atw
