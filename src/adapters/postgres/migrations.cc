#include "adapters/postgres/migrations.h"

namespace atw {

namespace {
// Any fixed number: identifies this worker's migration lock among the database's advisory locks.
constexpr const char* kLockKey = "7216402291";
}  // namespace

Result<std::vector<std::string>> migrate(PgConnection& db) {
  auto r = db.exec("migrate_failed",
                   "CREATE TABLE IF NOT EXISTS asset_worker_migrations ("
                   " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
  if (!r.ok()) return r.status();
  r = db.exec("migrate_failed", "SELECT pg_advisory_lock($1::bigint)", {kLockKey});
  if (!r.ok()) return r.status();

  std::vector<std::string> applied;
  Status failure;
  for (const Migration& m : embedded_migrations()) {
    auto done = db.exec("migrate_failed", "SELECT 1 FROM asset_worker_migrations WHERE name = $1",
                        {m.name});
    if (!done.ok()) {
      failure = done.status();
      break;
    }
    if (PQntuples(done->get()) > 0) continue;
    auto begin = db.exec("migrate_failed", "BEGIN");
    if (!begin.ok()) {
      failure = begin.status();
      break;
    }
    // Multi-statement text: PQexec's simple protocol, through the connection's raw handle.
    PgResult body(PQexec(db.raw(), m.sql));
    if (!body || PQresultStatus(body.get()) != PGRES_COMMAND_OK) {
      failure = pg_error_status(body.get(), db.raw(), "migrate_failed");
      failure = Status::permanent("migrate_failed", std::string(m.name) + ": " + failure.message());
      (void)db.exec("migrate_failed", "ROLLBACK");
      break;
    }
    auto mark = db.exec("migrate_failed", "INSERT INTO asset_worker_migrations (name) VALUES ($1)",
                        {m.name});
    Status committed = mark.status();
    if (committed.ok()) committed = db.exec("migrate_failed", "COMMIT").status();
    if (!committed.ok()) {
      failure = committed;
      (void)db.exec("migrate_failed", "ROLLBACK");
      break;
    }
    applied.emplace_back(m.name);
  }
  (void)db.exec("migrate_failed", "SELECT pg_advisory_unlock($1::bigint)", {kLockKey});
  if (!failure.ok()) return failure;
  return applied;
}

}  // namespace atw
