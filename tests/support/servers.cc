#include "support/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "support/exec_image.h"

#ifndef ATW_WORKER_BINARY
#error "ATW_WORKER_BINARY must name the asset-worker binary under test"
#endif

namespace atw::testing {

namespace {

std::string env_or_fail(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    ADD_FAILURE() << name << " is not set: run the tests through scripts/test.sh, which starts "
                  << "the servers and sets it";
    return {};
  }
  return v;
}

std::string random_id() {
  std::random_device rd;
  std::mt19937_64 gen(rd() ^ (static_cast<uint64_t>(getpid()) << 32));
  return fmt::format("{:010x}", gen() & 0xFFFFFFFFFFULL);
}

}  // namespace

int free_loopback_port() {
  // Bind to port 0, read the port the kernel chose, close. Another process could take it in
  // between; the worker would then fail to start and the test would say so.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

ServerUrls server_urls() {
  return ServerUrls{env_or_fail("ATW_TEST_NATS_URL"),
                    env_or_fail("ATW_TEST_DATABASE_URL"),
                    env_or_fail("ATW_TEST_REDIS_URL"),
                    {}};
}

Rows Sql::query(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  auto r = db_.exec("test", sql.c_str(), params);
  if (!r.ok()) {
    ADD_FAILURE() << "SQL failed: " << r.status().to_string() << "\n" << sql;
    return {};
  }
  Rows rows;
  PGresult* res = r->get();
  for (int i = 0; i < PQntuples(res); ++i) {
    std::vector<std::optional<std::string>> row;
    for (int j = 0; j < PQnfields(res); ++j) {
      if (PQgetisnull(res, i, j))
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(PQgetvalue(res, i, j));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void Sql::exec(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  if (!params.empty()) {
    (void)query(sql, params);
    return;
  }
  // Without parameters, a script of several statements, in one request.
  auto r = db_.run_script("test", sql);
  if (!r.ok()) ADD_FAILURE() << "SQL failed: " << r.status().to_string() << "\n" << sql;
}

std::optional<std::string> Sql::scalar(const std::string& sql,
                                       const std::vector<std::optional<std::string>>& params) {
  auto rows = query(sql, params);
  if (rows.size() != 1 || rows[0].size() != 1) {
    ADD_FAILURE() << "expected one value from: " << sql << " (got " << rows.size() << " rows)";
    return std::nullopt;
  }
  return rows[0][0];
}

WorkerProcess::WorkerProcess(std::map<std::string, std::string> env,
                             std::vector<std::string> args) {
  http_port_ = free_loopback_port();
  env["HTTP_ADDR"] = fmt::format("127.0.0.1:{}", http_port_);
  log_path_ = fmt::format("/tmp/atw-worker-{}-{}.log", getpid(), http_port_);
  std::vector<std::string> argv = {ATW_WORKER_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const ExecImage image(std::move(argv), env);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // A test that crashes or times out must not leave its worker running.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    image.exec();
    _exit(127);
  }
}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0) stop(SIGKILL, std::chrono::seconds(5));
}

std::string WorkerProcess::get(const std::string& path) {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_connection_timeout(1);
  client.set_read_timeout(2);
  auto res = client.Get(path.c_str());
  if (!res || res->status != 200) return {};
  return res->body;
}

int WorkerProcess::http_status(const std::string& path) {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_connection_timeout(1);
  client.set_read_timeout(2);
  auto res = client.Get(path.c_str());
  return res ? res->status : 0;
}

void WorkerProcess::signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

std::optional<int> WorkerProcess::exited() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool WorkerProcess::wait_ready(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!get("/readyz").empty()) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int WorkerProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

Scenario::Scenario() : Scenario(server_urls()) {}

Scenario::Scenario(ServerUrls urls, bool default_names) : id_(random_id()), urls_(std::move(urls)) {
  if (default_names) {
    input_subject_ = "telemetry.normalized.v1";
    output_subject_ = "telemetry.asset.v1";
    state_subject_ = "telemetry.asset.state.v1";
    dlq_subject_ = "telemetry.dlq";
    input_stream_ = "TELEMETRY_NORMALIZED";
    output_stream_ = "TELEMETRY_ASSET";
    state_stream_ = "TELEMETRY_ASSET_STATE";
    dlq_stream_ = "TELEMETRY_DLQ";
    durable_ = "asset-processor-group";
  } else {
    input_subject_ = fmt::format("t{}.telemetry.normalized.v1", id_);
    output_subject_ = fmt::format("t{}.telemetry.asset.v1", id_);
    state_subject_ = fmt::format("t{}.telemetry.asset.state.v1", id_);
    dlq_subject_ = fmt::format("t{}.telemetry.dlq", id_);
    input_stream_ = fmt::format("IN_{}", id_);
    output_stream_ = fmt::format("OUT_{}", id_);
    state_stream_ = fmt::format("STATE_{}", id_);
    dlq_stream_ = fmt::format("DLQ_{}", id_);
    durable_ = fmt::format("dur-{}", id_);
  }
  sql_ = std::make_unique<Sql>(urls_.database);

  NatsSettings settings;
  settings.servers = split_servers(urls_.nats);
  settings.security = urls_.nats_security;
  auto nc = NatsConnection::connect(settings, log_, std::chrono::seconds(10));
  if (!nc.ok()) {
    ADD_FAILURE() << "cannot connect to NATS: " << nc.status().to_string();
    return;
  }
  nats_ = std::move(nc).value();
  for (const auto& [stream, subject] :
       {std::pair{input_stream_, input_subject_}, std::pair{output_stream_, output_subject_},
        std::pair{state_stream_, state_subject_}, std::pair{dlq_stream_, dlq_subject_}}) {
    auto r = ensure_stream(*nats_, {stream, subject}, log_);
    if (!r.ok())
      ADD_FAILURE() << "cannot create stream " << stream << ": " << r.status().to_string();
  }
  auto pub = JetStreamPublisher::create(*nats_, std::chrono::seconds(10));
  if (pub.ok()) publisher_ = std::move(pub).value();
}

Scenario::~Scenario() {
  if (!nats_) return;
  // The worker's advisory stream for this scenario's consumer goes too (see run_worker.cc).
  const std::string advisories = input_stream_ + "_" + durable_ + "_MAX_DELIVERIES";
  for (const auto& s : {input_stream_, output_stream_, state_stream_, dlq_stream_, advisories}) {
    (void)nats_->api("$JS.API.STREAM.DELETE." + s, "");
  }
}

Scenario::Plant Scenario::load_example_plant(const std::string& org_base,
                                             const std::string& device_base) {
  Plant p{name(org_base), name(device_base), name(org_base + "-pump-a"), name(org_base + "-pump-b"),
          name("type-pump")};
  load_plant(p);
  return p;
}

void Scenario::load_plant(const Plant& p, bool assets_have_tenant) {
  sql_->exec(
      "INSERT INTO asset_types (id, name, telemetry_schema) VALUES ($1, 'Pump', $2::jsonb)"
      " ON CONFLICT (id) DO NOTHING",
      {p.type,
       R"({"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current", "unit": "watts"}]})"});
  if (assets_have_tenant) {
    sql_->exec(
        "INSERT INTO assets (id, tenant_id, name, asset_type_id) VALUES ($1, $3, 'Pump A', $4),"
        " ($2, $3, 'Pump B', $4)",
        {p.pump_a, p.pump_b, p.org, p.type});
  } else {
    sql_->exec(
        "INSERT INTO assets (id, name, asset_type_id) VALUES ($1, 'Pump A', $3),"
        " ($2, 'Pump B', $3)",
        {p.pump_a, p.pump_b, p.type});
  }
  sql_->exec(
      "INSERT INTO entity_edges (id, tenant_id, source_entity_id, source_entity_type,"
      " target_entity_id, target_entity_type, relationship_type, metadata) VALUES"
      " ($1 || '-1', $2, $3, 'Device', $4, 'Asset', 'MONITORED_BY',"
      "  '{\"role\": \"primary\", \"metrics_mapping\": {\"device.voltage\": \"asset.power_input\","
      " \"device.current\": \"asset.power_current\", \"device.temperature\":"
      " \"asset.motor_temperature\"}}'),"
      " ($1 || '-2', $2, $3, 'Device', $5, 'Asset', 'MONITORED_BY',"
      "  '{\"port\": 1, \"role\": \"secondary\", \"metrics_mapping\": {\"device.temperature\":"
      " \"asset.motor_temperature\"}}')",
      {name(p.org + "-" + p.device + "-link"), p.org, p.device, p.pump_a, p.pump_b});
}

std::vector<std::string> Scenario::history(const std::vector<std::string>& assets) {
  std::vector<std::string> out;
  for (const auto& row : sql_->query(
           "SELECT entity_id, metric_key, value::text, source_device_id, quality, entity_type,"
           " to_char(\"timestamp\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
           " FROM telemetry_history WHERE entity_id = ANY($1::text[])"
           " ORDER BY entity_id, metric_key, \"timestamp\"",
           {pg_text_array(std::vector<std::string_view>(assets.begin(), assets.end()))})) {
    out.push_back(*row[0] + " " + *row[1] + "=" + *row[2] + " " + *row[6] + " " + *row[3] + " " +
                  *row[4] + " " + *row[5]);
  }
  return out;
}

std::vector<std::string> Scenario::document_example_history(const Plant& p) {
  const std::string at = " 2026-01-28T14:30:00 " + p.device + " good Asset";
  return {p.pump_a + " motor_temperature=25.5" + at, p.pump_a + " power_consumption=30.75" + at,
          p.pump_a + " power_current=2.5" + at, p.pump_a + " power_input=12.3" + at,
          p.pump_b + " motor_temperature=25.5" + at};
}

std::optional<std::string> Scenario::score(const std::string& asset) {
  return sql_->scalar("SELECT health_score::text FROM assets WHERE id = $1", {asset});
}

std::map<std::string, std::string> Scenario::worker_env(bool with_redis) const {
  std::map<std::string, std::string> env = {
      {"NATS_URL", urls_.nats},
      {"DATABASE_URL", urls_.database},
      {"INPUT_SUBJECT", input_subject_},
      {"OUTPUT_SUBJECT", output_subject_},
      {"STATE_SUBJECT", state_subject_},
      {"DLQ_SUBJECT", dlq_subject_},
      {"NATS_DURABLE", durable_},
      {"WORKER_ID", "test-" + id_},
      {"FETCH_WAIT_MS", "20"},
      {"LOG_LEVEL", "debug"},
      {"REDIS_URL", with_redis ? urls_.redis : ""},
  };
  return env;
}

std::unique_ptr<WorkerProcess> Scenario::start_worker(bool with_redis) {
  auto w = std::make_unique<WorkerProcess>(worker_env(with_redis));
  if (!w->wait_ready(std::chrono::seconds(20))) {
    ADD_FAILURE() << "worker did not become ready; its log: " << w->log_path();
  }
  return w;
}

std::pair<int, std::string> run_to_end(std::map<std::string, std::string> env,
                                       std::vector<std::string> args,
                                       std::chrono::milliseconds timeout) {
  WorkerProcess p(std::move(env), std::move(args));
  std::optional<int> code;
  for (auto end = std::chrono::steady_clock::now() + timeout;
       !code && std::chrono::steady_clock::now() < end;) {
    code = p.exited();
    if (!code) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!code) code = p.stop(SIGKILL);
  return {*code, read_file(p.log_path())};
}

nlohmann::json Scenario::message(const Plant& p, const std::string& message_id,
                                 const std::string& timestamp, nlohmann::json metrics) {
  if (metrics.is_null()) {
    metrics = {{"temperature", 25.5}, {"voltage", 12.3}, {"current", 2.5}, {"pressure", 101.3}};
  }
  return {{"messageId", message_id},
          {"deviceId", p.device},
          {"organizationId", p.org},
          {"timestamp", timestamp},
          {"receivedAt", "2026-01-28T14:30:01.234Z"},
          {"metrics", metrics},
          {"deviceMetadata",
           {{"deviceType", "RTU-4000"}, {"serialNumber", "SN-001"}, {"firmwareVersion", "2.3.1"}}}};
}

void Scenario::publish(const std::vector<std::string>& payloads) {
  std::vector<OutboundMessage> out;
  for (const auto& p : payloads) out.push_back({input_subject_, "", p});
  const auto statuses = publisher_->publish(out);
  for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s.to_string();
}

std::vector<StoredMessage> Scenario::stream(const std::string& stream_name) {
  auto r = read_stream(*nats_, stream_name, 1, 1'000'000);
  if (!r.ok()) {
    ADD_FAILURE() << "cannot read " << stream_name << ": " << r.status().to_string();
    return {};
  }
  return std::move(r).value();
}

std::vector<nlohmann::json> Scenario::events_of(const std::string& asset) {
  std::vector<nlohmann::json> out;
  for (auto& e : events()) {
    if (e["assetId"] == asset) out.push_back(std::move(e));
  }
  return out;
}

std::vector<nlohmann::json> Scenario::events() {
  std::vector<nlohmann::json> out;
  for (const auto& m : stream(output_stream_)) out.push_back(nlohmann::json::parse(m.data));
  return out;
}

std::vector<nlohmann::json> Scenario::state_changes() {
  std::vector<nlohmann::json> out;
  for (const auto& m : stream(state_stream_)) out.push_back(nlohmann::json::parse(m.data));
  return out;
}

std::vector<nlohmann::json> Scenario::dead_letters() {
  std::vector<nlohmann::json> out;
  for (const auto& m : stream(dlq_stream_)) out.push_back(nlohmann::json::parse(m.data));
  return out;
}

nlohmann::json Scenario::consumer_info() {
  auto r = nats_->api(fmt::format("$JS.API.CONSUMER.INFO.{}.{}", input_stream_, durable_), "");
  if (!r.ok()) return nlohmann::json::object();
  return nlohmann::json::parse(*r);
}

bool Scenario::wait_all_acked(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto state = stream_state(*nats_, input_stream_);
    auto info = consumer_info();
    if (state.ok() && info.contains("ack_floor") &&
        info["ack_floor"].value("stream_seq", uint64_t{0}) >= state->last_seq &&
        info.value("num_ack_pending", 1) == 0 && info.value("num_pending", 1) == 0) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool Scenario::wait_stream_count(const std::string& stream_name, size_t n,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto state = stream_state(*nats_, stream_name);
    if (state.ok() && state->messages >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace atw::testing
