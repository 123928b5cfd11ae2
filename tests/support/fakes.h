#pragma once
// In-memory stand-ins for the pipeline's ports (src/pipeline/ports.h), for unit tests that need
// no server. Each fake records what the pipeline did to it, can be scripted to fail, and models
// the real system's semantics where the pipeline relies on them (JetStream's dedupe by
// Nats-Msg-Id, the PostgreSQL sink's idempotence and forward-only scores).
//
// Single-threaded, like the pipeline. A Journal shared by several fakes records the order of
// their calls across them (e.g. "write" before "publish" before "ack").

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "domain/health_state.h"
#include "domain/links.h"
#include "domain/score_ledger.h"
#include "pipeline/ports.h"
#include "pipeline/state_events.h"

namespace atw {

// The order of calls across fakes: "write", "publish <subject>", "ack <token>", "nak <token>",
// "term <token>", "in_progress <token>", "flush".
struct Journal {
  std::vector<std::string> entries;
  void add(std::string e) { entries.push_back(std::move(e)); }
  // Index of the first entry equal to `e`, or -1.
  int index_of(const std::string& e) const {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i] == e) return static_cast<int>(i);
    }
    return -1;
  }
  // Index of the last entry equal to `e`, or -1.
  int last_index_of(const std::string& e) const {
    for (size_t i = entries.size(); i-- > 0;) {
      if (entries[i] == e) return static_cast<int>(i);
    }
    return -1;
  }
};

// Failures to hand out, one per call, before calls succeed again.
class FailureScript {
 public:
  void fail_next(int times, const Status& st) {
    for (int i = 0; i < times; ++i) pending_.push_back(st);
  }
  // The failure for this call, if one is scripted.
  std::optional<Status> take() {
    if (pending_.empty()) return std::nullopt;
    Status st = pending_.front();
    pending_.pop_front();
    return st;
  }
  size_t remaining() const { return pending_.size(); }

 private:
  std::deque<Status> pending_;
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(Timestamp start = Timestamp::from_seconds(1769610601)) : now_(start) {}
  Timestamp now() const override { return now_; }
  void set(Timestamp t) { now_ = t; }
  void advance(std::chrono::microseconds d) { now_.micros += d.count(); }

 private:
  Timestamp now_;
};

class FakeSource final : public MessageSource {
 public:
  explicit FakeSource(Journal* journal = nullptr) : journal_(journal) {}

  // Queues a delivery, filling in a unique ack token and stream sequence when they are unset.
  Delivery& push(Delivery d) {
    if (d.stream_sequence == 0) d.stream_sequence = ++last_sequence_;
    if (d.ack_token.empty()) d.ack_token = "t" + std::to_string(d.stream_sequence);
    if (d.stream.empty()) d.stream = "TELEMETRY_NORMALIZED";
    if (d.subject.empty()) d.subject = "telemetry.normalized.v1";
    if (d.consumer.empty()) d.consumer = "asset-processor-group";
    queue_.push_back(std::move(d));
    return queue_.back();
  }
  Delivery& push(std::string_view payload, uint64_t delivery_count = 1) {
    Delivery d;
    d.payload = std::string(payload);
    d.delivery_count = delivery_count;
    return push(std::move(d));
  }
  // Takes everything queued, as a batch handed straight to BatchProcessor::process.
  std::vector<Delivery> take_all() {
    std::vector<Delivery> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }
  size_t queued() const { return queue_.size(); }

  Result<std::vector<Delivery>> fetch(size_t max, milliseconds, size_t ahead,
                                      const std::function<bool()>& other_work) override {
    ++fetch_calls;
    fetches.push_back({max, ahead});
    // "none" when the fetch was given nothing else to watch; else what that said at the time.
    other_work_answers.push_back(!other_work ? "none" : other_work() ? "true" : "false");
    if (on_fetch) on_fetch();
    if (auto st = fetch_failures.take()) return *st;
    std::vector<Delivery> out;
    while (!queue_.empty() && out.size() < max) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return out;
  }
  Status ack(const Delivery& d) override { return record("ack", d); }
  Status nak(const Delivery& d, milliseconds delay) override {
    nak_delays[d.ack_token] = delay;
    return record("nak", d);
  }
  Status term(const Delivery& d) override { return record("term", d); }
  Status in_progress(const Delivery& d) override {
    ++in_progress_count[d.ack_token];
    if (journal_ != nullptr) journal_->add("in_progress " + d.ack_token);
    return Status();
  }
  Status flush() override {
    ++flush_calls;
    if (journal_ != nullptr) journal_->add("flush");
    return Status();
  }
  // The queue stands for what the server has sent and no fetch has taken yet.
  void keep_buffered_alive() override {
    for (const Delivery& d : queue_) (void)in_progress(d);
  }
  void close_intake() override { intake_closed = true; }
  bool drained() const override { return intake_closed && queue_.empty(); }
  uint64_t max_deliver() const override { return max_deliver_value; }

  // How a delivery was settled: "ack", "nak", "term", "" when never, or e.g. "ack,ack" when
  // settled more than once (always a bug).
  std::string settlement(const std::string& token) const {
    auto it = settlements_.find(token);
    return it == settlements_.end() ? std::string() : it->second;
  }
  size_t settled_count(const std::string& kind) const {
    size_t n = 0;
    for (const auto& [token, s] : settlements_) n += s == kind ? 1 : 0;
    return n;
  }
  int in_progress_of(const std::string& token) const {
    auto it = in_progress_count.find(token);
    return it == in_progress_count.end() ? 0 : it->second;
  }

  uint64_t max_deliver_value = 3;
  std::vector<std::pair<size_t, size_t>> fetches;  // (max, ahead) of each fetch
  FailureScript fetch_failures;
  std::function<void()> on_fetch;  // runs at the start of every fetch
  std::map<std::string, milliseconds> nak_delays;
  std::map<std::string, int> in_progress_count;
  int fetch_calls = 0;
  std::vector<std::string> other_work_answers;
  int flush_calls = 0;
  bool intake_closed = false;

 private:
  Status record(const std::string& kind, const Delivery& d) {
    std::string& s = settlements_[d.ack_token];
    if (!s.empty()) s += ',';
    s += kind;
    if (journal_ != nullptr) journal_->add(kind + " " + d.ack_token);
    return Status();
  }

  Journal* journal_;
  std::deque<Delivery> queue_;
  uint64_t last_sequence_ = 0;
  std::map<std::string, std::string> settlements_;
};

// JetStream as the pipeline sees it: a message whose msg_id the stream already holds is
// acknowledged but not stored again (the duplicate window).
class FakePublisher final : public Publisher {
 public:
  explicit FakePublisher(Journal* journal = nullptr) : journal_(journal) {}

  std::vector<Status> publish(std::span<const OutboundMessage> messages) override {
    ++calls;
    std::vector<Status> out;
    out.reserve(messages.size());
    const std::optional<Status> call_failure = failures.take();
    for (const auto& m : messages) {
      attempts.push_back(m);
      if (call_failure) {
        out.push_back(*call_failure);
        continue;
      }
      if (auto it = refuse_subject.find(m.subject); it != refuse_subject.end()) {
        out.push_back(it->second);
        continue;
      }
      if (auto it = refuse_msg_id.find(m.msg_id); it != refuse_msg_id.end()) {
        out.push_back(it->second);
        continue;
      }
      if (auto it = flaky_msg_id.find(m.msg_id); it != flaky_msg_id.end()) {
        if (auto st = it->second.take()) {
          out.push_back(*st);
          continue;
        }
      }
      if (!m.msg_id.empty() && !seen_ids_.insert(m.msg_id).second) {
        ++duplicates_dropped;
      } else {
        stored.push_back(m);
      }
      out.push_back(Status());
    }
    if (journal_ != nullptr && !messages.empty()) {
      journal_->add("publish " + messages.front().subject);
    }
    return out;
  }

  // What the streams hold on `subject`, in publish order.
  std::vector<OutboundMessage> on(const std::string& subject) const {
    std::vector<OutboundMessage> out;
    for (const auto& m : stored) {
      if (m.subject == subject) out.push_back(m);
    }
    return out;
  }

  FailureScript failures;                             // whole calls that fail, every message
  std::map<std::string, Status> refuse_subject;       // every message to a subject fails
  std::map<std::string, Status> refuse_msg_id;        // one message fails, every time
  std::map<std::string, FailureScript> flaky_msg_id;  // one message fails its next tries
  std::vector<OutboundMessage> stored;                // what the streams hold
  std::vector<OutboundMessage> attempts;              // every message offered, including copies
  int calls = 0;
  int duplicates_dropped = 0;

 private:
  Journal* journal_;
  std::set<std::string> seen_ids_;
};

class FakeLinkStore final : public LinkStore {
 public:
  Result<std::vector<LinkSet>> load(std::span<const DeviceKey> keys) override {
    ++load_calls;
    loaded_keys.emplace_back(keys.begin(), keys.end());
    if (auto st = failures.take()) return *st;
    std::vector<LinkSet> out;
    out.reserve(keys.size());
    for (const auto& k : keys) {
      auto it = sets.find(k);
      out.push_back(it == sets.end() ? LinkSet{} : it->second);
    }
    return out;
  }

  std::unordered_map<DeviceKey, LinkSet, DeviceKeyHash> sets;
  FailureScript failures;
  int load_calls = 0;
  std::vector<std::vector<DeviceKey>> loaded_keys;  // per call
};

// The shared (Redis) tier. When `down`, it answers misses and drops writes, as the adapter does.
class FakeLinkCache final : public LinkCache {
 public:
  std::vector<std::optional<LinkSet>> get_many(std::span<const DeviceKey> keys) override {
    ++get_many_calls;
    requested_keys.emplace_back(keys.begin(), keys.end());
    std::vector<std::optional<LinkSet>> out;
    for (const auto& k : keys) {
      auto it = sets.find(k);
      out.push_back(down || it == sets.end() ? std::nullopt : std::optional<LinkSet>(it->second));
    }
    return out;
  }
  void put_many(std::span<const DeviceKey> keys, std::span<const LinkSet> values) override {
    ++put_many_calls;
    if (down) return;
    for (size_t i = 0; i < keys.size() && i < values.size(); ++i) sets[keys[i]] = values[i];
  }
  void invalidate_all() override {
    ++invalidate_all_calls;
    sets.clear();
  }
  void invalidate(std::span<const DeviceKey> keys) override {
    ++invalidate_calls;
    for (const auto& k : keys) {
      invalidated.push_back(k);
      sets.erase(k);
    }
  }

  std::unordered_map<DeviceKey, LinkSet, DeviceKeyHash> sets;
  bool down = false;
  int get_many_calls = 0;
  int put_many_calls = 0;
  int invalidate_calls = 0;
  int invalidate_all_calls = 0;
  std::vector<std::vector<DeviceKey>> requested_keys;  // per get_many call
  std::vector<DeviceKey> invalidated;
};

// The PostgreSQL sink's semantics (see adapters/postgres/pg_telemetry_sink.h), in memory:
// processed message ids with the previous scores recorded at their first write, history rows of
// new messages only, asset scores that move forward in time only, in-batch duplicates, and
// all-or-nothing batches.
class FakeSink final : public TelemetrySink {
 public:
  struct HistoryRow {
    std::string entity_id;
    std::string metric_key;
    double value;
    Timestamp timestamp;
    Timestamp received_at;
    std::string source_device_id;
    std::string message_id;  // not a column: lets tests tell the rows of each message apart
  };
  struct AssetRow {
    std::optional<double> health_score;
    std::optional<Timestamp> updated_at;
  };

  explicit FakeSink(Journal* journal = nullptr) : journal_(journal) {}

  Result<std::vector<WriteOutcome>> write(std::span<const MessageResult> messages,
                                          Timestamp received_at) override {
    ++write_calls;
    batch_sizes.push_back(messages.size());
    if (on_write) on_write();
    if (journal_ != nullptr) journal_->add("write");
    if (auto st = failures.take()) return *st;
    for (const auto& m : messages) {
      if (auto it = poison.find(m.message_id); it != poison.end()) return it->second;
    }

    std::vector<WriteOutcome> outcomes(messages.size());
    std::map<std::string, size_t> first_in_batch;
    std::vector<bool> fresh(messages.size());
    for (size_t i = 0; i < messages.size(); ++i) {
      const bool repeat = !first_in_batch.emplace(identity(messages[i]), i).second;
      fresh[i] = !repeat && !processed.contains(identity(messages[i]));
    }
    ScoreLedger ledger;
    HealthStateLedger state_ledger;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (!fresh[i]) continue;
      for (const auto& a : messages[i].assets) {
        auto it = assets.find(a.asset_id);
        std::optional<Timestamp> last_measured;
        if (it != assets.end()) {
          ledger.load(a.asset_id, StoredScore{it->second.health_score, it->second.updated_at});
          last_measured = it->second.updated_at;
        }
        auto st = states.find(a.asset_id);
        state_ledger.load(a.asset_id, st != states.end() ? std::optional(st->second) : std::nullopt,
                          last_measured);
      }
    }
    std::map<std::string, std::string> recorded_changes;
    std::map<std::string, std::map<std::string, std::optional<double>>> recorded;
    std::vector<HistoryRow> rows;
    for (size_t i = 0; i < messages.size(); ++i) {
      const MessageResult& m = messages[i];
      if (fresh[i]) {
        auto& prev = recorded[identity(m)];
        for (const auto& a : m.assets) {
          auto p = ledger.apply(a.asset_id, a.health_score, m.timestamp);
          outcomes[i].previous_scores.push_back(p);
          prev[a.asset_id] = p;
          if (a.health_states) {
            auto t = state_ledger.apply(a.asset_id, m.organization_id, *a.health_states,
                                        a.health_score, m.timestamp);
            if (t) outcomes[i].state_events.push_back(state_event_of(m, a, *t));
          }
          for (const Metric& metric : a.metrics) {
            rows.push_back(HistoryRow{a.asset_id, metric.name, metric.value, m.timestamp,
                                      received_at, m.device_id, m.message_id});
          }
        }
        recorded_changes[identity(m)] = record_state_events(outcomes[i].state_events);
        continue;
      }
      outcomes[i].duplicate = true;
      auto it = processed.find(identity(m));
      const auto& prev = it != processed.end() ? it->second : recorded[identity(m)];
      outcomes[i].state_events = recorded_state_events(
          it != processed.end() ? state_records[identity(m)] : recorded_changes[identity(m)]);
      for (const auto& a : m.assets) {
        auto p = prev.find(a.asset_id);
        outcomes[i].previous_scores.push_back(p != prev.end() ? p->second : std::nullopt);
      }
    }

    // Commit.
    for (auto& [id, prev] : recorded) processed.emplace(id, std::move(prev));
    for (auto& [id, record] : recorded_changes) state_records.emplace(id, std::move(record));
    for (const auto& row : state_ledger.changed()) states[row.asset_id] = row.state;
    history.insert(history.end(), rows.begin(), rows.end());
    for (const auto& c : ledger.changes()) {
      assets[c.asset_id] = AssetRow{c.score, c.at};
      ++score_updates;
    }
    return outcomes;
  }

  std::vector<HistoryRow> rows_of(const std::string& message_id) const {
    std::vector<HistoryRow> out;
    for (const auto& r : history) {
      if (r.message_id == message_id) out.push_back(r);
    }
    return out;
  }

  // A message's identity (SPEC D11), as processed_messages' key has it.
  static std::string identity(const MessageResult& m) {
    return m.organization_id + "\n" + m.device_id + "\n" + m.message_id;
  }
  // identity() -> (asset id -> score before the message), as first written.
  std::map<std::string, std::map<std::string, std::optional<double>>> processed;
  std::vector<HistoryRow> history;
  std::map<std::string, std::string> state_records;  // identity() -> its state changes' record
  std::map<std::string, AssetHealthState> states;    // each asset's health state
  std::map<std::string, AssetRow> assets;            // preset to give assets a stored score
  FailureScript failures;                // whole writes that fail before touching anything
  std::map<std::string, Status> poison;  // any batch containing this message id fails
  std::function<void()> on_write;        // runs at the start of every write (e.g. to take time)
  int write_calls = 0;
  int score_updates = 0;
  std::vector<size_t> batch_sizes;  // per write call

  // With hold_writes, a write_async is done (its answer ready) only once release_writes() is
  // called, as a database still committing would be; without, it is done when it returns.
  PendingWrite write_async(std::span<const MessageResult> messages,
                           Timestamp received_at) override {
    if (!hold_writes) return PendingWrite::done(write(messages, received_at));
    held_.emplace_back(std::promise<Outcome>(), write(messages, received_at));
    return PendingWrite(held_.back().first.get_future());
  }
  void release_writes() {
    for (auto& [promise, outcome] : held_) promise.set_value(std::move(outcome));
    held_.clear();
  }
  bool hold_writes = false;

 private:
  Journal* journal_;
  std::deque<std::pair<std::promise<Outcome>, Outcome>> held_;
};

}  // namespace atw
