#include "domain/score_ledger.h"

#include <gtest/gtest.h>

#include <optional>

namespace atw {
namespace {

const Timestamp kT1 = Timestamp::from_seconds(1769610000);
const Timestamp kT2 = Timestamp::from_seconds(1769610600);
const Timestamp kT3 = Timestamp::from_seconds(1769611200);

TEST(ScoreLedger, PreviousScoresFollowDeliveryOrder) {
  ScoreLedger ledger;
  ledger.load("asset-pump-a", StoredScore{85.0, Timestamp::from_seconds(1769609400)});
  EXPECT_EQ(ledger.apply("asset-pump-a", 70, kT1), std::optional<double>(85));
  EXPECT_EQ(ledger.apply("asset-pump-a", 60, kT2), std::optional<double>(70));
  EXPECT_EQ(ledger.apply("asset-pump-a", 100, kT3), std::optional<double>(60));

  const auto changes = ledger.changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].asset_id, "asset-pump-a");
  EXPECT_EQ(changes[0].score, 100);
  EXPECT_EQ(changes[0].at, kT3);
}

TEST(ScoreLedger, OlderMessageKeepsTheScoreButSeesIt) {
  ScoreLedger ledger;
  ledger.load("asset-pump-a", StoredScore{90.0, kT2});
  // Late data: lands in history, but the newer stored score stays.
  EXPECT_EQ(ledger.apply("asset-pump-a", 40, kT1), std::optional<double>(90));
  EXPECT_TRUE(ledger.changes().empty());

  EXPECT_EQ(ledger.apply("asset-pump-a", 50, kT3), std::optional<double>(90));
  // Another late one after the newer message: sees the newest score, changes nothing.
  EXPECT_EQ(ledger.apply("asset-pump-a", 10, kT2), std::optional<double>(50));
  const auto changes = ledger.changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].score, 50);
  EXPECT_EQ(changes[0].at, kT3);
}

TEST(ScoreLedger, EqualTimestampsLaterMessageWins) {
  ScoreLedger ledger;
  ledger.load("asset-pump-a", StoredScore{90.0, kT2});
  EXPECT_EQ(ledger.apply("asset-pump-a", 80, kT2), std::optional<double>(90));
  EXPECT_EQ(ledger.apply("asset-pump-a", 70, kT2), std::optional<double>(80));
  const auto changes = ledger.changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].score, 70);
  EXPECT_EQ(changes[0].at, kT2);
}

TEST(ScoreLedger, ChangesAreOnePerAssetSortedById) {
  ScoreLedger ledger;
  ledger.load("c", StoredScore{50.0, kT1});
  ledger.load("untouched", StoredScore{42.0, kT1});
  ledger.apply("c", 60, kT2);
  ledger.apply("a", 10, kT1);
  ledger.apply("b", 20, kT2);
  ledger.apply("a", 11, kT3);
  ledger.apply("c", 61, kT3);
  ledger.apply("b", 21, kT1);  // older: b keeps 20

  const auto changes = ledger.changes();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].asset_id, "a");
  EXPECT_EQ(changes[0].score, 11);
  EXPECT_EQ(changes[0].at, kT3);
  EXPECT_EQ(changes[1].asset_id, "b");
  EXPECT_EQ(changes[1].score, 20);
  EXPECT_EQ(changes[1].at, kT2);
  EXPECT_EQ(changes[2].asset_id, "c");
  EXPECT_EQ(changes[2].score, 61);
  EXPECT_EQ(changes[2].at, kT3);
}

TEST(ScoreLedger, AssetWithoutStoredScoreHasNoPrevious) {
  ScoreLedger ledger;
  ledger.load("asset-new", StoredScore{});  // health_score and its time both NULL
  EXPECT_EQ(ledger.apply("asset-new", 100, kT2), std::nullopt);
  EXPECT_EQ(ledger.apply("asset-new", 90, kT1), std::optional<double>(100));

  // An asset never loaded (not in the table yet) behaves the same.
  EXPECT_EQ(ledger.apply("asset-unknown", 75, kT1), std::nullopt);

  const auto changes = ledger.changes();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].asset_id, "asset-new");
  EXPECT_EQ(changes[0].score, 100);
  EXPECT_EQ(changes[1].asset_id, "asset-unknown");
}

TEST(ScoreLedger, StoredScoreWithoutTimeIsReplacedByAnyMessage) {
  // Rows created by other services may have a score but no health_score_updated_at.
  ScoreLedger ledger;
  ledger.load("asset-pump-b", StoredScore{92.0, std::nullopt});
  EXPECT_EQ(ledger.apply("asset-pump-b", 70, kT1), std::optional<double>(92));
  const auto changes = ledger.changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].score, 70);
  EXPECT_EQ(changes[0].at, kT1);
}

TEST(ScoreLedger, NullScoreWithTimeStillGuardsAgainstOlderMessages) {
  ScoreLedger ledger;
  ledger.load("asset-pump-b", StoredScore{std::nullopt, kT2});
  EXPECT_EQ(ledger.apply("asset-pump-b", 70, kT1), std::nullopt);
  EXPECT_TRUE(ledger.changes().empty());
}

TEST(ScoreLedger, NothingAppliedNothingChanged) {
  ScoreLedger ledger;
  ledger.load("asset-pump-a", StoredScore{85.0, kT1});
  EXPECT_TRUE(ledger.changes().empty());
}

}  // namespace
}  // namespace atw
