// asset-worker dlq list | show | replay | purge, against a real worker and nats-server.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "support/servers.h"

namespace atw::testing {
namespace {

std::string run_cli(Scenario& s, std::vector<std::string> args, int* exit_code = nullptr) {
  WorkerProcess cli(s.worker_env(), std::move(args));
  const int code = cli.stop(0, std::chrono::seconds(30));
  if (exit_code) *exit_code = code;
  return read_file(cli.log_path());
}

std::string in_an_hour() {
  return format_rfc3339(Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() +
                                  3600LL * 1'000'000});
}

TEST(DlqTooling, ListReplayFailAgainReplayAndSucceed) {
  Scenario s;
  auto plant = s.load_example_plant();
  const auto message = Scenario::message(plant, s.name("future"), in_an_hour());

  // A worker that allows no future timestamps dead-letters the message.
  auto strict_env = s.worker_env();
  strict_env["MAX_FUTURE_S"] = "0";
  auto strict = std::make_unique<WorkerProcess>(strict_env);
  ASSERT_TRUE(strict->wait_ready(std::chrono::seconds(20)));
  // As a producer wrote it: its own spacing, key order and number forms, which replay keeps.
  std::string original = "  " + message.dump(1) + "\n";
  const std::string pressure = "\"pressure\": 101.3";
  ASSERT_NE(original.find(pressure), std::string::npos) << original;
  original.replace(original.find(pressure), pressure.size(), "\"pressure\": 1.0130e2");
  s.publish(std::vector<std::string>{original});
  ASSERT_TRUE(s.wait_stream_count(s.dlq_stream(), 1));

  int code = -1;
  const std::string table = run_cli(s, {"dlq", "list"}, &code);
  EXPECT_EQ(code, 0) << table;
  EXPECT_NE(table.find("invalid_message"), std::string::npos) << table;
  EXPECT_NE(table.find(plant.device), std::string::npos) << table;
  EXPECT_NE(table.find("1 dead letter(s)"), std::string::npos) << table;
  const std::string shown = run_cli(s, {"dlq", "show", "--all"}, &code);
  EXPECT_NE(shown.find("\"lastError\""), std::string::npos) << shown;
  EXPECT_NE(shown.find("payload (" + std::to_string(original.size()) + " bytes, as published):\n" +
                       original),
            std::string::npos)
      << shown;
  const std::string bytes = run_cli(s, {"dlq", "show", "--all", "--payload"}, &code);
  EXPECT_EQ(bytes, original) << "exactly the bytes, nothing else";

  // Replayed while the strict worker still runs: it fails again and returns to the DLQ.
  const std::string first = run_cli(s, {"dlq", "replay", "--all"}, &code);
  EXPECT_EQ(code, 0) << first;
  EXPECT_NE(first.find("replayed 1 dead letter(s)"), std::string::npos) << first;
  ASSERT_TRUE(s.wait_stream_count(s.input_stream(), 2));
  ASSERT_TRUE(s.wait_all_acked());
  auto dlq = s.dead_letters();
  ASSERT_EQ(dlq.size(), 1u) << "the first entry is removed, the second failure adds one";
  EXPECT_EQ(dlq[0]["payload"], message);
  EXPECT_EQ(s.stream(s.input_stream())[1].data, original) << "replayed byte for byte";
  EXPECT_EQ(strict->stop(SIGTERM), 0);

  // Replayed to a worker that accepts it: processed, and the DLQ is empty.
  auto lenient_env = s.worker_env();
  lenient_env["MAX_FUTURE_S"] = "86400";
  WorkerProcess lenient(lenient_env);
  ASSERT_TRUE(lenient.wait_ready(std::chrono::seconds(20)));
  const std::string second =
      run_cli(s, {"dlq", "replay", "--error-type", "invalid_message"}, &code);
  EXPECT_EQ(code, 0) << second;
  ASSERT_TRUE(s.wait_stream_count(s.output_stream(), 2));
  ASSERT_TRUE(s.wait_all_acked());
  EXPECT_TRUE(s.dead_letters().empty());
  EXPECT_EQ(s.events().size(), 2u);

  // Safe to run twice: nothing left to replay.
  const std::string third = run_cli(s, {"dlq", "replay", "--all"}, &code);
  EXPECT_EQ(code, 0) << third;
  EXPECT_NE(third.find("replayed 0 dead letter(s)"), std::string::npos) << third;
  EXPECT_EQ(s.stream(s.input_stream()).size(), 3u);
}

TEST(DlqTooling, PurgeRemovesOnlyTheChosenEntries) {
  Scenario s;
  auto plant = s.load_example_plant();
  auto worker = s.start_worker();
  s.publish(std::vector<std::string>{"{not json", "[1,2]", "{\"messageId\": 5}"});
  ASSERT_TRUE(s.wait_stream_count(s.dlq_stream(), 3));
  const auto before = s.stream(s.dlq_stream());
  ASSERT_EQ(before.size(), 3u);
  int code = -1;
  run_cli(s, {"dlq", "purge", std::to_string(before[1].sequence)}, &code);
  EXPECT_EQ(code, 0);
  auto after = s.stream(s.dlq_stream());
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].sequence, before[0].sequence);
  EXPECT_EQ(after[1].sequence, before[2].sequence);
  run_cli(s, {"dlq", "purge"}, &code);
  EXPECT_EQ(code, 2) << "purge without a choice is refused";
  run_cli(s, {"dlq", "purge", "--all"}, &code);
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(s.stream(s.dlq_stream()).empty());
}

}  // namespace
}  // namespace atw::testing
