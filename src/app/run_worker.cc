#include <chrono>
#include <thread>

#include "adapters/http/http_server.h"
#include "adapters/http/prometheus_text.h"
#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/nats_connection.h"
#include "adapters/postgres/pg_link_store.h"
#include "adapters/postgres/pg_writer_pool.h"
#include "adapters/redis/redis_link_cache.h"
#include "app/commands.h"
#include "app/system_clock.h"
#include "pipeline/worker.h"

namespace atw {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

void sleep_for(milliseconds d) {
  std::this_thread::sleep_for(d);
}

// Connects to NATS and sets up the streams and the consumer, retrying until it works or the
// worker is told to stop: a worker started before its servers waits for them.
struct NatsSetup {
  std::unique_ptr<NatsConnection> connection;
  std::string input_stream;
};

Result<NatsSetup> connect_nats(const Config& c, Logger& log, const std::atomic<bool>& stop) {
  NatsSettings settings;
  settings.servers = split_servers(c.nats_url);
  settings.name = "asset-worker " + c.worker_id;
  Status last;
  while (!stop.load()) {
    auto conn = NatsConnection::connect(settings, log, seconds(5));
    if (!conn.ok()) {
      last = conn.status();
      log.warn("waiting for NATS", {{"error", last.message()}});
      continue;
    }
    auto input = ensure_stream(
        **conn, {"TELEMETRY_NORMALIZED", c.input_subject, seconds(600), c.stream_replicas}, log);
    auto output =
        input.ok()
            ? ensure_stream(**conn,
                            {"TELEMETRY_ASSET", c.output_subject, seconds(600), c.stream_replicas},
                            log)
            : input;
    auto dlq =
        output.ok()
            ? ensure_stream(**conn,
                            {"TELEMETRY_DLQ", c.dlq_subject, seconds(600), c.stream_replicas}, log)
            : output;
    Status consumer = dlq.ok() ? ensure_consumer(**conn,
                                                 {*input, c.durable, c.input_subject, c.max_deliver,
                                                  seconds(c.ack_wait_s), c.max_ack_pending},
                                                 log)
                               : dlq.status();
    if (consumer.ok()) return NatsSetup{std::move(conn).value(), *input};
    if (consumer.permanent()) return consumer;
    log.warn("waiting for JetStream", {{"error", consumer.message()}});
    sleep_for(seconds(1));
  }
  return Status::unavailable("nats_unavailable", "stopped before NATS was reachable");
}

}  // namespace

int run_worker(const Config& c, const std::atomic<bool>& stop) {
  Logger log(c.level(), stderr, c.worker_id);
  WorkerMetrics metrics;
  SystemClock clock;
  log.info("starting", {{"version", ATW_VERSION},
                        {"subject", c.input_subject},
                        {"durable", c.durable},
                        {"batchSize", c.batch_size}});

  auto nats = connect_nats(c, log, stop);
  if (!nats.ok()) {
    log.error("cannot start", {{"error", nats.status().message()}});
    return stop.load() ? 0 : 1;
  }
  NatsConnection& nc = *nats->connection;

  PullSettings pull{nats->input_stream, c.durable, static_cast<uint64_t>(c.max_deliver)};
  auto source = JetStreamSource::create(nc, pull, metrics, log);
  auto publisher = JetStreamPublisher::create(nc, seconds(5));
  if (!source.ok() || !publisher.ok()) {
    log.error("cannot subscribe",
              {{"error", (!source.ok() ? source.status() : publisher.status()).message()}});
    return 1;
  }

  PgConnection db(c.database_url);
  if (Status st = db.ensure(); !st.ok()) {
    log.warn("PostgreSQL not reachable yet; batches will wait for it", {{"error", st.message()}});
  }
  PgLinkStore store(db);
  PgWriterPool sink(c.database_url, static_cast<size_t>(c.db_writers));

  std::unique_ptr<RedisLinkCache> redis;
  if (!c.redis_url.empty()) {
    auto address = parse_redis_url(c.redis_url);
    if (!address.ok()) {
      log.error("invalid REDIS_URL", {{"error", address.status().message()}});
      return 2;
    }
    redis = std::make_unique<RedisLinkCache>(
        *address,
        RedisCacheSettings{seconds(c.link_cache_ttl_s), seconds(c.link_cache_empty_ttl_s)}, metrics,
        log);
  }
  LinkMemory memory(static_cast<size_t>(c.memory_cache_capacity), seconds(c.memory_cache_ttl_s),
                    seconds(std::min(c.memory_cache_ttl_s, c.link_cache_empty_ttl_s)));
  LinkResolver resolver(memory, redis.get(), store, clock, metrics);

  ProcessorSettings ps;
  ps.event_subject = c.output_subject;
  ps.dlq_subject = c.dlq_subject;
  ps.limits = c.limits();
  ps.keepalive = milliseconds(c.ack_wait_s * 1000 / 3);
  BatchProcessor processor({**source, resolver, sink, **publisher, clock, metrics, log}, ps, stop,
                           sleep_for);
  Worker worker(**source, processor, clock, log,
                {static_cast<size_t>(c.batch_size), milliseconds(c.fetch_wait_ms),
                 seconds(c.shutdown_timeout_s / 2)});

  // Readiness: NATS and PostgreSQL reachable, and no batch waiting for a server.
  std::atomic<bool> db_up{db.connected()};
  HttpServer http({[&] {
                     return render_prometheus(metrics.snapshot(),
                                              {ATW_VERSION, c.worker_id, nats->input_stream});
                   },
                   [&] { return nc.connected() && db_up.load() && worker.healthy(); }});
  if (Status st = http.start(c.http_addr); !st.ok()) {
    log.error("cannot serve HTTP", {{"error", st.message()}});
    return 2;
  }
  log.info("ready", {{"httpAddr", c.http_addr}, {"stream", nats->input_stream}});

  auto last_probe = std::chrono::steady_clock::now();
  const auto on_cycle = [&] {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_probe >= seconds(5)) {
      last_probe = now;
      // An idle worker would not notice a lost database: ask it.
      (void)db.exec("db_unavailable", "SELECT 1");
    }
    // The probed connection stands for the database: the writer lanes only learn of an
    // outage or a recovery when they next write.
    db_up.store(db.connected());
    metrics.set_up("postgres", db_up.load());
    metrics.set_up("nats", nc.connected());
  };
  const uint64_t handled = worker.run(stop, sleep_for, on_cycle);
  http.stop();
  log.info("stopped", {{"messages", handled}});
  return 0;
}

}  // namespace atw
