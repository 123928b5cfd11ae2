// asset-worker storage history-partitions | assets-fillfactor: changes to the storage of tables
// the worker adopted, never made by `migrate` (SPEC D15). Each prints its plan first; with
// --dry-run that is all it does.

#include <fmt/format.h>

#include "adapters/postgres/storage_changes.h"
#include "app/commands.h"

namespace atw {

namespace {

void print_plan(const StorageChange& change) {
  fmt::print("{}\n", change.title);
  for (const auto& fact : change.facts) fmt::print("  {}\n", fact);
  if (change.nothing_to_do) return;
  fmt::print("\nSteps, in order (each in one transaction):\n");
  int n = 0;
  for (const auto& step : change.steps) {
    fmt::print("  {}. {}\n", ++n, step.what);
    for (const auto& statement : step.statements) fmt::print("       {};\n", statement);
  }
  fmt::print("\nLocks:\n");
  for (const auto& lock : change.locks) fmt::print("  {}\n", lock);
  if (!change.notices.empty()) {
    fmt::print("\nTo do afterwards:\n");
    for (const auto& notice : change.notices) fmt::print("  {}\n", notice);
  }
}

}  // namespace

int run_storage_change(const Config& c, const StorageRequest& request) {
  PgConnection db(c.database());
  Result<StorageChange> plan = request.what == StorageRequest::kHistoryPartitions
                                   ? plan_history_partitions(db, c.partitions_ahead_days)
                                   : plan_assets_fillfactor(db, request.fillfactor, request.repack);
  if (!plan.ok()) {
    print_error(plan.status().message());
    return 1;
  }
  print_plan(*plan);
  if (plan->nothing_to_do) {
    fmt::print("\nnothing to do\n");
    return 0;
  }
  if (request.dry_run) {
    fmt::print("\ndry run: nothing was changed\n");
    return 0;
  }
  fmt::print("\n");
  int n = 0;
  const Status st = apply_storage_change(db, *plan, [&n](const StorageChange::Step& step) {
    fmt::print("step {}: {}\n", ++n, step.what);
    std::fflush(stdout);
  });
  if (!st.ok()) {
    print_error(fmt::format("step {} failed: {}", n, st.message()));
    return 1;
  }
  fmt::print("done\n");
  return 0;
}

}  // namespace atw
