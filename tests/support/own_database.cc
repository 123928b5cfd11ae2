#include "support/own_database.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "adapters/postgres/migrations.h"

namespace atw::testing {

std::string with_database(const std::string& url, const std::string& database) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    ADD_FAILURE() << "ATW_TEST_DATABASE_URL must be a URI (postgresql://...): " << url;
    return url;
  }
  const size_t path = url.find('/', scheme + 3);
  const size_t query = url.find('?', scheme + 3);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  return url.substr(0, std::min(path, query)) + "/" + database + rest;
}

OwnDatabase::OwnDatabase(const std::string& prefix) : admin_(server_urls().database) {
  std::random_device rd;
  name_ = fmt::format("{}_{:08x}", prefix, rd());
  admin_.exec("CREATE DATABASE " + name_);
  url_ = with_database(server_urls().database, name_);
  sql_ = std::make_unique<Sql>(url_);
}

OwnDatabase::~OwnDatabase() {
  sql_.reset();
  admin_.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  for (const auto& role : roles_) admin_.exec("DROP ROLE IF EXISTS " + role);
}

std::string OwnDatabase::make_role(const std::string& suffix, const std::string& password) {
  roles_.push_back(name_ + "_" + suffix);
  admin_.exec("CREATE ROLE " + roles_.back() +
              (password.empty() ? "" : " LOGIN PASSWORD '" + password + "'"));
  return roles_.back();
}

std::string OwnDatabase::url_as(const std::string& role, const std::string& password) const {
  // postgresql://user@host:port/db -> postgresql://role:password@host:port/db
  const size_t scheme = url_.find("://") + 3;
  const size_t at = url_.find('@', scheme);
  const size_t host = at == std::string::npos ? scheme : at + 1;
  return url_.substr(0, scheme) + role + ":" + password + "@" + url_.substr(host);
}

void OwnDatabase::migrate_all() {
  PgConnection db(url_);
  auto applied = migrate(db);
  ASSERT_TRUE(applied.ok()) << applied.status().to_string();
}

void OwnDatabase::create_owner_tables() {
  sql_->exec(
      "CREATE TABLE asset_types (id text PRIMARY KEY, name text, telemetry_schema jsonb);"
      "CREATE TABLE assets (id text PRIMARY KEY, name text,"
      " asset_type_id text REFERENCES asset_types (id), health_score double precision,"
      " health_score_updated_at timestamptz, health_score_computed_by text,"
      " updated_at timestamptz);"
      "CREATE TABLE entity_edges (id text PRIMARY KEY, source_entity_id text NOT NULL,"
      " source_entity_type text NOT NULL, target_entity_id text NOT NULL,"
      " target_entity_type text NOT NULL, relationship_type text NOT NULL,"
      " tenant_id text NOT NULL, metadata jsonb, valid_from timestamptz,"
      " valid_until timestamptz);"
      "CREATE TABLE telemetry_history (entity_id text, entity_type text, metric_key text,"
      " value double precision, \"timestamp\" timestamptz, received_at timestamptz,"
      " source_device_id text, quality text);"
      "CREATE INDEX telemetry_history_entity_time_idx ON telemetry_history"
      " (entity_id, \"timestamp\")");
}

}  // namespace atw::testing
