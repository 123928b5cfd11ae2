#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <thread>

#include "adapters/http/http_server.h"
#include "adapters/http/prometheus_text.h"
#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/max_deliveries_advisory.h"
#include "adapters/nats/nats_connection.h"
#include "adapters/nats/stream_reader.h"
#include "adapters/postgres/pg_link_listener.h"
#include "adapters/postgres/pg_link_store.h"
#include "adapters/postgres/pg_writer_pool.h"
#include "adapters/redis/redis_link_cache.h"
#include "app/commands.h"
#include "app/heartbeat.h"
#include "app/history_timer.h"
#include "app/safety_net_thread.h"
#include "app/system_clock.h"
#include "common/error_types.h"
#include "pipeline/link_change_inbox.h"
#include "pipeline/max_deliveries_dead_letterer.h"
#include "pipeline/worker.h"

namespace atw {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

void sleep_for(milliseconds d) {
  std::this_thread::sleep_for(d);
}

struct NatsSetup {
  std::unique_ptr<NatsConnection> connection;
  WorkerTopology topology;
};

// Connects to NATS and sets up the streams and the consumers, retrying until it works or the
// worker is told to stop: a worker started before its servers waits for them.
Result<NatsSetup> connect_nats(const Config& c, Logger& log, const std::atomic<bool>& stop) {
  const NatsSettings settings = c.nats("asset-worker " + c.worker_id);
  const TopologySettings topology{
      .input_subject = c.input_subject,
      .output_subject = c.output_subject,
      .state_subject = c.state_subject,
      .dlq_subject = c.dlq_subject,
      .durable = c.durable,
      .replicas = c.stream_replicas,
      .input_max_age = c.input_max_age,
      .output_max_age = c.output_max_age,
      .dlq_max_age = c.dlq_max_age,
      .max_deliver = c.max_deliver,
      .ack_wait = seconds(c.ack_wait_s),
      .max_ack_pending = c.max_ack_pending,
  };
  while (!stop.load()) {
    auto conn = NatsConnection::connect(settings, log, seconds(5));
    if (!conn.ok()) {
      if (conn.status().permanent()) return conn.status();  // refused: a setting to fix
      log.warn("waiting for NATS", {{"error", conn.status().message()}});
      continue;
    }
    auto streams = ensure_worker_topology(**conn, topology, log);
    if (streams.ok()) return NatsSetup{std::move(conn).value(), *streams};
    if (streams.status().permanent()) return streams.status();
    log.warn("waiting for JetStream", {{"error", streams.status().message()}});
    sleep_for(seconds(1));
  }
  return Status::unavailable(error_type::kNatsUnavailable, "stopped before NATS was reachable");
}

}  // namespace

int run_worker(const Config& c, const std::atomic<bool>& stop) {
  Logger log(c.level(), stderr, c.worker_id);
  WorkerMetrics metrics;
  SystemClock clock;
  // Where it connects, as an operator checks it: any password or token in these is masked by
  // the logger (common/redact.h), and a secret file is named, never read out.
  log.info("starting",
           {{"version", ATW_VERSION},
            {"natsUrl", c.nats_url_file.empty() ? c.nats_url : "file " + c.nats_url_file},
            {"databaseUrl",
             c.database_url_file.empty() ? c.database_url : "file " + c.database_url_file},
            {"redisUrl", c.redis_url_file.empty() ? c.redis_url : "file " + c.redis_url_file},
            {"subject", c.input_subject},
            {"durable", c.durable},
            {"batchSize", c.batch_size},
            {"liveBatchSize", c.live_batch_size},
            {"catchUpBatchSize", c.catch_up_batch_size}});

  auto nats = connect_nats(c, log, stop);
  if (!nats.ok()) {
    log.error("cannot start", {{"error", nats.status().message()}});
    return stop.load() ? 0 : 1;
  }
  NatsConnection& nc = *nats->connection;

  PullSettings pull{nats->topology.input_stream, c.durable, static_cast<uint64_t>(c.max_deliver)};
  auto source = JetStreamSource::create(nc, pull, metrics, log);
  // A publish waits for its PubAcks at most a third of AckWait: while the output stream refuses
  // them, the retry loop must get back to its keepalives before the messages in hand expire.
  const milliseconds puback_wait = std::min<milliseconds>(seconds(5), seconds(c.ack_wait_s) / 3);
  auto publisher = JetStreamPublisher::create(nc, puback_wait);
  PullSettings advisory_pull{nats->topology.advisory_stream, c.durable, UINT64_MAX};
  advisory_pull.reports_pending = false;
  auto advisories = JetStreamSource::create(nc, advisory_pull, metrics, log);
  auto net_publisher = JetStreamPublisher::create(nc, puback_wait);
  for (const Status& st :
       {source.status(), publisher.status(), advisories.status(), net_publisher.status()}) {
    if (!st.ok()) {
      log.error("cannot subscribe", {{"error", st.message()}});
      return 1;
    }
  }

  PgConnection db(c.database());
  if (Status st = db.ensure(); !st.ok()) {
    if (db.login_refused()) {
      log.error("cannot start: PostgreSQL refused the worker's login", {{"error", st.message()}});
      return 1;
    }
    log.warn("PostgreSQL not reachable yet; batches will wait for it", {{"error", st.message()}});
  }
  PgLinkStore store(db, metrics, log);
  PgWriterPool sink(c.database(), static_cast<size_t>(c.db_writers), c.worker_id);
  // History partitions made ahead and dropped past the retention, beside the pipeline.
  std::unique_ptr<HistoryTimer> history_timer;
  if (c.maintain_interval_s > 0) {
    history_timer = std::make_unique<HistoryTimer>(
        c.database(), HistorySettings{c.partitions_ahead_days, c.history_retention_days},
        seconds(c.maintain_interval_s), metrics, log);
  }

  std::unique_ptr<RedisLinkCache> redis;
  if (!c.redis_url.empty()) {
    redis = std::make_unique<RedisLinkCache>(
        c.redis(),
        RedisCacheSettings{seconds(c.link_cache_ttl_s), seconds(c.link_cache_empty_ttl_s)}, metrics,
        log);
    // Redis down slows the worker (SPEC D6); Redis refusing its login is a setting to fix.
    if (const Status st = redis->check_login(); !st.ok()) {
      log.error("cannot start: Redis refused the worker's login", {{"error", st.message()}});
      return 1;
    }
  }
  InProcessLinkCache memory(static_cast<size_t>(c.memory_cache_capacity),
                            seconds(c.memory_cache_ttl_s),
                            seconds(std::min(c.memory_cache_ttl_s, c.link_cache_empty_ttl_s)));
  LinkResolver resolver(memory, redis.get(), store, clock, metrics);
  LinkChangeInbox link_changes;
  PgLinkListener link_listener(c.database(), link_changes, log);

  ProcessorSettings ps;
  ps.event_subject = c.output_subject;
  ps.state_subject = c.state_subject;
  ps.dlq_subject = c.dlq_subject;
  ps.limits = c.limits();
  ps.keepalive = milliseconds(c.ack_wait_s * 1000 / 3);
  // A dead-letter record must fit the server's max_payload with its headers (Nats-Msg-Id).
  const int64_t max_payload = nc.max_payload();
  ps.max_record_bytes = max_payload > 1024 ? static_cast<size_t>(max_payload - 512) : SIZE_MAX;
  Heartbeat heartbeat(seconds(c.stall_timeout_s));
  const auto beating_sleep = [&](milliseconds d) { heartbeat.sleep(d); };
  BatchProcessor processor({**source, resolver, sink, **publisher, clock, metrics, log}, ps, stop,
                           beating_sleep);
  // Named: three batch sizes of one type side by side would swap silently by position.
  Worker worker(**source, processor, clock, log,
                {.batch_size = static_cast<size_t>(c.batch_size),
                 .fetch_wait = milliseconds(c.fetch_wait_ms),
                 .drain_limit = seconds(c.shutdown_timeout_s / 2),
                 .keepalive = ps.keepalive,
                 .live_batch_size = static_cast<size_t>(c.live_batch_size),
                 .catch_up_batch_size = static_cast<size_t>(c.catch_up_batch_size)});

  // Readiness: NATS and PostgreSQL reachable, no permission refused by NATS in the last 10 s,
  // and no batch waiting for a server.
  std::atomic<bool> db_up{db.connected()};
  HttpServer http({[&] {
                     return render_prometheus(metrics.snapshot(), {ATW_VERSION, c.worker_id,
                                                                   nats->topology.input_stream});
                   },
                   [&] {
                     return nc.connected() && !nc.refused_within(seconds(10)) && db_up.load() &&
                            worker.healthy();
                   },
                   [&] { return heartbeat.alive(); }});
  if (Status st = http.start(c.http); !st.ok()) {
    log.error("cannot serve HTTP", {{"error", st.message()}});
    return 2;
  }
  log.info("ready", {{"httpAddr", c.http_addr}, {"stream", nats->topology.input_stream}});

  auto last_probe = std::chrono::steady_clock::now();
  const auto on_cycle = [&] {
    heartbeat.beat();
    if (const size_t purged = link_changes.apply(resolver); purged > 0) {
      log.debug("link caches purged", {{"keys", static_cast<uint64_t>(purged)}});
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_probe >= seconds(5)) {
      last_probe = now;
      // An idle worker would not notice a lost database: ask it.
      (void)db.ping();
    }
    // The probed connection stands for the database: the writer lanes only learn of an
    // outage or a recovery when they next write.
    db_up.store(db.connected());
    metrics.set_up(Server::kPostgres, db_up.load());
    metrics.set_up(Server::kNats, nc.connected());
  };
  // The safety net runs beside the pipeline, on its own consumer, publisher and thread.
  StreamMessageStore input_store(nc);
  MaxDeliveriesDeadLetterer net({**advisories, read_max_deliveries_advisory, input_store,
                                 **net_publisher, clock, metrics, log},
                                c.dlq_subject, seconds(5), ps.max_record_bytes);
  SafetyNetThread beside(net, nc, nats->topology, c.durable, metrics, stop);
  const uint64_t handled = worker.run(stop, beating_sleep, on_cycle);
  if (history_timer) history_timer->stop();
  http.stop();
  log.info("stopped", {{"messages", handled}});
  return 0;
}

}  // namespace atw
