#pragma once
// The worker's own measurements, kept as plain numbers so that the pipeline needs no metrics
// library; the HTTP adapter renders them in Prometheus' text format (SPEC D16).
//
// Thread safety: the pipeline thread writes, the HTTP thread reads; every method locks.
// Updates are made once per batch, not per message, so the lock costs nothing measurable.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace atw {

// Upper bounds, in seconds, of the processing-latency histogram.
// Fine enough between 10 and 250 ms for latency targets to be read off it.
inline constexpr std::array<double, 21> kLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
    0.1,   0.15,   0.2,   0.25,   0.5,  1,     2.5,  5,    10,   30};
inline constexpr std::array<double, 9> kBatchSizeBuckets = {1,   10,   50,   100, 250,
                                                            500, 1000, 2000, 5000};

struct CacheCounts {
  uint64_t hits = 0;
  uint64_t misses = 0;
};

struct MetricsSnapshot {
  uint64_t messages_processed = 0;
  uint64_t messages_no_links = 0;
  uint64_t messages_duplicate = 0;
  uint64_t messages_dead_lettered = 0;
  uint64_t history_rows = 0;
  uint64_t events_published = 0;
  uint64_t assets_skipped_no_metrics = 0;
  uint64_t metrics_skipped = 0;
  uint64_t quality_unknown = 0;  // quality values not understood (read as uncertain)
  std::map<std::string, uint64_t, std::less<>> state_changes;  // by the state entered
  uint64_t formula_missing_variable = 0;
  uint64_t formula_non_finite = 0;
  std::map<std::string, uint64_t, std::less<>> errors;    // by type
  std::map<std::string, CacheCounts, std::less<>> cache;  // by tier: memory, redis
  uint64_t link_store_loads = 0;                          // keys loaded from PostgreSQL
  uint64_t history_maintenance_ok = 0;  // runs of the worker's history timer, by outcome
  uint64_t history_maintenance_failed = 0;
  std::array<uint64_t, kLatencyBuckets.size() + 1> latency_buckets{};  // last is +Inf
  double latency_sum_seconds = 0;
  uint64_t latency_count = 0;
  std::vector<double> recent_latency_ms;  // the window behind the quantiles, unsorted
  std::array<uint64_t, kBatchSizeBuckets.size() + 1> batch_buckets{};
  double batch_size_sum = 0;
  uint64_t batch_count = 0;
  int64_t stream_pending = -1;  // -1: not known yet
  int64_t ack_pending = -1;
  int64_t dlq_depth = -1;
  bool nats_up = false;
  bool postgres_up = false;
  bool redis_up = false;
};

// The servers whose connection asset_worker_up{server} reports.
enum class Server : uint8_t { kNats, kPostgres, kRedis };

class WorkerMetrics {
 public:
  static constexpr size_t kQuantileWindow = 8192;  // latest messages behind the quantiles

  // Every error type of common/error_types.h starts at 0 (SPEC D16).
  WorkerMetrics();

  void add_processed(uint64_t n, uint64_t history_rows, uint64_t events);
  void add_no_links(uint64_t n);
  void add_duplicates(uint64_t n);
  void add_dead_lettered(uint64_t n);
  void add_quality_unknown(uint64_t n);
  void add_state_change(std::string_view to);
  void add_transform_counts(uint64_t assets_skipped, uint64_t metrics_skipped,
                            uint64_t missing_variable, uint64_t non_finite);
  void add_error(std::string_view type, uint64_t n = 1);
  // A tier is exported (at 0) from its first call, which the link resolver makes when it starts.
  void add_cache(std::string_view tier, uint64_t hits, uint64_t misses);
  void add_link_store_loads(uint64_t n);
  void add_history_maintenance(bool ok);
  void observe_latencies(const std::vector<double>& seconds);
  void observe_batch(size_t size);
  void set_stream_pending(int64_t stream_pending);
  void set_ack_pending(int64_t ack_pending);
  void set_dlq_depth(int64_t depth);
  void set_up(Server server, bool up);

  MetricsSnapshot snapshot() const;

 private:
  void add(uint64_t MetricsSnapshot::*counter, uint64_t n);
  void set(int64_t MetricsSnapshot::*gauge, int64_t value);

  mutable std::mutex mu_;
  MetricsSnapshot s_;
  size_t window_next_ = 0;
};

}  // namespace atw
