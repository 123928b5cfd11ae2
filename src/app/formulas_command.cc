// asset-worker formulas check | try: the asset types' derived metrics and health rules as the
// worker compiles them, without processing or writing anything.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "adapters/postgres/pg_connection.h"
#include "app/commands.h"
#include "common/error_types.h"
#include "domain/asset_type.h"

namespace atw {

int run_formulas_check(const Config& c) {
  PgConnection db(c.database());
  auto rows = db.exec(error_type::kDbUnavailable,
                      "SELECT id, coalesce(telemetry_schema::text, 'null') FROM asset_types"
                      " ORDER BY id");
  if (!rows.ok()) {
    print_error(rows.status().message());
    return 1;
  }
  size_t problems = 0;
  const int n = PQntuples(rows->get());
  for (int row = 0; row < n; ++row) {
    const std::string id = PQgetvalue(rows->get(), row, 0);
    const auto model = AssetTypeModel::compile(id, PQgetvalue(rows->get(), row, 1));
    for (const SchemaProblem& p : model->problems()) {
      fmt::print("{}\t{}\t{}\n", id, p.where, p.problem);
      ++problems;
    }
  }
  fmt::print(stderr, "{} asset type(s) checked, {} problem(s)\n", n, problems);
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
  auto rows =
      db.exec(error_type::kDbUnavailable,
              "SELECT coalesce(telemetry_schema::text, 'null') FROM asset_types WHERE id = $1",
              {asset_type});
  if (!rows.ok()) {
    print_error(rows.status().message());
    return 1;
  }
  if (PQntuples(rows->get()) == 0) {
    fmt::print(stderr, "asset-worker: no asset type {}\n", asset_type);
    return 1;
  }
  const auto model = AssetTypeModel::compile(asset_type, PQgetvalue(rows->get(), 0, 0));
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
