#pragma once
// The health-state changes a message makes, as the sink hands them back: each one's
// event, and the record a sink keeps with the message so that a redelivery gets the same events
// back (TelemetrySink, WriteOutcome::state_events).

#include <string>
#include <string_view>
#include <vector>

#include "domain/health_state.h"
#include "pipeline/ports.h"

namespace atw {

// The event of a change `m` made to asset `a`'s state.
WriteOutcome::StateEvent state_event_of(const MessageResult& m, const AssetResult& a,
                                        const StateTransition& t);

// The record of a message's changes: a JSON array of their events; empty text for none.
std::string record_state_events(const std::vector<WriteOutcome::StateEvent>& events);
// The events a record holds; an unreadable record holds none.
std::vector<WriteOutcome::StateEvent> recorded_state_events(std::string_view record);

}  // namespace atw
