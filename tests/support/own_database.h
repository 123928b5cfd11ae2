#pragma once
// A database of a test's own on the PostgreSQL server of ATW_TEST_DATABASE_URL, created empty and
// dropped (with the roles the test made) at its end: for tests that change the schema, adopt
// tables, or take rights away, without touching any other test's tables.

#include <memory>
#include <string>
#include <vector>

#include "support/servers.h"

namespace atw::testing {

// The URI `url` with its database name replaced (ADD_FAILURE when it is not a URI).
std::string with_database(const std::string& url, const std::string& database);

class OwnDatabase {
 public:
  // `prefix` names it (prefix_<random>), so that a leftover says which test made it.
  explicit OwnDatabase(const std::string& prefix = "atw_test");
  ~OwnDatabase();
  OwnDatabase(const OwnDatabase&) = delete;
  OwnDatabase& operator=(const OwnDatabase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }
  Sql& sql() { return *sql_; }
  // The server's superuser session (on its default database), for roles and grants.
  Sql& admin() { return admin_; }

  // A role made for the test (dropped at the end), LOGIN with `password` when one is given;
  // `suffix` tells roles apart.
  std::string make_role(const std::string& suffix = "reader", const std::string& password = "");
  // The URI of this database as `role` with `password`.
  std::string url_as(const std::string& role, const std::string& password) const;

  // Every migration (ADD_FAILURE on an error).
  void migrate_all();
  // The design document's tables as the services that own them would make them: only the columns
  // the document uses, none of the worker's (no tenant_id on assets, no created_at on
  // entity_edges), telemetry_history not partitioned.
  void create_owner_tables();

 private:
  Sql admin_;
  std::string name_;
  std::string url_;
  std::unique_ptr<Sql> sql_;
  std::vector<std::string> roles_;
};

}  // namespace atw::testing
