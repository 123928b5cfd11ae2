#pragma once
// An ordered set of named numeric values: the device's metrics in a message, and an asset's
// metrics after mapping and derivation. Order is insertion order (as a JavaScript object keeps
// it), which the event's `metrics` object and the history rows follow. Setting an existing name
// overwrites its value in place.

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
  bool operator==(const MetricSet&) const = default;

 private:
  // Linear search: messages carry a handful of metrics, where a vector beats any map.
  std::vector<Metric> items_;
};

}  // namespace atw
