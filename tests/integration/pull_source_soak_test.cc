// Soak test of the JetStream pull source against a real nats-server. nats.c 3.4.1's own
// natsSubscription_Fetch can return at once ignoring its timeout, and can block or overflow when
// more than half a batch is left from an earlier timed-out fetch; JetStreamSource speaks the pull
// protocol itself to avoid both. This drives it the way those bugs need: random batch sizes,
// short waits, pauses longer than a pull request's life so requests expire with messages still
// on their way, publishing while consuming, and empty-stream fetches.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/jetstream_topology.h"
#include "support/servers.h"

namespace atw::testing {
namespace {

using namespace std::chrono_literals;

// The scenario's durable consumer, and a pull source on it (requests live 1 s, then 2 s of grace).
class PullSourceSoak : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ensure_consumer(s.nats(),
                                {s.input_stream(), s.durable(), s.input_subject(), 3,
                                 std::chrono::seconds(30), 20000},
                                log)
                    .ok());
    auto created = JetStreamSource::create(
        s.nats(), PullSettings{s.input_stream(), s.durable(), 3, 1000ms, 2000ms}, metrics, log);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    source = std::move(created).value();
  }

  Scenario s;
  Logger log{LogLevel::kError};
  WorkerMetrics metrics;
  std::unique_ptr<JetStreamSource> source;
};

TEST_F(PullSourceSoak, EveryMessageOnceNoOverflowAndWaitsAreHonoured) {
  JetStreamSource& src = *source;

  // 1. Empty stream: a fetch waits for its whole wait (no early return).
  const auto empty_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    auto batch = src.fetch(50, 100ms, 50, {});
    ASSERT_TRUE(batch.ok());
    EXPECT_TRUE(batch->empty());
  }
  EXPECT_GE(std::chrono::steady_clock::now() - empty_start, 950ms);

  // 1b. A fetch told of other work returns once that says so (checked every millisecond), with
  // what it has, even nothing; before that it waits as usual.
  {
    const auto start = std::chrono::steady_clock::now();
    auto after_50ms = [&] { return std::chrono::steady_clock::now() - start >= 50ms; };
    auto batch = src.fetch(50, 5000ms, 50, after_50ms);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(batch.ok());
    EXPECT_TRUE(batch->empty());
    EXPECT_GE(took, 50ms);
    EXPECT_LT(took, 2000ms) << "the fetch must not wait its whole 5 s";
  }

  // 2. A backlog, plus more published while consuming.
  constexpr int kBacklog = 15000;
  constexpr int kLate = 5000;
  auto publish_range = [&](int from, int to) {
    std::vector<std::string> payloads;
    for (int i = from; i < to; ++i) payloads.push_back("{\"n\":" + std::to_string(i) + "}");
    for (size_t off = 0; off < payloads.size(); off += 1000) {
      s.publish(std::vector<std::string>(
          payloads.begin() + static_cast<ptrdiff_t>(off),
          payloads.begin() + static_cast<ptrdiff_t>(std::min(off + 1000, payloads.size()))));
    }
  };
  publish_range(0, kBacklog);

  std::mt19937 rng(42);
  std::set<uint64_t> seen;
  size_t received = 0, redelivered = 0, pauses = 0, max_batch_seen = 0;
  size_t max_outstanding_seen = 0;
  int fetches = 0;
  bool late_published = false;
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (seen.size() < kBacklog + kLate && std::chrono::steady_clock::now() < deadline) {
    if (!late_published && seen.size() > kBacklog / 2) {
      // Publish from another connection while this one consumes.
      std::thread([&] { publish_range(kBacklog, kBacklog + kLate); }).join();
      late_published = true;
    }
    const size_t max = std::uniform_int_distribution<size_t>(1, 300)(rng);
    const auto wait = std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 30)(rng));
    // One fetch in three has other work waiting from the start: it takes what has arrived and
    // does not wait for more.
    std::function<bool()> other_work;
    if (fetches % 3 == 1) other_work = [] { return true; };
    auto batch = src.fetch(max, wait, max, other_work);
    ASSERT_TRUE(batch.ok()) << batch.status().to_string();
    ++fetches;
    ASSERT_LE(batch->size(), max) << "a fetch returned more than it was asked for";
    max_batch_seen = std::max(max_batch_seen, batch->size());
    max_outstanding_seen = std::max(max_outstanding_seen, src.outstanding());
    // Never more than two of the largest batches requested and not received: the bound on
    // what can pile up in the client's buffer.
    ASSERT_LE(src.outstanding(), 2u * 300u) << "requested more than two batches ahead";
    for (const auto& d : *batch) {
      ++received;
      if (d.delivery_count > 1) ++redelivered;
      seen.insert(d.stream_sequence);
      ASSERT_TRUE(src.ack(d).ok());
    }
    // Now and then stall past the pull requests' life, with messages still arriving for them.
    if (fetches % 15 == 0 && pauses < 8) {
      ++pauses;
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(1100, 2600)(rng)));
    }
  }
  ASSERT_TRUE(src.flush().ok());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kBacklog + kLate)) << "messages lost";
  EXPECT_EQ(received, seen.size()) << "messages received twice";
  EXPECT_EQ(redelivered, 0u);
  EXPECT_GE(pauses, 3u);
  RecordProperty("fetches", fetches);
  RecordProperty("max_outstanding", static_cast<int>(max_outstanding_seen));
  std::printf("soak: %d fetches, %zu messages, %zu pauses, max outstanding %zu\n", fetches,
              received, pauses, max_outstanding_seen);

  // 3. Everything acked: the consumer agrees.
  std::this_thread::sleep_for(200ms);
  auto info = s.consumer_info();
  EXPECT_EQ(info.value("num_ack_pending", -1), 0);
  EXPECT_EQ(info.value("num_pending", -1), 0);
  EXPECT_EQ(info.value("num_redelivered", -1), 0);
}

// The worker fetches the next batch while the previous one is written, and stops waiting once
// that write is done: messages that have already arrived must still be taken then, or the next
// batch would start empty and late.
TEST_F(PullSourceSoak, OtherWorkStopsTheWaitingNotTheTaking) {
  JetStreamSource& src = *source;
  std::vector<std::string> payloads;
  for (int i = 0; i < 200; ++i) payloads.push_back("{\"n\":" + std::to_string(i) + "}");
  s.publish(payloads);

  // The first fetch asks for 50 and 50 more ahead; the 50 ahead arrive while "processing".
  auto first = src.fetch(50, 2000ms, 50, {});
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  ASSERT_EQ(first->size(), 50u);
  std::this_thread::sleep_for(500ms);
  const auto start = std::chrono::steady_clock::now();
  auto second = src.fetch(50, 2000ms, 50, [] { return true; });
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(second->size(), 50u) << "messages already here are taken despite other work";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms) << "and nothing is waited for";
  for (const auto* batch : {&*first, &*second}) {
    for (const auto& d : *batch) ASSERT_TRUE(src.ack(d).ok());
  }
  EXPECT_EQ(first->back().stream_sequence + 1, second->front().stream_sequence);
  ASSERT_TRUE(src.flush().ok());
}

}  // namespace
}  // namespace atw::testing
