#include <cstdio>

#include "adapters/postgres/pg_link_listener.h"
#include "adapters/redis/redis_link_cache.h"
#include "app/commands.h"
#include "pipeline/worker_metrics.h"

namespace atw {

int run_links_invalidate(const Config& c, const std::string& organization,
                         const std::string& device, bool all) {
  Logger log(c.level(), stderr, "links");
  // Redis first, so that it is clean even when no worker runs; then the notice, which every
  // worker applies to its own cache and to Redis again (after any write of its own in flight).
  if (!c.redis_url.empty()) {
    WorkerMetrics metrics;
    RedisLinkCache redis(c.redis(), RedisCacheSettings{}, metrics, log);
    if (all) {
      redis.invalidate_all();
    } else {
      const DeviceKey key{organization, device};
      redis.invalidate(std::span(&key, 1));
    }
    if (!redis.connected()) {  // a failed command drops the connection
      std::fprintf(stderr, "asset-worker: Redis did not purge the links\n");
      return 1;
    }
  }
  PgConnection db(c.database());
  const Status notified = notify_link_change(
      db, all ? std::nullopt : std::optional<DeviceKey>(DeviceKey{organization, device}));
  if (!notified.ok()) {
    print_error("cannot notify the workers: " + notified.message());
    return 1;
  }
  std::printf("invalidated %s\n",
              all ? "every device's links" : (organization + "/" + device + "'s links").c_str());
  return 0;
}

}  // namespace atw
