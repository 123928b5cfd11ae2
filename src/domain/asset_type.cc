#include "domain/asset_type.h"

#include <fmt/format.h>
#include <muParser.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "domain/health_state.h"

namespace atw {

namespace {

using Math = mu::MathImpl<double>;

// The functions a formula may call (SPEC D9), with muParser's own implementations. The parser's
// built-in set is cleared and replaced by this table so that a muParser upgrade cannot slip in a
// non-deterministic function (newer releases may add one, such as `rnd`): a derived value must
// depend on the message alone, or a redelivery would write a different row.
struct UnaryFunction {
  const char* name;
  double (*fn)(double);
};
constexpr UnaryFunction kUnaryFunctions[] = {
    {"sin", Math::Sin},   {"cos", Math::Cos},     {"tan", Math::Tan},     {"asin", Math::ASin},
    {"acos", Math::ACos}, {"atan", Math::ATan},   {"sinh", Math::Sinh},   {"cosh", Math::Cosh},
    {"tanh", Math::Tanh}, {"asinh", Math::ASinh}, {"acosh", Math::ACosh}, {"atanh", Math::ATanh},
    {"log2", Math::Log2}, {"log10", Math::Log10}, {"log", Math::Log},     {"ln", Math::Log},
    {"exp", Math::Exp},   {"sqrt", Math::Sqrt},   {"sign", Math::Sign},   {"rint", Math::Rint},
    {"abs", Math::Abs},
};

struct VariadicFunction {
  const char* name;
  double (*fn)(const double*, int);
};
constexpr VariadicFunction kVariadicFunctions[] = {
    {"sum", Math::Sum}, {"avg", Math::Avg}, {"min", Math::Min}, {"max", Math::Max}};

void define_functions(mu::Parser& parser) {
  parser.ClearFun();
  for (const auto& f : kUnaryFunctions) parser.DefineFun(f.name, f.fn);
  parser.DefineFun("atan2", Math::ATan2);
  for (const auto& f : kVariadicFunctions) parser.DefineFun(f.name, f.fn);
}

std::optional<HealthOp> parse_op(const std::string& op) {
  if (op == ">") return HealthOp::kGt;
  if (op == ">=") return HealthOp::kGe;
  if (op == "<") return HealthOp::kLt;
  if (op == "<=") return HealthOp::kLe;
  if (op == "==") return HealthOp::kEq;
  if (op == "!=") return HealthOp::kNe;
  return std::nullopt;
}

bool matches(HealthOp op, double metric, double value) {
  switch (op) {
    case HealthOp::kGt:
      return metric > value;
    case HealthOp::kGe:
      return metric >= value;
    case HealthOp::kLt:
      return metric < value;
    case HealthOp::kLe:
      return metric <= value;
    case HealthOp::kEq:
      return metric == value;
    case HealthOp::kNe:
      return metric != value;
  }
  return false;
}

std::string describe(const nlohmann::json& j) {
  std::string s = j.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

}  // namespace

// A compiled formula. Owned through unique_ptr and never moved, because the parser holds the
// addresses of `slots` and a pointer to the Formula itself (the variable factory's user data).
struct AssetTypeModel::Formula {
  std::string name;
  mu::Parser parser;
  std::deque<double> slots;  // a deque keeps addresses stable as the factory appends
  std::vector<std::pair<std::string, double*>> inputs;

  static double* add_slot(const char* /*name*/, void* formula) {
    auto* self = static_cast<Formula*>(formula);
    return &self->slots.emplace_back(0.0);
  }
};

AssetTypeModel::~AssetTypeModel() = default;

size_t AssetTypeModel::formula_count() const {
  return formulas_.size();
}

const std::vector<HealthRule>& default_health_rules() {
  // The seed's computeHealthScore: its `if / else if` on temperature is one rule with two bands.
  static const std::vector<HealthRule> rules = {
      {"motor_temperature", {{HealthOp::kGt, 80, 30}, {HealthOp::kGt, 70, 10}}},
      {"vibration", {{HealthOp::kGt, 5.0, 20}}},
      {"power_consumption", {{HealthOp::kLt, 10, 40}}},
  };
  return rules;
}

std::string_view health_op_text(HealthOp op) {
  switch (op) {
    case HealthOp::kGt:
      return ">";
    case HealthOp::kGe:
      return ">=";
    case HealthOp::kLt:
      return "<";
    case HealthOp::kLe:
      return "<=";
    case HealthOp::kEq:
      return "==";
    case HealthOp::kNe:
      return "!=";
  }
  return "?";
}

HealthResult health_explained(const MetricSet& metrics, const std::vector<HealthRule>& rules,
                              QualityPolicy policy) {
  HealthResult r;
  for (const auto& rule : rules) {
    const Metric* m = metrics.find_metric(rule.metric);
    if (m == nullptr || !policy.usable(m->quality)) continue;
    for (const auto& band : rule.bands) {
      if (matches(band.op, m->value, band.value)) {
        r.score -= band.penalty;
        if (band.penalty != 0) {
          r.details.push_back({rule.metric, m->value, band.op, band.value, band.penalty});
        }
        break;
      }
    }
  }
  r.score = std::max(0.0, std::min(100.0, r.score));
  return r;
}

std::shared_ptr<AssetTypeModel> AssetTypeModel::compile(std::string asset_type_id,
                                                        std::string_view schema_json) {
  std::shared_ptr<AssetTypeModel> model(new AssetTypeModel());
  model->asset_type_id_ = std::move(asset_type_id);
  model->health_rules_ = default_health_rules();
  model->health_states_ = std::make_shared<const HealthStatePolicy>(HealthStatePolicy::standard());
  auto problem = [&](std::string where, std::string what) {
    model->problems_.push_back(SchemaProblem{std::move(where), std::move(what)});
  };

  if (schema_json.find_first_not_of(" \t\r\n") == std::string_view::npos) return model;
  nlohmann::json schema = nlohmann::json::parse(schema_json, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) {
    problem("telemetry_schema", "not valid JSON");
    return model;
  }
  if (schema.is_null()) return model;
  if (!schema.is_object()) {
    problem("telemetry_schema", "not a JSON object");
    return model;
  }

  if (auto it = schema.find("derived_metrics"); it != schema.end() && !it->is_null()) {
    if (!it->is_array()) {
      problem("derived_metrics", "not an array");
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        const auto& entry = (*it)[i];
        std::string where = fmt::format("derived_metrics[{}]", i);
        const nlohmann::json* name = nullptr;
        const nlohmann::json* formula = nullptr;
        if (entry.is_object()) {
          if (auto n = entry.find("name"); n != entry.end()) name = &*n;
          if (auto f = entry.find("formula"); f != entry.end()) formula = &*f;
        }
        if (name == nullptr || !name->is_string()) {
          problem(where, "no string \"name\"");
          continue;
        }
        const auto& name_str = name->get_ref<const std::string&>();
        if (!is_valid_metric_name(name_str)) {  // they join the asset's metrics (SPEC D3)
          problem(where, "\"name\" must match [A-Za-z0-9_.:-]{1,128}");
          continue;
        }
        where += fmt::format(" ({})", name_str);
        if (formula == nullptr || !formula->is_string()) {
          problem(where, "no string \"formula\"");
          continue;
        }
        const auto& formula_str = formula->get_ref<const std::string&>();
        if (formula_str.size() > kMaxFormulaLength) {
          problem(where, fmt::format("formula longer than {} characters", kMaxFormulaLength));
          continue;
        }

        auto f = std::make_unique<Formula>();
        f->name = name_str;
        try {
          define_functions(f->parser);
          f->parser.SetVarFactory(&Formula::add_slot, f.get());
          f->parser.SetExpr(formula_str);
          // muParser parses lazily: evaluating once here makes a syntax error a compile problem
          // and leaves the bytecode built, so messages never pay for parsing.
          f->parser.Eval();
          if (f->parser.GetNumResults() != 1) {
            problem(where, "formula must be a single expression");
            continue;
          }
        } catch (const mu::Parser::exception_type& e) {
          problem(where, e.GetMsg());
          continue;
        } catch (const std::exception& e) {
          problem(where, e.what());
          continue;
        }
        // No variable is defined but through the factory, so the defined ones are the used ones.
        for (const auto& [var, slot] : f->parser.GetVar()) f->inputs.emplace_back(var, slot);
        model->formulas_.push_back(std::move(f));
      }
    }
  }

  if (auto it = schema.find("health_rules"); it != schema.end() && !it->is_null()) {
    if (!it->is_array()) {
      problem("health_rules", "not an array; the default rules apply");
    } else {
      model->health_rules_.clear();
      for (size_t i = 0; i < it->size(); ++i) {
        const auto& entry = (*it)[i];
        std::string where = fmt::format("health_rules[{}]", i);
        if (!entry.is_object()) {
          problem(where, "not an object");
          continue;
        }
        auto metric = entry.find("metric");
        if (metric == entry.end() || !metric->is_string() ||
            metric->get_ref<const std::string&>().empty()) {
          problem(where, "no string \"metric\"");
          continue;
        }
        auto bands = entry.find("bands");
        if (bands == entry.end() || !bands->is_array()) {
          problem(where, "no \"bands\" array");
          continue;
        }
        HealthRule rule{metric->get<std::string>(), {}};
        for (size_t j = 0; j < bands->size(); ++j) {
          const auto& band = (*bands)[j];
          std::string band_where = fmt::format("{}.bands[{}]", where, j);
          if (!band.is_object()) {
            problem(band_where, "not an object");
            continue;
          }
          auto op = band.find("op");
          auto value = band.find("value");
          auto penalty = band.find("penalty");
          std::optional<HealthOp> parsed;
          if (op != band.end() && op->is_string()) parsed = parse_op(op->get<std::string>());
          if (!parsed) {
            problem(band_where,
                    op == band.end()
                        ? std::string("no \"op\"")
                        : fmt::format("\"op\" {} is not one of > >= < <= == !=", describe(*op)));
            continue;
          }
          if (value == band.end() || !value->is_number()) {
            problem(band_where, "\"value\" is not a number");
            continue;
          }
          if (penalty == band.end() || !penalty->is_number()) {
            problem(band_where, "\"penalty\" is not a number");
            continue;
          }
          rule.bands.push_back(HealthBand{*parsed, value->get<double>(), penalty->get<double>()});
        }
        model->health_rules_.push_back(std::move(rule));
      }
    }
  }
  // Which readings formulas and health rules use; bad ones never.
  if (auto it = schema.find("quality_policy"); it != schema.end() && !it->is_null()) {
    if (it->is_string() && it->get<std::string>() == "good_only") {
      model->policy_.use_uncertain = false;
    } else if (!it->is_string() || it->get<std::string>() != "good_and_uncertain") {
      problem("quality_policy",
              "not \"good_and_uncertain\" (the default) or \"good_only\"; the default applies");
    }
  }
  if (auto it = schema.find("health_states"); it != schema.end()) {
    HealthStatesParse states = parse_health_states(*it);
    for (auto& p : states.problems) model->problems_.push_back(std::move(p));
    model->health_states_ =
        states.policy ? std::make_shared<const HealthStatePolicy>(std::move(*states.policy))
                      : nullptr;
  }
  return model;
}

void AssetTypeModel::derive(MetricSet& metrics, DerivationStats& stats) const {
  for (const auto& f : formulas_) {
    bool complete = true;
    Quality quality = Quality::kGood;
    for (auto& [name, slot] : f->inputs) {
      const Metric* input = metrics.find_metric(name);
      if (input == nullptr || !policy_.usable(input->quality)) {
        complete = false;
        break;
      }
      *slot = input->value;
      quality = worst(quality, input->quality);
    }
    if (!complete) {
      ++stats.missing_variable;
      continue;
    }
    double result;
    try {
      result = f->parser.Eval();
    } catch (const mu::Parser::exception_type&) {
      // Not expected once compiled; a value we cannot compute is as good as a non-finite one.
      ++stats.non_finite;
      continue;
    }
    if (!std::isfinite(result)) {
      ++stats.non_finite;
      continue;
    }
    metrics.set(f->name, result, quality);
  }
}

}  // namespace atw
