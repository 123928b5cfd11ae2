#include "adapters/postgres/migrations.h"

#include <fmt/format.h>

namespace atw {

namespace {
// Any fixed number: identifies this worker's migration lock among the database's advisory locks.
constexpr const char* kLockKey = "7216402291";
constexpr std::string_view kNoTransaction = "-- atw:no-transaction";
constexpr std::string_view kType = "migrate_failed";

// Applies one migration in its own transaction, recording it there.
Status apply_in_transaction(PgConnection& db, const Migration& m) {
  auto name = db.literal(kType, m.name);
  if (!name.ok()) return name.status();
  const std::string script = fmt::format(
      "BEGIN; {}\n; INSERT INTO asset_worker_migrations (name) VALUES ({}); COMMIT", m.sql, *name);
  auto r = db.run_script(kType, script);
  if (r.ok()) return Status();
  if (db.connected()) (void)db.exec(kType, "ROLLBACK");
  return r.status();
}

// Applies a no-transaction migration: each statement on its own, then records it. Its
// statements must be safe to run again (IF NOT EXISTS), since a failure leaves the ones before.
Status apply_statement_by_statement(PgConnection& db, const Migration& m) {
  for (const std::string& statement : split_sql_statements(m.sql)) {
    auto r = db.run_script(kType, statement);
    if (!r.ok()) return r.status();
  }
  return db.exec(kType, "INSERT INTO asset_worker_migrations (name) VALUES ($1)", {m.name})
      .status();
}

}  // namespace

std::vector<std::string> split_sql_statements(std::string_view sql) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    const size_t first = current.find_first_not_of(" \t\r\n");
    if (first != std::string::npos) out.push_back(current.substr(first));
    current.clear();
  };
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {  // a comment, to the line's end
      while (i < sql.size() && sql[i] != '\n') ++i;
      current.push_back('\n');
      continue;
    }
    if (c == '\'') {  // a string literal ('' inside is a quote)
      const size_t end = sql.find('\'', i + 1);
      const size_t stop = end == std::string_view::npos ? sql.size() : end + 1;
      current.append(sql.substr(i, stop - i));
      i = stop - 1;
      continue;
    }
    if (c == '$') {  // a dollar-quoted body: $$ ... $$ or $tag$ ... $tag$
      const size_t tag_end = sql.find('$', i + 1);
      if (tag_end != std::string_view::npos) {
        const std::string_view tag = sql.substr(i, tag_end - i + 1);
        const bool is_tag = tag.find_first_of(" \t\r\n;'") == std::string_view::npos;
        const size_t close = is_tag ? sql.find(tag, tag_end + 1) : std::string_view::npos;
        if (close != std::string_view::npos) {
          current.append(sql.substr(i, close + tag.size() - i));
          i = close + tag.size() - 1;
          continue;
        }
      }
    }
    if (c == ';') {
      flush();
      continue;
    }
    current.push_back(c);
  }
  flush();
  return out;
}

Result<std::vector<std::string>> migrate(PgConnection& db) {
  auto r = db.exec(kType,
                   "CREATE TABLE IF NOT EXISTS asset_worker_migrations ("
                   " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
  if (!r.ok()) return r.status();
  // Statements of a migration may read or rewrite much: no statement timeout.
  r = db.exec(kType, "SET statement_timeout = 0");
  if (!r.ok()) return r.status();
  r = db.exec(kType, "SELECT pg_advisory_lock($1::bigint)", {kLockKey});
  if (!r.ok()) return r.status();

  std::vector<std::string> applied;
  Status failure;
  for (const Migration& m : embedded_migrations()) {
    auto done = db.exec(kType, "SELECT 1 FROM asset_worker_migrations WHERE name = $1", {m.name});
    if (!done.ok()) {
      failure = done.status();
      break;
    }
    if (PQntuples(done->get()) > 0) continue;
    const bool one_by_one = std::string_view(m.sql).starts_with(kNoTransaction);
    const Status st =
        one_by_one ? apply_statement_by_statement(db, m) : apply_in_transaction(db, m);
    if (!st.ok()) {
      failure = Status::permanent(kType, fmt::format("{}: {}", m.name, st.message()));
      break;
    }
    applied.emplace_back(m.name);
  }
  (void)db.exec(kType, "SELECT pg_advisory_unlock($1::bigint)", {kLockKey});
  (void)db.exec(kType, "RESET statement_timeout");
  if (!failure.ok()) return failure;
  return applied;
}

}  // namespace atw
