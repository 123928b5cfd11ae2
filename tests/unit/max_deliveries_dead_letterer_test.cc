#include "pipeline/max_deliveries_dead_letterer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "adapters/nats/max_deliveries_advisory.h"
#include "support/fakes.h"

namespace atw {
namespace {

using nlohmann::json;

constexpr std::string_view kPayload =
    R"({"messageId":"m-crash","deviceId":"d","organizationId":"o","timestamp":"2026-01-28T14:30:00Z","metrics":{"t":1}})";

std::string advisory(uint64_t seq, uint64_t deliveries = 3) {
  return fmt::format(
      R"({{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2026-01-28T14:31:00Z",)"
      R"("stream":"TELEMETRY_NORMALIZED","consumer":"asset-processor-group","stream_seq":{},"deliveries":{}}})",
      seq, deliveries);
}

class FakeStore final : public MessageStore {
 public:
  Result<std::optional<StoredPayload>> get(const std::string& stream, uint64_t seq) override {
    ++calls;
    if (auto st = failures.take()) return *st;
    auto found = messages.find({stream, seq});
    if (found == messages.end()) return std::optional<StoredPayload>();
    return std::optional<StoredPayload>(found->second);
  }
  Status term(const std::string& stream, const std::string& consumer, uint64_t seq) override {
    terms.push_back(fmt::format("{}/{}/{}", stream, consumer, seq));
    return Status();
  }
  std::vector<std::string> terms;
  std::map<std::pair<std::string, uint64_t>, StoredPayload> messages;
  FailureScript failures;
  int calls = 0;
};

class MaxDeliveriesDeadLettererTest : public ::testing::Test {
 protected:
  MaxDeliveriesDeadLettererTest() {
    store.messages[{"TELEMETRY_NORMALIZED", 42}] =
        StoredPayload{"telemetry.normalized.v1", std::string(kPayload)};
  }

  size_t poll() { return net.poll(milliseconds(0)); }
  std::vector<json> records() const {
    std::vector<json> out;
    for (const auto& m : publisher.on("telemetry.dlq")) out.push_back(json::parse(m.payload));
    return out;
  }

  FakeClock clock{Timestamp::from_seconds(1769610661)};
  FakeSource advisories;
  FakeStore store;
  FakePublisher publisher;
  WorkerMetrics metrics;
  Logger log{LogLevel::kError};
  MaxDeliveriesDeadLetterer net{
      {advisories, read_max_deliveries_advisory, store, publisher, clock, metrics, log},
      "telemetry.dlq",
      milliseconds(5000)};
};

TEST_F(MaxDeliveriesDeadLettererTest, TheAdvisoryBecomesTheMessagesDeadLetterRecord) {
  advisories.push(advisory(42));
  EXPECT_EQ(poll(), 1u);

  const auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]["originalStream"], "TELEMETRY_NORMALIZED");
  EXPECT_EQ(r[0]["originalSubject"], "telemetry.normalized.v1");
  EXPECT_EQ(r[0]["streamSequence"], 42);
  EXPECT_EQ(r[0]["consumer"], "asset-processor-group");
  EXPECT_EQ(r[0]["deliveryCount"], 3);
  EXPECT_EQ(r[0]["errorType"], "max_deliveries_exceeded");
  EXPECT_NE(r[0]["lastError"].get<std::string>().find("3 times"), std::string::npos);
  EXPECT_EQ(r[0]["failedAt"], "2026-01-28T14:31:01.000Z");
  EXPECT_EQ(r[0]["payload"], json::parse(kPayload));
  // The same id a worker gives its own dead letter of that message: stored once either way.
  EXPECT_EQ(publisher.on("telemetry.dlq")[0].msg_id, "dlq:TELEMETRY_NORMALIZED:42");
  EXPECT_EQ(advisories.settlement("t1"), "ack");
  // The consumer is told the message is settled.
  EXPECT_EQ(store.terms, std::vector<std::string>{"TELEMETRY_NORMALIZED/asset-processor-group/42"});
  EXPECT_EQ(metrics.snapshot().messages_dead_lettered, 1u);
  EXPECT_EQ(metrics.snapshot().errors.at("max_deliveries_exceeded"), 1u);
}

TEST_F(MaxDeliveriesDeadLettererTest, AMessageTheStreamNoLongerHoldsStillGetsARecord) {
  advisories.push(advisory(7));
  poll();
  const auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]["streamSequence"], 7);
  EXPECT_NE(r[0]["lastError"].get<std::string>().find("no longer holds"), std::string::npos);
  EXPECT_EQ(advisories.settlement("t1"), "ack");
}

TEST_F(MaxDeliveriesDeadLettererTest, TheAdvisoryComesBackWhileTheStreamCannotBeRead) {
  store.failures.fail_next(1, Status::unavailable("nats_unavailable", "timeout"));
  advisories.push(advisory(42));
  poll();
  EXPECT_TRUE(records().empty());
  EXPECT_TRUE(store.terms.empty());
  EXPECT_EQ(advisories.settlement("t1"), "nak");
  EXPECT_EQ(advisories.nak_delays.at("t1"), milliseconds(5000));
}

TEST_F(MaxDeliveriesDeadLettererTest, TheAdvisoryComesBackWhileTheDlqRefusesTheRecord) {
  publisher.failures.fail_next(1, Status::unavailable("nats_unavailable", "no responders"));
  advisories.push(advisory(42));
  poll();
  EXPECT_TRUE(publisher.stored.empty());
  EXPECT_EQ(advisories.settlement("t1"), "nak");

  // Redelivered, it goes through; a second advisory for the same message is stored once.
  advisories.push(advisory(42), 2);
  advisories.push(advisory(42));
  poll();
  EXPECT_EQ(advisories.settlement("t2"), "ack");
  EXPECT_EQ(advisories.settlement("t3"), "ack");
  EXPECT_EQ(records().size(), 1u);
  EXPECT_EQ(publisher.duplicates_dropped, 1);
}

TEST_F(MaxDeliveriesDeadLettererTest, SomethingThatIsNotAnAdvisoryIsTerminated) {
  advisories.push("{not json");
  advisories.push(R"({"stream":"S"})");
  advisories.push(R"({"stream":"S","stream_seq":-1})");
  EXPECT_EQ(poll(), 3u);
  EXPECT_TRUE(publisher.stored.empty());
  EXPECT_EQ(store.calls, 0);
  for (const char* t : {"t1", "t2", "t3"}) EXPECT_EQ(advisories.settlement(t), "term") << t;
}

}  // namespace
}  // namespace atw
