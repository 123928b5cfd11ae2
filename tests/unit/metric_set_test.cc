// MetricSet: insertion order, overwrite in place, and the same answers past the size where
// names are found through the index rather than a linear search.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "domain/metrics.h"

namespace atw {
namespace {

MetricSet numbered(int n) {
  MetricSet set;
  for (int i = 0; i < n; ++i) set.set(fmt::format("m{}", i), i);
  return set;
}

TEST(MetricSet, KeepsInsertionOrderAndOverwritesInPlace) {
  MetricSet set{{"b", 1}, {"a", 2}};
  set.set("b", 3, Quality::kUncertain);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.begin()->name, "b");
  EXPECT_EQ(set.begin()->value, 3);
  EXPECT_EQ(set.begin()->quality, Quality::kUncertain);
  EXPECT_EQ(set.get("a"), 2);
  EXPECT_EQ(set.get("c"), std::nullopt);
}

TEST(MetricSet, FindsEveryNameAtEverySize) {
  for (int n : {0, 1, 15, 16, 17, 31, 32, 33, 64, 65, 600, 5000}) {
    MetricSet set = numbered(n);
    ASSERT_EQ(set.size(), static_cast<size_t>(n)) << n;
    for (int i = 0; i < n; ++i) ASSERT_EQ(set.get(fmt::format("m{}", i)), i) << n << " " << i;
    EXPECT_EQ(set.find(fmt::format("m{}", n)), nullptr) << n;
    EXPECT_EQ(set.find("m"), nullptr) << n;
    EXPECT_EQ(set.find(""), nullptr) << n;
    int expected = 0;
    for (const Metric& m : set) EXPECT_EQ(m.name, fmt::format("m{}", expected++));
  }
}

TEST(MetricSet, OverwritesPastTheLinearSearchWithoutAddingANameTwice) {
  MetricSet set = numbered(600);
  for (int i = 0; i < 600; i += 7) set.set(fmt::format("m{}", i), -i, Quality::kBad);
  ASSERT_EQ(set.size(), 600u);
  EXPECT_EQ(set.get("m595"), -595);
  EXPECT_EQ(set.find_metric("m595")->quality, Quality::kBad);
  EXPECT_EQ(set.get("m596"), 596);
  EXPECT_TRUE(set.any_not_good());
}

TEST(MetricSet, CopiesAndComparesByTheirMetrics) {
  MetricSet a = numbered(100);
  MetricSet b = a;
  b.set("m99", 1000);
  EXPECT_EQ(b.get("m99"), 1000);
  EXPECT_EQ(a.get("m99"), 99);
  b.set("m99", 99);
  EXPECT_EQ(a, b);
  MetricSet reserved;
  reserved.reserve(1000);
  for (const Metric& m : a) reserved.set(m.name, m.value, m.quality);
  EXPECT_EQ(reserved, a);
  EXPECT_NE(numbered(20), numbered(21));
}

}  // namespace
}  // namespace atw
