#include "adapters/postgres/storage_changes.h"

#include <fmt/format.h>

#include <chrono>

namespace atw {

namespace {

constexpr std::string_view kType = "storage_change_failed";
constexpr std::string_view kBoundPrefix = "telemetry_history_before_p";

std::string value(const PgResult& r, int row, int col) {
  return PQgetisnull(r.get(), row, col) ? std::string()
                                        : std::string(PQgetvalue(r.get(), row, col));
}

// A full read of `table`, timed: how long the reads the plan speaks of take on this table.
struct TimedRead {
  std::string rows;
  std::string rows_without_time;  // history only
  std::string day_after_newest;   // history only: YYYY-MM-DD (UTC), empty if no row
  double seconds = 0;
};
Result<TimedRead> timed_read(PgConnection& db, const std::string& table, bool history) {
  const auto start = std::chrono::steady_clock::now();
  const std::string sql =
      history ? fmt::format(
                    "SELECT count(*), count(*) FILTER (WHERE \"timestamp\" IS NULL),"
                    " to_char((max(\"timestamp\") AT TIME ZONE 'UTC')::date + 1, 'YYYY-MM-DD')"
                    " FROM {}",
                    table)
              : fmt::format("SELECT count(*), 0, NULL FROM {}", table);
  auto r = db.exec(kType, sql.c_str());
  if (!r.ok()) return r.status();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return TimedRead{value(*r, 0, 0), value(*r, 0, 1), value(*r, 0, 2), seconds};
}

std::string mebibytes(const std::string& bytes) {
  return fmt::format("{:.1f} MiB", std::strtod(bytes.c_str(), nullptr) / (1 << 20));
}

}  // namespace

Result<StorageChange> plan_history_partitions(PgConnection& db, int ahead_days) {
  StorageChange change;
  change.title = "telemetry_history to daily partitions";
  if (auto r = db.exec(kType, "SET statement_timeout = 0"); !r.ok()) return r.status();
  auto table =
      db.exec(kType,
              "SELECT c.relkind::text, quote_ident(pg_get_userbyid(c.relowner)),"
              " quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(n.nspname),"
              " pg_total_relation_size(c.oid)::text,"
              " to_char((now() AT TIME ZONE 'UTC')::date + 7, 'YYYY-MM-DD'),"
              " to_regclass(quote_ident(n.nspname) || '.telemetry_history_legacy') IS NOT NULL"
              " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
              " WHERE c.oid = to_regclass('telemetry_history')");
  if (!table.ok()) return table.status();
  if (PQntuples(table->get()) == 0) {
    return Status::permanent(kType, "there is no telemetry_history table");
  }
  if (value(*table, 0, 0) == "p") {
    change.nothing_to_do = true;
    change.facts.push_back("telemetry_history is partitioned already");
    return change;
  }
  if (value(*table, 0, 0) != "r") {
    return Status::permanent(kType, "telemetry_history is not a table (a view?)");
  }
  if (value(*table, 0, 6) == "t") {
    return Status::permanent(kType, "telemetry_history_legacy exists already: rename it first");
  }
  const std::string owner = value(*table, 0, 1);
  const std::string qualified = value(*table, 0, 2);
  const std::string schema = value(*table, 0, 3);
  const std::string legacy = schema + ".telemetry_history_legacy";

  // The day D: a week ahead, or past the newest row; a constraint an earlier run began keeps its
  // day.
  auto bound = db.exec(kType,
                       "SELECT conname, convalidated FROM pg_constraint"
                       " WHERE conrelid = to_regclass('telemetry_history') AND conname LIKE $1",
                       {std::string(kBoundPrefix) + "%"});
  if (!bound.ok()) return bound.status();
  std::string day = value(*table, 0, 5);
  bool begun = false;
  if (PQntuples(bound->get()) > 0) {
    const std::string name = value(*bound, 0, 0);
    const std::string digits = name.substr(kBoundPrefix.size());
    if (digits.size() == 8) {
      day = digits.substr(0, 4) + "-" + digits.substr(4, 2) + "-" + digits.substr(6, 2);
      begun = true;
    }
  }
  auto read = timed_read(db, qualified, true);
  if (!read.ok()) return read.status();
  if (read->rows_without_time != "0") {
    return Status::permanent(
        kType, fmt::format("{} rows have no \"timestamp\"; a partition by time cannot hold them",
                           read->rows_without_time));
  }
  // D is a week ahead, or past the newest row the table has (ISO dates compare as text).
  if (!begun && read->day_after_newest > day) day = read->day_after_newest;
  if (day.size() != 10) {
    return Status::permanent(kType, "the newest row's \"timestamp\" has no day after it");
  }
  const std::string constraint =
      std::string(kBoundPrefix) + day.substr(0, 4) + day.substr(5, 2) + day.substr(8, 2);
  change.facts = {
      fmt::format("{}: {} rows, {} with its indexes", qualified, read->rows,
                  mebibytes(value(*table, 0, 4))),
      fmt::format("a full read of it took {:.1f} s just now", read->seconds),
      fmt::format("rows moved: none; every row stays in the table, which becomes the partition of"
                  " everything before {} (UTC), telemetry_history_legacy",
                  day),
      fmt::format("daily partitions from {} on; a DEFAULT partition for any other row", day),
  };

  // What the new parent takes over (plain indexes, grants), and what it cannot (listed).
  auto indexes =
      db.exec(kType,
              "SELECT quote_ident(i.relname), quote_ident(left(i.relname, 56) || '_legacy'),"
              " pg_get_indexdef(x.indexrelid), x.indisunique OR x.indisprimary"
              " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
              " WHERE x.indrelid = to_regclass('telemetry_history') ORDER BY i.relname");
  if (!indexes.ok()) return indexes.status();
  auto grants =
      db.exec(kType,
              "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC'"
              " ELSE quote_ident(pg_get_userbyid(a.grantee)) END, a.is_grantable"
              " FROM pg_class c, aclexplode(c.relacl) a"
              " WHERE c.oid = to_regclass('telemetry_history') AND a.grantee <> c.relowner");
  if (!grants.ok()) return grants.status();
  auto dependents = db.exec(
      kType,
      "SELECT 'view ' || v.oid::regclass::text FROM pg_depend d"
      " JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class"
      " WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass('telemetry_history')"
      "  AND v.oid <> d.refobjid"
      " UNION SELECT 'trigger ' || quote_ident(t.tgname) FROM pg_trigger t"
      " WHERE t.tgrelid = to_regclass('telemetry_history') AND NOT t.tgisinternal"
      " UNION SELECT 'foreign key ' || quote_ident(k.conname) || ' of ' || "
      "k.conrelid::regclass::text"
      " FROM pg_constraint k WHERE k.contype = 'f' AND (k.conrelid = "
      "to_regclass('telemetry_history')"
      "  OR k.confrelid = to_regclass('telemetry_history'))"
      " ORDER BY 1");
  if (!dependents.ok()) return dependents.status();
  for (int row = 0; row < PQntuples(dependents->get()); ++row) {
    change.notices.push_back(
        fmt::format("{} stays with telemetry_history_legacy: make it again on telemetry_history",
                    value(*dependents, row, 0)));
  }

  if (!begun) {
    change.steps.push_back(
        {"bound every row, new ones included, before " + day,
         {fmt::format("ALTER TABLE {} ADD CONSTRAINT {} CHECK (\"timestamp\" IS NOT NULL AND"
                      " \"timestamp\" < '{} 00:00:00+00') NOT VALID",
                      qualified, constraint, day)}});
  }
  change.steps.push_back(
      {"check the rows there are against that bound",
       {fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}", qualified, constraint)},
       true});
  StorageChange::Step swap{"put a partitioned telemetry_history in the table's place", {}};
  auto& s = swap.statements;
  s.push_back("SET LOCAL lock_timeout = '10s'");
  s.push_back(fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", qualified));
  s.push_back(fmt::format("ALTER TABLE {} RENAME TO telemetry_history_legacy", qualified));
  std::vector<std::string> parent_indexes;
  for (int row = 0; row < PQntuples(indexes->get()); ++row) {
    if (value(*indexes, row, 3) == "t") {
      change.notices.push_back(fmt::format(
          "unique index {} stays with telemetry_history_legacy (a partitioned table's unique"
          " index must hold \"timestamp\")",
          value(*indexes, row, 0)));
      continue;
    }
    s.push_back(fmt::format("ALTER INDEX {}.{} RENAME TO {}", schema, value(*indexes, row, 0),
                            value(*indexes, row, 1)));
    parent_indexes.push_back(value(*indexes, row, 2));  // names the parent, as it will be
  }
  s.push_back(fmt::format(
      "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE"
      " INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING GENERATED)"
      " PARTITION BY RANGE (\"timestamp\")",
      qualified, legacy));
  s.push_back(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", qualified, constraint));
  for (const auto& def : parent_indexes) s.push_back(def);
  s.push_back(fmt::format("ALTER TABLE {} OWNER TO {}", qualified, owner));
  for (int row = 0; row < PQntuples(grants->get()); ++row) {
    s.push_back(fmt::format("GRANT {} ON {} TO {}{}", value(*grants, row, 0), qualified,
                            value(*grants, row, 1),
                            value(*grants, row, 2) == "t" ? " WITH GRANT OPTION" : ""));
  }
  s.push_back(fmt::format("CREATE TABLE {}.telemetry_history_default PARTITION OF {} DEFAULT",
                          schema, qualified));
  s.push_back(
      fmt::format("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (MINVALUE) TO"
                  " ('{} 00:00:00+00')",
                  qualified, legacy, day));
  s.push_back(fmt::format("SELECT * FROM telemetry_history_maintain({}, 0)", ahead_days));
  change.steps.push_back(std::move(swap));

  change.locks = {
      fmt::format("step 1: ACCESS EXCLUSIVE on telemetry_history for a moment (no row is read);"
                  " from then on a row of {} or later is refused until step 3 (message"
                  " timestamps are at most MAX_FUTURE_S ahead)",
                  day),
      fmt::format("step 2: SHARE UPDATE EXCLUSIVE for a full read, about {:.1f} s: readers and"
                  " writers go on; VACUUM and schema changes of the table wait",
                  read->seconds),
      "step 3: ACCESS EXCLUSIVE on telemetry_history for a moment (no row is read or moved); it"
      " waits at most 10 s for the lock, and gives up rather than queue readers behind it: run"
      " it again then. Workers writing meanwhile wait, as in an outage: nothing is lost",
  };
  if (begun) change.locks.erase(change.locks.begin());
  return change;
}

Result<StorageChange> plan_assets_fillfactor(PgConnection& db, int fillfactor, bool repack) {
  StorageChange change;
  change.title = fmt::format("fillfactor {} on assets{}", fillfactor, repack ? ", repacked" : "");
  if (auto r = db.exec(kType, "SET statement_timeout = 0"); !r.ok()) return r.status();
  auto table = db.exec(kType,
                       "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
                       " coalesce((SELECT split_part(o, '=', 2) FROM unnest(c.reloptions) o"
                       "           WHERE o LIKE 'fillfactor=%'), '100'),"
                       " pg_total_relation_size(c.oid)::text"
                       " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                       " WHERE c.oid = to_regclass('assets') AND c.relkind = 'r'");
  if (!table.ok()) return table.status();
  if (PQntuples(table->get()) == 0) return Status::permanent(kType, "there is no assets table");
  const std::string qualified = value(*table, 0, 0);
  const std::string current = value(*table, 0, 1);
  auto read = timed_read(db, qualified, false);
  if (!read.ok()) return read.status();
  change.facts = {fmt::format("{}: {} rows, {} with its indexes, fillfactor {} now", qualified,
                              read->rows, mebibytes(value(*table, 0, 2)), current),
                  fmt::format("a full read of it took {:.1f} s just now", read->seconds)};
  if (current == std::to_string(fillfactor) && !repack) {
    change.nothing_to_do = true;
    return change;
  }
  if (current != std::to_string(fillfactor)) {
    change.steps.push_back(
        {"keep room on each page written from now on",
         {fmt::format("ALTER TABLE {} SET (fillfactor = {})", qualified, fillfactor)}});
    change.locks.push_back(
        "SHARE UPDATE EXCLUSIVE on assets for a moment: readers and writers go on; pages are"
        " not rewritten, so only pages written from then on keep the room");
  }
  if (repack) {
    change.steps.push_back(
        {"repack every page of assets", {fmt::format("VACUUM FULL {}", qualified)}, true});
    change.locks.push_back(fmt::format(
        "ACCESS EXCLUSIVE on assets for the whole rewrite: no reads, no writes; a rewrite takes"
        " longer than the full read above ({:.1f} s): workers wait meanwhile, as in an outage",
        read->seconds));
  }
  return change;
}

Status apply_storage_change(PgConnection& db, const StorageChange& change,
                            const std::function<void(const StorageChange::Step&)>& on_step) {
  if (auto r = db.exec(kType, "SET statement_timeout = 0"); !r.ok()) return r.status();
  for (const auto& step : change.steps) {
    if (on_step) on_step(step);
    std::string script;
    if (!step.alone) script = "BEGIN; ";
    for (const auto& statement : step.statements) script += statement + "; ";
    if (!step.alone) script += "COMMIT";
    auto r = db.run_script(kType, script);
    if (!r.ok()) {
      if (db.connected()) (void)db.exec(kType, "ROLLBACK");
      return r.status();
    }
  }
  return Status();
}

}  // namespace atw
