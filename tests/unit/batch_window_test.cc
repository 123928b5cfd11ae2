#include "pipeline/batch_window.h"

#include <gtest/gtest.h>

#include <vector>

namespace atw {
namespace {

BatchSizes sizes() {
  return BatchSizes{.batch_size = 2000, .live_batch_size = 100, .catch_up_batch_size = 250};
}

TEST(BatchWindow, StartsAtOneMessageWithNothingRequestedAhead) {
  const BatchWindow w(sizes());
  EXPECT_EQ(w.want(), 1u);
  EXPECT_EQ(w.ahead(), 0u);
}

TEST(BatchWindow, DoublesOnFirstDeliveriesUpToTheLiveSizeWhenTheWorkerKeepsUp) {
  BatchWindow w(sizes());
  std::vector<size_t> wants;
  for (int i = 0; i < 9; ++i) {
    w.grew(0);
    wants.push_back(w.want());
  }
  EXPECT_EQ(wants, (std::vector<size_t>{2, 4, 8, 16, 32, 64, 100, 100, 100}));
  EXPECT_EQ(w.ahead(), 100u);  // open: the next batch is requested while this one is processed
}

TEST(BatchWindow, TheBacklogBehindTheLastMessageSetsTheWidestBatch) {
  BatchWindow w(sizes());
  for (int i = 0; i < 12; ++i) w.grew(10'000);  // a deep backlog: five full batches or more
  EXPECT_EQ(w.want(), 2000u);
  w.grew(9'999);  // shallow: catch-up batches
  EXPECT_EQ(w.want(), 250u);
  w.grew(250);
  EXPECT_EQ(w.want(), 250u);
  w.grew(249);  // less than a catch-up batch behind: live
  EXPECT_EQ(w.want(), 100u);
}

TEST(BatchWindow, ARedeliveryShrinksToOneMessageAndItOpensAgainFromThere) {
  BatchWindow w(sizes());
  for (int i = 0; i < 12; ++i) w.grew(10'000);
  w.redelivered();
  EXPECT_EQ(w.want(), 1u);
  EXPECT_EQ(w.ahead(), 0u);
  w.grew(10'000);
  EXPECT_EQ(w.want(), 2u);
  EXPECT_EQ(w.ahead(), 0u);
}

TEST(BatchWindow, AnEmptyFetchNarrowsTheWidestToLiveButKeepsTheWindow) {
  BatchWindow w(sizes());
  for (int i = 0; i < 12; ++i) w.grew(10'000);
  w.idle();
  EXPECT_EQ(w.want(), 100u);
  EXPECT_EQ(w.ahead(), 100u);
}

TEST(BatchWindow, SizesOutOfOrderAreClampedToTheBatchSize) {
  BatchWindow w(BatchSizes{.batch_size = 50, .live_batch_size = 100, .catch_up_batch_size = 10});
  for (int i = 0; i < 10; ++i) w.grew(0);
  EXPECT_EQ(w.want(), 50u);  // live is never more than the batch size
  w.grew(60);                // catch-up is at least live
  EXPECT_EQ(w.want(), 50u);
}

TEST(KeepaliveSchedule, IsDueOnceAnIntervalHasPassedAndThenCountsFromThen) {
  KeepaliveSchedule k(milliseconds(10'000), Timestamp{1'000'000});
  EXPECT_FALSE(k.due(Timestamp{1'000'000 + 9'999'999}));
  EXPECT_TRUE(k.due(Timestamp{1'000'000 + 10'000'000}));
  EXPECT_FALSE(k.due(Timestamp{1'000'000 + 10'000'001}));
  EXPECT_TRUE(k.due(Timestamp{1'000'000 + 25'000'000}));
}

TEST(KeepaliveSchedule, ARestartPutsTheNextOneAWholeIntervalAway) {
  KeepaliveSchedule k(milliseconds(1'000), Timestamp{0});
  k.restart(Timestamp{900'000});
  EXPECT_FALSE(k.due(Timestamp{1'500'000}));
  EXPECT_TRUE(k.due(Timestamp{1'900'000}));
}

}  // namespace
}  // namespace atw
