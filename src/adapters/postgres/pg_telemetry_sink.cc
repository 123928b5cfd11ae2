#include "adapters/postgres/pg_telemetry_sink.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "domain/json_writer.h"
#include "domain/score_ledger.h"

namespace atw {

namespace {

// The COPY statements, their columns in the order encode_history_copy and
// encode_processed_copy write them.
constexpr const char* kHistoryCopy =
    "COPY telemetry_history (entity_id, entity_type, metric_key, value, \"timestamp\","
    " received_at, source_device_id, quality) FROM STDIN (FORMAT binary)";
constexpr const char* kProcessedCopy =
    "COPY processed_messages (message_id, organization_id, device_id, \"timestamp\","
    " processed_at, previous_scores, processed_by) FROM STDIN (FORMAT binary)";
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
        put_text(out, "good");
      }
    }
  }
  put_u16(out, 0xFFFF);  // trailer
}

void encode_processed_copy(std::span<const MessageResult> messages,
                           const std::vector<bool>& include,
                           const std::vector<std::string>& previous_scores, Timestamp received_at,
                           std::string_view processed_by, std::string& out) {
  append_copy_header(out);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!include[i]) continue;
    const MessageResult& m = messages[i];
    put_u16(out, 7);
    put_text(out, m.message_id);
    put_text(out, m.organization_id);
    put_text(out, m.device_id);
    put_timestamptz(out, m.timestamp);
    put_timestamptz(out, received_at);
    // jsonb's binary form: a version byte, then the text.
    put_u32(out, static_cast<uint32_t>(previous_scores[i].size() + 1));
    out.push_back('\1');
    out.append(previous_scores[i]);
    if (processed_by.empty()) {
      put_u32(out, 0xFFFFFFFF);  // NULL
    } else {
      put_text(out, processed_by);
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
    if (db_.connected()) (void)db_.exec("db_write_failed", "ROLLBACK");
    if (st.type() != "written_before" || earlier) return st;
    auto found = find_earlier_writes(messages);
    if (!found.ok()) return found.status();
    earlier = std::move(found).value();
    for (auto& o : outcomes) o = WriteOutcome{};
  }
  return Status::retryable("concurrent_duplicate",
                           "another worker wrote some of these messages at the same time");
}

Result<PgTelemetrySink::EarlierWrites> PgTelemetrySink::find_earlier_writes(
    std::span<const MessageResult> messages) {
  std::vector<std::string_view> ids;
  ids.reserve(messages.size());
  for (const auto& m : messages) ids.push_back(m.message_id);
  auto r = db_.exec("db_write_failed",
                    "SELECT p.message_id, p.previous_scores::text FROM processed_messages p"
                    " JOIN unnest($1::text[]) AS u(id) ON p.message_id = u.id",
                    {pg_text_array(ids)});
  if (!r.ok()) return r.status();
  EarlierWrites earlier;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    earlier.emplace(PQgetvalue(r->get(), row, 0), PQgetvalue(r->get(), row, 1));
  }
  return earlier;
}

namespace {

// Reads one asset's score out of a recorded {"assetId": score|null} object.
std::optional<double> recorded_score(const nlohmann::json& recorded, const std::string& asset_id) {
  if (!recorded.is_object()) return std::nullopt;
  auto found = recorded.find(asset_id);
  if (found == recorded.end() || !found->is_number()) return std::nullopt;
  return found->get<double>();
}

}  // namespace

Status PgTelemetrySink::write_in_transaction(std::span<const MessageResult> messages,
                                             Timestamp received_at,
                                             const std::optional<EarlierWrites>& earlier,
                                             std::vector<WriteOutcome>& outcomes) {
  // Which messages this transaction writes: the first occurrence of each id in the batch, unless
  // an earlier transaction wrote it.
  std::vector<bool> fresh(messages.size(), false);
  std::unordered_map<std::string_view, size_t> first_in_batch;
  for (size_t i = 0; i < messages.size(); ++i) {
    const bool repeat = !first_in_batch.emplace(messages[i].message_id, i).second;
    fresh[i] = !repeat && !(earlier && earlier->contains(messages[i].message_id));
  }

  // The transaction takes two requests, each one round trip to the server.
  // Request 1: BEGIN; the history rows of the new messages, one binary COPY; then their assets
  // locked in id order (replicas and lanes never deadlock) and their scores read. The COPY
  // comes before the locks because it takes no lock another transaction could want: two lanes
  // copy at the same time.
  copy_buffer_.clear();
  encode_history_copy(messages, fresh, received_at, copy_buffer_);
  std::string sql = "BEGIN; ";
  sql += kHistoryCopy;
  std::vector<std::string_view> asset_ids;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!fresh[i]) continue;
    for (const auto& a : messages[i].assets) asset_ids.push_back(a.asset_id);
  }
  std::sort(asset_ids.begin(), asset_ids.end());
  asset_ids.erase(std::unique(asset_ids.begin(), asset_ids.end()), asset_ids.end());
  if (!asset_ids.empty()) {
    auto ids = db_.literal("db_write_failed", pg_text_array(asset_ids));
    if (!ids.ok()) return ids.status();
    sql += fmt::format(
        "; SELECT id, health_score, (extract(epoch FROM health_score_updated_at) * 1000000)::int8"
        " FROM assets WHERE id = ANY({}::text[]) ORDER BY id FOR UPDATE",
        *ids);
  }
  auto locked = db_.run_script("db_write_failed", sql, copy_buffer_);
  if (!locked.ok()) return locked.status();
  ScoreLedger ledger;
  if (PGresult* res = locked->get()) {
    for (int row = 0; row < PQntuples(res); ++row) {
      StoredScore stored;
      if (!PQgetisnull(res, row, 1)) stored.score = std::strtod(PQgetvalue(res, row, 1), nullptr);
      if (!PQgetisnull(res, row, 2)) {
        stored.updated_at = Timestamp{std::strtoll(PQgetvalue(res, row, 2), nullptr, 10)};
      }
      ledger.load(PQgetvalue(res, row, 0), stored);
    }
  }

  // Between the requests: previous scores, in delivery order, exactly as one message at a time
  // would see them.
  std::vector<std::string> prev_json(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const MessageResult& m = messages[i];
    WriteOutcome& o = outcomes[i];
    if (fresh[i]) {
      JsonWriter w(prev_json[i]);
      w.begin_object();
      for (const auto& a : m.assets) {
        auto prev = ledger.apply(a.asset_id, a.health_score, m.timestamp);
        o.previous_scores.push_back(prev);
        w.key(a.asset_id).optional_number(prev);
      }
      w.end_object();
      continue;
    }
    o.duplicate = true;
    const bool before = earlier && earlier->contains(m.message_id);
    const std::string& text =
        before ? earlier->at(m.message_id) : prev_json[first_in_batch.at(m.message_id)];
    const auto recorded = nlohmann::json::parse(text, nullptr, false);
    for (const auto& a : m.assets)
      o.previous_scores.push_back(recorded_score(recorded, a.asset_id));
  }

  // Request 2: the new messages marked written, one binary COPY; each changed asset once, with
  // its newest score; COMMIT. A message some other transaction wrote first is a unique violation
  // in the COPY (after waiting for that transaction if it is still open), and the statements
  // after it do not run: the caller redoes the batch knowing which ones were written.
  sql.clear();
  copy_buffer_.clear();
  if (std::any_of(fresh.begin(), fresh.end(), [](bool f) { return f; })) {
    encode_processed_copy(messages, fresh, prev_json, received_at, worker_id_, copy_buffer_);
    sql += kProcessedCopy;
    sql += "; ";
  }
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
    auto ids = db_.literal("db_write_failed", pg_text_array(cids));
    if (!ids.ok()) return ids.status();
    sql += fmt::format(
        "UPDATE assets AS a SET health_score = v.score,"
        " health_score_updated_at = timestamptz 'epoch' + v.micros * interval '1 microsecond',"
        " health_score_computed_by = 'asset-worker-v1',"
        " updated_at = timestamptz 'epoch' + v.micros * interval '1 microsecond'"
        " FROM unnest({}::text[], '{}'::float8[], '{}'::int8[]) AS v(id, score, micros)"
        " WHERE a.id = v.id; ",
        *ids, scores, times);
  }
  sql += "COMMIT";
  auto committed = db_.run_script("db_write_failed", sql, copy_buffer_);
  if (!committed.ok() && db_.last_sqlstate() == kUniqueViolation) {
    return Status::retryable("written_before", "some messages of the batch were written before");
  }
  return committed.status();
}

}  // namespace atw
