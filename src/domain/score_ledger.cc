#include "domain/score_ledger.h"

#include <algorithm>

namespace atw {

void ScoreLedger::load(const std::string& asset_id, StoredScore stored) {
  assets_[asset_id] = Entry{stored, false};
}

std::optional<double> ScoreLedger::apply(const std::string& asset_id, double score, Timestamp at) {
  Entry& e = assets_[asset_id];
  std::optional<double> previous = e.current.score;
  if (!e.current.updated_at || *e.current.updated_at <= at) {
    e.current = StoredScore{score, at};
    e.changed = true;
  }
  return previous;
}

std::vector<ScoreLedger::Change> ScoreLedger::changes() const {
  std::vector<Change> out;
  for (const auto& [id, e] : assets_) {
    if (e.changed) out.push_back(Change{id, *e.current.score, *e.current.updated_at});
  }
  // A stable order keeps row-lock order identical across replicas.
  std::sort(out.begin(), out.end(),
            [](const Change& a, const Change& b) { return a.asset_id < b.asset_id; });
  return out;
}

}  // namespace atw
