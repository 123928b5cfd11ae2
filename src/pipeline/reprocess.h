#pragma once
// Reprocess: what one message's history rows and scores become under today's links
// and asset types, against what the worker wrote for it. Pure: the adapters read what was
// written and apply the corrections.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/metrics.h"
#include "domain/timestamp.h"
#include "pipeline/ports.h"

namespace atw {

// What the worker wrote for one (message, asset): its history rows, and the score it gave.
struct WrittenPair {
  std::string asset_id;
  MetricSet rows;
  std::optional<double> score;  // nullopt where it cannot be known
};

// One (message, asset) whose rows or score differ between what was written and what today's
// configuration makes of the message.
struct PairCorrection {
  std::string asset_id;
  std::optional<double> score_before;
  std::optional<double> score_after;         // nullopt: the asset no longer gets this message
  MetricSet rows_after;                      // every row the pair has now
  std::vector<HealthDetail> health_details;  // of score_after
  std::vector<Metric> added;                 // rows to insert
  std::vector<Metric> removed;               // rows to delete (the values they had)
  std::vector<Metric> changed;               // rows whose value (or quality) becomes this
  std::vector<double> changed_from;          // ... from this (one per entry of `changed`)

  bool removes_pair() const { return !score_after.has_value(); }
  bool rows_differ() const { return !added.empty() || !removed.empty() || !changed.empty(); }
};

// The corrections of one message: every pair written before or produced now, for which
// `selected(asset_id)` holds, whose rows or score differ. In the order of `after`, then the
// pairs that are gone.
std::vector<PairCorrection> correct_message(
    const std::vector<WrittenPair>& before, const std::vector<AssetResult>& after,
    const std::function<bool(const std::string&)>& selected);

// What a run has done (or, dry, would do).
struct ReprocessCounts {
  uint64_t messages_read = 0;           // from the input stream
  uint64_t messages_selected = 0;       // in the time range and the selection
  uint64_t messages_unreadable = 0;     // that do not parse (dead-lettered when they came)
  uint64_t messages_not_processed = 0;  // not written by a worker (yet, or dead-lettered)
  uint64_t messages_corrected = 0;      // with at least one pair corrected
  uint64_t pairs_corrected = 0;         // (message, asset) pairs: one correction event each
  uint64_t rows_added = 0;
  uint64_t rows_removed = 0;
  uint64_t rows_changed = 0;
  uint64_t scores_changed = 0;  // asset score updates (an asset may count once per batch)
};

// The largest corrections a run has seen, by how far the score moved (a removed pair or a
// score that appears counts as the whole score).
struct NotableChange {
  std::string message_id;
  std::string asset_id;
  Timestamp timestamp;
  std::optional<double> score_before;
  std::optional<double> score_after;
  double size = 0;
};
class NotableChanges {
 public:
  explicit NotableChanges(size_t keep) : keep_(keep) {}
  void offer(const std::string& message_id, Timestamp timestamp, const PairCorrection& c);
  const std::vector<NotableChange>& largest() const { return items_; }  // largest first

 private:
  size_t keep_;
  std::vector<NotableChange> items_;
};

}  // namespace atw
