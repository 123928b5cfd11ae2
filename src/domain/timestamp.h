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
  // clang-tidy 14 takes the 0 its defaulted <=> compares against for a null pointer.
  auto operator<=>(const Timestamp&) const = default;  // NOLINT(modernize-use-nullptr)
};

// PostgreSQL's `-infinity` and `infinity`: before and after every instant, so that comparisons
// with them come out as PostgreSQL's own do.
inline constexpr Timestamp kInfinitePast{INT64_MIN};
inline constexpr Timestamp kInfiniteFuture{INT64_MAX};

// Parses RFC 3339 (`2026-01-28T14:30:00Z`, `2026-01-28T16:30:00.5+02:00`, lower-case `t`/`z`
// accepted). Digits past microseconds are truncated. Returns nullopt for anything else,
// including impossible dates (Feb 30) and leap seconds.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

// `2026-01-28T14:30:00Z`, or with `.ffffff` trimmed of trailing zeros when there is a fraction.
// Years outside 0000..9999 are written with a sign and six digits (`+010000-01-01T00:00:00Z`).
std::string format_rfc3339(Timestamp t);

// Every instant a timestamp can hold, as text that reads back exactly: format_rfc3339's form,
// and `-infinity` / `infinity` for kInfinitePast / kInfiniteFuture. parse_instant reads what
// format_instant writes (and parse_rfc3339's input); it is for the worker's own stored forms,
// not for messages, whose timestamps are RFC 3339 only (SPEC D3).
std::string format_instant(Timestamp t);
std::optional<Timestamp> parse_instant(std::string_view text);

// A timestamp as PostgreSQL writes it as text with DateStyle ISO: `2026-01-28 14:30:00+00`,
// `2026-01-28 14:30:00.5+05:30`, `0044-03-15 00:00:00+00 BC`, `10000-01-01 00:00:00+00`,
// `infinity`, `-infinity`; a `timestamp` without zone (read as UTC) or a `date` (its midnight,
// UTC). The worker reads every timestamp of a table it does not own this way, so that any
// instant the column can hold, and any of those column types, reads (SPEC D5).
std::optional<Timestamp> parse_pg_timestamp(std::string_view text);

// `2026-01-28T14:30:00.000Z`: always milliseconds, like JavaScript's Date.toISOString().
std::string format_iso_millis(Timestamp t);

}  // namespace atw
