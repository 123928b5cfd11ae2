#pragma once
// LinkCache on Redis (SPEC D6): one MGET for a batch's misses, one pipelined round trip of
// SET ... EX for what the store returned. Redis failing never fails the caller: it answers
// misses, counts the error, and retries the connection at most once per `retry_interval`.
//
// Not thread-safe: owned by the pipeline thread.

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/secret_source.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;  // an ACL user (AUTH user password); empty: the default user
  std::string password;
  int db = 0;
};

// redis://[[user]:password@]host[:port][/db]. `rediss://` (TLS) is refused: Debian 12's hiredis
// (0.14) has no TLS, and the worker builds none by hand; the error says what to do instead
// (docs/security.md, "Redis").
Result<RedisAddress> parse_redis_url(std::string_view url);

struct RedisCacheSettings {
  std::chrono::seconds ttl{300};
  std::chrono::seconds empty_ttl{60};
  std::chrono::milliseconds timeout{500};
  std::chrono::milliseconds retry_interval{2000};
};

class RedisLinkCache final : public LinkCache {
 public:
  // `url` (REDIS_URL, or REDIS_URL_FILE read again at each connect) must parse
  // (parse_redis_url), which the configuration step has checked.
  RedisLinkCache(SecretSource url, RedisCacheSettings settings, WorkerMetrics& metrics,
                 Logger& log);

  std::vector<std::optional<LinkSet>> get_many(std::span<const DeviceKey> keys) override;
  void put_many(std::span<const DeviceKey> keys, std::span<const LinkSet> sets) override;
  void invalidate(std::span<const DeviceKey> keys) override;
  // SCANs for every link key and unlinks them (rare: an asset type changed, or by hand).
  void invalidate_all() override;

  bool connected() const { return ctx_ != nullptr; }
  // Connects now and asks the server a PING: Permanent ("cache_refused", with the server's
  // words) when the server refuses this login (WRONGPASS, NOAUTH, NOPERM); ok when it answers,
  // and when it cannot be reached (Redis down slows the worker, never stops it).
  Status check_login();

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
  // `command` with the cache key of each of `keys` as its arguments, in one round trip.
  Reply command_on_keys(std::string_view command, std::span<const DeviceKey> keys);

  bool ensure();
  // Drops the connection after `what` failed (`reply`, when there was one, says why).
  void fail(const char* what, const redisReply* reply = nullptr);

  SecretSource url_;
  RedisCacheSettings settings_;
  WorkerMetrics& metrics_;
  Logger& log_;
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::string refusal_;  // the server's answer to a refused AUTH or SELECT, from ensure()
};

}  // namespace atw
