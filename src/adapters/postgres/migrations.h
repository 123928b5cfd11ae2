#pragma once
// Schema migrations (SPEC D15): the numbered files of migrations/, compiled into the binary,
// applied in order, each once, in its own transaction, under an advisory lock so that replicas
// starting together do not race. Never drops data; safe to run again.
//
// A file whose first line is `-- atw:no-transaction` runs statement by statement outside a
// transaction (for CREATE INDEX CONCURRENTLY); its statements must be safe to run again, since a
// failure keeps the ones that ran.

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

// The statements of an SQL script, split at the semicolons outside comments, string literals
// and dollar-quoted bodies; comments are left out, empty statements dropped.
std::vector<std::string> split_sql_statements(std::string_view sql);

}  // namespace atw
