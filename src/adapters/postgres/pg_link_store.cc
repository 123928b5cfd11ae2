#include "adapters/postgres/pg_link_store.h"

#include <unordered_map>

namespace atw {

namespace {
constexpr const char* kLinkQuery =
    "SELECT k.ord, ee.id, ee.target_entity_id, ee.metadata->>'port', ee.metadata->>'role',"
    " (ee.metadata->'metrics_mapping')::text, a.name, a.asset_type_id,"
    " at.telemetry_schema::text,"
    " (extract(epoch FROM ee.valid_from) * 1000000)::int8,"
    " (extract(epoch FROM ee.valid_until) * 1000000)::int8"
    " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(org, dev, ord)"
    " JOIN entity_edges ee ON ee.tenant_id = k.org AND ee.source_entity_id = k.dev"
    " JOIN assets a ON a.id = ee.target_entity_id"
    "  AND (a.tenant_id IS NULL OR a.tenant_id = ee.tenant_id)"
    " JOIN asset_types at ON at.id = a.asset_type_id"
    " WHERE ee.source_entity_type = 'Device' AND ee.target_entity_type = 'Asset'"
    "  AND ee.relationship_type = 'MONITORED_BY'"
    " ORDER BY k.ord, ee.created_at, ee.id";

std::optional<std::string> text_or_null(PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}
std::optional<Timestamp> micros_or_null(PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return Timestamp{std::strtoll(PQgetvalue(r, row, col), nullptr, 10)};
}
}  // namespace

Result<std::vector<LinkSet>> PgLinkStore::load(std::span<const DeviceKey> keys) {
  std::vector<std::string_view> orgs, devices;
  for (const auto& k : keys) {
    orgs.push_back(k.organization_id);
    devices.push_back(k.device_id);
  }
  auto r = db_.exec("link_query_failed", kLinkQuery, {pg_text_array(orgs), pg_text_array(devices)});
  if (!r.ok()) return r.status();
  std::vector<LinkSet> sets(keys.size());
  PGresult* res = r->get();
  for (int row = 0; row < PQntuples(res); ++row) {
    const size_t ord = std::strtoull(PQgetvalue(res, row, 0), nullptr, 10) - 1;
    DeviceLink link;
    link.link_id = PQgetvalue(res, row, 1);
    link.asset_id = PQgetvalue(res, row, 2);
    link.port = text_or_null(res, row, 3);
    link.role = text_or_null(res, row, 4);
    if (!PQgetisnull(res, row, 5))
      link.metrics_mapping = parse_metrics_mapping(PQgetvalue(res, row, 5));
    link.asset_name = PQgetvalue(res, row, 6);
    link.asset_type_id = PQgetvalue(res, row, 7);
    link.telemetry_schema =
        PQgetisnull(res, row, 8) ? "null" : minify_schema_text(PQgetvalue(res, row, 8));
    link.valid_from = micros_or_null(res, row, 9);
    link.valid_until = micros_or_null(res, row, 10);
    sets[ord].links.push_back(std::move(link));
  }
  return sets;
}

}  // namespace atw
