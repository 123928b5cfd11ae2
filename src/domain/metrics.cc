#include "domain/metrics.h"

namespace atw {

const double* MetricSet::find(std::string_view name) const {
  const Metric* m = find_metric(name);
  return m != nullptr ? &m->value : nullptr;
}

const Metric* MetricSet::find_metric(std::string_view name) const {
  for (const auto& m : items_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Metric* MetricSet::find_metric(std::string_view name) {
  for (auto& m : items_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

bool MetricSet::any_not_good() const {
  for (const auto& m : items_) {
    if (m.quality != Quality::kGood) return true;
  }
  return false;
}

std::optional<double> MetricSet::get(std::string_view name) const {
  const double* v = find(name);
  return v ? std::optional<double>(*v) : std::nullopt;
}

void MetricSet::set(std::string_view name, double value, Quality quality) {
  if (Metric* m = find_metric(name)) {
    m->value = value;
    m->quality = quality;
    return;
  }
  items_.push_back(Metric{std::string(name), value, quality});
}

}  // namespace atw
