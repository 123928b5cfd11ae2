#include "adapters/http/prometheus_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace atw {

namespace {

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  const size_t k =
      static_cast<size_t>(std::min<double>(double(v.size() - 1), q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

}  // namespace

std::string render_prometheus(const MetricsSnapshot& s, const BuildInfo& info) {
  std::string out;
  out.reserve(8192);
  const std::string w = escape_label(info.worker_id);

  header(out, "asset_worker_messages_processed_total", "counter",
         "Messages fully processed and acknowledged (including those with no linked asset).");
  out += fmt::format("asset_worker_messages_processed_total{{worker=\"{}\"}} {}\n", w,
                     s.messages_processed);

  header(out, "asset_worker_processing_duration_ms", "summary",
         "Processing latency per message, fetch to ack, over the latest messages.");
  for (double q : {0.5, 0.95, 0.99}) {
    out += fmt::format("asset_worker_processing_duration_ms{{quantile=\"{}\"}} {}\n", q,
                       num(quantile(s.recent_latency_ms, q)));
  }
  out += fmt::format("asset_worker_processing_duration_ms_sum {}\n", s.latency_sum_seconds * 1000);
  out += fmt::format("asset_worker_processing_duration_ms_count {}\n", s.latency_count);

  header(out, "asset_worker_processing_duration_seconds", "histogram",
         "Processing latency per message, fetch to ack.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cumulative += s.latency_buckets[i];
    out += fmt::format("asset_worker_processing_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                       kLatencyBuckets[i], cumulative);
  }
  cumulative += s.latency_buckets.back();
  out += fmt::format("asset_worker_processing_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
                     cumulative);
  out += fmt::format("asset_worker_processing_duration_seconds_sum {}\n", s.latency_sum_seconds);
  out += fmt::format("asset_worker_processing_duration_seconds_count {}\n", s.latency_count);

  header(out, "asset_worker_cache_hit_rate", "gauge",
         "Share of device-link lookups answered by a cache (in-process or Redis), since start.");
  {
    uint64_t lookups = 0, hits = 0;
    if (auto it = s.cache.find("memory"); it != s.cache.end()) {
      lookups = it->second.hits + it->second.misses;
      hits = it->second.hits;
    }
    if (auto it = s.cache.find("redis"); it != s.cache.end()) hits += it->second.hits;
    out += fmt::format("asset_worker_cache_hit_rate{{cache=\"device_links\"}} {}\n",
                       lookups ? double(hits) / double(lookups) : 0.0);
  }
  header(out, "asset_worker_cache_lookups_total", "counter",
         "Device-link cache lookups by tier and result.");
  for (const auto& [tier, c] : s.cache) {
    out += fmt::format(
        "asset_worker_cache_lookups_total{{cache=\"device_links\",tier=\"{}\",result=\"hit\"}} "
        "{}\n",
        escape_label(tier), c.hits);
    out += fmt::format(
        "asset_worker_cache_lookups_total{{cache=\"device_links\",tier=\"{}\",result=\"miss\"}} "
        "{}\n",
        escape_label(tier), c.misses);
  }
  header(out, "asset_worker_link_store_loads_total", "counter",
         "Devices whose links were read from PostgreSQL.");
  out += fmt::format("asset_worker_link_store_loads_total {}\n", s.link_store_loads);

  header(out, "asset_worker_history_maintenance_runs_total", "counter",
         "History maintenance runs of this replica's timer (MAINTAIN_INTERVAL_S), by result.");
  out += fmt::format("asset_worker_history_maintenance_runs_total{{result=\"ok\"}} {}\n",
                     s.history_maintenance_ok);
  out += fmt::format("asset_worker_history_maintenance_runs_total{{result=\"failed\"}} {}\n",
                     s.history_maintenance_failed);

  header(out, "asset_worker_errors_total", "counter", "Errors by type.");
  for (const auto& [type, n] : s.errors) {
    out += fmt::format("asset_worker_errors_total{{type=\"{}\"}} {}\n", escape_label(type), n);
  }

  header(out, "asset_worker_state_changes_total", "counter",
         "Health-state changes published, by the state entered.");
  for (const auto& [to, n] : s.state_changes) {
    out += fmt::format("asset_worker_state_changes_total{{to=\"{}\"}} {}\n", escape_label(to), n);
  }

  header(
      out, "nats_stream_messages_pending", "gauge",
      "Messages in the input stream not yet delivered to the consumer (as of the last delivery).");
  if (s.stream_pending >= 0) {
    out += fmt::format("nats_stream_messages_pending{{stream=\"{}\"}} {}\n",
                       escape_label(info.stream), s.stream_pending);
  }
  header(out, "asset_worker_consumer_ack_pending", "gauge",
         "Messages delivered and not yet acknowledged, consumer-wide.");
  if (s.ack_pending >= 0)
    out += fmt::format("asset_worker_consumer_ack_pending {}\n", s.ack_pending);
  header(out, "asset_worker_dlq_depth", "gauge", "Messages in the dead-letter stream.");
  if (s.dlq_depth >= 0) out += fmt::format("asset_worker_dlq_depth {}\n", s.dlq_depth);

  const std::pair<const char*, uint64_t> counters[] = {
      {"asset_worker_messages_no_links_total", s.messages_no_links},
      {"asset_worker_messages_duplicate_total", s.messages_duplicate},
      {"asset_worker_messages_dead_lettered_total", s.messages_dead_lettered},
      {"asset_worker_history_rows_total", s.history_rows},
      {"asset_worker_events_published_total", s.events_published},
      {"asset_worker_assets_skipped_total", s.assets_skipped_no_metrics},
      {"asset_worker_metrics_skipped_total", s.metrics_skipped},
      {"asset_worker_quality_unknown_total", s.quality_unknown},
      {"asset_worker_formula_missing_variable_total", s.formula_missing_variable},
      {"asset_worker_formula_non_finite_total", s.formula_non_finite},
  };
  for (const auto& [name, value] : counters) {
    header(out, name, "counter", "See docs/configuration.md#metrics.");
    out += fmt::format("{} {}\n", name, value);
  }

  header(out, "asset_worker_batch_size", "histogram", "Messages per fetched batch.");
  cumulative = 0;
  for (size_t i = 0; i < kBatchSizeBuckets.size(); ++i) {
    cumulative += s.batch_buckets[i];
    out += fmt::format("asset_worker_batch_size_bucket{{le=\"{}\"}} {}\n", kBatchSizeBuckets[i],
                       cumulative);
  }
  cumulative += s.batch_buckets.back();
  out += fmt::format("asset_worker_batch_size_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("asset_worker_batch_size_sum {}\n", s.batch_size_sum);
  out += fmt::format("asset_worker_batch_size_count {}\n", s.batch_count);

  header(out, "asset_worker_up", "gauge", "Whether the worker is connected to each server.");
  out += fmt::format("asset_worker_up{{server=\"nats\"}} {}\n", s.nats_up ? 1 : 0);
  out += fmt::format("asset_worker_up{{server=\"postgres\"}} {}\n", s.postgres_up ? 1 : 0);
  out += fmt::format("asset_worker_up{{server=\"redis\"}} {}\n", s.redis_up ? 1 : 0);

  header(out, "asset_worker_build_info", "gauge", "Build and identity of this worker.");
  out += fmt::format("asset_worker_build_info{{version=\"{}\",worker=\"{}\"}} 1\n",
                     escape_label(info.version), w);
  return out;
}

}  // namespace atw
