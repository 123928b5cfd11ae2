#include "adapters/postgres/pg_asset_types.h"

#include "common/error_types.h"

namespace atw {

Result<std::vector<AssetTypeSchema>> read_asset_type_schemas(PgConnection& db) {
  auto rows = db.exec(error_type::kDbUnavailable,
                      "SELECT id, coalesce(telemetry_schema::text, 'null') FROM asset_types"
                      " ORDER BY id");
  if (!rows.ok()) return rows.status();
  std::vector<AssetTypeSchema> out;
  out.reserve(static_cast<size_t>(PQntuples(rows->get())));
  for (int row = 0; row < PQntuples(rows->get()); ++row) {
    out.push_back({PQgetvalue(rows->get(), row, 0), PQgetvalue(rows->get(), row, 1)});
  }
  return out;
}

Result<std::optional<std::string>> read_asset_type_schema(PgConnection& db, const std::string& id) {
  auto rows = db.exec(
      error_type::kDbUnavailable,
      "SELECT coalesce(telemetry_schema::text, 'null') FROM asset_types WHERE id = $1", {id});
  if (!rows.ok()) return rows.status();
  if (PQntuples(rows->get()) == 0) return std::optional<std::string>();
  return std::optional<std::string>(PQgetvalue(rows->get(), 0, 0));
}

}  // namespace atw
