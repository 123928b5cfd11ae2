// atw-devtool: what the demo, the tests and the benchmark need to talk to the servers without
// a NATS command-line client (Debian has none): publish messages to JetStream and print what a
// stream holds. Not part of the worker.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/nats_connection.h"
#include "adapters/nats/stream_reader.h"
#include "app/config.h"

using namespace atw;

namespace {

std::unique_ptr<NatsConnection> connect_or_die(const std::string& url, Logger& log) {
  // The worker's login and TLS settings, from its environment (docs/configuration.md).
  auto settings = nats_from_environment("atw-devtool");
  if (!settings.ok()) {
    fmt::print(stderr, "atw-devtool: {}\n", settings.status().message());
    std::exit(2);
  }
  NatsSettings s = std::move(settings).value();
  s.servers = split_servers(url);
  auto c = NatsConnection::connect(s, log, std::chrono::seconds(10));
  if (!c.ok()) {
    fmt::print(stderr, "atw-devtool: {}\n", c.status().message());
    std::exit(1);
  }
  return std::move(c).value();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"atw-devtool: publish to JetStream and read streams (for demos and tests)"};
  app.require_subcommand(1);
  std::string nats_url = "nats://127.0.0.1:4222";
  app.add_option("--nats-url", nats_url)->envname("NATS_URL");

  auto* publish =
      app.add_subcommand("publish", "Publish each line of a file (or stdin) as one message");
  std::string subject, file = "-", msg_id_field = "messageId";
  bool whole = false;
  publish->add_option("--subject", subject)->required();
  publish->add_option("--file", file, "File to read; - for stdin");
  publish->add_flag("--whole", whole, "The whole file is one message");
  publish->add_option("--msg-id-field", msg_id_field,
                      "JSON field used as Nats-Msg-Id (empty: none)");

  auto* ensure =
      app.add_subcommand("ensure-stream", "Create a stream for a subject where none captures it");
  std::string stream_name;
  int replicas = 1;
  ensure->add_option("--stream", stream_name)->required();
  ensure->add_option("--subject", subject)->required();
  ensure->add_option("--replicas", replicas, "Copies of the stream on a JetStream cluster")
      ->check(CLI::Range(1, 5));
  int duplicate_window_s = 600;
  ensure
      ->add_option("--duplicate-window", duplicate_window_s,
                   "Seconds the stream remembers message ids (Nats-Msg-Id) to drop copies")
      ->check(CLI::Range(1, 86400));

  auto* info = app.add_subcommand("stream-info", "Print the server's JSON about a stream");
  info->add_option("--stream", stream_name)->required();

  auto* consumer = app.add_subcommand("consumer-info", "Print the server's JSON about a consumer");
  std::string durable;
  consumer->add_option("--stream", stream_name)->required();
  consumer->add_option("--durable", durable)->required();

  auto* remove = app.add_subcommand("delete-stream", "Delete a stream and its messages");
  remove->add_option("--stream", stream_name)->required();

  auto* dump = app.add_subcommand("dump", "Print a stream's messages, one JSON object per line");
  uint64_t from = 1;
  size_t max = 1000000;
  dump->add_option("--stream", stream_name)->required();
  dump->add_option("--from", from);
  dump->add_option("--max", max);
  CLI11_PARSE(app, argc, argv);

  Logger log(LogLevel::kWarn);
  auto nc = connect_or_die(nats_url, log);

  if (ensure->parsed()) {
    StreamSpec spec{stream_name, subject};
    spec.replicas = replicas;
    spec.duplicate_window = std::chrono::seconds(duplicate_window_s);
    auto r = ensure_stream(*nc, spec, log);
    if (!r.ok()) {
      fmt::print(stderr, "atw-devtool: {}\n", r.status().message());
      return 1;
    }
    fmt::print("{}\n", *r);
    return 0;
  }

  if (info->parsed() || consumer->parsed()) {
    auto r = nc->api(info->parsed() ? "$JS.API.STREAM.INFO." + stream_name
                                    : "$JS.API.CONSUMER.INFO." + stream_name + "." + durable,
                     "");
    if (!r.ok()) {
      fmt::print(stderr, "atw-devtool: {}\n", r.status().message());
      return 1;
    }
    fmt::print("{}\n", *r);
    return 0;
  }

  if (remove->parsed()) {
    auto r = nc->api("$JS.API.STREAM.DELETE." + stream_name, "");
    if (!r.ok()) {
      fmt::print(stderr, "atw-devtool: {}\n", r.status().message());
      return 1;
    }
    return 0;
  }

  if (dump->parsed()) {
    auto msgs = read_stream(*nc, stream_name, from, max);
    if (!msgs.ok()) {
      fmt::print(stderr, "atw-devtool: {}\n", msgs.status().message());
      return 1;
    }
    for (const auto& m : *msgs) {
      nlohmann::ordered_json line = {{"seq", m.sequence}, {"subject", m.subject}, {"time", m.time}};
      auto data = nlohmann::ordered_json::parse(m.data, nullptr, false);
      if (data.is_discarded())
        line["data"] = m.data;
      else
        line["data"] = data;
      fmt::print("{}\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    return 0;
  }

  // publish
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (file != "-") {
    in_file.open(file, std::ios::binary);
    if (!in_file) {
      fmt::print(stderr, "atw-devtool: cannot read {}\n", file);
      return 1;
    }
    in = &in_file;
  }
  std::vector<OutboundMessage> batch;
  if (whole) {
    std::string all((std::istreambuf_iterator<char>(*in)), std::istreambuf_iterator<char>());
    batch.push_back({subject, "", std::move(all)});
  } else {
    for (std::string line; std::getline(*in, line);) {
      if (line.empty()) continue;
      batch.push_back({subject, "", line});
    }
  }
  if (!msg_id_field.empty()) {
    for (auto& m : batch) {
      auto j = nlohmann::json::parse(m.payload, nullptr, false);
      if (j.is_object() && j.contains(msg_id_field) && j[msg_id_field].is_string()) {
        m.msg_id = j[msg_id_field].get<std::string>();
      }
    }
  }
  auto publisher = JetStreamPublisher::create(*nc, std::chrono::seconds(10));
  if (!publisher.ok()) {
    fmt::print(stderr, "atw-devtool: {}\n", publisher.status().message());
    return 1;
  }
  size_t failed = 0;
  constexpr size_t kChunk = 1000;
  for (size_t off = 0; off < batch.size(); off += kChunk) {
    const size_t n = std::min(kChunk, batch.size() - off);
    const auto statuses = (*publisher)->publish(std::span(batch).subspan(off, n));
    for (const auto& s : statuses) {
      if (!s.ok()) {
        ++failed;
        if (failed <= 5) fmt::print(stderr, "atw-devtool: publish failed: {}\n", s.to_string());
      }
    }
  }
  fmt::print("published {} of {} messages to {}\n", batch.size() - failed, batch.size(), subject);
  return failed == 0 ? 0 : 1;
}
