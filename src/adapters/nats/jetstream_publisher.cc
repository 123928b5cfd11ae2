#include "adapters/nats/jetstream_publisher.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>

#include "common/error_types.h"

namespace atw {

namespace {
using SteadyClock = std::chrono::steady_clock;
}  // namespace

namespace {
// JetStream's error code for a message larger than the stream's max_msg_size: the one refusal
// that is the message's own. Every other refusal (a full stream with discard new, an account
// over its limits, storage trouble) would refuse any message, so it is waited out.
constexpr int kMessageExceedsMaximum = 10054;
}  // namespace

namespace {

// A JetStream API error as the PubAck gives it ({"error": {"err_code": ..., "description": ...}}):
// fields of other types are read as absent.
Status pub_ack_error(const simdjson::dom::element* error) {
  std::string_view description = "error";
  int64_t err_code = 0;
  simdjson::dom::object fields;
  if (error != nullptr && error->get_object().get(fields) == simdjson::SUCCESS) {
    std::string_view text;
    if (fields["description"].get_string().get(text) == simdjson::SUCCESS) description = text;
    int64_t code = 0;
    if (fields["err_code"].get_int64().get(code) == simdjson::SUCCESS) err_code = code;
  }
  if (err_code == kMessageExceedsMaximum) {
    return Status::permanent(error_type::kPublishRefused,
                             fmt::format("the stream refused it: {}", description));
  }
  return Status::unavailable(error_type::kPublishFailed,
                             fmt::format("{} (err_code {})", description, err_code));
}

}  // namespace

Status parse_pub_ack(std::string_view body) {
  // Every publish has its PubAck parsed, so a parser is kept per thread (simdjson's DOM parser
  // reads a body this small in a fraction of a microsecond).
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object ack;
  if (parser.parse(body.data(), body.size()).get_object().get(ack) == simdjson::SUCCESS) {
    simdjson::dom::element error;
    if (ack["error"].get(error) == simdjson::SUCCESS) return pub_ack_error(&error);
    uint64_t seq = 0;
    if (ack["seq"].get_uint64().get(seq) == simdjson::SUCCESS) return Status();
  } else if (body.find("\"error\"") != std::string_view::npos) {
    return pub_ack_error(nullptr);  // an error all the same, never a success
  }
  return Status::unavailable(error_type::kPublishFailed,
                             fmt::format("unexpected PubAck: {}", body));
}

Result<std::unique_ptr<JetStreamPublisher>> JetStreamPublisher::create(
    NatsConnection& nc, std::chrono::milliseconds ack_timeout) {
  std::unique_ptr<JetStreamPublisher> p(new JetStreamPublisher(nc, ack_timeout));
  p->inbox_ = NatsConnection::new_inbox();
  const std::string wildcard = p->inbox_ + ".*";
  auto sub = nc.subscribe_sync(wildcard);
  if (!sub.ok()) return sub.status();
  p->sub_ = std::move(sub).value();
  return p;
}

std::vector<Status> JetStreamPublisher::publish(std::span<const OutboundMessage> messages) {
  auto ticket = send(messages);
  return collect(*ticket);
}

Publisher::PendingAcks JetStreamPublisher::publish_async(
    std::span<const OutboundMessage> messages) {
  auto ticket = send(messages);
  return [this, ticket] { return collect(*ticket); };
}

std::shared_ptr<JetStreamPublisher::Ticket> JetStreamPublisher::send(
    std::span<const OutboundMessage> messages) {
  auto t = std::make_shared<Ticket>();
  t->first_id = next_id_;
  next_id_ += messages.size();
  t->statuses.assign(messages.size(),
                     Status::unavailable(error_type::kPublishTimeout, "no PubAck in time"));
  t->answered.assign(messages.size(), false);
  t->deadline = SteadyClock::now() + ack_timeout_;
  if (messages.empty()) return t;
  if (!nc_.connected()) {
    std::fill(t->statuses.begin(), t->statuses.end(),
              Status::unavailable(error_type::kNatsUnavailable, "not connected"));
    std::fill(t->answered.begin(), t->answered.end(), true);
    return t;
  }
  MessageGroup sent;
  sent.reserve(messages.size());
  // The reply subjects: the inbox, a dot, then the publish's id.
  std::string reply = inbox_ + '.';
  const size_t id_at = reply.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    char id[24];
    const auto id_end = std::to_chars(id, id + sizeof id, t->first_id + i).ptr;
    reply.replace(id_at, std::string::npos, id, static_cast<size_t>(id_end - id));
    natsMsg* raw = nullptr;
    natsStatus s = natsMsg_Create(&raw, m.subject.c_str(), reply.c_str(), m.payload.data(),
                                  static_cast<int>(m.payload.size()));
    if (raw != nullptr) sent.emplace_back(raw);
    if (s == NATS_OK && !m.msg_id.empty()) {
      s = natsMsgHeader_Set(raw, "Nats-Msg-Id", m.msg_id.c_str());
    }
    if (s == NATS_OK) s = nc_.publish(raw);
    if (s == NATS_OK) {
      ++t->waiting;
      continue;
    }
    t->answered[i] = true;
    t->statuses[i] = s == NATS_MAX_PAYLOAD
                         ? Status::permanent(error_type::kPublishTooLarge,
                                             fmt::format("{} bytes exceed the server's max_payload",
                                                         m.payload.size()))
                         : Status::unavailable(error_type::kNatsUnavailable, natsStatus_GetText(s));
  }
  outstanding_.emplace(t->first_id, t);
  return t;
}

void JetStreamPublisher::deliver(uint64_t id, Status status) {
  // The ticket whose range holds `id`: the last one starting at or before it.
  auto it = outstanding_.upper_bound(id);
  if (it == outstanding_.begin()) return;
  --it;
  auto t = it->second.lock();
  if (!t || id - t->first_id >= t->statuses.size()) return;  // abandoned, or a stale id
  const size_t i = id - t->first_id;
  if (t->answered[i]) return;
  t->answered[i] = true;
  t->statuses[i] = std::move(status);
  --t->waiting;
}

std::vector<Status> JetStreamPublisher::collect(Ticket& t) {
  MessageGroup answers;
  bool no_responders = false;
  while (t.waiting > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.deadline - SteadyClock::now())
            .count();
    if (left <= 0) break;
    natsMsg* raw = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&raw, sub_.get(), std::max<int64_t>(left, 1));
    if (s == NATS_TIMEOUT) break;
    if (s == NATS_NO_RESPONDERS) {
      // No stream captured one of the subjects. nats.c drops that reply, and with it the
      // subject that says which publish (of this ticket or an earlier one) it answers, so it
      // answers none: what is left unanswered fails at the deadline, with this reason. Failing
      // the whole ticket here instead would leave the other replies queued, each failing a
      // later ticket in turn.
      no_responders = true;
      continue;
    }
    if (s != NATS_OK) break;
    answers.emplace_back(raw);
    const std::string_view subject = natsMsg_GetSubject(raw);
    uint64_t id = 0;
    if (subject.size() <= inbox_.size() + 1) continue;
    const std::string_view tail = subject.substr(inbox_.size() + 1);
    if (std::from_chars(tail.data(), tail.data() + tail.size(), id).ec != std::errc()) continue;
    if (natsMsg_IsNoResponders(raw)) {
      deliver(id, Status::unavailable(error_type::kPublishFailed, "no stream for the subject"));
      continue;
    }
    deliver(id, parse_pub_ack(std::string_view(natsMsg_GetData(raw),
                                               static_cast<size_t>(natsMsg_GetDataLength(raw)))));
  }
  if (no_responders) {
    for (size_t i = 0; i < t.statuses.size(); ++i) {
      if (!t.answered[i]) {
        t.statuses[i] =
            Status::unavailable(error_type::kPublishFailed, "no stream for the subject");
      }
    }
  }
  outstanding_.erase(t.first_id);
  // Forget tickets nobody holds any more.
  std::erase_if(outstanding_, [](const auto& kv) { return kv.second.expired(); });
  return t.statuses;
}

}  // namespace atw
