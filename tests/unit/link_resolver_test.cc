#include "pipeline/link_resolver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "pipeline/link_change_inbox.h"
#include "support/fakes.h"

namespace atw {
namespace {

using std::chrono::seconds;

LinkSet pump_links(const std::string& asset_id) {
  DeviceLink l;
  l.link_id = "link-" + asset_id;
  l.asset_id = asset_id;
  l.asset_name = asset_id;
  l.asset_type_id = "type-pump";
  l.telemetry_schema = "null";
  l.metrics_mapping = {{"device.temperature", "asset.motor_temperature"}};
  return LinkSet{{l}};
}

const DeviceKey kDevA{"org-1", "device-a"};
const DeviceKey kDevB{"org-1", "device-b"};
const DeviceKey kDevC{"org-1", "device-c"};
// Same device id, another tenant: must never share links with kDevA (SPEC D6).
const DeviceKey kDevAOtherOrg{"org-2", "device-a"};

class LinkResolverTest : public ::testing::Test {
 protected:
  LinkResolverTest() {
    store.sets[kDevA] = pump_links("asset-a");
    store.sets[kDevB] = pump_links("asset-b");
    store.sets[kDevAOtherOrg] = pump_links("asset-other-tenant");
  }

  Result<ResolvedLinks> resolve(std::vector<DeviceKey> keys) { return resolver.resolve(keys); }

  FakeClock clock;
  FakeLinkStore store;
  FakeLinkCache cache;
  WorkerMetrics metrics;
  InProcessLinkCache memory{100, seconds(300), seconds(30)};
  LinkResolver resolver{memory, &cache, store, clock, metrics};
};

// SPEC D16: each tier it has is a series from the start, at 0; no shared tier, no series.
TEST_F(LinkResolverTest, EveryTierItHasIsExportedFromTheStart) {
  const auto s = metrics.snapshot();
  ASSERT_TRUE(s.cache.contains("memory"));
  ASSERT_TRUE(s.cache.contains("redis"));
  EXPECT_EQ(s.cache.find("redis")->second.hits + s.cache.find("redis")->second.misses, 0u);
  WorkerMetrics alone;
  LinkResolver without_redis{memory, nullptr, store, clock, alone};
  EXPECT_TRUE(alone.snapshot().cache.contains("memory"));
  EXPECT_FALSE(alone.snapshot().cache.contains("redis"));
}

TEST_F(LinkResolverTest, FullMissLoadsAllMissingKeysInOneCallAndFillsBothCaches) {
  auto r = resolve({kDevA, kDevB, kDevC});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(*r->at(kDevA), pump_links("asset-a"));
  EXPECT_EQ(*r->at(kDevB), pump_links("asset-b"));
  EXPECT_TRUE(r->at(kDevC)->links.empty());  // unlinked device: an empty set, not an error

  EXPECT_EQ(store.load_calls, 1);
  EXPECT_EQ(store.loaded_keys[0], (std::vector<DeviceKey>{kDevA, kDevB, kDevC}));
  EXPECT_EQ(cache.get_many_calls, 1);
  EXPECT_EQ(cache.put_many_calls, 1);
  EXPECT_EQ(cache.sets.size(), 3u);
  EXPECT_EQ(cache.sets.at(kDevB), pump_links("asset-b"));
  EXPECT_TRUE(cache.sets.at(kDevC).links.empty());  // empty results are cached too
  EXPECT_EQ(memory.size(), 3u);
  EXPECT_EQ(metrics.snapshot().link_store_loads, 3u);
}

TEST_F(LinkResolverTest, MemoryHitAsksNoOtherTier) {
  ASSERT_TRUE(resolve({kDevA}).ok());
  const int gets = cache.get_many_calls;
  auto r = resolve({kDevA});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->at(kDevA), pump_links("asset-a"));
  EXPECT_EQ(store.load_calls, 1);
  EXPECT_EQ(cache.get_many_calls, gets);
  const auto snap = metrics.snapshot();
  EXPECT_EQ(snap.cache.at("memory").hits, 1u);
  EXPECT_EQ(snap.cache.at("memory").misses, 1u);
}

TEST_F(LinkResolverTest, SharedCacheHitIsKeptInMemoryAndSkipsTheStore) {
  cache.sets[kDevA] = pump_links("asset-from-redis");
  auto r = resolve({kDevA});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->at(kDevA), pump_links("asset-from-redis"));
  EXPECT_EQ(store.load_calls, 0);
  EXPECT_EQ(cache.put_many_calls, 0);
  EXPECT_EQ(memory.size(), 1u);

  // Second time: from memory, Redis is not asked again.
  ASSERT_TRUE(resolve({kDevA}).ok());
  EXPECT_EQ(cache.get_many_calls, 1);
  EXPECT_EQ(metrics.snapshot().cache.at("redis").hits, 1u);
}

TEST_F(LinkResolverTest, MixedTiersOneCallEach) {
  ASSERT_TRUE(resolve({kDevA}).ok());  // now in memory
  cache.sets[kDevB] = pump_links("asset-b");
  store.loaded_keys.clear();
  cache.requested_keys.clear();

  auto r = resolve({kDevA, kDevB, kDevC});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 3u);
  ASSERT_EQ(cache.requested_keys.size(), 1u);
  EXPECT_EQ(cache.requested_keys[0], (std::vector<DeviceKey>{kDevB, kDevC}));
  ASSERT_EQ(store.loaded_keys.size(), 1u);
  EXPECT_EQ(store.loaded_keys[0], (std::vector<DeviceKey>{kDevC}));
}

TEST_F(LinkResolverTest, DuplicateKeysAreResolvedOnce) {
  auto r = resolve({kDevA, kDevB, kDevA, kDevA, kDevB});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  ASSERT_EQ(store.loaded_keys.size(), 1u);
  EXPECT_EQ(store.loaded_keys[0], (std::vector<DeviceKey>{kDevA, kDevB}));
  ASSERT_EQ(cache.requested_keys.size(), 1u);
  EXPECT_EQ(cache.requested_keys[0].size(), 2u);
}

TEST_F(LinkResolverTest, TenantsSharingADeviceIdDoNotShareLinks) {
  auto r = resolve({kDevA, kDevAOtherOrg});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(kDevA)->links.at(0).asset_id, "asset-a");
  EXPECT_EQ(r->at(kDevAOtherOrg)->links.at(0).asset_id, "asset-other-tenant");
}

TEST_F(LinkResolverTest, WorksWithoutSharedCache) {
  InProcessLinkCache alone_memory{100, seconds(300), seconds(30)};
  LinkResolver alone{alone_memory, nullptr, store, clock, metrics};
  std::vector<DeviceKey> keys{kDevA, kDevC};
  auto r = alone.resolve(keys);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->at(kDevA), pump_links("asset-a"));
  EXPECT_TRUE(r->at(kDevC)->links.empty());
  ASSERT_TRUE(alone.resolve(keys).ok());
  EXPECT_EQ(store.load_calls, 1);
  EXPECT_EQ(cache.get_many_calls, 0);

  alone.invalidate(std::vector<DeviceKey>{kDevA});  // no shared tier to tell: must not crash
  ASSERT_TRUE(alone.resolve(keys).ok());
  EXPECT_EQ(store.load_calls, 2);
  EXPECT_EQ(store.loaded_keys[1], (std::vector<DeviceKey>{kDevA}));
}

TEST_F(LinkResolverTest, SharedCacheDownFallsBackToTheStore) {
  cache.down = true;
  cache.sets[kDevA] = pump_links("stale");
  auto r = resolve({kDevA});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->at(kDevA), pump_links("asset-a"));
  EXPECT_EQ(store.load_calls, 1);
}

TEST_F(LinkResolverTest, EntriesExpireWithinTheirTtlAndEmptySetsSooner) {
  // Each key lives between 80% and 100% of its TTL.
  ASSERT_TRUE(resolve({kDevA, kDevC}).ok());  // A linked (300 s), C empty (30 s)
  cache.down = true;  // so that every memory miss reaches the store, where we can count it
  store.loaded_keys.clear();

  clock.advance(seconds(23));  // under 80% of the empty TTL: both still cached
  ASSERT_TRUE(resolve({kDevA, kDevC}).ok());
  EXPECT_TRUE(store.loaded_keys.empty());

  clock.advance(seconds(7));  // 30 s: the empty set has expired, the linked one has not
  ASSERT_TRUE(resolve({kDevA, kDevC}).ok());
  ASSERT_EQ(store.loaded_keys.size(), 1u);
  EXPECT_EQ(store.loaded_keys[0], (std::vector<DeviceKey>{kDevC}));

  clock.advance(seconds(209));  // 239 s: under 80% of the linked TTL
  ASSERT_TRUE(resolve({kDevA}).ok());
  EXPECT_EQ(store.loaded_keys.size(), 1u);

  clock.advance(seconds(61));  // 300 s after A was stored
  ASSERT_TRUE(resolve({kDevA}).ok());
  ASSERT_EQ(store.loaded_keys.size(), 2u);
  EXPECT_EQ(store.loaded_keys[1], (std::vector<DeviceKey>{kDevA}));
}

TEST_F(LinkResolverTest, ExpiredEntryReflectsAChangedLink) {
  ASSERT_TRUE(resolve({kDevA}).ok());
  cache.down = true;
  store.sets[kDevA] = pump_links("asset-a-relinked");
  clock.advance(seconds(301));
  auto r = resolve({kDevA});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(kDevA)->links.at(0).asset_id, "asset-a-relinked");
}

TEST_F(LinkResolverTest, StoreFailureReturnsItsStatus) {
  store.failures.fail_next(1, Status::unavailable("db_unavailable", "connection refused"));
  auto r = resolve({kDevA});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().unavailable());
  EXPECT_EQ(r.status().type(), "db_unavailable");
  EXPECT_EQ(r.status().message(), "connection refused");
  EXPECT_EQ(memory.size(), 0u);  // nothing half-cached
  EXPECT_EQ(cache.put_many_calls, 0);

  auto again = resolve({kDevA});  // the store is back
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->at(kDevA), pump_links("asset-a"));
}

TEST_F(LinkResolverTest, InvalidateDropsBothTiers) {
  ASSERT_TRUE(resolve({kDevA, kDevB}).ok());
  store.sets[kDevA] = pump_links("asset-a-relinked");

  resolver.invalidate(std::vector<DeviceKey>{kDevA});
  EXPECT_EQ(cache.invalidate_calls, 1);
  EXPECT_EQ(cache.invalidated, (std::vector<DeviceKey>{kDevA}));
  EXPECT_EQ(memory.size(), 1u);

  auto r = resolve({kDevA, kDevB});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(kDevA)->links.at(0).asset_id, "asset-a-relinked");
  EXPECT_EQ(r->at(kDevB)->links.at(0).asset_id, "asset-b");
  EXPECT_EQ(store.loaded_keys.back(), (std::vector<DeviceKey>{kDevA}));
}

TEST_F(LinkResolverTest, ForgetAllDropsOnlyTheMemoryTier) {
  ASSERT_TRUE(resolve({kDevA, kDevB}).ok());
  resolver.forget_all();
  EXPECT_EQ(memory.size(), 0u);
  ASSERT_TRUE(resolve({kDevA, kDevB}).ok());
  EXPECT_EQ(store.load_calls, 1);  // Redis still had them
  EXPECT_EQ(cache.get_many_calls, 2);
}

TEST_F(LinkResolverTest, InboxAppliesPostedKeysOnceOnThePipelineThread) {
  ASSERT_TRUE(resolve({kDevA, kDevB}).ok());
  LinkChangeInbox inbox;
  EXPECT_EQ(inbox.apply(resolver), 0u);
  inbox.post(kDevA);
  inbox.post(kDevA);
  EXPECT_EQ(cache.invalidate_calls, 0);  // nothing happens until the pipeline applies it
  EXPECT_EQ(inbox.apply(resolver), 2u);
  EXPECT_EQ(cache.invalidated, (std::vector<DeviceKey>{kDevA, kDevA}));
  EXPECT_EQ(memory.size(), 1u);
  EXPECT_EQ(inbox.apply(resolver), 0u);  // applied once
}

TEST_F(LinkResolverTest, InboxResetDropsMemoryAndAllDropsBothTiers) {
  ASSERT_TRUE(resolve({kDevA, kDevB}).ok());
  LinkChangeInbox inbox;
  inbox.post_reset();
  EXPECT_EQ(inbox.apply(resolver), 1u);
  EXPECT_EQ(memory.size(), 0u);
  EXPECT_EQ(cache.invalidate_all_calls, 0);
  EXPECT_EQ(cache.sets.size(), 2u);

  ASSERT_TRUE(resolve({kDevA, kDevB}).ok());
  inbox.post(kDevB);
  inbox.post_all();  // covers the key posted before it
  EXPECT_EQ(inbox.apply(resolver), 1u);
  EXPECT_EQ(memory.size(), 0u);
  EXPECT_EQ(cache.invalidate_all_calls, 1);
  EXPECT_TRUE(cache.sets.empty());
}

}  // namespace
}  // namespace atw
