#pragma once
// Schema migrations (SPEC D15): the numbered files of migrations/, compiled into the binary,
// applied in order, each once, in its own transaction, under an advisory lock so that replicas
// starting together do not race. Never drops data; safe to run again.

#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"

namespace atw {

struct Migration {
  const char* name;  // file name, e.g. "001_seed_tables.sql"
  const char* sql;
};

const std::vector<Migration>& embedded_migrations();

// Applies what is missing; returns the names applied this time.
Result<std::vector<std::string>> migrate(PgConnection& db);

}  // namespace atw
