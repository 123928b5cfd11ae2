#include "pipeline/max_deliveries_dead_letterer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/error_types.h"
#include "domain/dead_letter.h"

namespace atw {

namespace {

constexpr size_t kAdvisoriesPerPoll = 16;

// The payload's messageId, for the log line, when the payload is a JSON object that has one.
std::string message_id_of(std::string_view payload) {
  const auto json = nlohmann::json::parse(payload, nullptr, false);
  if (!json.is_object()) return "";
  const auto id = json.find("messageId");
  return id != json.end() && id->is_string() ? id->get<std::string>() : "";
}

}  // namespace

size_t MaxDeliveriesDeadLetterer::poll(milliseconds wait) {
  auto advisories = d_.advisories.fetch(kAdvisoriesPerPoll, wait, 0, {});
  if (!advisories.ok()) return 0;
  for (const Delivery& advisory : *advisories) {
    switch (handle(advisory)) {
      case Outcome::kStored:
        (void)d_.advisories.ack(advisory);
        break;
      case Outcome::kRetry:
        (void)d_.advisories.nak(advisory, retry_delay_);
        break;
      case Outcome::kInvalid:
        (void)d_.advisories.term(advisory);
        break;
    }
  }
  if (!advisories->empty()) (void)d_.advisories.flush();
  return advisories->size();
}

MaxDeliveriesDeadLetterer::Outcome MaxDeliveriesDeadLetterer::handle(const Delivery& advisory) {
  const std::optional<MaxDeliveriesAdvisory> read = d_.read_advisory(advisory.payload);
  if (!read) {
    d_.log.error("not a MAX_DELIVERIES advisory; dropped",
                 {{"subject", advisory.subject}, {"streamSequence", advisory.stream_sequence}});
    return Outcome::kInvalid;
  }
  const auto& [stream, consumer, sequence, deliveries] = *read;

  auto stored = d_.store.get(stream, sequence);
  if (!stored.ok()) {
    d_.metrics.add_error(stored.status().type());
    d_.log.warn("cannot read a message past MAX_DELIVER yet; will retry",
                {{"streamSequence", sequence}, {"error", stored.status().message()}});
    return Outcome::kRetry;
  }
  std::string last_error = fmt::format(
      "delivered {} times and never settled: every delivery crashed or stalled a worker",
      deliveries);
  if (!stored->has_value()) {
    last_error += "; the stream no longer holds the message, so the record has no payload";
  }
  const StoredPayload original = stored->value_or(StoredPayload{});
  const DeadLetter record{stream,
                          original.subject,
                          sequence,
                          consumer,
                          deliveries,
                          last_error,
                          std::string(error_type::kMaxDeliveriesExceeded),
                          d_.clock.now(),
                          original.payload};
  const std::vector<OutboundMessage> out{
      {dlq_subject_, dead_letter_msg_id(stream, sequence), to_json(record, max_record_bytes_)}};
  const std::vector<Status> acks = d_.publisher.publish(out);
  if (acks.empty() || !acks.front().ok()) {
    const Status st = acks.empty() ? Status::unavailable(error_type::kDlqPublishFailed, "no answer")
                                   : acks.front();
    d_.metrics.add_error(error_type::kDlqPublishFailed);
    d_.log.warn("cannot store a dead-letter record yet; will retry",
                {{"streamSequence", sequence}, {"error", st.message()}});
    return Outcome::kRetry;
  }
  // A lost term only leaves the consumer's ack floor behind until its next acks.
  (void)d_.store.term(stream, consumer, sequence);
  d_.metrics.add_error(std::string(error_type::kMaxDeliveriesExceeded));
  d_.metrics.add_dead_lettered(1);
  d_.log.warn("message dead-lettered", {{"messageId", message_id_of(original.payload)},
                                        {"streamSequence", sequence},
                                        {"deliveryCount", deliveries},
                                        {"errorType", error_type::kMaxDeliveriesExceeded},
                                        {"error", last_error}});
  return Outcome::kStored;
}

}  // namespace atw
