// atw-bench: the pieces of the throughput benchmark (bench/run.sh drives them): the standard
// workload's messages, the two ceilings the worker cannot beat (PostgreSQL alone, JetStream
// alone), a drain monitor and a steady-load generator with end-to-end latency.

#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/nats_connection.h"
#include "adapters/nats/stream_reader.h"
#include "adapters/postgres/pg_connection.h"
#include "adapters/postgres/pg_telemetry_sink.h"
#include "app/config.h"
#include "domain/timestamp.h"

using namespace atw;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// The plant the messages come from: bench/workload.sql makes the same one (its `devices`).
// Metrics past the standard six are `port_1_s<i>`, which the port-1 link carries whole.
// Messages may go to a subject per shard of tenants: SUBJECT.<shard>, the shard chosen by a
// fixed map of organizations (docs/scaling.md, scripts/shards.sh).
struct Plant {
  int devices = 1000;
  int metrics = 6;
  std::map<std::string, std::string> shard_of;  // organization -> shard; empty: one subject

  int device_of(uint64_t n) const {
    return static_cast<int>(n % static_cast<uint64_t>(devices)) + 1;
  }
  static std::string organization_of(int device) {
    return fmt::format("bench-org-{}", device % 4 + 1);
  }
  std::string subject_of(const std::string& subject, uint64_t n) const {
    if (shard_of.empty()) return subject;
    const std::string org = organization_of(device_of(n));
    const auto found = shard_of.find(org);
    if (found == shard_of.end()) {
      fmt::print(stderr, "atw-bench: --shard-map names no shard for {}\n", org);
      std::exit(2);
    }
    return subject + "." + found->second;
  }
};

// "org=shard,org=shard": the --shard-map option.
std::map<std::string, std::string> parse_shard_map(const std::string& text) {
  std::map<std::string, std::string> map;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find(',', at), text.size());
    const std::string pair = text.substr(at, end - at);
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
      fmt::print(stderr, "atw-bench: --shard-map: '{}' is not organization=shard\n", pair);
      std::exit(2);
    }
    map[pair.substr(0, eq)] = pair.substr(eq + 1);
    at = end + 1;
  }
  return map;
}

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double since(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

// Message n of a run: device n % devices (organization device % 4 + 1), the standard six
// metrics and the plant's extra ones.
std::string make_message(const Plant& plant, const std::string& run, uint64_t n,
                         int64_t ts_micros) {
  const int d = plant.device_of(n);
  const double temperature = 20.0 + static_cast<double>((n * 7) % 700) / 10.0;  // 20..89.9
  std::string extra;
  for (int i = 1; i <= plant.metrics - 6; ++i) {
    fmt::format_to(std::back_inserter(extra), R"(,"port_1_s{}":{})", i,
                   static_cast<double>((n + static_cast<uint64_t>(i) * 13) % 1000) / 10.0);
  }
  return fmt::format(R"({{"messageId":"{}-{}","deviceId":"bench-dev-{}","organizationId":"{}",)"
                     R"("timestamp":"{}","metrics":{{"temperature":{},"voltage":{},"current":{},)"
                     R"("pressure":101.3,"port_1_temp":{},"port_1_flow":{}{}}},)"
                     R"("deviceMetadata":{{"deviceType":"RTU-4000"}}}})",
                     run, n, d, Plant::organization_of(d), format_rfc3339(Timestamp{ts_micros}),
                     temperature, 11.5 + static_cast<double>(n % 20) / 10.0,
                     2.0 + static_cast<double>(n % 10) / 10.0, temperature - 1.5,
                     3.0 + static_cast<double>(n % 5), extra);
}

std::unique_ptr<NatsConnection> connect_or_die(const std::string& url, Logger& log) {
  // The worker's login and TLS settings, from its environment (docs/configuration.md).
  auto settings = nats_from_environment("atw-bench");
  if (!settings.ok()) {
    fmt::print(stderr, "atw-bench: {}\n", settings.status().message());
    std::exit(2);
  }
  NatsSettings s = std::move(settings).value();
  s.servers = split_servers(url);
  auto c = NatsConnection::connect(s, log, seconds(10));
  if (!c.ok()) {
    fmt::print(stderr, "atw-bench: {}\n", c.status().message());
    std::exit(1);
  }
  return std::move(c).value();
}

void die(const Status& st) {
  fmt::print(stderr, "atw-bench: {}\n", st.to_string());
  std::exit(1);
}

// Publishes messages [from, to) in windows, waiting for every PubAck.
void publish_range(JetStreamPublisher& pub, const Plant& plant, const std::string& subject,
                   const std::string& run, uint64_t from, uint64_t to) {
  constexpr uint64_t kWindow = 2000;
  const int64_t base = now_micros() - static_cast<int64_t>(to) * 1000;  // 1 ms apart, in the past
  std::vector<OutboundMessage> batch;
  for (uint64_t off = from; off < to; off += kWindow) {
    batch.clear();
    for (uint64_t n = off; n < std::min(to, off + kWindow); ++n) {
      batch.push_back({plant.subject_of(subject, n), fmt::format("{}-{}", run, n),
                       make_message(plant, run, n, base + static_cast<int64_t>(n) * 1000)});
    }
    // A node restarting under the publisher (the cluster run) fails some publishes for a few
    // seconds; they are sent again with the same Nats-Msg-Id, so the stream keeps one copy.
    for (int attempt = 1;; ++attempt) {
      const auto statuses = pub.publish(batch);
      std::vector<OutboundMessage> failed;
      Status last;
      for (size_t i = 0; i < statuses.size(); ++i) {
        if (!statuses[i].ok()) {
          failed.push_back(std::move(batch[i]));
          last = statuses[i];
        }
      }
      if (failed.empty()) break;
      if (attempt == 30) die(last);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      batch = std::move(failed);
    }
  }
}

struct ConsumerProgress {
  uint64_t acked = 0;  // ack floor consumer sequence
  uint64_t pending = 0;
  uint64_t ack_pending = 0;
  uint64_t redelivered = 0;
};

ConsumerProgress progress(NatsConnection& nc, const std::string& stream,
                          const std::string& durable) {
  auto r = nc.api(fmt::format("$JS.API.CONSUMER.INFO.{}.{}", stream, durable), "");
  if (!r.ok()) return {};
  auto j = nlohmann::json::parse(*r);
  return {j["ack_floor"].value("consumer_seq", uint64_t{0}), j.value("num_pending", uint64_t{0}),
          j.value("num_ack_pending", uint64_t{0}), j.value("num_redelivered", uint64_t{0})};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"atw-bench: benchmark pieces (see bench/run.sh)"};
  app.require_subcommand(1);
  std::string nats_url = "nats://127.0.0.1:4222", database_url, run = "run", subject, stream,
              durable, csv, events_subject;
  uint64_t count = 200000;
  app.add_option("--nats-url", nats_url)->envname("NATS_URL");
  app.add_option("--database-url", database_url)->envname("DATABASE_URL");
  app.add_option("--run", run, "Prefix of message ids");
  Plant plant;
  app.add_option("--devices", plant.devices, "Devices the messages come from (bench/workload.sql)")
      ->check(CLI::PositiveNumber);
  app.add_option("--metrics", plant.metrics, "Metrics per message (6: the standard ones)")
      ->check(CLI::Range(6, 100000));

  auto* prefill = app.add_subcommand("prefill", "Publish COUNT messages of the workload");
  prefill->add_option("--subject", subject)->required();
  prefill->add_option("--count", count);
  std::string shard_map;
  prefill->add_option("--shard-map", shard_map,
                      "org=shard,...: publish each message to SUBJECT.<its organization's shard>");

  auto* js_ceiling = app.add_subcommand("ceiling-jetstream",
                                        "Fetch and ack COUNT messages with no work (new consumer)");
  size_t batch_size = 500;
  js_ceiling->add_option("--stream", stream)->required();
  js_ceiling->add_option("--subject", subject)->required();
  js_ceiling->add_option("--count", count);
  js_ceiling->add_option("--batch", batch_size);

  auto* pg_ceiling = app.add_subcommand(
      "ceiling-postgres", "COPY the rows of COUNT messages into telemetry_history_ceiling");
  pg_ceiling->add_option("--count", count);
  pg_ceiling->add_option("--batch", batch_size);
  int connections = 2;
  pg_ceiling->add_option("--connections", connections);

  auto* drain = app.add_subcommand("drain", "Wait until a consumer has acked COUNT messages");
  double timeout_s = 600;
  drain->add_option("--stream", stream)->required();
  drain->add_option("--durable", durable)->required();
  drain->add_option("--count", count);
  drain->add_option("--csv", csv);
  drain->add_option("--timeout", timeout_s);
  uint64_t split = 0;
  drain->add_option("--split", split,
                    "Also time the first SPLIT acks and the rest apart (a cold and a warm pass)");

  auto* steady = app.add_subcommand("steady", "Offer RATE messages/s for SECONDS; measure latency");
  double rate = 5000, duration = 60;
  steady->add_option("--subject", subject)->required();
  steady->add_option("--events-subject", events_subject)->required();
  steady->add_option("--rate", rate);
  steady->add_option("--seconds", duration);
  steady->add_option("--csv", csv);
  CLI11_PARSE(app, argc, argv);

  Logger log(LogLevel::kWarn);

  if (pg_ceiling->parsed()) {
    // The rows the worker writes for message n, built directly (the worker's transform is not
    // part of the ceiling), COPYed in transactions of `batch` messages over `connections`
    // connections at once, as the worker's writer lanes do.
    const int64_t base = now_micros();
    std::atomic<uint64_t> next_batch{0};
    auto lane = [&] {
      PgConnection db(database_url);
      std::vector<MessageResult> results;
      std::string buffer;
      while (true) {
        const uint64_t off = next_batch.fetch_add(batch_size);
        if (off >= count) return;
        results.clear();
        for (uint64_t n = off; n < std::min(count, off + batch_size); ++n) {
          const int d = plant.device_of(n);
          const double t = 20.0 + static_cast<double>((n * 7) % 700) / 10.0;
          MessageResult r{fmt::format("{}-{}", run, n),
                          fmt::format("bench-dev-{}", d),
                          Plant::organization_of(d),
                          Timestamp{base + static_cast<int64_t>(n) * 1000},
                          {}};
          r.assets.push_back({fmt::format("bench-a-{}", d),
                              MetricSet{{"power_input", 12.0},
                                        {"power_current", 2.5},
                                        {"motor_temperature", t},
                                        {"power_consumption", 30.0}},
                              100});
          r.assets.push_back({fmt::format("bench-b-{}", d),
                              MetricSet{{"motor_temperature", t}, {"temp", t - 1.5}, {"flow", 3.0}},
                              100});
          results.push_back(std::move(r));
        }
        buffer.clear();
        encode_history_copy(results, std::vector<bool>(results.size(), true),
                            Timestamp{now_micros()}, buffer);
        auto begin = db.exec("bench", "BEGIN");
        if (!begin.ok()) die(begin.status());
        auto copied = db.run_script("bench",
                                    "COPY telemetry_history_ceiling (entity_id, entity_type,"
                                    " metric_key, value, \"timestamp\", received_at,"
                                    " source_device_id, quality) FROM STDIN (FORMAT binary)",
                                    buffer);
        if (!copied.ok()) die(copied.status());
        auto commit = db.exec("bench", "COMMIT");
        if (!commit.ok()) die(commit.status());
      }
    };
    const auto t0 = Steady::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < connections; ++i) threads.emplace_back(lane);
    for (auto& t : threads) t.join();
    const double secs = since(t0);
    fmt::print("{{\"messages\":{},\"seconds\":{:.3f},\"rate\":{:.0f},\"connections\":{}}}\n", count,
               secs, double(count) / secs, connections);
    return 0;
  }

  auto nc = connect_or_die(nats_url, log);

  if (prefill->parsed()) {
    if (!shard_map.empty()) plant.shard_of = parse_shard_map(shard_map);
    auto pub = JetStreamPublisher::create(*nc, seconds(30));
    if (!pub.ok()) die(pub.status());
    const auto t0 = Steady::now();
    publish_range(**pub, plant, subject, run, 0, count);
    fmt::print("{{\"messages\":{},\"seconds\":{:.3f}}}\n", count, since(t0));
    return 0;
  }

  if (js_ceiling->parsed()) {
    const std::string name = "ceiling-" + run;
    (void)nc->api(fmt::format("$JS.API.CONSUMER.DELETE.{}.{}", stream, name), "");
    if (Status st = ensure_consumer(*nc, {stream, name, subject, 3, seconds(30), 20000}, log);
        !st.ok()) {
      die(st);
    }
    WorkerMetrics metrics;
    auto src = JetStreamSource::create(*nc, {stream, name, 3}, metrics, log);
    if (!src.ok()) die(src.status());
    uint64_t got = 0;
    Steady::time_point t0{};
    const auto give_up = Steady::now() + seconds(600);
    while (got < count && Steady::now() < give_up) {
      auto batch = (*src)->fetch(batch_size, milliseconds(50), batch_size, {});
      if (!batch.ok()) die(batch.status());
      if (!batch->empty() && got == 0) t0 = Steady::now();
      for (const auto& d : *batch) (void)(*src)->ack(d);
      got += batch->size();
    }
    (void)(*src)->flush();
    const double secs = since(t0);
    (void)nc->api(fmt::format("$JS.API.CONSUMER.DELETE.{}.{}", stream, name), "");
    fmt::print("{{\"messages\":{},\"seconds\":{:.3f},\"rate\":{:.0f}}}\n", got, secs,
               double(got) / secs);
    return got == count ? 0 : 1;
  }

  if (drain->parsed()) {
    std::ofstream out;
    if (!csv.empty()) {
      out.open(csv);
      out << "seconds,acked,rate\n";
    }
    Steady::time_point t0{};
    bool started = false;
    uint64_t last_acked = 0;
    double last_t = 0;
    const auto give_up = Steady::now() + std::chrono::duration<double>(timeout_s);
    ConsumerProgress p;
    double split_secs = 0;
    while (Steady::now() < give_up) {
      p = progress(*nc, stream, durable);
      if (!started && (p.acked > 0 || p.ack_pending > 0)) {
        started = true;
        t0 = Steady::now();
      }
      if (started && split > 0 && split_secs == 0 && p.acked >= split) split_secs = since(t0);
      if (started) {
        const double t = since(t0);
        if (out && t - last_t >= 0.5) {
          out << fmt::format("{:.2f},{},{:.0f}\n", t, p.acked,
                             double(p.acked - last_acked) / (t - last_t));
          last_acked = p.acked;
          last_t = t;
        }
      }
      if (p.acked >= count && p.pending == 0 && p.ack_pending == 0) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
    const double secs = started ? since(t0) : 0;
    std::string split_figures;
    if (split > 0 && split_secs > 0 && secs > split_secs) {
      split_figures = fmt::format(
          R"(,"split":{},"split_seconds":{:.3f},"first_rate":{:.0f},"rest_rate":{:.0f})", split,
          split_secs, double(split) / split_secs, double(p.acked - split) / (secs - split_secs));
    }
    fmt::print("{{\"messages\":{},\"seconds\":{:.3f},\"rate\":{:.0f},\"redelivered\":{}{}}}\n",
               p.acked, secs, secs > 0 ? double(p.acked) / secs : 0.0, p.redelivered,
               split_figures);
    return p.acked >= count ? 0 : 1;
  }

  // steady: one thread publishes at the offered rate (asynchronously: a core publish with a
  // reply subject per message, PubAcks counted on the side); a subscription on the events
  // measures publish-to-event latency from the message timestamp, which is set at publish.
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::vector<std::vector<double>> per_second(static_cast<size_t>(duration) + 30);
  std::atomic<uint64_t> events{0};
  const auto t0 = Steady::now();
  struct Ctx {
    std::mutex* mu;
    std::vector<double>* all;
    std::vector<std::vector<double>>* per_second;
    std::atomic<uint64_t>* events;
    Steady::time_point t0;
  } ctx{&mu, &latencies_ms, &per_second, &events, t0};
  auto on_event = [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* c = static_cast<Ctx*>(closure);
    const int64_t now = now_micros();
    // Only the timestamp is needed: a string search keeps this subscriber's CPU (it shares the
    // machine with the worker and the servers) far below a full JSON parse per event.
    const std::string_view body(natsMsg_GetData(msg),
                                static_cast<size_t>(natsMsg_GetDataLength(msg)));
    // A correction event (reprocess, beside this load) is not one of this run's.
    if (body.find("\"correction\":{") != std::string_view::npos) {
      natsMsg_Destroy(msg);
      return;
    }
    constexpr std::string_view kKey = "\"timestamp\":\"";
    const size_t at = body.find(kKey);
    const size_t end = at == std::string_view::npos ? at : body.find('"', at + kKey.size());
    const auto ts = end == std::string_view::npos
                        ? std::nullopt
                        : parse_rfc3339(body.substr(at + kKey.size(), end - at - kKey.size()));
    natsMsg_Destroy(msg);
    if (!ts) return;
    const double ms = static_cast<double>(now - ts->micros) / 1000.0;
    const size_t second = static_cast<size_t>(since(c->t0));
    std::lock_guard lock(*c->mu);
    c->all->push_back(ms);
    if (second < c->per_second->size()) (*c->per_second)[second].push_back(ms);
    c->events->fetch_add(1);
  };
  auto sub = nc->subscribe_async(events_subject, on_event, &ctx);
  if (!sub.ok()) die(sub.status());
  (void)nc->flush(seconds(5));

  // Paced publishing: every 10 ms, publish what the offered rate owes by now.
  const std::string inbox = NatsConnection::new_inbox();
  uint64_t sent = 0;
  const auto end = t0 + std::chrono::duration<double>(duration);
  while (Steady::now() < end) {
    const uint64_t owed = static_cast<uint64_t>(since(t0) * rate);
    for (; sent < owed; ++sent) {
      const std::string payload = make_message(plant, run, sent, now_micros());
      (void)nc->publish(subject, payload);
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  (void)nc->flush(seconds(5));
  const uint64_t expected_events = sent * 2;
  const auto tail = Steady::now() + seconds(30);
  while (events.load() < expected_events && Steady::now() < tail) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  sub->reset();  // no callback after this: ctx goes out of scope below

  auto quantile = [](std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * double(v.size())))];
  };
  std::lock_guard lock(mu);
  if (!csv.empty()) {
    std::ofstream out(csv);
    out << "second,events,p50_ms,p99_ms\n";
    for (size_t s = 0; s < per_second.size(); ++s) {
      if (per_second[s].empty()) continue;
      out << fmt::format("{},{},{:.2f},{:.2f}\n", s, per_second[s].size(),
                         quantile(per_second[s], 0.5), quantile(per_second[s], 0.99));
    }
  }
  fmt::print(
      "{{\"offered\":{},\"seconds\":{:.1f},\"events\":{},\"expected_events\":{},"
      "\"e2e_p50_ms\":{:.2f},\"e2e_p95_ms\":{:.2f},\"e2e_p99_ms\":{:.2f},\"e2e_max_ms\":{:.2f}}}\n",
      sent, duration, events.load(), expected_events, quantile(latencies_ms, 0.5),
      quantile(latencies_ms, 0.95), quantile(latencies_ms, 0.99),
      latencies_ms.empty() ? 0.0 : *std::max_element(latencies_ms.begin(), latencies_ms.end()));
  return events.load() >= expected_events ? 0 : 1;
}
