#pragma once
// UTC instants with microsecond precision (PostgreSQL's timestamptz precision), and their
// RFC 3339 text forms. No clock here: "now" is always passed in.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace atw {

struct Timestamp {
  int64_t micros = 0;  // since 1970-01-01T00:00:00Z

  static constexpr Timestamp from_seconds(int64_t s) { return Timestamp{s * 1'000'000}; }
  auto operator<=>(const Timestamp&) const = default;
};

// Parses RFC 3339 (`2026-01-28T14:30:00Z`, `2026-01-28T16:30:00.5+02:00`, lower-case `t`/`z`
// accepted). Digits past microseconds are truncated. Returns nullopt for anything else,
// including impossible dates (Feb 30) and leap seconds.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

// `2026-01-28T14:30:00Z`, or with `.ffffff` trimmed of trailing zeros when there is a fraction.
std::string format_rfc3339(Timestamp t);

// `2026-01-28T14:30:00.000Z`: always milliseconds, like JavaScript's Date.toISOString().
std::string format_iso_millis(Timestamp t);

}  // namespace atw
