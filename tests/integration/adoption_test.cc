// A platform's own database: the seed's tables as their owners made them, adopted by
// `migrate`, and a database that is there but not ready for the worker (SPEC D14, D15). Each test
// works in a database of its own (support/own_database.h), with the real worker and servers.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "adapters/postgres/pg_telemetry_sink.h"
#include "support/own_database.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// `asset-worker migrate` against `url`, to its end; ADD_FAILURE unless it exits 0.
void migrate_with_the_binary(const std::string& url) {
  WorkerProcess migrate({{"DATABASE_URL", url}}, {"migrate"});
  EXPECT_EQ(migrate.stop(0, seconds(60)), 0) << read_file(migrate.log_path());
}

// The servers of ATW_TEST_*, with `database` in place of ATW_TEST_DATABASE_URL.
ServerUrls on_database(const std::string& database) {
  ServerUrls urls = server_urls();
  urls.database = database;
  return urls;
}

Scenario::Plant plant_of(Scenario& s) {
  return {s.name("org"), s.name("dev"), s.name("pump-a"), s.name("pump-b"), s.name("type-pump")};
}

// What the design document's example gives (README "Exactly what is written"); `full_score` is
// 100 as the score column's type writes it.
void expect_document_example(Scenario& s, const Scenario::Plant& p,
                             const std::string& full_score = "100") {
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}), Scenario::document_example_history(p));
  EXPECT_EQ(s.score(p.pump_a), full_score);
  EXPECT_EQ(s.score(p.pump_b), full_score);
  EXPECT_EQ(s.sql().scalar("SELECT health_score_computed_by || ' ' || to_char("
                           "health_score_updated_at, 'YYYY-MM-DD HH24:MI:SS')"
                           " FROM assets WHERE id = $1",
                           {p.pump_a}),
            "asset-worker-v1 2026-01-28 14:30:00");
  const auto events = s.events();
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e["organizationId"], p.org);
    EXPECT_EQ(e["healthScore"], 100);
  }
  EXPECT_TRUE(s.dead_letters().empty());
}

// The test the issue names: a plant loaded into tables made as the design document's owners
// would make them (none of the worker's columns), `migrate` twice, then messages processed
// correctly; twice more, with a redelivery and an older message, all as on the worker's own
// tables.
TEST(Adoption, APlantInTheOwnersTablesIsProcessedAfterMigratingTwice) {
  OwnDatabase d("atw_adopt");
  d.create_owner_tables();
  Scenario s(on_database(d.url()));
  const auto p = plant_of(s);
  s.load_plant(p, /*assets_have_tenant=*/false);
  migrate_with_the_binary(d.url());
  migrate_with_the_binary(d.url());
  auto worker = s.start_worker();
  const auto message = Scenario::message(p, s.name("msg"));
  s.publish_one(message);
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  expect_document_example(s, p);

  s.publish_one(message);  // a redelivery: nothing twice
  s.publish_one(Scenario::message(p, s.name("older"), "2026-01-28T14:00:00Z",
                                  {{"temperature", 85}, {"voltage", 12}, {"current", 2}}));
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}).size(), 10u);
  EXPECT_EQ(s.score(p.pump_a), "100") << "an older message does not move the score";
  EXPECT_EQ(s.events().size(), 4u);
  EXPECT_EQ(worker->stop(SIGTERM), 0);
}

// Owners choose their column types: varchar ids, json metadata, a numeric value, timestamps
// without a time zone, a numeric score. The worker reads and writes them all.
TEST(Adoption, ColumnTypesOfTheOwnersChoosing) {
  OwnDatabase d("atw_adopt");
  d.sql().exec(
      "CREATE TABLE asset_types (id varchar(64) PRIMARY KEY, name text, telemetry_schema json);"
      "CREATE TABLE assets (id varchar(64) PRIMARY KEY, name varchar(200),"
      " asset_type_id varchar(64), health_score numeric(6,2),"
      " health_score_updated_at timestamp, health_score_computed_by varchar(40),"
      " updated_at timestamp);"
      "CREATE TABLE entity_edges (id varchar(64) PRIMARY KEY, source_entity_id varchar(64),"
      " source_entity_type varchar(20), target_entity_id varchar(64),"
      " target_entity_type varchar(20), relationship_type varchar(40),"
      " tenant_id varchar(64), metadata json, valid_from timestamp, valid_until date);"
      "CREATE TABLE telemetry_history (id bigserial PRIMARY KEY, entity_id varchar(64),"
      " entity_type varchar(20), metric_key varchar(128), value numeric, \"timestamp\" timestamp,"
      " received_at timestamp DEFAULT now(), source_device_id varchar(64), quality varchar(10))");
  Scenario s(on_database(d.url()));
  const auto p = plant_of(s);
  s.load_plant(p, /*assets_have_tenant=*/false);
  s.sql().exec("UPDATE entity_edges SET valid_from = '2026-01-01 00:00', valid_until = 'infinity'");
  migrate_with_the_binary(d.url());
  auto worker = s.start_worker();
  s.publish_one(Scenario::message(p, s.name("msg")));
  ASSERT_TRUE(s.wait_all_acked()) << worker->log_path();
  expect_document_example(s, p, "100.00");
  EXPECT_EQ(s.sql().scalar("SELECT string_agg(DISTINCT value::text, ',') FROM telemetry_history"
                           " WHERE metric_key = 'power_consumption'"),
            "30.75");
}

// SPEC D14: a worker started before `migrate` (the platform's tables there, its own not yet)
// waits with the messages kept alive, says not ready and names what is missing; once migrated,
// every message is processed and none is dead-lettered.
TEST(Adoption, AWorkerStartedBeforeMigrateWaitsThenProcessesEverything) {
  OwnDatabase d("atw_adopt");
  d.create_owner_tables();
  Scenario s(on_database(d.url()));
  const auto p = plant_of(s);
  s.load_plant(p, /*assets_have_tenant=*/false);
  auto env = s.worker_env();
  env["ACK_WAIT_S"] = "6";  // keepalives every 2 s: the wait below outlasts the AckWait
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(20))) << worker.log_path();
  for (int i = 0; i < 5; ++i) {
    s.publish_one(Scenario::message(p, s.name(fmt::format("m{}", i)),
                                    fmt::format("2026-01-28T14:3{}:00Z", i)));
  }
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (worker.http_status("/readyz") != 503 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(worker.http_status("/readyz"), 503) << worker.log_path();
  std::this_thread::sleep_for(seconds(8));  // longer than AckWait: no delivery spent
  const std::string log = read_file(worker.log_path());
  EXPECT_NE(log.find("\"errorType\":\"db_not_ready\""), std::string::npos) << log;
  // The first of the worker's own tables a batch needs, and the database does not have.
  EXPECT_NE(log.find("asset_health_states"), std::string::npos) << log;
  EXPECT_NE(log.find("does not exist"), std::string::npos) << log;
  EXPECT_NE(log.find("run `asset-worker migrate`"), std::string::npos) << log;
  EXPECT_GE(metric(worker.get("/metrics"), "asset_worker_errors_total{type=\"db_not_ready\"}"), 1);

  migrate_with_the_binary(d.url());
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker.log_path();
  EXPECT_EQ(s.events().size(), 10u);
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}).size(), 25u);
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);
  EXPECT_EQ(worker.http_status("/readyz"), 200);
  EXPECT_EQ(worker.stop(SIGTERM), 0);
}

// SPEC D14: a privilege taken away is an outage until it is granted back, never a dead letter.
TEST(Adoption, ARevokedPrivilegeIsAnOutageUntilGrantedBack) {
  OwnDatabase d("atw_adopt");
  d.migrate_all();
  const std::string role = d.make_role("worker", "worker-secret");
  d.sql().exec(fmt::format(
      "GRANT SELECT ON entity_edges, asset_types TO {0};"
      "GRANT SELECT, UPDATE (health_score, health_score_updated_at, health_score_computed_by,"
      " updated_at) ON assets TO {0};"
      "GRANT INSERT ON telemetry_history TO {0};"
      "GRANT SELECT, INSERT ON processed_messages TO {0};"
      "GRANT SELECT, INSERT, UPDATE ON asset_health_states TO {0}",
      role));
  Scenario s(on_database(d.url()));
  const auto p = plant_of(s);
  s.load_plant(p);
  auto env = s.worker_env();
  env["DATABASE_URL"] = d.url_as(role, "worker-secret");
  env["MAINTAIN_INTERVAL_S"] = "0";  // partitions are the owner role's to make
  env["ACK_WAIT_S"] = "6";
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(20))) << worker.log_path();
  s.publish_one(Scenario::message(p, s.name("m0"), "2026-01-28T14:30:00Z"));
  ASSERT_TRUE(s.wait_all_acked()) << worker.log_path();

  d.sql().exec(fmt::format("REVOKE UPDATE ON assets FROM {}", role));
  s.publish_one(Scenario::message(p, s.name("m1"), "2026-01-28T14:31:00Z"));
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (worker.http_status("/readyz") != 503 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(worker.http_status("/readyz"), 503) << worker.log_path();
  std::this_thread::sleep_for(seconds(8));
  const std::string log = read_file(worker.log_path());
  EXPECT_NE(log.find("permission denied for table assets"), std::string::npos) << log;
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);

  d.sql().exec(
      fmt::format("GRANT UPDATE (health_score, health_score_updated_at, health_score_computed_by,"
                  " updated_at) ON assets TO {}",
                  role));
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << worker.log_path();
  EXPECT_EQ(s.events().size(), 4u);
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.score(p.pump_a), "100");
  EXPECT_EQ(worker.stop(SIGTERM), 0);
}

// A database a worker of the previous version wrote: processed_messages keyed by messageId
// alone. After `migrate`, the key is the message's identity and every row still protects its
// message: a redelivery of it writes nothing twice.
TEST(Adoption, ProcessedMessagesKeepTheirProtectionUnderTheNewKey) {
  OwnDatabase d("atw_adopt");
  {
    PgConnection db(d.url());
    ASSERT_TRUE(db.run_script("test",
                              "CREATE TABLE asset_worker_migrations (name text PRIMARY KEY,"
                              " applied_at timestamptz NOT NULL DEFAULT now())")
                    .ok());
    for (const Migration& m : embedded_migrations()) {
      if (std::string(m.name) >= "007") continue;
      auto r = db.run_script("test", std::string("BEGIN;\n") + m.sql +
                                         "\n;INSERT INTO asset_worker_migrations (name) VALUES ('" +
                                         m.name + "'); COMMIT");
      ASSERT_TRUE(r.ok()) << m.name << ": " << r.status().to_string();
    }
  }
  EXPECT_EQ(d.sql().scalar("SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a"
                           " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                           " WHERE i.indrelid = 'processed_messages'::regclass AND i.indisprimary"),
            "message_id");
  d.sql().exec(
      "INSERT INTO assets (id, tenant_id, name) VALUES ('pump-1', 'org-1', 'Pump 1');"
      "INSERT INTO processed_messages (message_id, organization_id, device_id, \"timestamp\","
      " previous_scores) VALUES ('m-1', 'org-1', 'dev-1', '2026-01-28T14:30:00Z',"
      " '{\"pump-1\": 42}')");
  migrate_with_the_binary(d.url());
  EXPECT_EQ(d.sql().scalar("SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey,"
                           " a.attnum)) FROM pg_index i JOIN pg_attribute a"
                           " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                           " WHERE i.indrelid = 'processed_messages'::regclass AND i.indisprimary"),
            "organization_id,device_id,message_id");

  PgConnection db(d.url());
  PgTelemetrySink sink(db);
  const MessageResult redelivered{"m-1",
                                  "dev-1",
                                  "org-1",
                                  Timestamp::from_seconds(1769610600),
                                  {{"pump-1", MetricSet{{"a", 1}}, 80}}};
  const MessageResult same_id_other_device{"m-1",
                                           "dev-2",
                                           "org-1",
                                           Timestamp::from_seconds(1769610600),
                                           {{"pump-1", MetricSet{{"a", 2}}, 70}}};
  auto r = sink.write(std::vector<MessageResult>{redelivered, same_id_other_device},
                      Timestamp::from_seconds(1769610700));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE((*r)[0].duplicate);
  EXPECT_EQ((*r)[0].previous_scores, std::vector<std::optional<double>>{42.0});
  EXPECT_FALSE((*r)[1].duplicate);
  EXPECT_EQ(d.sql().scalar("SELECT string_agg(value::text, ',') FROM telemetry_history"), "2");
}

}  // namespace
}  // namespace atw::testing
