#include "adapters/postgres/pg_reprocess_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "adapters/postgres/pg_telemetry_sink.h"
#include "common/error_types.h"
#include "domain/event.h"
#include "pipeline/ports.h"

namespace atw {

namespace {

constexpr std::string_view kType = error_type::kDbWriteFailed;

// An instant as microseconds since the epoch, in SQL: exact (numeric) and zone-free.
constexpr const char* kMicros = "(extract(epoch FROM {}) * 1000000)::bigint";

std::string micros_of(const char* column) {
  return fmt::format(kMicros, column);
}

Timestamp timestamp_at(PGresult* r, int row, int col) {
  return Timestamp{std::strtoll(PQgetvalue(r, row, col), nullptr, 10)};
}

// A history row's quality as written (good where the column holds anything else).
Quality stored_quality(std::string_view text) {
  return parse_quality(text).value_or(Quality::kGood);
}

// `{1.5,NULL}`: a float8[] literal.
std::string float_array(const std::vector<std::optional<double>>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += values[i] ? fmt::format("{}", *values[i]) : std::string("NULL");
  }
  return out + "}";
}

// `{"2026-01-28T14:30:00.000001Z",NULL}`: a timestamptz[] literal.
std::string time_array(const std::vector<std::optional<Timestamp>>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += values[i] ? "\"" + format_rfc3339(*values[i]) + "\"" : std::string("NULL");
  }
  return out + "}";
}

std::string text_array(const std::vector<std::string>& items) {
  std::vector<std::string_view> views(items.begin(), items.end());
  return pg_text_array(views);
}

// The identities of `items` (anything with organization_id, device_id and message_id) as the
// three text[] parameters the statements join on.
template <typename Items>
std::vector<std::optional<std::string>> identity_arrays(const Items& items) {
  std::vector<std::string_view> orgs, devices, ids;
  for (const auto& m : items) {
    orgs.push_back(m.organization_id);
    devices.push_back(m.device_id);
    ids.push_back(m.message_id);
  }
  return {pg_text_array(orgs), pg_text_array(devices), pg_text_array(ids)};
}

}  // namespace

std::string PgReprocessStore::history_key(const std::string& asset, Timestamp t,
                                          const std::string& device) {
  return fmt::format("{}\n{}\n{}", asset, t.micros, device);
}

Result<std::unordered_map<std::string, ProcessedRecord>> PgReprocessStore::processed(
    std::span<const TelemetryMessage> messages) {
  const std::string sql = fmt::format(
      "SELECT p.organization_id, p.device_id, p.message_id, {},"
      " coalesce(p.corrected_scores, p.previous_scores)::text, p.corrected_scores IS NOT NULL"
      " FROM processed_messages p"
      " JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(org, dev, id)"
      " ON p.organization_id = u.org AND p.device_id = u.dev AND p.message_id = u.id",
      micros_of("coalesce(p.corrected_at, p.processed_at)"));
  auto r = db_.exec(kType, sql.c_str(), identity_arrays(messages));
  if (!r.ok()) return r.status();
  std::unordered_map<std::string, ProcessedRecord> out;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    MessageResult identity;
    identity.organization_id = PQgetvalue(r->get(), row, 0);
    identity.device_id = PQgetvalue(r->get(), row, 1);
    identity.message_id = PQgetvalue(r->get(), row, 2);
    out[identity_key(identity)] =
        ProcessedRecord{timestamp_at(r->get(), row, 3), PQgetvalue(r->get(), row, 4),
                        std::string_view(PQgetvalue(r->get(), row, 5)) == "t"};
  }
  return out;
}

Result<std::unordered_map<std::string, MetricSet>> PgReprocessStore::history(
    const std::vector<std::tuple<std::string, Timestamp, std::string>>& triples) {
  std::vector<std::string> assets, devices;
  std::vector<std::optional<Timestamp>> times;
  for (const auto& [asset, t, device] : triples) {
    assets.push_back(asset);
    times.push_back(t);
    devices.push_back(device);
  }
  const std::string sql = fmt::format(
      "SELECT h.entity_id::text, {}, h.source_device_id::text, h.metric_key::text,"
      " h.value::float8::text, coalesce(h.quality::text, '') FROM telemetry_history h"
      " JOIN unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(e, t, d)"
      " ON h.entity_id = u.e AND h.\"timestamp\" = u.t AND h.source_device_id = u.d"
      " WHERE h.value IS NOT NULL",
      micros_of("h.\"timestamp\""));
  auto r =
      db_.exec(kType, sql.c_str(), {text_array(assets), time_array(times), text_array(devices)});
  if (!r.ok()) return r.status();
  std::unordered_map<std::string, MetricSet> out;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    out[history_key(PQgetvalue(r->get(), row, 0), timestamp_at(r->get(), row, 1),
                    PQgetvalue(r->get(), row, 2))]
        .set(PQgetvalue(r->get(), row, 3), std::strtod(PQgetvalue(r->get(), row, 4), nullptr),
             stored_quality(PQgetvalue(r->get(), row, 5)));
  }
  return out;
}

Result<std::unordered_map<std::string, AssetState>> PgReprocessStore::assets(
    const std::vector<std::string>& ids) {
  const std::string sql = fmt::format(
      "SELECT id::text, asset_type_id::text, health_score::float8::text, {}"
      " FROM assets WHERE id = ANY($1::text[])",
      micros_of("health_score_updated_at"));
  auto r = db_.exec(kType, sql.c_str(), {text_array(ids)});
  if (!r.ok()) return r.status();
  std::unordered_map<std::string, AssetState> out;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    AssetState a;
    a.asset_type_id = PQgetvalue(r->get(), row, 1);
    if (!PQgetisnull(r->get(), row, 2))
      a.score = std::strtod(PQgetvalue(r->get(), row, 2), nullptr);
    if (!PQgetisnull(r->get(), row, 3)) a.score_time = timestamp_at(r->get(), row, 3);
    out[PQgetvalue(r->get(), row, 0)] = std::move(a);
  }
  return out;
}

Result<std::vector<SchemaVersion>> PgReprocessStore::schema_versions(
    const std::vector<std::string>& types) {
  const std::string sql = fmt::format(
      "SELECT asset_type_id, version, {}, coalesce(telemetry_schema::text, 'null')"
      " FROM asset_type_schema_versions"
      " WHERE cardinality($1::text[]) = 0 OR asset_type_id = ANY($1::text[])"
      " ORDER BY asset_type_id, version",
      micros_of("recorded_at"));
  auto r = db_.exec(kType, sql.c_str(), {text_array(types)});
  if (!r.ok()) return r.status();
  std::vector<SchemaVersion> out;
  out.reserve(static_cast<size_t>(PQntuples(r->get())));
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    out.push_back({PQgetvalue(r->get(), row, 0), std::atoi(PQgetvalue(r->get(), row, 1)),
                   timestamp_at(r->get(), row, 2), PQgetvalue(r->get(), row, 3)});
  }
  return out;
}

Result<std::optional<std::pair<Timestamp, MetricSet>>> PgReprocessStore::newest_rows(
    const std::string& asset, const std::vector<std::pair<Timestamp, std::string>>& except) {
  std::vector<std::optional<Timestamp>> times;
  std::vector<std::string> devices;
  for (const auto& [t, device] : except) {
    times.push_back(t);
    devices.push_back(device);
  }
  const std::string sql = fmt::format(
      "WITH rest AS (SELECT h.\"timestamp\", h.metric_key, h.value, h.quality"
      "  FROM telemetry_history h"
      "  WHERE h.entity_id = $1 AND h.value IS NOT NULL AND NOT EXISTS ("
      "   SELECT FROM unnest($2::timestamptz[], $3::text[]) AS x(t, d)"
      "   WHERE x.t = h.\"timestamp\" AND x.d = h.source_device_id))"
      " SELECT {}, metric_key::text, value::float8::text, coalesce(quality::text, '') FROM rest"
      " WHERE \"timestamp\" = (SELECT max(\"timestamp\") FROM rest)",
      micros_of("\"timestamp\""));
  auto r = db_.exec(kType, sql.c_str(), {asset, time_array(times), text_array(devices)});
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return std::optional<std::pair<Timestamp, MetricSet>>();
  std::pair<Timestamp, MetricSet> out{timestamp_at(r->get(), 0, 0), {}};
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    out.second.set(PQgetvalue(r->get(), row, 1), std::strtod(PQgetvalue(r->get(), row, 2), nullptr),
                   stored_quality(PQgetvalue(r->get(), row, 3)));
  }
  return std::optional<std::pair<Timestamp, MetricSet>>(std::move(out));
}

Status PgReprocessStore::begin() {
  auto r = db_.exec(kType, "BEGIN");
  return r.ok() ? Status() : r.status();
}

Status PgReprocessStore::rollback() {
  if (!db_.connected()) return Status();
  auto r = db_.exec(kType, "ROLLBACK");
  return r.ok() ? Status() : r.status();
}

Status PgReprocessStore::lock(const Batch& b) {
  std::vector<std::string> assets;
  auto r = db_.exec(kType,
                    "SELECT 1 FROM processed_messages p"
                    " JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(org, dev, id)"
                    " ON p.organization_id = u.org AND p.device_id = u.dev AND p.message_id = u.id"
                    " FOR UPDATE OF p",
                    identity_arrays(b.messages));
  if (!r.ok()) return r.status();
  for (const auto& s : b.scores) assets.push_back(s.asset_id);
  std::sort(assets.begin(), assets.end());
  assets.erase(std::unique(assets.begin(), assets.end()), assets.end());
  // Through a join, as the sink locks them (pg_telemetry_sink.cc says why).
  r = db_.exec(kType,
               "SELECT 1 FROM unnest($1::text[]) AS k(id) JOIN assets a ON a.id = k.id"
               " ORDER BY a.id FOR UPDATE OF a",
               {text_array(assets)});
  return r.ok() ? Status() : r.status();
}

Status PgReprocessStore::write_rows(const Batch& b) {
  auto columns = [](const std::vector<HistoryChange>& rows, bool values) {
    std::vector<std::string> assets, metrics, devices, qualities;
    std::vector<std::optional<Timestamp>> times;
    std::vector<std::optional<double>> v;
    for (const auto& h : rows) {
      assets.push_back(h.asset_id);
      metrics.push_back(h.metric);
      times.push_back(h.timestamp);
      devices.push_back(h.device_id);
      v.push_back(h.value);
      qualities.emplace_back(quality_name(h.quality));
    }
    std::vector<std::optional<std::string>> params{text_array(assets), text_array(metrics),
                                                   time_array(times), text_array(devices)};
    if (values) {
      params.push_back(float_array(v));
      params.push_back(text_array(qualities));
    }
    return params;
  };
  if (!b.removed.empty()) {
    auto r = db_.exec(kType,
                      "DELETE FROM telemetry_history h"
                      " USING unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])"
                      "  AS u(e, k, t, d)"
                      " WHERE h.entity_id = u.e AND h.metric_key = u.k AND h.\"timestamp\" = u.t"
                      " AND h.source_device_id = u.d",
                      columns(b.removed, false));
    if (!r.ok()) return r.status();
  }
  if (!b.changed.empty()) {
    auto r = db_.exec(kType,
                      "UPDATE telemetry_history h SET value = u.v, quality = u.q"
                      " FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],"
                      "  $5::float8[], $6::text[]) AS u(e, k, t, d, v, q)"
                      " WHERE h.entity_id = u.e AND h.metric_key = u.k AND h.\"timestamp\" = u.t"
                      " AND h.source_device_id = u.d",
                      columns(b.changed, true));
    if (!r.ok()) return r.status();
  }
  if (!b.added.empty()) {
    // COPY's text form, as the workers write history where its columns are of other types.
    std::vector<MessageResult> rows;
    for (const auto& h : b.added) {
      MessageResult m;
      m.device_id = h.device_id;
      m.timestamp = h.timestamp;
      m.assets.push_back(
          AssetResult{h.asset_id, MetricSet{{h.metric, h.value, h.quality}}, 0, {}, nullptr});
      rows.push_back(std::move(m));
    }
    std::string data;
    encode_history_copy_text(rows, std::vector<bool>(rows.size(), true),
                             Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count()},
                             data);
    auto r = db_.run_script(kType,
                            "COPY telemetry_history (entity_id, entity_type, metric_key, value,"
                            " \"timestamp\", received_at, source_device_id, quality) FROM STDIN",
                            data);
    if (!r.ok()) return r.status();
  }
  return Status();
}

Status PgReprocessStore::write_scores(const std::vector<ScoreChange>& scores) {
  for (const auto& s : scores) {
    // Forward only: a newer measurement (a worker's, beside the run) keeps its score.
    const char* sql =
        s.only_if_time
            ? "UPDATE assets SET health_score = $2::float8, health_score_updated_at = $3,"
              " health_score_computed_by = $5, updated_at = now()"
              " WHERE id = $1 AND health_score_updated_at = $4::timestamptz"
            : "UPDATE assets SET health_score = $2::float8, health_score_updated_at = $3,"
              " health_score_computed_by = $5, updated_at = now()"
              " WHERE id = $1 AND (health_score_updated_at IS NULL"
              "  OR health_score_updated_at <= $3::timestamptz)"
              " AND $4::timestamptz IS NULL";
    auto r =
        db_.exec(kType, sql,
                 {s.asset_id,
                  s.score ? std::optional<std::string>(fmt::format("{}", *s.score)) : std::nullopt,
                  s.time ? std::optional<std::string>(format_rfc3339(*s.time)) : std::nullopt,
                  s.only_if_time ? std::optional<std::string>(format_rfc3339(*s.only_if_time))
                                 : std::nullopt,
                  std::string(kProcessorVersion) + " reprocess"});
    if (!r.ok()) return r.status();
  }
  return Status();
}

Status PgReprocessStore::finish(const Batch& b) {
  if (!b.messages.empty()) {
    std::vector<std::string> written;
    for (const auto& m : b.messages) written.push_back(m.written);
    auto params = identity_arrays(b.messages);
    params.push_back(text_array(written));
    auto r = db_.exec(kType,
                      "UPDATE processed_messages p SET corrected_at = now(),"
                      " corrected_scores = u.w::jsonb"
                      " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
                      "  AS u(org, dev, id, w)"
                      " WHERE p.organization_id = u.org AND p.device_id = u.dev"
                      " AND p.message_id = u.id",
                      params);
    if (!r.ok()) return r.status();
  }
  if (!b.run_id.empty()) {
    auto r = db_.exec(kType,
                      "UPDATE reprocess_runs SET next_sequence = $2, counts = $3::jsonb,"
                      " updated_at = now() WHERE id = $1",
                      {b.run_id, std::to_string(b.next_sequence), b.counts_json});
    if (!r.ok()) return r.status();
  }
  auto r = db_.exec(kType, "COMMIT");
  return r.ok() ? Status() : r.status();
}

Status PgReprocessStore::start_run(const Run& run) {
  auto r = db_.exec(kType,
                    "INSERT INTO reprocess_runs (id, selection, next_sequence, last_sequence,"
                    " counts) VALUES ($1, $2::jsonb, $3, $4, $5::jsonb)",
                    {run.id, run.selection, std::to_string(run.next_sequence),
                     std::to_string(run.last_sequence), run.counts});
  return r.ok() ? Status() : r.status();
}

Result<std::optional<PgReprocessStore::Run>> PgReprocessStore::unfinished_run(
    const std::string& selection) {
  auto r = db_.exec(kType,
                    "SELECT id, selection::text, next_sequence, last_sequence, counts::text"
                    " FROM reprocess_runs WHERE finished_at IS NULL AND selection = $1::jsonb"
                    " ORDER BY started_at DESC LIMIT 1",
                    {selection});
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return std::optional<Run>();
  return std::optional<Run>(Run{PQgetvalue(r->get(), 0, 0), PQgetvalue(r->get(), 0, 1),
                                std::strtoull(PQgetvalue(r->get(), 0, 2), nullptr, 10),
                                std::strtoull(PQgetvalue(r->get(), 0, 3), nullptr, 10),
                                PQgetvalue(r->get(), 0, 4)});
}

Status PgReprocessStore::finish_run(const std::string& id, const std::string& counts_json) {
  auto r = db_.exec(kType,
                    "UPDATE reprocess_runs SET finished_at = now(), updated_at = now(),"
                    " counts = $2::jsonb WHERE id = $1",
                    {id, counts_json});
  return r.ok() ? Status() : r.status();
}

}  // namespace atw
