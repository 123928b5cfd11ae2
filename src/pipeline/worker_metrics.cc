#include "pipeline/worker_metrics.h"

#include <algorithm>

#include "common/error_types.h"
#include "domain/health_state.h"

namespace atw {

WorkerMetrics::WorkerMetrics() {
  for (std::string_view type : error_type::kAll) s_.errors.emplace(type, 0);
  // The standard states start at 0, so that a rate over them exists before the first change.
  for (const auto& level : HealthStatePolicy::standard().levels) s_.state_changes[level.name] = 0;
}

void WorkerMetrics::add(uint64_t MetricsSnapshot::*counter, uint64_t n) {
  std::lock_guard lock(mu_);
  s_.*counter += n;
}

void WorkerMetrics::set(int64_t MetricsSnapshot::*gauge, int64_t value) {
  std::lock_guard lock(mu_);
  s_.*gauge = value;
}

void WorkerMetrics::add_processed(uint64_t n, uint64_t history_rows, uint64_t events) {
  std::lock_guard lock(mu_);
  s_.messages_processed += n;
  s_.history_rows += history_rows;
  s_.events_published += events;
}

void WorkerMetrics::add_no_links(uint64_t n) {
  add(&MetricsSnapshot::messages_no_links, n);
}

void WorkerMetrics::add_duplicates(uint64_t n) {
  add(&MetricsSnapshot::messages_duplicate, n);
}

void WorkerMetrics::add_dead_lettered(uint64_t n) {
  add(&MetricsSnapshot::messages_dead_lettered, n);
}

void WorkerMetrics::add_quality_unknown(uint64_t n) {
  add(&MetricsSnapshot::quality_unknown, n);
}

void WorkerMetrics::add_state_change(std::string_view to) {
  std::lock_guard lock(mu_);
  auto it = s_.state_changes.find(to);
  if (it == s_.state_changes.end()) it = s_.state_changes.emplace(to, 0).first;
  ++it->second;
}

void WorkerMetrics::add_transform_counts(uint64_t assets_skipped, uint64_t metrics_skipped,
                                         uint64_t missing_variable, uint64_t non_finite) {
  std::lock_guard lock(mu_);
  s_.assets_skipped_no_metrics += assets_skipped;
  s_.metrics_skipped += metrics_skipped;
  s_.formula_missing_variable += missing_variable;
  s_.formula_non_finite += non_finite;
}

void WorkerMetrics::add_error(std::string_view type, uint64_t n) {
  std::lock_guard lock(mu_);
  auto it = s_.errors.find(type);
  if (it == s_.errors.end()) it = s_.errors.emplace(type, 0).first;
  it->second += n;
}

void WorkerMetrics::add_cache(std::string_view tier, uint64_t hits, uint64_t misses) {
  std::lock_guard lock(mu_);
  auto it = s_.cache.find(tier);
  if (it == s_.cache.end()) it = s_.cache.emplace(tier, CacheCounts{}).first;
  it->second.hits += hits;
  it->second.misses += misses;
}

void WorkerMetrics::add_link_store_loads(uint64_t n) {
  add(&MetricsSnapshot::link_store_loads, n);
}

void WorkerMetrics::add_history_maintenance(bool ok) {
  std::lock_guard lock(mu_);
  ++(ok ? s_.history_maintenance_ok : s_.history_maintenance_failed);
}

void WorkerMetrics::observe_latencies(const std::vector<double>& seconds) {
  std::lock_guard lock(mu_);
  for (double v : seconds) {
    const auto it = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), v);
    s_.latency_buckets[static_cast<size_t>(it - kLatencyBuckets.begin())]++;
    s_.latency_sum_seconds += v;
    s_.latency_count++;
    if (s_.recent_latency_ms.size() < kQuantileWindow) {
      s_.recent_latency_ms.push_back(v * 1000.0);
    } else {
      s_.recent_latency_ms[window_next_] = v * 1000.0;
      window_next_ = (window_next_ + 1) % kQuantileWindow;
    }
  }
}

void WorkerMetrics::observe_batch(size_t size) {
  std::lock_guard lock(mu_);
  const auto it =
      std::lower_bound(kBatchSizeBuckets.begin(), kBatchSizeBuckets.end(), double(size));
  s_.batch_buckets[static_cast<size_t>(it - kBatchSizeBuckets.begin())]++;
  s_.batch_size_sum += double(size);
  s_.batch_count++;
}

void WorkerMetrics::set_stream_pending(int64_t stream_pending) {
  set(&MetricsSnapshot::stream_pending, stream_pending);
}

void WorkerMetrics::set_ack_pending(int64_t ack_pending) {
  set(&MetricsSnapshot::ack_pending, ack_pending);
}

void WorkerMetrics::set_dlq_depth(int64_t depth) {
  set(&MetricsSnapshot::dlq_depth, depth);
}

void WorkerMetrics::set_up(Server server, bool up) {
  std::lock_guard lock(mu_);
  switch (server) {
    case Server::kNats:
      s_.nats_up = up;
      break;
    case Server::kPostgres:
      s_.postgres_up = up;
      break;
    case Server::kRedis:
      s_.redis_up = up;
      break;
  }
}

MetricsSnapshot WorkerMetrics::snapshot() const {
  std::lock_guard lock(mu_);
  return s_;
}

}  // namespace atw
