#pragma once
// The asset telemetry event (seed step 7, SPEC D13) and the history rows (seed step 6b).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/asset_type.h"
#include "domain/metrics.h"
#include "domain/timestamp.h"

namespace atw {

inline constexpr std::string_view kProcessorVersion = "asset-worker-v1";

struct AssetEvent {
  std::string message_id;  // asset_event_id(the source message's identity, assetId)
  std::string asset_id;
  std::string device_id;
  std::string organization_id;
  Timestamp timestamp;
  MetricSet metrics;
  double health_score = 0;
  std::optional<double> previous_health_score;
  Timestamp processed_at;
  std::vector<HealthDetail> health_details;  // the rules that took points
};

// UUID v5 in the worker's own namespace (6f1c2a52-5b0e-4c59-9d0a-6b7a0e3c1f20) of the name
// `{organizationId}\n{deviceId}\n{messageId}\n{assetId}`: the source message's identity (SPEC
// D11; its ids hold no control characters, so the name is unambiguous) and the asset. The same
// message and asset always give the same id, so a redelivery republishes under the same
// Nats-Msg-Id and JetStream drops the copy; two tenants or devices that reuse a messageId get
// different ids.
std::string asset_event_id(std::string_view organization_id, std::string_view device_id,
                           std::string_view message_id, std::string_view asset_id);

// The event's JSON: the seed's fields, exactly: messageId, assetId, deviceId, organizationId,
// timestamp, metrics, healthScore, previousHealthScore, processedAt, processorVersion; then
// healthDetails, the rules that took points ([] when none did: a score of 100), each
// {metric, value, op, threshold, penalty}; and quality, the metrics whose quality is not good
// ({"motor_temperature": "bad"}), only when there is one.
//
// The events of a batch share their processedAt, and those of one message their timestamp: an
// encoder formats each instant once and reuses the text while the instant repeats.
class EventEncoder {
 public:
  std::string encode(const AssetEvent& event);

 private:
  struct InstantText {
    std::optional<Timestamp> at;
    std::string text;
  };
  static const std::string& text_of(InstantText& cache, Timestamp t,
                                    std::string (*format)(Timestamp));

  InstantText timestamp_;
  InstantText processed_at_;
};

// One event's JSON (an EventEncoder's, for a single event).
std::string to_json(const AssetEvent& event);

// A change of an asset's health state (domain/health_state.h), as published on the
// state subject.
struct StateChange {
  std::string asset_id;
  std::string organization_id;
  std::string device_id;  // the message that made it
  std::string message_id;
  std::string from;
  std::string to;
  double score = 0;
  Timestamp at;                      // the message's measurement time
  int64_t sequence = 0;              // the asset's state changes so far, this one included
  std::vector<HealthDetail> reason;  // the rules that took points
};

// UUID v5 in the event namespace of `{organizationId}\n{deviceId}\n{messageId}\n{assetId}\nstate`:
// one message changes an asset's state at most once, so a change always has the same id, and a
// republished one is dropped by the stream's duplicate window (and by consumers that keep ids).
std::string state_change_id(const StateChange& change);

// {"id", "assetId", "organizationId", "from", "to", "score", "at", "sequence", "reason": [{metric,
// value, op, threshold, penalty}], "deviceId", "messageId", "processorVersion"}. No processing
// time: the same change always has the same text.
std::string to_json(const StateChange& change);

}  // namespace atw
