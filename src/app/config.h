#pragma once
// All settings, read and validated in one place (SPEC D15): flag, else environment, else
// default. Nothing else in the worker reads the environment.

#include <CLI/CLI.hpp>
#include <string>

#include "adapters/http/http_server.h"
#include "adapters/nats/nats_connection.h"
#include "common/log.h"
#include "common/secret_source.h"
#include "domain/telemetry.h"

namespace atw {

struct Config {
  // Servers
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string database_url = "postgresql://postgres@127.0.0.1:5432/asset_telemetry";
  std::string redis_url;  // empty: no Redis, the in-process cache serves alone
  // Secrets in files, as Kubernetes and Docker mount them (docs/security.md). A file wins over
  // its setting. DATABASE_URL_FILE and REDIS_URL_FILE are read again at every connect, so that a
  // rotated password is taken without a restart; the others at start.
  std::string database_url_file;
  std::string redis_url_file;
  std::string nats_url_file;
  // NATS logins (one at most) and TLS
  std::string nats_user;
  std::string nats_password;
  std::string nats_password_file;
  std::string nats_token;
  std::string nats_token_file;
  std::string nats_nkey_seed_file;
  std::string nats_creds_file;  // read by nats.c at every connect: rotated in place
  std::string nats_ca_file;
  std::string nats_cert_file;
  std::string nats_key_file;
  std::string nats_tls_server_name;
  // Wire names (SPEC D1, D2)
  std::string input_subject = "telemetry.normalized.v1";
  std::string output_subject = "telemetry.asset.v1";
  std::string state_subject = "telemetry.asset.state.v1";  // health-state changes
  std::string dlq_subject = "telemetry.dlq";
  std::string durable = "asset-processor-group";
  int stream_replicas = 1;
  // How long the streams the worker creates keep a message ("7d", "12h", "90m"; "0": forever).
  // Reprocess reaches back as far as the input stream keeps messages.
  std::string input_retention = "7d";
  std::string output_retention = "7d";
  std::string dlq_retention = "30d";
  int max_deliver = 3;
  int ack_wait_s = 30;
  int max_ack_pending = 20000;
  // Batching
  int batch_size = 2000;
  int live_batch_size = 100;
  int catch_up_batch_size = 250;
  int fetch_wait_ms = 20;
  int db_writers = 2;
  // Validation (SPEC D3)
  int max_payload_bytes = 1 << 20;
  int max_metrics = 1000;
  int max_future_s = 300;
  // Link caches (SPEC D6)
  int link_cache_ttl_s = 300;
  int link_cache_empty_ttl_s = 60;
  int memory_cache_ttl_s = 30;
  int memory_cache_capacity = 50000;
  // Operations
  std::string http_addr = "0.0.0.0:8080";
  std::string worker_id;  // default: the host name
  std::string log_level = "info";
  int shutdown_timeout_s = 20;
  int stall_timeout_s = 60;
  // History partitions: see migrations/004_partitioned_history.sql
  int history_retention_days = 0;  // 0: keep forever
  int partitions_ahead_days = 7;
  int maintain_interval_s = 3600;  // 0: the worker never maintains; `asset-worker maintain` does

  // Filled in by finalize().
  HttpAddress http;                                                          // HTTP_ADDR, parsed
  std::chrono::seconds input_max_age{0}, output_max_age{0}, dlq_max_age{0};  // 0: forever

  ValidationLimits limits() const;
  LogLevel level() const;
  SecretSource database() const { return {database_url, database_url_file}; }
  SecretSource redis() const { return {redis_url, redis_url_file}; }
  // The NATS connection's settings, `name` telling the server who connects.
  NatsSettings nats(std::string name) const;
};

// A retention as the settings write it: a whole number and a unit (s, m, h, d), or 0 (forever).
Result<std::chrono::seconds> parse_retention(std::string_view text);

// Registers every setting on `app` as --flag with its environment variable. Options are
// registered on the top-level app so every subcommand shares them.
void register_options(CLI::App& app, Config& config);

// Checks ranges and fills derived defaults; reads the secret files that are read once and checks
// that the others can be read; an error names the setting, never a secret.
Status finalize(Config& config);

// The NATS settings the environment gives the worker (NATS_URL, its login and TLS), checked as
// finalize() checks them: for the project's own tools, so that they reach a secured NATS as the
// worker does. `name` tells the server who connects.
Result<NatsSettings> nats_from_environment(std::string name);

}  // namespace atw
