// The in-process link cache: time to live spread per key, capacity, least recently used first.

#include "pipeline/in_process_link_cache.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace atw {
namespace {

using std::chrono::seconds;

LinkSetPtr links_to(const std::string& asset_id) {
  DeviceLink l;
  l.link_id = "link-" + asset_id;
  l.asset_id = asset_id;
  return std::make_shared<const LinkSet>(LinkSet{{l}});
}

DeviceKey device(int i) {
  return DeviceKey{"org-1", "device-" + std::to_string(i)};
}

const Timestamp kT0 = Timestamp::from_seconds(1769610600);

TEST(InProcessLinkCache, ExpiriesOfManyKeysAreSpreadOverTheLastFifthOfTheTtl) {
  InProcessLinkCache memory(10000, seconds(100), seconds(10));
  auto set = links_to("x");
  for (int i = 0; i < 1000; ++i) memory.put(device(i), set, Timestamp{0});
  auto alive_at = [&](int seconds_later) {
    int alive = 0;
    for (int i = 0; i < 1000; ++i) {
      if (memory.get(device(i), Timestamp::from_seconds(seconds_later))) ++alive;
    }
    return alive;
  };
  EXPECT_EQ(alive_at(79), 1000);
  const int at_90 = alive_at(90);  // roughly half have expired by now
  EXPECT_GT(at_90, 200);
  EXPECT_LT(at_90, 800);
  EXPECT_EQ(alive_at(100), 0);
  EXPECT_EQ(memory.size(), 0u);  // an expired entry found is dropped
}

TEST(InProcessLinkCache, DeviceWithoutLinksLivesForTheEmptyTtl) {
  InProcessLinkCache memory(10, seconds(300), seconds(30));
  memory.put(device(1), std::make_shared<const LinkSet>(), kT0);
  memory.put(device(2), links_to("a"), kT0);
  const Timestamp later{kT0.micros + 31'000'000};
  EXPECT_EQ(memory.get(device(1), later), nullptr);
  EXPECT_NE(memory.get(device(2), later), nullptr);
}

TEST(InProcessLinkCache, CapacityIsNeverExceeded) {
  InProcessLinkCache memory{2, seconds(300), seconds(30)};
  memory.put(device(1), links_to("a"), kT0);
  memory.put(device(2), links_to("b"), kT0);
  memory.put(device(3), links_to("c"), kT0);
  EXPECT_EQ(memory.size(), 2u);
  EXPECT_NE(memory.get(device(3), kT0), nullptr);  // the newest entry is kept
  // Replacing an existing key evicts nothing and replaces its links.
  memory.put(device(3), links_to("c2"), kT0);
  EXPECT_EQ(memory.size(), 2u);
  EXPECT_EQ(memory.get(device(3), kT0)->links.at(0).asset_id, "c2");
  EXPECT_NE(memory.get(device(2), kT0), nullptr);
}

TEST(InProcessLinkCache, EvictsTheLeastRecentlyUsedFirst) {
  InProcessLinkCache memory{2, seconds(300), seconds(30)};
  memory.put(device(1), links_to("a"), kT0);
  memory.put(device(2), links_to("b"), kT0);
  ASSERT_NE(memory.get(device(1), kT0), nullptr);  // 1 used after 2
  memory.put(device(3), links_to("c"), kT0);
  EXPECT_NE(memory.get(device(1), kT0), nullptr);
  EXPECT_EQ(memory.get(device(2), kT0), nullptr);
  EXPECT_NE(memory.get(device(3), kT0), nullptr);
}

// A plant many times the capacity: every put evicts. The cache keeps exactly the newest
// `capacity` devices, with their own links (the index never points at an evicted entry).
TEST(InProcessLinkCache, APlantLargerThanTheCapacityKeepsTheNewestDevices) {
  constexpr int kCapacity = 1000;
  InProcessLinkCache memory{kCapacity, seconds(300), seconds(30)};
  for (int i = 0; i < 200 * kCapacity; ++i) {
    memory.put(device(i), links_to("asset-" + std::to_string(i)), kT0);
  }
  EXPECT_EQ(memory.size(), static_cast<size_t>(kCapacity));
  for (int i = 199 * kCapacity; i < 200 * kCapacity; ++i) {
    const auto links = memory.get(device(i), kT0);
    ASSERT_NE(links, nullptr) << i;
    EXPECT_EQ(links->links.at(0).asset_id, "asset-" + std::to_string(i));
  }
  EXPECT_EQ(memory.get(device(199 * kCapacity - 1), kT0), nullptr);
  EXPECT_EQ(memory.get(device(0), kT0), nullptr);
}

TEST(InProcessLinkCache, EraseAndClear) {
  InProcessLinkCache memory{10, seconds(300), seconds(30)};
  memory.put(device(1), links_to("a"), kT0);
  memory.put(device(2), links_to("b"), kT0);
  memory.erase(device(1));
  memory.erase(device(9));  // absent: nothing happens
  EXPECT_EQ(memory.get(device(1), kT0), nullptr);
  EXPECT_EQ(memory.size(), 1u);
  memory.clear();
  EXPECT_EQ(memory.size(), 0u);
  EXPECT_EQ(memory.get(device(2), kT0), nullptr);
  memory.put(device(2), links_to("b"), kT0);  // usable after clear
  EXPECT_NE(memory.get(device(2), kT0), nullptr);
}

}  // namespace
}  // namespace atw
