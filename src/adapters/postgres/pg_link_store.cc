#include "adapters/postgres/pg_link_store.h"

#include <fmt/format.h>

#include "common/error_types.h"
#include "domain/link_cache_codec.h"

namespace atw {

namespace {

// The seed's link query for many devices at once; `{}` is the tenant check on assets, when the
// table has the column. Every column is read as text (see the header).
// Each device's links are looked up on their own (LATERAL; OFFSET 0 keeps the planner from
// merging the lookup into one join): a batch's devices cost the same however large the tables
// are, even before the tables have statistics. As one join, on a freshly loaded entity_edges
// the planner took it for a one-row table and hashed all of it for every batch
// (docs/benchmarks.md, the growth findings).
constexpr const char* kLinkQuery =
    "SELECT k.ord, l.* FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(org, dev, ord)"
    " CROSS JOIN LATERAL ("
    "  SELECT ee.id::text, ee.target_entity_id::text, ee.metadata::text, a.name::text,"
    "  a.asset_type_id::text, at.telemetry_schema::text, ee.valid_from::text,"
    "  ee.valid_until::text"
    "  FROM entity_edges ee"
    "  JOIN assets a ON a.id = ee.target_entity_id{}"
    "  JOIN asset_types at ON at.id = a.asset_type_id"
    "  WHERE ee.tenant_id = k.org AND ee.source_entity_id = k.dev"
    "  AND ee.source_entity_type = 'Device' AND ee.target_entity_type = 'Asset'"
    "  AND ee.relationship_type = 'MONITORED_BY' OFFSET 0) AS l"
    " ORDER BY k.ord";
constexpr const char* kTenantCheck = " AND (a.tenant_id IS NULL OR a.tenant_id = ee.tenant_id)";

std::string_view text_or_empty(PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return {};
  return {PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col))};
}

// One row into a link; a permanent link_unreadable error when some of its text cannot be read.
Status read_row(PGresult* res, int row, DeviceLink& link) {
  link.link_id = text_or_empty(res, row, 1);
  link.asset_id = text_or_empty(res, row, 2);
  link.asset_name = text_or_empty(res, row, 4);
  link.asset_type_id = text_or_empty(res, row, 5);
  link.telemetry_schema =
      PQgetisnull(res, row, 6) ? "null" : minify_schema_text(text_or_empty(res, row, 6));
  Status st = read_link_metadata(text_or_empty(res, row, 3), link);
  if (st.ok()) st = read_link_bound("valid_from", text_or_empty(res, row, 7), link.valid_from);
  if (st.ok()) st = read_link_bound("valid_until", text_or_empty(res, row, 8), link.valid_until);
  return st;
}

}  // namespace

Result<bool> PgLinkStore::assets_have_tenant() {
  if (assets_have_tenant_ && asked_on_generation_ == db_.generation() && db_.connected()) {
    return *assets_have_tenant_;
  }
  auto r = db_.exec(error_type::kLinkQueryFailed,
                    "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('assets')"
                    " AND attname = 'tenant_id' AND attnum > 0 AND NOT attisdropped");
  if (!r.ok()) return r.status();
  assets_have_tenant_ = std::string_view(PQgetvalue(r->get(), 0, 0)) != "0";
  asked_on_generation_ = db_.generation();
  return *assets_have_tenant_;
}

Result<std::vector<LinkSet>> PgLinkStore::load(std::span<const DeviceKey> keys) {
  std::vector<std::string_view> orgs, devices;
  for (const auto& k : keys) {
    orgs.push_back(k.organization_id);
    devices.push_back(k.device_id);
  }
  auto tenant = assets_have_tenant();
  if (!tenant.ok()) return tenant.status();
  const std::string sql = fmt::format(kLinkQuery, *tenant ? kTenantCheck : "");
  auto r = db_.exec(error_type::kLinkQueryFailed, sql.c_str(),
                    {pg_text_array(orgs), pg_text_array(devices)});
  if (!r.ok()) {
    assets_have_tenant_.reset();
    return r.status();
  }
  std::vector<LinkSet> sets(keys.size());
  PGresult* res = r->get();
  uint64_t unreadable = 0;
  for (int row = 0; row < PQntuples(res); ++row) {
    const size_t ord = std::strtoull(PQgetvalue(res, row, 0), nullptr, 10) - 1;
    DeviceLink link;
    if (Status st = read_row(res, row, link); !st.ok()) {
      ++unreadable;
      log_.warn("link skipped: it cannot be read", {{"linkId", link.link_id},
                                                    {"organizationId", keys[ord].organization_id},
                                                    {"deviceId", keys[ord].device_id},
                                                    {"error", st.message()}});
      continue;
    }
    sets[ord].links.push_back(std::move(link));
  }
  for (LinkSet& set : sets) order_by_link_id(set);
  if (unreadable > 0) metrics_.add_error(error_type::kLinkUnreadable, unreadable);
  return sets;
}

}  // namespace atw
