// PgTelemetrySink against the real PostgreSQL (SPEC D11, D12): what one batch's transaction
// leaves in processed_messages, and a race with another writer of the same message, which the
// primary key settles; and PgConnection::run_script, which carries the transaction's two
// requests. Each test uses assets and message ids of its own.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>

#include "adapters/postgres/pg_telemetry_sink.h"
#include "support/servers.h"

namespace atw::testing {
namespace {

using namespace std::chrono_literals;

std::string random_suffix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

struct Fixture {
  Fixture() : sql(server_urls().database), id(random_suffix()) {
    sql.exec(
        "INSERT INTO assets (id, tenant_id, name) VALUES ($1, 'org-sink', 'Pump 1'),"
        " ($2, 'org-sink', 'Pump 2')",
        {asset(1), asset(2)});
  }
  std::string asset(int n) const { return fmt::format("sink-{}-asset-{}", id, n); }
  std::string message_id(int n) const { return fmt::format("sink-{}-msg-{}", id, n); }
  // Message n at second n, with one metric per asset and a score of 10 * n + asset number.
  MessageResult message(int n) const {
    MessageResult m{
        message_id(n), "dev-1", "org-sink", Timestamp{1'700'000'000'000'000 + n * 1'000'000}, {}};
    for (int a = 1; a <= 2; ++a) {
      m.assets.push_back({asset(a), MetricSet{{"power", 1.5 * n}}, 10.0 * n + a});
    }
    return m;
  }
  // History rows of message n (its timestamp, this fixture's assets).
  std::string history_rows(int n) {
    return *sql.scalar(
        "SELECT count(*)::text FROM telemetry_history WHERE entity_id IN ($2, $3)"
        " AND \"timestamp\" = timestamptz 'epoch' + $1::int8 * interval '1 microsecond'",
        {std::to_string(message(n).timestamp.micros), asset(1), asset(2)});
  }

  Sql sql;
  std::string id;
};

TEST(PgSink, ProcessedRowRecordsTheMessageThePreviousScoresAndTheWorker) {
  Fixture f;
  PgConnection db(server_urls().database);
  PgTelemetrySink sink(db, "replica-7");
  const Timestamp received{1'800'000'000'000'000};
  auto written = sink.write(std::vector<MessageResult>{f.message(1), f.message(2)}, received);
  ASSERT_TRUE(written.ok()) << written.status().to_string();

  const auto rows = f.sql.query(
      "SELECT message_id, organization_id, device_id,"
      " (extract(epoch FROM \"timestamp\") * 1000000)::int8::text,"
      " (extract(epoch FROM processed_at) * 1000000)::int8::text,"
      " jsonb_typeof(previous_scores), (previous_scores ->> $2), (previous_scores ->> $3),"
      " processed_by FROM processed_messages WHERE message_id LIKE $1 ORDER BY message_id",
      {"sink-" + f.id + "-%", f.asset(1), f.asset(2)});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], f.message_id(1));
  EXPECT_EQ(rows[0][1], "org-sink");
  EXPECT_EQ(rows[0][2], "dev-1");
  EXPECT_EQ(rows[0][3], std::to_string(f.message(1).timestamp.micros));
  EXPECT_EQ(rows[0][4], std::to_string(received.micros));
  EXPECT_EQ(rows[0][5], "object");
  EXPECT_EQ(rows[0][6], std::nullopt) << "no score before the first message";
  EXPECT_EQ(rows[0][7], std::nullopt);
  EXPECT_EQ(rows[0][8], "replica-7");
  EXPECT_EQ(rows[1][6], "11") << "message 2 saw message 1's scores";
  EXPECT_EQ(rows[1][7], "12");
  EXPECT_EQ(f.sql.scalar("SELECT string_agg(health_score::text, ',' ORDER BY id) FROM assets"
                         " WHERE id IN ($1, $2)",
                         {f.asset(1), f.asset(2)}),
            "21,22");

  // Without a worker id, processed_by is NULL.
  PgTelemetrySink anonymous(db);
  ASSERT_TRUE(anonymous.write(std::vector<MessageResult>{f.message(3)}, received).ok());
  EXPECT_EQ(f.sql.scalar("SELECT (processed_by IS NULL)::text FROM processed_messages"
                         " WHERE message_id = $1",
                         {f.message_id(3)}),
            "true");
}

// PgConnection::run_script, which the sink's two requests use: several statements and a COPY in
// one round trip, the last rows returned, and nothing after a failed statement.
TEST(PgConnection, RunScriptFeedsItsCopyReturnsTheLastRowsAndStopsAtAFailure) {
  PgConnection db(server_urls().database);
  auto rows = db.run_script("t",
                            "CREATE TEMP TABLE script_t (x int); ; COPY script_t FROM STDIN;"
                            " SELECT count(*), sum(x) FROM script_t",
                            "1\n2\n3\n");
  ASSERT_TRUE(rows.ok()) << rows.status().to_string();
  ASSERT_NE(rows->get(), nullptr);
  EXPECT_EQ(std::string(PQgetvalue(rows->get(), 0, 0)), "3");
  EXPECT_EQ(std::string(PQgetvalue(rows->get(), 0, 1)), "6");

  // Without BEGIN the script is one implicit transaction: the failure undoes the insert before
  // it, and the one after it does not run.
  auto failed = db.run_script(
      "t", "INSERT INTO script_t VALUES (4); SELECT 1 / 0; INSERT INTO script_t VALUES (5)");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(db.last_sqlstate(), "22012");
  auto after = db.run_script("t", "SELECT count(*) FROM script_t");
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(std::string(PQgetvalue(after->get(), 0, 0)), "3");

  // No rows: an empty result.
  auto none = db.run_script("t", "SET application_name = 'script-test'");
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_EQ(none->get(), nullptr);

  // Every statement's rows, in order, a SELECT of none included.
  auto all = db.run_script_results(
      "t", "SELECT 1; SET application_name = 'script-test'; SELECT 2 WHERE false; SELECT 3, 4");
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(std::string(PQgetvalue((*all)[0].get(), 0, 0)), "1");
  EXPECT_EQ(PQntuples((*all)[1].get()), 0);
  EXPECT_EQ(std::string(PQgetvalue((*all)[2].get(), 0, 1)), "4");
}

// The locks and the score updates name the assets inside SQL text (PgConnection::run_script
// takes no parameters): ids with quotes, backslashes, commas and braces are written as they are.
TEST(PgSink, AssetIdsThatLookLikeSqlAreWrittenAsTheyAre) {
  Fixture f;
  const std::vector<std::string> ids = {"sink-" + f.id + "-it's \"odd\"",
                                        "sink-" + f.id + "-\\{a,b}'); --"};
  f.sql.exec(
      "INSERT INTO assets (id, tenant_id, name) VALUES ($1, 'org-sink', 'A'), ($2, 'org-sink', "
      "'B')",
      {ids[0], ids[1]});
  MessageResult m = f.message(1);
  m.assets[0].asset_id = ids[0];
  m.assets[1].asset_id = ids[1];
  PgConnection db(server_urls().database);
  PgTelemetrySink sink(db);
  auto written = sink.write(std::vector<MessageResult>{m}, Timestamp{1'800'000'000'000'000});
  ASSERT_TRUE(written.ok()) << written.status().to_string();
  EXPECT_EQ(f.sql.scalar("SELECT string_agg(health_score::text, ',' ORDER BY name) FROM assets"
                         " WHERE id IN ($1, $2)",
                         {ids[0], ids[1]}),
            "11,12");
  EXPECT_EQ(f.sql.scalar("SELECT count(*)::text FROM telemetry_history WHERE entity_id IN ($1, $2)",
                         {ids[0], ids[1]}),
            "2");
}

// Another transaction has written message 2 and not committed yet: the batch waits for it,
// then writes messages 1 and 3 only, and reports message 2 with the scores that writer saw.
TEST(PgSink, RaceWithAnotherWriterOfTheSameMessageWritesItOnce) {
  Fixture f;
  PgConnection other(server_urls().database);
  ASSERT_TRUE(other.exec("t", "BEGIN").ok());
  const std::string recorded = fmt::format(R"({{"{}": 5, "{}": null}})", f.asset(1), f.asset(2));
  auto held = other.exec("t",
                         "INSERT INTO processed_messages (message_id, organization_id, device_id,"
                         " \"timestamp\", previous_scores) VALUES ($1, 'org-sink', 'dev-1', now(),"
                         " $2::jsonb)",
                         {f.message_id(2), recorded});
  ASSERT_TRUE(held.ok()) << held.status().to_string();

  PgConnection db(server_urls().database);
  PgTelemetrySink sink(db, "replica-1");
  const std::vector<MessageResult> batch = {f.message(1), f.message(2), f.message(3)};
  auto pending = std::async(std::launch::async,
                            [&] { return sink.write(batch, Timestamp{1'800'000'000'000'000}); });
  EXPECT_EQ(pending.wait_for(500ms), std::future_status::timeout)
      << "the batch must wait for the other writer of message 2";
  ASSERT_TRUE(other.exec("t", "COMMIT").ok());
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  auto outcome = pending.get();
  ASSERT_TRUE(outcome.ok()) << outcome.status().to_string();

  ASSERT_EQ(outcome->size(), 3u);
  EXPECT_FALSE((*outcome)[0].duplicate);
  EXPECT_TRUE((*outcome)[1].duplicate);
  EXPECT_FALSE((*outcome)[2].duplicate);
  EXPECT_EQ((*outcome)[1].previous_scores, (std::vector<std::optional<double>>{5.0, std::nullopt}))
      << "a message written before reports the scores recorded then";
  EXPECT_EQ((*outcome)[2].previous_scores, (std::vector<std::optional<double>>{11.0, 12.0}))
      << "message 3 follows message 1, the last one this batch wrote";
  EXPECT_EQ(f.history_rows(1), "2");
  EXPECT_EQ(f.history_rows(2), "0") << "the other writer wrote no history here";
  EXPECT_EQ(f.history_rows(3), "2");
  EXPECT_EQ(f.sql.scalar("SELECT string_agg(processed_by, ',' ORDER BY message_id)"
                         " FROM processed_messages WHERE message_id LIKE $1",
                         {"sink-" + f.id + "-%"}),
            "replica-1,replica-1")
      << "message 2's row is the other writer's (processed_by NULL)";
}

}  // namespace
}  // namespace atw::testing
