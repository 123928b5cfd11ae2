// asset-worker reprocess: reads the original messages of a time range back from the
// input stream, runs each through today's links, mapping, formulas and health rules, and
// replaces what the workers wrote for it: history rows, scores (forward only), one correction
// event per (message, asset) that changed. --dry-run says what would change and writes nothing.
// One transaction per batch, with the run's progress: a run stopped at any point resumes from
// the batch after the last one committed.

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/stream_reader.h"
#include "adapters/nats/stream_replay.h"
#include "adapters/postgres/pg_link_store.h"
#include "adapters/postgres/pg_reprocess_store.h"
#include "adapters/postgres/pg_telemetry_sink.h"
#include "app/commands.h"
#include "app/system_clock.h"
#include "domain/event.h"
#include "domain/json_writer.h"
#include "pipeline/asset_transform.h"
#include "pipeline/reprocess.h"
#include "pipeline/worker_metrics.h"

namespace atw {

namespace {

using SteadyClock = std::chrono::steady_clock;

// The selection, as a run records it (a resumed run must have asked for exactly this).
std::string selection_json(const ReprocessRequest& r) {
  return nlohmann::json{{"from", r.from},
                        {"to", r.to},
                        {"org", r.org},
                        {"device", r.device},
                        {"asset", r.asset},
                        {"assetType", r.asset_type},
                        {"schemaVersion", r.schema_version}}
      .dump();
}

std::string counts_json(const ReprocessCounts& c) {
  return nlohmann::json{{"messagesRead", c.messages_read},
                        {"messagesSelected", c.messages_selected},
                        {"messagesUnreadable", c.messages_unreadable},
                        {"messagesNotProcessed", c.messages_not_processed},
                        {"messagesCorrected", c.messages_corrected},
                        {"pairsCorrected", c.pairs_corrected},
                        {"rowsAdded", c.rows_added},
                        {"rowsRemoved", c.rows_removed},
                        {"rowsChanged", c.rows_changed},
                        {"scoresChanged", c.scores_changed}}
      .dump();
}

ReprocessCounts counts_from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  ReprocessCounts c;
  if (!j.is_object()) return c;
  c.messages_read = j.value("messagesRead", uint64_t{0});
  c.messages_selected = j.value("messagesSelected", uint64_t{0});
  c.messages_unreadable = j.value("messagesUnreadable", uint64_t{0});
  c.messages_not_processed = j.value("messagesNotProcessed", uint64_t{0});
  c.messages_corrected = j.value("messagesCorrected", uint64_t{0});
  c.pairs_corrected = j.value("pairsCorrected", uint64_t{0});
  c.rows_added = j.value("rowsAdded", uint64_t{0});
  c.rows_removed = j.value("rowsRemoved", uint64_t{0});
  c.rows_changed = j.value("rowsChanged", uint64_t{0});
  c.scores_changed = j.value("scoresChanged", uint64_t{0});
  return c;
}

std::string score_text(const std::optional<double>& s) {
  return s ? fmt::format("{}", *s) : std::string("-");
}

// The asset types' schemas as recorded, to know which one a message was processed with and, for
// --schema-version, to replay with an earlier one.
class SchemaBook {
 public:
  void add(const std::vector<SchemaVersion>& versions) {
    for (const auto& v : versions) {
      auto& list = by_type_[v.asset_type_id];
      if (std::none_of(list.begin(), list.end(),
                       [&](const SchemaVersion& x) { return x.version == v.version; })) {
        list.push_back(v);
      }
    }
  }
  bool knows(const std::string& type) const { return by_type_.contains(type); }
  // The version in force at `t` (the oldest recorded when `t` is before all of them).
  const SchemaVersion* at(const std::string& type, Timestamp t) const {
    auto found = by_type_.find(type);
    if (found == by_type_.end() || found->second.empty()) return nullptr;
    const SchemaVersion* best = &found->second.front();
    for (const auto& v : found->second) {
      if (v.recorded_at <= t) best = &v;
    }
    return best;
  }
  const SchemaVersion* version(const std::string& type, int n) const {
    auto found = by_type_.find(type);
    if (found == by_type_.end()) return nullptr;
    for (const auto& v : found->second) {
      if (v.version == n) return &v;
    }
    return nullptr;
  }
  const SchemaVersion* latest(const std::string& type) const {
    auto found = by_type_.find(type);
    return found == by_type_.end() || found->second.empty() ? nullptr : &found->second.back();
  }

 private:
  std::unordered_map<std::string, std::vector<SchemaVersion>> by_type_;
};

class Progress {
 public:
  Progress(uint64_t first, uint64_t last, Logger& log)
      : first_(first), last_(last), log_(log), tty_(isatty(STDERR_FILENO) != 0) {}

  void show(uint64_t sequence, uint64_t done, bool final = false) {
    const auto now = SteadyClock::now();
    if (!final && now - shown_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::seconds(5)))
      return;
    shown_ = now;
    const double seconds = std::chrono::duration<double>(now - started_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    const uint64_t span = last_ >= first_ ? last_ - first_ + 1 : 0;
    const uint64_t covered = sequence >= first_ ? std::min(sequence - first_ + 1, span) : 0;
    const double per_seq = covered > 0 ? seconds / static_cast<double>(covered) : 0;
    const double eta = per_seq * static_cast<double>(span - covered);
    if (tty_) {
      fmt::print(
          stderr, "\r{} messages, {:.0f}/s, {:.0f}% of the stream's range, ETA {:.0f} s   {}", done,
          rate, span ? 100.0 * static_cast<double>(covered) / static_cast<double>(span) : 100.0,
          eta, final ? "\n" : "");
    } else {
      log_.info("reprocess progress", {{"messages", static_cast<int64_t>(done)},
                                       {"perSecond", rate},
                                       {"sequence", static_cast<int64_t>(sequence)},
                                       {"lastSequence", static_cast<int64_t>(last_)},
                                       {"etaSeconds", eta}});
    }
  }

 private:
  uint64_t first_, last_;
  Logger& log_;
  bool tty_;
  SteadyClock::time_point started_ = SteadyClock::now();
  SteadyClock::time_point shown_{};
};

struct Replayed {
  uint64_t sequence = 0;
  TelemetryMessage message;
};

// One batch of selected messages through today's configuration: the corrections, the events and
// the writes. Read-only until apply().
class BatchCorrector {
 public:
  BatchCorrector(const ReprocessRequest& request, PgReprocessStore& store, PgLinkStore& links,
                 SchemaBook& schemas, ReprocessCounts& counts, NotableChanges& notable)
      : request_(request),
        store_(store),
        links_(links),
        schemas_(schemas),
        counts_(counts),
        notable_(notable) {}

  // Works out the batch; the events to publish and the writes to make are then ready.
  Status correct(const std::vector<Replayed>& batch) {
    events_.clear();
    writes_ = PgReprocessStore::Batch{};
    // A message stored twice (a publisher's retry) is one message: its first copy stands for it.
    std::vector<TelemetryMessage> messages;
    std::set<std::string> identities;
    for (const auto& r : batch) {
      const MessageResult identity{r.message.message_id,
                                   r.message.device_id,
                                   r.message.organization_id,
                                   r.message.timestamp,
                                   {}};
      if (identities.insert(identity_key(identity)).second) messages.push_back(r.message);
    }
    auto processed = store_.processed(messages);
    if (!processed.ok()) return processed.status();
    for (auto& [identity, record] : *processed) {  // a dry run's earlier batches, as if written
      if (auto d = dry_written_.find(identity); d != dry_written_.end()) {
        record.written = d->second;
        record.corrected = true;
      }
    }

    // Today's links of each device.
    std::vector<DeviceKey> keys;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& m : messages) {
      if (seen.emplace(m.organization_id, m.device_id).second) {
        keys.push_back({m.organization_id, m.device_id});
      }
    }
    auto loaded = links_.load(keys);
    if (!loaded.ok()) return loaded.status();
    std::map<std::pair<std::string, std::string>, LinkSet> link_sets;
    for (size_t i = 0; i < keys.size(); ++i) {
      LinkSet set = std::move((*loaded)[i]);
      order_by_link_id(set);
      link_sets[{keys[i].organization_id, keys[i].device_id}] = std::move(set);
    }

    // What each message was written with, and what it gives now.
    struct Item {
      const TelemetryMessage* message;
      const ProcessedRecord* record;
      std::vector<std::string> before_assets;
      nlohmann::json written;
      std::vector<AssetResult> after;
    };
    std::vector<Item> items;
    std::set<std::string> asset_ids;
    std::set<std::string> types;
    for (const auto& m : messages) {
      MessageResult identity{m.message_id, m.device_id, m.organization_id, m.timestamp, {}};
      auto found = processed->find(identity_key(identity));
      if (found == processed->end()) {
        ++counts_.messages_not_processed;  // not written (yet): a worker writes it as it is now
        continue;
      }
      Item item{
          &m, &found->second, {}, nlohmann::json::parse(found->second.written, nullptr, false), {}};
      if (item.written.is_object()) {
        for (const auto& [asset, score] : item.written.items()) item.before_assets.push_back(asset);
      }
      LinkSet& set = link_sets[{m.organization_id, m.device_id}];
      for (auto& link : set.links) {
        types.insert(link.asset_type_id);
        if (request_.schema_version != 0 && link.asset_type_id == request_.asset_type) {
          link.telemetry_schema = replay_schema_->schema;
        }
      }
      TransformCounts ignored;
      item.after = transform_message(m, set, registry_, ignored);
      for (const auto& a : item.before_assets) asset_ids.insert(a);
      for (const auto& a : item.after) asset_ids.insert(a.asset_id);
      items.push_back(std::move(item));
    }
    if (items.empty()) return Status();

    auto assets = store_.assets({asset_ids.begin(), asset_ids.end()});
    if (!assets.ok()) return assets.status();
    for (auto& [id, state] : *assets) {
      if (auto d = dry_scores_.find(id); d != dry_scores_.end()) {
        state.score = d->second.score;
        state.score_time = d->second.score_time;
      }
    }
    for (const auto& [id, state] : *assets) types.insert(state.asset_type_id);
    std::vector<std::string> unknown;
    for (const auto& t : types) {
      if (!schemas_.knows(t)) unknown.push_back(t);
    }
    if (!unknown.empty()) {
      auto versions = store_.schema_versions(unknown);
      if (!versions.ok()) return versions.status();
      schemas_.add(*versions);
    }
    std::vector<std::tuple<std::string, Timestamp, std::string>> triples;
    for (const auto& item : items) {
      std::set<std::string> pair_assets(item.before_assets.begin(), item.before_assets.end());
      for (const auto& a : item.after) pair_assets.insert(a.asset_id);
      for (const auto& a : pair_assets) {
        triples.emplace_back(a, item.message->timestamp, item.message->device_id);
      }
    }
    auto rows = store_.history(triples);
    if (!rows.ok()) return rows.status();

    auto selected = [&](const std::string& asset) {
      if (!request_.asset.empty() && asset != request_.asset) return false;
      if (request_.asset_type.empty()) return true;
      auto a = assets->find(asset);
      return a != assets->end() && a->second.asset_type_id == request_.asset_type;
    };

    // Per asset: the newest corrected score of the batch, and the measurements it loses.
    std::map<std::string, std::pair<Timestamp, double>> newest;
    std::map<std::string, std::vector<std::pair<Timestamp, std::string>>> lost;
    const Timestamp now = SystemClock().now();
    for (const auto& item : items) {
      const TelemetryMessage& m = *item.message;
      std::vector<WrittenPair> before;
      for (const auto& asset : item.before_assets) {
        WrittenPair w{asset, {}, std::nullopt};
        auto r = rows->find(PgReprocessStore::history_key(asset, m.timestamp, m.device_id));
        if (r != rows->end()) w.rows = r->second;
        w.score = score_written(item, asset, w.rows, *assets);
        before.push_back(std::move(w));
      }
      const auto corrections = correct_message(before, item.after, selected);
      // What the message has written once corrected: each pair it had, as it is now where the
      // run selects it.
      nlohmann::json written = nlohmann::json::object();
      for (const auto& w : before) {
        if (!selected(w.asset_id)) written[w.asset_id] = item.written[w.asset_id];
      }
      for (const auto& a : item.after) {
        if (selected(a.asset_id)) written[a.asset_id] = a.health_score;
      }
      if (corrections.empty()) continue;
      ++counts_.messages_corrected;
      writes_.messages.push_back({m.organization_id, m.device_id, m.message_id, written.dump()});
      for (const PairCorrection& c : corrections) {
        ++counts_.pairs_corrected;
        notable_.offer(m.message_id, m.timestamp, c);
        for (const Metric& r : c.added) {
          writes_.added.push_back(
              {c.asset_id, r.name, r.value, m.timestamp, m.device_id, r.quality});
        }
        for (const Metric& r : c.removed) {
          writes_.removed.push_back(
              {c.asset_id, r.name, r.value, m.timestamp, m.device_id, r.quality});
        }
        for (const Metric& r : c.changed) {
          writes_.changed.push_back(
              {c.asset_id, r.name, r.value, m.timestamp, m.device_id, r.quality});
        }
        counts_.rows_added += c.added.size();
        counts_.rows_removed += c.removed.size();
        counts_.rows_changed += c.changed.size();
        events_.push_back(correction_event(m, c, now));
        if (c.score_after) {
          auto [n, first] = newest.try_emplace(c.asset_id, m.timestamp, *c.score_after);
          if (!first && m.timestamp >= n->second.first) n->second = {m.timestamp, *c.score_after};
        } else {
          lost[c.asset_id].emplace_back(m.timestamp, m.device_id);
        }
      }
    }

    // Scores, forward only: a corrected measurement at least as new as the asset's score time
    // gives the score. An asset whose score came from a measurement it no longer gets takes
    // the score of its newest measurement left (a corrected one of the batch, or rows not
    // touched), none when nothing is left.
    std::set<std::string> touched;
    for (const auto& [asset, n] : newest) touched.insert(asset);
    for (const auto& [asset, l] : lost) touched.insert(asset);
    for (const std::string& asset : touched) {
      const auto a = assets->find(asset);
      // A flag and a value rather than an optional: GCC 12 at -O1 takes this optional for
      // maybe uninitialized (-Wmaybe-uninitialized, a false positive).
      const bool scored = a != assets->end() && a->second.score_time.has_value();
      const Timestamp score_time = scored ? *a->second.score_time : Timestamp{};
      const auto n = newest.find(asset);
      const auto l = lost.find(asset);
      const bool score_lost =
          scored && l != lost.end() &&
          std::any_of(l->second.begin(), l->second.end(),
                      [&](const auto& gone) { return gone.first == score_time; });
      if (!score_lost) {
        if (n == newest.end()) continue;
        const auto& [t, score] = n->second;
        if (!scored || (score_time <= t && (score_time != t || a->second.score != score))) {
          ++counts_.scores_changed;
        }
        writes_.scores.push_back({asset, score, t, std::nullopt});
        continue;
      }
      auto except = l->second;
      if (auto d = dry_removed_.find(asset); d != dry_removed_.end()) {
        except.insert(except.end(), d->second.begin(), d->second.end());
      }
      auto left = store_.newest_rows(asset, except);
      if (!left.ok()) return left.status();
      ScoreChange change{asset, std::nullopt, std::nullopt, score_time};
      if (n != newest.end() && (!*left || n->second.first >= (*left)->first)) {
        change.score = n->second.second;
        change.time = n->second.first;
      } else if (*left) {
        if (const AssetTypeModel* model = model_now(a->second.asset_type_id)) {
          change.score = model->health((*left)->second);
          change.time = (*left)->first;
        }
      }
      if (change.score != a->second.score || change.time != std::optional(score_time)) {
        ++counts_.scores_changed;
      }
      writes_.scores.push_back(std::move(change));
    }
    if (request_.dry_run) remember_as_written(*assets, lost);
    return Status();
  }

  // For --schema-version: the version to replay with (checked by the caller).
  void replay_with(const SchemaVersion* v) { replay_schema_ = v; }

  const std::vector<OutboundMessage>& events() const { return events_; }
  PgReprocessStore::Batch& writes() { return writes_; }

 private:
  // The score a pair was written with: the one reprocess recorded, else the health of its rows
  // under the asset type's schema in force when the message was processed.
  std::optional<double> score_written(const auto& item, const std::string& asset,
                                      const MetricSet& rows,
                                      const std::unordered_map<std::string, AssetState>& assets) {
    if (item.record->corrected) {
      auto s = item.written.find(asset);
      if (s != item.written.end() && s->is_number()) return s->template get<double>();
      return std::nullopt;
    }
    auto a = assets.find(asset);
    if (a == assets.end() || rows.empty()) return std::nullopt;
    const SchemaVersion* v = schemas_.at(a->second.asset_type_id, item.record->processed_at);
    if (v == nullptr) return std::nullopt;
    return registry_.model(v->asset_type_id, v->schema).health(rows);
  }

  // A dry run writes nothing, yet each batch must see what the batches before it would have
  // written, as the real run does: the messages corrected, the scores set, the rows removed.
  void remember_as_written(
      const std::unordered_map<std::string, AssetState>& assets,
      const std::map<std::string, std::vector<std::pair<Timestamp, std::string>>>& lost) {
    for (const auto& m : writes_.messages) {
      const MessageResult identity{m.message_id, m.device_id, m.organization_id, {}, {}};
      dry_written_[identity_key(identity)] = m.written;
    }
    for (const ScoreChange& c : writes_.scores) {
      const auto a = assets.find(c.asset_id);
      const std::optional<Timestamp> now = a == assets.end() ? std::nullopt : a->second.score_time;
      const bool applies = c.only_if_time ? now == c.only_if_time : (!now || *now <= *c.time);
      if (applies) dry_scores_[c.asset_id] = AssetState{{}, c.score, c.time};
    }
    for (const auto& [asset, gone] : lost) {
      auto& all = dry_removed_[asset];
      all.insert(all.end(), gone.begin(), gone.end());
    }
  }

  const AssetTypeModel* model_now(const std::string& type) {
    const SchemaVersion* v = request_.schema_version != 0 && type == request_.asset_type
                                 ? replay_schema_
                                 : schemas_.latest(type);
    return v == nullptr ? nullptr : &registry_.model(type, v->schema);
  }

  // One correction event: the event the pair now gives, marked as a correction; its id follows
  // from what it says, so the same correction published twice is one message to the stream.
  static OutboundMessage correction_event(const TelemetryMessage& m, const PairCorrection& c,
                                          Timestamp now) {
    std::string content;
    JsonWriter w(content);
    w.begin_object();
    for (const Metric& metric : c.rows_after) w.key(metric.name).number(metric.value);
    w.end_object();
    content += c.score_after ? fmt::format(" {}", *c.score_after) : std::string(" removed");
    AssetEvent ev{asset_event_id(m.organization_id, m.device_id,
                                 m.message_id + "\ncorrection\n" + content, c.asset_id),
                  c.asset_id,
                  m.device_id,
                  m.organization_id,
                  m.timestamp,
                  c.rows_after,
                  c.score_after.value_or(c.score_before.value_or(0)),
                  c.score_before,
                  now,
                  c.health_details};
    std::string payload = to_json(ev);
    payload.pop_back();  // the closing brace: the correction's fields go inside
    JsonWriter extra(payload);
    payload += ",\"correction\":";
    extra.begin_object();
    extra.key("of").string(
        asset_event_id(m.organization_id, m.device_id, m.message_id, c.asset_id));
    extra.key("sourceMessageId").string(m.message_id);
    extra.key("removed").boolean(c.removes_pair());
    extra.end_object();
    payload += "}";
    return {"", ev.message_id, std::move(payload)};
  }

  const ReprocessRequest& request_;
  PgReprocessStore& store_;
  PgLinkStore& links_;
  SchemaBook& schemas_;
  ReprocessCounts& counts_;
  NotableChanges& notable_;
  AssetTypeRegistry registry_;
  const SchemaVersion* replay_schema_ = nullptr;
  std::vector<OutboundMessage> events_;
  PgReprocessStore::Batch writes_;
  // The dry run's memory of what it would have written (empty in a real run).
  std::unordered_map<std::string, std::string> dry_written_;
  std::unordered_map<std::string, AssetState> dry_scores_;
  std::map<std::string, std::vector<std::pair<Timestamp, std::string>>> dry_removed_;
};

void print_summary(const ReprocessRequest& r, const ReprocessCounts& c,
                   const NotableChanges& notable, const std::string& run_id, bool stopped) {
  if (r.json) {
    nlohmann::json changes = nlohmann::json::array();
    for (const auto& n : notable.largest()) {
      changes.push_back({{"messageId", n.message_id},
                         {"assetId", n.asset_id},
                         {"timestamp", format_rfc3339(n.timestamp)},
                         {"scoreBefore", n.score_before ? nlohmann::json(*n.score_before)
                                                        : nlohmann::json(nullptr)},
                         {"scoreAfter", n.score_after ? nlohmann::json(*n.score_after)
                                                      : nlohmann::json(nullptr)}});
    }
    nlohmann::json out = nlohmann::json::parse(counts_json(c));
    out["dryRun"] = r.dry_run;
    out["runId"] = run_id;
    out["stopped"] = stopped;
    out["largestChanges"] = changes;
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print(
      "{}{}\n",
      r.dry_run ? "reprocess --dry-run: nothing written; it would change" : "reprocess: changed",
      stopped ? " (stopped: resume with --resume)" : "");
  const std::vector<std::pair<const char*, uint64_t>> rows = {
      {"messages read from the input stream", c.messages_read},
      {"messages in the range and selection", c.messages_selected},
      {"  unreadable (dead-lettered when they came)", c.messages_unreadable},
      {"  not processed by a worker (yet)", c.messages_not_processed},
      {"messages corrected", c.messages_corrected},
      {"(message, asset) results corrected: events", c.pairs_corrected},
      {"history rows added", c.rows_added},
      {"history rows removed", c.rows_removed},
      {"history rows changed", c.rows_changed},
      {"asset scores changed", c.scores_changed}};
  for (const auto& [what, n] : rows) fmt::print("  {:<48} {:>10}\n", what, n);
  if (!notable.largest().empty()) {
    fmt::print("largest changes of a score:\n  {:<24} {:<24} {:<28} {:>10} {:>10}\n", "message",
               "asset", "timestamp", "before", "after");
    for (const auto& n : notable.largest()) {
      fmt::print("  {:<24} {:<24} {:<28} {:>10} {:>10}\n", n.message_id, n.asset_id,
                 format_rfc3339(n.timestamp), score_text(n.score_before),
                 n.score_after ? score_text(n.score_after) : "removed");
    }
  }
  if (!run_id.empty()) fmt::print("run {}\n", run_id);
}

}  // namespace

int run_reprocess(const Config& c, const ReprocessRequest& r, const std::atomic<bool>& stop) {
  Logger log(c.level(), stderr, "reprocess");
  const auto from = parse_rfc3339(r.from);
  const auto to = parse_rfc3339(r.to);
  if (!from || !to || *to <= *from) {
    print_error("--from and --to must be RFC 3339 times, --from before --to");
    return 2;
  }
  if (r.schema_version != 0 && r.asset_type.empty()) {
    print_error("--schema-version needs --asset-type (versions are per asset type)");
    return 2;
  }

  PgReprocessStore store(c.database());
  if (Status st = store.ensure(); !st.ok()) {
    print_error(st.message());
    return 1;
  }
  SchemaBook schemas;
  const SchemaVersion* replay_schema = nullptr;
  if (r.schema_version != 0) {
    auto versions = store.schema_versions({r.asset_type});
    if (!versions.ok()) {
      print_error(versions.status().message());
      return 1;
    }
    schemas.add(*versions);
    replay_schema = schemas.version(r.asset_type, r.schema_version);
    if (replay_schema == nullptr) {
      print_error(
          fmt::format("asset type {} has no schema version {} (formulas history lists them)",
                      r.asset_type, r.schema_version));
      return 2;
    }
  }

  auto nats =
      NatsConnection::connect(c.nats("asset-worker reprocess"), log, std::chrono::seconds(10));
  if (!nats.ok()) {
    print_error(nats.status().message());
    return 1;
  }
  auto stream = find_stream_for_subject(**nats, c.input_subject);
  if (!stream.ok() || stream->empty()) {
    print_error(stream.ok() ? "no stream captures " + c.input_subject : stream.status().message());
    return 1;
  }
  auto state = stream_state(**nats, *stream);
  if (!state.ok()) {
    print_error(state.status().message());
    return 1;
  }
  // Reaching further back than the stream keeps: say how far it can go instead of doing part.
  // (A stream that never lost a message holds every measurement ever sent, however late.)
  const bool lost_some = state->first_seq > 1 || (state->messages == 0 && state->last_seq > 0);
  if (lost_some && state->first_time && *state->first_time > *from) {
    print_error(fmt::format(
        "the input stream {} keeps messages from {} on ({}): reprocess can reach back to there; "
        "run it with --from {} or later",
        *stream, format_rfc3339(*state->first_time),
        state->max_age.count() > 0
            ? fmt::format("it keeps {} days, INPUT_RETENTION",
                          static_cast<double>(state->max_age.count()) / 86400.0)
            : std::string("older messages were removed"),
        format_rfc3339(*state->first_time)));
    return 2;
  }

  ReprocessCounts counts;
  std::string run_id;
  uint64_t next_sequence = 0;
  uint64_t last_sequence = state->last_seq;
  const std::string selection = selection_json(r);
  if (r.resume) {
    auto run = store.unfinished_run(selection);
    if (!run.ok()) {
      print_error(run.status().message());
      return 1;
    }
    if (!*run) {
      print_error("no stopped run with this selection to resume (run it without --resume)");
      return 2;
    }
    run_id = (*run)->id;
    next_sequence = (*run)->next_sequence;
    last_sequence = (*run)->last_sequence;
    counts = counts_from_json((*run)->counts);
    log.info("resuming", {{"run", run_id}, {"fromSequence", static_cast<int64_t>(next_sequence)}});
  } else if (!r.dry_run) {
    run_id = fmt::format("{}-{}", format_rfc3339(SystemClock().now()), getpid());
    Status st = store.start_run({run_id, selection, 0, last_sequence, counts_json(counts)});
    if (!st.ok()) {
      print_error(st.message());
      return 1;
    }
  }

  // Messages measured in the range were stored at or after its start, less the future a
  // message may claim (MAX_FUTURE_S).
  ReplayStart start;
  if (next_sequence != 0) {
    start.sequence = next_sequence;
  } else {
    start.time = Timestamp{from->micros - int64_t{c.max_future_s} * 1'000'000};
  }
  auto replay = StreamReplay::open(**nats, *stream, c.input_subject, start, last_sequence);
  if (!replay.ok()) {
    print_error(replay.status().message());
    return 1;
  }
  std::unique_ptr<JetStreamPublisher> publisher;
  if (!r.dry_run) {
    auto p = JetStreamPublisher::create(**nats, std::chrono::seconds(10));
    if (!p.ok()) {
      print_error(p.status().message());
      return 1;
    }
    publisher = std::move(p).value();
  }
  PgConnection link_db(c.database());
  WorkerMetrics metrics;
  PgLinkStore links(link_db, metrics, log);
  NotableChanges notable(10);
  BatchCorrector corrector(r, store, links, schemas, counts, notable);
  corrector.replay_with(replay_schema);
  const ValidationLimits limits = c.limits();
  Progress progress(next_sequence != 0 ? next_sequence : state->first_seq, last_sequence, log);
  const auto started = SteadyClock::now();
  uint64_t read_now = 0;
  uint64_t sequence = next_sequence;
  bool stopped = false;

  while (true) {
    if (stop.load()) {
      stopped = true;
      break;
    }
    std::vector<Replayed> batch;
    uint64_t batch_last = 0;
    bool ended = false;
    while (batch.size() < static_cast<size_t>(r.batch) && !stop.load()) {
      auto next = (*replay)->next(std::chrono::seconds(2));
      if (!next.ok()) {
        print_error(next.status().message());
        return 1;
      }
      if (!*next) {
        ended = true;
        break;
      }
      ++counts.messages_read;
      ++read_now;
      batch_last = (*next)->sequence;
      if (r.max_rate > 0) {  // paced: message n is read no sooner than n / rate after the start
        const auto due =
            started +
            std::chrono::duration_cast<SteadyClock::duration>(
                std::chrono::duration<double>(static_cast<double>(read_now) / r.max_rate));
        if (due > SteadyClock::now()) std::this_thread::sleep_until(due);
      }
      auto parsed = parse_telemetry((*next)->payload, (*next)->stored_at, limits);
      if (!parsed.ok()) {
        ++counts.messages_unreadable;
        continue;
      }
      const TelemetryMessage& m = *parsed;
      if (m.timestamp < *from || m.timestamp >= *to) continue;
      if (!r.org.empty() && m.organization_id != r.org) continue;
      if (!r.device.empty() && m.device_id != r.device) continue;
      ++counts.messages_selected;
      batch.push_back({(*next)->sequence, std::move(parsed).value()});
    }
    if (batch_last == 0) {
      if (ended) break;
      continue;  // stopped before anything was read
    }
    Status st = corrector.correct(batch);
    if (st.ok() && !r.dry_run) {
      std::vector<OutboundMessage> events = corrector.events();
      for (auto& e : events) e.subject = c.output_subject;
      // Events first, then the writes: a run stopped between them publishes the same events
      // again when resumed, under the same ids (the stream keeps one of each).
      for (const Status& p : publisher->publish(events)) {
        if (!p.ok()) {
          st = p;
          break;
        }
      }
      auto& writes = corrector.writes();
      writes.run_id = run_id;
      writes.next_sequence = batch_last + 1;
      writes.counts_json = counts_json(counts);
      if (st.ok()) st = store.begin();
      if (st.ok()) st = store.lock(writes);
      if (st.ok()) st = store.write_rows(writes);
      if (st.ok()) st = store.write_scores(writes.scores);
      if (st.ok()) st = store.finish(writes);
      if (!st.ok()) (void)store.rollback();
    }
    if (!st.ok()) {
      print_error(fmt::format("reprocess stopped at stream sequence {}: {}{}",
                              batch.empty() ? batch_last : batch.front().sequence, st.message(),
                              run_id.empty() ? "" : "; run it again with --resume"));
      return 1;
    }
    sequence = batch_last;
    progress.show(sequence, read_now);
    if (ended) break;
  }
  progress.show(sequence, read_now, true);
  if (!stopped && !run_id.empty()) {
    if (Status st = store.finish_run(run_id, counts_json(counts)); !st.ok()) {
      print_error(st.message());
      return 1;
    }
  }
  print_summary(r, counts, notable, run_id, stopped);
  return stopped ? 130 : 0;
}

int run_formulas_history(const Config& c, const std::string& asset_type) {
  PgReprocessStore store(c.database());
  auto versions = store.schema_versions(asset_type.empty() ? std::vector<std::string>{}
                                                           : std::vector<std::string>{asset_type});
  if (!versions.ok()) {
    print_error(versions.status().message());
    return 1;
  }
  if (versions->empty()) {
    fmt::print(stderr, "no schema versions recorded{}\n",
               asset_type.empty() ? "" : " for asset type " + asset_type);
    return asset_type.empty() ? 0 : 1;
  }
  fmt::print("{:<24} {:>7}  {:<28} {}\n", "asset type", "version", "recorded at",
             "telemetry_schema");
  for (const auto& v : *versions) {
    fmt::print("{:<24} {:>7}  {:<28} {}\n", v.asset_type_id, v.version,
               format_rfc3339(v.recorded_at), v.schema);
  }
  return 0;
}

}  // namespace atw
