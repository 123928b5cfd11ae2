#include "pipeline/reprocess.h"

#include <algorithm>
#include <cmath>

namespace atw {

namespace {

PairCorrection compare(const WrittenPair* before, const AssetResult* after) {
  PairCorrection c;
  c.asset_id = before != nullptr ? before->asset_id : after->asset_id;
  if (before != nullptr) c.score_before = before->score;
  static const MetricSet kNone;
  const MetricSet& old_rows = before != nullptr ? before->rows : kNone;
  const MetricSet& new_rows = after != nullptr ? after->metrics : kNone;
  if (after != nullptr) {
    c.score_after = after->health_score;
    c.rows_after = after->metrics;
    c.health_details = after->health_details;
  }
  for (const Metric& m : new_rows) {
    const Metric* old = old_rows.find_metric(m.name);
    if (old == nullptr) {
      c.added.push_back(m);
    } else if (old->value != m.value || old->quality != m.quality) {
      c.changed.push_back(m);
      c.changed_from.push_back(old->value);
    }
  }
  for (const Metric& m : old_rows) {
    if (new_rows.find(m.name) == nullptr) c.removed.push_back(m);
  }
  return c;
}

bool differs(const PairCorrection& c) {
  return c.rows_differ() || c.removes_pair() || c.score_before != c.score_after;
}

}  // namespace

std::vector<PairCorrection> correct_message(
    const std::vector<WrittenPair>& before, const std::vector<AssetResult>& after,
    const std::function<bool(const std::string&)>& selected) {
  std::vector<PairCorrection> out;
  for (const AssetResult& a : after) {
    if (!selected(a.asset_id)) continue;
    const auto old = std::find_if(before.begin(), before.end(),
                                  [&](const WrittenPair& w) { return w.asset_id == a.asset_id; });
    PairCorrection c = compare(old == before.end() ? nullptr : &*old, &a);
    if (differs(c)) out.push_back(std::move(c));
  }
  for (const WrittenPair& w : before) {
    if (!selected(w.asset_id)) continue;
    const bool kept = std::any_of(after.begin(), after.end(),
                                  [&](const AssetResult& a) { return a.asset_id == w.asset_id; });
    if (!kept) out.push_back(compare(&w, nullptr));
  }
  return out;
}

void NotableChanges::offer(const std::string& message_id, Timestamp timestamp,
                           const PairCorrection& c) {
  double size = 0;
  if (c.score_before && c.score_after) {
    size = std::fabs(*c.score_after - *c.score_before);
  } else {
    size = std::fabs(c.score_before.value_or(c.score_after.value_or(0)));
  }
  if (items_.size() == keep_ && (keep_ == 0 || size <= items_.back().size)) return;
  NotableChange n{message_id, c.asset_id, timestamp, c.score_before, c.score_after, size};
  const auto at = std::upper_bound(items_.begin(), items_.end(), size,
                                   [](double s, const NotableChange& i) { return s > i.size; });
  items_.insert(at, std::move(n));
  if (items_.size() > keep_) items_.pop_back();
}

}  // namespace atw
