#include "domain/metrics.h"

#include <functional>

namespace atw {
namespace {

size_t hash_of(std::string_view name) {
  return std::hash<std::string_view>{}(name);
}

}  // namespace

size_t MetricSet::position_of(std::string_view name) const {
  if (slots_.empty()) {
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i].name == name) return i;
    }
    return items_.size();
  }
  const size_t mask = slots_.size() - 1;
  for (size_t s = hash_of(name) & mask; slots_[s] != 0; s = (s + 1) & mask) {
    if (items_[slots_[s] - 1].name == name) return slots_[s] - 1;
  }
  return items_.size();
}

void MetricSet::index(size_t position) {
  const size_t mask = slots_.size() - 1;
  size_t s = hash_of(items_[position].name) & mask;
  while (slots_[s] != 0) s = (s + 1) & mask;
  slots_[s] = static_cast<uint32_t>(position + 1);
}

void MetricSet::rebuild_index() {
  size_t n = 64;
  while (n < 2 * items_.size()) n *= 2;
  slots_.assign(n, 0);
  for (size_t i = 0; i < items_.size(); ++i) index(i);
}

const double* MetricSet::find(std::string_view name) const {
  const Metric* m = find_metric(name);
  return m != nullptr ? &m->value : nullptr;
}

const Metric* MetricSet::find_metric(std::string_view name) const {
  const size_t i = position_of(name);
  return i < items_.size() ? &items_[i] : nullptr;
}

Metric* MetricSet::find_metric(std::string_view name) {
  const size_t i = position_of(name);
  return i < items_.size() ? &items_[i] : nullptr;
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
  if (items_.size() <= kLinearSearchLimit) return;
  if (2 * items_.size() > slots_.size()) {
    rebuild_index();
  } else {
    index(items_.size() - 1);
  }
}

bool is_valid_metric_name(std::string_view name, size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace atw
