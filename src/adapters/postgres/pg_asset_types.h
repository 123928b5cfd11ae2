#pragma once
// The asset types' schemas as asset_types holds them, for the commands that compile them
// outside the pipeline (formulas check | try).

#include <optional>
#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"
#include "common/status.h"

namespace atw {

struct AssetTypeSchema {
  std::string id;
  std::string schema_json;  // telemetry_schema as JSON text; "null" when the column is NULL
};

// Every asset type, ordered by id.
Result<std::vector<AssetTypeSchema>> read_asset_type_schemas(PgConnection& db);
// One asset type's schema; nullopt when there is no such asset type.
Result<std::optional<std::string>> read_asset_type_schema(PgConnection& db, const std::string& id);

}  // namespace atw
