#pragma once
// Changes to the storage of tables the worker adopted rather than created (SPEC D15): never made
// by `migrate`, only by `asset-worker storage ...` on an operator's word, after a plan that says
// what will be done, what will be locked and for about how long (measured on the table itself).
//
//   history-partitions: telemetry_history to daily partitions. In three steps, so that the
//     table is locked against readers and writers only for a moment:
//       1. a CHECK constraint that every row is before a day D (a week ahead, or the day after
//          the newest row if that is later), added NOT VALID
//          (enforced for new rows from then on; a brief lock);
//       2. the constraint validated: a full read, during which readers and writers go on;
//       3. one transaction: the table renamed telemetry_history_legacy, a partitioned
//          telemetry_history made like it (columns, defaults, checks, its plain indexes, owner
//          and grants), the legacy table attached as the partition of everything before D (the
//          validated constraint spares PostgreSQL the read it would otherwise make under the
//          lock), a DEFAULT partition, and the daily partitions from D on.
//     Every row stays where it is. Views, triggers and foreign keys on the table stay with the
//     legacy table: the plan lists them, to be recreated.
//   assets-fillfactor: `fillfactor` on assets (a brief lock; pages written from then on), and
//     with `repack`, VACUUM FULL to repack the pages there are (a rewrite, locked throughout).

#include <functional>
#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"

namespace atw {

struct StorageChange {
  std::string title;
  bool nothing_to_do = false;
  std::vector<std::string> facts;    // what the table is: rows, size, a measured full read
  std::vector<std::string> locks;    // which lock each step takes, and for about how long
  std::vector<std::string> notices;  // what the operator must do after (views to recreate, ...)
  // Steps in order; each step's statements run in one transaction, except a step marked alone,
  // whose single statement runs outside any (VACUUM, VALIDATE after its ADD committed).
  struct Step {
    std::string what;
    std::vector<std::string> statements;
    bool alone = false;
  };
  std::vector<Step> steps;
};

// The plans. They read the catalog and the table (a full read, timed), and change nothing.
Result<StorageChange> plan_history_partitions(PgConnection& db, int ahead_days);
Result<StorageChange> plan_assets_fillfactor(PgConnection& db, int fillfactor, bool repack);

// Carries out a plan's steps in order; stops at the first failure (what ran stays: every step
// is safe to run again).
Status apply_storage_change(PgConnection& db, const StorageChange& change,
                            const std::function<void(const StorageChange::Step&)>& on_step);

}  // namespace atw
