#include "pipeline/batch_processor.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "domain/dead_letter.h"
#include "domain/event.h"
#include "support/fakes.h"
#include "support/seed_example.h"

namespace atw {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kEvents = "telemetry.asset.v1";
constexpr const char* kDlq = "telemetry.dlq";
const Timestamp kAt1430 = Timestamp::from_seconds(1769610600);  // 2026-01-28T14:30:00Z
const Timestamp kAt1400 = Timestamp::from_seconds(1769608800);  // 2026-01-28T14:00:00Z
const DeviceKey kSeedDevice{"org-xyz-789", "device-abc-123"};

using atw::testing::kSeedMessage;

std::string message(const std::string& id, const std::string& metrics_json,
                    const std::string& timestamp = "2026-01-28T14:30:00Z",
                    const std::string& device = "device-abc-123",
                    const std::string& org = "org-xyz-789") {
  return fmt::format(
      R"({{"messageId":"{}","deviceId":"{}","organizationId":"{}","timestamp":"{}","metrics":{}}})",
      id, device, org, timestamp, metrics_json);
}

constexpr const char* kSeedMetrics =
    R"({"temperature":25.5,"voltage":12.3,"current":2.5,"pressure":101.3})";

// The seed's example link query result (seed step 3), exactly.
LinkSet seed_links() {
  DeviceLink a;
  a.link_id = "link-uuid-1";
  a.asset_id = "asset-pump-a";
  a.role = "primary";
  a.metrics_mapping = {{"device.voltage", "asset.power_input"},
                       {"device.current", "asset.power_current"},
                       {"device.temperature", "asset.motor_temperature"}};
  a.asset_name = "Pump A";
  a.asset_type_id = "type-pump";
  a.telemetry_schema =
      R"({"derived_metrics":[{"name":"power_consumption","formula":"power_input * power_current","unit":"watts"}]})";
  DeviceLink b;
  b.link_id = "link-uuid-2";
  b.asset_id = "asset-pump-b";
  b.port = "1";
  b.role = "secondary";
  b.metrics_mapping = {{"device.temperature", "asset.motor_temperature"}};
  b.asset_name = "Pump B";
  b.asset_type_id = "type-pump";
  b.telemetry_schema = "null";
  return LinkSet{{a, b}};
}

// The event id of message `source_id` of the seed tenant's `device` for `asset`.
std::string event_id(const std::string& source_id, const std::string& asset,
                     const std::string& device = kSeedDevice.device_id) {
  return asset_event_id(kSeedDevice.organization_id, device, source_id, asset);
}

class BatchProcessorTest : public ::testing::Test {
 protected:
  BatchProcessorTest() {
    store.sets[kSeedDevice] = seed_links();
    // Pump B has a score from before: the events must report it as previousHealthScore.
    sink.assets["asset-pump-b"] = FakeSink::AssetRow{92.0, kAt1400};
    clock.set(Timestamp{1769610601234000});  // 2026-01-28T14:30:01.234Z
    settings.retry_initial = milliseconds(100);
    settings.retry_max = milliseconds(800);
    settings.keepalive = milliseconds(1000);
    settings.nak_delay = milliseconds(2000);
  }

  BatchProcessor& processor() {
    if (!processor_) {
      processor_ = std::make_unique<BatchProcessor>(
          BatchProcessor::Dependencies{source, resolver, sink, publisher, clock, metrics, log},
          settings, stopping, [this](milliseconds d) {
            sleeps.push_back(d);
            clock.advance(d);
            healthy_while_sleeping.push_back(processor_->healthy());
            if (on_sleep) on_sleep();
          });
    }
    return *processor_;
  }

  // Hands everything queued on the source to the processor as one batch.
  void run_batch() {
    auto batch = source.take_all();
    processor().process(batch, clock.now());
  }

  std::vector<ordered_json> events() const {
    std::vector<ordered_json> out;
    for (const auto& m : publisher.on(kEvents)) out.push_back(ordered_json::parse(m.payload));
    return out;
  }
  std::vector<json> dead_letters() const {
    std::vector<json> out;
    for (const auto& m : publisher.on(kDlq)) out.push_back(json::parse(m.payload));
    return out;
  }
  // The event published for (source message, asset), or null.
  json event_for(const std::string& source_id, const std::string& asset,
                 const std::string& device = kSeedDevice.device_id) const {
    for (const auto& m : publisher.on(kEvents)) {
      if (m.msg_id == event_id(source_id, asset, device)) return json::parse(m.payload);
    }
    return nullptr;
  }

  Journal journal;
  FakeClock clock;
  FakeSource source{&journal};
  FakePublisher publisher{&journal};
  FakeSink sink{&journal};
  FakeLinkStore store;
  FakeLinkCache cache;
  WorkerMetrics metrics;
  Logger log{LogLevel::kError};
  InProcessLinkCache memory{1000, seconds(300), seconds(30)};
  LinkResolver resolver{memory, &cache, store, clock, metrics};
  ProcessorSettings settings;
  std::atomic<bool> stopping{false};
  std::vector<milliseconds> sleeps;
  std::vector<bool> healthy_while_sleeping;
  std::function<void()> on_sleep;

 private:
  std::unique_ptr<BatchProcessor> processor_;
};

TEST_F(BatchProcessorTest, SeedExampleEndToEnd) {
  source.push(kSeedMessage);
  run_batch();

  // Acked, once, after the rows were committed and the events acknowledged (SPEC D13).
  EXPECT_EQ(source.settlement("t1"), "ack");
  const int write = journal.index_of("write");
  const int publish = journal.index_of(std::string("publish ") + kEvents);
  const int ack = journal.index_of("ack t1");
  ASSERT_GE(write, 0);
  EXPECT_LT(write, publish);
  EXPECT_LT(publish, ack);

  // Two events, with the seed's fields exactly.
  const auto evs = events();
  ASSERT_EQ(evs.size(), 2u);
  const ordered_json& a = evs[0];
  std::vector<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.push_back(k);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"messageId", "assetId", "deviceId", "organizationId",
                                      "timestamp", "metrics", "healthScore", "previousHealthScore",
                                      "processedAt", "processorVersion", "healthDetails"}));
  EXPECT_EQ(a["messageId"], "73b3d55b-8141-5709-baff-78f560a4a132");
  EXPECT_EQ(publisher.on(kEvents)[0].msg_id, "73b3d55b-8141-5709-baff-78f560a4a132");
  EXPECT_EQ(a["assetId"], "asset-pump-a");
  EXPECT_EQ(a["deviceId"], "device-abc-123");
  EXPECT_EQ(a["organizationId"], "org-xyz-789");
  EXPECT_EQ(a["timestamp"], "2026-01-28T14:30:00Z");
  std::vector<std::string> metric_names;
  for (const auto& [k, v] : a["metrics"].items()) metric_names.push_back(k);
  EXPECT_EQ(metric_names, (std::vector<std::string>{"power_input", "power_current",
                                                    "motor_temperature", "power_consumption"}));
  EXPECT_DOUBLE_EQ(a["metrics"]["power_input"].get<double>(), 12.3);
  EXPECT_DOUBLE_EQ(a["metrics"]["power_current"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(a["metrics"]["motor_temperature"].get<double>(), 25.5);
  EXPECT_DOUBLE_EQ(a["metrics"]["power_consumption"].get<double>(), 30.75);
  EXPECT_EQ(a["healthScore"], 100);
  EXPECT_TRUE(a["previousHealthScore"].is_null());
  EXPECT_EQ(a["processedAt"], "2026-01-28T14:30:01.234Z");
  EXPECT_EQ(a["processorVersion"], "asset-worker-v1");

  const ordered_json& b = evs[1];
  EXPECT_EQ(b["messageId"], "c17f48da-5093-50a1-b4b4-698b7e64a73b");
  EXPECT_EQ(b["assetId"], "asset-pump-b");
  EXPECT_EQ(b["metrics"], ordered_json::parse(R"({"motor_temperature":25.5})"));
  EXPECT_EQ(b["healthScore"], 100);
  EXPECT_EQ(b["previousHealthScore"], 92);
  EXPECT_EQ(b["timestamp"], "2026-01-28T14:30:00Z");

  // The rows: one history row per asset metric, and both scores moved to 14:30.
  EXPECT_EQ(sink.write_calls, 1);
  ASSERT_EQ(sink.history.size(), 5u);
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& r : sink.history) {
    rows.emplace_back(r.entity_id, r.metric_key);
    EXPECT_EQ(r.timestamp, kAt1430);
    EXPECT_EQ(r.source_device_id, "device-abc-123");
  }
  EXPECT_EQ(rows, (std::vector<std::pair<std::string, std::string>>{
                      {"asset-pump-a", "power_input"},
                      {"asset-pump-a", "power_current"},
                      {"asset-pump-a", "motor_temperature"},
                      {"asset-pump-a", "power_consumption"},
                      {"asset-pump-b", "motor_temperature"}}));
  EXPECT_DOUBLE_EQ(sink.history[3].value, 30.75);
  EXPECT_EQ(sink.assets["asset-pump-a"].health_score, 100);
  EXPECT_EQ(sink.assets["asset-pump-a"].updated_at, kAt1430);
  EXPECT_EQ(sink.assets["asset-pump-b"].health_score, 100);
  EXPECT_EQ(sink.assets["asset-pump-b"].updated_at, kAt1430);

  // Links came from the store once, and went back to the shared cache.
  EXPECT_EQ(store.load_calls, 1);
  EXPECT_EQ(cache.sets.at(kSeedDevice), seed_links());
  EXPECT_TRUE(publisher.on(kDlq).empty());

  const auto snap = metrics.snapshot();
  EXPECT_EQ(snap.messages_processed, 1u);
  EXPECT_EQ(snap.history_rows, 5u);
  EXPECT_EQ(snap.events_published, 2u);
  EXPECT_EQ(snap.latency_count, 1u);
}

TEST_F(BatchProcessorTest, PortMetricsOverwriteTheMappingAndDriveTheScore) {
  // Pump B sits on port 1: port_1_motor_temperature overrides the mapped temperature.
  source.push(message("m-port", R"({"temperature":25.5,"port_1_motor_temperature":85,)"
                                R"("port_2_motor_temperature":99})"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  const json b = event_for("m-port", "asset-pump-b");
  ASSERT_FALSE(b.is_null());
  EXPECT_EQ(b["metrics"], json::parse(R"({"motor_temperature":85})"));
  EXPECT_EQ(b["healthScore"], 70);  // > 80: -30 (seed algorithm)
  EXPECT_EQ(sink.assets["asset-pump-b"].health_score, 70);
}

TEST_F(BatchProcessorTest, DeviceWithoutLinksIsAckedWithNothingWritten) {
  source.push(message("m-lonely", kSeedMetrics, "2026-01-28T14:30:00Z", "device-unlinked"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(sink.write_calls, 0);
  EXPECT_TRUE(sink.history.empty());
  EXPECT_EQ(publisher.calls, 0);
  EXPECT_EQ(metrics.snapshot().messages_no_links, 1u);

  // The empty answer is cached: the next message of that device costs no query (SPEC D6).
  source.push(message("m-lonely-2", kSeedMetrics, "2026-01-28T14:30:00Z", "device-unlinked"));
  run_batch();
  EXPECT_EQ(source.settlement("t2"), "ack");
  EXPECT_EQ(store.load_calls, 1);
}

TEST_F(BatchProcessorTest, LinkNotValidAtMeasurementTimeIsNotUsed) {
  LinkSet links = seed_links();
  links.links[0].valid_until = kAt1430;  // Pump A unlinked exactly at 14:30 (exclusive)
  links.links[1].valid_from = Timestamp::from_seconds(1769610600 + 1);  // Pump B from 14:30:01
  store.sets[kSeedDevice] = links;
  source.push(message("m-1429", kSeedMetrics, "2026-01-28T14:29:59Z"));
  source.push(message("m-1430", kSeedMetrics, "2026-01-28T14:30:00Z"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(source.settlement("t2"), "ack");
  EXPECT_FALSE(event_for("m-1429", "asset-pump-a").is_null());
  EXPECT_TRUE(event_for("m-1429", "asset-pump-b").is_null());
  EXPECT_TRUE(event_for("m-1430", "asset-pump-a").is_null());
  EXPECT_TRUE(event_for("m-1430", "asset-pump-b").is_null());
  EXPECT_TRUE(sink.rows_of("m-1430").empty());
}

TEST_F(BatchProcessorTest, InvalidMessageIsDeadLetteredAtFirstDeliveryThenTerminated) {
  const std::string payload =
      R"({"messageId":"m-bad","organizationId":"org-xyz-789","timestamp":"2026-01-28T14:30:00Z","metrics":{"a":1}})";
  Delivery& d = source.push(payload);
  d.stream_sequence = 4711;
  d.ack_token = "bad";
  run_batch();

  EXPECT_EQ(source.settlement("bad"), "term");
  const int dlq = journal.index_of(std::string("publish ") + kDlq);
  ASSERT_GE(dlq, 0);
  EXPECT_LT(dlq, journal.index_of("term bad"));  // in the DLQ before it leaves the stream

  const auto stored = publisher.on(kDlq);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].msg_id, "dlq:TELEMETRY_NORMALIZED:4711");
  const json r = json::parse(stored[0].payload);
  EXPECT_EQ(r["originalStream"], "TELEMETRY_NORMALIZED");
  EXPECT_EQ(r["originalSubject"], "telemetry.normalized.v1");
  EXPECT_EQ(r["streamSequence"], 4711);
  EXPECT_EQ(r["consumer"], "asset-processor-group");
  EXPECT_EQ(r["deliveryCount"], 1);
  EXPECT_EQ(r["errorType"], "invalid_message");
  EXPECT_EQ(r["lastError"], "deviceId: missing");
  EXPECT_EQ(r["failedAt"], "2026-01-28T14:30:01.234Z");
  EXPECT_EQ(r["payload"], json::parse(payload));

  EXPECT_EQ(store.load_calls, 0);
  EXPECT_EQ(sink.write_calls, 0);
  EXPECT_TRUE(publisher.on(kEvents).empty());
  const auto snap = metrics.snapshot();
  EXPECT_EQ(snap.messages_dead_lettered, 1u);
  EXPECT_EQ(snap.errors.at("invalid_message"), 1u);
  EXPECT_EQ(snap.messages_processed, 0u);
}

TEST_F(BatchProcessorTest, NonJsonPayloadIsDeadLetteredAsBase64) {
  source.push(std::string("\xff\xfe not json", 11));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "term");
  const auto dl = dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["errorType"], "invalid_message");
  EXPECT_FALSE(dl[0].contains("payload"));
  EXPECT_EQ(dl[0]["payloadBase64"], base64_encode(std::string("\xff\xfe not json", 11)));
}

TEST_F(BatchProcessorTest, MixedBatchSettlesEachMessageOnItsOwn) {
  store.sets[DeviceKey{"org-xyz-789", "device-2"}] = LinkSet{{seed_links().links[1]}};
  source.push(kSeedMessage);                                                           // t1
  source.push(message("m-bad", R"({"a":1})", "not a time"));                           // t2
  source.push(message("m-lonely", kSeedMetrics, "2026-01-28T14:30:00Z", "device-9"));  // t3
  source.push(message("m-dev2", R"({"temperature":71})", "2026-01-28T14:30:00Z",       // t4
                      "device-2"));
  source.push(message("m-seed-2", kSeedMetrics, "2026-01-28T14:30:00Z"));  // t5
  run_batch();

  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(source.settlement("t2"), "term");
  EXPECT_EQ(source.settlement("t3"), "ack");
  EXPECT_EQ(source.settlement("t4"), "ack");
  EXPECT_EQ(source.settlement("t5"), "ack");

  // One round trip per tier for the batch's three distinct devices, one transaction.
  ASSERT_EQ(store.load_calls, 1);
  EXPECT_EQ(store.loaded_keys[0].size(), 3u);
  EXPECT_EQ(sink.write_calls, 1);
  EXPECT_EQ(sink.batch_sizes[0], 3u);

  const auto dl = dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["streamSequence"], 2);
  EXPECT_EQ(dl[0]["lastError"], "timestamp: not RFC 3339");
  EXPECT_EQ(publisher.on(kEvents).size(), 5u);                                    // 2 + 1 + 2
  EXPECT_EQ(event_for("m-dev2", "asset-pump-b", "device-2")["healthScore"], 90);  // > 70: -10
  EXPECT_EQ(sink.history.size(), 11u);
}

TEST_F(BatchProcessorTest, LinkStoreOutageWaitsWithoutSpendingDeliveries) {
  store.failures.fail_next(6, Status::unavailable("db_unavailable", "connection refused"));
  source.push(kSeedMessage, /*delivery_count=*/3);  // even on its last delivery
  run_batch();

  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_TRUE(source.nak_delays.empty());
  EXPECT_TRUE(publisher.on(kDlq).empty());
  EXPECT_EQ(publisher.on(kEvents).size(), 2u);
  EXPECT_EQ(store.load_calls, 7);

  // Backoff doubles up to its cap; the message was kept alive while waiting.
  EXPECT_EQ(sleeps,
            (std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400),
                                       milliseconds(800), milliseconds(800), milliseconds(800)}));
  EXPECT_GE(source.in_progress_of("t1"), 2);
  EXPECT_LT(journal.index_of("in_progress t1"), journal.index_of("ack t1"));
  EXPECT_EQ(healthy_while_sleeping, std::vector<bool>(6, false));
  EXPECT_TRUE(processor().healthy());
  EXPECT_EQ(metrics.snapshot().errors.at("db_unavailable"), 6u);
}

TEST_F(BatchProcessorTest, ShortOutageSendsNoKeepalive) {
  store.failures.fail_next(2, Status::unavailable("db_unavailable", "connection refused"));
  source.push(kSeedMessage);
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(source.in_progress_of("t1"), 0);  // 300 ms < keepalive
}

TEST_F(BatchProcessorTest, OutageKeepsEveryMessageInHandAlive) {
  // Messages whose fate is already decided (dead letter, nothing to write) wait for the batch
  // too: if they are not kept alive, AckWait expires and they are redelivered elsewhere.
  sink.failures.fail_next(6, Status::unavailable("db_unavailable", "connection refused"));
  source.push(kSeedMessage);                                                           // t1
  source.push("{not json");                                                            // t2
  source.push(message("m-lonely", kSeedMetrics, "2026-01-28T14:30:00Z", "device-9"));  // t3
  run_batch();

  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(source.settlement("t2"), "term");
  EXPECT_EQ(source.settlement("t3"), "ack");
  for (const char* token : {"t1", "t2", "t3"}) {
    EXPECT_GE(source.in_progress_of(token), 2) << token;
  }
  EXPECT_EQ(sink.history.size(), 5u);
}

TEST_F(BatchProcessorTest, OutageKeepsMessagesTheServerAlreadySentAlive) {
  // The batch requested ahead arrives while the batch in hand waits for the database: it is not
  // in hand yet, but its AckWait runs all the same.
  sink.failures.fail_next(6, Status::unavailable("db_unavailable", "connection refused"));
  source.push(kSeedMessage);  // t1, in hand
  auto batch = source.take_all();
  source.push(message("m-ahead", kSeedMetrics));  // t2, sent by the server, not yet fetched
  processor().process(batch, clock.now());

  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_GE(source.in_progress_of("t2"), 2);
  EXPECT_EQ(source.settlement("t2"), "");  // still the next fetch's to process
  EXPECT_EQ(source.queued(), 1u);
}

TEST_F(BatchProcessorTest, KeepaliveCountsTimeSpentInTheFailingCalls) {
  // A connect timeout makes each failing call slow; the keepalive interval is wall time, not
  // the sum of the backoff sleeps.
  sink.failures.fail_next(4, Status::unavailable("db_unavailable", "connect timeout"));
  settings.keepalive = milliseconds(3000);
  sink.on_write = [this] { clock.advance(seconds(2)); };
  source.push(kSeedMessage);
  run_batch();
  // 4 failures x (2 s call + backoff) is well past two keepalive intervals of 3 s, though the
  // backoff sleeps alone (1.5 s) are not.
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_GE(source.in_progress_of("t1"), 2);
}

TEST_F(BatchProcessorTest, RetryableSinkFailureNaksThenDeadLettersOnTheLastDelivery) {
  sink.failures.fail_next(1000, Status::retryable("db_write_failed", "deadlock detected"));
  source.push(kSeedMessage, 1);
  run_batch();
  EXPECT_EQ(sink.write_calls, settings.retry_attempts);
  EXPECT_EQ(sleeps, (std::vector<milliseconds>{milliseconds(100), milliseconds(200)}));
  EXPECT_EQ(source.settlement("t1"), "nak");
  EXPECT_EQ(source.nak_delays.at("t1"), milliseconds(2000));
  EXPECT_TRUE(publisher.stored.empty());

  source.push(kSeedMessage, 2);
  run_batch();
  EXPECT_EQ(source.settlement("t2"), "nak");
  EXPECT_EQ(source.nak_delays.at("t2"), milliseconds(4000));  // grows with the delivery count
  EXPECT_TRUE(publisher.stored.empty());

  Delivery& last = source.push(kSeedMessage, 3);
  last.stream_sequence = 77;
  last.ack_token = "last";
  run_batch();
  EXPECT_EQ(source.settlement("last"), "term");
  const auto dl = dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["deliveryCount"], 3);
  EXPECT_EQ(dl[0]["streamSequence"], 77);
  EXPECT_EQ(dl[0]["errorType"], "db_write_failed");
  EXPECT_EQ(dl[0]["lastError"], "deadlock detected");
  EXPECT_EQ(dl[0]["payload"], json::parse(kSeedMessage));
  EXPECT_TRUE(publisher.on(kEvents).empty());
  EXPECT_TRUE(sink.history.empty());
}

TEST_F(BatchProcessorTest, RetryableSinkFailureThatClearsWithinRetriesIsAcked) {
  sink.failures.fail_next(2, Status::retryable("db_write_failed", "serialization failure"));
  source.push(kSeedMessage);
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(sink.write_calls, 3);
  EXPECT_EQ(sink.history.size(), 5u);
}

TEST_F(BatchProcessorTest, PermanentSinkFailureIsolatesTheBadMessage) {
  for (int i = 1; i <= 5; ++i) {
    source.push(message(fmt::format("m{}", i), kSeedMetrics));
  }
  sink.poison["m3"] = Status::permanent("db_rejected", "value out of range for type numeric");
  run_batch();

  for (const char* token : {"t1", "t2", "t4", "t5"}) {
    EXPECT_EQ(source.settlement(token), "ack") << token;
  }
  EXPECT_EQ(source.settlement("t3"), "term");
  const auto dl = dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["streamSequence"], 3);
  EXPECT_EQ(dl[0]["errorType"], "db_rejected");
  EXPECT_EQ(dl[0]["lastError"], "value out of range for type numeric");

  // The good ones committed exactly once; nothing of the bad one.
  for (const char* id : {"m1", "m2", "m4", "m5"}) {
    EXPECT_EQ(sink.rows_of(id).size(), 5u) << id;
    EXPECT_FALSE(event_for(id, "asset-pump-a").is_null()) << id;
  }
  EXPECT_TRUE(sink.rows_of("m3").empty());
  EXPECT_TRUE(event_for("m3", "asset-pump-a").is_null());
  EXPECT_EQ(sink.history.size(), 20u);
  // A permanent error is not retried as such: the batch is split, about log2(n) levels deep.
  EXPECT_LE(sink.write_calls, 5);
  EXPECT_TRUE(sleeps.empty());
}

TEST_F(BatchProcessorTest, PublishFailingTemporarilyIsAckedAfterSuccessWithoutCopies) {
  publisher.failures.fail_next(2, Status::unavailable("publish_timeout", "no PubAck in time"));
  source.push(kSeedMessage);
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(publisher.calls, 3);
  EXPECT_EQ(publisher.on(kEvents).size(), 2u);
  EXPECT_EQ(journal.last_index_of(std::string("publish ") + kEvents) + 1,
            journal.index_of("ack t1"));
  EXPECT_EQ(sink.write_calls, 1);  // the write is not repeated
  EXPECT_EQ(sink.history.size(), 5u);
}

TEST_F(BatchProcessorTest, PublishRetrySendsOnlyWhatFailed) {
  publisher.flaky_msg_id[event_id("uuid-12345", "asset-pump-b")].fail_next(
      1, Status::retryable("publish_failed", "stream busy"));
  source.push(kSeedMessage);
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(publisher.attempts.size(), 3u);  // A, B, then B alone
  EXPECT_EQ(publisher.attempts[2].msg_id, event_id("uuid-12345", "asset-pump-b"));
  EXPECT_EQ(publisher.on(kEvents).size(), 2u);
  EXPECT_EQ(publisher.duplicates_dropped, 0);
}

TEST_F(BatchProcessorTest, PublishFailureOfOneMessageDoesNotHoldBackTheOthers) {
  source.push(message("m1", kSeedMetrics));
  source.push(message("m2", kSeedMetrics));
  publisher.flaky_msg_id[event_id("m2", "asset-pump-a")].fail_next(
      1000, Status::retryable("publish_failed", "stream busy"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(source.settlement("t2"), "nak");
  EXPECT_FALSE(event_for("m1", "asset-pump-a").is_null());
  EXPECT_FALSE(event_for("m1", "asset-pump-b").is_null());
  EXPECT_TRUE(event_for("m2", "asset-pump-a").is_null());
  EXPECT_EQ(metrics.snapshot().messages_processed, 1u);
}

TEST_F(BatchProcessorTest, PublishFailureNaksThenRedeliveryRepublishesTheSameEvents) {
  publisher.failures.fail_next(settings.retry_attempts,
                               Status::retryable("publish_failed", "stream busy"));
  source.push(kSeedMessage);
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "nak");
  EXPECT_EQ(sink.history.size(), 5u);  // committed before publishing
  EXPECT_TRUE(publisher.on(kEvents).empty());

  source.push(kSeedMessage, 2);
  run_batch();
  EXPECT_EQ(source.settlement("t2"), "ack");
  EXPECT_EQ(sink.history.size(), 5u);  // the redelivery is a duplicate: no new rows
  ASSERT_EQ(publisher.on(kEvents).size(), 2u);
  // previousHealthScore is the one recorded at the first write, not the score it produced.
  EXPECT_EQ(event_for("uuid-12345", "asset-pump-b")["previousHealthScore"], 92);
  EXPECT_TRUE(event_for("uuid-12345", "asset-pump-a")["previousHealthScore"].is_null());
}

TEST_F(BatchProcessorTest, PermanentPublishRefusalDeadLettersTheMessage) {
  publisher.refuse_msg_id[event_id("uuid-12345", "asset-pump-b")] =
      Status::permanent("publish_too_large", "1048577 bytes exceed the server's max_payload");
  source.push(kSeedMessage);
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "term");
  const auto dl = dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["errorType"], "publish_too_large");
}

TEST_F(BatchProcessorTest, DeadLetterQueueRefusingTheRecordKeepsTheMessageOnTheStream) {
  publisher.refuse_subject[kDlq] = Status::permanent("publish_failed", "no stream for subject");
  source.push("{not json");
  run_batch();
  // Not terminated: that would lose the message.
  EXPECT_EQ(source.settlement("t1"), "nak");
  EXPECT_EQ(metrics.snapshot().messages_dead_lettered, 0u);
}

TEST_F(BatchProcessorTest, DuplicateMessageIdWritesOnceAndRepublishesTheSameEvents) {
  source.push(kSeedMessage);  // t1
  source.push(kSeedMessage);  // t2: the same messageId in the same batch
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(source.settlement("t2"), "ack");
  EXPECT_EQ(sink.history.size(), 5u);
  EXPECT_EQ(sink.processed.size(), 1u);
  EXPECT_EQ(publisher.on(kEvents).size(), 2u);
  EXPECT_EQ(publisher.attempts.size(), 4u);
  EXPECT_EQ(publisher.duplicates_dropped, 2);
  // The copies carried the same ids and the same previousHealthScore.
  EXPECT_EQ(json::parse(publisher.attempts[1].payload)["previousHealthScore"], 92);
  EXPECT_EQ(json::parse(publisher.attempts[3].payload)["previousHealthScore"], 92);
  EXPECT_EQ(publisher.attempts[3].msg_id, publisher.attempts[1].msg_id);

  source.push(kSeedMessage);  // t3: a later batch
  run_batch();
  EXPECT_EQ(source.settlement("t3"), "ack");
  EXPECT_EQ(sink.history.size(), 5u);
  EXPECT_EQ(publisher.on(kEvents).size(), 2u);
  ASSERT_EQ(publisher.attempts.size(), 6u);
  EXPECT_EQ(json::parse(publisher.attempts[5].payload)["previousHealthScore"], 92);
  EXPECT_EQ(sink.assets["asset-pump-b"].health_score, 100);
  EXPECT_EQ(metrics.snapshot().messages_duplicate, 2u);
}

// Health states: a change is published once on the state subject, after the events
// of its message; a redelivery republishes the recorded change under the same id (the stream
// drops the copy) and counts nothing; a late message moves no state.
TEST_F(BatchProcessorTest, StateChangesArePublishedOnceInMeasurementOrder) {
  const std::string kStates = settings.state_subject;
  auto states = [&] {
    std::vector<json> out;
    for (const auto& m : publisher.on(kStates)) out.push_back(json::parse(m.payload));
    return out;
  };
  // 14:30: a hot motor, both pumps' score 70: good to warning, each.
  const std::string hot = message("m-hot", R"({"temperature":85,"voltage":12.3,"current":2.5})",
                                  "2026-01-28T14:30:00Z");
  source.push(hot);
  run_batch();
  auto published = states();
  ASSERT_EQ(published.size(), 2u);
  for (const auto& e : published) {
    EXPECT_EQ(e["from"], "good");
    EXPECT_EQ(e["to"], "warning");
    EXPECT_EQ(e["score"], 70);
    EXPECT_EQ(e["at"], "2026-01-28T14:30:00Z");
    EXPECT_EQ(e["sequence"], 1);
    EXPECT_EQ(e["organizationId"], "org-xyz-789");
    EXPECT_EQ(e["reason"][0]["metric"], "motor_temperature");
  }
  // The state changes go after their message's events.
  ASSERT_EQ(publisher.attempts.size(), 4u);
  EXPECT_EQ(publisher.attempts[2].subject, kStates);
  EXPECT_EQ(metrics.snapshot().state_changes.at("warning"), 2u);

  // Redelivered: the same changes again, under the same ids; nothing new, nothing counted.
  source.push(hot);
  run_batch();
  EXPECT_EQ(states().size(), 2u);
  ASSERT_EQ(publisher.attempts.size(), 8u);
  EXPECT_EQ(publisher.attempts[6].subject, kStates);
  EXPECT_EQ(publisher.attempts[6].msg_id, publisher.attempts[2].msg_id);
  EXPECT_EQ(publisher.attempts[6].payload, publisher.attempts[2].payload);
  EXPECT_EQ(metrics.snapshot().state_changes.at("warning"), 2u);

  // 14:20, late: a cool motor (100) that would take the pumps back to good, were it not older.
  source.push(message("m-late", kSeedMetrics, "2026-01-28T14:20:00Z"));
  run_batch();
  EXPECT_EQ(states().size(), 2u);
  // 14:30:30: cool again, and newer: back to good.
  source.push(message("m-cool", kSeedMetrics, "2026-01-28T14:30:30Z"));
  run_batch();
  published = states();
  ASSERT_EQ(published.size(), 4u);
  EXPECT_EQ(published[2]["from"], "warning");
  EXPECT_EQ(published[2]["to"], "good");
  EXPECT_EQ(published[2]["sequence"], 2);
  EXPECT_EQ(published[2]["reason"], json::array());
  EXPECT_EQ(metrics.snapshot().state_changes.at("good"), 2u);
}

// A state change whose event could not be published: the message is redelivered, its change
// is already committed, and the redelivery publishes it (nothing lost).
TEST_F(BatchProcessorTest, AStateChangeWhoseEventWasLostIsPublishedByTheRedelivery) {
  publisher.refuse_subject[settings.state_subject] =
      Status::retryable("publish_failed", "no stream answered");
  source.push(message("m-hot", R"({"temperature":85,"voltage":12.3,"current":2.5})"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "nak");
  EXPECT_TRUE(publisher.on(settings.state_subject).empty());
  publisher.refuse_subject.clear();
  source.push(message("m-hot", R"({"temperature":85,"voltage":12.3,"current":2.5})"));
  run_batch();
  EXPECT_EQ(source.settlement("t2"), "ack");
  EXPECT_EQ(publisher.on(settings.state_subject).size(), 2u);
}

TEST_F(BatchProcessorTest, OlderMessageAfterNewerKeepsTheScoreButLandsInHistory) {
  // 14:30: motor at 85 degrees, score 70.
  source.push(message("m-new", R"({"temperature":85,"voltage":12.3,"current":2.5})",
                      "2026-01-28T14:30:00Z"));
  run_batch();
  ASSERT_EQ(sink.assets["asset-pump-a"].health_score, 70);

  // 14:20 arrives late: cool motor, score 100; the newer score must stay.
  source.push(message("m-old", R"({"temperature":25.5,"voltage":12.3,"current":2.5})",
                      "2026-01-28T14:20:00Z"));
  run_batch();
  EXPECT_EQ(source.settlement("t2"), "ack");
  EXPECT_EQ(sink.assets["asset-pump-a"].health_score, 70);
  EXPECT_EQ(sink.assets["asset-pump-a"].updated_at, kAt1430);
  EXPECT_EQ(sink.rows_of("m-old").size(), 5u);
  const json old_a = event_for("m-old", "asset-pump-a");
  ASSERT_FALSE(old_a.is_null());
  EXPECT_EQ(old_a["healthScore"], 100);
  EXPECT_EQ(old_a["previousHealthScore"], 70);
  EXPECT_EQ(old_a["timestamp"], "2026-01-28T14:20:00Z");
}

TEST_F(BatchProcessorTest, OlderMessageAfterNewerInOneBatch) {
  source.push(message("m-new", R"({"temperature":85,"voltage":12.3,"current":2.5})",
                      "2026-01-28T14:30:00Z"));
  source.push(message("m-old", R"({"temperature":25.5,"voltage":12.3,"current":2.5})",
                      "2026-01-28T14:20:00Z"));
  run_batch();
  EXPECT_EQ(sink.assets["asset-pump-a"].health_score, 70);
  EXPECT_TRUE(event_for("m-new", "asset-pump-a")["previousHealthScore"].is_null());
  EXPECT_EQ(event_for("m-old", "asset-pump-a")["previousHealthScore"], 70);
  EXPECT_EQ(event_for("m-old", "asset-pump-b")["previousHealthScore"], 70);
}

TEST_F(BatchProcessorTest, StoppingDuringAnOutageNaksInsteadOfDeadLettering) {
  sink.failures.fail_next(1000, Status::unavailable("db_unavailable", "connection refused"));
  on_sleep = [this] {
    if (sleeps.size() == 3) stopping.store(true);
  };
  source.push(kSeedMessage, 3);  // the last delivery: still not the message's fault
  source.push("{not json");      // decided before the outage: dead-lettered as usual
  run_batch();
  EXPECT_EQ(sleeps.size(), 3u);
  EXPECT_EQ(source.settlement("t1"), "nak");
  EXPECT_EQ(source.settlement("t2"), "term");
  const auto dl = dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["streamSequence"], 2);
  EXPECT_TRUE(publisher.on(kEvents).empty());
  EXPECT_TRUE(sink.history.empty());
}

TEST_F(BatchProcessorTest, LinkWithoutMetricsSkipsOnlyThatAsset) {
  // No temperature: Pump B (temperature only) gets nothing; Pump A still gets power metrics.
  source.push(message("m-partial", R"({"voltage":12.3,"current":2.5})"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  const auto evs = events();
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["assetId"], "asset-pump-a");
  EXPECT_EQ(
      evs[0]["metrics"],
      ordered_json::parse(R"({"power_input":12.3,"power_current":2.5,"power_consumption":30.75})"));
  // Pump B's real score is not erased by a message that said nothing about it (SPEC D10a).
  EXPECT_EQ(sink.assets["asset-pump-b"].health_score, 92);
  EXPECT_EQ(sink.assets["asset-pump-b"].updated_at, kAt1400);
  for (const auto& r : sink.history) EXPECT_EQ(r.entity_id, "asset-pump-a");
  EXPECT_EQ(sink.history.size(), 3u);
  EXPECT_EQ(metrics.snapshot().assets_skipped_no_metrics, 1u);
}

TEST_F(BatchProcessorTest, NoAssetGetsAMetricMeansAckedWithNothingWritten) {
  source.push(message("m-pressure", R"({"pressure":101.3})"));
  run_batch();
  EXPECT_EQ(source.settlement("t1"), "ack");
  EXPECT_EQ(sink.write_calls, 0);
  EXPECT_TRUE(publisher.stored.empty());
  EXPECT_EQ(metrics.snapshot().assets_skipped_no_metrics, 2u);
}

}  // namespace
}  // namespace atw
