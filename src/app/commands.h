#pragma once
// The subcommands of `asset-worker` (SPEC D15). Each returns the process exit code.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "app/config.h"
#include "common/redact.h"

namespace atw {

// "asset-worker: <text>" on stderr, with any secret in it masked (common/redact.h): every
// command's error goes through here.
void print_error(std::string_view text);

// Runs the worker until `stop` is set (SIGTERM/SIGINT), then drains.
int run_worker(const Config& config, const std::atomic<bool>& stop);
int run_migrate(const Config& config);
// `maintain`: telemetry_history's partitions made ahead and dropped past the retention, once
// (the worker does it every MAINTAIN_INTERVAL_S). Prints one line per action and a summary.
int run_maintain(const Config& config);

// Which dead letters a dlq command acts on: listed sequences, an error type, or all.
struct DlqSelection {
  std::vector<uint64_t> sequences;
  std::string error_type;
  bool all = false;
  bool payload_only = false;  // show: the original payloads' bytes alone
};
// `action`: list, show, replay or purge.
int run_dlq(const Config& config, const std::string& action, const DlqSelection& selection);

// `links invalidate`: purges one device's cached links (or every device's, `all`) from Redis and
// tells every running worker to purge them too (SPEC D7), as a link change does by itself.
// `formulas check`: compiles every asset type's derived metrics and health rules from the
// database and lists each problem (exit 1 if any). `formulas try`: the asset metrics and health
// score a message with these asset metrics would give, written nowhere.
int run_formulas_check(const Config& config);
int run_formulas_try(const Config& config, const std::string& asset_type,
                     const std::string& metrics_json);

// `storage history-partitions | assets-fillfactor`: see adapters/postgres/storage_changes.h.
struct StorageRequest {
  enum What { kHistoryPartitions, kAssetsFillfactor } what = kHistoryPartitions;
  bool dry_run = false;
  int fillfactor = 50;
  bool repack = false;
};
int run_storage_change(const Config& config, const StorageRequest& request);

// `reprocess`: the messages of a time range read back from the input stream and
// written again as today's links and asset types make them. Stopped by `stop` after the batch in
// hand (exit 130), resumable with `resume`.
struct ReprocessRequest {
  std::string from, to;  // RFC 3339: measurements in [from, to)
  std::string org, device, asset, asset_type;
  int schema_version = 0;  // with asset_type: replay with this recorded version of its schema
  bool dry_run = false;
  bool json = false;
  bool resume = false;
  double max_rate = 0;  // messages read per second; 0: as fast as it goes
  int batch = 500;
};
int run_reprocess(const Config& config, const ReprocessRequest& request,
                  const std::atomic<bool>& stop);
// `formulas history`: every recorded version of the asset types' telemetry_schema.
int run_formulas_history(const Config& config, const std::string& asset_type);

int run_links_invalidate(const Config& config, const std::string& organization,
                         const std::string& device, bool all);

}  // namespace atw
