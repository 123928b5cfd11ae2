#pragma once
// What integration tests need to drive a real worker against real servers: the servers'
// addresses (from ATW_TEST_* variables that scripts/test.sh sets), SQL and stream access for
// assertions, and the worker binary run as a child process, as an operator runs it.
//
// Every test works in a Scenario of its own: its own subjects, streams, durable consumer,
// tenant, devices and assets, so tests never see each other's data.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/nats_connection.h"
#include "adapters/nats/stream_reader.h"
#include "adapters/postgres/pg_connection.h"
#include "common/log.h"

namespace atw::testing {

struct ServerUrls {
  std::string nats;
  std::string database;
  std::string redis;
  NatsSecurity nats_security;  // how the test itself logs in to NATS (none on the shared one)
};
// Fails the calling test (ADD_FAILURE) when a variable is missing: integration tests must
// never pass by not running.
ServerUrls server_urls();

// A loopback TCP port nobody listens on right now (another process may take it before use).
int free_loopback_port();
// The whole of a file (a worker's log), "" if it cannot be read.
std::string read_file(const std::string& path);
// The value of one sample line of a /metrics text ("name{labels}"), or -1 if there is none.
double metric(const std::string& text, const std::string& series);

using Rows = std::vector<std::vector<std::optional<std::string>>>;

class Sql {
 public:
  explicit Sql(const std::string& url) : db_(url) {}
  Rows query(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
  // With no parameters, `sql` may be several statements separated by semicolons.
  void exec(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
  // The single value of a one-row, one-column query.
  std::optional<std::string> scalar(const std::string& sql,
                                    const std::vector<std::optional<std::string>>& params = {});

 private:
  PgConnection db_;
};

class WorkerProcess {
 public:
  WorkerProcess(std::map<std::string, std::string> env, std::vector<std::string> args = {"run"});
  ~WorkerProcess();
  pid_t pid() const { return pid_; }
  int http_port() const { return http_port_; }
  bool wait_ready(std::chrono::milliseconds timeout);
  std::string get(const std::string& path);  // body of GET http://127.0.0.1:port/path, "" if none
  // HTTP status of GET http://127.0.0.1:port/path; 0 when nothing answers.
  int http_status(const std::string& path);
  // Sends a signal without waiting (SIGSTOP, SIGCONT, ...).
  void signal(int signal);
  // The exit code (128+signal if killed) once the process has ended by itself; nullopt while it
  // runs. Reaps it, so a later stop() returns -1.
  std::optional<int> exited();
  // Sends the signal and waits for the exit; returns the exit code (128+signal if killed).
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int http_port_ = 0;
  std::string log_path_;
};

// Runs the binary with `env` and `args` to its end (SIGKILL after `timeout`): its exit code and
// everything it printed.
std::pair<int, std::string> run_to_end(
    std::map<std::string, std::string> env, std::vector<std::string> args,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

class Scenario {
 public:
  Scenario();  // on the servers named by ATW_TEST_* (server_urls())
  // With `default_names`, the scenario uses the worker's default subjects, streams and durable
  // (a server of the test's own, whose permissions name them) instead of names of its own.
  explicit Scenario(ServerUrls urls, bool default_names = false);
  ~Scenario();

  const std::string& id() const { return id_; }
  std::string name(const std::string& base) const { return base + "-" + id_; }
  const std::string& input_subject() const { return input_subject_; }
  const std::string& output_stream() const { return output_stream_; }
  const std::string& dlq_stream() const { return dlq_stream_; }
  const std::string& input_stream() const { return input_stream_; }
  const std::string& durable() const { return durable_; }
  const std::string& output_subject() const { return output_subject_; }
  const std::string& state_subject() const { return state_subject_; }
  const std::string& state_stream() const { return state_stream_; }
  const std::string& dlq_subject() const { return dlq_subject_; }
  const ServerUrls& urls() const { return urls_; }

  Sql& sql() { return *sql_; }
  NatsConnection& nats() { return *nats_; }

  // The design document's plant, with this scenario's ids: device `dev` of `org` monitoring
  // Pump A (`a`) and Pump B (`b`, port 1) exactly as in the document's example.
  struct Plant {
    std::string org, device, pump_a, pump_b, type;
  };
  Plant load_example_plant(const std::string& org_base = "org",
                           const std::string& device_base = "dev");
  // The same plant with ids of the caller's choosing (assets: `assets_have_tenant` says whether
  // the table has the worker's tenant_id column, as a table the worker made does).
  void load_plant(const Plant& p, bool assets_have_tenant = true);

  // "entity_id metric_key=value YYYY-MM-DDTHH:MM:SS device quality entity_type" for every
  // history row of `assets`, sorted.
  std::vector<std::string> history(const std::vector<std::string>& assets);
  // The rows history() gives after the design document's example message (message()) for `p`.
  static std::vector<std::string> document_example_history(const Plant& p);
  // assets.health_score of `asset` as text (nullopt for NULL).
  std::optional<std::string> score(const std::string& asset);

  // The environment a worker of this scenario runs with; `with_redis` adds REDIS_URL.
  std::map<std::string, std::string> worker_env(bool with_redis = true) const;
  std::unique_ptr<WorkerProcess> start_worker(bool with_redis = true);

  // The document's example message, for this plant, with the given id, timestamp and metrics.
  static nlohmann::json message(const Plant& p, const std::string& message_id,
                                const std::string& timestamp = "2026-01-28T14:30:00Z",
                                nlohmann::json metrics = nullptr);
  // Publishes raw payloads to the input subject (no Nats-Msg-Id, so a repeat is stored twice).
  void publish(const std::vector<std::string>& payloads);
  void publish_one(const nlohmann::json& message) {
    publish(std::vector<std::string>{message.dump()});
  }

  std::vector<StoredMessage> stream(const std::string& stream_name);
  std::vector<nlohmann::json> events();                             // the output stream's payloads
  std::vector<nlohmann::json> events_of(const std::string& asset);  // those of one asset
  std::vector<nlohmann::json> state_changes();                      // the state stream's payloads
  std::vector<nlohmann::json> dead_letters();                       // the DLQ stream's payloads
  // Consumer state: {"num_ack_pending", "num_pending", "ack_floor_stream_seq", ...}.
  nlohmann::json consumer_info();
  // Waits until the consumer has acked everything published (ack floor = last input sequence
  // and nothing pending); false on timeout.
  bool wait_all_acked(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits until `stream` holds at least `n` messages.
  bool wait_stream_count(const std::string& stream, size_t n,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

 private:
  std::string id_;
  std::string input_subject_, output_subject_, state_subject_, dlq_subject_;
  std::string input_stream_, output_stream_, state_stream_, dlq_stream_, durable_;
  ServerUrls urls_;
  Logger log_{LogLevel::kError};
  std::unique_ptr<Sql> sql_;
  std::unique_ptr<NatsConnection> nats_;
  std::unique_ptr<JetStreamPublisher> publisher_;
};

}  // namespace atw::testing
