#pragma once
// Health states with hysteresis: an asset is good, warning or critical (or the states
// its type names), and changes state only when its score has clearly left the one it is in.
//
//   score:   100 ......... 85 .. 80 ......... 55 .. 50 ......... 0
//   enters:  good <------- |     | --------> warning    (below 80)
//            good <------- | (at 85 or more, from warning or critical)
//            warning <-----------------------  | (at 55 or more, from critical)
//            critical: below 50
//
// A worse state is entered as soon as the score is below the threshold of the one it is in; a
// better state only once the score is at least its threshold plus the hysteresis. Optionally, a
// change counts only after a number of consecutive measurements, or seconds of measurement time,
// pointing the same way (worse or better); it then goes to the state the last of them points to.
//
// The machine sees each asset's scores in measurement-time order (the caller leaves out the ones
// older than the last it gave), so it is a pure function of the state it is given and the score.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/asset_type.h"
#include "domain/timestamp.h"

namespace atw {

struct HealthLevel {
  std::string name;
  double min_score = 0;  // the lowest score in this state; the last level takes everything below
};

// telemetry_schema.health_states, compiled.
struct HealthStatePolicy {
  std::vector<HealthLevel> levels;  // best first; at least two; the last one's min_score unused
  double hysteresis = 5;            // points above a better state's threshold to go back to it
  int min_consecutive = 1;          // measurements in a row before a change counts
  int64_t min_duration_s = 0;       // seconds of measurement time before a change counts

  // good >= 80, warning >= 50, critical below; hysteresis 5; a change counts at once.
  static HealthStatePolicy standard();

  // The level a score falls in, without hysteresis.
  size_t level_for(double score) const;
  // The index of the level called `name`; nullopt if the policy has none.
  std::optional<size_t> level_named(std::string_view name) const;
};

// Reads telemetry_schema.health_states: `false` turns states off (nullopt); an object overrides
// any of {"levels": [{"name", "min_score"}...], "hysteresis", "min_consecutive",
// "min_duration_s"}; what it gets wrong is listed in `problems` and its default applies.
// Given as text, or as the value the asset type's schema parse already holds.
struct HealthStatesParse {
  std::optional<HealthStatePolicy> policy;
  std::vector<SchemaProblem> problems;
};
HealthStatesParse parse_health_states(std::string_view json);
HealthStatesParse parse_health_states(const nlohmann::json& j);

// An asset's state as kept between measurements (the worker's asset_health_states row).
struct AssetHealthState {
  std::string state;     // a level's name
  Timestamp entered_at;  // measurement time of the message that moved it here
  double entered_score = 0;
  int64_t changes = 0;      // state changes so far: the last change's sequence number
  std::string pending;      // the state a run of measurements points to; empty: none
  Timestamp pending_since;  // measurement time of the run's first measurement
  int pending_count = 0;    // measurements in the run
  bool operator==(const AssetHealthState&) const = default;
};

struct StateTransition {
  std::string from;
  std::string to;
  int64_t sequence = 0;  // the asset's change count after this one (1 for its first change)
};

// The state an asset is in before its first measurement: the best level, entered then.
AssetHealthState initial_health_state(const HealthStatePolicy& policy, double score, Timestamp at);

// One measurement: updates `state` (which changes only when a run starts, grows or ends, or the
// state changes) and returns the change it makes, if any.
std::optional<StateTransition> step_health_state(const HealthStatePolicy& policy,
                                                 AssetHealthState& state, double score,
                                                 Timestamp at);

// The health states of a batch's assets, as read (and locked) from the database, moved by the
// batch's scores in delivery order: the changes each message makes, and the rows to write (one
// per asset whose state moved, however many messages of the batch touched it). States move in
// measurement-time order: a message older than the newest one applied (or than the stored score,
// `last_measured`) is late and changes nothing; one of the same time counts.
class HealthStateLedger {
 public:
  // The stored state (nullopt: none yet) and the measurement time of the asset's stored score.
  void load(const std::string& asset_id, std::optional<AssetHealthState> stored,
            std::optional<Timestamp> last_measured);
  // A message's score for an asset of `organization_id`.
  std::optional<StateTransition> apply(const std::string& asset_id,
                                       const std::string& organization_id,
                                       const HealthStatePolicy& policy, double score, Timestamp at);

  struct Row {
    std::string asset_id;
    std::string organization_id;
    AssetHealthState state;
  };
  // Sorted by asset id.
  std::vector<Row> changed() const;

 private:
  struct Entry {
    std::optional<AssetHealthState> state;
    std::optional<Timestamp> last_measured;
    std::string organization_id;
    bool changed = false;
  };
  std::unordered_map<std::string, Entry> assets_;
};

}  // namespace atw
