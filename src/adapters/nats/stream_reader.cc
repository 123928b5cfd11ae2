#include "adapters/nats/stream_reader.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/error_types.h"

namespace atw {

Result<StreamState> stream_state(NatsConnection& nc, const std::string& stream) {
  auto r = nc.api("$JS.API.STREAM.INFO." + stream, "");
  if (!r.ok()) return r.status();
  const auto json = nlohmann::json::parse(*r, nullptr, false);
  if (!json.is_object() || !json.contains("state")) {
    return Status::unavailable(error_type::kNatsApi, "unexpected STREAM.INFO reply");
  }
  const auto& s = json["state"];
  StreamState state;
  state.messages = s.value("messages", uint64_t{0});
  state.first_seq = s.value("first_seq", uint64_t{0});
  state.last_seq = s.value("last_seq", uint64_t{0});
  if (state.messages > 0) state.first_time = parse_rfc3339(s.value("first_ts", std::string()));
  if (json.contains("config") && json["config"].is_object()) {
    state.max_age =
        std::chrono::seconds(json["config"].value("max_age", int64_t{0}) / 1'000'000'000);
  }
  return state;
}

Result<ConsumerState> consumer_state(NatsConnection& nc, const std::string& stream,
                                     const std::string& durable) {
  auto r = nc.api(fmt::format("$JS.API.CONSUMER.INFO.{}.{}", stream, durable), "");
  if (!r.ok()) return r.status();
  const auto json = nlohmann::json::parse(*r, nullptr, false);
  if (!json.is_object() || !json.contains("num_pending")) {
    return Status::unavailable(error_type::kNatsApi, "unexpected CONSUMER.INFO reply");
  }
  return ConsumerState{json.value("num_pending", uint64_t{0}),
                       json.value("num_ack_pending", uint64_t{0}),
                       json.value("num_redelivered", uint64_t{0})};
}

Result<std::optional<StoredMessage>> read_message(NatsConnection& nc, const std::string& stream,
                                                  uint64_t seq) {
  auto r = nc.api("$JS.API.STREAM.MSG.GET." + stream, fmt::format(R"({{"seq":{}}})", seq));
  if (!r.ok()) {
    if (r.status().permanent()) return std::optional<StoredMessage>();  // deleted or purged
    return r.status();
  }
  const auto json = nlohmann::json::parse(*r, nullptr, false);
  if (!json.is_object() || !json.contains("message")) {
    return Status::unavailable(error_type::kNatsApi, "unexpected STREAM.MSG.GET reply");
  }
  const auto& m = json["message"];
  return std::optional<StoredMessage>(
      StoredMessage{m.value("seq", seq), m.value("subject", std::string()),
                    base64_decode(m.value("data", std::string())),
                    base64_decode(m.value("hdrs", std::string())), m.value("time", std::string())});
}

Result<std::vector<StoredMessage>> read_stream(NatsConnection& nc, const std::string& stream,
                                               uint64_t from, size_t max) {
  std::vector<StoredMessage> out;
  auto state = stream_state(nc, stream);
  if (!state.ok()) return state.status();
  for (uint64_t seq = std::max(from, state->first_seq); seq <= state->last_seq && out.size() < max;
       ++seq) {
    auto m = read_message(nc, stream, seq);
    if (!m.ok()) return m.status();
    if (m->has_value()) out.push_back(std::move(m->value()));
  }
  return out;
}

Status StreamMessageStore::term(const std::string& stream, const std::string& consumer,
                                uint64_t sequence) {
  // The server finds a pending message by the stream sequence of its ack subject; the other
  // tokens (delivery count, consumer sequence, time, pending) are not needed to settle it.
  const std::string subject = fmt::format("$JS.ACK.{}.{}.1.{}.0.0.0", stream, consumer, sequence);
  const std::string_view body = "+TERM";
  if (Status sent = nc_.publish(subject, body); !sent.ok()) {
    return Status::unavailable(error_type::kNatsUnavailable,
                               fmt::format("term: {}", sent.message()));
  }
  return Status();
}

Result<std::optional<StoredPayload>> StreamMessageStore::get(const std::string& stream,
                                                             uint64_t sequence) {
  auto m = read_message(nc_, stream, sequence);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return std::optional<StoredPayload>();
  return std::optional<StoredPayload>(
      StoredPayload{std::move(m->value().subject), std::move(m->value().data)});
}

Status delete_stream_message(NatsConnection& nc, const std::string& stream, uint64_t seq) {
  auto r = nc.api("$JS.API.STREAM.MSG.DELETE." + stream, fmt::format(R"({{"seq":{}}})", seq));
  return r.status();
}

}  // namespace atw
