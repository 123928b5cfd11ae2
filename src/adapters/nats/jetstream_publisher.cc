#include "adapters/nats/jetstream_publisher.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace atw {

namespace {
using SteadyClock = std::chrono::steady_clock;
struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
}  // namespace

Status parse_pub_ack(std::string_view body) {
  if (body.find("\"error\"") == std::string_view::npos) {
    if (body.find("\"seq\"") != std::string_view::npos) return Status();
    return Status::unavailable("publish_failed", fmt::format("unexpected PubAck: {}", body));
  }
  const auto json = nlohmann::json::parse(body, nullptr, false);
  std::string description = "error";
  if (json.is_object() && json.contains("error") && json["error"].is_object()) {
    description = json["error"].value("description", description);
  }
  return Status::unavailable("publish_failed", description);
}

Result<std::unique_ptr<JetStreamPublisher>> JetStreamPublisher::create(
    NatsConnection& nc, std::chrono::milliseconds ack_timeout) {
  std::unique_ptr<JetStreamPublisher> p(new JetStreamPublisher(nc, ack_timeout));
  p->inbox_ = NatsConnection::new_inbox();
  const std::string wildcard = p->inbox_ + ".*";
  natsStatus s = natsConnection_SubscribeSync(&p->sub_, nc.raw(), wildcard.c_str());
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(p->sub_, -1, -1);
  if (s != NATS_OK) {
    return Status::unavailable("nats_unavailable",
                               fmt::format("subscribe {}: {}", wildcard, natsStatus_GetText(s)));
  }
  return p;
}

JetStreamPublisher::~JetStreamPublisher() {
  if (sub_ != nullptr) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }
}

std::vector<Status> JetStreamPublisher::publish(std::span<const OutboundMessage> messages) {
  std::vector<Status> out(messages.size(),
                          Status::unavailable("publish_timeout", "no PubAck in time"));
  if (messages.empty()) return out;
  if (!nc_.connected()) {
    std::fill(out.begin(), out.end(), Status::unavailable("nats_unavailable", "not connected"));
    return out;
  }
  // Reply ids of this call are first_id .. first_id + n - 1; a late PubAck of an earlier call
  // falls outside and is ignored.
  const uint64_t first_id = next_id_;
  next_id_ += messages.size();
  size_t waiting = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string reply = fmt::format("{}.{}", inbox_, first_id + i);
    natsMsg* raw = nullptr;
    natsStatus s = natsMsg_Create(&raw, m.subject.c_str(), reply.c_str(), m.payload.data(),
                                  static_cast<int>(m.payload.size()));
    std::unique_ptr<natsMsg, MsgDeleter> msg(raw);
    if (s == NATS_OK && !m.msg_id.empty())
      s = natsMsgHeader_Set(raw, "Nats-Msg-Id", m.msg_id.c_str());
    if (s == NATS_OK) s = natsConnection_PublishMsg(nc_.raw(), raw);
    if (s == NATS_OK) {
      ++waiting;
      out[i] = Status::unavailable("publish_timeout", "no PubAck in time");
    } else if (s == NATS_MAX_PAYLOAD) {
      out[i] = Status::permanent(
          "publish_too_large",
          fmt::format("{} bytes exceed the server's max_payload", m.payload.size()));
    } else {
      out[i] = Status::unavailable("nats_unavailable", natsStatus_GetText(s));
    }
  }
  std::vector<bool> answered(messages.size(), false);
  const auto deadline = SteadyClock::now() + ack_timeout_;
  while (waiting > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())
            .count();
    if (left <= 0) break;
    natsMsg* raw = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&raw, sub_, std::max<int64_t>(left, 1));
    if (s == NATS_TIMEOUT) break;
    if (s == NATS_NO_RESPONDERS) {
      // No stream captures the subject. The message that said so cannot be told apart, and
      // every other one of this call will say the same: fail what is still waiting.
      for (size_t i = 0; i < messages.size(); ++i) {
        if (!answered[i] && out[i].type() == "publish_timeout") {
          out[i] = Status::unavailable("publish_failed", "no stream for " + messages[i].subject);
        }
      }
      break;
    }
    if (s != NATS_OK) break;
    std::unique_ptr<natsMsg, MsgDeleter> msg(raw);
    const std::string_view subject = natsMsg_GetSubject(raw);
    uint64_t id = 0;
    if (subject.size() <= inbox_.size() + 1) continue;
    const std::string_view tail = subject.substr(inbox_.size() + 1);
    if (std::from_chars(tail.data(), tail.data() + tail.size(), id).ec != std::errc()) continue;
    if (id < first_id || id >= first_id + messages.size()) continue;
    const size_t i = id - first_id;
    if (answered[i]) continue;
    answered[i] = true;
    --waiting;
    if (natsMsg_IsNoResponders(raw)) {
      out[i] = Status::unavailable("publish_failed", "no stream for " + messages[i].subject);
      continue;
    }
    out[i] = parse_pub_ack(
        std::string_view(natsMsg_GetData(raw), static_cast<size_t>(natsMsg_GetDataLength(raw))));
  }
  return out;
}

}  // namespace atw
