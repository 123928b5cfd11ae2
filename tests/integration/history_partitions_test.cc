// telemetry_history partitioned by time, against the real PostgreSQL: an adopted,
// unpartitioned table left as it is by `migrate` and converted by `asset-worker storage
// history-partitions`, `asset-worker maintain`, retention, the worker's timer, and SPEC D11
// across partitions through the real sink. Each test works in a database of its own
// (CREATE DATABASE atw_part_...), dropped at its end, so the partitions made and dropped here
// never touch another test's tables.
//
// "Today" is read from the server once per test; a test that runs across midnight UTC may fail.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "adapters/postgres/history_maintenance.h"
#include "adapters/postgres/migrations.h"
#include "adapters/postgres/pg_telemetry_sink.h"
#include "support/own_database.h"

namespace atw::testing {
namespace {

using namespace std::chrono_literals;

// The key telemetry_history_maintain takes (migrations/004_partitioned_history.sql).
constexpr const char* kMaintainLockKey = "7216402292";

// A database of the test's own, as another service made it: telemetry_history unpartitioned
// (create_owner_tables), adopted as it is by every migration.
void adopt_owner_tables(OwnDatabase& d) {
  d.create_owner_tables();
  d.migrate_all();
  ASSERT_EQ(d.sql().scalar("SELECT relkind::text FROM pg_class WHERE relname ="
                           " 'telemetry_history'"),
            "r");
}

// The server's current UTC date, YYYY-MM-DD.
std::string utc_today(Sql& sql) {
  return *sql.scalar("SELECT ((now() AT TIME ZONE 'UTC')::date)::text");
}

// The name of the daily partition `offset` days from `today`.
std::string day_partition(Sql& sql, const std::string& today, int offset) {
  return *sql.scalar("SELECT 'telemetry_history_p' || to_char($1::date + $2::int, 'YYYYMMDD')",
                     {today, std::to_string(offset)});
}

// The daily partitions from `today + first` to `today + last`, in order.
std::vector<std::string> day_partitions(Sql& sql, const std::string& today, int first, int last) {
  std::vector<std::string> out;
  for (int d = first; d <= last; ++d) out.push_back(day_partition(sql, today, d));
  return out;
}

// telemetry_history's partitions, range ones by lower bound, the DEFAULT one last.
std::vector<std::string> partitions(Sql& sql) {
  std::vector<std::string> out;
  for (const auto& row : sql.query("SELECT relation FROM telemetry_history_partitions()")) {
    out.push_back(*row[0]);
  }
  return out;
}

// Rows of telemetry_history by the partition that holds them.
std::map<std::string, int> rows_by_partition(Sql& sql) {
  std::map<std::string, int> out;
  for (const auto& row : sql.query("SELECT tableoid::regclass::text, count(*)::int"
                                   " FROM telemetry_history GROUP BY 1")) {
    out[*row[0]] = std::stoi(*row[1]);
  }
  return out;
}

// Row count and a digest of every row's content, in a fixed order: equal before and after means
// no row was lost, added or changed.
std::string content(Sql& sql) {
  return *sql.scalar(
      "SELECT count(*) || ' ' || coalesce(md5(string_agg(h::text, E'\\n' ORDER BY h::text)), '')"
      " FROM telemetry_history h");
}

// `today + days` at `hour`:00 UTC, as timestamptz text.
std::string at(Sql& sql, const std::string& today, int days, double hour) {
  return *sql.scalar(
      "SELECT (($1::date + $2::int)::timestamp AT TIME ZONE 'UTC'"
      " + $3::float8 * interval '1 hour')::text",
      {today, std::to_string(days), fmt::format("{}", hour)});
}

// Inserts one history row per (day offset, hour) into telemetry_history.
void insert_rows(Sql& sql, const std::string& today,
                 const std::vector<std::pair<int, double>>& when) {
  int n = 0;
  for (const auto& [days, hour] : when) {
    ++n;
    sql.exec(
        "INSERT INTO telemetry_history (entity_id, entity_type, metric_key, value, \"timestamp\","
        " source_device_id, quality) VALUES ($1, 'Asset', $2, $3::float8, $4::timestamptz,"
        " 'dev-1', 'good')",
        {fmt::format("asset-{}", n % 3), fmt::format("metric_{}", n % 4),
         n % 5 == 0 ? std::optional<std::string>() : std::to_string(n * 1.25),
         at(sql, today, days, hour)});
  }
}

struct CommandResult {
  std::optional<int> code;
  std::string output;  // stdout and stderr
};

// Runs `asset-worker args...` against `database_url` to its end.
CommandResult run_command(const std::string& database_url, std::vector<std::string> args,
                          std::map<std::string, std::string> env = {}) {
  env["DATABASE_URL"] = database_url;
  env["LOG_LEVEL"] = "debug";
  WorkerProcess command(env, std::move(args));
  CommandResult result;
  // Generous: under ASan a maintenance beside a busy writer has taken seconds, never a minute.
  for (auto end = std::chrono::steady_clock::now() + 120s;
       !result.code && std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(20ms)) {
    result.code = command.exited();
  }
  result.output = read_file(command.log_path());
  if (!result.code) {
    // Still running: say what the database's sessions were doing, for the failure message.
    result.output += "\n(no exit in 120 s) sessions of the database:\n";
    auto activity = Sql(database_url)
                        .scalar(
                            "SELECT string_agg(format('%s %s %s/%s: %s', pid, state,"
                            " wait_event_type, wait_event, left(query, 160)), E'\\n')"
                            " FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid()");
    result.output += activity.value_or("(none)");
  }
  return result;
}

// Lines of `text` that start with `prefix`.
size_t count_of(const std::string& text, const std::string& prefix) {
  size_t n = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) n += line.starts_with(prefix) ? 1 : 0;
  return n;
}

// Far past, weeks ago, yesterday's last microsecond, today from its first microsecond, the days
// after, and a month ahead; a NULL value every fifth row.
const std::vector<std::pair<int, double>> kSpread = {
    {-9000, 3}, {-40, 12}, {-1, 0}, {-1, 23.9999997}, {0, 0}, {0, 13.5}, {0, 23},
    {1, 1},     {3, 7},    {3, 8},  {7, 23},          {8, 0}, {30, 12}};

// The columns of the owner's tables, for "nothing was added".
std::string owner_columns(Sql& sql) {
  return *sql.scalar(
      "SELECT string_agg(attrelid::regclass || '.' || attname, ',' ORDER BY 1) FROM pg_attribute"
      " WHERE attrelid IN ('assets'::regclass, 'asset_types'::regclass,"
      " 'entity_edges'::regclass, 'telemetry_history'::regclass) AND attnum > 0"
      " AND NOT attisdropped");
}

// SPEC D15: `migrate` adopts another service's tables as they are: no column added, no table
// renamed, rewritten or partitioned, no storage parameter changed; twice, and maintenance leaves
// the table's rows alone.
TEST(HistoryPartitions, MigrateAdoptsAnUnpartitionedTableAsItIs) {
  OwnDatabase d("atw_part");
  d.create_owner_tables();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  insert_rows(sql, today, kSpread);
  const std::string columns = owner_columns(sql);
  const std::string before = content(sql);
  const std::string files =
      "SELECT pg_relation_filenode('telemetry_history') || ',' || pg_relation_filenode('assets')";
  const std::string files_before = *sql.scalar(files);

  for (int i = 0; i < 2; ++i) {
    auto r = run_command(d.url(), {"migrate"});
    ASSERT_EQ(r.code, 0) << r.output;
  }
  EXPECT_EQ(sql.scalar("SELECT relkind::text FROM pg_class WHERE relname = 'telemetry_history'"),
            "r");
  EXPECT_EQ(sql.scalar(files), files_before) << "no table rewritten";
  EXPECT_EQ(owner_columns(sql), columns) << "no column added";
  EXPECT_EQ(sql.scalar("SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class"
                       " WHERE oid = 'assets'::regclass"),
            "")
      << "assets' storage parameters are its owner's";
  EXPECT_EQ(content(sql), before);
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM pg_class WHERE relname LIKE"
                       " 'telemetry_history_%' AND relkind = 'r'"),
            "0")
      << "no partition made";

  auto r = run_command(d.url(), {"maintain", "--history-retention-days", "30"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "created "), 0u) << r.output;
  EXPECT_EQ(count_of(r.output, "dropped "), 0u) << r.output;
  EXPECT_EQ(content(sql), before) << "rows past the retention are the owner's to delete";
}

TEST(HistoryPartitions, TheStorageCommandPartitionsAnAdoptedTableKeepingEveryRow) {
  OwnDatabase d("atw_part");
  adopt_owner_tables(d);
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  insert_rows(sql, today, kSpread);
  sql.exec("INSERT INTO telemetry_history SELECT * FROM telemetry_history LIMIT 1");
  sql.exec("CREATE INDEX history_by_metric ON telemetry_history (metric_key)");
  sql.exec("CREATE VIEW recent_history AS SELECT * FROM telemetry_history");
  const std::string role = d.make_role();
  sql.exec("GRANT SELECT ON telemetry_history TO " + role);
  const std::string before = content(sql);
  const std::string file_before = *sql.scalar("SELECT pg_relation_filenode('telemetry_history')");
  // The newest row is on day +30: the legacy partition ends with day +31.
  const std::string bound_day = *sql.scalar("SELECT ($1::date + 31)::text", {today});

  auto dry = run_command(d.url(), {"storage", "history-partitions", "--dry-run"});
  ASSERT_EQ(dry.code, 0) << dry.output;
  for (const std::string& said :
       {std::string("dry run: nothing was changed"), std::string("14 rows"),
        std::string("a full read of it took"), std::string("rows moved: none"),
        std::string("RENAME TO telemetry_history_legacy"), std::string("ATTACH PARTITION"),
        std::string("VALIDATE CONSTRAINT"), std::string("ACCESS EXCLUSIVE"),
        std::string("SHARE UPDATE EXCLUSIVE"), std::string("view recent_history stays with"),
        std::string("before " + bound_day)}) {
    EXPECT_NE(dry.output.find(said), std::string::npos) << said << "\n" << dry.output;
  }
  EXPECT_EQ(sql.scalar("SELECT relkind::text FROM pg_class WHERE relname = 'telemetry_history'"),
            "r");
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM pg_constraint"
                       " WHERE conrelid = 'telemetry_history'::regclass AND contype = 'c'"),
            "0")
      << "a dry run changes nothing";

  auto run = run_command(d.url(), {"storage", "history-partitions"});
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(
      sql.scalar("SELECT relkind::text FROM pg_class WHERE oid = 'telemetry_history'::regclass"),
      "p");
  EXPECT_EQ(content(sql), before) << "the same rows, each with the same content";
  EXPECT_EQ(sql.scalar("SELECT pg_relation_filenode('telemetry_history_legacy')"), file_before)
      << "the old table is the legacy partition itself, not a rewritten copy";
  EXPECT_EQ(sql.scalar("SELECT (upper_bound = $1::date::timestamptz AND lower_bound IS NULL)::text"
                       " FROM telemetry_history_partitions()"
                       " WHERE relation = 'telemetry_history_legacy'",
                       {bound_day}),
            "true");
  EXPECT_EQ(partitions(sql),
            (std::vector<std::string>{"telemetry_history_legacy", "telemetry_history_default"}));
  EXPECT_EQ(rows_by_partition(sql), (std::map<std::string, int>{{"telemetry_history_legacy", 14}}));
  // Its indexes serve the legacy partition (none built beside it); grants stay.
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM pg_index"
                       " WHERE indrelid = 'telemetry_history_legacy'::regclass"),
            "2");
  EXPECT_EQ(sql.scalar("SELECT string_agg(inhparent::regclass::text, ',' ORDER BY 1)"
                       " FROM pg_inherits WHERE inhrelid IN"
                       " ('telemetry_history_entity_time_idx_legacy'::regclass,"
                       "  'history_by_metric_legacy'::regclass)"),
            "history_by_metric,telemetry_history_entity_time_idx");
  EXPECT_EQ(
      sql.scalar("SELECT has_table_privilege($1, 'telemetry_history', 'SELECT')::text", {role}),
      "true");

  // Days past the legacy partition get theirs, and a writer's rows land in them.
  auto ahead = run_command(d.url(), {"maintain", "--partitions-ahead-days", "33"});
  ASSERT_EQ(ahead.code, 0) << ahead.output;
  EXPECT_EQ(count_of(ahead.output, "created "), 3u) << ahead.output;
  insert_rows(sql, today, {{32, 6}, {2, 6}});
  EXPECT_EQ(rows_by_partition(sql)[day_partition(sql, today, 32)], 1);
  EXPECT_EQ(rows_by_partition(sql)["telemetry_history_legacy"], 15);

  auto again = run_command(d.url(), {"storage", "history-partitions"});
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("partitioned already"), std::string::npos) << again.output;
}

// An operator who was told to keep room on assets' pages does it on their word, with a plan first.
TEST(HistoryPartitions, TheStorageCommandSetsAssetsFillfactorOnlyWhenAsked) {
  OwnDatabase d("atw_part");
  adopt_owner_tables(d);
  Sql& sql = d.sql();
  const std::string options =
      "SELECT coalesce(array_to_string(reloptions, ','), '') FROM pg_class"
      " WHERE oid = 'assets'::regclass";
  auto dry = run_command(d.url(), {"storage", "assets-fillfactor", "--dry-run", "--repack"});
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("ALTER TABLE public.assets SET (fillfactor = 50)"), std::string::npos)
      << dry.output;
  EXPECT_NE(dry.output.find("VACUUM FULL public.assets"), std::string::npos) << dry.output;
  EXPECT_EQ(sql.scalar(options), "");
  auto run = run_command(d.url(), {"storage", "assets-fillfactor", "--repack"});
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(sql.scalar(options), "fillfactor=50");
  auto again = run_command(d.url(), {"storage", "assets-fillfactor"});
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("nothing to do"), std::string::npos) << again.output;
}

TEST(HistoryPartitions, FreshDatabaseHasItsPartitionsAtOnce) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  auto expected = day_partitions(sql, today, 0, 7);
  expected.push_back("telemetry_history_default");
  EXPECT_EQ(partitions(sql), expected) << "no legacy partition where the old table was empty";
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM pg_class"
                       " WHERE relname = 'telemetry_history_legacy'"),
            "0");
}

TEST(HistoryPartitions, MaintainMakesTheDaysAheadOnce) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);

  auto first = run_command(d.url(), {"maintain"});
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_EQ(count_of(first.output, "created "), 0u) << "the migration made today..+7";
  EXPECT_NE(first.output.find("history maintained: 0 partitions created"), std::string::npos)
      << first.output;

  auto ahead = run_command(d.url(), {"maintain"}, {{"PARTITIONS_AHEAD_DAYS", "10"}});
  ASSERT_EQ(ahead.code, 0) << ahead.output;
  EXPECT_EQ(count_of(ahead.output, "created "), 3u) << ahead.output;
  for (int day = 8; day <= 10; ++day) {
    EXPECT_NE(ahead.output.find("created " + day_partition(sql, today, day) + "\n"),
              std::string::npos)
        << ahead.output;
  }
  auto expected = day_partitions(sql, today, 0, 10);
  expected.push_back("telemetry_history_default");
  EXPECT_EQ(partitions(sql), expected);

  auto twice = run_command(d.url(), {"maintain", "--partitions-ahead-days", "10"});
  ASSERT_EQ(twice.code, 0) << twice.output;
  EXPECT_EQ(count_of(twice.output, "created "), 0u) << twice.output;
  EXPECT_EQ(partitions(sql), expected);

  auto invalid = run_command(d.url(), {"maintain", "--partitions-ahead-days", "0"});
  EXPECT_EQ(invalid.code, 2);
  EXPECT_NE(invalid.output.find("--partitions-ahead-days must be 1..90"), std::string::npos)
      << invalid.output;
  auto negative = run_command(d.url(), {"maintain"}, {{"HISTORY_RETENTION_DAYS", "-1"}});
  EXPECT_EQ(negative.code, 2);
  EXPECT_NE(negative.output.find("--history-retention-days must be"), std::string::npos)
      << negative.output;

  // A database that was never migrated: a clear error, exit 1.
  OwnDatabase empty("atw_part");
  auto unmigrated = run_command(empty.url(), {"maintain"});
  EXPECT_EQ(unmigrated.code, 1);
  EXPECT_NE(unmigrated.output.find("history maintenance failed"), std::string::npos)
      << unmigrated.output;
  EXPECT_NE(unmigrated.output.find("run `asset-worker migrate` first"), std::string::npos)
      << unmigrated.output;
  // No server at all.
  auto nowhere =
      run_command(with_database(server_urls().database, "atw_part_no_such_database"), {"maintain"});
  EXPECT_EQ(nowhere.code, 1);
  EXPECT_NE(nowhere.output.find("history maintenance failed"), std::string::npos) << nowhere.output;
}

TEST(HistoryPartitions, RowsOfAFutureDayMoveOutOfTheDefaultPartition) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  // Day +12 from its first to its last microsecond, and the first instant of day +13.
  insert_rows(sql, today, {{12, 0}, {12, 6}, {12, 23.99999999}, {13, 0}});
  ASSERT_EQ(rows_by_partition(sql), (std::map<std::string, int>{{"telemetry_history_default", 4}}));
  const std::string before = content(sql);

  auto r = run_command(d.url(), {"maintain", "--partitions-ahead-days", "12"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("created " + day_partition(sql, today, 11) + "\n"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("created " + day_partition(sql, today, 12) +
                          " (moved 3 rows into it from the default partition)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("5 partitions created (3 rows moved)"), std::string::npos) << r.output;
  EXPECT_EQ(rows_by_partition(sql), (std::map<std::string, int>{{day_partition(sql, today, 12), 3},
                                                                {"telemetry_history_default", 1}}));
  EXPECT_EQ(content(sql), before);
}

TEST(HistoryPartitions, RetentionDropsOldPartitionsAndForgetsOldMessages) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  // Partitions of 60..55 days ago, as a maintenance run then would have made them.
  sql.exec("SELECT * FROM telemetry_history_maintain(5, 0, $1::date - 60)", {today});
  insert_rows(sql, today, {{-60, 1}, {-56, 2}, {-50, 3}, {-31, 23}, {-29, 1}, {-3, 4}, {0, 5}});
  ASSERT_EQ(rows_by_partition(sql),
            (std::map<std::string, int>{{day_partition(sql, today, -60), 1},
                                        {day_partition(sql, today, -56), 1},
                                        {"telemetry_history_default", 4},
                                        {day_partition(sql, today, 0), 1}}));
  // processed_messages: (timestamp, processed_at) in days from today; the cutoff is day -30.
  const std::vector<std::tuple<std::string, double, double>> processed = {
      {"old", -50, -50},                           // forgotten
      {"just-before-cutoff", -30.0001, -30.0001},  // forgotten
      {"at-cutoff", -30, -30},                     // kept: not older than the retention
      {"late", -50, -1},          // kept: processed recently (BRIN on processed_at)
      {"recent", -1, -1},         // kept
      {"early-stamp", -29, -31},  // kept: its rows (day -29) are still there
  };
  for (const auto& [id, ts, done] : processed) {
    sql.exec(
        "INSERT INTO processed_messages (message_id, organization_id, device_id, \"timestamp\","
        " processed_at, previous_scores) VALUES ($1, 'org', 'dev',"
        " $2::date::timestamptz + $3::float8 * interval '1 day',"
        " $2::date::timestamptz + $4::float8 * interval '1 day', '{}')",
        {id, today, fmt::format("{}", ts), fmt::format("{}", done)});
  }

  auto r = run_command(d.url(), {"maintain", "--history-retention-days", "30"});
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& p : day_partitions(sql, today, -60, -55)) {
    EXPECT_NE(r.output.find("dropped " + p + "\n"), std::string::npos) << r.output;
  }
  EXPECT_NE(r.output.find("deleted 2 rows from telemetry_history_default"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("deleted 2 rows from processed_messages"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("6 dropped, 4 rows deleted"), std::string::npos) << r.output;

  auto expected = day_partitions(sql, today, 0, 7);
  expected.push_back("telemetry_history_default");
  EXPECT_EQ(partitions(sql), expected);
  EXPECT_EQ(rows_by_partition(sql),
            (std::map<std::string, int>{{"telemetry_history_default", 2},
                                        {day_partition(sql, today, 0), 1}}));
  EXPECT_EQ(sql.scalar("SELECT string_agg(message_id, ',' ORDER BY message_id)"
                       " FROM processed_messages"),
            "at-cutoff,early-stamp,late,recent");

  auto twice = run_command(d.url(), {"maintain", "--history-retention-days", "30"});
  ASSERT_EQ(twice.code, 0) << twice.output;
  EXPECT_EQ(count_of(twice.output, "dropped "), 0u) << twice.output;
  EXPECT_EQ(count_of(twice.output, "deleted "), 0u) << twice.output;
}

// Converts an adopted telemetry_history with the storage command (ADD_FAILURE if it fails).
void convert_to_partitions(OwnDatabase& d) {
  auto r = run_command(d.url(), {"storage", "history-partitions"});
  ASSERT_EQ(r.code, 0) << r.output;
}

TEST(HistoryPartitions, TheLegacyPartitionKeepsItsMessagesUntilItIsDroppedWhole) {
  OwnDatabase d("atw_part");
  adopt_owner_tables(d);
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  insert_rows(sql, today, {{-40, 1}, {-1, 2}});
  sql.exec(
      "INSERT INTO processed_messages (message_id, organization_id, device_id, \"timestamp\","
      " processed_at, previous_scores) VALUES"
      " ('from-before', 'org', 'dev', $1::date - 40, $1::date - 40, '{}')",
      {today});
  convert_to_partitions(d);  // the legacy partition ends with day +7

  // Within the retention of its newest rows, the legacy partition stays whole, and so do the
  // processed_messages rows of its messages: a redelivery must still find them (SPEC D11).
  auto r = run_command(d.url(), {"maintain", "--history-retention-days", "30"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "dropped "), 0u) << r.output;
  EXPECT_EQ(count_of(r.output, "deleted "), 0u) << r.output;
  EXPECT_EQ(rows_by_partition(sql), (std::map<std::string, int>{{"telemetry_history_legacy", 2}}));
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM processed_messages"), "1");

  // When the whole of it is past the retention: dropped whole, its messages forgotten.
  const auto later = sql.query(
      "SELECT action, relation, row_count::text FROM telemetry_history_maintain(7, 30,"
      " $1::date + 37) WHERE action <> 'created'",
      {today});
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0][0], "deleted");
  EXPECT_EQ(later[0][1], "processed_messages");
  EXPECT_EQ(later[0][2], "1");
  EXPECT_EQ(later[1][0], "dropped");
  EXPECT_EQ(later[1][1], "telemetry_history_legacy");
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM telemetry_history"), "0");
  EXPECT_EQ(partitions(sql).front(), day_partition(sql, today, 7))
      << "the first day after the legacy partition is not past a retention of 30 days from"
         " today + 37";
}

// The rows of one test message: one asset result per (asset, metrics, score).
MessageResult message(const std::string& id, Timestamp ts,
                      std::vector<std::tuple<std::string, MetricSet, double>> assets) {
  MessageResult m{id, "dev-1", "org-1", ts, {}};
  for (auto& [asset, metrics, score] : assets) m.assets.push_back({asset, metrics, score});
  return m;
}

Timestamp micros_at(Sql& sql, const std::string& when) {
  return Timestamp{std::stoll(
      *sql.scalar("SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8::text", {when}))};
}

TEST(HistoryPartitions, RedeliveriesWriteNothingTwiceAcrossPartitions) {
  OwnDatabase d("atw_part");
  adopt_owner_tables(d);
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  insert_rows(sql, today, {{-5, 1}});
  convert_to_partitions(d);  // the legacy partition ends with day +7
  sql.exec("SELECT * FROM telemetry_history_maintain(25, 0)");
  sql.exec(
      "INSERT INTO assets (id, name) VALUES ('pump-1', 'Pump 1'),"
      " ('pump-2', 'Pump 2')");

  // One batch whose rows land in the legacy partition, day +8's and the DEFAULT one.
  const std::vector<MessageResult> batch = {
      message("m-legacy", micros_at(sql, "2020-06-01T00:00:00Z"),
              {{"pump-1", MetricSet{{"a", 1}, {"b", 2}}, 80}}),
      message("m-day8", micros_at(sql, at(sql, today, 8, 12)),
              {{"pump-1", MetricSet{{"a", 3}}, 70}, {"pump-2", MetricSet{{"a", 4}, {"c", 5}}, 60}}),
      message("m-far", micros_at(sql, at(sql, today, 40, 6)),
              {{"pump-2", MetricSet{{"a", 6}}, 50}}),
      message("m-today", micros_at(sql, at(sql, today, 0, 0)),
              {{"pump-1", MetricSet{{"a", 7}}, 90}}),
  };
  PgConnection db(d.url());
  PgTelemetrySink sink(db);
  const Timestamp received = micros_at(sql, "now");

  auto first = sink.write(batch, received);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  for (const auto& o : *first) EXPECT_FALSE(o.duplicate);
  const std::map<std::string, int> after_first = {
      {"telemetry_history_legacy", 4},  // the row from before, m-legacy's two and m-today's
      {day_partition(sql, today, 8), 3},
      {"telemetry_history_default", 1}};
  EXPECT_EQ(rows_by_partition(sql), after_first);
  const std::string scores =
      "SELECT string_agg(id || '=' || health_score, ',' ORDER BY id) FROM assets";
  EXPECT_EQ(sql.scalar(scores), "pump-1=70,pump-2=50") << "the newest message's score per asset";
  const std::string history_after_first = content(sql);

  auto expect_all_duplicates = [&](const std::vector<WriteOutcome>& outcomes, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(outcomes[i].duplicate) << batch[i].message_id;
      EXPECT_EQ(outcomes[i].previous_scores, (*first)[i].previous_scores) << batch[i].message_id;
    }
  };

  // The same messages again: nothing written, the scores they had before reported again.
  auto second = sink.write(batch, received);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  expect_all_duplicates(*second, batch.size());
  EXPECT_EQ(content(sql), history_after_first);
  EXPECT_EQ(sql.scalar(scores), "pump-1=70,pump-2=50");

  // Day +40 gets its partition: m-far's row moves out of the DEFAULT partition.
  sql.exec("SELECT * FROM telemetry_history_maintain(41, 0)");
  EXPECT_EQ(rows_by_partition(sql)[day_partition(sql, today, 40)], 1);
  EXPECT_EQ(rows_by_partition(sql).count("telemetry_history_default"), 0u);
  EXPECT_EQ(content(sql), history_after_first);

  // And again, with one new message of that day in the batch: only the new one is written.
  auto with_new = batch;
  with_new.push_back(message("m-new", micros_at(sql, at(sql, today, 40, 7)),
                             {{"pump-2", MetricSet{{"a", 8}}, 40}}));
  auto third = sink.write(with_new, received);
  ASSERT_TRUE(third.ok()) << third.status().to_string();
  expect_all_duplicates(*third, batch.size());
  EXPECT_FALSE(third->back().duplicate);
  EXPECT_EQ(third->back().previous_scores, std::vector<std::optional<double>>{50.0});
  auto after_third = after_first;
  after_third.erase("telemetry_history_default");
  after_third[day_partition(sql, today, 40)] = 2;
  EXPECT_EQ(rows_by_partition(sql), after_third);
  EXPECT_EQ(sql.scalar("SELECT count(*)::text FROM (SELECT 1 FROM telemetry_history"
                       " GROUP BY entity_id, metric_key, \"timestamp\" HAVING count(*) > 1) d"),
            "0");
  EXPECT_EQ(sql.scalar(scores), "pump-1=70,pump-2=40");
}

TEST(HistoryPartitions, ConcurrentMaintenanceBesideWritersNeverFails) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  sql.exec("INSERT INTO assets (id, tenant_id, name) VALUES ('pump-1', 'org-1', 'Pump 1')");
  std::vector<std::pair<int, double>> spread;
  for (int day = 20; day <= 40; ++day) spread.push_back({day, 12});
  insert_rows(sql, today, spread);  // in the DEFAULT partition until their days get partitions

  // Another session maintaining: the command says so and succeeds, having done nothing.
  {
    PgConnection holder(d.url());
    ASSERT_TRUE(holder.exec("test", "BEGIN").ok());
    ASSERT_TRUE(
        holder.exec("test", "SELECT pg_advisory_xact_lock($1::bigint)", {kMaintainLockKey}).ok());
    auto skipped = run_command(d.url(), {"maintain", "--partitions-ahead-days", "60"});
    EXPECT_EQ(skipped.code, 0) << skipped.output;
    EXPECT_NE(skipped.output.find("another session"), std::string::npos) << skipped.output;
    EXPECT_EQ(count_of(skipped.output, "created "), 0u) << skipped.output;
    ASSERT_TRUE(holder.exec("test", "COMMIT").ok());
  }

  // Two maintenance runs at once, beside a writer whose rows go to the days being made.
  const Timestamp base = micros_at(sql, at(sql, today, 30, 0));
  std::atomic<bool> writing{true};
  std::vector<std::string> write_errors;
  int written = 0;
  std::thread writer([&] {
    PgConnection db(d.url());
    PgTelemetrySink sink(db);
    for (int i = 0; writing.load() || i < 20; ++i) {
      // One message a day apart, over days +30..+59.
      const std::vector<MessageResult> one = {
          message(fmt::format("w-{}", i), Timestamp{base.micros + (i % 30) * 86'400'000'000LL},
                  {{"pump-1", MetricSet{{"a", double(i)}}, 50}})};
      auto r = sink.write(one, Timestamp{base.micros});
      if (r.ok()) {
        ++written;
      } else {
        write_errors.push_back(r.status().to_string());
      }
    }
  });
  CommandResult results[2];
  std::thread a([&] {
    results[0] = run_command(d.url(), {"maintain", "--partitions-ahead-days", "60"});
  });
  std::thread b([&] {
    results[1] = run_command(d.url(), {"maintain", "--partitions-ahead-days", "60"});
  });
  a.join();
  b.join();
  writing.store(false);
  writer.join();

  EXPECT_TRUE(write_errors.empty()) << write_errors.front();
  size_t created = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.code, 0) << r.output;
    created += count_of(r.output, "created ");
  }
  // Each day made once, by one run or the other (or the first by one, the rest by the other).
  EXPECT_LE(created, 53u);
  // Whatever the first two left (one may have found the other busy), a third run completes.
  auto last = run_command(d.url(), {"maintain", "--partitions-ahead-days", "60"});
  ASSERT_EQ(last.code, 0) << last.output;
  EXPECT_EQ(created + count_of(last.output, "created "), 53u) << "days +8..+60";
  auto expected = day_partitions(sql, today, 0, 60);
  expected.push_back("telemetry_history_default");
  EXPECT_EQ(partitions(sql), expected);
  EXPECT_EQ(rows_by_partition(sql).count("telemetry_history_default"), 0u);
  EXPECT_EQ(sql.scalar("SELECT count(*)::int FROM telemetry_history"),
            std::to_string(21 + written));
  EXPECT_EQ(sql.scalar("SELECT count(*)::int FROM processed_messages"), std::to_string(written));
}

// Shutdown does not wait for a maintenance that waits for the server: here, for a lock the test
// holds on telemetry_history (which the maintenance would otherwise wait 5 s for, then fail).
TEST(HistoryPartitions, StopEndsAMaintenanceInProgress) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  sql.exec("DROP TABLE " + day_partition(sql, today, 5));  // something to make
  PgConnection holder(d.url());
  ASSERT_TRUE(holder.exec("test", "BEGIN").ok());
  ASSERT_TRUE(holder.exec("test", "LOCK TABLE telemetry_history IN ACCESS EXCLUSIVE MODE").ok());

  HistoryMaintenance maintenance(d.url(), HistorySettings{7, 0});
  std::optional<Result<std::vector<HistoryAction>>> outcome;
  std::thread runner([&] { outcome.emplace(maintenance.run()); });
  bool waiting = false;
  for (auto end = std::chrono::steady_clock::now() + 20s;
       !waiting && std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(20ms)) {
    waiting = sql.scalar(
                  "SELECT count(*)::text FROM pg_stat_activity"
                  " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                  " AND query LIKE '%telemetry_history_maintain%'") == "1";
  }
  EXPECT_TRUE(waiting) << "the maintenance never waited for the lock";
  maintenance.stop();
  runner.join();
  ASSERT_TRUE(outcome.has_value());
  ASSERT_FALSE(outcome->ok());
  EXPECT_EQ(outcome->status().message(), "stopped") << "not the lock timeout, 5 s later";
  EXPECT_FALSE(maintenance.run().ok()) << "and no run after stop()";
  ASSERT_TRUE(holder.exec("test", "ROLLBACK").ok());
}

TEST(HistoryPartitions, WorkerMaintainsOnItsTimerAndStopsPromptly) {
  OwnDatabase d("atw_part");
  d.migrate_all();
  Sql& sql = d.sql();
  const std::string today = utc_today(sql);
  const std::string day3 = day_partition(sql, today, 3), day7 = day_partition(sql, today, 7);
  const auto has = [&](const std::string& partition) {
    const auto all = partitions(sql);
    return std::find(all.begin(), all.end(), partition) != all.end();
  };
  const auto wait_for = [&](const std::function<bool()>& done) {
    for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(100ms)) {
      if (done()) return true;
    }
    return done();
  };
  // The scenario's streams on the shared NATS, its plant in this test's database.
  const ServerUrls shared = server_urls();
  Scenario s(ServerUrls{shared.nats, d.url(), shared.redis, {}});
  const auto plant = s.load_example_plant();

  // MAINTAIN_INTERVAL_S=0: the worker leaves the partitions alone. It writes a message of now
  // into today's partition and one of January into the DEFAULT partition, and the same message
  // again nowhere (SPEC D11).
  sql.exec("DROP TABLE " + day3);
  auto env = s.worker_env();
  env["MAINTAIN_INTERVAL_S"] = "0";
  {
    WorkerProcess idle(env);
    ASSERT_TRUE(idle.wait_ready(20s)) << idle.log_path();
    const std::string now =
        *sql.scalar("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    s.publish_one(Scenario::message(plant, s.name("now"), now));
    s.publish_one(Scenario::message(plant, s.name("january"), "2026-01-28T14:30:00Z"));
    s.publish_one(Scenario::message(plant, s.name("now"), now));
    ASSERT_TRUE(s.wait_all_acked()) << idle.log_path();
    // 5 rows a message: Pump A's 3 mapped metrics and power_consumption, Pump B's one.
    EXPECT_EQ(rows_by_partition(sql),
              (std::map<std::string, int>{{day_partition(sql, utc_today(sql), 0), 5},
                                          {"telemetry_history_default", 5}}));
    EXPECT_FALSE(has(day3));
    EXPECT_EQ(idle.stop(SIGTERM), 0);
  }

  // Every second: at start, and again after a partition goes missing.
  env["MAINTAIN_INTERVAL_S"] = "1";
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(20s)) << worker.log_path();
  EXPECT_TRUE(wait_for([&] { return has(day3); })) << worker.log_path();
  sql.exec("DROP TABLE " + day7);
  EXPECT_TRUE(wait_for([&] { return has(day7); })) << worker.log_path();

  // A failing maintenance is logged, counted and retried; the worker stays ready.
  const auto runs = [&](const std::string& result) {
    return metric(worker.get("/metrics"),
                  "asset_worker_history_maintenance_runs_total{result=\"" + result + "\"}");
  };
  EXPECT_GE(runs("ok"), 2);
  EXPECT_EQ(runs("failed"), 0);
  sql.exec(
      "ALTER FUNCTION telemetry_history_maintain(int, int, date)"
      " RENAME TO telemetry_history_maintain_away");
  sql.exec("DROP TABLE " + day7);
  const auto log_text = [&] { return read_file(worker.log_path()); };
  EXPECT_TRUE(wait_for([&] {
    return log_text().find("history maintenance failed") != std::string::npos;
  })) << worker.log_path();
  EXPECT_TRUE(wait_for([&] { return runs("failed") >= 1; })) << worker.log_path();
  EXPECT_EQ(worker.http_status("/readyz"), 200);
  sql.exec(
      "ALTER FUNCTION telemetry_history_maintain_away(int, int, date)"
      " RENAME TO telemetry_history_maintain");
  const double ok_before = runs("ok");
  EXPECT_TRUE(wait_for([&] { return has(day7); })) << worker.log_path();
  EXPECT_TRUE(wait_for([&] { return runs("ok") > ok_before; })) << worker.log_path();
  EXPECT_NE(log_text().find("\"action\":\"created\""), std::string::npos);

  EXPECT_EQ(worker.stop(SIGTERM, 15s), 0) << worker.log_path();
}

}  // namespace
}  // namespace atw::testing
