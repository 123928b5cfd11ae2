#include "adapters/nats/stream_replay.h"

#include <fmt/format.h>

#include "common/error_types.h"

namespace atw {

namespace {

Status replay_error(const std::string& what, natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  return Status::unavailable(error_type::kNatsUnavailable,
                             fmt::format("{}: {}{}{}", what, natsStatus_GetText(s),
                                         last && *last ? ": " : "", last ? last : ""));
}

}  // namespace

Result<std::unique_ptr<StreamReplay>> StreamReplay::open(NatsConnection& nc,
                                                         const std::string& stream,
                                                         const std::string& subject,
                                                         ReplayStart start,
                                                         uint64_t last_sequence) {
  std::unique_ptr<StreamReplay> r(new StreamReplay());
  r->last_sequence_ = last_sequence;
  if (last_sequence == 0 || (start.sequence != 0 && start.sequence > last_sequence)) {
    r->done_ = true;
    return r;
  }
  auto js = nc.jetstream();
  if (!js.ok()) return js.status();
  r->js_ = std::move(js).value();
  jsSubOptions o;
  jsSubOptions_Init(&o);
  o.Stream = stream.c_str();
  o.Ordered = true;
  if (start.sequence != 0) {
    o.Config.DeliverPolicy = js_DeliverByStartSequence;
    o.Config.OptStartSeq = start.sequence;
  } else {
    o.Config.DeliverPolicy = js_DeliverByStartTime;
    o.Config.OptStartTime = start.time.micros * 1000;
  }
  natsSubscription* sub = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_SubscribeSync(&sub, r->js_.get(), subject.c_str(), nullptr, &o, &code);
  if (s != NATS_OK) {
    return replay_error(
        fmt::format("reading {} back (err_code {})", stream, static_cast<int>(code)), s);
  }
  r->sub_.reset(sub);
  return r;
}

StreamReplay::~StreamReplay() {
  sub_.reset();  // before the context it was made with
}

Result<std::optional<ReplayedMessage>> StreamReplay::next(std::chrono::milliseconds idle) {
  while (!done_) {
    natsMsg* raw = nullptr;
    const natsStatus s =
        natsSubscription_NextMsg(&raw, sub_.get(), static_cast<int64_t>(idle.count()));
    if (s == NATS_TIMEOUT) {
      done_ = true;  // nothing more stored within `idle`: the stream ends before last_sequence
      break;
    }
    if (s != NATS_OK) return replay_error("reading the stream back", s);
    const MessagePtr msg(raw);
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, raw) != NATS_OK) continue;  // a heartbeat or flow control
    ReplayedMessage m;
    m.sequence = meta->Sequence.Stream;
    m.stored_at = Timestamp{meta->Timestamp / 1000};
    const uint64_t pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
    if (m.sequence > last_sequence_) {
      done_ = true;
      break;
    }
    if (m.sequence == last_sequence_ || pending == 0) done_ = true;
    m.payload.assign(natsMsg_GetData(raw), static_cast<size_t>(natsMsg_GetDataLength(raw)));
    return std::optional<ReplayedMessage>(std::move(m));
  }
  return std::optional<ReplayedMessage>();
}

}  // namespace atw
