#pragma once
// nats-server (JetStream, file store), PostgreSQL and Redis of the calling test's own, on free
// loopback ports with their data under one temporary folder, for tests that stop, kill and
// restart servers: the shared servers of scripts/servers.sh serve other tests at the same time
// and must never be touched.
//
// Every server runs as a child of the test process and is killed with it (PR_SET_PDEATHSIG), so
// a test that crashes or times out leaves no server behind. Data survives a server's restart
// (the JetStream store, the PostgreSQL cluster; Redis keeps nothing, like the shared one).
//
// Not thread-safe, and must be used from the thread that created it: the kernel ties a child's
// death signal to the thread that forked it.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/servers.h"

namespace atw::testing {

// How the servers are secured, for tests of a production-like deployment (docs/security.md);
// the defaults are the fault suite's open loopback servers.
struct PrivateServerOptions {
  // nats-server's configuration file (TLS, accounts, users), with absolute paths in it.
  std::string nats_config;
  std::string nats_scheme = "nats";  // "tls" for TLS
  NatsSecurity nats_client;          // how the test logs in (its probes, its Scenario)
  // PostgreSQL: `-c` settings (ssl = on, ...) and, when not empty, pg_hba.conf. The test itself
  // always logs in as postgres without a password over a plain connection (the first line of
  // the pg_hba.conf written here says so).
  std::vector<std::string> postgres_settings;
  std::string pg_hba;
  // Redis: more arguments (--aclfile ...), and the login of the test's probes ("user password").
  std::vector<std::string> redis_args;
  std::string redis_login;
  bool migrate = true;  // `asset-worker migrate` as postgres once the database is made
};

class PrivateServers {
 public:
  // Creates the folder, initdb's a cluster, starts the three servers, creates the
  // asset_telemetry database and runs `asset-worker migrate` on it. Check ok() (and error()).
  explicit PrivateServers(PrivateServerOptions options = {});
  // Stops every server; removes the folder unless keep_files() was called.
  ~PrivateServers();
  PrivateServers(const PrivateServers&) = delete;
  PrivateServers& operator=(const PrivateServers&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  // The servers as the test reaches them (NATS with options.nats_client's login), the database
  // as postgres.
  ServerUrls urls() const;
  int pg_port() const { return pg_port_; }
  int redis_port() const { return redis_port_; }
  int nats_port() const { return nats_port_; }
  // Stops nats-server (SIGTERM) and starts it again with `config`; the store is kept. (Not a
  // reload: nats-server 2.9, reloading a change of an account's users, left that account's
  // JetStream API unanswered here.)
  bool restart_nats(const std::string& config);
  // Leaves the folder (logs, stores) in place for a post-mortem.
  void keep_files() { keep_ = true; }

  // Each start waits until the server answers (JetStream's API, a PostgreSQL login, a Redis
  // PING) and returns false (with a test failure) if it does not within `timeout`. A stop waits
  // for the process to end.
  bool start_nats(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void stop_nats();  // SIGTERM
  void kill_nats();  // SIGKILL
  bool start_postgres(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  void stop_postgres();   // fast shutdown (SIGINT): clients are disconnected, work is kept
  void crash_postgres();  // immediate shutdown (SIGQUIT): crash recovery at the next start
  bool start_redis(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void stop_redis();  // SIGTERM
  void kill_redis();  // SIGKILL

  bool nats_running() const;
  bool postgres_running() const;
  bool redis_running() const;
  // Starts whichever server is not running (a test that failed mid-outage leaves one down).
  bool ensure_running();

  // A server process (defined in the .cc).
  class Child;

 private:
  bool start_child(std::unique_ptr<Child>& slot, const std::string& what,
                   std::vector<std::string> argv, const std::string& log, bool as_postgres);
  void stop_child(std::unique_ptr<Child>& slot, int signal, std::chrono::milliseconds timeout);
  bool nats_answers();
  bool postgres_answers();
  bool redis_answers();
  bool init_database();

  PrivateServerOptions options_;
  std::string dir_;
  std::string error_;
  bool keep_ = false;
  int nats_port_ = 0;
  int pg_port_ = 0;
  int redis_port_ = 0;
  std::unique_ptr<Child> nats_, postgres_, redis_;
};

}  // namespace atw::testing
