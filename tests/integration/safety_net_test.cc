// The DLQ's safety net against a real worker and nats-server (SPEC D14): a
// message whose every delivery kills the worker reaches the DLQ through the server's
// MAX_DELIVERIES advisory, and the messages that shared its batches are processed exactly once.
// The crash comes from tests/support/fault_preload.cc, loaded into the unmodified binary.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "support/servers.h"

namespace atw::testing {
namespace {

using namespace std::chrono_literals;

std::string at_second(int i) {
  return fmt::format("2026-01-28T14:{:02}:{:02}Z", 30 + i / 60, i % 60);
}

enum class Fault { kCrash, kHang };

// Publishes 120 good messages and, in their middle, one from a device whose every write crashes
// (or hangs) the worker; runs the worker as Kubernetes would (restarted when it dies, killed and
// restarted when /healthz fails) until the bad message is in the DLQ; checks every message.
void crash_or_hang_every_delivery(Fault fault) {
  Scenario s;
  const auto good = s.load_example_plant("org", "dev");
  const auto bad = s.load_example_plant("org2", "crash");

  constexpr int kGood = 120;
  std::vector<std::string> payloads;
  std::set<std::string> good_ids;
  for (int i = 0; i < kGood; ++i) {
    if (i == kGood / 2) {
      payloads.push_back(Scenario::message(bad, s.name("m-crash"), at_second(i)).dump());
    }
    const std::string id = s.name(fmt::format("m-{}", i));
    good_ids.insert(id);
    payloads.push_back(Scenario::message(good, id, at_second(i)).dump());
  }
  s.publish(payloads);
  const uint64_t crash_sequence = kGood / 2 + 1;

  auto env = s.worker_env();
  env["ACK_WAIT_S"] = "5";
  env["MAX_DELIVER"] = "3";
  env["BATCH_SIZE"] = "40";
  env["STALL_TIMEOUT_S"] = "5";
  env["LD_PRELOAD"] = ATW_FAULT_PRELOAD;
  env[fault == Fault::kCrash ? "ATW_FAULT_CRASH_MARKER" : "ATW_FAULT_HANG_MARKER"] = bad.device;

  int crashes = 0;
  auto worker = std::make_unique<WorkerProcess>(env);
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  std::vector<nlohmann::json> dlq;
  while (std::chrono::steady_clock::now() < deadline) {
    if (worker->exited()) {
      ++crashes;
      worker = std::make_unique<WorkerProcess>(env);
    } else if (worker->http_status("/healthz") == 503) {  // the liveness probe fails
      worker->stop(SIGKILL);
      ++crashes;
      worker = std::make_unique<WorkerProcess>(env);
    }
    dlq = s.dead_letters();
    if (!dlq.empty() && s.wait_all_acked(100ms)) break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(s.wait_all_acked(20s)) << "log: " << worker->log_path();
  EXPECT_EQ(worker->stop(SIGTERM), 0);

  // Each delivery of the bad message took the worker down: 3 deliveries, 3 restarts.
  EXPECT_EQ(crashes, 3);
  dlq = s.dead_letters();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0]["errorType"], "max_deliveries_exceeded");
  EXPECT_EQ(dlq[0]["streamSequence"], crash_sequence);
  EXPECT_EQ(dlq[0]["deliveryCount"], 3);
  EXPECT_EQ(dlq[0]["originalStream"], s.input_stream());
  EXPECT_EQ(dlq[0]["payload"]["messageId"], s.name("m-crash"));

  // Every other message exactly once: its processed row, no duplicate history row, its two
  // events with unique ids; none for the crashing one.
  const auto processed =
      s.sql().query("SELECT message_id FROM processed_messages WHERE organization_id IN ($1, $2)",
                    {good.org, bad.org});
  std::set<std::string> processed_ids;
  for (const auto& row : processed) processed_ids.insert(*row[0]);
  EXPECT_EQ(processed_ids, good_ids);
  EXPECT_EQ(s.sql().scalar("SELECT count(*) FROM (SELECT 1 FROM telemetry_history"
                           " WHERE entity_id IN ($1, $2, $3, $4)"
                           " GROUP BY entity_id, metric_key, \"timestamp\" HAVING count(*) > 1) d",
                           {good.pump_a, good.pump_b, bad.pump_a, bad.pump_b}),
            "0");
  EXPECT_EQ(s.sql().scalar("SELECT count(*) FROM telemetry_history WHERE entity_id IN ($1, $2)",
                           {bad.pump_a, bad.pump_b}),
            "0");
  std::set<std::string> event_ids;
  for (const auto& e : s.events()) {
    EXPECT_NE(e["deviceId"], bad.device);
    event_ids.insert(e["messageId"].get<std::string>());
  }
  EXPECT_EQ(event_ids.size(), 2u * kGood);
  EXPECT_EQ(s.events().size(), 2u * kGood);
}

TEST(SafetyNet, AMessageThatCrashesEveryDeliveryReachesTheDlqAndNothingElseIsLost) {
  crash_or_hang_every_delivery(Fault::kCrash);
}

TEST(SafetyNet, AMessageThatHangsEveryDeliveryReachesTheDlqAndNothingElseIsLost) {
  crash_or_hang_every_delivery(Fault::kHang);
}

}  // namespace
}  // namespace atw::testing
