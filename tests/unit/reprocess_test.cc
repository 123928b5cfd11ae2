// Reprocess's comparison of what was written for a message with what it gives now.

#include "pipeline/reprocess.h"

#include <gtest/gtest.h>

namespace atw {
namespace {

auto all = [](const std::string&) { return true; };

TEST(CorrectMessage, NothingWhenRowsAndScoreAreTheSame) {
  const std::vector<WrittenPair> before = {{"a", {{"t", 70}, {"p", 30}}, 90.0}};
  const std::vector<AssetResult> after = {{"a", {{"p", 30}, {"t", 70}}, 90, {}, nullptr}};
  EXPECT_TRUE(correct_message(before, after, all).empty());
}

TEST(CorrectMessage, RowsAddedRemovedAndChangedAndTheScoreBeforeAndAfter) {
  const std::vector<WrittenPair> before = {{"a", {{"t", 70}, {"p", 30}, {"old", 1}}, 90.0}};
  const std::vector<AssetResult> after = {
      {"a", {{"t", 70}, {"p", 60}, {"new", 2}}, 80, {}, nullptr}};
  const auto c = correct_message(before, after, all);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].asset_id, "a");
  EXPECT_EQ(c[0].added, (std::vector<Metric>{{"new", 2}}));
  EXPECT_EQ(c[0].removed, (std::vector<Metric>{{"old", 1}}));
  EXPECT_EQ(c[0].changed, (std::vector<Metric>{{"p", 60}}));
  EXPECT_EQ(c[0].changed_from, (std::vector<double>{30}));
  EXPECT_EQ(c[0].score_before, 90.0);
  EXPECT_EQ(c[0].score_after, 80.0);
  EXPECT_FALSE(c[0].removes_pair());
}

TEST(CorrectMessage, AScoreAloneChangedIsACorrectionWithoutRows) {
  const std::vector<WrittenPair> before = {{"a", {{"t", 70}}, 100.0}};
  const std::vector<AssetResult> after = {{"a", {{"t", 70}}, 75, {}, nullptr}};
  const auto c = correct_message(before, after, all);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c[0].rows_differ());
  EXPECT_EQ(c[0].score_after, 75.0);
}

TEST(CorrectMessage, AnAssetNoLongerServedLosesItsRowsAndANewOneGetsThem) {
  const std::vector<WrittenPair> before = {{"b", {{"t", 70}}, 100.0}};
  const std::vector<AssetResult> after = {{"c", {{"t", 70}}, 100, {}, nullptr}};
  const auto c = correct_message(before, after, all);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].asset_id, "c");
  EXPECT_EQ(c[0].added, (std::vector<Metric>{{"t", 70}}));
  EXPECT_FALSE(c[0].score_before.has_value());
  EXPECT_EQ(c[1].asset_id, "b");
  EXPECT_TRUE(c[1].removes_pair());
  EXPECT_EQ(c[1].removed, (std::vector<Metric>{{"t", 70}}));
  EXPECT_TRUE(c[1].rows_after.empty());
}

TEST(CorrectMessage, OnlyTheSelectedAssets) {
  const std::vector<WrittenPair> before = {{"a", {{"t", 1}}, 100.0}, {"b", {{"t", 1}}, 100.0}};
  const std::vector<AssetResult> after = {{"a", {{"t", 2}}, 100, {}, nullptr},
                                          {"b", {{"t", 2}}, 100, {}, nullptr}};
  const auto c = correct_message(before, after, [](const std::string& a) { return a == "b"; });
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].asset_id, "b");
}

TEST(NotableChanges, KeepsTheLargestScoreMovesLargestFirst) {
  NotableChanges n(2);
  PairCorrection small{"a", 90.0, 85.0, {}, {}, {}, {}, {}, {}};
  PairCorrection large{"b", 90.0, 40.0, {}, {}, {}, {}, {}, {}};
  PairCorrection removed{"c", 70.0, std::nullopt, {}, {}, {}, {}, {}, {}};
  n.offer("m1", Timestamp{1}, small);
  n.offer("m2", Timestamp{2}, large);
  n.offer("m3", Timestamp{3}, removed);
  ASSERT_EQ(n.largest().size(), 2u);
  EXPECT_EQ(n.largest()[0].asset_id, "c");  // a removal moves the whole score
  EXPECT_EQ(n.largest()[1].asset_id, "b");
  EXPECT_DOUBLE_EQ(n.largest()[1].size, 50);
}

}  // namespace
}  // namespace atw
