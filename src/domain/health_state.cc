#include "domain/health_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace atw {

HealthStatePolicy HealthStatePolicy::standard() {
  HealthStatePolicy p;
  p.levels = {{"good", 80}, {"warning", 50}, {"critical", 0}};
  return p;
}

size_t HealthStatePolicy::level_for(double score) const {
  for (size_t i = 0; i + 1 < levels.size(); ++i) {
    if (score >= levels[i].min_score) return i;
  }
  return levels.size() - 1;
}

std::optional<size_t> HealthStatePolicy::level_named(std::string_view name) const {
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].name == name) return i;
  }
  return std::nullopt;
}

namespace {

// A state's name is a Prometheus label value and a word in events: kept plain.
bool valid_state_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::vector<HealthLevel>> parse_levels(const nlohmann::json& j,
                                                     std::vector<SchemaProblem>& problems) {
  auto problem = [&](std::string what) {
    problems.push_back(SchemaProblem{"health_states.levels", std::move(what) + "; the default "
                                                                               "levels apply"});
    return std::nullopt;
  };
  if (!j.is_array() || j.size() < 2) return problem("not an array of two levels or more");
  std::vector<HealthLevel> levels;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& entry = j[i];
    const bool last = i + 1 == j.size();
    if (!entry.is_object()) return problem(fmt::format("[{}] is not an object", i));
    auto name = entry.find("name");
    if (name == entry.end() || !name->is_string() ||
        !valid_state_name(name->get_ref<const std::string&>())) {
      return problem(fmt::format("[{}] has no \"name\" of [A-Za-z0-9_-]{{1,32}}", i));
    }
    HealthLevel level{name->get<std::string>(), 0};
    for (const auto& earlier : levels) {
      if (earlier.name == level.name) return problem(fmt::format("[{}] repeats a name", i));
    }
    auto min = entry.find("min_score");
    if (!last) {
      if (min == entry.end() || !min->is_number() || !std::isfinite(min->get<double>())) {
        return problem(fmt::format("[{}] has no number \"min_score\"", i));
      }
      level.min_score = min->get<double>();
      if (!levels.empty() && level.min_score >= levels.back().min_score) {
        return problem(fmt::format("[{}] \"min_score\" is not below the level before it", i));
      }
    }
    levels.push_back(std::move(level));
  }
  return levels;
}

}  // namespace

HealthStatesParse parse_health_states(std::string_view json) {
  return parse_health_states(nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false));
}

HealthStatesParse parse_health_states(const nlohmann::json& j) {
  HealthStatesParse out;
  out.policy = HealthStatePolicy::standard();
  if (j.is_null()) return out;
  if (j.is_boolean()) {
    if (!j.get<bool>()) out.policy.reset();
    return out;
  }
  if (!j.is_object()) {
    out.problems.push_back(
        SchemaProblem{"health_states", "not an object or false; the default states apply"});
    return out;
  }
  HealthStatePolicy& p = *out.policy;
  if (auto it = j.find("levels"); it != j.end() && !it->is_null()) {
    if (auto levels = parse_levels(*it, out.problems)) p.levels = std::move(*levels);
  }
  if (auto it = j.find("hysteresis"); it != j.end() && !it->is_null()) {
    if (it->is_number() && std::isfinite(it->get<double>()) && it->get<double>() >= 0) {
      p.hysteresis = it->get<double>();
    } else {
      out.problems.push_back(SchemaProblem{"health_states.hysteresis",
                                           "not a number of points >= 0; the default 5 applies"});
    }
  }
  auto whole = [&](const char* key, int64_t min, int64_t max, auto& field, const char* fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (it->is_number_integer() && it->template get<int64_t>() >= min &&
        it->template get<int64_t>() <= max) {
      field = static_cast<std::remove_reference_t<decltype(field)>>(it->template get<int64_t>());
      return;
    }
    out.problems.push_back(SchemaProblem{
        fmt::format("health_states.{}", key),
        fmt::format("not a whole number from {} to {}; {} applies", min, max, fallback)});
  };
  whole("min_consecutive", 1, 1'000'000, p.min_consecutive, "1");
  whole("min_duration_s", 0, 366LL * 24 * 3600, p.min_duration_s, "0");
  return out;
}

AssetHealthState initial_health_state(const HealthStatePolicy& policy, double score, Timestamp at) {
  AssetHealthState s;
  s.state = policy.levels.front().name;
  s.entered_at = at;
  s.entered_score = score;
  return s;
}

std::optional<StateTransition> step_health_state(const HealthStatePolicy& policy,
                                                 AssetHealthState& state, double score,
                                                 Timestamp at) {
  auto move_to = [&](size_t level) {
    StateTransition t{state.state, policy.levels[level].name, state.changes + 1};
    state.state = t.to;
    state.entered_at = at;
    state.entered_score = score;
    state.changes = t.sequence;
    state.pending.clear();
    state.pending_since = Timestamp{};
    state.pending_count = 0;
    return t;
  };
  const size_t plain = policy.level_for(score);
  const auto current = policy.level_named(state.state);
  // A state the policy no longer has (its levels were renamed): the score decides, at once.
  if (!current) return move_to(plain);

  // Where the score points: a worse level at once, a better one only past its hysteresis.
  size_t target = *current;
  if (plain > *current) {
    target = plain;
  } else if (plain < *current) {
    for (size_t i = 0; i < *current; ++i) {
      if (score >= policy.levels[i].min_score + policy.hysteresis) {
        target = i;
        break;
      }
    }
  }
  if (target == *current) {
    state.pending.clear();
    state.pending_since = Timestamp{};
    state.pending_count = 0;
    return std::nullopt;
  }

  // A run of measurements pointing the same way (worse or better) as this one.
  const auto pending = policy.level_named(state.pending);
  const bool same_way = pending && ((*pending > *current) == (target > *current));
  if (same_way) {
    ++state.pending_count;
  } else {
    state.pending_since = at;
    state.pending_count = 1;
  }
  state.pending = policy.levels[target].name;
  const bool long_enough =
      at.micros - state.pending_since.micros >= policy.min_duration_s * 1'000'000;
  if (state.pending_count >= policy.min_consecutive && long_enough) return move_to(target);
  return std::nullopt;
}

void HealthStateLedger::load(const std::string& asset_id, std::optional<AssetHealthState> stored,
                             std::optional<Timestamp> last_measured) {
  assets_[asset_id] = Entry{std::move(stored), last_measured, {}, false};
}

std::optional<StateTransition> HealthStateLedger::apply(const std::string& asset_id,
                                                        const std::string& organization_id,
                                                        const HealthStatePolicy& policy,
                                                        double score, Timestamp at) {
  Entry& e = assets_[asset_id];
  if (e.last_measured && at < *e.last_measured) return std::nullopt;  // late
  e.last_measured = at;
  if (!e.state) {
    e.state = initial_health_state(policy, score, at);
    e.changed = true;
  }
  const AssetHealthState before = *e.state;
  auto transition = step_health_state(policy, *e.state, score, at);
  if (!(*e.state == before)) e.changed = true;
  if (e.changed) e.organization_id = organization_id;
  return transition;
}

std::vector<HealthStateLedger::Row> HealthStateLedger::changed() const {
  std::vector<Row> out;
  for (const auto& [id, e] : assets_) {
    if (e.changed) out.push_back(Row{id, e.organization_id, *e.state});
  }
  std::sort(out.begin(), out.end(),
            [](const Row& a, const Row& b) { return a.asset_id < b.asset_id; });
  return out;
}

}  // namespace atw
