#pragma once
// LinkStore on PostgreSQL: the seed's link query for every device of a batch in one statement.
// Validity windows are returned, not filtered: they are decided per message (SPEC D5).
//
// entity_edges, assets and asset_types belong to other services, so the query reads only the
// columns the seed names, each as text, whatever type its owner gave it; the worker reads the
// text itself (metadata's JSON, the bounds' timestamps). A link whose text cannot be read is left
// out, logged with its id and counted (error type link_unreadable): it never fails the batch
// (SPEC D8). assets.tenant_id is not the seed's: where the table has it (the worker's own
// migration makes it so for a table it creates), a link to an asset of another tenant is left
// out too.

#include "adapters/postgres/pg_connection.h"
#include "common/log.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

class PgLinkStore final : public LinkStore {
 public:
  PgLinkStore(PgConnection& db, WorkerMetrics& metrics, Logger& log)
      : db_(db), metrics_(metrics), log_(log) {}
  Result<std::vector<LinkSet>> load(std::span<const DeviceKey> keys) override;

 private:
  // Whether assets has a tenant_id column: asked again on a new connection and after a failed
  // query (the schema may have changed, as when `migrate` runs after the worker started).
  Result<bool> assets_have_tenant();

  PgConnection& db_;
  WorkerMetrics& metrics_;
  Logger& log_;
  std::optional<bool> assets_have_tenant_;
  uint64_t asked_on_generation_ = 0;
};

}  // namespace atw
