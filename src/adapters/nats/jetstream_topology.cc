#include "adapters/nats/jetstream_topology.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/error_types.h"

namespace atw {

namespace {

int64_t ns(std::chrono::nanoseconds d) {
  return d.count();
}

}  // namespace

Result<std::string> find_stream_for_subject(NatsConnection& nc, const std::string& subject) {
  auto r = nc.api("$JS.API.STREAM.NAMES", nlohmann::json{{"subject", subject}}.dump());
  if (!r.ok()) return r.status();
  const auto json = nlohmann::json::parse(*r, nullptr, false);
  if (json.is_object() && json.contains("streams") && json["streams"].is_array() &&
      !json["streams"].empty()) {
    return json["streams"][0].get<std::string>();
  }
  return std::string();
}

Result<std::string> ensure_stream(NatsConnection& nc, const StreamSpec& spec, Logger& log) {
  auto found = find_stream_for_subject(nc, spec.subject);
  if (!found.ok()) return found.status();
  if (!found->empty()) return found;
  nlohmann::json config = {
      {"name", spec.default_name},
      {"subjects", {spec.subject}},
      {"storage", "file"},
      {"retention", spec.retention},
      {"num_replicas", spec.replicas},
      {"duplicate_window", ns(spec.duplicate_window)},
  };
  if (spec.max_age.count() > 0) {
    config["max_age"] = ns(spec.max_age);
    // The server takes no duplicate window longer than the stream keeps messages.
    config["duplicate_window"] =
        ns(std::min<std::chrono::seconds>(spec.duplicate_window, spec.max_age));
  }
  auto created = nc.api("$JS.API.STREAM.CREATE." + spec.default_name, config.dump());
  if (!created.ok()) {
    // A replica starting at the same moment may have created it first.
    auto again = find_stream_for_subject(nc, spec.subject);
    if (again.ok() && !again->empty()) return again;
    return created.status();
  }
  log.info("stream created", {{"stream", spec.default_name}, {"subject", spec.subject}});
  return spec.default_name;
}

namespace {

// On a JetStream cluster a consumer exists (its info answers) before its replicas have elected
// a leader, and a pull request sent meanwhile is dropped without a status: the worker would sit
// idle until the request's write-off. So the consumer counts as ready once it has a leader.
Status wait_for_leader(NatsConnection& nc, const std::string& info_subject,
                       std::string_view first_reply) {
  std::string reply(first_reply);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (true) {
    const auto j = nlohmann::json::parse(reply, nullptr, false);
    const bool clustered = j.is_object() && j.contains("cluster") && j["cluster"].is_object();
    if (!clustered || !j["cluster"].value("leader", std::string()).empty()) return Status();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::unavailable(error_type::kNatsUnavailable,
                                 "the consumer has had no leader for 15 s: " + info_subject);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto again = nc.api(info_subject, "");
    if (!again.ok()) return again.status();
    reply = std::move(again).value();
  }
}

}  // namespace

Status ensure_consumer(NatsConnection& nc, const ConsumerSpec& spec, Logger& log) {
  const std::string info_subject =
      fmt::format("$JS.API.CONSUMER.INFO.{}.{}", spec.stream, spec.durable);
  auto info = nc.api(info_subject, "");
  if (info.ok()) return wait_for_leader(nc, info_subject, *info);
  if (!info.status().permanent()) return info.status();
  const nlohmann::json request = {
      {"stream_name", spec.stream},
      {"config",
       {
           {"durable_name", spec.durable},
           {"deliver_policy", "all"},
           {"ack_policy", "explicit"},
           {"max_deliver", spec.max_deliver},
           {"ack_wait", ns(spec.ack_wait)},
           {"max_ack_pending", spec.max_ack_pending},
           {"max_waiting", 512},
           {"filter_subject", spec.filter_subject},
           {"replay_policy", "instant"},
       }},
  };
  auto created =
      nc.api(fmt::format("$JS.API.CONSUMER.DURABLE.CREATE.{}.{}", spec.stream, spec.durable),
             request.dump());
  if (!created.ok()) return created.status();
  log.info("consumer created", {{"stream", spec.stream}, {"consumer", spec.durable}});
  return wait_for_leader(nc, info_subject, *created);
}

namespace {

// The safety net's stream: the server's MAX_DELIVERIES advisories for the input consumer, kept
// until a worker has turned each into a dead-letter record, so that none is lost while no
// worker is listening.
Result<std::string> ensure_advisory_stream(NatsConnection& nc, const TopologySettings& s,
                                           const std::string& input_stream, Logger& log) {
  const StreamSpec spec{
      fmt::format("{}_{}_MAX_DELIVERIES", input_stream, s.durable),
      fmt::format("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}", input_stream, s.durable),
      std::chrono::seconds(600), s.replicas, "workqueue"};
  auto stream = ensure_stream(nc, spec, log);
  if (!stream.ok()) return stream;
  // Unlimited deliveries: an advisory is retried until its record is stored.
  const Status consumer =
      ensure_consumer(nc, {*stream, s.durable, spec.subject, -1, s.ack_wait, 1000}, log);
  if (!consumer.ok()) return consumer;
  return stream;
}

}  // namespace

Result<WorkerTopology> ensure_worker_topology(NatsConnection& nc, const TopologySettings& s,
                                              Logger& log) {
  const std::chrono::seconds window(600);
  auto input = ensure_stream(
      nc, {"TELEMETRY_NORMALIZED", s.input_subject, window, s.replicas, "limits", s.input_max_age},
      log);
  if (!input.ok()) return input.status();
  for (const StreamSpec& out : {StreamSpec{"TELEMETRY_ASSET", s.output_subject, window, s.replicas,
                                           "limits", s.output_max_age},
                                StreamSpec{"TELEMETRY_ASSET_STATE", s.state_subject, window,
                                           s.replicas, "limits", s.output_max_age}}) {
    if (auto made = ensure_stream(nc, out, log); !made.ok()) return made.status();
  }
  auto dlq = ensure_stream(
      nc, {"TELEMETRY_DLQ", s.dlq_subject, window, s.replicas, "limits", s.dlq_max_age}, log);
  if (!dlq.ok()) return dlq.status();
  const Status consumer = ensure_consumer(
      nc, {*input, s.durable, s.input_subject, s.max_deliver, s.ack_wait, s.max_ack_pending}, log);
  if (!consumer.ok()) return consumer;
  auto advisories = ensure_advisory_stream(nc, s, *input, log);
  if (!advisories.ok()) return advisories.status();
  return WorkerTopology{*input, *advisories, *dlq};
}

}  // namespace atw
