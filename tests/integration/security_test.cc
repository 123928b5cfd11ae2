// A production-like deployment (docs/security.md): nats-server with TLS (clients
// verified) and users holding the shipped permissions, PostgreSQL with ssl = on, a certificate
// from a test CA and the shipped roles, Redis with the shipped ACL user; the worker through all
// three. Certificates and keys come from openssl, NKeys and JWTs from tests/support/nats_auth.h,
// all made here, none committed. Each test runs servers of its own (support/private_servers.h).

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "adapters/postgres/migrations.h"
#include "support/nats_auth.h"
#include "support/private_servers.h"

namespace atw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

// Secrets of the tests: each is looked for, and must never be found, in what is printed.
constexpr const char* kWorkerNatsPassword = "nats-pw-W0rker-4c1e";
constexpr const char* kReaderNatsPassword = "nats-pw-Reader-77a2";
constexpr const char* kAdminNatsPassword = "nats-pw-Admin-90b3";
constexpr const char* kOwnerPgPassword = "pg-pw-Owner-1f0d";
constexpr const char* kWorkerPgPassword = "pg-pw-Worker-5e6a";
constexpr const char* kRedisPassword = "redis-pw-Worker-c3d4";
constexpr const char* kRedisAdminPassword = "redis-pw-Admin-e5f6";

void write_file(const std::string& path, const std::string& text, int mode = 0600) {
  std::ofstream(path) << text;
  std::filesystem::permissions(path, static_cast<std::filesystem::perms>(mode));
}

// openssl, quietly; ADD_FAILURE unless it succeeds.
void openssl(const std::string& dir, const std::string& args) {
  const std::string cmd = fmt::format("cd '{}' && openssl {} >>openssl.log 2>&1", dir, args);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << read_file(dir + "/openssl.log");
}

// A test CA, a certificate for 127.0.0.1 and localhost (the servers'), and one for a client.
void make_pki(const std::string& dir) {
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  openssl(dir, "req -x509 " + ec + " -keyout ca.key -out ca.crt -days 2 -subj /CN=atw-test-ca");
  openssl(dir, "req " + ec + " -keyout server.key -out server.csr -subj /CN=localhost");
  write_file(dir + "/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n", 0644);
  openssl(dir,
          "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
          " -extfile server.ext -out server.crt");
  openssl(dir, "req " + ec + " -keyout client.key -out client.crt.csr -subj /CN=asset-worker");
  openssl(dir,
          "x509 -req -in client.crt.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
          " -out client.crt");
  // PostgreSQL reads its key as the postgres user, and only from a file no one else can read.
  std::filesystem::copy_file(dir + "/server.key", dir + "/pg-server.key");
  EXPECT_EQ(std::system(fmt::format("chown postgres '{}/pg-server.key'", dir).c_str()), 0);
  std::filesystem::permissions(dir + "/pg-server.key", std::filesystem::perms::owner_read);
  std::filesystem::permissions(dir + "/server.crt", std::filesystem::perms(0644));
}

// nats-server's users: the worker and the DLQ reader with the shipped permissions, and the
// test's own administrator; TLS with client certificates verified.
std::string users_config(const std::string& dir) {
  // The shipped permissions as an operator includes them (here in place: nats-server reads an
  // include relative to the configuration's folder, which is the servers' own).
  return read_file(std::string(ATW_SOURCE_DIR) + "/deploy/nats/asset-worker-permissions.conf") +
         fmt::format(R"(
tls {{
  cert_file: "{0}/server.crt"
  key_file: "{0}/server.key"
  ca_file: "{0}/ca.crt"
  verify: true
}}
accounts {{
  TELEMETRY {{
    jetstream: enabled
    users: [
      {{ user: "asset-worker", password: "{1}", permissions: $ASSET_WORKER }}
      {{ user: "dlq-reader", password: "{2}", permissions: $DLQ_READER }}
      {{ user: "dlq-operator", password: "{2}-operator", permissions: $DLQ_OPERATOR }}
      {{ user: "reprocess", password: "{2}-reprocess", permissions: $REPROCESS }}
      {{ user: "admin", password: "{3}" }}
    ]
  }}
}}
)",
                     dir, kWorkerNatsPassword, kReaderNatsPassword, kAdminNatsPassword);
}

// The servers of a secured deployment: the PKI, the shipped permissions, roles and ACL, in a
// folder of the deployment's own (the servers keep theirs).
class SecuredDeployment {
 public:
  SecuredDeployment() {
    char tmpl[] = "/tmp/atw-secure-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::filesystem::permissions(dir_, std::filesystem::perms(0755));
    make_pki(dir_);
    std::string acl = read_file(std::string(ATW_SOURCE_DIR) + "/deploy/redis/users.acl");
    acl.replace(acl.find("CHANGE-ME"), 9, kRedisPassword);
    acl += fmt::format("user asset-worker-admin on >{} ~* &* +@all\n", kRedisAdminPassword);
    write_file(dir_ + "/users.acl", acl);

    PrivateServerOptions o;
    o.nats_scheme = "tls";
    o.nats_config = users_config(dir_);
    o.nats_client.user = "admin";
    o.nats_client.password = SecretSource(kAdminNatsPassword);
    o.nats_client.ca_file = dir_ + "/ca.crt";
    o.nats_client.cert_file = dir_ + "/client.crt";
    o.nats_client.key_file = dir_ + "/client.key";
    o.postgres_settings = {"ssl=on", "ssl_cert_file=" + dir_ + "/server.crt",
                           "ssl_key_file=" + dir_ + "/pg-server.key"};
    o.pg_hba =
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 127.0.0.1/32 reject";
    o.redis_args = {"--aclfile", dir_ + "/users.acl"};
    o.redis_login = std::string("asset-worker ") + kRedisPassword;
    o.migrate = false;
    servers_ = std::make_unique<PrivateServers>(std::move(o));
  }
  ~SecuredDeployment() {
    servers_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  PrivateServers& servers() { return *servers_; }
  const std::string& dir() const { return dir_; }

  // A file of the deployment's (a mounted secret), written now.
  std::string secret(const std::string& name, const std::string& text) {
    write_file(dir_ + "/" + name, text);
    return dir_ + "/" + name;
  }
  std::string database_url(const std::string& role, const std::string& password) const {
    return fmt::format(
        "postgresql://{}:{}@127.0.0.1:{}/asset_telemetry?sslmode=verify-full&sslrootcert={}/ca.crt",
        role, password, servers_->pg_port(), dir_);
  }
  // The worker's environment: every secret in a file, TLS to NATS and PostgreSQL.
  std::map<std::string, std::string> worker_env(Scenario& s) {
    auto env = s.worker_env();
    env.erase("DATABASE_URL");
    env.erase("REDIS_URL");
    env["NATS_URL"] = fmt::format("tls://127.0.0.1:{}", servers_->nats_port());
    env["NATS_USER"] = "asset-worker";
    env["NATS_PASSWORD_FILE"] = secret("nats-password", kWorkerNatsPassword);
    env["NATS_CA_FILE"] = dir_ + "/ca.crt";
    env["NATS_CERT_FILE"] = dir_ + "/client.crt";
    env["NATS_KEY_FILE"] = dir_ + "/client.key";
    env["DATABASE_URL_FILE"] =
        secret("database-url", database_url("asset_worker", kWorkerPgPassword));
    env["REDIS_URL_FILE"] =
        secret("redis-url", fmt::format("redis://asset-worker:{}@127.0.0.1:{}/0", kRedisPassword,
                                        servers_->redis_port()));
    return env;
  }

 private:
  std::string dir_;
  std::unique_ptr<PrivateServers> servers_;
};

// deploy/postgres/roles.sql as a superuser.
void apply_roles(Sql& admin) {
  admin.exec(read_file(std::string(ATW_SOURCE_DIR) + "/deploy/postgres/roles.sql"));
}

// The servers of SecuredDeployment with the shipped roles applied and the schema migrated.
void prepare_database(SecuredDeployment& d) {
  Sql admin(d.servers().urls().database);
  apply_roles(admin);
  admin.exec(fmt::format("ALTER ROLE asset_worker PASSWORD '{}'", kWorkerPgPassword));
  {
    PgConnection db(d.servers().urls().database);
    ASSERT_TRUE(migrate(db).ok());
  }
  apply_roles(admin);
}

TEST(Security, TheStandardWorkloadThroughTlsAndLeastPrivilege) {
  SecuredDeployment d;
  ASSERT_TRUE(d.servers().ok()) << d.servers().error();
  Sql admin(d.servers().urls().database);
  apply_roles(admin);
  admin.exec(
      fmt::format("ALTER ROLE asset_worker_owner PASSWORD '{}';"
                  "ALTER ROLE asset_worker PASSWORD '{}'",
                  kOwnerPgPassword, kWorkerPgPassword));
  // migrate as the owner role, over TLS, the server's certificate verified.
  auto [migrated, migrate_log] =
      run_to_end({{"DATABASE_URL_FILE",
                   d.secret("owner-url", d.database_url("asset_worker_owner", kOwnerPgPassword))}},
                 {"migrate"});
  ASSERT_EQ(migrated, 0) << migrate_log;
  apply_roles(admin);

  Scenario s(d.servers().urls(), /*default_names=*/true);
  const auto p = s.load_example_plant();
  auto env = d.worker_env(s);
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(30))) << read_file(worker.log_path());
  constexpr int kMessages = 300;
  std::vector<std::string> payloads;
  for (int i = 0; i < kMessages; ++i) {
    payloads.push_back(Scenario::message(p, s.name(fmt::format("m{}", i)),
                                         format_rfc3339(Timestamp::from_seconds(1769610600 + i)))
                           .dump());
  }
  payloads.emplace_back("{not json");  // one dead letter
  s.publish(payloads);
  s.publish(std::vector<std::string>{payloads.front()});  // a redelivery
  ASSERT_TRUE(s.wait_all_acked(seconds(60))) << worker.log_path();

  // Every check of the core tests: rows, scores, events, the DLQ, nothing twice.
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}).size(), 5u * kMessages);
  EXPECT_EQ(s.events().size(), 2u * kMessages);
  EXPECT_EQ(s.score(p.pump_a), "100");
  EXPECT_EQ(admin.scalar("SELECT to_char(health_score_updated_at AT TIME ZONE 'UTC',"
                         " 'YYYY-MM-DD HH24:MI:SS') FROM assets WHERE id = $1",
                         {p.pump_a}),
            "2026-01-28 14:34:59");
  const auto dlq = s.dead_letters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0]["errorType"], "invalid_message");
  EXPECT_EQ(s.consumer_info().value("num_redelivered", -1), 0);
  const std::string metrics = worker.get("/metrics");
  EXPECT_EQ(metric(metrics, "asset_worker_up{server=\"redis\"}"), 1) << worker.log_path();
  EXPECT_EQ(metric(metrics, "asset_worker_up{server=\"postgres\"}"), 1);
  EXPECT_GE(metric(metrics,
                   "asset_worker_cache_lookups_total{cache=\"device_links\","
                   "tier=\"redis\",result=\"miss\"}"),
            1);
  // The connections are encrypted: PostgreSQL says so of the worker's sessions.
  EXPECT_EQ(admin.scalar("SELECT bool_and(s.ssl)::text FROM pg_stat_ssl s JOIN pg_stat_activity a"
                         " USING (pid) WHERE a.usename = 'asset_worker'"),
            "true");
  EXPECT_EQ(worker.stop(SIGTERM), 0);

  // Reprocess as its own NATS user and PostgreSQL role: nothing to correct, then a changed
  // formula corrected (pump A's rows: its power), the events published.
  admin.exec(fmt::format("ALTER ROLE asset_worker_reprocess PASSWORD '{}'", kWorkerPgPassword));
  auto reprocess = env;
  reprocess["NATS_USER"] = "reprocess";
  reprocess["NATS_PASSWORD_FILE"] =
      d.secret("reprocess-password", std::string(kReaderNatsPassword) + "-reprocess");
  reprocess["DATABASE_URL_FILE"] =
      d.secret("reprocess-url", d.database_url("asset_worker_reprocess", kWorkerPgPassword));
  const std::vector<std::string> range = {
      "reprocess", "--from", "2026-01-28T00:00:00Z", "--to", "2026-01-29T00:00:00Z", "--json"};
  auto [same, same_out] = run_to_end(reprocess, range);
  ASSERT_EQ(same, 0) << same_out;
  EXPECT_NE(same_out.find(fmt::format("\"messagesSelected\": {}", kMessages + 1)),  // a repeat
            std::string::npos)
      << same_out;
  EXPECT_NE(same_out.find("\"pairsCorrected\": 0"), std::string::npos) << same_out;
  admin.exec(
      "UPDATE asset_types SET telemetry_schema = '{\"derived_metrics\": [{\"name\":"
      " \"power_consumption\", \"formula\": \"power_input * power_current / 1000\"}]}'");
  auto [fixed, fixed_out] = run_to_end(reprocess, range);
  ASSERT_EQ(fixed, 0) << fixed_out;
  EXPECT_NE(fixed_out.find(fmt::format("\"pairsCorrected\": {}", kMessages)), std::string::npos)
      << fixed_out;
  EXPECT_EQ(s.events().size(), 3u * kMessages);

  // The DLQ reader reads the DLQ and may not purge it: refused, and said so.
  auto reader = env;
  reader["NATS_USER"] = "dlq-reader";
  reader["NATS_PASSWORD_FILE"] = d.secret("reader-password", kReaderNatsPassword);
  auto [listed, list_out] = run_to_end(reader, {"dlq", "list"});
  EXPECT_EQ(listed, 0) << list_out;
  EXPECT_NE(list_out.find("1 dead letter(s)"), std::string::npos) << list_out;
  auto [purged, purge_out] = run_to_end(reader, {"dlq", "purge", "--all"});
  EXPECT_NE(purged, 0) << purge_out;
  EXPECT_NE(purge_out.find("$JS.API.STREAM.MSG.DELETE.TELEMETRY_DLQ"), std::string::npos)
      << purge_out;
  EXPECT_EQ(s.dead_letters().size(), 1u);
}

// A worker whose login a server refuses stops at once, says which server and why, and exits
// non-zero; one told to use Redis over TLS says how instead.
TEST(Security, AWorkerWithoutTheRightCredentialsIsRefusedAndSaysWhy) {
  SecuredDeployment d;
  ASSERT_TRUE(d.servers().ok()) << d.servers().error();
  prepare_database(d);
  Scenario s(d.servers().urls(), /*default_names=*/true);
  const auto good = d.worker_env(s);
  struct Case {
    std::string what;
    std::map<std::string, std::string> env;
    std::string says;
    int code;
  };
  std::vector<Case> cases;
  auto with = [&](std::map<std::string, std::string> changes) {
    auto env = good;
    for (auto& [k, v] : changes) {
      if (v.empty()) {
        env.erase(k);
      } else {
        env[k] = v;
      }
    }
    return env;
  };
  cases.push_back({"a wrong NATS password",
                   with({{"NATS_PASSWORD_FILE", d.secret("wrong-nats", "not-the-password")}}),
                   "NATS refused the connection", 1});
  cases.push_back({"no NATS login", with({{"NATS_USER", ""}, {"NATS_PASSWORD_FILE", ""}}),
                   "NATS refused the connection", 1});
  cases.push_back({"no client certificate", with({{"NATS_CERT_FILE", ""}, {"NATS_KEY_FILE", ""}}),
                   "NATS refused the connection", 1});
  cases.push_back(
      {"a wrong PostgreSQL password",
       with({{"DATABASE_URL_FILE", d.secret("wrong-pg", d.database_url("asset_worker", "nope"))}}),
       "PostgreSQL refused the worker's login", 1});
  cases.push_back(
      {"a wrong Redis password",
       with({{"REDIS_URL_FILE",
              d.secret("wrong-redis", fmt::format("redis://asset-worker:nope@127.0.0.1:{}/0",
                                                  d.servers().redis_port()))}}),
       "Redis refused the worker's login", 1});
  cases.push_back({"Redis over TLS",
                   with({{"REDIS_URL_FILE", ""},
                         {"REDIS_URL", fmt::format("rediss://asset-worker:{}@127.0.0.1:{}/0",
                                                   kRedisPassword, d.servers().redis_port())}}),
                   "rediss:// (TLS) is not supported", 2});
  for (const auto& c : cases) {
    const auto start = SteadyClock::now();
    auto [code, out] = run_to_end(c.env, {"run"}, seconds(30));
    EXPECT_EQ(code, c.code) << c.what << "\n" << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << c.what << "\n" << out;
    EXPECT_LT(SteadyClock::now() - start, seconds(20)) << c.what << ": not at once";
    EXPECT_EQ(out.find(kRedisPassword), std::string::npos) << c.what;
    EXPECT_EQ(out.find(kWorkerNatsPassword), std::string::npos) << c.what;
  }
}

// Waits until `done` holds, checking every 100 ms; false after `timeout`.
bool eventually(const std::function<bool()>& done, milliseconds timeout) {
  for (auto end = SteadyClock::now() + timeout; SteadyClock::now() < end;) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return done();
}

// Each publish permission of the shipped ASSET_WORKER list taken away in turn, with the worker
// made to need it: its log names the subject nats-server refused, it is not ready, and nothing
// is dead-lettered meanwhile; given the permission back, it carries on by itself and every
// message is processed once.
TEST(Security, EachNatsPermissionTakenAwayIsNamed) {
  SecuredDeployment d;
  ASSERT_TRUE(d.servers().ok()) << d.servers().error();
  prepare_database(d);
  Scenario s(d.servers().urls(), /*default_names=*/true);
  const auto p = s.load_example_plant();
  auto env = d.worker_env(s);
  env["ACK_WAIT_S"] = "5";  // an ack refused comes back soon once it is allowed again
  const std::string full = users_config(d.dir());
  const auto permissions = shipped_permissions("ASSET_WORKER", "publish");
  ASSERT_GE(permissions.size(), 15u);
  int good = 0;
  auto publish_good = [&] {
    s.publish_one(Scenario::message(p, s.name(fmt::format("m{}", good)),
                                    format_rfc3339(Timestamp::from_seconds(1769610600 + good))));
    ++good;
  };
  auto dlq_count = [&] { return s.dead_letters().size(); };
  // Fake advisories published, each of which becomes one max_deliveries_exceeded record.
  size_t advisories = 0;
  auto advisory_records = [&] {
    const auto records = s.dead_letters();
    return static_cast<size_t>(std::count_if(records.begin(), records.end(), [](const json& r) {
      return r.value("errorType", "") == "max_deliveries_exceeded";
    }));
  };
  std::unique_ptr<WorkerProcess> worker;

  for (const std::string& subject : permissions) {
    SCOPED_TRACE(subject);
    // The configuration without this one permission (an unused subject in its place).
    std::string config = full;
    const size_t at = config.find("\"" + subject + "\"");
    ASSERT_NE(at, std::string::npos);
    config.replace(at, subject.size() + 2, "\"atw.test.not-used\"");
    ASSERT_TRUE(d.servers().restart_nats(config));
    ASSERT_TRUE(eventually([&] { return s.nats().connected(); }, seconds(10)));

    // Make the worker need the permission.
    const bool creates = subject.rfind("$JS.API.STREAM.CREATE.", 0) == 0 ||
                         subject.rfind("$JS.API.CONSUMER.DURABLE.CREATE.", 0) == 0;
    const bool at_start = creates || subject.rfind("$JS.API.CONSUMER.INFO.", 0) == 0 ||
                          subject == "$JS.API.STREAM.NAMES";
    if (worker && at_start) {
      EXPECT_EQ(worker->stop(SIGTERM), 0);
      worker.reset();
    }
    if (creates) {
      const std::string what = subject.substr(std::string("$JS.API.").size());
      const bool stream = what.rfind("STREAM.CREATE.", 0) == 0;
      const std::string name = what.substr(what.find("CREATE.") + 7);  // stream[.consumer]
      (void)s.nats().api((stream ? "$JS.API.STREAM.DELETE." : "$JS.API.CONSUMER.DELETE.") + name,
                         "");
    }
    // A message that exhausted its deliveries is what the safety net reads and acks.
    const bool needs_advisory =
        subject.find("MSG.GET") != std::string::npos ||
        (subject.rfind("$JS.ACK.", 0) == 0 && subject.find("MAX_DELIVERIES") != std::string::npos);
    const bool check_dlq = !creates && !needs_advisory;
    const size_t dead_before = check_dlq ? dlq_count() : 0;
    if (!worker) worker = std::make_unique<WorkerProcess>(env);
    if (!creates) {
      if (subject == "telemetry.asset.state.v1") {
        // A hot motor: Pump A's score falls from 100 to 70, a change of state (good to warning).
        s.publish_one(
            Scenario::message(p, s.name(fmt::format("m{}", good)),
                              format_rfc3339(Timestamp::from_seconds(1769610600 + good)),
                              {{"temperature", 95}, {"voltage", 12.3}, {"current", 2.5}}));
        ++good;
      } else {
        publish_good();
      }
      if (subject == "telemetry.dlq") s.publish(std::vector<std::string>{"{not json"});
      if (needs_advisory) {
        // An advisory as the server sends it when a message exhausts its deliveries.
        ASSERT_TRUE(s.wait_all_acked(seconds(30)));
        const auto last = s.stream(s.input_stream()).back().sequence;
        const json advisory = {{"type", "io.nats.jetstream.advisory.v1.max_deliver"},
                               {"stream", s.input_stream()},
                               {"consumer", s.durable()},
                               {"stream_seq", last},
                               {"deliveries", 3}};
        const std::string text = advisory.dump();
        ++advisories;
        ASSERT_TRUE(s.nats()
                        .publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + s.input_stream() +
                                     "." + s.durable(),
                                 text)
                        .ok());
      }
    }
    // The log names the subject refused (nats-server's own words), and the worker is not ready.
    const std::string refused = "Permissions Violation for Publish to \\\"" +
                                subject.substr(0, subject.find('>'));  // an ack's own subject
    const bool named = eventually(
        [&] {
          (void)worker->get("/metrics");  // the DLQ's depth needs STREAM.INFO
          return read_file(worker->log_path()).find(refused) != std::string::npos;
        },
        seconds(30));
    EXPECT_TRUE(named) << read_file(worker->log_path());
    EXPECT_NE(worker->http_status("/readyz"), 200);
    if (check_dlq) {
      EXPECT_EQ(dlq_count(), dead_before) << "dead-lettered for want of a permission";
    }
    EXPECT_FALSE(worker->exited()) << read_file(worker->log_path());

    // Given back, the worker carries on by itself.
    ASSERT_TRUE(d.servers().restart_nats(full));
    ASSERT_TRUE(eventually([&] { return s.nats().connected(); }, seconds(10)));
    if (creates) {
      ASSERT_TRUE(worker->wait_ready(seconds(30))) << read_file(worker->log_path());
      publish_good();
    }
    EXPECT_TRUE(s.wait_all_acked(seconds(60))) << read_file(worker->log_path());
    if (needs_advisory) {  // the safety net has caught up before the next case counts
      EXPECT_TRUE(eventually([&] { return advisory_records() == advisories; }, seconds(30)));
    }
    if (!at_start) {
      EXPECT_TRUE(eventually([&] { return worker->http_status("/readyz") == 200; }, seconds(30)))
          << "still not ready";
    }
  }
  if (worker) {
    EXPECT_EQ(worker->stop(SIGTERM), 0);
  }
  // Every good message once: its rows, no row twice.
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}).size(), 5u * good);
  EXPECT_EQ(
      s.sql().scalar("SELECT count(*) FROM processed_messages WHERE organization_id = $1", {p.org}),
      std::to_string(good));
}

// A plant of its own (tenant, device, assets and asset type all new), so that the worker must
// read its links, assets and type from PostgreSQL and its links through Redis.
Scenario::Plant fresh_plant(Scenario& s, int n) {
  const std::string org = s.name(fmt::format("org{}", n));
  Scenario::Plant p{org, s.name(fmt::format("dev{}", n)), org + "-pump-a", org + "-pump-b",
                    s.name(fmt::format("type{}", n))};
  s.load_plant(p);
  return p;
}

// Each privilege of the shipped asset_worker role taken away in turn, with the worker made to
// need it: its log names what PostgreSQL refused, and a privilege of the pipeline is an outage
// (not ready, nothing dead-lettered) that ends by itself once the privilege is back; every
// message is then written once. The history maintenance's is not the pipeline's: it fails,
// says so, and messages flow meanwhile.
TEST(Security, EachPostgresPrivilegeTakenAwayIsNamed) {
  SecuredDeployment d;
  ASSERT_TRUE(d.servers().ok()) << d.servers().error();
  prepare_database(d);
  Sql admin(d.servers().urls().database);
  Scenario s(d.servers().urls(), /*default_names=*/true);
  auto env = d.worker_env(s);
  env["MAINTAIN_INTERVAL_S"] = "1";
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(30))) << read_file(worker.log_path());
  struct Case {
    std::string privilege;  // as GRANT and REVOKE name it
    std::string refused;    // what the log says
    bool pipeline;          // an outage of the pipeline (else of the maintenance alone)
    bool again = false;     // needed for a message written before (a redelivery) alone
  };
  const std::string score_columns =
      "UPDATE (health_score, health_score_updated_at, health_score_computed_by, updated_at)"
      " ON assets";
  const std::vector<Case> cases = {
      {"SELECT ON entity_edges", "permission denied for table entity_edges", true},
      {"SELECT ON asset_types", "permission denied for table asset_types", true},
      {"SELECT ON assets", "permission denied for table assets", true},
      {score_columns, "permission denied for table assets", true},
      {"INSERT ON telemetry_history", "permission denied for table telemetry_history", true},
      {"INSERT ON processed_messages", "permission denied for table processed_messages", true},
      {"SELECT ON processed_messages", "permission denied for table processed_messages", true,
       true},
      // A fresh plant's assets have no state yet: read, then inserted by an upsert (which needs
      // UPDATE as well, whether or not a row is there).
      {"SELECT ON asset_health_states", "permission denied for table asset_health_states", true},
      {"INSERT ON asset_health_states", "permission denied for table asset_health_states", true},
      {"UPDATE ON asset_health_states", "permission denied for table asset_health_states", true},
      {"EXECUTE ON FUNCTION telemetry_history_maintain(integer, integer, date)",
       "permission denied for function telemetry_history_maintain", false},
  };
  int n = 0;
  std::vector<Scenario::Plant> plants;
  size_t log_seen = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.privilege);
    admin.exec(fmt::format("REVOKE {} FROM asset_worker", c.privilege));
    if (c.again) {
      s.publish_one(Scenario::message(plants.front(), s.name("m0")));
    } else {
      plants.push_back(fresh_plant(s, n));
      s.publish_one(Scenario::message(plants.back(), s.name(fmt::format("m{}", n))));
      ++n;
    }
    const bool named = eventually(
        [&] { return read_file(worker.log_path()).find(c.refused, log_seen) != std::string::npos; },
        seconds(20));
    EXPECT_TRUE(named) << read_file(worker.log_path()).substr(log_seen);
    if (c.pipeline) {
      EXPECT_EQ(worker.http_status("/readyz"), 503);
      std::this_thread::sleep_for(seconds(2));  // a retry or two, and still nothing dead
      EXPECT_EQ(s.consumer_info().value("num_ack_pending", -1), 1) << "not waiting";
    } else {
      EXPECT_TRUE(s.wait_all_acked(seconds(20))) << "the maintenance held up the pipeline";
      EXPECT_GE(metric(worker.get("/metrics"),
                       "asset_worker_history_maintenance_runs_total{result=\"failed\"}"),
                1);
    }
    EXPECT_TRUE(s.dead_letters().empty()) << "dead-lettered for want of a privilege";
    log_seen = read_file(worker.log_path()).size();

    admin.exec(fmt::format("GRANT {} TO asset_worker", c.privilege));
    EXPECT_TRUE(s.wait_all_acked(seconds(30))) << read_file(worker.log_path()).substr(log_seen);
    EXPECT_TRUE(eventually([&] { return worker.http_status("/readyz") == 200; }, seconds(20)));
  }
  EXPECT_EQ(worker.stop(SIGTERM), 0);
  // Every message once: its rows, one processed record each, no dead letter.
  for (const auto& p : plants) {
    EXPECT_EQ(s.history({p.pump_a, p.pump_b}), Scenario::document_example_history(p)) << p.org;
  }
  EXPECT_EQ(admin.scalar("SELECT count(*) FROM processed_messages"), std::to_string(n));
  EXPECT_TRUE(s.dead_letters().empty());
}

// Each command of the shipped Redis ACL user taken away in turn, with the worker or
// `links invalidate` made to need it: what Redis refused is named. The cache is not the
// pipeline's to wait for: the worker reads PostgreSQL meanwhile and no message waits;
// `links invalidate` fails (exit 1), since the purge it was asked for did not happen; a login
// that cannot PING or SELECT is refused at start.
TEST(Security, EachRedisCommandTakenAwayIsNamed) {
  SecuredDeployment d;
  ASSERT_TRUE(d.servers().ok()) << d.servers().error();
  prepare_database(d);
  Scenario s(d.servers().urls(), /*default_names=*/true);
  // The ACL as shipped, changed the way an administrator would: ACL SETUSER.
  auto acl = [&](const std::string& rule) {
    const std::string cmd = fmt::format(
        "redis-cli --no-auth-warning -h 127.0.0.1 -p {} --user asset-worker-admin --pass '{}'"
        " ACL SETUSER asset-worker {} >/dev/null",
        d.servers().redis_port(), kRedisAdminPassword, rule);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  };
  // How many link keys Redis holds, as its administrator counts them.
  auto link_keys = [&] {
    const std::string cmd = fmt::format(
        "redis-cli --no-auth-warning -h 127.0.0.1 -p {} --user asset-worker-admin --pass '{}'"
        " --scan --pattern 'device_asset_links:*' | wc -l",
        d.servers().redis_port(), kRedisAdminPassword);
    std::unique_ptr<FILE, int (*)(FILE*)> out(popen(cmd.c_str(), "r"), pclose);
    int count = -1;
    if (out == nullptr || std::fscanf(out.get(), "%d", &count) != 1) ADD_FAILURE() << cmd;
    return count;
  };
  auto env = d.worker_env(s);
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(30))) << read_file(worker.log_path());
  int n = 0;
  std::vector<Scenario::Plant> plants;
  auto refused = [](const std::string& command) {
    return fmt::format("NOPERM this user has no permissions to run the '{}' command", command);
  };
  // The worker's own commands: a new device is looked up (MGET) and its links stored (SET).
  size_t log_seen = 0;
  for (const std::string command : {"mget", "set"}) {
    SCOPED_TRACE(command);
    acl("-" + command);
    plants.push_back(fresh_plant(s, n));
    s.publish_one(Scenario::message(plants.back(), s.name(fmt::format("m{}", n))));
    ++n;
    EXPECT_TRUE(s.wait_all_acked(seconds(20))) << "a message waited for the cache";
    const bool named = eventually(
        [&] {
          return read_file(worker.log_path()).find(refused(command), log_seen) != std::string::npos;
        },
        seconds(10));
    EXPECT_TRUE(named) << read_file(worker.log_path()).substr(log_seen);
    EXPECT_EQ(metric(worker.get("/metrics"), "asset_worker_up{server=\"redis\"}"), 0);
    log_seen = read_file(worker.log_path()).size();
    acl("+" + command);
    std::this_thread::sleep_for(milliseconds(2500));  // the cache's reconnect interval
  }
  // Stored once the command is back: the next new device's links are in Redis (published once
  // the worker has taken the new links' notice, which purges what it cached of the device).
  auto notices = [&] {
    const std::string log = read_file(worker.log_path());
    size_t count = 0;
    for (size_t at = log.find("link caches purged"); at != std::string::npos;
         at = log.find("link caches purged", at + 1)) {
      ++count;
    }
    return count;
  };
  const size_t notices_before = notices();
  plants.push_back(fresh_plant(s, n));
  EXPECT_TRUE(eventually([&] { return notices() > notices_before; }, seconds(10)));
  std::this_thread::sleep_for(milliseconds(500));  // a second notice of the same plant
  s.publish_one(Scenario::message(plants.back(), s.name(fmt::format("m{}", n))));
  ++n;
  ASSERT_TRUE(s.wait_all_acked(seconds(20)));
  EXPECT_TRUE(eventually(
      [&] { return metric(worker.get("/metrics"), "asset_worker_up{server=\"redis\"}") == 1; },
      seconds(10)));
  EXPECT_TRUE(eventually([&] { return link_keys() >= 1; }, seconds(10)))
      << read_file(worker.log_path()).substr(log_seen);
  EXPECT_EQ(worker.stop(SIGTERM), 0);

  // links invalidate: one device's (DEL), every device's (SCAN, then UNLINK of what it found).
  const auto& p = plants.back();
  struct Case {
    std::string command;
    std::vector<std::string> args;
  };
  const std::vector<Case> purges = {
      {"del", {"links", "invalidate", "--org", p.org, "--device", p.device}},
      {"scan", {"links", "invalidate", "--all"}},
      {"unlink", {"links", "invalidate", "--all"}},
  };
  auto tools = env;
  for (const Case& c : purges) {
    SCOPED_TRACE(c.command);
    // A key for the purge to find, whatever the earlier purges did.
    const std::string seed = fmt::format(
        "redis-cli --no-auth-warning -h 127.0.0.1 -p {} --user asset-worker-admin --pass '{}'"
        " SET 'device_asset_links:{}' x >/dev/null",
        d.servers().redis_port(), kRedisAdminPassword, s.name(c.command));
    ASSERT_EQ(std::system(seed.c_str()), 0);
    acl("-" + c.command);
    auto [code, out] = run_to_end(tools, c.args, seconds(20));
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find(refused(c.command)), std::string::npos) << out;
    EXPECT_NE(out.find("Redis did not purge the links"), std::string::npos) << out;
    acl("+" + c.command);
  }
  auto [purged, purge_out] = run_to_end(tools, {"links", "invalidate", "--all"}, seconds(20));
  EXPECT_EQ(purged, 0) << purge_out;

  // At start: the login's PING, and the SELECT of a database other than 0.
  acl("-ping");
  auto [no_ping, ping_out] = run_to_end(env, {"run"}, seconds(30));
  EXPECT_EQ(no_ping, 1) << ping_out;
  EXPECT_NE(ping_out.find(refused("ping")), std::string::npos) << ping_out;
  acl("+ping");
  acl("-select");
  auto db1 = env;
  db1["REDIS_URL_FILE"] =
      d.secret("redis-url-db1", fmt::format("redis://asset-worker:{}@127.0.0.1:{}/1",
                                            kRedisPassword, d.servers().redis_port()));
  auto [no_select, select_out] = run_to_end(db1, {"run"}, seconds(30));
  EXPECT_EQ(no_select, 1) << select_out;
  EXPECT_NE(select_out.find(refused("select")), std::string::npos) << select_out;
  acl("+select");

  // Nothing waited, nothing was lost: every message once.
  for (const auto& q : plants) {
    EXPECT_EQ(s.history({q.pump_a, q.pump_b}), Scenario::document_example_history(q)) << q.org;
  }
  EXPECT_TRUE(s.dead_letters().empty());
}

// An NKey login: the worker holds only the seed file, derives the public key the server knows,
// and signs the server's challenge; a seed the server does not know is refused at once.
TEST(Security, AnNKeyLoginFromASeedFile) {
  const NKeyPair worker_key = make_nkey(NKeyRole::kUser);
  const NKeyPair stranger = make_nkey(NKeyRole::kUser);
  // The worker's block of the shipped permissions alone (nats-server refuses unused variables).
  std::string permissions =
      read_file(std::string(ATW_SOURCE_DIR) + "/deploy/nats/asset-worker-permissions.conf");
  permissions.resize(permissions.find("\nDLQ_READER = {"));
  PrivateServerOptions o;
  o.nats_config = permissions + fmt::format(
                                    "\nauthorization {{\n  users: [\n"
                                    "    {{ nkey: {}, permissions: $ASSET_WORKER }}\n"
                                    "    {{ user: admin, password: \"{}\" }}\n  ]\n}}\n",
                                    worker_key.public_key, kAdminNatsPassword);
  o.nats_client.user = "admin";
  o.nats_client.password = SecretSource(kAdminNatsPassword);
  PrivateServers servers(std::move(o));
  ASSERT_TRUE(servers.ok()) << servers.error();
  Scenario s(servers.urls(), /*default_names=*/true);
  const auto p = s.load_example_plant();
  char tmpl[] = "/tmp/atw-nkey-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_file(dir + "/worker.nk", worker_key.seed + "\n");
  write_file(dir + "/stranger.nk", stranger.seed + "\n");

  auto env = s.worker_env(/*with_redis=*/false);
  env["NATS_NKEY_SEED_FILE"] = dir + "/stranger.nk";
  auto [code, out] = run_to_end(env, {"run"}, seconds(30));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("NATS refused the connection"), std::string::npos) << out;
  EXPECT_EQ(out.find(stranger.seed), std::string::npos) << "the seed was printed";

  env["NATS_NKEY_SEED_FILE"] = dir + "/worker.nk";
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(30))) << read_file(worker.log_path());
  s.publish_one(Scenario::message(p, s.name("m1")));
  ASSERT_TRUE(s.wait_all_acked(seconds(30))) << read_file(worker.log_path());
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}), Scenario::document_example_history(p));
  EXPECT_EQ(s.events().size(), 2u);
  EXPECT_EQ(worker.stop(SIGTERM), 0);
  EXPECT_EQ(read_file(worker.log_path()).find(worker_key.seed), std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Rotations while messages flow (docs/security.md): the NATS credentials file replaced in
// place and its old user revoked (operator mode: JWTs), then the PostgreSQL password changed and
// the worker's sessions ended; nothing lost, nothing doubled.
TEST(Security, RotatingTheNatsCredentialsAndThePostgresPasswordWhileMessagesFlow) {
  char tmpl[] = "/tmp/atw-rotate-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const NKeyPair op = make_nkey(NKeyRole::kOperator);
  const NKeyPair account = make_nkey(NKeyRole::kAccount);
  const NKeyPair system = make_nkey(NKeyRole::kAccount);
  const std::string system_jwt = system_account_jwt(op, system);
  const NKeyPair admin = make_nkey(NKeyRole::kUser);
  const NKeyPair first = make_nkey(NKeyRole::kUser);
  const NKeyPair second = make_nkey(NKeyRole::kUser);
  auto config = [&](const std::map<std::string, int64_t>& revoked) {
    return fmt::format(
        "operator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\n"
        "resolver_preload: {{\n  {}: \"{}\"\n  {}: \"{}\"\n}}\n",
        operator_jwt(op), system.public_key, system.public_key, system_jwt, account.public_key,
        account_jwt(op, account, revoked));
  };
  // The worker's users hold the shipped permissions; the test's own user holds every subject.
  const auto publish = shipped_permissions("ASSET_WORKER", "publish");
  const auto subscribe = shipped_permissions("ASSET_WORKER", "subscribe");
  const std::string creds = dir + "/worker.creds";
  write_file(dir + "/admin.creds", creds_file(user_jwt(account, admin, {}, {}), admin.seed));
  write_file(creds, creds_file(user_jwt(account, first, publish, subscribe), first.seed));
  const std::string first_creds = dir + "/first.creds";
  std::filesystem::copy_file(creds, first_creds);
  // A secret volume's update: the new file is renamed over the old one.
  auto replace_file = [](const std::string& path, const std::string& text) {
    write_file(path + ".new", text);
    std::filesystem::rename(path + ".new", path);
  };

  PrivateServerOptions o;
  o.nats_config = config({});
  o.nats_client.creds_file = dir + "/admin.creds";
  o.pg_hba = "host all all 127.0.0.1/32 scram-sha-256";
  PrivateServers servers(std::move(o));
  ASSERT_TRUE(servers.ok()) << servers.error();
  Sql pg(servers.urls().database);
  apply_roles(pg);
  pg.exec("ALTER ROLE asset_worker PASSWORD 'first-Pg-pw'");
  auto database_url = [&](const std::string& password) {
    return fmt::format("postgresql://asset_worker:{}@127.0.0.1:{}/asset_telemetry?sslmode=disable",
                       password, servers.pg_port());
  };
  const std::string url_file = dir + "/database-url";
  write_file(url_file, database_url("first-Pg-pw"));

  Scenario s(servers.urls(), /*default_names=*/true);
  const auto p = s.load_example_plant();
  auto env = s.worker_env(/*with_redis=*/false);
  env.erase("DATABASE_URL");
  env["DATABASE_URL_FILE"] = url_file;
  env["NATS_CREDS_FILE"] = creds;
  WorkerProcess worker(env);
  ASSERT_TRUE(worker.wait_ready(seconds(30))) << read_file(worker.log_path());

  // Messages flow all along: chunks of 50, each published again until the stream has taken it
  // whole (a chunk stored twice is a redelivery the worker must write once).
  constexpr int kMessages = 3000;
  std::atomic<int> published{0};
  std::thread publisher([&] {
    auto pub = JetStreamPublisher::create(s.nats(), seconds(2));
    ASSERT_TRUE(pub.ok());
    for (int i = 0; i < kMessages; i += 50) {
      std::vector<OutboundMessage> out;
      for (int k = i; k < i + 50; ++k) {
        out.push_back({s.input_subject(), "",
                       Scenario::message(p, s.name(fmt::format("m{}", k)),
                                         format_rfc3339(Timestamp::from_seconds(1769610600 + k)))
                           .dump()});
      }
      while (true) {
        const auto acks = (*pub)->publish(out);
        if (std::all_of(acks.begin(), acks.end(), [](const Status& st) { return st.ok(); })) break;
        std::this_thread::sleep_for(milliseconds(200));
      }
      published.store(i + 50);
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
  auto wait_published = [&](int n) {
    return eventually([&] { return published.load() >= n; }, seconds(60));
  };

  // NATS: the new user's file in place, the old user revoked, the server restarted with it.
  EXPECT_TRUE(wait_published(kMessages / 4));
  replace_file(creds, creds_file(user_jwt(account, second, publish, subscribe), second.seed));
  const int64_t now =
      std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  ASSERT_TRUE(servers.restart_nats(config({{first.public_key, now + 1}})));

  // PostgreSQL: the new password, the file, and the worker's open sessions ended.
  EXPECT_TRUE(wait_published(kMessages / 2));
  pg.exec("ALTER ROLE asset_worker PASSWORD 'second-Pg-pw'");
  replace_file(url_file, database_url("second-Pg-pw"));
  const auto rotated_at = pg.scalar("SELECT now()::text");
  pg.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'asset_worker'");

  publisher.join();
  ASSERT_TRUE(s.wait_all_acked(seconds(120))) << read_file(worker.log_path());
  // Nothing lost, nothing doubled.
  EXPECT_EQ(s.history({p.pump_a, p.pump_b}).size(), 5u * kMessages);
  EXPECT_EQ(s.events().size(), 2u * kMessages);
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.score(p.pump_a), "100");
  // The worker works on under the new credentials: its sessions began after the rotation, and
  // the old NATS user is refused now.
  EXPECT_EQ(pg.scalar("SELECT bool_and(backend_start > $1::timestamptz)::text"
                      " FROM pg_stat_activity WHERE usename = 'asset_worker'",
                      {rotated_at}),
            "true");
  EXPECT_NE(read_file(worker.log_path()).find("nats reconnected"), std::string::npos);
  NatsSettings old_user;
  old_user.servers = {fmt::format("nats://127.0.0.1:{}", servers.nats_port())};
  old_user.security.creds_file = first_creds;
  Logger quiet(LogLevel::kError);
  auto refused = NatsConnection::connect(old_user, quiet, seconds(5));
  EXPECT_FALSE(refused.ok()) << "the revoked user still gets in";
  EXPECT_EQ(worker.stop(SIGTERM), 0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// A TCP connection to the worker's HTTP port (closed at the end of its scope).
class RawClient {
 public:
  explicit RawClient(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  bool connected() const { return connected_; }
  void send_text(std::string_view text) {
    (void)!::send(fd_, text.data(), text.size(), MSG_NOSIGNAL);
  }
  // What the server sends until it closes (or `timeout` passes).
  std::string receive_all(milliseconds timeout = seconds(5)) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[4096];
    while (true) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// The probes answer within their timeout whatever other clients do: hundreds of clients that
// send half a request and wait hold no thread and push no probe out.
TEST(Security, ProbesAnswerWhateverSlowClientsDo) {
  Scenario s;
  auto worker = s.start_worker();
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 400; ++i) {
    slow.push_back(std::make_unique<RawClient>(worker->http_port()));
    ASSERT_TRUE(slow.back()->connected()) << i;
    slow.back()->send_text("GET /metrics HTTP/1.1\r\nHost: x\r\n");  // and never the rest
  }
  milliseconds worst{0};
  for (int i = 0; i < 30; ++i) {
    // More of them all the time, as an attacker would.
    for (int k = 0; k < 20; ++k) {
      slow.push_back(std::make_unique<RawClient>(worker->http_port()));
      slow.back()->send_text("GET /healthz HTTP/1.1\r\n");
    }
    const auto start = SteadyClock::now();
    EXPECT_EQ(worker->http_status("/healthz"), 200) << i;
    EXPECT_EQ(worker->http_status("/readyz"), 200) << i;
    worst = std::max(worst, std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start));
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_LT(worst, milliseconds(1000)) << "the probes' timeout is 2 s";
}

TEST(Security, TheHttpEndpointAnswersItsThreeGetsAndNothingElse) {
  Scenario s;
  auto worker = s.start_worker();
  auto ask = [&](const std::string& request) {
    RawClient c(worker->http_port());
    c.send_text(request);
    const std::string answer = c.receive_all();
    return answer.substr(0, answer.find("\r\n"));
  };
  EXPECT_EQ(ask("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK");
  EXPECT_EQ(ask("HEAD /metrics HTTP/1.0\r\n\r\n"), "HTTP/1.1 200 OK");
  EXPECT_EQ(ask("GET /readyz?verbose=1 HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK");
  EXPECT_EQ(ask("POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
            "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(ask("GET /../etc/passwd HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(ask("nonsense\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ask("GET /metrics HTTP/1.1\r\nX: " + std::string(10000, 'a') + "\r\n\r\n"),
            "HTTP/1.1 431 Request Header Fields Too Large");
  // A request that does not arrive whole within its deadline is dropped, unanswered.
  RawClient trickle(worker->http_port());
  trickle.send_text("GET /healthz HTTP/1.1\r\n");
  std::this_thread::sleep_for(milliseconds(2500));
  trickle.send_text("\r\n");
  EXPECT_EQ(trickle.receive_all(seconds(2)), "");
  // The worker can be bound to loopback alone.
  auto [code, out] =
      run_to_end(s.worker_env(), {"run", "--http-addr", "127.0.0.1:abc"}, seconds(10));
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("HTTP_ADDR's port must be a number"), std::string::npos) << out;
}

// Every secret in every form the worker takes it, and everything the worker and its commands
// print while it fails every way it can: no secret in any of it.
TEST(Security, NoSecretInAnythingTheWorkerPrints) {
  Scenario s;
  const auto p = s.load_example_plant();
  const ServerUrls urls = server_urls();
  const std::vector<std::string> secrets = {"Nats-Url-S3cret", "Pg-Url-S3cret", "Redis-Url-S3cret",
                                            "Nats-Token-S3cret", "Nats-Pw-S3cret"};
  // `url` with `userinfo` in place of its own.
  auto at_port = [](const std::string& url, const std::string& userinfo) {
    const size_t scheme = url.find("://") + 3;
    const size_t at = url.find('@', scheme);
    const size_t host = at == std::string::npos ? scheme : at + 1;
    return url.substr(0, scheme) + userinfo + "@" + url.substr(host);
  };
  std::string printed;
  // The worker: NATS with a login in its URL it cannot use (the shared server takes none, so it
  // says why), PostgreSQL whose URL holds a password (trust ignores it), Redis unreachable with
  // one; a poison message for a dead-letter record; /metrics.
  auto env = s.worker_env();
  env["DATABASE_URL"] = at_port(urls.database, "postgres:Pg-Url-S3cret");
  env["REDIS_URL"] = "redis://worker:Redis-Url-S3cret@127.0.0.1:1/0";
  {
    WorkerProcess worker(env);
    ASSERT_TRUE(worker.wait_ready(seconds(20))) << read_file(worker.log_path());
    // (A payload is kept byte for byte, secrets of its own included: none here.)
    s.publish(std::vector<std::string>{"{not json"});
    s.publish_one(Scenario::message(p, s.name("m1")));
    ASSERT_TRUE(s.wait_all_acked());
    printed += worker.get("/metrics");
    printed += worker.get("/healthz") + worker.get("/readyz");
    EXPECT_EQ(worker.stop(SIGTERM), 0);
    printed += read_file(worker.log_path());
  }
  for (const auto& d : s.stream(s.dlq_stream())) printed += d.data;
  for (const auto& e : s.stream(s.output_stream())) printed += e.data;
  // NATS refusing, or not there: the URL's login, a token, a password.
  const auto nats_cases = std::vector<std::map<std::string, std::string>>{
      {{"NATS_URL", "nats://ops:Nats-Url-S3cret@127.0.0.1:1"}},
      {{"NATS_URL", "nats://Nats-Token-S3cret@127.0.0.1:1"}},
      {{"NATS_TOKEN", "Nats-Token-S3cret"}},
      {{"NATS_USER", "ops"}, {"NATS_PASSWORD", "Nats-Pw-S3cret"}},
  };
  for (const auto& c : nats_cases) {
    auto e = env;
    for (const auto& [k, v] : c) e[k] = v;
    auto [code, out] = run_to_end(e, {"run"}, seconds(7));  // "waiting for NATS" after 5 s
    printed += out;
  }
  {
    auto e = env;
    e["NATS_URL"] = "nats://ops:Nats-Url-S3cret@127.0.0.1:1";
    auto [code, out] = run_to_end(e, {"dlq", "list"}, seconds(12));
    printed += out;
  }
  // PostgreSQL refusing or not there, for every command that reads it.
  for (const std::string& db : {at_port(urls.database, "nobody:Pg-Url-S3cret"),
                                std::string("postgresql://u:Pg-Url-S3cret@127.0.0.1:1/x"),
                                std::string("host=127.0.0.1 port=1 password=Pg-Url-S3cret")}) {
    auto e = env;
    e["DATABASE_URL"] = db;
    for (const std::vector<std::string>& args : {std::vector<std::string>{"migrate"},
                                                 {"maintain"},
                                                 {"formulas", "check"},
                                                 {"links", "invalidate", "--all"},
                                                 {"storage", "history-partitions", "--dry-run"},
                                                 {"run"}}) {
      auto [code, out] = run_to_end(e, args, seconds(6));
      printed += out;
    }
  }
  // Redis refusing or not there; settings refused; --help with every secret in the environment.
  for (const std::string& redis : {std::string("redis://w:Redis-Url-S3cret@127.0.0.1:1/0"),
                                   std::string("rediss://w:Redis-Url-S3cret@127.0.0.1:1/0"),
                                   std::string("redis://w:Redis-Url-S3cret@") +
                                       urls.redis.substr(urls.redis.find("://") + 3)}) {
    auto e = env;
    e["REDIS_URL"] = redis;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"links", "invalidate", "--all"}, {"run"}, {"--help"}}) {
      auto [code, out] = run_to_end(e, args, seconds(6));
      printed += out;
    }
  }
  ASSERT_GT(printed.size(), 5000u) << "the test saw too little to mean anything";
  // Each form was printed, masked: the test saw what it looks for.
  for (const char* masked : {"nats://ops:***@", "nats://***@", "postgresql://postgres:***@",
                             "postgresql://nobody:***@", "password=***", "redis://w:***@"}) {
    EXPECT_NE(printed.find(masked), std::string::npos) << masked;
  }
  EXPECT_NE(printed.find("***"), std::string::npos)
      << "no secret was ever masked: a test that cannot fail";
  for (const auto& secret : secrets) {
    const size_t at = printed.find(secret);
    EXPECT_EQ(at, std::string::npos)
        << secret << " printed: ..."
        << printed.substr(at == std::string::npos ? 0 : (at > 300 ? at - 300 : 0), 600);
  }
}

}  // namespace
}  // namespace atw::testing
