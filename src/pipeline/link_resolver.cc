#include "pipeline/link_resolver.h"

#include <unordered_set>

namespace atw {

namespace {
// The tiers' names in metrics.
constexpr std::string_view kMemoryTier = "memory";
constexpr std::string_view kSharedTier = "redis";
}  // namespace

LinkResolver::LinkResolver(InProcessLinkCache& memory, LinkCache* shared, LinkStore& store,
                           const Clock& clock, WorkerMetrics& metrics)
    : memory_(memory), shared_(shared), store_(store), clock_(clock), metrics_(metrics) {
  metrics_.add_cache(kMemoryTier, 0, 0);
  if (shared_ != nullptr) metrics_.add_cache(kSharedTier, 0, 0);
}

Result<ResolvedLinks> LinkResolver::resolve(std::span<const DeviceKey> keys) {
  const Timestamp now = clock_.now();
  ResolvedLinks found;
  std::vector<DeviceKey> missing;
  std::unordered_set<DeviceKey, DeviceKeyHash> seen;
  for (const auto& key : keys) {
    if (!seen.insert(key).second) continue;
    if (auto set = memory_.get(key, now)) {
      found.emplace(key, std::move(set));
    } else {
      missing.push_back(key);
    }
  }
  metrics_.add_cache(kMemoryTier, found.size(), missing.size());
  if (missing.empty()) return found;

  if (shared_ != nullptr) {
    auto cached = shared_->get_many(missing);
    std::vector<DeviceKey> still_missing;
    for (size_t i = 0; i < missing.size(); ++i) {
      if (i < cached.size() && cached[i]) {
        auto set = std::make_shared<const LinkSet>(std::move(*cached[i]));
        memory_.put(missing[i], set, now);
        found.emplace(std::move(missing[i]), std::move(set));
      } else {
        still_missing.push_back(std::move(missing[i]));
      }
    }
    metrics_.add_cache(kSharedTier, missing.size() - still_missing.size(), still_missing.size());
    missing = std::move(still_missing);
    if (missing.empty()) return found;
  }

  auto loaded = store_.load(missing);
  if (!loaded.ok()) return loaded.status();
  metrics_.add_link_store_loads(missing.size());
  if (shared_ != nullptr) shared_->put_many(missing, *loaded);
  for (size_t i = 0; i < missing.size(); ++i) {
    auto set = std::make_shared<const LinkSet>(std::move((*loaded)[i]));
    memory_.put(missing[i], set, now);
    found.emplace(std::move(missing[i]), std::move(set));
  }
  return found;
}

void LinkResolver::invalidate(std::span<const DeviceKey> keys) {
  for (const auto& key : keys) memory_.erase(key);
  if (shared_ != nullptr) shared_->invalidate(keys);
}

}  // namespace atw
