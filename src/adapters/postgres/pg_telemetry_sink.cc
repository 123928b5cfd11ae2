#include "adapters/postgres/pg_telemetry_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/error_types.h"
#include "domain/event.h"
#include "domain/health_state.h"
#include "domain/json_writer.h"
#include "domain/score_ledger.h"
#include "pipeline/state_events.h"

namespace atw {

namespace {

// The COPY statements, their columns in the order encode_history_copy and
// encode_processed_copy write them.
constexpr const char* kHistoryColumns =
    "telemetry_history (entity_id, entity_type, metric_key, value, \"timestamp\","
    " received_at, source_device_id, quality)";
constexpr const char* kHistoryColumnNames[] = {
    "entity_id", "entity_type", "metric_key",       "value",
    "timestamp", "received_at", "source_device_id", "quality"};
constexpr const char* kProcessedCopy =
    "COPY processed_messages (message_id, organization_id, device_id, \"timestamp\","
    " processed_at, previous_scores, processed_by, state_changes) FROM STDIN (FORMAT binary)";
constexpr std::string_view kUniqueViolation = "23505";  // SQLSTATE

// PostgreSQL's binary timestamps count microseconds from 2000-01-01T00:00:00Z.
constexpr int64_t kPgEpochMicros = 946'684'800LL * 1'000'000;

void put_u16(std::string& out, uint16_t v) {
  v = __builtin_bswap16(v);
  out.append(reinterpret_cast<const char*>(&v), 2);
}
void put_u32(std::string& out, uint32_t v) {
  v = __builtin_bswap32(v);
  out.append(reinterpret_cast<const char*>(&v), 4);
}
void put_u64(std::string& out, uint64_t v) {
  v = __builtin_bswap64(v);
  out.append(reinterpret_cast<const char*>(&v), 8);
}
void put_text(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}
void put_float8(std::string& out, double v) {
  put_u32(out, 8);
  put_u64(out, std::bit_cast<uint64_t>(v));
}
void put_timestamptz(std::string& out, Timestamp t) {
  put_u32(out, 8);
  put_u64(out, static_cast<uint64_t>(t.micros - kPgEpochMicros));
}
void append_copy_header(std::string& out) {
  static constexpr char kSignature[] = "PGCOPY\n\377\r\n\0";
  out.append(kSignature, sizeof(kSignature) - 1);
  put_u32(out, 0);  // flags
  put_u32(out, 0);  // header extension length
}

}  // namespace

void encode_history_copy(std::span<const MessageResult> messages, const std::vector<bool>& include,
                         Timestamp received_at, std::string& out) {
  append_copy_header(out);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!include[i]) continue;
    const MessageResult& m = messages[i];
    for (const AssetResult& a : m.assets) {
      for (const Metric& metric : a.metrics) {
        put_u16(out, 8);
        put_text(out, a.asset_id);
        put_text(out, "Asset");
        put_text(out, metric.name);
        put_float8(out, metric.value);
        put_timestamptz(out, m.timestamp);
        put_timestamptz(out, received_at);
        put_text(out, m.device_id);
        put_text(out, quality_name(metric.quality));
      }
    }
  }
  put_u16(out, 0xFFFF);  // trailer
}

namespace {

// COPY's text format: a backslash, a tab, a newline or a carriage return in a value is escaped.
void put_copy_text(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out.append("\\\\");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      default:
        out.push_back(c);
    }
  }
}

}  // namespace

void encode_history_copy_text(std::span<const MessageResult> messages,
                              const std::vector<bool>& include, Timestamp received_at,
                              std::string& out) {
  const std::string received = format_rfc3339(received_at);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!include[i]) continue;
    const MessageResult& m = messages[i];
    const std::string measured = format_rfc3339(m.timestamp);
    for (const AssetResult& a : m.assets) {
      for (const Metric& metric : a.metrics) {
        put_copy_text(out, a.asset_id);
        out.append("\tAsset\t");
        put_copy_text(out, metric.name);
        out.push_back('\t');
        JsonWriter(out).number(metric.value);  // finite: a derived value never is anything else
        out.push_back('\t');
        out.append(measured).push_back('\t');
        out.append(received).push_back('\t');
        put_copy_text(out, m.device_id);
        out.push_back('\t');
        out.append(quality_name(metric.quality)).push_back('\n');
      }
    }
  }
}

bool history_columns_take_binary(const std::vector<std::string>& column_types) {
  auto is_text = [](const std::string& t) {
    return t == "text" || t.starts_with("character varying") || t.starts_with("character(");
  };
  auto is_time = [](const std::string& t) {
    return t == "timestamp with time zone" || t == "timestamp without time zone";
  };
  if (column_types.size() != std::size(kHistoryColumnNames)) return false;
  // entity_id, entity_type, metric_key, value, timestamp, received_at, source_device_id, quality
  return is_text(column_types[0]) && is_text(column_types[1]) && is_text(column_types[2]) &&
         column_types[3] == "double precision" && is_time(column_types[4]) &&
         is_time(column_types[5]) && is_text(column_types[6]) && is_text(column_types[7]);
}

std::string identity_key(const MessageResult& m) {
  std::string key;
  key.reserve(m.organization_id.size() + m.device_id.size() + m.message_id.size() + 2);
  key.append(m.organization_id).append(1, '\n').append(m.device_id).append(1, '\n');
  key.append(m.message_id);
  return key;
}

void encode_processed_copy(std::span<const MessageResult> messages,
                           const std::vector<bool>& include,
                           const std::vector<RecordedWrite>& recorded, Timestamp received_at,
                           std::string_view processed_by, std::string& out) {
  append_copy_header(out);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!include[i]) continue;
    const MessageResult& m = messages[i];
    put_u16(out, 8);
    put_text(out, m.message_id);
    put_text(out, m.organization_id);
    put_text(out, m.device_id);
    put_timestamptz(out, m.timestamp);
    put_timestamptz(out, received_at);
    // jsonb's binary form: a version byte, then the text.
    put_u32(out, static_cast<uint32_t>(recorded[i].previous_scores.size() + 1));
    out.push_back('\1');
    out.append(recorded[i].previous_scores);
    if (processed_by.empty()) {
      put_u32(out, 0xFFFFFFFF);  // NULL
    } else {
      put_text(out, processed_by);
    }
    // json's binary form is its text.
    if (recorded[i].state_changes.empty()) {
      put_u32(out, 0xFFFFFFFF);  // NULL
    } else {
      put_text(out, recorded[i].state_changes);
    }
  }
  put_u16(out, 0xFFFF);  // trailer
}

Result<std::vector<WriteOutcome>> PgTelemetrySink::write(std::span<const MessageResult> messages,
                                                         Timestamp received_at) {
  std::vector<WriteOutcome> outcomes(messages.size());
  if (messages.empty()) return outcomes;
  // The fast path assumes no message of the batch was written before (the common case); when
  // the database says otherwise, the transaction is redone knowing which ones were.
  std::optional<EarlierWrites> earlier;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status st = write_in_transaction(messages, received_at, earlier, outcomes);
    if (st.ok()) return outcomes;
    if (db_.connected()) (void)db_.exec(error_type::kDbWriteFailed, "ROLLBACK");
    if (st.type() != error_type::kWrittenBefore || earlier) return st;
    auto found = find_earlier_writes(messages);
    if (!found.ok()) return found.status();
    earlier = std::move(found).value();
    for (auto& o : outcomes) o = WriteOutcome{};
  }
  return Status::retryable(error_type::kConcurrentDuplicate,
                           "another worker wrote some of these messages at the same time");
}

Result<PgTelemetrySink::EarlierWrites> PgTelemetrySink::find_earlier_writes(
    std::span<const MessageResult> messages) {
  std::vector<std::string_view> orgs, devices, ids;
  for (const auto& m : messages) {
    orgs.push_back(m.organization_id);
    devices.push_back(m.device_id);
    ids.push_back(m.message_id);
  }
  auto r = db_.exec(error_type::kDbWriteFailed,
                    "SELECT p.organization_id, p.device_id, p.message_id, p.previous_scores::text,"
                    " coalesce(p.state_changes::text, '')"
                    " FROM processed_messages p"
                    " JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(org, dev, id)"
                    " ON p.organization_id = u.org AND p.device_id = u.dev AND p.message_id = u.id",
                    {pg_text_array(orgs), pg_text_array(devices), pg_text_array(ids)});
  if (!r.ok()) return r.status();
  EarlierWrites earlier;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    MessageResult identity;
    identity.organization_id = PQgetvalue(r->get(), row, 0);
    identity.device_id = PQgetvalue(r->get(), row, 1);
    identity.message_id = PQgetvalue(r->get(), row, 2);
    earlier.emplace(identity_key(identity),
                    RecordedWrite{PQgetvalue(r->get(), row, 3), PQgetvalue(r->get(), row, 4)});
  }
  return earlier;
}

Result<bool> PgTelemetrySink::history_takes_binary() {
  if (history_binary_ && history_checked_on_ == db_.generation() && db_.connected()) {
    return *history_binary_;
  }
  auto r = db_.exec(error_type::kDbWriteFailed,
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM unnest($1::text[])"
                    " WITH ORDINALITY AS c(name, ord)"
                    " LEFT JOIN pg_attribute a ON a.attrelid = to_regclass('telemetry_history')"
                    "  AND a.attname = c.name AND a.attnum > 0 AND NOT a.attisdropped"
                    " ORDER BY c.ord",
                    {pg_text_array(std::vector<std::string_view>(std::begin(kHistoryColumnNames),
                                                                 std::end(kHistoryColumnNames)))});
  if (!r.ok()) return r.status();
  std::vector<std::string> types;
  types.reserve(static_cast<size_t>(PQntuples(r->get())));
  for (int row = 0; row < PQntuples(r->get()); ++row)
    types.emplace_back(PQgetvalue(r->get(), row, 0));
  history_binary_ = history_columns_take_binary(types);
  history_checked_on_ = db_.generation();
  return *history_binary_;
}

namespace {

// Reads one asset's score out of a recorded {"assetId": score|null} object.
std::optional<double> recorded_score(const nlohmann::json& recorded, const std::string& asset_id) {
  if (!recorded.is_object()) return std::nullopt;
  auto found = recorded.find(asset_id);
  if (found == recorded.end() || !found->is_number()) return std::nullopt;
  return found->get<double>();
}

// A stored health state from columns col.. of a row (state, entered_at, entered_score, changes,
// pending_state, pending_since, pending_count).
AssetHealthState read_health_state(PGresult* res, int row, int col) {
  AssetHealthState s;
  s.state = PQgetvalue(res, row, col);
  s.entered_at = parse_pg_timestamp(PQgetvalue(res, row, col + 1)).value_or(Timestamp{});
  s.entered_score = std::strtod(PQgetvalue(res, row, col + 2), nullptr);
  s.changes = std::strtoll(PQgetvalue(res, row, col + 3), nullptr, 10);
  s.pending = PQgetvalue(res, row, col + 4);
  if (!PQgetisnull(res, row, col + 5)) {
    s.pending_since = parse_pg_timestamp(PQgetvalue(res, row, col + 5)).value_or(Timestamp{});
  }
  s.pending_count = static_cast<int>(std::strtol(PQgetvalue(res, row, col + 6), nullptr, 10));
  return s;
}

// Appends a PostgreSQL array literal of `values` ('{1,2,3}') to `out`.
template <typename T>
void append_array(std::string& out, const std::vector<T>& values) {
  out += "'{";
  for (size_t k = 0; k < values.size(); ++k) {
    if (k) out.push_back(',');
    out += fmt::format("{}", values[k]);
  }
  out += "}'";
}

}  // namespace

Result<std::string> PgTelemetrySink::health_state_upsert(
    const std::vector<HealthStateLedger::Row>& rows) {
  std::vector<std::string_view> ids, orgs, names, pendings;
  std::vector<int64_t> entered, changes, since;
  std::vector<double> scores;
  std::vector<int> counts;
  for (const auto& r : rows) {
    ids.push_back(r.asset_id);
    orgs.push_back(r.organization_id);
    names.push_back(r.state.state);
    pendings.push_back(r.state.pending);
    entered.push_back(r.state.entered_at.micros);
    scores.push_back(r.state.entered_score);
    changes.push_back(r.state.changes);
    since.push_back(r.state.pending_since.micros);
    counts.push_back(r.state.pending_count);
  }
  std::string text_arrays;
  for (const auto* column : {&ids, &orgs, &names, &pendings}) {
    auto literal = db_.literal(error_type::kDbWriteFailed, pg_text_array(*column));
    if (!literal.ok()) return literal.status();
    text_arrays += *literal + "::text[], ";
  }
  std::string sql =
      "INSERT INTO asset_health_states AS s (asset_id, organization_id, state, entered_at,"
      " entered_score, changes, pending_state, pending_since, pending_count, updated_at)"
      " SELECT v.id, v.org, v.state, timestamptz 'epoch' + v.entered * interval '1 microsecond',"
      " v.score, v.changes, nullif(v.pending, ''), CASE WHEN v.pending = '' THEN NULL"
      " ELSE timestamptz 'epoch' + v.since * interval '1 microsecond' END, v.count, now()"
      " FROM unnest(" +
      text_arrays;
  append_array(sql, entered);
  sql += "::int8[], ";
  append_array(sql, scores);
  sql += "::float8[], ";
  append_array(sql, changes);
  sql += "::int8[], ";
  append_array(sql, since);
  sql += "::int8[], ";
  append_array(sql, counts);
  sql +=
      "::int4[]) AS v(id, org, state, pending, entered, score, changes, since, count)"
      " ON CONFLICT (asset_id) DO UPDATE SET organization_id = excluded.organization_id,"
      " state = excluded.state, entered_at = excluded.entered_at,"
      " entered_score = excluded.entered_score, changes = excluded.changes,"
      " pending_state = excluded.pending_state, pending_since = excluded.pending_since,"
      " pending_count = excluded.pending_count, updated_at = excluded.updated_at; ";
  return sql;
}

Status PgTelemetrySink::write_in_transaction(std::span<const MessageResult> messages,
                                             Timestamp received_at,
                                             const std::optional<EarlierWrites>& earlier,
                                             std::vector<WriteOutcome>& outcomes) {
  // Which messages this transaction writes: the first occurrence of each identity in the batch,
  // unless an earlier transaction wrote it.
  std::vector<std::string> identities;
  identities.reserve(messages.size());
  std::vector<bool> fresh(messages.size(), false);
  std::unordered_map<std::string_view, size_t> first_in_batch;
  for (size_t i = 0; i < messages.size(); ++i) {
    identities.push_back(identity_key(messages[i]));
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const bool repeat = !first_in_batch.emplace(identities[i], i).second;
    fresh[i] = !repeat && !(earlier && earlier->contains(identities[i]));
  }
  auto binary = history_takes_binary();
  if (!binary.ok()) return binary.status();

  // The transaction takes two requests, each one round trip to the server.
  // Request 1: BEGIN; the history rows of the new messages, one COPY; then their assets locked in
  // id order (replicas and lanes never deadlock) and their scores read. The COPY comes before the
  // locks because it takes no lock another transaction could want: two lanes copy at the same
  // time.
  // Every statement here reads or writes a batch's rows of tables that grow with the plant
  // (assets, their states, processed_messages), whose pages the batches keep in memory: a page
  // read at random costs about what one read in order does, which random_page_cost = 1.1 tells
  // the planner (its default, 4, is a disk's). With the default it read the whole of
  // asset_health_states for a batch of a large plant; with sequential scans simply disallowed,
  // a small plant's batches cost more (an index where reading the small table is cheaper).
  // The A/B figures are in docs/benchmarks.md (the growth findings).
  copy_buffer_.clear();
  std::string sql = "BEGIN; SET LOCAL random_page_cost = 1.1; COPY ";
  sql += kHistoryColumns;
  if (*binary) {
    encode_history_copy(messages, fresh, received_at, copy_buffer_);
    sql += " FROM STDIN (FORMAT binary)";
  } else {
    encode_history_copy_text(messages, fresh, received_at, copy_buffer_);
    sql += " FROM STDIN";
  }
  std::vector<std::string_view> asset_ids;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!fresh[i]) continue;
    for (const auto& a : messages[i].assets) asset_ids.push_back(a.asset_id);
  }
  std::sort(asset_ids.begin(), asset_ids.end());
  asset_ids.erase(std::unique(asset_ids.begin(), asset_ids.end()), asset_ids.end());
  if (!asset_ids.empty()) {
    auto ids = db_.literal(error_type::kDbWriteFailed, pg_text_array(asset_ids));
    if (!ids.ok()) return ids.status();
    // Read as text, whatever types the table's owner chose (parse_pg_timestamp).
    // Their health states in a statement of their own, after the locks: a statement
    // that waited for a lock sees the locked row as the other transaction left it, but every
    // other table as it was when the statement began, so a state read in the locking statement
    // could be one that transaction has since changed. The next statement starts after the
    // locks are held and sees everything committed before.
    // The locks through a join, not `id = ANY(...)`: a row another lane changed while this one
    // waited is checked again, and an index scan on an array checks it by sorting the whole
    // array again, for every such row: seconds for a batch of many assets.
    sql += fmt::format(
        "; SELECT a.id, a.health_score::text, a.health_score_updated_at::text"
        " FROM unnest({0}::text[]) AS k(id) JOIN assets a ON a.id = k.id"
        " ORDER BY a.id FOR UPDATE OF a"
        "; SELECT asset_id, state, entered_at::text, entered_score, changes,"
        " coalesce(pending_state, ''), pending_since::text, pending_count"
        " FROM asset_health_states WHERE asset_id = ANY({0}::text[])",
        *ids);
  }
  auto locked = db_.run_script_results(error_type::kDbWriteFailed, sql, copy_buffer_);
  if (!locked.ok()) return locked.status();
  ScoreLedger ledger;
  HealthStateLedger states;
  if (locked->size() == 2) {
    std::unordered_map<std::string_view, int> state_rows;
    PGresult* stored_states = (*locked)[1].get();
    for (int row = 0; row < PQntuples(stored_states); ++row) {
      state_rows.emplace(PQgetvalue(stored_states, row, 0), row);
    }
    PGresult* res = (*locked)[0].get();
    for (int row = 0; row < PQntuples(res); ++row) {
      StoredScore stored;
      if (!PQgetisnull(res, row, 1)) stored.score = std::strtod(PQgetvalue(res, row, 1), nullptr);
      // Any instant the column holds (infinity included) orders as PostgreSQL orders it; text
      // that is no time at all (a column of another type) counts as no score time: the next
      // message's score replaces it.
      if (!PQgetisnull(res, row, 2))
        stored.updated_at = parse_pg_timestamp(PQgetvalue(res, row, 2));
      ledger.load(PQgetvalue(res, row, 0), stored);
      const auto found = state_rows.find(PQgetvalue(res, row, 0));
      std::optional<AssetHealthState> state;
      if (found != state_rows.end()) state = read_health_state(stored_states, found->second, 1);
      states.load(PQgetvalue(res, row, 0), std::move(state), stored.updated_at);
    }
  }

  // Between the requests: previous scores and state changes, in delivery order, exactly as one
  // message at a time would see them. A late message (older than the asset's score) moves no
  // state.
  std::vector<RecordedWrite> recorded(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const MessageResult& m = messages[i];
    WriteOutcome& o = outcomes[i];
    if (fresh[i]) {
      JsonWriter w(recorded[i].previous_scores);
      w.begin_object();
      for (const auto& a : m.assets) {
        auto prev = ledger.apply(a.asset_id, a.health_score, m.timestamp);
        o.previous_scores.push_back(prev);
        w.key(a.asset_id).optional_number(prev);
        if (!a.health_states) continue;
        auto t = states.apply(a.asset_id, m.organization_id, *a.health_states, a.health_score,
                              m.timestamp);
        if (t) o.state_events.push_back(state_event_of(m, a, *t));
      }
      w.end_object();
      recorded[i].state_changes = record_state_events(o.state_events);
      continue;
    }
    o.duplicate = true;
    const bool before = earlier && earlier->contains(identities[i]);
    const RecordedWrite& first =
        before ? earlier->at(identities[i]) : recorded[first_in_batch.at(identities[i])];
    const auto scores = nlohmann::json::parse(first.previous_scores, nullptr, false);
    for (const auto& a : m.assets) o.previous_scores.push_back(recorded_score(scores, a.asset_id));
    o.state_events = recorded_state_events(first.state_changes);
  }

  // Request 2: the new messages marked written, one binary COPY; each changed asset once, with
  // its newest score; COMMIT. A message some other transaction wrote first is a unique violation
  // in the COPY (after waiting for that transaction if it is still open), and the statements
  // after it do not run: the caller redoes the batch knowing which ones were written.
  sql.clear();
  copy_buffer_.clear();
  if (std::any_of(fresh.begin(), fresh.end(), [](bool f) { return f; })) {
    encode_processed_copy(messages, fresh, recorded, received_at, worker_id_, copy_buffer_);
    sql += kProcessedCopy;
    sql += "; ";
  }
  // The scores: each changed asset once. `a.id = ANY(...)` says how few rows of `assets` the
  // join needs: without it the planner, which cannot see into the unnest, joined by hashing the
  // whole table, a cost that grew with the plant.
  if (const auto changes = ledger.changes(); !changes.empty()) {
    std::vector<std::string_view> cids;
    std::string scores = "{";
    std::string times = "{";
    for (size_t k = 0; k < changes.size(); ++k) {
      cids.push_back(changes[k].asset_id);
      if (k) {
        scores.push_back(',');
        times.push_back(',');
      }
      scores += fmt::format("{}", changes[k].score);
      times += std::to_string(changes[k].at.micros);
    }
    scores.push_back('}');
    times.push_back('}');
    auto ids = db_.literal(error_type::kDbWriteFailed, pg_text_array(cids));
    if (!ids.ok()) return ids.status();
    sql += fmt::format(
        "UPDATE assets AS a SET health_score = v.score,"
        " health_score_updated_at = timestamptz 'epoch' + v.micros * interval '1 microsecond',"
        " health_score_computed_by = '{3}',"
        " updated_at = timestamptz 'epoch' + v.micros * interval '1 microsecond'"
        " FROM unnest({0}::text[], '{1}'::float8[], '{2}'::int8[]) AS v(id, score, micros)"
        " WHERE a.id = v.id AND a.id = ANY({0}::text[]); ",
        *ids, scores, times, kProcessorVersion);
  }
  if (const auto rows = states.changed(); !rows.empty()) {
    auto upsert = health_state_upsert(rows);
    if (!upsert.ok()) return upsert.status();
    sql += *upsert;
  }
  sql += "COMMIT";
  auto committed = db_.run_script(error_type::kDbWriteFailed, sql, copy_buffer_);
  if (!committed.ok() && db_.last_sqlstate() == kUniqueViolation) {
    return Status::retryable(error_type::kWrittenBefore,
                             "some messages of the batch were written before");
  }
  return committed.status();
}

}  // namespace atw
