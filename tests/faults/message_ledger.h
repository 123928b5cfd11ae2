#pragma once
// What a fault scenario sent, what it expects of each message, and what became of each one.
//
// Every message sent is, in the end, exactly one of: fully processed (its history rows once
// each, its processed_messages row, one event per linked asset with the right id and content,
// nothing in the DLQ), acked with nothing written (a device without assets), or in the DLQ with
// a reason (one record per copy published, nothing written). Anything else is lost; a row, an
// event or a dead letter that appears twice is a duplicate. The tally reads the outcome from
// the servers themselves: PostgreSQL's tables and the streams' stored messages.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/servers.h"

namespace atw::testing {

struct ExpectedAsset {
  std::string asset_id;
  std::map<std::string, double> metrics;  // one history row per metric, and the event's metrics
  double health_score = 100;
  // Checked on the event when set: the score the asset had before this message (null: none).
  std::optional<std::optional<double>> previous_health_score;
};

struct SentMessage {
  enum class Expect { kProcessed, kNoLinks, kDeadLetter };
  std::string label;  // names the message in problem reports
  Expect expect = Expect::kProcessed;
  std::string payload;
  int copies = 0;  // times it has been published

  // kProcessed and kNoLinks: who sent it and when (whole seconds, UTC).
  std::string message_id;
  std::string organization_id;
  std::string device_id;
  int64_t timestamp_s = 0;
  std::vector<ExpectedAsset> assets;

  // kDeadLetter: what the record's lastError must mention, and whether the message must have
  // gone to the DLQ at its first delivery (a permanent error).
  std::string reason;
  bool first_delivery = true;
  // Whether the record's copy of the payload is compared with what was sent (not for payloads
  // nested too deep for a recursive comparison).
  bool compare_payload = true;
};

class MessageLedger {
 public:
  size_t add(SentMessage m);
  SentMessage& at(size_t i) { return messages_.at(i); }
  const std::vector<SentMessage>& messages() const { return messages_; }
  size_t size() const { return messages_.size(); }

  // Publishes each chosen message once more (without Nats-Msg-Id, so every copy is stored).
  void publish(Scenario& s, const std::vector<size_t>& which);
  void publish_all(Scenario& s);

  uint64_t sent() const;
  // What the output stream and the DLQ stream hold once everything is accounted for.
  uint64_t expected_events() const;
  uint64_t expected_dead_letters() const;
  // Events per message sent, when every message is sent once and expects the same number
  // (else 0).
  uint64_t events_per_message() const;

 private:
  std::vector<SentMessage> messages_;
};

struct Tally {
  uint64_t sent = 0;
  uint64_t processed = 0;  // copies of messages fully processed (or acked with nothing to write)
  uint64_t dead_lettered = 0;
  uint64_t state_changes = 0;  // distinct health-state changes published
  uint64_t lost = 0;
  uint64_t duplicated = 0;  // messages with a row, an event or a dead letter more than once
  std::vector<std::string> problems;  // everything that is not as expected, one line each
};

// Reads the tables and streams of the scenario and compares them with the ledger.
Tally account(Scenario& s, const MessageLedger& ledger);

// The seed's health score for the metrics of one asset (the test's own oracle).
double seed_health_score(const std::map<std::string, double>& metrics);

}  // namespace atw::testing
