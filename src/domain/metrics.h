#pragma once
// An ordered set of named numeric values: the device's metrics in a message, and an asset's
// metrics after mapping and derivation. Order is insertion order (as a JavaScript object keeps
// it), which the event's `metrics` object and the history rows follow. Setting an existing name
// overwrites its value in place.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/quality.h"

namespace atw {

struct Metric {
  std::string name;
  double value = 0;
  Quality quality = Quality::kGood;
  bool operator==(const Metric&) const = default;
};

class MetricSet {
 public:
  MetricSet() = default;
  MetricSet(std::initializer_list<Metric> metrics) {
    for (const auto& m : metrics) set(m.name, m.value, m.quality);
  }

  void set(std::string_view name, double value, Quality quality = Quality::kGood);
  std::optional<double> get(std::string_view name) const;
  const double* find(std::string_view name) const;
  const Metric* find_metric(std::string_view name) const;
  Metric* find_metric(std::string_view name);
  // True when some metric is not good.
  bool any_not_good() const;
  void set_quality_of_all(Quality q) {
    for (auto& m : items_) m.quality = q;
  }

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  void reserve(size_t n) { items_.reserve(n); }
  // Equal metrics in the same order (the index is a cache of the names).
  bool operator==(const MetricSet& other) const { return items_ == other.items_; }

 private:
  // Up to this many metrics, a name is found by a linear search: most messages carry a handful,
  // where a vector beats any map. Past it, by the index below: a message of 600 metrics spent
  // nine tenths of the worker's time comparing names (each set searched every earlier name).
  static constexpr size_t kLinearSearchLimit = 16;

  size_t position_of(std::string_view name) const;  // items_.size() when absent
  void index(size_t position);
  void rebuild_index();

  std::vector<Metric> items_;
  // Open addressing over the names' hashes: each slot holds a position in items_ plus one (0:
  // empty); a power of two at least twice items_.size() once the index exists, empty until then.
  std::vector<uint32_t> slots_;
};

// A metric's name (SPEC D3): 1..max_bytes of [A-Za-z0-9_.:-]. Device metrics, the asset
// metrics mapped from them and derived metrics all follow it.
inline constexpr size_t kMaxMetricNameBytes = 128;
bool is_valid_metric_name(std::string_view name, size_t max_bytes = kMaxMetricNameBytes);

}  // namespace atw
