#pragma once
// LinkStore on PostgreSQL: the seed's link query for every device of a batch in one statement.
// Validity windows are returned, not filtered: they are decided per message (SPEC D5).

#include "adapters/postgres/pg_connection.h"
#include "pipeline/ports.h"

namespace atw {

class PgLinkStore final : public LinkStore {
 public:
  explicit PgLinkStore(PgConnection& db) : db_(db) {}
  Result<std::vector<LinkSet>> load(std::span<const DeviceKey> keys) override;

 private:
  PgConnection& db_;
};

}  // namespace atw
