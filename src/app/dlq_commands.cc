// asset-worker dlq list | show | replay | purge: the dead-letter stream as an operator sees it.

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_topology.h"
#include "adapters/nats/nats_connection.h"
#include "adapters/nats/stream_reader.h"
#include "app/commands.h"
#include "domain/dead_letter.h"

namespace atw {

namespace {

struct DeadLetterEntry {
  StoredMessage stored;
  nlohmann::json record;  // the DLQ record; discarded if the message is not one
  std::string payload;    // the original bytes
};

// The original bytes, exactly (SPEC D14): embedded, base64, or read back from the input stream
// when the record had to leave them out.
std::string original_payload(NatsConnection& nc, std::string_view stored,
                             const nlohmann::json& record) {
  if (!record.is_object()) return {};
  if (auto embedded = embedded_payload(stored)) return std::string(*embedded);
  if (record.contains("payloadBase64") && record["payloadBase64"].is_string()) {
    return base64_decode(record["payloadBase64"].get<std::string>());
  }
  // Too large for the DLQ: the original is read back from its stream while it is retained.
  if (record.value("payloadOmitted", false) && record.contains("originalStream") &&
      record["originalStream"].is_string() && record.contains("streamSequence") &&
      record["streamSequence"].is_number_unsigned()) {
    auto original = read_message(nc, record["originalStream"].get<std::string>(),
                                 record["streamSequence"].get<uint64_t>());
    if (original.ok() && original->has_value()) return std::move((*original)->data);
  }
  return {};
}

std::string field(const nlohmann::json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) return "";
  const auto& v = j[name];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string clip(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

bool selected(const DeadLetterEntry& e, const DlqSelection& sel) {
  if (sel.all) return true;
  if (!sel.sequences.empty() && std::find(sel.sequences.begin(), sel.sequences.end(),
                                          e.stored.sequence) != sel.sequences.end()) {
    return true;
  }
  return !sel.error_type.empty() && field(e.record, "errorType") == sel.error_type;
}

}  // namespace

int run_dlq(const Config& c, const std::string& action, const DlqSelection& sel) {
  Logger log(LogLevel::kWarn, stderr, c.worker_id);
  auto nc = NatsConnection::connect(c.nats("asset-worker dlq"), log, std::chrono::seconds(10));
  if (!nc.ok()) {
    print_error(nc.status().message());
    return 1;
  }
  auto stream = find_stream_for_subject(**nc, c.dlq_subject);
  if (!stream.ok() || stream->empty()) {
    fmt::print(stderr, "asset-worker: no stream captures {}\n", c.dlq_subject);
    return 1;
  }
  auto stored = read_stream(**nc, *stream, 1, 10'000'000);
  if (!stored.ok()) {
    print_error(stored.status().message());
    return 1;
  }
  std::vector<DeadLetterEntry> entries;
  for (auto& m : *stored) {
    auto record = nlohmann::json::parse(m.data, nullptr, false);
    DeadLetterEntry e{std::move(m), std::move(record), {}};
    e.payload = original_payload(**nc, e.stored.data, e.record);
    entries.push_back(std::move(e));
  }

  if (action == "list") {
    fmt::print("{:>8}  {:<24}  {:<18}  {:<40}  {:<16}  {}\n", "SEQ", "FAILED AT", "ERROR TYPE",
               "ERROR", "ORGANIZATION", "DEVICE");
    for (const auto& e : entries) {
      const auto payload = nlohmann::json::parse(e.payload, nullptr, false);
      fmt::print("{:>8}  {:<24}  {:<18}  {:<40}  {:<16}  {}\n", e.stored.sequence,
                 field(e.record, "failedAt"), field(e.record, "errorType"),
                 clip(field(e.record, "lastError"), 40), clip(field(payload, "organizationId"), 16),
                 field(payload, "deviceId"));
    }
    fmt::print("{} dead letter(s) in {}\n", entries.size(), *stream);
    return 0;
  }

  if (action == "show") {
    // The record's fields, then the original payload's bytes exactly as they were published:
    // `--payload` prints only those, for a file or a pipe.
    for (const auto& e : entries) {
      if (!selected(e, sel)) continue;
      if (sel.payload_only) {
        std::fwrite(e.payload.data(), 1, e.payload.size(), stdout);
        continue;
      }
      if (e.record.is_discarded()) {
        fmt::print("{}\n", e.stored.data);
        continue;
      }
      nlohmann::ordered_json fields = nlohmann::ordered_json::object();
      fields["dlqSequence"] = e.stored.sequence;
      for (const auto& [name, value] : e.record.items()) {
        if (name != "payload" && name != "payloadBase64") fields[name] = value;
      }
      fmt::print("{}\npayload ({} bytes, as published):\n", fields.dump(2), e.payload.size());
      std::fwrite(e.payload.data(), 1, e.payload.size(), stdout);
      fmt::print("\n");
    }
    return 0;
  }

  if (action == "purge") {
    size_t removed = 0;
    for (const auto& e : entries) {
      if (!selected(e, sel)) continue;
      if (Status st = delete_stream_message(**nc, *stream, e.stored.sequence); !st.ok()) {
        print_error(fmt::format("seq {}: {}", e.stored.sequence, st.message()));
        return 1;
      }
      ++removed;
    }
    fmt::print("purged {} dead letter(s)\n", removed);
    return 0;
  }

  // replay: republish each chosen payload to the input subject; remove the entry only once the
  // stream has acknowledged the copy. Nats-Msg-Id "replay:<stream>:<seq>" makes a second run
  // (or a crash between publish and removal) add no second copy within the duplicate window,
  // and the worker's idempotency absorbs one after it.
  auto publisher = JetStreamPublisher::create(**nc, std::chrono::seconds(10));
  if (!publisher.ok()) {
    print_error(publisher.status().message());
    return 1;
  }
  std::vector<const DeadLetterEntry*> chosen;
  for (const auto& e : entries) {
    if (selected(e, sel)) chosen.push_back(&e);
  }
  size_t done = 0, failed = 0;
  for (const DeadLetterEntry* e : chosen) {
    if (e->payload.empty()) {
      ++failed;
      fmt::print(stderr, "seq {}: no original payload in the record; left in place\n",
                 e->stored.sequence);
      continue;
    }
    const OutboundMessage msg{c.input_subject,
                              fmt::format("replay:{}:{}", *stream, e->stored.sequence), e->payload};
    const auto statuses = (*publisher)->publish(std::span(&msg, 1));
    if (!statuses.front().ok()) {
      ++failed;
      fmt::print(stderr, "seq {}: {}; left in place\n", e->stored.sequence,
                 redact_secrets(statuses.front().message()));
      continue;
    }
    if (Status st = delete_stream_message(**nc, *stream, e->stored.sequence); !st.ok()) {
      fmt::print(stderr, "seq {}: replayed, but not removed: {}\n", e->stored.sequence,
                 redact_secrets(st.message()));
    }
    ++done;
    fmt::print("replayed {}/{} (seq {})\n", done, chosen.size(), e->stored.sequence);
  }
  fmt::print("replayed {} dead letter(s), {} left in place\n", done, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace atw
