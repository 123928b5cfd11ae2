#pragma once
// LinkCache on Redis (SPEC D6): one MGET for a batch's misses, one pipelined round trip of
// SET ... EX for what the store returned. Redis failing never fails the caller: it answers
// misses, counts the error, and retries the connection at most once per `retry_interval`.
//
// Not thread-safe: owned by the pipeline thread.

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/log.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
};

// redis://[[user]:password@]host[:port][/db]
Result<RedisAddress> parse_redis_url(std::string_view url);

struct RedisCacheSettings {
  std::chrono::seconds ttl{300};
  std::chrono::seconds empty_ttl{60};
  std::chrono::milliseconds timeout{500};
  std::chrono::milliseconds retry_interval{2000};
};

class RedisLinkCache final : public LinkCache {
 public:
  RedisLinkCache(RedisAddress address, RedisCacheSettings settings, WorkerMetrics& metrics,
                 Logger& log);

  std::vector<std::optional<LinkSet>> get_many(std::span<const DeviceKey> keys) override;
  void put_many(std::span<const DeviceKey> keys, std::span<const LinkSet> sets) override;
  void invalidate(std::span<const DeviceKey> keys) override;
  // SCANs for every link key and unlinks them (rare: an asset type changed, or by hand).
  void invalidate_all() override;

  bool connected() const { return ctx_ != nullptr; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

  bool ensure();
  void fail(const char* what);

  RedisAddress address_;
  RedisCacheSettings settings_;
  WorkerMetrics& metrics_;
  Logger& log_;
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace atw
