#include "support/private_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "adapters/nats/nats_connection.h"
#include "common/log.h"
#include "support/exec_image.h"

#ifndef ATW_WORKER_BINARY
#error "ATW_WORKER_BINARY must name the asset-worker binary under test"
#endif

namespace atw::testing {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

struct PostgresUser {
  uid_t uid;
  gid_t gid;
};

std::optional<PostgresUser> postgres_user() {
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr) return std::nullopt;
  return PostgresUser{pw->pw_uid, pw->pw_gid};
}

// Forks and execs `argv` with stdout and stderr appended to `log`. In the child: the user is
// switched first (a change of credentials clears the death signal), then the death signal is
// set, then the parent is checked again in case it died in between.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log,
            std::optional<PostgresUser> user) {
  const ExecImage image(argv);  // the child may not allocate: see exec_image.h
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  const int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    close(null_fd);
  }
  // Its own process group: a terminal's Ctrl-C reaches the test, which then stops its servers.
  setpgid(0, 0);
  if (user) {
    if (setgroups(0, nullptr) != 0 || setgid(user->gid) != 0 || setuid(user->uid) != 0) _exit(126);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125);
  image.exec();
  _exit(127);
}

// Runs a command to its end; returns its exit code (-1 if it could not be waited for).
int run(const std::vector<std::string>& argv, const std::string& log,
        std::optional<PostgresUser> user = std::nullopt) {
  const pid_t pid = spawn(argv, log, user);
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool wait_until(milliseconds timeout, const std::function<bool()>& ready) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return ready();
}

}  // namespace

class PrivateServers::Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (running()) {
      kill(pid_, SIGKILL);
      reap(seconds(10));
    }
  }
  bool running() const {
    if (exited_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) exited_ = true;
    return !exited_;
  }
  void signal(int sig) const {
    if (running()) kill(pid_, sig);
  }
  // Waits for the exit; SIGKILL when it takes longer than `timeout`.
  void reap(milliseconds timeout) const {
    if (!wait_until(timeout, [this] { return !running(); })) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      exited_ = true;
    }
  }

 private:
  pid_t pid_;
  mutable bool exited_ = false;
};

PrivateServers::PrivateServers(PrivateServerOptions options) : options_(std::move(options)) {
  char tmpl[] = "/tmp/atw-faults-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  // The postgres user must reach its data folder inside.
  chmod(dir_.c_str(), 0755);
  nats_port_ = free_loopback_port();
  pg_port_ = free_loopback_port();
  redis_port_ = free_loopback_port();

  const auto user = postgres_user();
  if (!user) {
    error_ = "no postgres user (is postgresql-15 installed?)";
    return;
  }
  const std::string pg_dir = dir_ + "/pg";
  std::filesystem::create_directories(pg_dir);
  chown(pg_dir.c_str(), user->uid, user->gid);
  chmod(pg_dir.c_str(), 0700);
  const int initdb = run({std::string(kPgBin) + "/initdb", "-D", pg_dir, "-U", "postgres", "-A",
                          "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
                         dir_ + "/initdb.log", user);
  if (initdb != 0) {
    error_ = fmt::format("initdb failed ({}); see {}/initdb.log", initdb, dir_);
    return;
  }
  if (!options_.pg_hba.empty()) {
    std::ofstream(pg_dir + "/pg_hba.conf") << "host all postgres 127.0.0.1/32 trust\n"
                                           << options_.pg_hba << "\n";
  }
  if (!start_nats() || !start_postgres() || !start_redis()) {
    error_ = "a server did not start; logs in " + dir_;
    return;
  }
  if (!init_database()) error_ = "could not create and migrate the database; logs in " + dir_;
}

bool PrivateServers::restart_nats(const std::string& config) {
  stop_nats();
  options_.nats_config = config;
  return start_nats();
}

PrivateServers::~PrivateServers() {
  stop_child(redis_, SIGTERM, seconds(10));
  stop_child(nats_, SIGTERM, seconds(10));
  stop_child(postgres_, SIGINT, seconds(30));
  if (!keep_ && ok() && !dir_.empty()) {  // a server that did not start: its log stays
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

ServerUrls PrivateServers::urls() const {
  return ServerUrls{
      fmt::format("{}://127.0.0.1:{}", options_.nats_scheme, nats_port_),
      fmt::format("postgresql://postgres@127.0.0.1:{}/asset_telemetry?sslmode=disable", pg_port_),
      fmt::format("redis://127.0.0.1:{}/0", redis_port_),
      options_.nats_client,
  };
}

bool PrivateServers::start_child(std::unique_ptr<Child>& slot, const std::string& what,
                                 std::vector<std::string> argv, const std::string& log,
                                 bool as_postgres) {
  if (slot && slot->running()) return true;
  const pid_t pid = spawn(argv, log, as_postgres ? postgres_user() : std::nullopt);
  if (pid < 0) {
    ADD_FAILURE() << "cannot fork " << what;
    return false;
  }
  slot = std::make_unique<Child>(pid);
  return true;
}

void PrivateServers::stop_child(std::unique_ptr<Child>& slot, int signal,
                                std::chrono::milliseconds timeout) {
  if (!slot) return;
  slot->signal(signal);
  slot->reap(timeout);
  slot.reset();
}

bool PrivateServers::start_nats(milliseconds timeout) {
  // Production's limits (max_payload 1 MiB): a message the worker may see here is one it may
  // see there, and so is a dead-letter record that does not fit.
  const std::string store = dir_ + "/nats";
  std::filesystem::create_directories(store);
  std::vector<std::string> argv = {
      "nats-server", "-a", "127.0.0.1", "-p", std::to_string(nats_port_), "-js", "-sd", store};
  if (!options_.nats_config.empty()) {
    std::ofstream(dir_ + "/nats.conf") << options_.nats_config << "\n";
    argv.insert(argv.end(), {"-c", dir_ + "/nats.conf"});
  }
  if (!start_child(nats_, "nats-server", std::move(argv), dir_ + "/nats.log", false)) {
    return false;
  }
  if (wait_until(timeout, [this] { return !nats_->running() || nats_answers(); }) &&
      nats_->running()) {
    return true;
  }
  ADD_FAILURE() << "nats-server did not answer on port " << nats_port_ << "; see " << dir_
                << "/nats.log";
  return false;
}

void PrivateServers::stop_nats() {
  stop_child(nats_, SIGTERM, seconds(20));
}
void PrivateServers::kill_nats() {
  stop_child(nats_, SIGKILL, seconds(10));
}

bool PrivateServers::start_postgres(milliseconds timeout) {
  // Durable as in production and as scripts/servers.sh runs it: fsync and synchronous_commit
  // stay on; memory is smaller, since this cluster holds a few thousand rows.
  std::vector<std::string> argv = {std::string(kPgBin) + "/postgres",
                                   "-D",
                                   dir_ + "/pg",
                                   "-p",
                                   std::to_string(pg_port_),
                                   "-c",
                                   "listen_addresses=127.0.0.1",
                                   "-c",
                                   "unix_socket_directories=",
                                   "-c",
                                   "max_connections=100",
                                   "-c",
                                   "shared_buffers=64MB",
                                   "-c",
                                   "fsync=on",
                                   "-c",
                                   "synchronous_commit=on",
                                   "-c",
                                   "log_line_prefix=%m [%p] "};
  for (const auto& setting : options_.postgres_settings) argv.insert(argv.end(), {"-c", setting});
  if (!start_child(postgres_, "postgres", std::move(argv), dir_ + "/postgres.log", true)) {
    return false;
  }
  if (wait_until(timeout, [this] { return !postgres_->running() || postgres_answers(); }) &&
      postgres_->running()) {
    return true;
  }
  ADD_FAILURE() << "PostgreSQL did not answer on port " << pg_port_ << "; see " << dir_
                << "/postgres.log";
  return false;
}

void PrivateServers::stop_postgres() {
  stop_child(postgres_, SIGINT, seconds(60));
}
void PrivateServers::crash_postgres() {
  stop_child(postgres_, SIGQUIT, seconds(30));
}

bool PrivateServers::start_redis(milliseconds timeout) {
  const std::string data = dir_ + "/redis";
  std::filesystem::create_directories(data);
  std::vector<std::string> argv = {
      "redis-server", "--bind",      "127.0.0.1", "--port", std::to_string(redis_port_),
      "--dir",        data,          "--save",    "",       "--appendonly",
      "no",           "--daemonize", "no"};
  argv.insert(argv.end(), options_.redis_args.begin(), options_.redis_args.end());
  if (!start_child(redis_, "redis-server", std::move(argv), dir_ + "/redis.log", false)) {
    return false;
  }
  if (wait_until(timeout, [this] { return !redis_->running() || redis_answers(); }) &&
      redis_->running()) {
    return true;
  }
  ADD_FAILURE() << "redis-server did not answer on port " << redis_port_ << "; see " << dir_
                << "/redis.log";
  return false;
}

void PrivateServers::stop_redis() {
  stop_child(redis_, SIGTERM, seconds(10));
}
void PrivateServers::kill_redis() {
  stop_child(redis_, SIGKILL, seconds(10));
}

bool PrivateServers::nats_running() const {
  return nats_ && nats_->running();
}
bool PrivateServers::postgres_running() const {
  return postgres_ && postgres_->running();
}
bool PrivateServers::redis_running() const {
  return redis_ && redis_->running();
}

bool PrivateServers::ensure_running() {
  bool ok = true;
  if (!nats_running()) ok = start_nats() && ok;
  if (!postgres_running()) ok = start_postgres() && ok;
  if (!redis_running()) ok = start_redis() && ok;
  return ok;
}

bool PrivateServers::nats_answers() {
  // JetStream answers its API only once it has recovered its store.
  Logger quiet(LogLevel::kError);
  NatsSettings settings;
  settings.servers = {urls().nats};
  settings.security = options_.nats_client;
  settings.request_timeout = milliseconds(1000);
  auto nc = NatsConnection::connect(settings, quiet, milliseconds(500));
  if (!nc.ok()) return false;
  return (*nc)->api("$JS.API.INFO", "").ok();
}

bool PrivateServers::postgres_answers() {
  const std::string conninfo = fmt::format(
      "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=2", pg_port_);
  return PQping(conninfo.c_str()) == PQPING_OK;
}

bool PrivateServers::redis_answers() {
  timeval tv{1, 0};
  redisContext* ctx = redisConnectWithTimeout("127.0.0.1", redis_port_, tv);
  bool ok = false;
  if (ctx != nullptr && ctx->err == 0) {
    if (!options_.redis_login.empty()) {
      const size_t space = options_.redis_login.find(' ');
      const std::string user = options_.redis_login.substr(0, space);
      const std::string password = options_.redis_login.substr(space + 1);
      auto* auth =
          static_cast<redisReply*>(redisCommand(ctx, "AUTH %s %s", user.c_str(), password.c_str()));
      if (auth) freeReplyObject(auth);
    }
    auto* reply = static_cast<redisReply*>(redisCommand(ctx, "PING"));
    ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
    if (reply) freeReplyObject(reply);
  }
  if (ctx) redisFree(ctx);
  return ok;
}

bool PrivateServers::init_database() {
  const std::string admin =
      fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", pg_port_);
  PGconn* conn = PQconnectdb(admin.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (ok) {
    PGresult* r = PQexec(conn, "CREATE DATABASE asset_telemetry");
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) ADD_FAILURE() << "CREATE DATABASE: " << PQerrorMessage(conn);
    PQclear(r);
  }
  PQfinish(conn);
  if (!ok) return false;
  if (!options_.migrate) return true;
  WorkerProcess migrate({{"DATABASE_URL", urls().database}, {"NATS_URL", urls().nats}},
                        {"migrate"});
  const int code = migrate.stop(0, seconds(60));
  if (code != 0)
    ADD_FAILURE() << "asset-worker migrate exited " << code << "; see " << migrate.log_path();
  return code == 0;
}

}  // namespace atw::testing
