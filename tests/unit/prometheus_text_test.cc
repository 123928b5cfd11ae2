// /metrics as Prometheus reads it (SPEC D16): each family's HELP and TYPE, counters with their
// labels, label values escaped, histograms cumulative up to +Inf with _sum and _count, and the
// build info. When promtool is installed, it parses the page too.

#include "adapters/http/prometheus_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace atw {
namespace {

using ::testing::Contains;
using ::testing::Not;

const BuildInfo kInfo{"1.4.2", "worker-7", "TELEMETRY"};

MetricsSnapshot snapshot() {
  MetricsSnapshot s;
  s.messages_processed = 42;
  s.messages_no_links = 3;
  s.messages_duplicate = 4;
  s.messages_dead_lettered = 2;
  s.history_rows = 120;
  s.events_published = 40;
  s.assets_skipped_no_metrics = 5;
  s.metrics_skipped = 6;
  s.quality_unknown = 7;
  s.formula_missing_variable = 8;
  s.formula_non_finite = 9;
  s.state_changes = {{"warning", 2}, {"critical", 1}};
  s.errors = {{"db_unavailable", 3}, {"invalid_message", 0}};
  s.cache = {{"memory", {8, 2}}, {"redis", {1, 1}}};
  s.link_store_loads = 11;
  s.history_maintenance_ok = 12;
  s.history_maintenance_failed = 1;
  s.latency_buckets[0] = 1;                       // le 0.001
  s.latency_buckets[4] = 2;                       // le 0.01
  s.latency_buckets[kLatencyBuckets.size()] = 1;  // past 30 s
  s.latency_sum_seconds = 31.25;
  s.latency_count = 4;
  s.recent_latency_ms = {40, 10, 30, 20};
  s.batch_buckets[1] = 2;                         // le 10
  s.batch_buckets[kBatchSizeBuckets.size()] = 1;  // past 5000
  s.batch_size_sum = 6020;
  s.batch_count = 3;
  s.stream_pending = 10;
  s.ack_pending = 0;
  s.dlq_depth = 7;
  s.nats_up = true;
  s.postgres_up = true;
  s.redis_up = false;
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The lines of one family: from its HELP up to the next family's HELP.
std::string family(const std::string& text, std::string_view name) {
  const std::string help = "# HELP " + std::string(name) + " ";
  const size_t from = text.find(help);
  if (from == std::string::npos) return "";
  const size_t to = text.find("# HELP ", from + help.size());
  return text.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

TEST(PrometheusText, EveryFamilyHasHelpThenTypeAndTheTextEndsWithANewline) {
  const std::string text = render_prometheus(snapshot(), kInfo);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::vector<std::string> lines = lines_of(text);
  size_t families = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].starts_with("# HELP ")) continue;
    ++families;
    const std::string name = lines[i].substr(7, lines[i].find(' ', 7) - 7);
    ASSERT_LT(i + 1, lines.size());
    EXPECT_TRUE(lines[i + 1].starts_with("# TYPE " + name + " ")) << lines[i + 1];
  }
  EXPECT_EQ(families, 25u);
  for (const std::string& l : lines) {
    if (l.starts_with("#")) continue;
    EXPECT_TRUE(l.starts_with("asset_worker_") || l.starts_with("nats_stream_")) << l;
  }
}

TEST(PrometheusText, CountersCarryTheirLabelsAndValues) {
  const std::string text = render_prometheus(snapshot(), kInfo);
  const std::vector<std::string> lines = lines_of(text);
  const char* const kExpected[] = {
      R"(# TYPE asset_worker_messages_processed_total counter)",
      R"(asset_worker_messages_processed_total{worker="worker-7"} 42)",
      R"(asset_worker_errors_total{type="db_unavailable"} 3)",
      R"(asset_worker_errors_total{type="invalid_message"} 0)",
      R"(asset_worker_state_changes_total{to="critical"} 1)",
      R"(asset_worker_state_changes_total{to="warning"} 2)",
      R"(asset_worker_cache_lookups_total{cache="device_links",tier="memory",result="hit"} 8)",
      R"(asset_worker_cache_lookups_total{cache="device_links",tier="memory",result="miss"} 2)",
      R"(asset_worker_cache_lookups_total{cache="device_links",tier="redis",result="hit"} 1)",
      R"(asset_worker_cache_lookups_total{cache="device_links",tier="redis",result="miss"} 1)",
      R"(asset_worker_history_maintenance_runs_total{result="ok"} 12)",
      R"(asset_worker_history_maintenance_runs_total{result="failed"} 1)",
      R"(asset_worker_link_store_loads_total 11)",
      R"(asset_worker_messages_no_links_total 3)",
      R"(asset_worker_messages_duplicate_total 4)",
      R"(asset_worker_messages_dead_lettered_total 2)",
      R"(asset_worker_history_rows_total 120)",
      R"(asset_worker_events_published_total 40)",
      R"(asset_worker_assets_skipped_total 5)",
      R"(asset_worker_metrics_skipped_total 6)",
      R"(asset_worker_quality_unknown_total 7)",
      R"(asset_worker_formula_missing_variable_total 8)",
      R"(asset_worker_formula_non_finite_total 9)",
      R"(# TYPE asset_worker_formula_non_finite_total counter)",
  };
  for (const char* line : kExpected) {
    EXPECT_THAT(lines, Contains(std::string(line)));
  }
}

TEST(PrometheusText, GaugesSayWhatIsKnownAndLeaveOutWhatIsNot) {
  MetricsSnapshot s = snapshot();
  std::vector<std::string> lines = lines_of(render_prometheus(s, kInfo));
  for (const char* line : {
           "# TYPE asset_worker_cache_hit_rate gauge",
           // (memory hits 8 + redis hits 1) of 10 lookups
           "asset_worker_cache_hit_rate{cache=\"device_links\"} 0.9",
           "nats_stream_messages_pending{stream=\"TELEMETRY\"} 10",
           "asset_worker_consumer_ack_pending 0",
           "asset_worker_dlq_depth 7",
           "asset_worker_up{server=\"nats\"} 1",
           "asset_worker_up{server=\"postgres\"} 1",
           "asset_worker_up{server=\"redis\"} 0",
       }) {
    EXPECT_THAT(lines, Contains(std::string(line)));
  }
  // -1: not known yet, so no sample rather than a made-up 0; the family is still described.
  s.stream_pending = -1;
  s.ack_pending = -1;
  s.dlq_depth = -1;
  s.cache.clear();
  const std::string text = render_prometheus(s, kInfo);
  EXPECT_EQ(family(text, "nats_stream_messages_pending"),
            "# HELP nats_stream_messages_pending Messages in the input stream not yet delivered "
            "to the consumer (as of the last delivery).\n"
            "# TYPE nats_stream_messages_pending gauge\n");
  EXPECT_EQ(family(text, "asset_worker_dlq_depth"),
            "# HELP asset_worker_dlq_depth Messages in the dead-letter stream.\n"
            "# TYPE asset_worker_dlq_depth gauge\n");
  lines = lines_of(text);
  EXPECT_THAT(lines, Not(Contains(::testing::StartsWith("asset_worker_consumer_ack_pending "))));
  EXPECT_THAT(lines,
              Contains(std::string("asset_worker_cache_hit_rate{cache=\"device_links\"} 0")));
}

TEST(PrometheusText, LabelValuesEscapeBackslashQuoteAndNewline) {
  MetricsSnapshot s = snapshot();
  s.errors = {{"a\\b\"c\nd", 5}};
  s.state_changes = {{"to \"x\"", 1}};
  const BuildInfo info{"1.0\n-dirty", "host\\w\"1\"", "S\"1"};
  const std::vector<std::string> lines = lines_of(render_prometheus(s, info));
  for (const char* line : {
           R"(asset_worker_errors_total{type="a\\b\"c\nd"} 5)",
           R"(asset_worker_state_changes_total{to="to \"x\""} 1)",
           R"(asset_worker_messages_processed_total{worker="host\\w\"1\""} 42)",
           R"(nats_stream_messages_pending{stream="S\"1"} 10)",
           R"(asset_worker_build_info{version="1.0\n-dirty",worker="host\\w\"1\""} 1)",
       }) {
    EXPECT_THAT(lines, Contains(std::string(line)));
  }
}

TEST(PrometheusText, TheLatencyHistogramIsCumulativeUpToInf) {
  const std::string text = render_prometheus(snapshot(), kInfo);
  EXPECT_EQ(family(text, "asset_worker_processing_duration_seconds"),
            "# HELP asset_worker_processing_duration_seconds Processing latency per message, "
            "fetch to ack.\n"
            "# TYPE asset_worker_processing_duration_seconds histogram\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.001\"} 1\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.0025\"} 1\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.005\"} 1\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.0075\"} 1\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.01\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.015\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.02\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.03\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.04\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.05\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.075\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.1\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.15\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.2\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.25\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"0.5\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"1\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"2.5\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"5\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"10\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"30\"} 3\n"
            "asset_worker_processing_duration_seconds_bucket{le=\"+Inf\"} 4\n"
            "asset_worker_processing_duration_seconds_sum 31.25\n"
            "asset_worker_processing_duration_seconds_count 4\n");
}

TEST(PrometheusText, TheBatchSizeHistogramIsCumulativeUpToInf) {
  const std::string text = render_prometheus(snapshot(), kInfo);
  EXPECT_EQ(family(text, "asset_worker_batch_size"),
            "# HELP asset_worker_batch_size Messages per fetched batch.\n"
            "# TYPE asset_worker_batch_size histogram\n"
            "asset_worker_batch_size_bucket{le=\"1\"} 0\n"
            "asset_worker_batch_size_bucket{le=\"10\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"50\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"100\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"250\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"500\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"1000\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"2000\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"5000\"} 2\n"
            "asset_worker_batch_size_bucket{le=\"+Inf\"} 3\n"
            "asset_worker_batch_size_sum 6020\n"
            "asset_worker_batch_size_count 3\n");
}

TEST(PrometheusText, TheLatencySummaryQuantilesComeFromTheRecentWindow) {
  MetricsSnapshot s = snapshot();
  std::string text = render_prometheus(s, kInfo);
  EXPECT_EQ(family(text, "asset_worker_processing_duration_ms"),
            "# HELP asset_worker_processing_duration_ms Processing latency per message, fetch to "
            "ack, over the latest messages.\n"
            "# TYPE asset_worker_processing_duration_ms summary\n"
            "asset_worker_processing_duration_ms{quantile=\"0.5\"} 30\n"
            "asset_worker_processing_duration_ms{quantile=\"0.95\"} 40\n"
            "asset_worker_processing_duration_ms{quantile=\"0.99\"} 40\n"
            "asset_worker_processing_duration_ms_sum 31250\n"
            "asset_worker_processing_duration_ms_count 4\n");
  // Before the first message there is nothing to take a quantile of: NaN, as Prometheus' own
  // client libraries write it.
  s.recent_latency_ms.clear();
  text = render_prometheus(s, kInfo);
  EXPECT_NE(text.find("asset_worker_processing_duration_ms{quantile=\"0.99\"} NaN\n"),
            std::string::npos);
}

TEST(PrometheusText, BuildInfoNamesTheVersionAndTheWorker) {
  const std::string text = render_prometheus(snapshot(), kInfo);
  EXPECT_EQ(family(text, "asset_worker_build_info"),
            "# HELP asset_worker_build_info Build and identity of this worker.\n"
            "# TYPE asset_worker_build_info gauge\n"
            "asset_worker_build_info{version=\"1.4.2\",worker=\"worker-7\"} 1\n");
}

// promtool parses and lints the page as a Prometheus server would take it; skipped where it is
// not installed. Its one lint finding is a name SPEC D16 gives (a summary in milliseconds, kept
// beside the histogram in seconds): any other finding, or a page it cannot parse, fails.
TEST(PrometheusText, PromtoolParsesThePageAndFindsOnlyTheSpecsOwnName) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) GTEST_SKIP() << "promtool is not installed";
  MetricsSnapshot s = snapshot();
  s.errors.emplace("a\\b\"c\nd", 1);  // escaped label values parse too
  const std::string path = ::testing::TempDir() + "atw_prometheus_text_test.prom";
  std::ofstream(path, std::ios::binary) << render_prometheus(s, kInfo);
  const std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = pclose(p);
  std::remove(path.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << output;
  // 0: clean; 3: lint findings only; 1: the page does not parse.
  EXPECT_THAT(WEXITSTATUS(status), ::testing::AnyOf(0, 3)) << output;
  for (const std::string& line : lines_of(output)) {
    if (line.empty()) continue;
    EXPECT_EQ(line,
              "asset_worker_processing_duration_ms metric names should not contain abbreviated "
              "units");
  }
}

}  // namespace
}  // namespace atw
