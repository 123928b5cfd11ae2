// asset-worker maintain: the history maintenance the worker also runs on a timer, once,
// now, with the configured settings; for a cron job, or to apply a new retention at once.

#include <fmt/format.h>

#include "adapters/postgres/history_maintenance.h"
#include "app/commands.h"

namespace atw {

int run_maintain(const Config& c) {
  HistoryMaintenance maintenance(c.database(), {c.partitions_ahead_days, c.history_retention_days});
  auto actions = maintenance.run();
  if (!actions.ok()) {
    const std::string& why = actions.status().message();
    // A hint for the person at the terminal, not a decision: the schema predates the function.
    const bool unmigrated = why.find("telemetry_history_maintain") != std::string::npos &&
                            why.find("does not exist") != std::string::npos;
    print_error(fmt::format("history maintenance failed: {}{}", why,
                            unmigrated ? " (run `asset-worker migrate` first)" : ""));
    return 1;
  }
  for (const HistoryAction& a : *actions) fmt::print("{}\n", describe(a));
  fmt::print("{}\n", summarize(*actions, {c.partitions_ahead_days, c.history_retention_days}));
  return 0;
}

}  // namespace atw
