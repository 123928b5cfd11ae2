#include "pipeline/batch_processor.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "common/error_types.h"
#include "common/redact.h"
#include "domain/dead_letter.h"
#include "domain/event.h"

namespace atw {

void StageTimer::lap(const char* stage) {
  const auto now = std::chrono::steady_clock::now();
  summary_ += fmt::format("{}{}={:.1f}", summary_.empty() ? "" : " ", stage,
                          std::chrono::duration<double, std::milli>(now - last_).count());
  last_ = now;
}

BatchProcessor::BatchProcessor(Dependencies deps, ProcessorSettings settings,
                               const std::atomic<bool>& stopping, Sleeper sleep)
    : d_(deps),
      settings_(std::move(settings)),
      stopping_(stopping),
      sleep_(std::move(sleep)),
      types_([this](const AssetTypeModel& model) {
        for (const auto& p : model.problems()) {
          d_.log.warn(
              "asset type schema problem",
              {{"assetTypeId", model.asset_type_id()}, {"where", p.where}, {"problem", p.problem}});
        }
        d_.metrics.add_error(error_type::kFormulaInvalid, model.problems().size());
      }) {}

void BatchProcessor::process(std::vector<Delivery>& batch, Timestamp fetched_at) {
  if (batch.empty()) return;
  finish(start(batch, fetched_at));
}

std::unique_ptr<BatchProcessor::InFlight> BatchProcessor::start(std::vector<Delivery> batch,
                                                                Timestamp fetched_at) {
  auto f = std::make_unique<InFlight>();
  f->deliveries = std::move(batch);
  f->fetched_at = fetched_at;
  if (f->deliveries.empty()) return f;
  d_.metrics.observe_batch(f->deliveries.size());
  const Timestamp now = d_.clock.now();
  std::vector<Item>& items = f->items;

  // 1. Validate (SPEC D3). Invalid messages are permanent: dead-lettered at their first delivery.
  items.reserve(f->deliveries.size());
  uint64_t skipped_metrics = 0;
  uint64_t unknown_qualities = 0;
  for (Delivery& delivery : f->deliveries) {
    Item item{&delivery, std::nullopt, Fate::kPending, Status(), -1, 0, 0};
    auto parsed = parse_telemetry(delivery.payload, now, settings_.limits);
    if (parsed.ok()) {
      skipped_metrics += static_cast<uint64_t>(parsed->skipped_metrics);
      unknown_qualities += static_cast<uint64_t>(parsed->unknown_qualities);
      item.message = std::move(parsed).value();
    } else {
      item.fate = Fate::kDeadLetter;
      item.error = parsed.status();
      d_.metrics.add_error(item.error.type());
    }
    items.push_back(std::move(item));
  }
  in_hand_.push_back(f.get());
  if (in_hand_.size() == 1) keepalive_.restart(fetched_at);
  f->timer.lap("parse");

  // 2. Resolve the links of every distinct device of the batch, one round trip per tier.
  std::vector<Item*> valid;
  std::vector<DeviceKey> keys;
  for (auto& item : items) {
    if (!item.message) continue;
    valid.push_back(&item);
    keys.push_back(DeviceKey{item.message->organization_id, item.message->device_id});
  }
  ResolvedLinks links;
  if (!valid.empty()) {
    const Status st = with_retries("resolve_links", valid.size(), [&] {
      auto resolved = d_.links.resolve(keys);
      if (!resolved.ok()) return resolved.status();
      links = std::move(resolved).value();
      return Status();
    });
    if (!st.ok()) {
      for (Item* item : valid) fail_retry(*item, st);
      valid.clear();
    }
  }
  f->timer.lap("resolve");

  // 3. Transform each message for each linked asset.
  TransformCounts counts;
  uint64_t no_links = 0;
  for (Item* item : valid) {
    const TelemetryMessage& m = *item->message;
    const auto& set = links.at(DeviceKey{m.organization_id, m.device_id});
    auto assets = transform_message(m, *set, types_, counts);
    if (assets.empty()) {
      // No asset to update (seed scenario 3, SPEC D10a): acked with nothing written.
      ++no_links;
      item->fate = Fate::kAck;
      continue;
    }
    item->result = static_cast<int>(f->results.size());
    f->results.push_back(MessageResult{m.message_id, m.device_id, m.organization_id, m.timestamp,
                                       std::move(assets)});
  }
  d_.metrics.add_no_links(no_links);
  if (unknown_qualities > 0) d_.metrics.add_quality_unknown(unknown_qualities);
  d_.metrics.add_transform_counts(counts.assets_skipped_no_metrics, skipped_metrics,
                                  static_cast<uint64_t>(counts.derivation.missing_variable),
                                  static_cast<uint64_t>(counts.derivation.non_finite));
  f->timer.lap("transform");

  // 4. Start writing every row and score of the batch in one transaction: where the sink has
  // several connections, it writes while the caller finishes the batch before this one.
  f->outcomes.resize(f->results.size());
  if (!f->results.empty()) f->write = d_.sink.write_async(f->results, d_.clock.now());
  return f;
}

void BatchProcessor::finish(std::unique_ptr<InFlight> f) {
  if (f->deliveries.empty()) return;
  // 4. The write's outcome; 5. the events, published and acknowledged.
  if (!f->results.empty()) {
    write_results(*f);
    f->timer.lap("write");
    send_events(*f);
    await_events(*f);
    f->timer.lap("publish");
  }
  // 6. Dead letters, then 7. acknowledge.
  dead_letter(f->items);
  settle(f->items, f->fetched_at);
  f->timer.lap("settle");
  if (d_.log.enabled(LogLevel::kDebug)) {
    d_.log.debug("batch done", {{"messages", static_cast<uint64_t>(f->deliveries.size())},
                                {"stages", f->timer.summary()}});
  }
  std::erase(in_hand_, f.get());
}

Status BatchProcessor::with_retries(const char* stage, size_t messages,
                                    const std::function<Status()>& op) {
  int attempts = 0;
  milliseconds backoff = settings_.retry_initial;
  while (true) {
    Status st = op();
    if (st.ok()) {
      healthy_.store(true, std::memory_order_relaxed);
      return st;
    }
    if (st.permanent()) return st;
    d_.metrics.add_error(st.type());
    ++attempts;
    d_.log.warn("stage failed, will retry", {{"stage", stage},
                                             {"errorType", st.type()},
                                             {"error", st.message()},
                                             {"attempt", attempts},
                                             {"messages", static_cast<uint64_t>(messages)}});
    if (stopping_.load()) return st;
    if (st.unavailable()) {
      healthy_.store(false, std::memory_order_relaxed);
    } else if (attempts >= settings_.retry_attempts) {
      return st;
    }
    // Never longer than the keepalive interval: the messages in hand must not expire meanwhile.
    sleep_(std::min(backoff, settings_.keepalive));
    // The server's AckWait runs on wall time, which includes the failing calls themselves (a
    // connect timeout can outlast the backoff), so the interval is measured on the clock.
    if (keepalive_.due(d_.clock.now())) keep_alive();
    backoff = std::min(backoff * 2, settings_.retry_max);
  }
}

void BatchProcessor::keep_alive() {
  for (const InFlight* f : in_hand_) {
    for (const Item& item : f->items) (void)d_.source.in_progress(*item.delivery);
  }
  d_.source.keep_buffered_alive();
  (void)d_.source.flush();
}

void BatchProcessor::write_results(InFlight& f) {
  std::vector<Item*> owners(f.results.size());
  for (auto& item : f.items) {
    if (item.result >= 0) owners[static_cast<size_t>(item.result)] = &item;
  }
  write_range(owners, f.results, f.outcomes, 0, f.results.size(), d_.clock.now(),
              std::move(f.write));
}

// Writes results [begin, end) in one transaction; when the database refuses them because of
// some message's data, splits the range until the refused message stands alone (SPEC D12).
// `first_answer`, when given, is the outcome of a write of the same range already under way.
void BatchProcessor::write_range(const std::vector<Item*>& owners,
                                 const std::vector<MessageResult>& results,
                                 std::vector<WriteOutcome>& outcomes, size_t begin, size_t end,
                                 Timestamp received_at, TelemetrySink::PendingWrite first_answer) {
  const std::vector<Item*> in_hand(owners.begin() + static_cast<ptrdiff_t>(begin),
                                   owners.begin() + static_cast<ptrdiff_t>(end));
  std::vector<WriteOutcome> written;
  const Status st = with_retries("write", in_hand.size(), [&] {
    auto r = first_answer
                 ? first_answer.take()
                 : d_.sink.write(std::span(results).subspan(begin, end - begin), received_at);
    if (!r.ok()) return r.status();
    written = std::move(r).value();
    return Status();
  });
  if (st.ok()) {
    std::move(written.begin(), written.end(), outcomes.begin() + static_cast<ptrdiff_t>(begin));
    return;
  }
  if (st.permanent()) {
    if (end - begin == 1) {
      owners[begin]->fate = Fate::kDeadLetter;
      owners[begin]->error = st;
      d_.metrics.add_error(st.type());
      return;
    }
    const size_t mid = begin + (end - begin) / 2;
    write_range(owners, results, outcomes, begin, mid, received_at, {});
    write_range(owners, results, outcomes, mid, end, received_at, {});
    return;
  }
  for (Item* item : in_hand) fail_retry(*item, st);
}

void BatchProcessor::send_events(InFlight& f) {
  const Timestamp processed_at = d_.clock.now();
  EventEncoder encoder;
  uint64_t duplicates = 0;
  for (auto& item : f.items) {
    if (item.result < 0 || item.fate != Fate::kPending) continue;
    const MessageResult& r = f.results[static_cast<size_t>(item.result)];
    const WriteOutcome& o = f.outcomes[static_cast<size_t>(item.result)];
    if (o.duplicate) ++duplicates;
    f.publishing.push_back(&item);
    for (size_t j = 0; j < r.assets.size(); ++j) {
      const AssetResult& a = r.assets[j];
      AssetEvent ev{asset_event_id(r.organization_id, r.device_id, r.message_id, a.asset_id),
                    a.asset_id,
                    r.device_id,
                    r.organization_id,
                    r.timestamp,
                    a.metrics,
                    a.health_score,
                    j < o.previous_scores.size() ? o.previous_scores[j] : std::nullopt,
                    processed_at,
                    a.health_details};
      std::string payload = encoder.encode(ev);
      f.events.push_back(
          OutboundMessage{settings_.event_subject, std::move(ev.message_id), std::move(payload)});
      f.event_owner.push_back(&item);
    }
    // Its state changes after its events, in the order it made them.
    for (const auto& change : o.state_events) {
      f.events.push_back(OutboundMessage{settings_.state_subject, change.id, change.payload});
      f.event_owner.push_back(&item);
    }
  }
  d_.metrics.add_duplicates(duplicates);
  if (!f.events.empty()) f.acks = d_.publisher.publish_async(f.events);
}

void BatchProcessor::await_events(InFlight& f) {
  if (f.events.empty()) return;
  // The first answer is the PubAcks of send_events.
  const PublishOutcome out =
      publish_all("publish", f.publishing.size(), f.events, std::move(f.acks), false);
  // A refusal of the message's own (an event larger than the stream takes): that message alone
  // is dead-lettered, with the stream's reason; its rows stay committed.
  for (const auto& [i, refusal] : out.refused) {
    if (f.event_owner[i]->fate == Fate::kDeadLetter) continue;
    f.event_owner[i]->fate = Fate::kDeadLetter;
    f.event_owner[i]->error = refusal;
    d_.metrics.add_error(refusal.type());
  }
  for (size_t i : out.unacked) {
    if (f.event_owner[i]->fate == Fate::kPending) fail_retry(*f.event_owner[i], out.last);
  }
  for (Item* item : f.publishing) {
    if (item->fate != Fate::kPending) continue;
    item->fate = Fate::kAck;
    const MessageResult& r = f.results[static_cast<size_t>(item->result)];
    item->events = r.assets.size();
    const WriteOutcome& o = f.outcomes[static_cast<size_t>(item->result)];
    if (!o.duplicate) {
      for (const auto& a : r.assets) item->rows += a.metrics.size();
      for (const auto& change : o.state_events) d_.metrics.add_state_change(change.to);
    }
  }
}

BatchProcessor::PublishOutcome BatchProcessor::publish_all(
    const char* stage, size_t in_hand, const std::vector<OutboundMessage>& messages,
    Publisher::PendingAcks first_answer, bool refusal_is_retryable) {
  // Each try republishes only what has not been acknowledged (harmless for what was: the
  // stream drops a second copy by its Nats-Msg-Id).
  const std::string_view failure_type =
      refusal_is_retryable ? error_type::kDlqPublishFailed : error_type::kPublishFailed;
  PublishOutcome out;
  out.unacked.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) out.unacked.push_back(i);
  out.last = with_retries(stage, in_hand, [&] {
    std::vector<Status> statuses;
    if (first_answer) {
      statuses = first_answer();
      first_answer = nullptr;
    } else {
      std::vector<OutboundMessage> subset;
      subset.reserve(out.unacked.size());
      for (size_t i : out.unacked) subset.push_back(messages[i]);
      statuses = d_.publisher.publish(subset);
    }
    std::vector<size_t> failed;
    Status first_failure;
    for (size_t k = 0; k < out.unacked.size(); ++k) {
      const Status s =
          k < statuses.size() ? statuses[k] : Status::unavailable(failure_type, "no answer");
      if (s.ok()) continue;
      if (s.permanent() && !refusal_is_retryable) {
        out.refused.emplace_back(out.unacked[k], s);
        continue;
      }
      failed.push_back(out.unacked[k]);
      if (first_failure.ok()) {
        first_failure = s.permanent() ? Status::retryable(failure_type, s.message()) : s;
      }
    }
    out.unacked = std::move(failed);
    return first_failure;
  });
  return out;
}

void BatchProcessor::dead_letter(std::vector<Item>& items) {
  std::vector<OutboundMessage> records;
  std::vector<Item*> owners;
  const Timestamp failed_at = d_.clock.now();
  for (auto& item : items) {
    if (item.fate != Fate::kDeadLetter) continue;
    const Delivery& dl = *item.delivery;
    // The reason as it was, but for any secret a server's error may quote (common/redact.h).
    DeadLetter record{dl.stream,         dl.subject,        dl.stream_sequence,
                      dl.consumer,       dl.delivery_count, redact_secrets(item.error.message()),
                      item.error.type(), failed_at,         dl.payload};
    // One record per stream message: a second attempt to dead-letter it is dropped by the DLQ
    // stream's duplicate window.
    records.push_back(OutboundMessage{settings_.dlq_subject,
                                      dead_letter_msg_id(dl.stream, dl.stream_sequence),
                                      to_json(record, settings_.max_record_bytes)});
    owners.push_back(&item);
    d_.log.warn("message dead-lettered",
                {{"messageId", item.message ? item.message->message_id : ""},
                 {"streamSequence", dl.stream_sequence},
                 {"deliveryCount", dl.delivery_count},
                 {"errorType", item.error.type()},
                 {"error", item.error.message()}});
  }
  if (records.empty()) return;

  // A record the DLQ refuses for good is as bad as an outage: the message must not be lost, so
  // it is retried like one and, failing that, stays with the stream to be redelivered.
  const PublishOutcome out = publish_all("dead_letter", owners.size(), records, nullptr, true);
  const uint64_t published = records.size() - out.unacked.size();
  for (size_t i : out.unacked) {
    owners[i]->fate = Fate::kRetry;  // not in the DLQ: redeliver rather than lose it
    owners[i]->error = out.last;
  }
  d_.metrics.add_dead_lettered(published);
}

void BatchProcessor::settle(std::vector<Item>& items, Timestamp fetched_at) {
  uint64_t acked = 0;
  uint64_t rows = 0;
  uint64_t events = 0;
  for (auto& item : items) {
    const Delivery& dl = *item.delivery;
    switch (item.fate) {
      case Fate::kPending:  // cannot happen: every path decides; treat as retry to lose nothing
      case Fate::kRetry: {
        const auto delay = settings_.nak_delay * static_cast<int64_t>(dl.delivery_count);
        (void)d_.source.nak(dl, delay);
        break;
      }
      case Fate::kDeadLetter:
        (void)d_.source.term(dl);
        break;
      case Fate::kAck:
        (void)d_.source.ack(dl);
        ++acked;
        rows += item.rows;
        events += item.events;
        break;
    }
  }
  const Timestamp now = d_.clock.now();
  std::vector<double> latencies(items.size(),
                                static_cast<double>(now.micros - fetched_at.micros) / 1e6);
  d_.metrics.observe_latencies(latencies);
  d_.metrics.add_processed(acked, rows, events);
}

void BatchProcessor::fail_retry(Item& item, const Status& error) {
  item.error = error;
  // The last delivery: the server will not offer the message again, so it goes to the DLQ now
  // (an outage is not the message's fault; that message is left to the MAX_DELIVERIES net).
  const bool last = item.delivery->delivery_count >= d_.source.max_deliver();
  item.fate = (last && !error.unavailable()) ? Fate::kDeadLetter : Fate::kRetry;
}

}  // namespace atw
