#pragma once
// The quality of a reading, as field gateways (OPC UA, Modbus RTUs) mark it: good,
// uncertain or bad. A value derived from others has the worst quality of its inputs.

#include <cstdint>
#include <optional>
#include <string_view>

namespace atw {

enum class Quality : uint8_t { kGood = 0, kUncertain = 1, kBad = 2 };

inline Quality worst(Quality a, Quality b) {
  return a > b ? a : b;
}

// "good", "uncertain", "bad": as history rows and events write it.
std::string_view quality_name(Quality q);

// A quality as a message gives it: good, uncertain or bad (any case); an OPC UA status name,
// whose prefix is its severity (GoodClamped, UncertainLastUsableValue, BadSensorFailure, ...);
// nullopt for anything else.
std::optional<Quality> parse_quality(std::string_view text);

// An OPC UA StatusCode (a 32-bit number): its two severity bits, 00 good, 01 uncertain, 10 and
// 11 bad. nullopt past 32 bits.
std::optional<Quality> quality_of_status_code(uint64_t code);

// Which readings formulas and health rules use (telemetry_schema.quality_policy): bad ones
// never; uncertain ones unless the policy says "good_only".
struct QualityPolicy {
  bool use_uncertain = true;
  bool usable(Quality q) const {
    return q == Quality::kGood || (q == Quality::kUncertain && use_uncertain);
  }
};

}  // namespace atw
