#include "pipeline/worker_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "common/error_types.h"

namespace atw {
namespace {

// SPEC D16: every error type is a series from the start, at 0, so that rate() and alerts see
// the first error; one the list does not know is counted all the same.
TEST(WorkerMetrics, EveryErrorTypeStartsAtZero) {
  WorkerMetrics m;
  const auto s = m.snapshot();
  ASSERT_EQ(s.errors.size(), error_type::kAll.size());
  for (std::string_view type : error_type::kAll) {
    ASSERT_TRUE(s.errors.contains(type)) << type;
    EXPECT_EQ(s.errors.find(type)->second, 0u) << type;
  }
  m.add_error(error_type::kDbNotReady, 2);
  m.add_error("something_new");
  const auto after = m.snapshot();
  EXPECT_EQ(after.errors.find("db_not_ready")->second, 2u);
  EXPECT_EQ(after.errors.find("something_new")->second, 1u);
}

TEST(WorkerMetrics, LatencyBucketsIncludeTheirUpperBound) {
  WorkerMetrics m;
  m.observe_latencies({0.0005, 0.001, 0.0011, 30.0, 31.0});
  const auto s = m.snapshot();
  EXPECT_EQ(s.latency_buckets[0], 2u);  // le 0.001: 0.0005 and 0.001 itself
  EXPECT_EQ(s.latency_buckets[1], 1u);  // le 0.0025
  EXPECT_EQ(s.latency_buckets[kLatencyBuckets.size() - 1], 1u);  // le 30
  EXPECT_EQ(s.latency_buckets[kLatencyBuckets.size()], 1u);      // +Inf
  EXPECT_EQ(s.latency_count, 5u);
  EXPECT_DOUBLE_EQ(s.latency_sum_seconds, 0.0005 + 0.001 + 0.0011 + 30.0 + 31.0);
  EXPECT_EQ(s.recent_latency_ms.size(), 5u);
  EXPECT_DOUBLE_EQ(s.recent_latency_ms[3], 30000.0);
}

TEST(WorkerMetrics, QuantileWindowKeepsTheLatestValues) {
  WorkerMetrics m;
  std::vector<double> old(WorkerMetrics::kQuantileWindow, 1.0);
  m.observe_latencies(old);
  m.observe_latencies({2.0, 2.0, 2.0});
  const auto s = m.snapshot();
  ASSERT_EQ(s.recent_latency_ms.size(), WorkerMetrics::kQuantileWindow);
  EXPECT_EQ(std::count(s.recent_latency_ms.begin(), s.recent_latency_ms.end(), 2000.0), 3);
  EXPECT_EQ(s.latency_count, WorkerMetrics::kQuantileWindow + 3);
}

TEST(WorkerMetrics, BatchSizesAndCounters) {
  WorkerMetrics m;
  m.observe_batch(1);
  m.observe_batch(500);
  m.observe_batch(501);
  m.observe_batch(100000);
  m.add_processed(3, 12, 6);
  m.add_processed(1, 4, 2);
  m.add_error("db_unavailable");
  m.add_error("db_unavailable", 2);
  m.add_error("invalid_message");
  m.add_cache("memory", 8, 2);
  m.add_cache("memory", 1, 1);
  m.add_cache("redis", 1, 1);
  m.add_dead_lettered(2);
  m.add_no_links(3);
  m.add_duplicates(4);
  m.add_link_store_loads(5);
  m.add_history_maintenance(true);
  m.add_history_maintenance(false);
  m.add_history_maintenance(true);
  m.add_transform_counts(1, 2, 3, 4);
  m.set_stream_pending(10);
  m.set_ack_pending(11);
  m.set_dlq_depth(7);
  m.set_up(Server::kPostgres, true);
  m.set_up(Server::kRedis, true);
  m.set_up(Server::kRedis, false);

  const auto s = m.snapshot();
  EXPECT_EQ(s.batch_buckets[0], 1u);  // le 1
  EXPECT_EQ(s.batch_buckets[5], 1u);  // le 500
  EXPECT_EQ(s.batch_buckets[6], 1u);  // le 1000
  EXPECT_EQ(s.batch_buckets[kBatchSizeBuckets.size()], 1u);
  EXPECT_EQ(s.batch_count, 4u);
  EXPECT_DOUBLE_EQ(s.batch_size_sum, 1 + 500 + 501 + 100000);
  EXPECT_EQ(s.messages_processed, 4u);
  EXPECT_EQ(s.history_rows, 16u);
  EXPECT_EQ(s.events_published, 8u);
  EXPECT_EQ(s.errors.at("db_unavailable"), 3u);
  EXPECT_EQ(s.errors.at("invalid_message"), 1u);
  EXPECT_EQ(s.cache.at("memory").hits, 9u);
  EXPECT_EQ(s.cache.at("memory").misses, 3u);
  EXPECT_EQ(s.cache.at("redis").hits, 1u);
  EXPECT_EQ(s.messages_dead_lettered, 2u);
  EXPECT_EQ(s.messages_no_links, 3u);
  EXPECT_EQ(s.messages_duplicate, 4u);
  EXPECT_EQ(s.link_store_loads, 5u);
  EXPECT_EQ(s.history_maintenance_ok, 2u);
  EXPECT_EQ(s.history_maintenance_failed, 1u);
  EXPECT_EQ(s.assets_skipped_no_metrics, 1u);
  EXPECT_EQ(s.metrics_skipped, 2u);
  EXPECT_EQ(s.formula_missing_variable, 3u);
  EXPECT_EQ(s.formula_non_finite, 4u);
  EXPECT_EQ(s.stream_pending, 10);
  EXPECT_EQ(s.ack_pending, 11);
  EXPECT_EQ(s.dlq_depth, 7);
  EXPECT_TRUE(s.postgres_up);
  EXPECT_FALSE(s.nats_up);
  EXPECT_FALSE(s.redis_up);
}

TEST(WorkerMetrics, UnknownGaugesStartAtMinusOne) {
  const auto s = WorkerMetrics().snapshot();
  EXPECT_EQ(s.stream_pending, -1);
  EXPECT_EQ(s.dlq_depth, -1);
}

TEST(WorkerMetrics, ConcurrentWriterAndReader) {
  // The pipeline thread writes while the HTTP thread reads (run under TSan in the sanitizer
  // preset); the totals must add up.
  WorkerMetrics m;
  std::thread writer([&] {
    for (int i = 0; i < 10000; ++i) {
      m.add_processed(1, 2, 3);
      m.observe_latencies({0.01});
    }
  });
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto s = m.snapshot();
    EXPECT_GE(s.messages_processed, last);
    last = s.messages_processed;
  }
  writer.join();
  const auto s = m.snapshot();
  EXPECT_EQ(s.messages_processed, 10000u);
  EXPECT_EQ(s.history_rows, 20000u);
  EXPECT_EQ(s.latency_count, 10000u);
}

}  // namespace
}  // namespace atw
