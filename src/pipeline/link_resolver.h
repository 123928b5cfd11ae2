#pragma once
// Finds the links of many devices at once (seed step 3, SPEC D6): the in-process cache, then one
// call to the shared cache (Redis) for its misses, then one query to the store (PostgreSQL) for
// what is still missing; what the store returns is written back to both caches.

#include <chrono>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "pipeline/in_process_link_cache.h"
#include "pipeline/ports.h"
#include "pipeline/worker_metrics.h"

namespace atw {

using ResolvedLinks = std::unordered_map<DeviceKey, LinkSetPtr, DeviceKeyHash>;

class LinkResolver {
 public:
  // `shared` may be null: the in-process cache then serves alone (no REDIS_URL).
  // Exports the lookup counters of each tier it has, at 0 (SPEC D16).
  LinkResolver(InProcessLinkCache& memory, LinkCache* shared, LinkStore& store, const Clock& clock,
               WorkerMetrics& metrics);

  // Links for every key (duplicates allowed). Fails only when the store fails.
  Result<ResolvedLinks> resolve(std::span<const DeviceKey> keys);

  // Drops keys from both caches (a link changed). Called from the pipeline thread.
  void invalidate(std::span<const DeviceKey> keys);
  // Drops the in-process cache whole (notices may have been missed).
  void forget_all() { memory_.clear(); }
  // Drops both caches whole (something every link carries changed, e.g. an asset type).
  void invalidate_all() {
    memory_.clear();
    if (shared_ != nullptr) shared_->invalidate_all();
  }

 private:
  InProcessLinkCache& memory_;
  LinkCache* shared_;
  LinkStore& store_;
  const Clock& clock_;
  WorkerMetrics& metrics_;
};

}  // namespace atw
