#include "faults/message_ledger.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <set>
#include <unordered_map>

#include "adapters/nats/stream_reader.h"
#include "adapters/postgres/pg_connection.h"
#include "domain/event.h"
#include "domain/health_state.h"
#include "domain/timestamp.h"

namespace atw::testing {

namespace {

using nlohmann::json;

bool same_value(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b));
}

std::string describe(const std::map<std::string, double>& m) {
  std::string out;
  for (const auto& [k, v] : m) out += fmt::format("{}{}={}", out.empty() ? "" : " ", k, v);
  return out;
}

// What the servers hold for one message.
struct Seen {
  std::map<std::pair<std::string, std::string>, std::vector<double>> rows;  // (asset, metric)
  std::map<std::string, int> events;  // expected event id -> times stored
  bool processed_row = false;
  std::map<uint64_t, int> dead_letters;  // input stream sequence -> records
};

// See account(), step 5. `assets`: the assets of the processed messages.
void account_state_changes(Scenario& s, const std::vector<SentMessage>& messages,
                           const std::map<std::string, std::pair<int64_t, double>>& assets,
                           Tally& t) {
  // (message id, asset) -> the message's expected score and time.
  std::map<std::pair<std::string, std::string>, std::pair<double, int64_t>> scores;
  for (const auto& m : messages) {
    if (m.expect != SentMessage::Expect::kProcessed || m.copies == 0) continue;
    for (const auto& a : m.assets) {
      scores[{m.message_id, a.asset_id}] = {a.health_score, m.timestamp_s};
    }
  }
  std::map<std::string, std::vector<json>> chains;
  for (auto& e : s.state_changes()) {
    const std::string asset = e.value("assetId", "");
    if (!assets.contains(asset)) {
      t.problems.push_back("state change of an asset not sent here: " + e.dump().substr(0, 300));
      continue;
    }
    chains[asset].push_back(std::move(e));
  }
  const auto policy = HealthStatePolicy::standard();
  std::map<std::string, std::pair<std::string, int64_t>> table;  // asset -> (state, changes)
  {
    std::vector<std::string_view> ids;
    for (const auto& [a, _] : assets) ids.push_back(a);
    Sql sql(s.urls().database);
    for (const auto& row : sql.query("SELECT asset_id, state, changes FROM asset_health_states"
                                     " WHERE asset_id = ANY($1::text[])",
                                     {pg_text_array(ids)})) {
      table[*row[0]] = {*row[1], std::stoll(*row[2])};
    }
  }
  for (const auto& [asset, _] : assets) {
    auto& chain = chains[asset];
    std::sort(chain.begin(), chain.end(), [](const json& a, const json& b) {
      return a.value("sequence", 0) < b.value("sequence", 0);
    });
    std::string state = policy.levels.front().name;
    int64_t expected_sequence = 1;
    std::string last_at;
    std::set<std::string> ids;
    for (const json& e : chain) {
      const std::string text = e.dump().substr(0, 300);
      if (ids.insert(e.value("id", "")).second) {
        ++t.state_changes;
      } else {
        ++t.duplicated;
        t.problems.push_back(fmt::format("{}: state change twice: {}", asset, text));
        continue;
      }
      const int64_t sequence = e.value("sequence", int64_t{0});
      if (sequence != expected_sequence) {
        ++t.lost;
        t.problems.push_back(fmt::format("{}: state change {} missing (next seen: {})", asset,
                                         expected_sequence, text));
      }
      expected_sequence = sequence + 1;
      const std::string from = e.value("from", ""), to = e.value("to", "");
      if (from != state)
        t.problems.push_back(fmt::format("{}: from {}, was {}: {}", asset, from, state, text));
      const auto made_by = scores.find({e.value("messageId", ""), asset});
      const auto level = policy.level_named(to), was = policy.level_named(from);
      if (made_by == scores.end() || !level || !was) {
        t.problems.push_back(
            fmt::format("{}: state change of no message sent here: {}", asset, text));
      } else {
        const double score = made_by->second.first;
        const bool where = *level > *was ? policy.level_for(score) == *level
                                         : policy.level_for(score - policy.hysteresis) == *level;
        if (!e.contains("score") || !same_value(e["score"].get<double>(), score) || !where ||
            e.value("at", "") != format_rfc3339(Timestamp::from_seconds(made_by->second.second))) {
          t.problems.push_back(fmt::format(
              "{}: state change not as its message says (score {}): {}", asset, score, text));
        }
      }
      if (e.value("at", "") < last_at) {
        t.problems.push_back(fmt::format("{}: state moved back in time: {}", asset, text));
      }
      last_at = e.value("at", "");
      state = to;
    }
    const int64_t changes = expected_sequence - 1;
    const auto row = table.find(asset);
    if (row == table.end()) {
      t.problems.push_back(fmt::format("{}: no row in asset_health_states", asset));
    } else if (row->second.second > changes) {
      t.lost += static_cast<uint64_t>(row->second.second - changes);
      t.problems.push_back(fmt::format("{}: {} state changes made, {} published", asset,
                                       row->second.second, changes));
    } else if (row->second != std::pair(state, changes)) {
      t.problems.push_back(fmt::format("{}: table says {} after {} changes, the stream {} after {}",
                                       asset, row->second.first, row->second.second, state,
                                       changes));
    }
  }
}

}  // namespace

double seed_health_score(const std::map<std::string, double>& m) {
  double score = 100;
  auto find = [&](const char* k) -> std::optional<double> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
  if (auto t = find("motor_temperature")) {
    if (*t > 80)
      score -= 30;
    else if (*t > 70)
      score -= 10;
  }
  if (auto v = find("vibration"); v && *v > 5.0) score -= 20;
  if (auto p = find("power_consumption"); p && *p < 10) score -= 40;
  return std::max(0.0, std::min(100.0, score));
}

size_t MessageLedger::add(SentMessage m) {
  messages_.push_back(std::move(m));
  return messages_.size() - 1;
}

void MessageLedger::publish(Scenario& s, const std::vector<size_t>& which) {
  std::vector<std::string> payloads;
  payloads.reserve(which.size());
  for (size_t i : which) {
    payloads.push_back(messages_.at(i).payload);
    ++messages_.at(i).copies;
  }
  // In slices, so a large backlog does not wait on one PubAck deadline.
  constexpr size_t kSlice = 500;
  for (size_t from = 0; from < payloads.size(); from += kSlice) {
    std::vector<std::string> slice(
        payloads.begin() + static_cast<ptrdiff_t>(from),
        payloads.begin() + static_cast<ptrdiff_t>(std::min(payloads.size(), from + kSlice)));
    s.publish(slice);
  }
}

void MessageLedger::publish_all(Scenario& s) {
  std::vector<size_t> all(messages_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  publish(s, all);
}

uint64_t MessageLedger::sent() const {
  uint64_t n = 0;
  for (const auto& m : messages_) n += static_cast<uint64_t>(m.copies);
  return n;
}

uint64_t MessageLedger::expected_events() const {
  uint64_t n = 0;
  for (const auto& m : messages_) {
    if (m.expect == SentMessage::Expect::kProcessed && m.copies > 0) n += m.assets.size();
  }
  return n;
}

uint64_t MessageLedger::expected_dead_letters() const {
  uint64_t n = 0;
  for (const auto& m : messages_) {
    if (m.expect == SentMessage::Expect::kDeadLetter) n += static_cast<uint64_t>(m.copies);
  }
  return n;
}

uint64_t MessageLedger::events_per_message() const {
  uint64_t per = 0;
  for (const auto& m : messages_) {
    // A second copy is acked with no new event.
    if (m.expect != SentMessage::Expect::kProcessed || m.copies > 1) return 0;
    if (per == 0) per = m.assets.size();
    if (per != m.assets.size()) return 0;
  }
  return per;
}

Tally account(Scenario& s, const MessageLedger& ledger) {
  Tally t;
  const auto& messages = ledger.messages();
  std::vector<Seen> seen(messages.size());
  auto problem = [&](size_t i, const std::string& what) {
    t.problems.push_back(fmt::format("{}: {}", messages[i].label, what));
  };

  // Which message owns a (device, second): history rows carry no message id.
  std::map<std::pair<std::string, int64_t>, size_t> by_device_time;
  std::unordered_map<std::string, size_t> by_event_id;
  std::unordered_map<std::string, size_t> by_payload;
  std::vector<std::string> devices, message_ids;
  std::set<std::string> device_set;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    by_payload.emplace(m.payload, i);
    if (m.expect == SentMessage::Expect::kDeadLetter) continue;
    if (!by_device_time.emplace(std::pair{m.device_id, m.timestamp_s}, i).second) {
      ADD_FAILURE() << "ledger: two messages of " << m.device_id << " at " << m.timestamp_s;
    }
    if (device_set.insert(m.device_id).second) devices.push_back(m.device_id);
    message_ids.push_back(m.message_id);
    for (const auto& a : m.assets)
      by_event_id.emplace(asset_event_id(m.organization_id, m.device_id, m.message_id, a.asset_id),
                          i);
  }
  // Poison messages name devices too: their rows, if any, must show up as unexpected.
  for (const auto& m : messages) {
    if (!m.device_id.empty() && device_set.insert(m.device_id).second) {
      devices.push_back(m.device_id);
    }
  }

  // 1. History rows, and the processed_messages rows. A fresh connection: the scenario's own
  // may have been cut by a PostgreSQL restart.
  Sql sql(s.urls().database);
  const std::vector<std::string_view> device_views(devices.begin(), devices.end());
  uint64_t unexpected_rows = 0;
  for (const auto& row :
       sql.query("SELECT source_device_id, extract(epoch FROM \"timestamp\")::float8, entity_id,"
                 " metric_key, value, entity_type, quality FROM telemetry_history"
                 " WHERE source_device_id = ANY($1::text[])",
                 {pg_text_array(device_views)})) {
    const auto key = std::pair{*row[0], std::llround(std::stod(*row[1]))};
    auto it = by_device_time.find(key);
    if (it == by_device_time.end()) {
      if (++unexpected_rows <= 5) {
        t.problems.push_back(fmt::format("unexpected history row: device {} at {} {} {}={}",
                                         key.first, key.second, *row[2], *row[3],
                                         row[4].value_or("NULL")));
      }
      continue;
    }
    if (*row[5] != "Asset" || row[6] != std::optional<std::string>("good")) {
      problem(it->second, fmt::format("row {} {} has entity_type {} quality {}", *row[2], *row[3],
                                      *row[5], row[6].value_or("NULL")));
    }
    seen[it->second].rows[{*row[2], *row[3]}].push_back(row[4] ? std::stod(*row[4]) : NAN);
  }
  if (unexpected_rows > 5) t.problems.push_back(fmt::format("{} unexpected rows", unexpected_rows));

  std::unordered_map<std::string, size_t> by_message_id;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].message_id.empty()) by_message_id.emplace(messages[i].message_id, i);
  }
  const std::vector<std::string_view> id_views(message_ids.begin(), message_ids.end());
  for (const auto& row :
       sql.query("SELECT message_id FROM processed_messages WHERE message_id = ANY($1::text[])",
                 {pg_text_array(id_views)})) {
    auto it = by_message_id.find(*row[0]);
    if (it != by_message_id.end()) seen[it->second].processed_row = true;
  }

  // 2. Events: each must be one we expect, with its content.
  uint64_t unexpected_events = 0;
  for (const auto& stored : s.stream(s.output_stream())) {
    const json e = json::parse(stored.data, nullptr, false);
    const std::string id = e.is_object() ? e.value("messageId", "") : "";
    auto it = by_event_id.find(id);
    if (it == by_event_id.end()) {
      if (++unexpected_events <= 5) {
        t.problems.push_back("unexpected event: " + stored.data.substr(0, 300));
      }
      continue;
    }
    const size_t i = it->second;
    const SentMessage& m = messages[i];
    if (++seen[i].events[id] > 1) continue;
    const ExpectedAsset* asset = nullptr;
    for (const auto& a : m.assets) {
      if (a.asset_id == e.value("assetId", "")) asset = &a;
    }
    if (asset == nullptr) {
      problem(i, "event for the wrong asset: " + stored.data.substr(0, 300));
      continue;
    }
    std::map<std::string, double> metrics;
    if (e.contains("metrics") && e["metrics"].is_object()) {
      for (const auto& [k, v] : e["metrics"].items()) {
        if (v.is_number()) metrics[k] = v.get<double>();
      }
    }
    bool metrics_ok = metrics.size() == asset->metrics.size();
    for (const auto& [k, v] : asset->metrics) {
      auto f = metrics.find(k);
      metrics_ok = metrics_ok && f != metrics.end() && same_value(f->second, v);
    }
    const auto ts = parse_rfc3339(e.value("timestamp", ""));
    const bool ts_ok = ts && ts->micros == m.timestamp_s * 1'000'000;
    const bool score_ok = e.contains("healthScore") && e["healthScore"].is_number() &&
                          same_value(e["healthScore"].get<double>(), asset->health_score);
    bool previous_ok = true;
    if (asset->previous_health_score) {
      const auto& want = *asset->previous_health_score;
      const auto& got = e.contains("previousHealthScore") ? e["previousHealthScore"] : json();
      previous_ok =
          want ? (got.is_number() && same_value(got.get<double>(), *want)) : got.is_null();
    }
    if (!metrics_ok || !ts_ok || !score_ok || !previous_ok ||
        e.value("deviceId", "") != m.device_id ||
        e.value("organizationId", "") != m.organization_id) {
      problem(i, fmt::format("event for {} is not as expected (metrics {}, want {}; score {}): {}",
                             asset->asset_id, describe(metrics), describe(asset->metrics),
                             asset->health_score, stored.data.substr(0, 400)));
    }
  }
  if (unexpected_events > 5) {
    t.problems.push_back(fmt::format("{} unexpected events", unexpected_events));
  }

  // 3. Dead letters: each names a stream sequence; the input stream's message there says which
  // message it was.
  for (const auto& stored : s.stream(s.dlq_stream())) {
    const json d = json::parse(stored.data, nullptr, false);
    if (!d.is_object()) {
      t.problems.push_back("a DLQ record that is not JSON: " + stored.data.substr(0, 200));
      continue;
    }
    const uint64_t seq = d.value("streamSequence", uint64_t{0});
    auto original = read_stream(s.nats(), s.input_stream(), seq, 1);
    if (!original.ok() || original->empty() || original->front().sequence != seq) {
      t.problems.push_back(fmt::format("DLQ record for sequence {} not in the input stream", seq));
      continue;
    }
    auto it = by_payload.find(original->front().data);
    if (it == by_payload.end()) {
      t.problems.push_back(fmt::format("DLQ record for a message not sent here (seq {})", seq));
      continue;
    }
    const size_t i = it->second;
    const SentMessage& m = messages[i];
    ++seen[i].dead_letters[seq];
    const std::string error_type = d.value("errorType", "");
    const std::string last_error = d.value("lastError", "");
    if (error_type.empty() || last_error.empty()) problem(i, "DLQ record without a reason");
    if (m.expect == SentMessage::Expect::kDeadLetter) {
      if (!m.reason.empty() && last_error.find(m.reason) == std::string::npos) {
        problem(i, fmt::format("DLQ reason \"{}\" ({}) does not mention \"{}\"", last_error,
                               error_type, m.reason));
      }
      if (m.first_delivery && d.value("deliveryCount", 0) != 1) {
        problem(i, fmt::format("dead-lettered at delivery {}, not the first",
                               d.value("deliveryCount", 0)));
      }
    }
    // The record keeps the original bytes, as JSON or as base64; or, when the record would not
    // fit the server's max_payload, says so and the original is still in the input stream.
    bool payload_kept = false;
    if (d.value("payloadOmitted", false)) {
      auto from_input = read_message(s.nats(), d.value("originalStream", ""),
                                     d.value("streamSequence", uint64_t{0}));
      payload_kept = d.value("payloadBytes", uint64_t{0}) == m.payload.size() && from_input.ok() &&
                     from_input->has_value() && (*from_input)->data == m.payload;
    } else {
      payload_kept =
          !m.compare_payload ? d.contains("payloadBase64") || d.contains("payload")
          : d.contains("payloadBase64")
              ? base64_decode(d.value("payloadBase64", "")) == m.payload
              : d.contains("payload") && d["payload"] == json::parse(m.payload, nullptr, false);
    }
    if (!payload_kept) problem(i, "DLQ record does not keep the original payload");
    if (d.value("originalStream", "") != s.input_stream() ||
        d.value("originalSubject", "") != s.input_subject() ||
        d.value("consumer", "") != s.durable() || !d.contains("failedAt")) {
      problem(i, "DLQ record fields: " + stored.data.substr(0, 300));
    }
  }

  // 4. Scores move only forward: each asset ends with the score of its newest message.
  std::map<std::string, std::pair<int64_t, double>> newest;  // asset -> (time, score)
  for (const auto& m : messages) {
    if (m.expect != SentMessage::Expect::kProcessed || m.copies == 0) continue;
    for (const auto& a : m.assets) {
      auto& n = newest[a.asset_id];
      if (m.timestamp_s >= n.first) n = {m.timestamp_s, a.health_score};
    }
  }
  if (!newest.empty()) {
    std::vector<std::string> assets;
    for (const auto& [a, _] : newest) assets.push_back(a);
    const std::vector<std::string_view> asset_views(assets.begin(), assets.end());
    for (const auto& row :
         sql.query("SELECT id, health_score, extract(epoch FROM health_score_updated_at)::float8"
                   " FROM assets WHERE id = ANY($1::text[])",
                   {pg_text_array(asset_views)})) {
      const auto& [when, score] = newest[*row[0]];
      if (!row[1] || !row[2] || !same_value(std::stod(*row[1]), score) ||
          std::llround(std::stod(*row[2])) != when) {
        t.problems.push_back(fmt::format("asset {}: score {} at {}, want {} at {}", *row[0],
                                         row[1].value_or("NULL"), row[2].value_or("NULL"), score,
                                         when));
      }
    }
  }

  // 5. Health states: per asset, the changes on the state subject form one unbroken
  // chain (sequence 1, 2, 3..., each from where the last one went, starting at good), none
  // twice, each made by a message sent here with that message's score and going where the
  // standard states say that score goes, in measurement order; and the table's state is where
  // the chain ends, after as many changes.
  if (!newest.empty()) account_state_changes(s, messages, newest, t);

  // 6. The verdict per message.
  for (size_t i = 0; i < messages.size(); ++i) {
    const SentMessage& m = messages[i];
    const Seen& v = seen[i];
    const uint64_t copies = static_cast<uint64_t>(m.copies);
    t.sent += copies;
    if (copies == 0) continue;

    bool rows_complete = true, rows_doubled = false;
    size_t expected_rows = 0;
    for (const auto& a : m.assets) {
      for (const auto& [metric, value] : a.metrics) {
        ++expected_rows;
        auto it = v.rows.find({a.asset_id, metric});
        if (it == v.rows.end()) {
          rows_complete = false;
          continue;
        }
        if (it->second.size() > 1) rows_doubled = true;
        if (!same_value(it->second.front(), value)) {
          problem(i, fmt::format("row {} {}={}, want {}", a.asset_id, metric, it->second.front(),
                                 value));
        }
      }
    }
    size_t rows_seen = 0;
    for (const auto& [_, values] : v.rows) rows_seen += values.size();
    size_t distinct_rows = v.rows.size();
    if (distinct_rows > expected_rows) {
      problem(i, fmt::format("{} kinds of rows, want {}", distinct_rows, expected_rows));
    }
    bool events_complete = v.events.size() == m.assets.size();
    bool events_doubled = false;
    for (const auto& [_, n] : v.events) events_doubled = events_doubled || n > 1;
    bool dlq_doubled = false;
    for (const auto& [_, n] : v.dead_letters) dlq_doubled = dlq_doubled || n > 1;

    const bool nothing_written = rows_seen == 0 && v.events.empty() && !v.processed_row;
    const bool fully_processed = !m.assets.empty() && rows_complete && events_complete &&
                                 v.processed_row && v.dead_letters.empty();
    const bool acked_empty = m.assets.empty() && nothing_written && v.dead_letters.empty() &&
                             m.expect != SentMessage::Expect::kDeadLetter;
    const bool dead_lettered = nothing_written && v.dead_letters.size() == copies;
    if (rows_doubled || events_doubled || dlq_doubled) {
      ++t.duplicated;
      problem(i, fmt::format("duplicated: rows {} events {} dead letters {}", rows_doubled,
                             events_doubled, dlq_doubled));
    }
    if (fully_processed || acked_empty) {
      t.processed += copies;
      if (m.expect == SentMessage::Expect::kDeadLetter) problem(i, "processed; expected the DLQ");
    } else if (dead_lettered) {
      t.dead_lettered += copies;
      if (m.expect != SentMessage::Expect::kDeadLetter) {
        problem(i, "in the DLQ; expected it processed");
      }
    } else {
      t.lost += copies;
      problem(i, fmt::format("lost: {} of {} rows, {} of {} events, processed row {}, {} dead "
                             "letters for {} copies",
                             rows_seen, expected_rows, v.events.size(), m.assets.size(),
                             v.processed_row, v.dead_letters.size(), copies));
    }
  }
  return t;
}

}  // namespace atw::testing
