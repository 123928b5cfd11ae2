#include "adapters/nats/jetstream_source.h"

#include <fmt/format.h>

#include <charconv>
#include <iterator>

#include "common/error_types.h"

namespace atw {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::vector<std::string_view> split_tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

bool to_u64(std::string_view s, uint64_t& v) {
  return !s.empty() && std::from_chars(s.data(), s.data() + s.size(), v).ec == std::errc() &&
         std::from_chars(s.data(), s.data() + s.size(), v).ptr == s.data() + s.size();
}

}  // namespace

bool parse_ack_subject(std::string_view reply, Delivery& out, uint64_t& pending) {
  const auto t = split_tokens(reply);
  if (t.size() < 9 || t[0] != "$JS" || t[1] != "ACK") return false;
  // 9 tokens: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
  // 12+: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.
  //      <pending>.<token>
  const size_t base = t.size() == 9 ? 2 : 4;
  if (t.size() != 9 && t.size() < 12) return false;
  uint64_t delivered = 0, sseq = 0, cseq = 0, ts = 0;
  if (!to_u64(t[base + 2], delivered) || !to_u64(t[base + 3], sseq) || !to_u64(t[base + 4], cseq) ||
      !to_u64(t[base + 5], ts) || !to_u64(t[base + 6], pending)) {
    return false;
  }
  out.stream = std::string(t[base]);
  out.consumer = std::string(t[base + 1]);
  out.delivery_count = delivered;
  out.stream_sequence = sseq;
  out.published_at = Timestamp{static_cast<int64_t>(ts / 1000)};
  return true;
}

Result<std::unique_ptr<JetStreamSource>> JetStreamSource::create(NatsConnection& nc,
                                                                 PullSettings settings,
                                                                 WorkerMetrics& metrics,
                                                                 Logger& log) {
  std::unique_ptr<JetStreamSource> src(new JetStreamSource(nc, std::move(settings), metrics, log));
  src->inbox_ = NatsConnection::new_inbox();
  src->next_subject_ =
      fmt::format("$JS.API.CONSUMER.MSG.NEXT.{}.{}", src->settings_.stream, src->settings_.durable);
  const std::string wildcard = src->inbox_ + ".*";
  auto sub = nc.subscribe_sync(wildcard);
  if (!sub.ok()) return sub.status();
  src->sub_ = std::move(sub).value();
  src->generation_ = nc.generation();
  return src;
}

bool JetStreamSource::drained() const {
  return !intake_open_ && requests_.empty() && held_.empty() && queued() == 0;
}

size_t JetStreamSource::outstanding() const {
  size_t n = 0;
  for (const auto& [id, r] : requests_) n += r.remaining;
  return n;
}

Status JetStreamSource::request_more(size_t want) {
  const uint64_t id = next_request_++;
  const std::string reply = fmt::format("{}.{}", inbox_, id);
  const auto expires_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(settings_.expires).count();
  const std::string body = fmt::format(R"({{"batch":{},"expires":{}}})", want, expires_ns);
  if (Status sent = nc_.publish(next_subject_, body, reply); !sent.ok()) {
    return Status::unavailable(error_type::kNatsUnavailable,
                               fmt::format("pull request: {}", sent.message()));
  }
  requests_.emplace(id,
                    PullRequest{want, SteadyClock::now() + settings_.expires + settings_.grace});
  return Status();
}

void JetStreamSource::expire_requests() {
  const auto now = SteadyClock::now();
  const size_t erased =
      std::erase_if(requests_, [now](const auto& kv) { return kv.second.written_off_at <= now; });
  if (erased > 0 && log_.enabled(LogLevel::kDebug)) {
    log_.debug("pull requests written off: no answer from the server",
               {{"requests", static_cast<uint64_t>(erased)}});
  }
}

void JetStreamSource::take(natsMsg* msg, std::vector<Delivery>& out) {
  const char* reply = natsMsg_GetReply(msg);
  Delivery d;
  uint64_t pending = 0;
  if (reply != nullptr && parse_ack_subject(reply, d, pending)) {
    // A pulled message keeps its original subject, so it does not say which request it answers;
    // the server serves waiting requests in order, so it is counted against the oldest.
    d.payload.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    d.subject = natsMsg_GetSubject(msg);
    d.ack_token = reply;
    d.stream_pending = pending;
    out.push_back(std::move(d));
    if (settings_.reports_pending) metrics_.set_stream_pending(static_cast<int64_t>(pending));
    if (!requests_.empty() && --requests_.begin()->second.remaining == 0) {
      requests_.erase(requests_.begin());
    }
    return;
  }
  // Status messages come on the request's own reply subject.
  const std::string_view subject = natsMsg_GetSubject(msg);
  uint64_t id = 0;
  const bool known = subject.size() > inbox_.size() + 1 &&
                     to_u64(subject.substr(inbox_.size() + 1), id) && requests_.contains(id);
  const char* status = nullptr;
  if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status != nullptr) {
    const std::string_view code(status);
    if (code == "100") return;  // idle heartbeat
    if (code == "409") {
      const char* desc = nullptr;
      natsMsgHeader_Get(msg, "Description", &desc);
      log_.warn("pull request ended by server",
                {{"status", code}, {"description", desc ? desc : ""}});
    }
    // 408 (expired), 404 (no messages), 409: the request is over.
    if (log_.enabled(LogLevel::kDebug) && code != "408") {
      log_.debug("pull request ended", {{"status", code}, {"known", known}});
    }
    if (known) requests_.erase(id);
  }
}

Result<std::vector<Delivery>> JetStreamSource::fetch(size_t max, milliseconds wait, size_t ahead,
                                                     const std::function<bool()>& other_work) {
  std::vector<Delivery> out;
  MessageGroup taken;
  if (!nc_.connected()) {
    return Status::unavailable(error_type::kNatsUnavailable, "not connected to NATS");
  }
  if (nc_.generation() != generation_) {
    // The server dropped this connection's pull requests; messages already on their way are
    // still taken when they arrive.
    requests_.clear();
    generation_ = nc_.generation();
  }
  max_outstanding_ = max + std::min(ahead, max);
  while (!held_.empty() && out.size() < max) {
    out.push_back(std::move(held_.front()));
    held_.pop_front();
  }
  const auto deadline = SteadyClock::now() + wait;
  while (out.size() < max) {
    expire_requests();
    // This batch, and what is wanted ahead of it.
    while (intake_open_ && outstanding() + max <= max_outstanding_) {
      if (Status st = request_more(max); !st.ok()) {
        if (out.empty()) return st;
        return out;
      }
    }
    // Other work ends the waiting, not the taking: what has already arrived is taken first.
    if (other_work && queued() == 0 && other_work()) break;
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()).count();
    if (left <= 0) break;
    // With other work to watch for, the wait is cut into slices of a millisecond.
    const int64_t slice = other_work ? 1 : std::max<int64_t>(left, 1);
    natsMsg* msg = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&msg, sub_.get(), slice);
    if (s == NATS_TIMEOUT) {
      if (other_work) continue;
      break;
    }
    if (s != NATS_OK) {
      if (!out.empty()) break;
      return Status::unavailable(error_type::kNatsUnavailable,
                                 fmt::format("next message: {}", natsStatus_GetText(s)));
    }
    take(msg, out);
    taken.emplace_back(msg);
  }
  return out;
}

uint64_t JetStreamSource::queued() const {
  uint64_t n = 0;
  return natsSubscription_QueuedMsgs(sub_.get(), &n) == NATS_OK ? n : 0;
}

void JetStreamSource::keep_buffered_alive() {
  if (uint64_t waiting = queued(); waiting > 0) {
    std::vector<Delivery> taken;
    MessageGroup bin;
    for (; waiting > 0; --waiting) {
      natsMsg* msg = nullptr;
      if (natsSubscription_NextMsg(&msg, sub_.get(), 1) != NATS_OK) break;
      take(msg, taken);
      bin.emplace_back(msg);
    }
    std::move(taken.begin(), taken.end(), std::back_inserter(held_));
  }
  for (const Delivery& d : held_) (void)in_progress(d);
}

Status JetStreamSource::nak(const Delivery& d, milliseconds delay) {
  const auto delay_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count();
  return reply(d, fmt::format(R"(-NAK {{"delay":{}}})", delay_ns));
}

Status JetStreamSource::reply(const Delivery& d, std::string_view body) {
  Status sent = nc_.publish(d.ack_token, body);
  if (sent.ok()) return sent;
  return Status::unavailable(error_type::kNatsUnavailable,
                             fmt::format("ack {}: {}", d.ack_token, sent.message()));
}

Status JetStreamSource::flush() {
  return nc_.flush(std::chrono::seconds(2));
}

}  // namespace atw
