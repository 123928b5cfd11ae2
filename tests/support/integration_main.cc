// The integration tests' main. Before any test runs, it checks that the three servers of the
// ATW_TEST_* variables are set and answer; if one is not, it fails once, with what is missing,
// and no test runs. Without it every test would fail on its own, some in ways that hide the
// cause (a scenario without a NATS connection crashed the first test that published).

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>

#include "adapters/nats/nats_connection.h"
#include "adapters/postgres/pg_connection.h"
#include "adapters/redis/redis_link_cache.h"
#include "common/log.h"
#include "support/servers.h"

namespace atw::testing {
namespace {

// Why the Redis server at `url` cannot be used, or "" if it answers PING.
std::string redis_problem(const std::string& url) {
  auto address = parse_redis_url(url);
  if (!address.ok()) return address.status().to_string();
  const timeval timeout{5, 0};
  std::unique_ptr<redisContext, decltype(&redisFree)> ctx(
      redisConnectWithTimeout(address->host.c_str(), address->port, timeout), &redisFree);
  if (!ctx) return "cannot allocate a Redis context";
  if (ctx->err) return ctx->errstr;
  std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(
      static_cast<redisReply*>(redisCommand(ctx.get(), "PING")), &freeReplyObject);
  if (!reply) return ctx->errstr;
  return {};
}

class ServersAnswer : public ::testing::Environment {
 public:
  void SetUp() override {
    const ServerUrls urls = server_urls();
    if (urls.nats.empty() || urls.database.empty() || urls.redis.empty()) {
      GTEST_FAIL() << "no test runs without the servers";
    }
    PgConnection db(urls.database);
    if (auto answer = db.exec("check", "SELECT 1"); !answer.ok()) {
      GTEST_FAIL() << "PostgreSQL does not answer at ATW_TEST_DATABASE_URL=" << urls.database
                   << ": " << answer.status().to_string();
    }
    Logger log(LogLevel::kError);
    NatsSettings settings;
    settings.servers = split_servers(urls.nats);
    auto nats = NatsConnection::connect(settings, log, std::chrono::seconds(5));
    if (!nats.ok()) {
      GTEST_FAIL() << "nats-server does not answer at ATW_TEST_NATS_URL=" << urls.nats << ": "
                   << nats.status().to_string();
    }
    if (const std::string problem = redis_problem(urls.redis); !problem.empty()) {
      GTEST_FAIL() << "Redis does not answer at ATW_TEST_REDIS_URL=" << urls.redis << ": "
                   << problem;
    }
  }
};

}  // namespace
}  // namespace atw::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Owned and deleted by googletest.
  ::testing::AddGlobalTestEnvironment(new atw::testing::ServersAnswer);
  return RUN_ALL_TESTS();
}
