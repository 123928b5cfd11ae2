#pragma once
// Health scores move only forward in time (SPEC D11). Given each asset's stored score and the
// scores a batch computes, in delivery order, the ledger says what each message's
// previousHealthScore is and which stored scores change. Processing a batch through it gives
// the same answers as processing its messages one at a time.

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/timestamp.h"

namespace atw {

struct StoredScore {
  std::optional<double> score;
  std::optional<Timestamp> updated_at;  // the measurement time the score belongs to
};

class ScoreLedger {
 public:
  // The stored state of an asset, as read (and locked) from the database.
  void load(const std::string& asset_id, StoredScore stored);

  // Records a message's score for an asset and returns the asset's score before it. The score
  // replaces the current one when its timestamp is not older (equal: the later message wins,
  // as it would one at a time); an older message leaves it in place.
  std::optional<double> apply(const std::string& asset_id, double score, Timestamp at);

  struct Change {
    std::string asset_id;
    double score;
    Timestamp at;
  };
  // The assets whose score moved, with their final score: one update each, however many
  // messages of the batch touched them.
  std::vector<Change> changes() const;

 private:
  struct Entry {
    StoredScore current;
    bool changed = false;
  };
  std::unordered_map<std::string, Entry> assets_;
};

}  // namespace atw
