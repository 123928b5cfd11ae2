#include "app/config.h"

#include <fmt/format.h>
#include <unistd.h>

#include "adapters/redis/redis_link_cache.h"
#include "app/commands.h"
#include "common/redact.h"

namespace atw {

ValidationLimits Config::limits() const {
  ValidationLimits l;
  l.max_payload_bytes = static_cast<size_t>(max_payload_bytes);
  l.max_metrics = static_cast<size_t>(max_metrics);
  l.max_future_micros = int64_t{max_future_s} * 1'000'000;
  return l;
}

LogLevel Config::level() const {
  if (log_level == "debug") return LogLevel::kDebug;
  if (log_level == "warn") return LogLevel::kWarn;
  if (log_level == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

void register_options(CLI::App& app, Config& c) {
  auto add = [&app](const char* flag, auto& value, const char* env, const char* help) {
    app.add_option(flag, value, help)->envname(env)->capture_default_str()->group("Settings");
  };
  add("--nats-url", c.nats_url, "NATS_URL",
      "NATS servers, comma-separated (nats:// or tls://; a user:password@ or token@ in a URL is a"
      " login)");
  add("--nats-url-file", c.nats_url_file, "NATS_URL_FILE", "A file holding NATS_URL");
  add("--nats-user", c.nats_user, "NATS_USER", "NATS user (with NATS_PASSWORD)");
  add("--nats-password", c.nats_password, "NATS_PASSWORD",
      "NATS user's password (prefer NATS_PASSWORD_FILE)");
  add("--nats-password-file", c.nats_password_file, "NATS_PASSWORD_FILE",
      "A file holding the NATS user's password");
  add("--nats-token", c.nats_token, "NATS_TOKEN", "NATS token (prefer NATS_TOKEN_FILE)");
  add("--nats-token-file", c.nats_token_file, "NATS_TOKEN_FILE", "A file holding the NATS token");
  add("--nats-nkey-seed-file", c.nats_nkey_seed_file, "NATS_NKEY_SEED_FILE",
      "A file holding the NATS user's NKey seed (SU...)");
  add("--nats-creds-file", c.nats_creds_file, "NATS_CREDS_FILE",
      "NATS credentials file (user JWT and seed, operator mode); read at every connect");
  add("--nats-ca-file", c.nats_ca_file, "NATS_CA_FILE",
      "TLS: the CA certificate(s) the NATS servers' certificates are checked against");
  add("--nats-cert-file", c.nats_cert_file, "NATS_CERT_FILE",
      "TLS: this client's certificate (with NATS_KEY_FILE)");
  add("--nats-key-file", c.nats_key_file, "NATS_KEY_FILE", "TLS: this client's private key");
  add("--nats-tls-server-name", c.nats_tls_server_name, "NATS_TLS_SERVER_NAME",
      "TLS: the name the NATS servers' certificates must hold (default: the URL's host)");
  add("--database-url", c.database_url, "DATABASE_URL",
      "PostgreSQL connection URI (libpq: sslmode=verify-full&sslrootcert=... for TLS)");
  add("--database-url-file", c.database_url_file, "DATABASE_URL_FILE",
      "A file holding DATABASE_URL; read again at every connect");
  add("--redis-url", c.redis_url, "REDIS_URL",
      "Redis URI (redis://[user:password@]host:port/db); empty: in-process cache only");
  add("--redis-url-file", c.redis_url_file, "REDIS_URL_FILE",
      "A file holding REDIS_URL; read again at every connect");
  add("--input-subject", c.input_subject, "INPUT_SUBJECT",
      "Subject of normalized device telemetry");
  add("--output-subject", c.output_subject, "OUTPUT_SUBJECT", "Subject of asset telemetry events");
  add("--state-subject", c.state_subject, "STATE_SUBJECT",
      "Subject of asset health-state changes (stream TELEMETRY_ASSET_STATE where none captures "
      "it)");
  add("--dlq-subject", c.dlq_subject, "DLQ_SUBJECT", "Subject of dead letters");
  add("--durable", c.durable, "NATS_DURABLE", "Durable consumer shared by all replicas");
  add("--stream-replicas", c.stream_replicas, "STREAM_REPLICAS",
      "Replicas of the streams the worker creates (1 or 3)");
  add("--input-retention", c.input_retention, "INPUT_RETENTION",
      "How long the input stream the worker creates keeps messages (7d, 12h, 90m; 0: forever); "
      "reprocess reaches back this far");
  add("--output-retention", c.output_retention, "OUTPUT_RETENTION",
      "How long the output stream the worker creates keeps events (0: forever)");
  add("--dlq-retention", c.dlq_retention, "DLQ_RETENTION",
      "How long the DLQ stream the worker creates keeps dead letters (0: forever)");
  add("--max-deliver", c.max_deliver, "MAX_DELIVER",
      "Deliveries before a message is dead-lettered");
  add("--ack-wait", c.ack_wait_s, "ACK_WAIT_S",
      "Seconds before an unacked delivery is redelivered");
  add("--max-ack-pending", c.max_ack_pending, "MAX_ACK_PENDING",
      "Consumer-wide limit of messages in flight (all replicas)");
  add("--batch-size", c.batch_size, "BATCH_SIZE",
      "The largest batch, taken over a deep backlog (five full batches or more)");
  add("--live-batch-size", c.live_batch_size, "LIVE_BATCH_SIZE",
      "The largest batch while the worker keeps up");
  add("--catch-up-batch-size", c.catch_up_batch_size, "CATCH_UP_BATCH_SIZE",
      "The largest batch over a shallow backlog (less than five full batches)");
  add("--fetch-wait-ms", c.fetch_wait_ms, "FETCH_WAIT_MS",
      "Longest wait for a batch to fill before processing what came");
  add("--db-writers", c.db_writers, "DB_WRITERS",
      "PostgreSQL connections writing batches in parallel");
  add("--max-payload-bytes", c.max_payload_bytes, "MAX_PAYLOAD_BYTES", "Largest accepted message");
  add("--max-metrics", c.max_metrics, "MAX_METRICS", "Most metrics accepted in one message");
  add("--max-future-s", c.max_future_s, "MAX_FUTURE_S",
      "How far in the future a message timestamp may be, in seconds");
  add("--link-cache-ttl", c.link_cache_ttl_s, "LINK_CACHE_TTL_S", "Redis TTL of a device's links");
  add("--link-cache-empty-ttl", c.link_cache_empty_ttl_s, "LINK_CACHE_EMPTY_TTL_S",
      "Redis TTL of a device with no links");
  add("--memory-cache-ttl", c.memory_cache_ttl_s, "MEMORY_CACHE_TTL_S",
      "In-process TTL of a device's links");
  add("--memory-cache-capacity", c.memory_cache_capacity, "MEMORY_CACHE_CAPACITY",
      "Devices kept in the in-process cache");
  add("--http-addr", c.http_addr, "HTTP_ADDR", "Address of /metrics, /healthz, /readyz");
  add("--worker-id", c.worker_id, "WORKER_ID", "Name of this replica (default: host name)");
  add("--log-level", c.log_level, "LOG_LEVEL", "debug, info, warn or error");
  add("--shutdown-timeout", c.shutdown_timeout_s, "SHUTDOWN_TIMEOUT_S",
      "Longest drain on SIGTERM, in seconds");
  add("--stall-timeout", c.stall_timeout_s, "STALL_TIMEOUT_S",
      "/healthz fails once the pipeline has made no step for this many seconds");
  add("--history-retention-days", c.history_retention_days, "HISTORY_RETENTION_DAYS",
      "Days of telemetry_history kept: older daily partitions are dropped; 0 keeps all");
  add("--partitions-ahead-days", c.partitions_ahead_days, "PARTITIONS_AHEAD_DAYS",
      "Daily partitions of telemetry_history made ahead of today (1..90)");
  add("--maintain-interval-s", c.maintain_interval_s, "MAINTAIN_INTERVAL_S",
      "Seconds between the worker's history maintenance runs; 0: only `asset-worker maintain`");
}

namespace {

Status bad_setting(const std::string& what) {
  return Status::permanent("invalid_config", what);
}

// Whether a NATS URL carries a login of its own (user:password@ or token@).
bool url_has_login(std::string_view url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const size_t end = url.find_first_of("/?#", start);
  return url.substr(start, end == std::string_view::npos ? end : end - start).find('@') !=
         std::string_view::npos;
}

// NATS_URL_FILE, the NATS logins and TLS files.
Status finalize_nats(Config& c) {
  if (!c.nats_url_file.empty()) {
    auto url = read_secret_file("NATS_URL_FILE", c.nats_url_file);
    if (!url.ok()) return url.status();
    c.nats_url = *url;
  }
  for (const auto& [setting, file] : {std::pair{"NATS_PASSWORD_FILE", &c.nats_password_file},
                                      std::pair{"NATS_TOKEN_FILE", &c.nats_token_file},
                                      std::pair{"NATS_NKEY_SEED_FILE", &c.nats_nkey_seed_file},
                                      std::pair{"NATS_CREDS_FILE", &c.nats_creds_file}}) {
    if (file->empty()) continue;
    if (auto readable = read_secret_file(setting, *file); !readable.ok()) {
      return readable.status();
    }
  }
  const bool password = !c.nats_password.empty() || !c.nats_password_file.empty();
  if (password && c.nats_user.empty()) return bad_setting("NATS_PASSWORD needs NATS_USER");
  bool url_login = false;
  for (const auto& server : split_servers(c.nats_url)) url_login |= url_has_login(server);
  const int logins = int{url_login} + int{!c.nats_user.empty()} +
                     int{!c.nats_token.empty() || !c.nats_token_file.empty()} +
                     int{!c.nats_nkey_seed_file.empty()} + int{!c.nats_creds_file.empty()};
  if (logins > 1) {
    return bad_setting(
        "choose one NATS login: a URL's user@, NATS_USER, NATS_TOKEN, NATS_NKEY_SEED_FILE or"
        " NATS_CREDS_FILE");
  }
  if (c.nats_cert_file.empty() != c.nats_key_file.empty()) {
    return bad_setting("NATS_CERT_FILE and NATS_KEY_FILE go together");
  }
  return Status();
}

// The secret files, the NATS settings, and REDIS_URL's form.
Status finalize_secrets(Config& c) {
  if (auto st = finalize_nats(c); !st.ok()) return st;
  for (const auto& [setting, file] : {std::pair{"DATABASE_URL_FILE", &c.database_url_file},
                                      std::pair{"REDIS_URL_FILE", &c.redis_url_file}}) {
    if (file->empty()) continue;
    if (auto readable = read_secret_file(setting, *file); !readable.ok()) {
      return readable.status();
    }
  }
  if (!c.redis_url_file.empty()) {
    c.redis_url = *read_secret_file("REDIS_URL_FILE", c.redis_url_file);
  }
  if (!c.redis_url.empty()) {
    if (auto redis = parse_redis_url(c.redis_url); !redis.ok()) return redis.status();
  }
  return Status();
}

}  // namespace

void print_error(std::string_view text) {
  fmt::print(stderr, "asset-worker: {}\n", redact_secrets(text));
}

NatsSettings Config::nats(std::string name) const {
  NatsSettings s;
  s.servers = split_servers(nats_url);
  s.name = std::move(name);
  s.security.user = nats_user;
  s.security.password = SecretSource(nats_password, nats_password_file);
  s.security.token = SecretSource(nats_token, nats_token_file);
  s.security.nkey_seed_file = nats_nkey_seed_file;
  s.security.creds_file = nats_creds_file;
  s.security.ca_file = nats_ca_file;
  s.security.cert_file = nats_cert_file;
  s.security.key_file = nats_key_file;
  s.security.tls_server_name = nats_tls_server_name;
  return s;
}

Result<NatsSettings> nats_from_environment(std::string name) {
  Config c;
  CLI::App app;
  register_options(app, c);
  app.allow_extras();
  try {
    app.parse(std::vector<std::string>{});
  } catch (const CLI::ParseError& e) {
    return Status::permanent("invalid_config", e.what());
  }
  if (auto st = finalize_nats(c); !st.ok()) return st;
  return c.nats(std::move(name));
}

Result<std::chrono::seconds> parse_retention(std::string_view text) {
  uint64_t n = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && n < 1'000'000'000; ++i) {
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  const std::string_view unit = text.substr(i);
  const uint64_t scale = unit == "s"   ? 1
                         : unit == "m" ? 60
                         : unit == "h" ? 3600
                         : unit == "d" ? 86400
                                       : 0;
  if (i == 0 || n >= 1'000'000'000 || (scale == 0 && !(n == 0 && unit.empty()))) {
    return Status::permanent("invalid_config",
                             fmt::format("'{}' is not a retention: a whole number "
                                         "and s, m, h or d (7d), or 0",
                                         text));
  }
  if (n * scale > uint64_t{100} * 365 * 86400) {
    return Status::permanent("invalid_config", fmt::format("'{}' is over 100 years", text));
  }
  return std::chrono::seconds(n * scale);
}

Status finalize(Config& c) {
  auto bad = [](const std::string& what) { return Status::permanent("invalid_config", what); };
  for (const auto& [setting, text, age] :
       {std::tuple{"INPUT_RETENTION", &c.input_retention, &c.input_max_age},
        std::tuple{"OUTPUT_RETENTION", &c.output_retention, &c.output_max_age},
        std::tuple{"DLQ_RETENTION", &c.dlq_retention, &c.dlq_max_age}}) {
    auto parsed = parse_retention(*text);
    if (!parsed.ok()) return bad(fmt::format("{}: {}", setting, parsed.status().message()));
    *age = *parsed;
  }
  for (const std::string* subject : {&c.output_subject, &c.state_subject, &c.dlq_subject}) {
    // What the worker publishes must never come back to it as input.
    if (subject->empty() || *subject == c.input_subject) {
      return bad(
          "--output-subject, --state-subject and --dlq-subject must be set and differ"
          " from --input-subject");
    }
  }
  if (c.batch_size < 1 || c.batch_size > 10000) return bad("--batch-size must be 1..10000");
  if (c.live_batch_size < 1 || c.live_batch_size > 10000) {
    return bad("--live-batch-size must be 1..10000");
  }
  if (c.catch_up_batch_size < 1 || c.catch_up_batch_size > 10000) {
    return bad("--catch-up-batch-size must be 1..10000");
  }
  if (c.fetch_wait_ms < 1 || c.fetch_wait_ms > 60000)
    return bad("--fetch-wait-ms must be 1..60000");
  if (c.db_writers < 1 || c.db_writers > 16) return bad("--db-writers must be 1..16");
  if (c.max_deliver < 1) return bad("--max-deliver must be at least 1");
  if (c.ack_wait_s < 5) return bad("--ack-wait must be at least 5 s");
  if (c.max_ack_pending < c.batch_size * 2) {
    return bad("--max-ack-pending must be at least twice --batch-size");
  }
  if (c.stall_timeout_s < 5) return bad("--stall-timeout must be at least 5 s");
  if (c.stream_replicas < 1 || c.stream_replicas > 5) return bad("--stream-replicas must be 1..5");
  if (c.max_payload_bytes < 1024) return bad("--max-payload-bytes must be at least 1024");
  if (c.max_metrics < 1) return bad("--max-metrics must be at least 1");
  if (c.max_future_s < 0) return bad("--max-future-s must not be negative");
  if (c.link_cache_ttl_s < 1 || c.link_cache_empty_ttl_s < 1 || c.memory_cache_ttl_s < 1) {
    return bad("cache TTLs must be at least 1 s");
  }
  if (c.memory_cache_capacity < 1) return bad("--memory-cache-capacity must be at least 1");
  if (c.history_retention_days < 0 || c.history_retention_days > 36500) {
    return bad("--history-retention-days must be 0 (keep all) or 1..36500");
  }
  if (c.partitions_ahead_days < 1 || c.partitions_ahead_days > 90) {
    return bad("--partitions-ahead-days must be 1..90");
  }
  if (c.maintain_interval_s < 0 || c.maintain_interval_s > 604800) {
    return bad("--maintain-interval-s must be 0 (never) or 1..604800");
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    return bad("--log-level must be debug, info, warn or error");
  }
  if (Status st = finalize_secrets(c); !st.ok()) return st;
  auto http = parse_http_address(c.http_addr);
  if (!http.ok()) return http.status();
  c.http = *http;
  if (c.worker_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    c.worker_id = host[0] ? host : "asset-worker";
  }
  return Status();
}

}  // namespace atw
