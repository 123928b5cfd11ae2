#include "adapters/nats/max_deliveries_advisory.h"

#include <nlohmann/json.hpp>

namespace atw {

std::optional<MaxDeliveriesAdvisory> read_max_deliveries_advisory(std::string_view payload) {
  const auto json = nlohmann::json::parse(payload, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  const auto stream = json.find("stream");
  const auto sequence = json.find("stream_seq");
  if (stream == json.end() || !stream->is_string() || sequence == json.end() ||
      !sequence->is_number_unsigned()) {
    return std::nullopt;
  }
  MaxDeliveriesAdvisory a;
  a.stream = stream->get<std::string>();
  a.stream_sequence = sequence->get<uint64_t>();
  if (const auto consumer = json.find("consumer");
      consumer != json.end() && consumer->is_string()) {
    a.consumer = consumer->get<std::string>();
  }
  if (const auto deliveries = json.find("deliveries");
      deliveries != json.end() && deliveries->is_number_unsigned()) {
    a.deliveries = deliveries->get<uint64_t>();
  }
  return a;
}

}  // namespace atw
