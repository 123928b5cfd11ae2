#include "pipeline/worker.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/fakes.h"

namespace atw {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const DeviceKey kDevice{"org-1", "device-1"};

std::string message(int n) {
  return fmt::format(R"({{"messageId":"m{}","deviceId":"device-1","organizationId":"org-1",)"
                     R"("timestamp":"2026-01-28T14:30:00Z","metrics":{{"temperature":{}}}}})",
                     n, 20 + n);
}

LinkSet links() {
  DeviceLink l;
  l.link_id = "link-1";
  l.asset_id = "asset-1";
  l.asset_type_id = "type-pump";
  l.telemetry_schema = "null";
  l.metrics_mapping = {{"device.temperature", "asset.motor_temperature"}};
  return LinkSet{{l}};
}

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest() { store.sets[kDevice] = links(); }

  uint64_t run(const std::function<void()>& on_cycle = {}) {
    return worker.run(
        stop, [this](milliseconds d) { sleeps.push_back(d); }, on_cycle);
  }

  Journal journal;
  FakeClock clock;
  FakeSource source{&journal};
  FakePublisher publisher;
  FakeSink sink;
  FakeLinkStore store;
  WorkerMetrics metrics;
  Logger log{LogLevel::kError};
  InProcessLinkCache memory{100, seconds(300), seconds(30)};
  LinkResolver resolver{memory, nullptr, store, clock, metrics};
  std::atomic<bool> stop{false};
  std::vector<milliseconds> sleeps;
  BatchProcessor processor{{source, resolver, sink, publisher, clock, metrics, log},
                           ProcessorSettings{},
                           stop,
                           [](milliseconds) {}};
  Worker worker{source, processor, clock, log, WorkerSettings{2, milliseconds(1), seconds(5)}};
};

TEST_F(WorkerTest, ProcessesQueuedMessagesInBatchesUntilStopped) {
  for (int i = 1; i <= 5; ++i) source.push(message(i));
  int cycles = 0;
  const uint64_t handled = run([&] {
    // Stop once the queue is empty; the loop must not spin on after that.
    if (++cycles > 1 && source.queued() == 0) stop = true;
  });

  EXPECT_EQ(handled, 5u);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(source.settlement(fmt::format("t{}", i)), "ack") << i;
  }
  // Slow start: one message first, then the batch size (2).
  EXPECT_EQ(sink.batch_sizes, (std::vector<size_t>{1, 2, 2}));
  EXPECT_EQ(sink.processed.size(), 5u);
  EXPECT_EQ(publisher.stored.size(), 5u);
  EXPECT_EQ(sink.assets.at("asset-1").health_score, 100);
  EXPECT_EQ(metrics.snapshot().messages_processed, 5u);
}

TEST_F(WorkerTest, StartsWithOneMessageAndNothingAheadThenDoublesUpToTheBatch) {
  Worker wide{source, processor, clock, log, WorkerSettings{8, milliseconds(1), seconds(5)}};
  for (int i = 1; i <= 20; ++i) source.push(message(i));
  wide.run(
      stop, [](milliseconds) {},
      [&] {
        if (source.queued() == 0) stop = true;
      });
  // (max, ahead): nothing requested ahead until the window is the whole batch.
  ASSERT_GE(source.fetches.size(), 5u);
  EXPECT_EQ(std::vector(source.fetches.begin(), source.fetches.begin() + 5),
            (std::vector<std::pair<size_t, size_t>>{{1, 0}, {2, 0}, {4, 0}, {8, 8}, {8, 8}}));
  EXPECT_EQ(sink.batch_sizes, (std::vector<size_t>{1, 2, 4, 8, 5}));
  EXPECT_EQ(source.settled_count("ack"), 20u);
}

// Full batches over a deep backlog (five batches or more behind, the count comes with each
// delivery), then catch-up batches, so what queued during a stall is acked piece by piece; the
// live size once fewer than a catch-up batch wait.
TEST_F(WorkerTest, BatchesAreFullOverADeepBacklogAndShortOverAShallowOne) {
  WorkerSettings settings{16, milliseconds(1), seconds(5)};
  settings.live_batch_size = 2;
  settings.catch_up_batch_size = 4;
  Worker live{source, processor, clock, log, settings};
  for (int i = 1; i <= 120; ++i) source.push(message(i)).stream_pending = 120 - i;
  live.run(
      stop, [](milliseconds) {},
      [&] {
        if (source.queued() == 0) stop = true;
      });
  // Slow start up to 16 while 80 or more wait; 73 behind message 47, so batches of 4 until
  // fewer than 4 wait behind one (1 behind message 119), then the live size.
  std::vector<size_t> expected = {1, 2, 4, 8, 16, 16};
  expected.insert(expected.end(), 18, 4);
  expected.push_back(1);
  EXPECT_EQ(sink.batch_sizes, expected);
  ASSERT_GE(source.fetches.size(), 7u);
  EXPECT_EQ(source.fetches[4], (std::pair<size_t, size_t>{16, 16}));
  EXPECT_EQ(source.fetches[6], (std::pair<size_t, size_t>{4, 4}));
  EXPECT_EQ(source.settled_count("ack"), 120u);
}

// The next batch is fetched while the pending one is being written; that fetch ends as soon
// as the write is done (the batch's events and acks should not wait for a fuller next batch).
TEST_F(WorkerTest, AFetchWhileABatchIsPendingEndsOnceItsWriteIsDone) {
  for (int i = 1; i <= 7; ++i) source.push(message(i));
  run([&] {
    if (source.queued() == 0) stop = true;
  });
  // Nothing pending at the first fetch; after it, the fake's writes are done at once.
  ASSERT_GE(source.other_work_answers.size(), 3u);
  EXPECT_EQ(source.other_work_answers[0], "none");
  EXPECT_EQ(source.other_work_answers[1], "true");
  EXPECT_EQ(source.other_work_answers[2], "true");
  EXPECT_EQ(source.settled_count("ack"), 7u);
}

TEST_F(WorkerTest, AFetchWhileTheDatabaseIsStillWritingKeepsWaiting) {
  sink.hold_writes = true;
  for (int i = 1; i <= 7; ++i) source.push(message(i));
  // The write completes only after the fetch that follows it has looked.
  source.on_fetch = [&] { sink.release_writes(); };
  run([&] {
    if (source.queued() == 0) stop = true;
  });
  ASSERT_GE(source.other_work_answers.size(), 3u);
  EXPECT_EQ(source.other_work_answers[0], "none");
  EXPECT_EQ(source.other_work_answers[1], "false");
  EXPECT_EQ(source.other_work_answers[2], "false");
  EXPECT_EQ(source.settled_count("ack"), 7u);
}

TEST_F(WorkerTest, AnIdleWorkerDoesNotWidenItsWindow) {
  Worker wide{source, processor, clock, log, WorkerSettings{8, milliseconds(1), seconds(5)}};
  int cycles = 0;
  wide.run(
      stop, [](milliseconds) {},
      [&] {
        if (++cycles == 10) source.push(message(1), 3);  // a last delivery, after idling
        if (cycles > 10 && source.queued() == 0) stop = true;
      });
  ASSERT_GE(source.fetches.size(), 10u);
  for (const auto& [max, ahead] : source.fetches) {
    EXPECT_EQ(max, 1u);
    EXPECT_EQ(ahead, 0u);
  }
  EXPECT_EQ(source.settlement("t1"), "ack");
}

TEST_F(WorkerTest, RedeliveriesAreProcessedAloneAndSetTheWindowBackToOne) {
  Worker wide{source, processor, clock, log, WorkerSettings{64, milliseconds(1), seconds(5)}};
  // Slow start takes 1, 2, then 4: m4..m7 mixes first and second deliveries.
  const uint64_t counts[] = {1, 1, 1, 1, 2, 1, 3, 1, 1, 1};
  for (size_t i = 0; i < std::size(counts); ++i) source.push(message(int(i) + 1), counts[i]);
  const uint64_t handled = wide.run(
      stop, [](milliseconds) {},
      [&] {
        if (source.queued() == 0) stop = true;
      });

  EXPECT_EQ(handled, 10u);
  // Fetches: 1 | 2 | 4 = [m4, m5 (2nd), m6, m7 (3rd)]: window back to 1 | 1 = [m8] | 2 = [m9,
  // m10].
  ASSERT_GE(source.fetches.size(), 6u);
  EXPECT_EQ(
      std::vector(source.fetches.begin(), source.fetches.begin() + 6),
      (std::vector<std::pair<size_t, size_t>>{{1, 0}, {2, 0}, {4, 0}, {1, 0}, {2, 0}, {4, 0}}));
  // Runs: m1 | m2 m3 | m4 | m5 alone | m6 | m7 alone | m8 | m9 m10.
  EXPECT_EQ(sink.batch_sizes, (std::vector<size_t>{1, 2, 1, 1, 1, 1, 1, 2}));
  EXPECT_EQ(source.settled_count("ack"), 10u);
}

TEST_F(WorkerTest, RedeliveriesWaitingTheirTurnAreKeptAlive) {
  // Slow start fetches m1 | m2 m3, then four redeliveries in one fetch of 4; each is processed
  // alone and each write takes 4 s. With a keepalive of 10 s, the ones still waiting their turn
  // get an InProgress before their AckWait runs out.
  Worker wide{source, processor, clock, log,
              WorkerSettings{64, milliseconds(1), seconds(5), seconds(10)}};
  for (int i = 1; i <= 3; ++i) source.push(message(i));
  std::vector<std::string> redelivered;
  for (int i = 4; i <= 7; ++i) redelivered.push_back(source.push(message(i), 2).ack_token);
  wide.run(
      stop, [](milliseconds) {},
      [&] {
        if (source.queued() == 0) stop = true;
        sink.on_write = [&] { clock.advance(seconds(4)); };
      });
  EXPECT_EQ(sink.batch_sizes, (std::vector<size_t>{1, 2, 1, 1, 1, 1}));
  // Fetched at t; m4 written at t+0, m5 t+4, m6 t+8; at t+12 m7 is kept alive, then written.
  EXPECT_EQ(source.in_progress_of(redelivered[0]), 0);
  EXPECT_EQ(source.in_progress_of(redelivered[2]), 0);
  EXPECT_EQ(source.in_progress_of(redelivered[3]), 1);
  EXPECT_EQ(source.settled_count("ack"), 7u);
}

TEST_F(WorkerTest, MessagesWaitingInTheSourcesBufferAreKeptAlive) {
  // Redeliveries keep the window at one message, so the source's buffer (here, its queue) is
  // taken one message per fetch, 4 s per write; after 10 s, what still waits is kept alive.
  Worker wide{source, processor, clock, log,
              WorkerSettings{64, milliseconds(1), seconds(5), seconds(10)}};
  std::vector<std::string> tokens;
  for (int i = 1; i <= 5; ++i) tokens.push_back(source.push(message(i), 2).ack_token);
  sink.on_write = [&] { clock.advance(seconds(4)); };
  wide.run(
      stop, [](milliseconds) {},
      [&] {
        if (source.queued() == 0) stop = true;
      });
  EXPECT_EQ(sink.batch_sizes, (std::vector<size_t>{1, 1, 1, 1, 1}));
  // Writes end at 4, 8, 12 s: before the fourth fetch, m4 and m5 still wait and are kept alive.
  EXPECT_EQ(source.in_progress_of(tokens[2]), 0);
  EXPECT_EQ(source.in_progress_of(tokens[3]), 1);
  EXPECT_EQ(source.in_progress_of(tokens[4]), 1);
  EXPECT_EQ(source.settled_count("ack"), 5u);
}

TEST_F(WorkerTest, StopsWhenTheFlagIsSetEvenWithNothingToDo) {
  int cycles = 0;
  const uint64_t handled = run([&] {
    if (++cycles == 10) stop = true;
  });
  EXPECT_EQ(handled, 0u);
  EXPECT_EQ(cycles, 10);
  EXPECT_TRUE(source.intake_closed);
  EXPECT_GE(source.flush_calls, 1);
}

TEST_F(WorkerTest, DrainsWhatWasAlreadyRequestedThenFlushes) {
  for (int i = 1; i <= 5; ++i) source.push(message(i));
  // Stop right after the first fetch: 3 messages are still ours to finish.
  source.on_fetch = [&] { stop = true; };
  const uint64_t handled = run();

  EXPECT_EQ(handled, 5u);
  EXPECT_TRUE(source.intake_closed);
  EXPECT_EQ(source.settled_count("ack"), 5u);
  EXPECT_EQ(sink.processed.size(), 5u);
  // The acknowledgements are flushed after the last of them.
  ASSERT_GE(source.flush_calls, 1);
  EXPECT_GT(journal.last_index_of("flush"), journal.index_of("ack t5"));
  EXPECT_EQ(journal.entries.back(), "flush");
}

TEST_F(WorkerTest, FetchFailureBacksOffAndRecovers) {
  source.fetch_failures.fail_next(3, Status::unavailable("nats_unavailable", "not connected"));
  source.push(message(1));
  bool unhealthy_seen = false;
  const uint64_t handled = run([&] {
    if (!worker.healthy()) unhealthy_seen = true;
    if (source.queued() == 0) stop = true;
  });
  EXPECT_EQ(handled, 1u);
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400)}));
  EXPECT_TRUE(unhealthy_seen);
  EXPECT_TRUE(worker.healthy());
}

TEST_F(WorkerTest, FetchBackoffIsCapped) {
  source.fetch_failures.fail_next(8, Status::unavailable("nats_unavailable", "not connected"));
  run([&] {
    if (source.fetch_failures.remaining() == 0) stop = true;
  });
  ASSERT_EQ(sleeps.size(), 8u);
  EXPECT_EQ(sleeps[3], milliseconds(800));
  EXPECT_EQ(sleeps[4], milliseconds(1600));
  EXPECT_EQ(sleeps[5], milliseconds(2000));
  EXPECT_EQ(sleeps.back(), milliseconds(2000));
}

}  // namespace
}  // namespace atw
