#include <fmt/format.h>

#include "adapters/postgres/migrations.h"
#include "app/commands.h"

namespace atw {

int run_migrate(const Config& c) {
  Logger log(c.level(), stderr, c.worker_id);
  PgConnection db(c.database());
  auto applied = migrate(db);
  if (!applied.ok()) {
    log.error("migration failed", {{"error", applied.status().message()}});
    return 1;
  }
  for (const auto& name : *applied) fmt::print("applied {}\n", name);
  fmt::print("schema up to date ({} applied now)\n", applied->size());
  return 0;
}

}  // namespace atw
