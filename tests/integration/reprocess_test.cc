// `asset-worker reprocess`: a range processed under one configuration, the
// configuration changed (a formula, a health rule, a link moved to another asset, a link's
// window shortened), then reprocessed, equals a fresh run of the same messages under the new
// configuration in a database of its own: row for row, score for score, (message, asset) for
// (message, asset). Also dry, stopped and resumed, beside live load, and with an older schema
// version. Real worker, real servers.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "support/own_database.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kF1 =
    R"({"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current", "unit": "watts"}]})";
// The formula doubled, and one health rule in place of the default ones.
constexpr const char* kF2 =
    R"({"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current * 2", "unit": "watts"}], "health_rules": [{"metric": "motor_temperature", "bands": [{"op": ">", "value": 65, "penalty": 25}]}]})";

constexpr int kMessages = 40;
constexpr int64_t kStart = 1769610600;  // 2026-01-28T14:30:00Z; message i one minute later each
const std::string kFrom = "2026-01-28T14:00:00Z";
const std::string kTo = "2026-01-28T16:00:00Z";
const std::string kWindowEnd = "2026-01-28T14:50:00Z";  // L2: link 1 ends after 20 messages

ServerUrls on_database(const std::string& database) {
  ServerUrls urls = server_urls();
  urls.database = database;
  return urls;
}

// A device linked to pumps A (link 1) and B (link 2, port 1), and a pump C with no link yet.
struct Plant {
  std::string org, device, a, b, c, type;
};

Plant plant_of(Scenario& s) {
  return {s.name("org"),    s.name("dev"),    s.name("pump-a"),
          s.name("pump-b"), s.name("pump-c"), s.name("type-pump")};
}

void load(Sql& sql, const Plant& p, const std::string& schema) {
  sql.exec("INSERT INTO asset_types (id, name, telemetry_schema) VALUES ($1, 'Pump', $2::jsonb)",
           {p.type, schema});
  sql.exec(
      "INSERT INTO assets (id, tenant_id, name, asset_type_id) VALUES"
      " ($1, $4, 'Pump A', $5), ($2, $4, 'Pump B', $5), ($3, $4, 'Pump C', $5)",
      {p.a, p.b, p.c, p.org, p.type});
  sql.exec(
      "INSERT INTO entity_edges (id, tenant_id, source_entity_id, source_entity_type,"
      " target_entity_id, target_entity_type, relationship_type, metadata) VALUES"
      " ($1 || '-1', $2, $3, 'Device', $4, 'Asset', 'MONITORED_BY',"
      "  '{\"metrics_mapping\": {\"device.voltage\": \"asset.power_input\","
      " \"device.current\": \"asset.power_current\", \"device.temperature\":"
      " \"asset.motor_temperature\"}}'),"
      " ($1 || '-2', $2, $3, 'Device', $5, 'Asset', 'MONITORED_BY',"
      "  '{\"port\": 1, \"metrics_mapping\": {\"device.temperature\":"
      " \"asset.motor_temperature\"}}')",
      {p.org + "-" + p.device, p.org, p.device, p.a, p.b});
}

// L1 -> L2: link 2 moved from pump B to pump C, link 1's window ended at kWindowEnd.
void change_links(Sql& sql, const Plant& p) {
  sql.exec("UPDATE entity_edges SET target_entity_id = $2 WHERE id = $1 || '-2'",
           {p.org + "-" + p.device, p.c});
  sql.exec("UPDATE entity_edges SET valid_until = $2::timestamptz WHERE id = $1 || '-1'",
           {p.org + "-" + p.device, kWindowEnd});
}

std::vector<std::string> payloads(const Plant& p, int first = 0, int count = kMessages) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i) {
    Scenario::Plant sp{p.org, p.device, p.a, p.b, p.type};
    const json metrics = {{"temperature", 55.0 + i},
                          {"port_1_temp", 60.5 + i % 13},
                          {"voltage", 12.0 + i % 5},
                          {"current", 2.5}};
    out.push_back(Scenario::message(sp, fmt::format("m{}", i),
                                    format_rfc3339(Timestamp::from_seconds(kStart + 60 * i)),
                                    metrics)
                      .dump());
  }
  return out;
}

// Everything a run leaves that the equivalence compares.
struct Outcome {
  std::vector<std::string> rows;
  std::vector<std::optional<std::string>> scores;
  std::vector<std::string> pairs;  // "messageId assetId" of each result a message wrote
};

Outcome outcome_of(Scenario& s, const Plant& p) {
  Outcome o;
  o.rows = s.history({p.a, p.b, p.c});
  for (const auto& asset : {p.a, p.b, p.c}) o.scores.push_back(s.score(asset));
  for (const auto& row :
       s.sql().query("SELECT p.message_id || ' ' || k FROM processed_messages p,"
                     " jsonb_object_keys(coalesce(p.corrected_scores, p.previous_scores)) k"
                     " WHERE p.organization_id = $1 ORDER BY 1",
                     {p.org})) {
    o.pairs.push_back(*row[0]);
  }
  return o;
}

void expect_same(const Outcome& got, const Outcome& want) {
  EXPECT_EQ(got.rows, want.rows);
  EXPECT_EQ(got.scores, want.scores);
  EXPECT_EQ(got.pairs, want.pairs);
}

// The JSON summary `reprocess --json` printed (the one document that starts a line with "{\n").
json summary_of(const std::string& out) {
  const size_t at = out.rfind("\n{\n") != std::string::npos
                        ? out.rfind("\n{\n") + 1
                        : (out.rfind("{\n", 0) == 0 ? 0 : out.size());
  const size_t end = out.find("\n}", at);
  if (at >= out.size() || end == std::string::npos) {
    ADD_FAILURE() << "no JSON summary in:\n" << out;
    return json::object();
  }
  return json::parse(out.substr(at, end + 2 - at), nullptr, false);
}

// A fresh run of `messages` under F2 and L2 in a database of its own: what reprocess must give.
Outcome fresh_run(const Plant& p, const std::vector<std::string>& messages) {
  OwnDatabase d("atw_reprocess");
  d.migrate_all();
  Scenario s(on_database(d.url()));
  load(s.sql(), p, kF2);
  change_links(s.sql(), p);
  // No Redis: it holds the first run's links of these very ids.
  auto worker = s.start_worker(/*with_redis=*/false);
  EXPECT_TRUE(worker->wait_ready(seconds(20))) << worker->log_path();
  s.publish(messages);
  EXPECT_TRUE(s.wait_all_acked(seconds(60))) << worker->log_path();
  EXPECT_EQ(worker->stop(SIGTERM), 0);
  return outcome_of(s, p);
}

// The range processed under F1 and L1 by a worker, then the configuration changed to F2, L2.
struct Processed {
  std::unique_ptr<Scenario> s;
  Plant p;
  std::vector<std::string> messages;
};
Processed processed_then_changed() {
  Processed r;
  r.s = std::make_unique<Scenario>();
  r.p = plant_of(*r.s);
  load(r.s->sql(), r.p, kF1);
  r.messages = payloads(r.p);
  auto worker = r.s->start_worker();
  EXPECT_TRUE(worker->wait_ready(seconds(20))) << worker->log_path();
  r.s->publish(r.messages);
  EXPECT_TRUE(r.s->wait_all_acked(seconds(60))) << worker->log_path();
  EXPECT_EQ(worker->stop(SIGTERM), 0);
  r.s->sql().exec("UPDATE asset_types SET telemetry_schema = $2::jsonb WHERE id = $1",
                  {r.p.type, kF2});
  change_links(r.s->sql(), r.p);
  return r;
}

std::vector<std::string> args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"reprocess", "--from", kFrom, "--to", kTo, "--json"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

size_t corrections(Scenario& s) {
  size_t n = 0;
  for (const auto& e : s.events()) n += e.contains("correction") ? 1 : 0;
  return n;
}

TEST(Reprocess, TheRangeBecomesWhatAFreshRunUnderTheNewConfigurationWrites) {
  auto r = processed_then_changed();
  Scenario& s = *r.s;
  const Outcome before = outcome_of(s, r.p);
  const size_t events_before = s.events().size();
  const Outcome want = fresh_run(r.p, r.messages);
  ASSERT_NE(before.rows, want.rows) << "the change changed nothing: a test that cannot fail";

  auto [code, out] = run_to_end(s.worker_env(), args({}));
  ASSERT_EQ(code, 0) << out;
  const json summary = summary_of(out);
  EXPECT_EQ(summary.value("messagesSelected", 0), kMessages) << out;
  EXPECT_GT(summary.value("pairsCorrected", 0), 0);
  expect_same(outcome_of(s, r.p), want);
  // One correction event per (message, asset) corrected, marked so, with the source's ids.
  const auto events = s.events();
  EXPECT_EQ(events.size(), events_before + summary.value("pairsCorrected", 0u));
  size_t removed = 0;
  for (const auto& e : events) {
    if (!e.contains("correction")) continue;
    EXPECT_EQ(e["organizationId"], r.p.org);
    EXPECT_EQ(e["correction"]["sourceMessageId"].get<std::string>().rfind('m', 0), 0u);
    removed += e["correction"]["removed"].get<bool>() ? 1 : 0;
  }
  EXPECT_GT(removed, 0u) << "pump B and pump A (after its window) lose messages";

  // Twice: nothing left to correct, nothing published.
  auto [again, again_out] = run_to_end(s.worker_env(), args({}));
  ASSERT_EQ(again, 0) << again_out;
  const json second = summary_of(again_out);
  EXPECT_EQ(second.value("pairsCorrected", -1), 0) << again_out;
  EXPECT_EQ(second.value("rowsAdded", -1) + second.value("rowsRemoved", -1) +
                second.value("rowsChanged", -1),
            0);
  EXPECT_EQ(s.events().size(), events.size());
  expect_same(outcome_of(s, r.p), want);
}

TEST(Reprocess, TheDryRunWritesNothingAndCountsWhatTheRunThenChanges) {
  auto r = processed_then_changed();
  Scenario& s = *r.s;
  const Outcome before = outcome_of(s, r.p);
  const size_t events_before = s.events().size();
  // In small batches, so that each batch must see what the ones before it would have written.
  auto [code, out] = run_to_end(s.worker_env(), args({"--dry-run", "--batch", "3"}));
  ASSERT_EQ(code, 0) << out;
  json dry = summary_of(out);
  expect_same(outcome_of(s, r.p), before);
  EXPECT_EQ(s.events().size(), events_before);
  EXPECT_FALSE(dry["largestChanges"].empty());

  auto [run, run_out] = run_to_end(s.worker_env(), args({"--batch", "3"}));
  ASSERT_EQ(run, 0) << run_out;
  json done = summary_of(run_out);
  for (const char* k : {"messagesRead", "messagesSelected", "messagesCorrected", "pairsCorrected",
                        "rowsAdded", "rowsRemoved", "rowsChanged", "scoresChanged"}) {
    EXPECT_EQ(dry[k], done[k]) << k;
  }
  EXPECT_EQ(dry["largestChanges"], done["largestChanges"]);
  // The table form says the same.
  auto [table, table_out] = run_to_end(
      s.worker_env(), {"reprocess", "--from", kFrom, "--to", kTo, "--dry-run", "--org", r.p.org});
  EXPECT_EQ(table, 0) << table_out;
  EXPECT_NE(table_out.find("messages in the range and selection"), std::string::npos);
}

TEST(Reprocess, StoppedHalfwayAndResumedDoesEveryMessageOnce) {
  auto r = processed_then_changed();
  Scenario& s = *r.s;
  const size_t events_before = s.events().size();
  const Outcome want = fresh_run(r.p, r.messages);
  // Slowly, in small batches; stopped (Ctrl-C) once some batches are committed.
  WorkerProcess slow(s.worker_env(), args({"--max-rate", "20", "--batch", "4"}));
  bool some_done = false;
  for (auto end = std::chrono::steady_clock::now() + seconds(30);
       !some_done && std::chrono::steady_clock::now() < end;) {
    std::this_thread::sleep_for(milliseconds(100));
    some_done = s.sql().scalar(
                    "SELECT count(*) FROM reprocess_runs WHERE next_sequence > 8"
                    " AND finished_at IS NULL") != "0";
  }
  ASSERT_TRUE(some_done) << read_file(slow.log_path());
  EXPECT_EQ(slow.stop(SIGINT), 130) << read_file(slow.log_path());
  const json stopped = summary_of(read_file(slow.log_path()));
  EXPECT_TRUE(stopped.value("stopped", false));
  EXPECT_LT(stopped.value("messagesRead", 0), kMessages);

  auto [code, out] = run_to_end(s.worker_env(), args({"--resume"}));
  ASSERT_EQ(code, 0) << out;
  const json done = summary_of(out);
  // Every message read once over both parts, and the result of one whole run.
  EXPECT_EQ(done.value("messagesRead", 0), kMessages) << out;
  expect_same(outcome_of(s, r.p), want);
  EXPECT_EQ(corrections(s), done.value("pairsCorrected", 0u));
  EXPECT_EQ(s.events().size(), events_before + done.value("pairsCorrected", 0u));
  auto [none, none_out] = run_to_end(s.worker_env(), args({"--resume"}));
  EXPECT_EQ(none, 2) << none_out;
  EXPECT_NE(none_out.find("no stopped run"), std::string::npos);
}

TEST(Reprocess, BesideLiveTrafficNothingIsLostDoubledOrMovedBackwards) {
  auto r = processed_then_changed();
  Scenario& s = *r.s;
  // Live: a worker processing newer messages of the same device (after the range) while the
  // range is reprocessed. The links changed while no worker ran: purged from Redis first, as the
  // runbook says.
  auto [purged, purge_out] =
      run_to_end(s.worker_env(), {"links", "invalidate", "--org", r.p.org, "--device", r.p.device});
  ASSERT_EQ(purged, 0) << purge_out;
  auto worker = s.start_worker();
  ASSERT_TRUE(worker->wait_ready(seconds(20))) << worker->log_path();
  WorkerProcess reprocess(s.worker_env(), args({"--max-rate", "10", "--batch", "5"}));
  std::vector<std::string> newer;
  for (int i = 0; i < 60; ++i) {
    Scenario::Plant sp{r.p.org, r.p.device, r.p.a, r.p.b, r.p.type};
    newer.push_back(Scenario::message(sp, fmt::format("live{}", i),
                                      format_rfc3339(Timestamp::from_seconds(kStart + 7200 + i)),
                                      {{"temperature", 90.0}, {"voltage", 12.0}, {"current", 2.5}})
                        .dump());
  }
  for (size_t i = 0; i < newer.size(); i += 10) {  // within the four seconds the run takes
    s.publish(std::vector<std::string>(newer.begin() + i, newer.begin() + i + 10));
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_FALSE(reprocess.exited()) << "the run ended before the live load did";
  std::optional<int> code;
  for (auto end = std::chrono::steady_clock::now() + seconds(60);
       !code && std::chrono::steady_clock::now() < end;) {
    code = reprocess.exited();
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(code.value_or(-1), 0) << read_file(reprocess.log_path());
  ASSERT_TRUE(s.wait_all_acked(seconds(60)));
  EXPECT_EQ(worker->stop(SIGTERM), 0);
  // The live messages: each row once (pump C gets them by link 2; link 1 has ended).
  EXPECT_EQ(s.sql().scalar("SELECT count(*) FROM telemetry_history WHERE entity_id = $1"
                           " AND \"timestamp\" >= $2::timestamptz",
                           {r.p.c, format_rfc3339(Timestamp::from_seconds(kStart + 7200))}),
            "60");
  EXPECT_EQ(s.sql().scalar("SELECT count(*) FROM (SELECT 1 FROM telemetry_history"
                           " WHERE entity_id = ANY($1::text[])"
                           " GROUP BY entity_id, metric_key, \"timestamp\" HAVING count(*) > 1) d",
                           {"{" + r.p.a + "," + r.p.b + "," + r.p.c + "}"}),
            "0");
  // Pump C's score is its newest measurement's (a live one), never an older one of the range.
  EXPECT_EQ(s.sql().scalar("SELECT to_char(health_score_updated_at AT TIME ZONE 'UTC',"
                           " 'YYYY-MM-DD HH24:MI:SS') FROM assets WHERE id = $1",
                           {r.p.c}),
            "2026-01-28 16:30:59");
  EXPECT_EQ(s.score(r.p.c), "75");  // F2: motor_temperature > 65 takes 25
  // The range is as a fresh run of it under F2 and L2 writes it.
  const Outcome want = fresh_run(r.p, r.messages);
  Outcome got = outcome_of(s, r.p);
  std::vector<std::string> range_rows;
  for (const auto& row : got.rows) {
    if (row.find("2026-01-28T16:30") == std::string::npos) {
      range_rows.push_back(row);
    }
  }
  EXPECT_EQ(range_rows, want.rows);
  EXPECT_TRUE(s.dead_letters().empty());
}

TEST(Reprocess, AnEarlierSchemaVersionRollsTheChangeBack) {
  auto r = processed_then_changed();
  Scenario& s = *r.s;
  auto [listed, list_out] =
      run_to_end(s.worker_env(), {"formulas", "history", "--asset-type", r.p.type});
  ASSERT_EQ(listed, 0) << list_out;
  EXPECT_NE(list_out.find("power_input * power_current * 2"), std::string::npos) << list_out;
  const auto versions = s.sql().query(
      "SELECT version FROM asset_type_schema_versions WHERE asset_type_id = $1 ORDER BY version",
      {r.p.type});
  ASSERT_EQ(versions.size(), 2u);
  // Links back as they were, the type's schema left at F2: version 1 replays F1.
  s.sql().exec(
      "UPDATE entity_edges SET target_entity_id = $2, valid_until = NULL"
      " WHERE id = $1 || '-2'",
      {r.p.org + "-" + r.p.device, r.p.b});
  s.sql().exec("UPDATE entity_edges SET valid_until = NULL WHERE id = $1 || '-1'",
               {r.p.org + "-" + r.p.device});
  const Outcome before = outcome_of(s, r.p);
  auto [code, out] = run_to_end(
      s.worker_env(), args({"--asset-type", r.p.type, "--schema-version", *versions[0][0]}));
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(summary_of(out).value("pairsCorrected", -1), 0) << "F1 and L1 are what was written";
  expect_same(outcome_of(s, r.p), before);
  auto [bad, bad_out] =
      run_to_end(s.worker_env(), args({"--asset-type", r.p.type, "--schema-version", "9"}));
  EXPECT_EQ(bad, 2) << bad_out;
  EXPECT_NE(bad_out.find("has no schema version 9"), std::string::npos);
}

TEST(Reprocess, ReachingFurtherThanTheStreamKeepsSaysHowFarItCanGo) {
  auto r = processed_then_changed();
  Scenario& s = *r.s;
  // The oldest half of the input stream gone, as a retention removes it.
  ASSERT_TRUE(s.nats().api("$JS.API.STREAM.PURGE." + s.input_stream(), R"({"seq": 21})").ok());
  auto [code, out] = run_to_end(s.worker_env(), args({}));
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("reprocess can reach back to"), std::string::npos) << out;
  EXPECT_NE(out.find("--from 2026-"), std::string::npos) << out;
}

}  // namespace
}  // namespace atw::testing
