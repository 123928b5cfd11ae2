#include "domain/metrics.h"

namespace atw {

const double* MetricSet::find(std::string_view name) const {
  for (const auto& m : items_) {
    if (m.name == name) return &m.value;
  }
  return nullptr;
}

std::optional<double> MetricSet::get(std::string_view name) const {
  const double* v = find(name);
  return v ? std::optional<double>(*v) : std::nullopt;
}

void MetricSet::set(std::string_view name, double value) {
  for (auto& m : items_) {
    if (m.name == name) {
      m.value = value;
      return;
    }
  }
  items_.push_back(Metric{std::string(name), value});
}

}  // namespace atw
