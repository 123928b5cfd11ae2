#pragma once
// The server's MAX_DELIVERIES advisory
// ($JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>), read into the pipeline's
// record of it.

#include <optional>
#include <string_view>

#include "pipeline/ports.h"

namespace atw {

// nullopt unless `payload` is a JSON object with a string `stream` and an unsigned
// `stream_seq`; `consumer` and `deliveries` are read where present.
std::optional<MaxDeliveriesAdvisory> read_max_deliveries_advisory(std::string_view payload);

}  // namespace atw
