// Fuzz target: arbitrary text as an asset type's telemetry_schema (SPEC D9, D10). Input that
// starts with '{' is the schema's JSON text itself; anything else is a list of formulas, one per
// line (the first 16), compiled as derived metrics d0, d1, ... (later lines may use earlier ones).
//
// Compilation must never throw and must account for every formula: compiled, or listed as a
// problem with a reason. Evaluation, with values given to every identifier the text spells, must
// never throw, must add only finite values, must give the same result twice (a redelivery writes
// the same rows), and the score must stay within 0..100.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/asset_type.h"
#include "domain/json_writer.h"
#include "fuzz_check.h"

namespace atw {
namespace {

// Each formula costs a muParser instance: more than a few per input only slows the fuzzer.
constexpr size_t kMaxFormulas = 16;

// {"derived_metrics": [{"name": "d0", "formula": <line 0>}, ...]} for the first kMaxFormulas
// lines; `count` gets how many.
std::string formulas_schema(std::string_view text, size_t& count) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("derived_metrics").begin_array();
  count = 0;
  size_t start = 0;
  while (true) {
    const size_t end = text.find('\n', start);
    const std::string_view line =
        text.substr(start, end == std::string_view::npos ? end : end - start);
    w.begin_object().key("name").string("d" + std::to_string(count++)).key("formula").string(line);
    w.end_object();
    if (end == std::string_view::npos || count == kMaxFormulas) break;
    start = end + 1;
  }
  w.end_array().end_object();
  return out;
}

bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool ident_char(char c) {
  return ident_start(c) || (c >= '0' && c <= '9');
}

// Every identifier the text spells (muParser's variable alphabet), so that formulas find their
// variables; at most 64, each at most 128 bytes (a metric name's limit).
std::vector<std::string> identifiers(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size() && out.size() < 64;) {
    if (!ident_start(text[i])) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < text.size() && ident_char(text[j])) ++j;
    if (j - i <= 128) out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

// Finite values only, as parse_telemetry delivers; zero for division by zero, extremes for
// overflow.
constexpr double kValues[] = {0, 1, -1, 2.5, 100, 1e308, -1e-308, 3e-5, 81, 4.75};
constexpr size_t kValueCount = sizeof(kValues) / sizeof(kValues[0]);

void check_evaluation(const AssetTypeModel& model, const MetricSet& base) {
  MetricSet first = base;
  MetricSet second = base;
  DerivationStats first_stats;
  DerivationStats second_stats;
  model.derive(first, first_stats);
  model.derive(second, second_stats);

  ATW_FUZZ_CHECK(first == second);
  ATW_FUZZ_CHECK(first_stats.missing_variable == second_stats.missing_variable &&
                 first_stats.non_finite == second_stats.non_finite);
  ATW_FUZZ_CHECK(first_stats.missing_variable >= 0 && first_stats.non_finite >= 0);
  ATW_FUZZ_CHECK(static_cast<size_t>(first_stats.missing_variable + first_stats.non_finite) <=
                 model.formula_count());
  ATW_FUZZ_CHECK(first.size() <= base.size() + model.formula_count());
  for (const Metric& m : first) ATW_FUZZ_CHECK(std::isfinite(m.value));

  const double score = model.health(first);
  ATW_FUZZ_CHECK(score >= 0 && score <= 100);
}

}  // namespace
}  // namespace atw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace atw;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const bool whole_schema = !text.empty() && text.front() == '{';
  size_t formulas = 0;
  const std::string schema = whole_schema ? std::string(text) : formulas_schema(text, formulas);
  const std::shared_ptr<AssetTypeModel> model = AssetTypeModel::compile("fuzz", schema);
  ATW_FUZZ_CHECK(model != nullptr);
  for (const SchemaProblem& p : model->problems()) {
    ATW_FUZZ_CHECK(!p.where.empty() && !p.problem.empty());
  }
  if (!whole_schema) {
    // Our own schema is valid JSON with valid names: each formula compiled or has its problem.
    ATW_FUZZ_CHECK(model->formula_count() + model->problems().size() == formulas);
    for (const SchemaProblem& p : model->problems()) {
      ATW_FUZZ_CHECK(p.where.rfind("derived_metrics[", 0) == 0);
    }
  }

  const std::vector<std::string> names = identifiers(text);
  check_evaluation(*model, MetricSet{});
  for (size_t round = 0; round < 3; ++round) {
    MetricSet metrics;
    for (size_t i = 0; i < names.size(); ++i) {
      metrics.set(names[i], round == 0 ? 0.0 : kValues[(i + round * 3) % kValueCount]);
    }
    check_evaluation(*model, metrics);
  }
  return 0;
}
