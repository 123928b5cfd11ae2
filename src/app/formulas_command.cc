// asset-worker formulas check | try: the asset types' derived metrics and health rules as the
// worker compiles them, without processing or writing anything.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "adapters/postgres/pg_asset_types.h"
#include "app/commands.h"
#include "domain/asset_type.h"

namespace atw {

int run_formulas_check(const Config& c) {
  PgConnection db(c.database());
  auto types = read_asset_type_schemas(db);
  if (!types.ok()) {
    print_error(types.status().message());
    return 1;
  }
  size_t problems = 0;
  for (const AssetTypeSchema& type : *types) {
    const auto model = AssetTypeModel::compile(type.id, type.schema_json);
    for (const SchemaProblem& p : model->problems()) {
      fmt::print("{}\t{}\t{}\n", type.id, p.where, p.problem);
      ++problems;
    }
  }
  fmt::print(stderr, "{} asset type(s) checked, {} problem(s)\n", types->size(), problems);
  return problems == 0 ? 0 : 1;
}

int run_formulas_try(const Config& c, const std::string& asset_type, const std::string& metrics) {
  const auto given = nlohmann::json::parse(metrics, nullptr, false);
  if (!given.is_object()) {
    fmt::print(stderr, "asset-worker: --metrics must be a JSON object of numbers\n");
    return 2;
  }
  MetricSet set;
  for (const auto& [name, value] : given.items()) {
    if (!value.is_number()) {
      fmt::print(stderr, "asset-worker: metric {} is not a number\n", name);
      return 2;
    }
    set.set(name, value.get<double>());
  }
  PgConnection db(c.database());
  auto schema = read_asset_type_schema(db, asset_type);
  if (!schema.ok()) {
    print_error(schema.status().message());
    return 1;
  }
  if (!schema->has_value()) {
    fmt::print(stderr, "asset-worker: no asset type {}\n", asset_type);
    return 1;
  }
  const auto model = AssetTypeModel::compile(asset_type, **schema);
  DerivationStats stats;
  model->derive(set, stats);
  nlohmann::ordered_json out;
  out["assetType"] = asset_type;
  out["metrics"] = nlohmann::ordered_json::object();
  for (const Metric& m : set) out["metrics"][m.name] = m.value;
  const HealthResult health = model->health_explained(set);
  out["healthScore"] = health.score;
  out["healthDetails"] = nlohmann::ordered_json::array();
  for (const HealthDetail& d : health.details) {
    out["healthDetails"].push_back({{"metric", d.metric},
                                    {"value", d.value},
                                    {"op", health_op_text(d.op)},
                                    {"threshold", d.threshold},
                                    {"penalty", d.penalty}});
  }
  out["formulasSkipped"] = {{"missingVariable", stats.missing_variable},
                            {"nonFinite", stats.non_finite}};
  out["problems"] = nlohmann::ordered_json::array();
  for (const SchemaProblem& p : model->problems()) {
    out["problems"].push_back({{"where", p.where}, {"problem", p.problem}});
  }
  fmt::print("{}\n", out.dump(2));
  return 0;
}

}  // namespace atw
