#include "pipeline/state_events.h"

#include <nlohmann/json.hpp>

#include "domain/event.h"

namespace atw {

WriteOutcome::StateEvent state_event_of(const MessageResult& m, const AssetResult& a,
                                        const StateTransition& t) {
  const StateChange change{
      a.asset_id, m.organization_id, m.device_id, m.message_id, t.from,
      t.to,       a.health_score,    m.timestamp, t.sequence,   a.health_details};
  return WriteOutcome::StateEvent{state_change_id(change), t.to, to_json(change)};
}

std::string record_state_events(const std::vector<WriteOutcome::StateEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    out.push_back(out.empty() ? '[' : ',');
    out += e.payload;
  }
  if (!out.empty()) out.push_back(']');
  return out;
}

std::vector<WriteOutcome::StateEvent> recorded_state_events(std::string_view record) {
  std::vector<WriteOutcome::StateEvent> out;
  if (record.empty()) return out;
  // Ordered: the events go out again with their fields in the order they were written.
  const auto events = nlohmann::ordered_json::parse(record, nullptr, false);
  if (!events.is_array()) return out;
  for (const auto& e : events) {
    if (!e.is_object() || !e.contains("id") || !e["id"].is_string()) continue;
    out.push_back(WriteOutcome::StateEvent{e["id"].get<std::string>(), e.value("to", std::string()),
                                           e.dump()});
  }
  return out;
}

}  // namespace atw
