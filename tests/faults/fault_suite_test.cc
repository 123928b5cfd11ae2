// The fault suite: the real worker binary against private nats-server,
// PostgreSQL and Redis that the suite stops, kills and restarts. Each scenario publishes a known
// set of messages, injects its fault, waits until every message is accounted for, and checks
// that each one is fully processed or in the DLQ with a reason, and nothing else
// (faults/message_ledger.h). At the end the suite prints one table and writes it to
// fault-suite.md in the build folder.
//
// Recovery time is measured from the end of the fault (the server back, the worker restarted or
// resumed, the stream restored, the last poison message published) until every message is
// accounted for. It is reported, never asserted: this is a shared 2-core machine.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <thread>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/stream_reader.h"
#include "domain/event.h"
#include "domain/timestamp.h"
#include "faults/message_ledger.h"
#include "support/private_servers.h"

#ifndef ATW_FAULT_REPORT
#error "ATW_FAULT_REPORT must name the file the table is written to"
#endif

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kBaseTime = 1735689600;  // 2025-01-01T00:00:00Z: every timestamp is past

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string iso(int64_t seconds_since_epoch) {
  return format_rfc3339(Timestamp{seconds_since_epoch * 1'000'000});
}

// ---------------------------------------------------------------------------------------------
// The suite's shared state: the private servers and the table.

struct TableRow {
  std::string scenario;
  Tally tally;
  std::optional<double> recovery_s;
  double run_s = 0;
  std::string note;
};

class FaultEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    servers_ = std::make_unique<PrivateServers>();
    ASSERT_TRUE(servers_->ok()) << servers_->error();
    fmt::print("private servers under {}: {} {} {}\n", servers_->dir(), servers_->urls().nats,
               servers_->urls().database, servers_->urls().redis);
  }

  void TearDown() override {
    print_table();
    const auto* unit = ::testing::UnitTest::GetInstance();
    if (servers_ && unit->failed_test_count() > 0) {
      servers_->keep_files();
      fmt::print("server logs and stores kept in {}\n", servers_->dir());
    }
    servers_.reset();
  }

  bool ready() const { return servers_ && servers_->ok(); }
  PrivateServers& servers() { return *servers_; }
  void record(TableRow row) { rows_.push_back(std::move(row)); }
  void set_last_run_time(double s) {
    if (!rows_.empty()) rows_.back().run_s = s;
  }

 private:
  void print_table() {
    std::string out =
        "| scenario | sent | processed | in DLQ | state changes | lost | duplicated | recovery s "
        "|\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    double total = 0;
    for (const auto& r : rows_) {
      total += r.run_s;
      out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", r.scenario, r.tally.sent,
                         r.tally.processed, r.tally.dead_lettered, r.tally.state_changes,
                         r.tally.lost, r.tally.duplicated,
                         r.recovery_s ? fmt::format("{:.1f}", *r.recovery_s) : "-");
    }
    std::string notes;
    for (const auto& r : rows_) {
      notes += fmt::format("- {}: {:.1f} s{}{}\n", r.scenario, r.run_s, r.note.empty() ? "" : "; ",
                           r.note);
    }
    const std::string report = fmt::format(
        "# Fault suite\n\n{}\nRun time per scenario (total {:.0f} s):\n\n{}", out, total, notes);
    fmt::print("\n{}\n", report);
    std::ofstream(ATW_FAULT_REPORT) << report;
  }

  std::unique_ptr<PrivateServers> servers_;
  std::vector<TableRow> rows_;
};

FaultEnvironment* g_env = nullptr;  // owned by gtest; set once in main()

// ---------------------------------------------------------------------------------------------
// What the servers say about a scenario's progress.

struct Progress {
  bool ok = false;  // every query answered
  uint64_t last_seq = 0;
  uint64_t delivered_seq = 0;
  uint64_t ack_floor = 0;
  uint64_t ack_pending = 0;
  uint64_t pending = 0;
  uint64_t delivered_consumer_seq = 0;  // one per delivery, redeliveries included
  uint64_t events = 0;
  uint64_t dead_letters = 0;
  bool all_acked() const { return ok && ack_floor >= last_seq && ack_pending == 0 && pending == 0; }
  // Deliveries beyond the first of each message since the consumer was created (its streams
  // start at sequence 1 and the consumer takes every subject). num_redelivered would not do: it
  // counts only the redelivered messages not yet acked.
  uint64_t redeliveries() const {
    return delivered_consumer_seq > delivered_seq ? delivered_consumer_seq - delivered_seq : 0;
  }
};

// Samples progress and checks, at every sample, that nothing is acked before its events are
// stored: the consumer is read before the output stream, so a correct worker always has
// `events_per_message` events stored for each message acked (when every message expects them).
class Observer {
 public:
  Observer(Scenario& s, const MessageLedger& ledger) : s_(s), ledger_(ledger) {}

  Progress sample() {
    Progress p;
    const json info = s_.consumer_info();
    auto input = stream_state(s_.nats(), s_.input_stream());
    auto output = stream_state(s_.nats(), s_.output_stream());
    auto dlq = stream_state(s_.nats(), s_.dlq_stream());
    if (!info.contains("ack_floor") || !input.ok() || !output.ok() || !dlq.ok()) return p;
    p.ok = true;
    p.last_seq = input->last_seq;
    p.delivered_seq = info.value("delivered", json::object()).value("stream_seq", uint64_t{0});
    p.ack_floor = info.value("ack_floor", json::object()).value("stream_seq", uint64_t{0});
    p.ack_pending = info.value("num_ack_pending", uint64_t{0});
    p.pending = info.value("num_pending", uint64_t{0});
    p.delivered_consumer_seq =
        info.value("delivered", json::object()).value("consumer_seq", uint64_t{0});
    p.events = output->messages;
    p.dead_letters = dlq->messages;
    const uint64_t per = ledger_.events_per_message();
    if (per > 0 && ledger_.expected_dead_letters() == 0 && p.delivered_seq >= p.ack_pending) {
      const uint64_t acked = p.delivered_seq - p.ack_pending;
      if (acked * per > p.events && early_acks_++ == 0) {
        first_early_ack_ =
            fmt::format("{} messages acked with {} events stored (delivered to seq {}, {} unacked)",
                        acked, p.events, p.delivered_seq, p.ack_pending);
      }
    }
    last_ = p;
    return p;
  }

  bool wait_for(const std::function<bool(const Progress&)>& done, milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (SteadyClock::now() < deadline) {
      if (done(sample())) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  // Everything acked and every event and dead letter stored; the time it was first seen.
  std::optional<SteadyClock::time_point> wait_accounted(milliseconds timeout) {
    const uint64_t events = ledger_.expected_events();
    const uint64_t dead = ledger_.expected_dead_letters();
    if (wait_for(
            [&](const Progress& p) {
              return p.all_acked() && p.events >= events && p.dead_letters >= dead;
            },
            timeout)) {
      return SteadyClock::now();
    }
    return std::nullopt;
  }

  uint64_t early_acks() const { return early_acks_; }
  const std::string& first_early_ack() const { return first_early_ack_; }
  const Progress& last() const { return last_; }

 private:
  Scenario& s_;
  const MessageLedger& ledger_;
  uint64_t early_acks_ = 0;
  std::string first_early_ack_;
  Progress last_;
};

// ---------------------------------------------------------------------------------------------
// Publishing while faults happen: its own connection and thread, a steady rate, and retries of
// what fails (each message carries a Nats-Msg-Id, so a retry of a stored message is dropped).

class Flow {
 public:
  Flow(const Scenario& s, MessageLedger& ledger, std::vector<size_t> which, size_t per_tick,
       milliseconds tick)
      : subject_(s.input_subject()), per_tick_(per_tick), tick_(tick) {
    for (size_t i : which) {
      auto& m = ledger.at(i);
      ++m.copies;
      messages_.push_back({subject_, fmt::format("in-{}-{}", m.label, m.copies), m.payload});
    }
    NatsSettings settings;
    settings.servers = {s.urls().nats};
    auto nc = NatsConnection::connect(settings, log_, seconds(10));
    if (!nc.ok()) {
      ADD_FAILURE() << "flow: cannot connect: " << nc.status().to_string();
      return;
    }
    nc_ = std::move(nc).value();
    auto pub = JetStreamPublisher::create(*nc_, seconds(3));
    if (!pub.ok()) {
      ADD_FAILURE() << "flow: " << pub.status().to_string();
      return;
    }
    publisher_ = std::move(pub).value();
    thread_ = std::thread([this] { run(); });
  }
  ~Flow() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Waits until every message is stored in the input stream.
  bool wait_done(milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!done_ && SteadyClock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
    return done_;
  }
  size_t published() const { return published_; }

 private:
  void run() {
    auto next = SteadyClock::now();
    size_t from = 0;
    while (!stop_ && from < messages_.size()) {
      std::this_thread::sleep_until(next);
      next += tick_;
      const size_t to = std::min(messages_.size(), from + per_tick_);
      std::vector<OutboundMessage> chunk(messages_.begin() + static_cast<ptrdiff_t>(from),
                                         messages_.begin() + static_cast<ptrdiff_t>(to));
      while (!stop_) {
        const auto statuses = publisher_->publish(chunk);
        std::vector<OutboundMessage> failed;
        for (size_t k = 0; k < chunk.size(); ++k) {
          if (k >= statuses.size() || !statuses[k].ok()) failed.push_back(chunk[k]);
        }
        if (failed.empty()) break;
        chunk = std::move(failed);
        std::this_thread::sleep_for(milliseconds(200));
        next = SteadyClock::now();
      }
      from = to;
      published_ = from;
    }
    done_ = from >= messages_.size();
  }

  std::string subject_;
  size_t per_tick_;
  milliseconds tick_;
  std::vector<OutboundMessage> messages_;
  Logger log_{LogLevel::kError};
  std::unique_ptr<NatsConnection> nc_;
  std::unique_ptr<JetStreamPublisher> publisher_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<size_t> published_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Messages.

using Plant = Scenario::Plant;

std::vector<Plant> load_plants(Scenario& s, int n) {
  std::vector<Plant> plants;
  for (int i = 0; i < n; ++i) {
    plants.push_back(s.load_example_plant(fmt::format("o{}", i), fmt::format("dev{}", i)));
  }
  return plants;
}

// The document's example message with a port-1 temperature and vibration, so that Pump A gets
// 4 rows (3 mapped, 1 derived) and Pump B 3 (1 mapped, 2 from its port): 7 rows and 2 events.
// Values vary with `i` so that rows and scores differ from message to message.
SentMessage telemetry(Scenario& s, const Plant& p, int i, int64_t ts) {
  const double temperature = 60 + i % 30;
  const double voltage = 11 + (i % 10) * 0.25;
  const double current = 1.5 + (i % 4) * 0.5;
  const double port_temperature = 30 + i % 5;
  const double vibration = (i % 12) * 0.5;
  SentMessage m;
  m.message_id = s.name(fmt::format("m{}", i));
  m.label = m.message_id;
  m.organization_id = p.org;
  m.device_id = p.device;
  m.timestamp_s = ts;
  m.payload = Scenario::message(p, m.message_id, iso(ts),
                                {{"temperature", temperature},
                                 {"voltage", voltage},
                                 {"current", current},
                                 {"pressure", 101.3},
                                 {"port_1_temperature", port_temperature},
                                 {"port_1_vibration", vibration}})
                  .dump();
  ExpectedAsset a;
  a.asset_id = p.pump_a;
  a.metrics = {{"power_input", voltage},
               {"power_current", current},
               {"motor_temperature", temperature},
               {"power_consumption", voltage * current}};
  ExpectedAsset b;
  b.asset_id = p.pump_b;
  b.metrics = {{"motor_temperature", temperature},
               {"temperature", port_temperature},
               {"vibration", vibration}};
  a.health_score = seed_health_score(a.metrics);
  b.health_score = seed_health_score(b.metrics);
  m.assets = {a, b};
  return m;
}

// `count` messages spread over the plants, numbered from `first`, one second apart.
std::vector<size_t> add_telemetry(Scenario& s, MessageLedger& ledger,
                                  const std::vector<Plant>& plants, int first, int count) {
  std::vector<size_t> added;
  for (int i = first; i < first + count; ++i) {
    added.push_back(
        ledger.add(telemetry(s, plants[static_cast<size_t>(i) % plants.size()], i, kBaseTime + i)));
  }
  return added;
}

// The opening most scenarios share: a scenario of its own with four plants, a backlog of
// `messages` messages of telemetry for them already in the input stream, and an observer from
// then on. A test takes its parts by name: `auto& [s, plants, ledger, observer] = backlog;`.
struct PublishedBacklog {
  PublishedBacklog(const ServerUrls& urls, int messages)
      : s(urls), plants(load_plants(s, 4)), observer(published(messages)) {}
  Scenario s;
  std::vector<Plant> plants;
  MessageLedger ledger;
  Observer observer;

 private:
  Observer published(int messages) {
    add_telemetry(s, ledger, plants, 0, messages);
    ledger.publish_all(s);
    return Observer(s, ledger);
  }
};

SentMessage poison(std::string label, std::string payload, std::string reason) {
  SentMessage m;
  m.label = std::move(label);
  m.expect = SentMessage::Expect::kDeadLetter;
  m.payload = std::move(payload);
  m.reason = std::move(reason);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Helpers around the worker and the servers.

std::string last_log_message(const WorkerProcess& w) {
  std::istringstream in(read_file(w.log_path()));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  const json j = json::parse(last, nullptr, false);
  return j.is_object() ? j.value("msg", last) : last;
}

// Rewrites a stream's configuration through the JetStream API.
void update_stream(Scenario& s, const std::string& stream, const std::function<void(json&)>& edit) {
  auto info = s.nats().api("$JS.API.STREAM.INFO." + stream, "");
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  json config = json::parse(*info)["config"];
  edit(config);
  auto r = s.nats().api("$JS.API.STREAM.UPDATE." + stream, config.dump());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_FALSE(json::parse(*r).contains("error")) << *r;
}

// Keys of the plants' links in Redis (SPEC D6).
int redis_link_keys(const ServerUrls& urls, const std::vector<Plant>& plants) {
  const auto at = urls.redis.rfind(':');
  const int port = std::stoi(urls.redis.substr(at + 1));
  timeval tv{1, 0};
  redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  int found = 0;
  if (ctx != nullptr && ctx->err == 0) {
    for (const auto& p : plants) {
      const std::string key = "device_asset_links:" + p.org + ":" + p.device;
      auto* reply = static_cast<redisReply*>(redisCommand(ctx, "EXISTS %s", key.c_str()));
      if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) ++found;
      if (reply) freeReplyObject(reply);
    }
  }
  if (ctx) redisFree(ctx);
  return found;
}

// ---------------------------------------------------------------------------------------------
// The fixture: every scenario runs on the private servers, in a Scenario of its own.

class FaultSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(g_env != nullptr && g_env->ready()) << "the private servers did not start";
    ASSERT_TRUE(servers().ensure_running());
    started_ = SteadyClock::now();
  }

  void TearDown() override {
    if (table_row_) {
      g_env->set_last_run_time(seconds_between(started_, SteadyClock::now()));
    } else if (!recorded_ && g_env != nullptr) {
      const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
      g_env->record({info->name(), Tally{}, std::nullopt,
                     seconds_between(started_, SteadyClock::now()), "ABORTED: see its failures"});
    }
  }

  PrivateServers& servers() { return g_env->servers(); }

  std::map<std::string, std::string> env(Scenario& s,
                                         std::map<std::string, std::string> extra = {}) {
    auto e = s.worker_env();
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }

  std::unique_ptr<WorkerProcess> start_worker(const std::map<std::string, std::string>& env) {
    auto w = std::make_unique<WorkerProcess>(env);
    EXPECT_TRUE(w->wait_ready(seconds(30))) << "worker not ready; its log: " << w->log_path();
    return w;
  }

  // Waits until every message is accounted for, tallies, records the row and asserts the
  // rule: nothing lost, nothing doubled, nothing but what each message expects.
  Tally finish(const std::string& name, Scenario& s, const MessageLedger& ledger,
               Observer& observer, SteadyClock::time_point fault_end, std::string note = {},
               milliseconds timeout = seconds(60)) {
    const auto done = observer.wait_accounted(timeout);
    const Progress& p = observer.last();
    EXPECT_TRUE(done) << "not every message accounted for within " << timeout.count()
                      << " ms: input last seq " << p.last_seq << ", ack floor " << p.ack_floor
                      << ", unacked " << p.ack_pending << ", undelivered " << p.pending
                      << ", events " << p.events << " of " << ledger.expected_events()
                      << ", dead letters " << p.dead_letters << " of "
                      << ledger.expected_dead_letters();
    Tally t = account(s, ledger);
    std::string problems;
    for (size_t i = 0; i < t.problems.size() && i < 30; ++i) problems += t.problems[i] + "\n";
    if (t.problems.size() > 30) problems += fmt::format("... {} in all\n", t.problems.size());
    EXPECT_EQ(t.lost, 0u) << problems;
    EXPECT_EQ(t.duplicated, 0u) << problems;
    EXPECT_TRUE(t.problems.empty()) << problems;
    EXPECT_EQ(t.sent, ledger.sent());
    EXPECT_EQ(observer.early_acks(), 0u)
        << "acked before its events were stored: " << observer.first_early_ack();
    const std::optional<double> recovery =
        done ? std::optional<double>(seconds_between(fault_end, *done)) : std::nullopt;
    if (p.redeliveries() > 0) {
      note += fmt::format("{}{} redeliveries", note.empty() ? "" : "; ", p.redeliveries());
    }
    g_env->record({name, t, recovery, seconds_between(started_, SteadyClock::now()), note});
    recorded_ = true;
    table_row_ = true;
    return t;
  }

  // A worker that must still be alive ends cleanly on SIGTERM.
  void stop_cleanly(std::unique_ptr<WorkerProcess>& w) {
    if (!w) return;
    const auto exited = w->exited();
    EXPECT_FALSE(exited) << "the worker ended by itself with " << exited.value_or(0)
                         << "; its log: " << w->log_path();
    if (!exited) {
      EXPECT_EQ(w->stop(SIGTERM, seconds(30)), 0) << "its log: " << w->log_path();
    }
    w.reset();
  }

  SteadyClock::time_point started_;
  bool recorded_ = false;
  bool table_row_ = false;
};

// ---------------------------------------------------------------------------------------------
// Scenarios.

// The oracle first: a test that cannot fail is a defect. A clean run tallies clean; then rows,
// events, processed_messages rows, dead letters and scores are tampered with behind the
// worker's back, and the tally must see each.
TEST_F(FaultSuite, TheTallySeesLossAndDuplicates) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 1);
  MessageLedger ledger;
  const auto all = add_telemetry(s, ledger, plants, 0, 20);
  ledger.publish_all(s);
  Observer observer(s, ledger);
  auto worker = start_worker(env(s));
  ASSERT_TRUE(observer.wait_accounted(seconds(30)));
  stop_cleanly(worker);
  const Tally clean = account(s, ledger);
  ASSERT_EQ(clean.processed, 20u);
  ASSERT_TRUE(clean.problems.empty()) << clean.problems.front();

  auto m = [&](size_t k) -> const SentMessage& { return ledger.at(all[k]); };
  Sql sql(s.urls().database);
  // 0: a row gone (lost). 1: a row twice (duplicated). 2: its processed_messages row gone (lost).
  sql.exec(
      "DELETE FROM telemetry_history WHERE ctid IN (SELECT ctid FROM telemetry_history"
      " WHERE source_device_id = $1 AND \"timestamp\" = to_timestamp($2) LIMIT 1)",
      {m(0).device_id, std::to_string(m(0).timestamp_s)});
  sql.exec(
      "INSERT INTO telemetry_history SELECT * FROM telemetry_history WHERE"
      " source_device_id = $1 AND \"timestamp\" = to_timestamp($2) LIMIT 1",
      {m(1).device_id, std::to_string(m(1).timestamp_s)});
  sql.exec("DELETE FROM processed_messages WHERE message_id = $1", {m(2).message_id});
  // 3: an event twice (duplicated). 4: a dead letter too (neither processed nor dead: lost).
  auto publisher = JetStreamPublisher::create(s.nats(), seconds(5));
  ASSERT_TRUE(publisher.ok());
  std::string event_of_3;
  for (const auto& e : s.events()) {
    if (e["messageId"] == asset_event_id(m(3).organization_id, m(3).device_id, m(3).message_id,
                                         m(3).assets[0].asset_id)) {
      event_of_3 = e.dump();
    }
  }
  ASSERT_FALSE(event_of_3.empty());
  const uint64_t seq_of_4 = all[4] + 1;  // published in ledger order into a new stream
  const std::vector<OutboundMessage> forged = {{s.output_subject(), "", event_of_3},
                                               {s.dlq_subject(), "",
                                                json{{"originalStream", s.input_stream()},
                                                     {"originalSubject", s.input_subject()},
                                                     {"streamSequence", seq_of_4},
                                                     {"consumer", s.durable()},
                                                     {"deliveryCount", 1},
                                                     {"lastError", "forged"},
                                                     {"errorType", "forged"},
                                                     {"failedAt", "2026-01-01T00:00:00.000Z"},
                                                     {"payload", json::parse(m(4).payload)}}
                                                    .dump()}};
  for (const auto& st : (*publisher)->publish(forged)) ASSERT_TRUE(st.ok()) << st.to_string();
  // 5: a score moved back.
  sql.exec("UPDATE assets SET health_score = 1 WHERE id = $1", {plants[0].pump_b});
  // 6: the first state change gone from the state subject (lost); 7: the last one there twice
  // (duplicated). Pump B's vibration makes it warning for a while.
  const auto changes = s.state_changes();
  ASSERT_GE(changes.size(), 2u);
  auto removed =
      s.nats().api("$JS.API.STREAM.MSG.DELETE." + s.state_stream(), json{{"seq", 1}}.dump());
  ASSERT_TRUE(removed.ok() && json::parse(*removed).value("success", false));
  for (const auto& st : (*publisher)
                            ->publish(std::vector<OutboundMessage>{
                                {s.state_subject(), "", changes.back().dump()}})) {
    ASSERT_TRUE(st.ok()) << st.to_string();
  }

  const Tally t = account(s, ledger);
  EXPECT_EQ(t.sent, 20u);
  EXPECT_EQ(t.lost, 4u);
  EXPECT_EQ(t.duplicated, 3u);
  EXPECT_EQ(t.processed, 17u);
  std::string all_problems;
  for (const auto& p : t.problems) all_problems += p + "\n";
  for (size_t k : {0, 1, 2, 3, 4}) {
    EXPECT_NE(all_problems.find(m(k).label), std::string::npos) << k << ":\n" << all_problems;
  }
  EXPECT_NE(all_problems.find(plants[0].pump_b + ": score 1"), std::string::npos) << all_problems;
  EXPECT_NE(
      all_problems.find(changes.front()["assetId"].get<std::string>() + ": state change 1 missing"),
      std::string::npos)
      << all_problems;
  EXPECT_NE(
      all_problems.find(changes.back()["assetId"].get<std::string>() + ": state change twice"),
      std::string::npos)
      << all_problems;
  recorded_ = true;  // not a fault scenario: no row in the table
}

TEST_F(FaultSuite, WorkerKilledMidBatchAndRestarted) {
  PublishedBacklog backlog(servers().urls(), 3000);
  auto& [s, plants, ledger, observer] = backlog;
  // Small batches, so that a kill lands between a batch's fetch, write, publish and ack; a short
  // AckWait, so that the killed worker's messages come back quickly.
  const auto e = env(s, {{"BATCH_SIZE", "40"}, {"ACK_WAIT_S", "5"}, {"MAX_ACK_PENDING", "200"}});
  auto worker = start_worker(e);
  const uint64_t total = ledger.expected_events();
  std::string note = "killed after";
  struct Kill {
    double fraction;
    int delay_ms;
  };
  for (const Kill k : {Kill{0.10, 0}, Kill{0.35, 3}, Kill{0.60, 11}}) {
    ASSERT_TRUE(observer.wait_for(
        [&](const Progress& p) { return p.events >= static_cast<uint64_t>(total * k.fraction); },
        seconds(60)))
        << "no progress; worker log: " << worker->log_path();
    std::this_thread::sleep_for(milliseconds(k.delay_ms));
    EXPECT_EQ(worker->stop(SIGKILL), 128 + SIGKILL);
    const Progress at_kill = observer.sample();
    EXPECT_GT(at_kill.ack_pending, 0u) << "the kill did not land with messages in hand";
    note += fmt::format(" {} events with {} messages unacked (last log line \"{}\");",
                        at_kill.events, at_kill.ack_pending, last_log_message(*worker));
    worker = start_worker(e);
  }
  const auto fault_end = SteadyClock::now();
  finish("worker SIGKILLed mid-batch 3 times, restarted", s, ledger, observer, fault_end, note);
  stop_cleanly(worker);
}

TEST_F(FaultSuite, SigtermDrainsAndExitsCleanly) {
  PublishedBacklog backlog(servers().urls(), 2000);
  auto& [s, plants, ledger, observer] = backlog;
  const auto e = env(s, {{"BATCH_SIZE", "100"}});
  auto worker = start_worker(e);
  ASSERT_TRUE(observer.wait_for(
      [&](const Progress& p) { return p.events >= ledger.expected_events() / 4; }, seconds(60)));
  const auto signalled = SteadyClock::now();
  const int code = worker->stop(SIGTERM, seconds(60));
  const double drain_s = seconds_between(signalled, SteadyClock::now());
  EXPECT_EQ(code, 0) << "its log: " << worker->log_path();
  EXPECT_LT(drain_s, 30.0) << "the drain must end well within AckWait (30 s)";
  EXPECT_EQ(last_log_message(*worker), "stopped");
  // Everything the worker was given was finished and acked: nothing left to redeliver.
  const Progress after = observer.sample();
  EXPECT_EQ(after.ack_pending, 0u) << "delivered to the stopped worker and not acked";
  EXPECT_EQ(after.redeliveries(), 0u);
  EXPECT_LT(after.ack_floor, after.last_seq) << "the SIGTERM came too late to be mid-run";

  worker = start_worker(e);
  const auto fault_end = SteadyClock::now();
  finish("SIGTERM mid-run: drained, exit 0", s, ledger, observer, fault_end,
         fmt::format("drained in {:.2f} s with {} of {} acked", drain_s, after.ack_floor,
                     after.last_seq));
  EXPECT_EQ(observer.last().redeliveries(), 0u) << "a message was delivered twice";
  stop_cleanly(worker);
}

TEST_F(FaultSuite, PostgresStoppedFor15Seconds) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 4);
  MessageLedger ledger;
  const auto all = add_telemetry(s, ledger, plants, 0, 2400);
  Observer observer(s, ledger);
  // AckWait below the outage: the messages in hand must be kept alive, not redelivered.
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "50"}, {"ACK_WAIT_S", "6"}}));
  Flow flow(s, ledger, all, 20, milliseconds(100));  // 200 msg/s for 12 s
  ASSERT_TRUE(observer.wait_for(
      [&](const Progress& p) { return p.events >= ledger.expected_events() / 5; }, seconds(60)));

  servers().stop_postgres();
  const auto outage = SteadyClock::now();
  std::optional<double> not_ready_after;
  while (SteadyClock::now() - outage < seconds(15)) {
    if (!not_ready_after && worker->http_status("/readyz") == 503) {
      not_ready_after = seconds_between(outage, SteadyClock::now());
    }
    const Progress p = observer.sample();
    EXPECT_EQ(p.dead_letters, 0u) << "a message went to the DLQ during the outage";
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(not_ready_after) << "/readyz stayed ready through a 15 s database outage";
  ASSERT_TRUE(servers().start_postgres());
  const auto fault_end = SteadyClock::now();
  bool ready_again = false;
  for (int i = 0; i < 150 && !ready_again; ++i) {
    ready_again = worker->http_status("/readyz") == 200;
    if (!ready_again) std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_TRUE(ready_again) << "/readyz not ready 30 s after the database came back";
  EXPECT_TRUE(flow.wait_done(seconds(60)));
  finish("PostgreSQL stopped for 15 s", s, ledger, observer, fault_end,
         fmt::format("/readyz 503 {:.1f} s into the outage, 200 again after",
                     not_ready_after.value_or(-1)));
  // An outage spends no delivery (SPEC D14): everything in hand was kept alive.
  EXPECT_EQ(observer.last().redeliveries(), 0u);
  stop_cleanly(worker);
}

TEST_F(FaultSuite, RedisKilledThenBack) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 4);
  MessageLedger ledger;
  const auto before = add_telemetry(s, ledger, plants, 0, 600);
  const auto during = add_telemetry(s, ledger, plants, 600, 600);
  const auto after = add_telemetry(s, ledger, plants, 1200, 1000);
  Observer observer(s, ledger);
  // A 1 s in-process cache, so that lookups keep reaching Redis (and fail over to PostgreSQL).
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "50"}, {"MEMORY_CACHE_TTL_S", "1"}}));
  std::string note;
  {
    Flow flow(s, ledger, before, 20, milliseconds(100));
    ASSERT_TRUE(observer.wait_for(
        [&](const Progress&) { return redis_link_keys(s.urls(), plants) == 4; }, seconds(30)))
        << "the worker did not cache the links in Redis";
    ASSERT_TRUE(
        observer.wait_for([&](const Progress& p) { return p.events >= 300 * 2; }, seconds(60)));
    servers().kill_redis();
    ASSERT_TRUE(flow.wait_done(seconds(60)));
  }
  {
    // Redis down: processing goes on, nothing fails.
    Flow flow(s, ledger, during, 20, milliseconds(100));
    ASSERT_TRUE(flow.wait_done(seconds(60)));
    EXPECT_TRUE(observer.wait_for(
        [&](const Progress& p) {
          return p.all_acked() && p.events >= ledger.expected_events() && p.dead_letters == 0;
        },
        seconds(60)))
        << "messages stopped being processed without Redis; worker log: " << worker->log_path();
    EXPECT_EQ(worker->http_status("/readyz"), 200) << "Redis is not needed to be ready";
    const std::string m = worker->get("/metrics");
    EXPECT_EQ(metric(m, "asset_worker_up{server=\"redis\"}"), 0);
    note = fmt::format("{} cache_unavailable errors during the outage",
                       metric(m, "asset_worker_errors_total{type=\"cache_unavailable\"}"));
  }
  ASSERT_TRUE(servers().start_redis());
  const auto fault_end = SteadyClock::now();
  {
    // Redis back, empty: the worker uses it again.
    Flow flow(s, ledger, after, 20, milliseconds(100));
    std::optional<double> keys_back;
    if (observer.wait_for([&](const Progress&) { return redis_link_keys(s.urls(), plants) == 4; },
                          seconds(30))) {
      keys_back = seconds_between(fault_end, SteadyClock::now());
    }
    EXPECT_TRUE(keys_back) << "no link keys in Redis 30 s after it came back";
    note += fmt::format("; keys back in Redis {:.1f} s after it", keys_back.value_or(-1));
    ASSERT_TRUE(flow.wait_done(seconds(60)));
  }
  finish("Redis killed mid-run, then back", s, ledger, observer, fault_end, note);
  EXPECT_EQ(metric(worker->get("/metrics"), "asset_worker_up{server=\"redis\"}"), 1);
  stop_cleanly(worker);
}

TEST_F(FaultSuite, NatsServerRestarted) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 4);
  MessageLedger ledger;
  const auto all = add_telemetry(s, ledger, plants, 0, 2400);
  Observer observer(s, ledger);
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "50"}, {"ACK_WAIT_S", "5"}}));
  Flow flow(s, ledger, all, 20, milliseconds(100));
  SteadyClock::time_point fault_end;
  std::string note;
  // Once stopped cleanly, once killed; each time down for 2 s.
  for (const bool kill : {false, true}) {
    const uint64_t mark = observer.last().events + 400;
    ASSERT_TRUE(observer.wait_for([&](const Progress& p) { return p.events >= mark; }, seconds(60)))
        << "no progress; worker log: " << worker->log_path();
    if (kill)
      servers().kill_nats();
    else
      servers().stop_nats();
    std::this_thread::sleep_for(seconds(2));
    ASSERT_TRUE(servers().start_nats());
    fault_end = SteadyClock::now();
    bool ready = false;
    for (int i = 0; i < 150 && !ready; ++i) {
      ready = worker->http_status("/readyz") == 200;
      if (!ready) std::this_thread::sleep_for(milliseconds(100));
    }
    note +=
        fmt::format("{}ready {:.1f} s after the {} restart", note.empty() ? "" : "; ",
                    seconds_between(fault_end, SteadyClock::now()), kill ? "SIGKILL" : "SIGTERM");
  }
  EXPECT_TRUE(flow.wait_done(seconds(90)));
  finish("nats-server restarted (SIGTERM, then SIGKILL)", s, ledger, observer, fault_end, note);
  stop_cleanly(worker);
}

TEST_F(FaultSuite, WorkerPausedPastAckWait) {
  PublishedBacklog backlog(servers().urls(), 3000);
  auto& [s, plants, ledger, observer] = backlog;
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "50"}, {"ACK_WAIT_S", "5"}}));
  ASSERT_TRUE(observer.wait_for(
      [&](const Progress& p) { return p.events >= ledger.expected_events() / 5; }, seconds(60)));
  worker->signal(SIGSTOP);
  const Progress paused = observer.sample();
  EXPECT_GT(paused.ack_pending, 0u) << "paused with nothing in hand";
  std::this_thread::sleep_for(seconds(8));  // AckWait is 5 s
  worker->signal(SIGCONT);
  const auto fault_end = SteadyClock::now();
  finish("worker SIGSTOPped 8 s (AckWait 5 s), resumed", s, ledger, observer, fault_end,
         fmt::format("{} in hand when paused", paused.ack_pending));
  EXPECT_GT(observer.last().redeliveries(), 0u) << "the pause caused no redelivery to test";
  stop_cleanly(worker);
}

TEST_F(FaultSuite, WorkerPausedPastAckWaitWhileAReplicaRuns) {
  PublishedBacklog backlog(servers().urls(), 3000);
  auto& [s, plants, ledger, observer] = backlog;
  const auto e = env(s, {{"BATCH_SIZE", "50"}, {"ACK_WAIT_S", "5"}});
  auto paused_worker = start_worker(e);
  auto replica = start_worker(e);
  ASSERT_TRUE(observer.wait_for(
      [&](const Progress& p) { return p.events >= ledger.expected_events() / 5; }, seconds(60)));
  // The replica takes over the paused worker's messages after AckWait; the paused worker then
  // wakes up holding them and finishes its batch: the same messages written twice at once.
  paused_worker->signal(SIGSTOP);
  std::this_thread::sleep_for(seconds(8));
  paused_worker->signal(SIGCONT);
  const auto fault_end = SteadyClock::now();
  finish("worker SIGSTOPped 8 s while a replica runs, resumed", s, ledger, observer, fault_end);
  EXPECT_GT(observer.last().redeliveries(), 0u) << "the pause caused no redelivery to test";
  stop_cleanly(paused_worker);
  stop_cleanly(replica);
}

// A full output stream answers each publish with an error ("maximum messages exceeded").
TEST_F(FaultSuite, OutputStreamFullForAWhile) {
  PublishedBacklog backlog(servers().urls(), 3000);
  auto& [s, plants, ledger, observer] = backlog;
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "50"}, {"ACK_WAIT_S", "5"}}));
  ASSERT_TRUE(observer.wait_for(
      [&](const Progress& p) { return p.events >= ledger.expected_events() / 5; }, seconds(60)));
  const uint64_t cap = observer.sample().events + 200;
  update_stream(s, s.output_stream(), [&](json& c) {
    c["max_msgs"] = cap;
    c["discard"] = "new";
  });
  ASSERT_TRUE(observer.wait_for([&](const Progress& p) { return p.events >= cap; }, seconds(30)));
  // Past AckWait; the observer checks all along that nothing is acked before its events are
  // stored.
  observer.wait_for([](const Progress&) { return false; }, seconds(20));
  EXPECT_EQ(observer.sample().events, cap) << "the stream did not refuse";
  update_stream(s, s.output_stream(), [](json& c) {
    c["max_msgs"] = -1;
    c["discard"] = "old";
  });
  const auto fault_end = SteadyClock::now();
  finish("output stream full (max_msgs, discard new) for 20 s", s, ledger, observer, fault_end,
         fmt::format("full at {} of {} events", cap, ledger.expected_events()));
  EXPECT_EQ(observer.last().redeliveries(), 0u) << "the outage spent deliveries";
  stop_cleanly(worker);
}

// No stream captures the output subject: each publish is answered "no responders".
TEST_F(FaultSuite, OutputSubjectWithoutStreamForAWhile) {
  PublishedBacklog backlog(servers().urls(), 3000);
  auto& [s, plants, ledger, observer] = backlog;
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "50"}, {"ACK_WAIT_S", "5"}}));
  ASSERT_TRUE(observer.wait_for(
      [&](const Progress& p) { return p.events >= ledger.expected_events() / 5; }, seconds(60)));
  update_stream(s, s.output_stream(),
                [&](json& c) { c["subjects"] = json::array({s.output_subject() + ".parked"}); });
  const Progress parked = observer.sample();
  observer.wait_for([](const Progress&) { return false; }, seconds(8));
  EXPECT_EQ(observer.sample().events, parked.events) << "events stored with the subject removed";
  update_stream(s, s.output_stream(),
                [&](json& c) { c["subjects"] = json::array({s.output_subject()}); });
  const auto fault_end = SteadyClock::now();
  finish("output subject without a stream for 8 s", s, ledger, observer, fault_end,
         fmt::format("removed at {} of {} events", parked.events, ledger.expected_events()),
         seconds(60));
  EXPECT_EQ(observer.last().redeliveries(), 0u) << "the outage spent deliveries";
  stop_cleanly(worker);
}

TEST_F(FaultSuite, PoisonMessagesGoToTheDlqAtTheirFirstDelivery) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 2);
  MessageLedger ledger;
  const Plant& p = plants[0];
  const std::string now_plus_hour =
      format_rfc3339(Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count() +
                               3600LL * 1'000'000});
  int n = 0;
  auto base = [&](const std::string& tag) {
    return Scenario::message(p, s.name("poison-" + tag), iso(kBaseTime + 100000 + ++n));
  };
  auto without = [&](const std::string& field) {
    auto m = base("no-" + field);
    m.erase(field);
    return m.dump();
  };
  auto with = [&](const std::string& tag, const std::string& field, json value) {
    auto m = base(tag);
    m[field] = std::move(value);
    return m.dump();
  };
  json many = json::object();
  for (int i = 0; i < 1001; ++i) many[fmt::format("m{}", i)] = i;
  json padded = base("oversized");
  padded["deviceMetadata"]["padding"] = std::string(300'000, 'x');
  json nested = json::array();
  for (int i = 0; i < 100; ++i) nested = json::array({nested});
  json deep_metadata = base("deep-metadata");
  deep_metadata["deviceMetadata"] = nested;
  // Raw bytes spliced into a string value of an otherwise valid message.
  auto splice = [&](const std::string& tag, const std::string& bytes) {
    std::string text = base(tag).dump();
    const std::string key = "\"deviceId\":\"";
    text.insert(text.find(key) + key.size(), bytes);
    return text;
  };

  std::vector<SentMessage> poisons = {
      poison("invalid JSON", R"({"messageId": "x", "deviceId": )", "JSON"),
      poison("invalid UTF-8 in a string", splice("bad-utf8", "\xff\xfe"), "payload"),
      poison("overlong UTF-8 in a string", splice("overlong", "\xc0\xaf"), "payload"),
      poison("not an object", "[1, 2, 3]", "payload"),
      poison("empty payload", "", "payload"),
      poison("missing messageId", without("messageId"), "messageId"),
      poison("missing deviceId", without("deviceId"), "deviceId"),
      poison("missing organizationId", without("organizationId"), "organizationId"),
      poison("missing timestamp", without("timestamp"), "timestamp"),
      poison("missing metrics", without("metrics"), "metrics"),
      poison("messageId a number", with("id-number", "messageId", 12345), "messageId"),
      poison("deviceId an object", with("dev-object", "deviceId", json{{"a", 1}}), "deviceId"),
      poison("organizationId null", with("org-null", "organizationId", nullptr), "organizationId"),
      poison("empty deviceId", with("dev-empty", "deviceId", ""), "deviceId"),
      poison("empty messageId", with("id-empty", "messageId", ""), "messageId"),
      poison("messageId of 300 bytes", with("id-long", "messageId", std::string(300, 'i')),
             "messageId"),
      poison("control character in deviceId", with("dev-nul", "deviceId", std::string("d\0v", 3)),
             "deviceId"),
      poison("timestamp a number", with("ts-number", "timestamp", 1706452200), "timestamp"),
      poison("timestamp not RFC 3339", with("ts-text", "timestamp", "yesterday"), "timestamp"),
      poison("timestamp on February 30", with("ts-feb30", "timestamp", "2025-02-30T00:00:00Z"),
             "timestamp"),
      poison("timestamp an hour ahead", with("ts-future", "timestamp", now_plus_hour), "timestamp"),
      poison("metrics an array", with("metrics-array", "metrics", json::array({1, 2})), "metrics"),
      poison("metrics null", with("metrics-null", "metrics", nullptr), "metrics"),
      poison("1,001 metrics", with("metrics-many", "metrics", many), "metrics"),
      poison("invalid metric name", with("metric-name", "metrics", json{{"bad name!", 1}}),
             "metrics"),
      poison("malformed number", R"({"messageId": "bad-number", "metrics": {"t": 01}})", "payload"),
      poison("oversized (300 KB, limit 256 KiB)", padded.dump(), "payload"),
      poison("nested 100 deep", deep_metadata.dump(), "payload"),
      poison("nested 100,000 deep", std::string(100'000, '[') + std::string(100'000, ']'),
             "payload"),
  };
  poisons.back().compare_payload = false;
  // Valid edge cases among them: processed, not dead-lettered.
  SentMessage offset = telemetry(s, p, 9001, kBaseTime + 200000);
  {
    json m = json::parse(offset.payload);
    m["timestamp"] = iso(kBaseTime + 200000 + 7200).substr(0, 19) + "+02:00";
    offset.payload = m.dump();
    offset.label = "timestamp with +02:00 offset";
  }
  // SPEC D3: a number past a double's range is a skipped metric, not a poison.
  SentMessage overflow = telemetry(s, p, 9002, kBaseTime + 200002);
  {
    const std::string pressure = "\"pressure\":101.3";
    ASSERT_NE(overflow.payload.find(pressure), std::string::npos) << overflow.payload;
    overflow.payload.replace(overflow.payload.find(pressure), pressure.size(),
                             "\"pressure\":1e999");
    overflow.label = "a metric past a double's range";
  }
  SentMessage unlinked;
  unlinked.label = "device without assets";
  unlinked.expect = SentMessage::Expect::kNoLinks;
  unlinked.message_id = s.name("unlinked");
  unlinked.organization_id = p.org;
  unlinked.device_id = s.name("no-such-device");
  unlinked.timestamp_s = kBaseTime + 200001;
  {
    Plant stranger = p;
    stranger.device = unlinked.device_id;
    unlinked.payload =
        Scenario::message(stranger, unlinked.message_id, iso(unlinked.timestamp_s)).dump();
  }

  // Interleaved: good messages flow around each poison.
  std::vector<size_t> order;
  const auto good = add_telemetry(s, ledger, plants, 0, 390);
  size_t g = 0;
  for (auto& bad : poisons) {
    for (int k = 0; k < 15 && g < good.size(); ++k) order.push_back(good[g++]);
    order.push_back(ledger.add(std::move(bad)));
  }
  order.push_back(ledger.add(offset));
  order.push_back(ledger.add(overflow));
  order.push_back(ledger.add(unlinked));
  while (g < good.size()) order.push_back(good[g++]);

  Observer observer(s, ledger);
  auto worker = start_worker(env(s, {{"MAX_PAYLOAD_BYTES", "262144"}, {"BATCH_SIZE", "100"}}));
  ledger.publish(s, order);
  const auto fault_end = SteadyClock::now();
  const Tally t = finish(fmt::format("poison input ({} kinds) among {} good messages",
                                     poisons.size(), good.size() + 2),
                         s, ledger, observer, fault_end);
  EXPECT_EQ(t.dead_lettered, poisons.size());
  EXPECT_EQ(observer.last().redeliveries(), 0u) << "a poison message was retried";
  stop_cleanly(worker);
}

TEST_F(FaultSuite, PoisonWhoseDeadLetterExceedsMaxPayload) {
  // The largest messages NATS accepts (max_payload 1 MiB, production's default). The dead-letter
  // record wraps the payload (JSON as it is, other bytes in base64), so it can be larger than
  // the server accepts; the message must reach the DLQ all the same, never be lost.
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 1);
  MessageLedger ledger;
  const Plant& p = plants[0];
  json big_json = Scenario::message(p, s.name("big-bad-ts"), "yesterday");
  big_json["deviceMetadata"]["padding"] = "";
  const size_t json_size = big_json.dump().size();
  big_json["deviceMetadata"]["padding"] = std::string(1'048'400 - json_size, 'x');
  std::string binary(800'000, '\xff');
  SentMessage big_valid = telemetry(s, p, 1, kBaseTime + 1);
  {
    json m = json::parse(big_valid.payload);
    m["deviceMetadata"]["padding"] = "";
    const size_t size = m.dump().size();
    m["deviceMetadata"]["padding"] = std::string(1'048'400 - size, 'y');
    big_valid.payload = m.dump();
    big_valid.label = "valid message of 1,048,400 bytes";
  }
  ledger.add(poison("1,048,400-byte JSON with a bad timestamp", big_json.dump(), "timestamp"));
  ledger.add(poison("800,000 bytes that are not UTF-8", binary, "payload"));
  ledger.add(big_valid);
  add_telemetry(s, ledger, plants, 2, 100);
  Observer observer(s, ledger);
  auto worker = start_worker(env(s));
  ledger.publish_all(s);
  const auto fault_end = SteadyClock::now();
  finish("poison whose DLQ record exceeds max_payload (1 MiB)", s, ledger, observer, fault_end, {},
         seconds(45));
  stop_cleanly(worker);
}

TEST_F(FaultSuite, SameMessageIdTwiceAndOlderAfterNewer) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 2);
  MessageLedger ledger;
  Observer observer(s, ledger);
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "100"}}));

  // The newest message of each device first (85 degrees: Pump A scores 70).
  std::map<std::string, double> newest_score;
  std::vector<size_t> newest;
  for (size_t k = 0; k < plants.size(); ++k) {
    SentMessage m = telemetry(s, plants[k], 10000 + static_cast<int>(k), kBaseTime + 86400);
    json j = json::parse(m.payload);
    j["metrics"]["temperature"] = 85;
    m.payload = j.dump();
    for (auto& a : m.assets) {
      a.metrics["motor_temperature"] = 85;
      a.health_score = seed_health_score(a.metrics);
      a.previous_health_score = std::optional<double>();  // the first score of the asset
      newest_score[a.asset_id] = a.health_score;
    }
    newest.push_back(ledger.add(m));
  }
  ledger.publish(s, newest);
  ASSERT_TRUE(observer.wait_accounted(seconds(30)));

  // Then older ones: they land in history but keep the newer score, and their events say what
  // the score was. The first 100 twice in a row (likely the same batch).
  const auto older = add_telemetry(s, ledger, plants, 0, 300);
  for (size_t i : older) {
    for (auto& a : ledger.at(i).assets) a.previous_health_score = newest_score[a.asset_id];
  }
  std::vector<size_t> order;
  for (size_t k = 0; k < older.size(); ++k) {
    order.push_back(older[k]);
    if (k < 100) order.push_back(older[k]);
  }
  ledger.publish(s, order);
  ASSERT_TRUE(observer.wait_accounted(seconds(60)));
  // And 100 of them once more, in later batches.
  ledger.publish(s, std::vector<size_t>(older.begin() + 100, older.begin() + 200));
  const auto fault_end = SteadyClock::now();
  const Tally t =
      finish("same messageId 2-3 times; older after newer", s, ledger, observer, fault_end);
  EXPECT_EQ(t.sent, 2u + 300u + 100u + 100u);
  stop_cleanly(worker);
}

TEST_F(FaultSuite, HostileFormulasAreSkippedAndReported) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 2);
  std::string deep_1000 = std::string(1000, '(') + "power_input" + std::string(1000, ')');
  std::string deep_ok = std::string(494, '(') + "power_input" + std::string(494, ')');  // 999
  std::string long_5000 = "power_input";
  while (long_5000.size() < 5000) long_5000 += " + 0 * power_current";
  const json schema = {
      {"derived_metrics",
       {
           {{"name", "power_consumption"}, {"formula", "power_input * power_current"}},
           {{"name", "div_zero"}, {"formula", "power_input / 0"}},
           {{"name", "zero_over_zero"}, {"formula", "(power_input - power_input) / 0"}},
           {{"name", "deep_1000"}, {"formula", deep_1000}},
           {{"name", "deep_ok"}, {"formula", deep_ok}},
           {{"name", "long_5000"}, {"formula", long_5000}},
           {{"name", "unknown_fn"}, {"formula", "foo(power_input)"}},
           {{"name", "uses_div_zero"}, {"formula", "div_zero * 2"}},
           {{"name", "overflow"}, {"formula", "power_input * 1e308 * 10"}},
       }}};
  s.sql().exec("UPDATE asset_types SET telemetry_schema = $2::jsonb WHERE id = $1",
               {plants[0].type, schema.dump()});
  MessageLedger ledger;
  const auto all = add_telemetry(s, ledger, plants, 0, 300);
  for (size_t i : all) {
    auto& a = ledger.at(i).assets[0];  // Pump A: the only asset with power_input
    a.metrics["deep_ok"] = a.metrics["power_input"];
  }
  Observer observer(s, ledger);
  auto worker = start_worker(env(s, {{"BATCH_SIZE", "100"}}));
  ledger.publish_all(s);
  const auto fault_end = SteadyClock::now();
  finish("hostile formulas (x/0, 1,000-deep, 5,000 chars, unknown function)", s, ledger, observer,
         fault_end);

  // Reported: in the log, once per problem, and in /metrics.
  const std::string log = read_file(worker->log_path());
  for (const char* name : {"deep_1000", "long_5000", "unknown_fn"}) {
    EXPECT_NE(log.find(fmt::format("({})", name)), std::string::npos)
        << name << " not reported in " << worker->log_path();
  }
  const std::string m = worker->get("/metrics");
  EXPECT_GE(metric(m, "asset_worker_errors_total{type=\"formula_invalid\"}"), 3);
  // Per message, Pump A: x/0, 0/0 and the overflow give no value, uses_div_zero misses div_zero;
  // Pump B has no power_input, so each of the 6 compiled formulas misses a variable.
  EXPECT_EQ(metric(m, "asset_worker_formula_non_finite_total"), 3 * 300);
  EXPECT_EQ(metric(m, "asset_worker_formula_missing_variable_total"), 7 * 300);
  stop_cleanly(worker);
}

// a message whose every delivery kills the worker (tests/support/
// fault_preload.cc, loaded into the unmodified binary) reaches the DLQ through the server's
// MAX_DELIVERIES advisory; the worker is restarted each time, as Kubernetes would, and the
// messages that shared its batches are processed exactly once.
TEST_F(FaultSuite, CrashOnEveryDeliveryReachesTheDlq) {
  Scenario s(servers().urls());
  const auto plants = load_plants(s, 2);  // plant 1's device is the one that crashes the worker
  MessageLedger ledger;
  for (int i = 0; i < 600; ++i) {
    if (i == 300) {
      SentMessage crash = telemetry(s, plants[1], i, kBaseTime + i);
      crash.label = "crashes every delivery";
      crash.expect = SentMessage::Expect::kDeadLetter;
      crash.reason = "delivered 3 times";
      crash.first_delivery = false;
      ledger.add(crash);
      continue;
    }
    ledger.add(telemetry(s, plants[0], i, kBaseTime + i));
  }
  ledger.publish_all(s);
  Observer observer(s, ledger);
  const auto e = env(s, {{"BATCH_SIZE", "100"},
                         {"ACK_WAIT_S", "5"},
                         {"MAX_DELIVER", "3"},
                         {"LD_PRELOAD", ATW_FAULT_PRELOAD},
                         {"ATW_FAULT_CRASH_MARKER", plants[1].device}});
  auto worker = std::make_unique<WorkerProcess>(e);
  int crashes = 0;
  SteadyClock::time_point last_crash = SteadyClock::now();
  const auto deadline = SteadyClock::now() + seconds(90);
  while (SteadyClock::now() < deadline && crashes < 10) {
    if (worker->exited()) {
      ++crashes;
      last_crash = SteadyClock::now();
      worker = std::make_unique<WorkerProcess>(e);
    }
    if (observer.sample().dead_letters >= 1 && crashes >= 3) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(crashes, 3) << "one crash per delivery of the bad message";
  finish("crash on every delivery -> MAX_DELIVERIES -> DLQ", s, ledger, observer, last_crash,
         fmt::format("{} crashes", crashes));
  stop_cleanly(worker);
}

}  // namespace
}  // namespace atw::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  atw::testing::g_env = new atw::testing::FaultEnvironment();
  ::testing::AddGlobalTestEnvironment(atw::testing::g_env);
  return RUN_ALL_TESTS();
}
