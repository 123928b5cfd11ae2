#include "domain/timestamp.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

namespace atw {
namespace {

constexpr int64_t kSecond = 1'000'000;

// 2026-01-28T14:30:00Z, the seed's example (checked with `date -u -d ... +%s`).
constexpr int64_t kSeedSeconds = 1'769'610'600;

int64_t micros_of(std::string_view text) {
  const auto t = parse_rfc3339(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t ? t->micros : INT64_MIN;
}

TEST(ParseRfc3339, Epoch) {
  EXPECT_EQ(micros_of("1970-01-01T00:00:00Z"), 0);
}

TEST(ParseRfc3339, SeedExample) {
  EXPECT_EQ(micros_of("2026-01-28T14:30:00Z"), kSeedSeconds * kSecond);
}

TEST(ParseRfc3339, LowerCaseSeparatorAndZoneAndSpace) {
  EXPECT_EQ(micros_of("2026-01-28t14:30:00z"), kSeedSeconds * kSecond);
  EXPECT_EQ(micros_of("2026-01-28 14:30:00Z"), kSeedSeconds * kSecond);
}

TEST(ParseRfc3339, OffsetsAreConvertedToUtc) {
  EXPECT_EQ(micros_of("2026-01-28T16:30:00+02:00"), kSeedSeconds * kSecond);
  EXPECT_EQ(micros_of("2026-01-28T09:00:00-05:30"), kSeedSeconds * kSecond);
  EXPECT_EQ(micros_of("2026-01-28T14:30:00+00:00"), kSeedSeconds * kSecond);
  EXPECT_EQ(micros_of("2026-01-28T14:30:00-00:00"), kSeedSeconds * kSecond);
  // Crossing midnight and a year boundary.
  EXPECT_EQ(micros_of("2027-01-01T01:00:00+02:00"), micros_of("2026-12-31T23:00:00Z"));
  EXPECT_EQ(micros_of("2026-12-31T23:30:00-01:00"), micros_of("2027-01-01T00:30:00Z"));
}

TEST(ParseRfc3339, FractionalSeconds) {
  const int64_t base = kSeedSeconds * kSecond;
  EXPECT_EQ(micros_of("2026-01-28T14:30:00.5Z"), base + 500'000);
  EXPECT_EQ(micros_of("2026-01-28T14:30:00.123Z"), base + 123'000);
  EXPECT_EQ(micros_of("2026-01-28T14:30:00.000001Z"), base + 1);
  EXPECT_EQ(micros_of("2026-01-28T14:30:00.123456Z"), base + 123'456);
  EXPECT_EQ(micros_of("2026-01-28T16:30:00.5+02:00"), base + 500'000);
}

TEST(ParseRfc3339, DigitsPastMicrosecondsAreTruncated) {
  const int64_t base = kSeedSeconds * kSecond;
  EXPECT_EQ(micros_of("2026-01-28T14:30:00.1234569Z"), base + 123'456);
  EXPECT_EQ(micros_of("2026-01-28T14:30:00.999999999Z"), base + 999'999);
}

TEST(ParseRfc3339, BeforeEpoch) {
  EXPECT_EQ(micros_of("1969-12-31T23:59:59Z"), -kSecond);
  EXPECT_EQ(micros_of("1969-12-31T23:59:59.5Z"), -kSecond / 2);
  EXPECT_EQ(micros_of("1900-01-01T00:00:00Z"), -2'208'988'800 * kSecond);
}

TEST(ParseRfc3339, YearRangeAndLeapYears) {
  EXPECT_EQ(micros_of("0000-01-01T00:00:00Z"), -62'167'219'200 * kSecond);
  EXPECT_EQ(micros_of("9999-12-31T23:59:59Z"), 253'402'300'799 * kSecond);
  EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z"));
  EXPECT_TRUE(parse_rfc3339("2000-02-29T00:00:00Z"));  // divisible by 400
  EXPECT_TRUE(parse_rfc3339("0000-02-29T00:00:00Z"));  // year 0 is a leap year
  EXPECT_EQ(micros_of("2024-03-01T00:00:00Z") - micros_of("2024-02-28T00:00:00Z"),
            2 * 86'400 * kSecond);
}

TEST(ParseRfc3339, RejectsImpossibleDatesAndTimes) {
  for (const char* text : {
           "2026-02-29T00:00:00Z",  // not a leap year
           "1900-02-29T00:00:00Z",  // divisible by 100, not 400
           "2026-02-30T00:00:00Z",
           "2026-04-31T00:00:00Z",
           "2026-00-10T00:00:00Z",
           "2026-13-10T00:00:00Z",
           "2026-01-00T00:00:00Z",
           "2026-01-32T00:00:00Z",
           "2026-01-28T24:00:00Z",
           "2026-01-28T23:60:00Z",
           "2026-12-31T23:59:60Z",  // no leap seconds
           "2026-01-28T14:30:00+24:00",
           "2026-01-28T14:30:00+01:60",
       }) {
    EXPECT_FALSE(parse_rfc3339(text)) << text;
  }
}

TEST(ParseRfc3339, RejectsMalformedText) {
  for (const char* text : {
           "",
           "2026-01-28",
           "2026-01-28T14:30:00",  // no offset
           "2026-01-28T14:30Z",
           "2026-01-28T14:30:00.Z",  // fraction without digits
           "2026-01-28T14:30:00,5Z",
           "2026-01-28X14:30:00Z",
           "2026-01-28T14:30:00ZZ",
           "2026-01-28T14:30:00Z ",
           " 2026-01-28T14:30:00Z",
           "2026-1-28T14:30:00Z",
           "26-01-28T14:30:00Z",
           "+2026-01-28T14:30:00Z",
           "2026/01/28T14:30:00Z",
           "2026-01-28T14:30:00+0200",
           "2026-01-28T14:30:00+02",
           "2026-01-28T14:30:00+02:0",
           "2026-01-28T14:30:00+02:000",
           "2026-01-28T14:30:00UTC",
           "2026-01-28T14:30:00.5",
           "2026-0a-28T14:30:00Z",
           "2026-01-28T14:3a:00Z",
           "1769610600",
       }) {
    EXPECT_FALSE(parse_rfc3339(text)) << '"' << text << '"';
  }
}

TEST(FormatRfc3339, WholeSeconds) {
  EXPECT_EQ(format_rfc3339(Timestamp{0}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(Timestamp::from_seconds(kSeedSeconds)), "2026-01-28T14:30:00Z");
}

TEST(FormatRfc3339, FractionTrimmedOfTrailingZeros) {
  const int64_t base = kSeedSeconds * kSecond;
  EXPECT_EQ(format_rfc3339(Timestamp{base + 500'000}), "2026-01-28T14:30:00.5Z");
  EXPECT_EQ(format_rfc3339(Timestamp{base + 123'000}), "2026-01-28T14:30:00.123Z");
  EXPECT_EQ(format_rfc3339(Timestamp{base + 120'400}), "2026-01-28T14:30:00.1204Z");
  EXPECT_EQ(format_rfc3339(Timestamp{base + 1}), "2026-01-28T14:30:00.000001Z");
  EXPECT_EQ(format_rfc3339(Timestamp{base + 999'999}), "2026-01-28T14:30:00.999999Z");
}

TEST(FormatRfc3339, BeforeEpochUsesFloorDivision) {
  EXPECT_EQ(format_rfc3339(Timestamp{-1}), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339(Timestamp{-kSecond}), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_rfc3339(Timestamp{-kSecond / 2}), "1969-12-31T23:59:59.5Z");
  EXPECT_EQ(format_rfc3339(Timestamp{-86'400 * kSecond}), "1969-12-31T00:00:00Z");
  EXPECT_EQ(format_rfc3339(Timestamp{-62'167'219'200 * kSecond}), "0000-01-01T00:00:00Z");
}

TEST(FormatRfc3339, YearsOutsideFourDigitsGetASign) {
  EXPECT_EQ(format_rfc3339(Timestamp{-62'167'219'200 * kSecond - 1}),
            "-000001-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339(Timestamp{253'402'300'800 * kSecond}), "+010000-01-01T00:00:00Z");
}

TEST(FormatIsoMillis, AlwaysThreeDigits) {
  const int64_t base = kSeedSeconds * kSecond;
  EXPECT_EQ(format_iso_millis(Timestamp{base}), "2026-01-28T14:30:00.000Z");
  EXPECT_EQ(format_iso_millis(Timestamp{base + 1'234'000}), "2026-01-28T14:30:01.234Z");
  EXPECT_EQ(format_iso_millis(Timestamp{base + 5'000}), "2026-01-28T14:30:00.005Z");
  EXPECT_EQ(format_iso_millis(Timestamp{base + 999'999}), "2026-01-28T14:30:00.999Z");  // floors
  EXPECT_EQ(format_iso_millis(Timestamp{-1}), "1969-12-31T23:59:59.999Z");
}

TEST(Rfc3339, RoundTripsEveryDayAcrossFourCenturies) {
  // Walks 1600-03-01 .. 2400-03-01 one day (plus a drifting time of day) at a time, checking
  // each day against glibc's timegm as an independent reference and the text round trip.
  const int64_t start = micros_of("1600-03-01T00:00:00Z");
  const int64_t end = micros_of("2400-03-01T00:00:00Z");
  int64_t drift = 0;
  for (int64_t t = start; t < end; t += 86'400 * kSecond) {
    drift = (drift + 3'607'000'123) % (86'400 * kSecond);
    const Timestamp ts{t + drift};
    const std::string text = format_rfc3339(ts);
    std::tm tm{};
    ASSERT_NE(strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr) << text;
    ASSERT_EQ(static_cast<int64_t>(timegm(&tm)), t / kSecond + drift / kSecond) << text;
    const auto back = parse_rfc3339(text);
    ASSERT_TRUE(back.has_value()) << text;
    ASSERT_EQ(back->micros, ts.micros) << text;
  }
}

// The text PostgreSQL writes for a timestamptz (DateStyle ISO, TimeZone UTC), a timestamp and a
// date: every instant it can hold reads, so that no link or score time fails to.
TEST(ParsePgTimestamp, EveryFormPostgresWrites) {
  const int64_t base = kSeedSeconds * kSecond;
  auto pg = [](std::string_view text) {
    const auto t = parse_pg_timestamp(text);
    EXPECT_TRUE(t.has_value()) << text;
    return t ? t->micros : INT64_MIN;
  };
  EXPECT_EQ(pg("2026-01-28 14:30:00+00"), base);
  EXPECT_EQ(pg("2026-01-28 14:30:00.123456+00"), base + 123'456);
  EXPECT_EQ(pg("2026-01-28 20:00:00+05:30"), base);
  EXPECT_EQ(pg("2026-01-28 20:23:28+05:53:28"), base);  // local mean time has seconds
  EXPECT_EQ(pg("2026-01-28 09:30:00-05"), base);
  EXPECT_EQ(pg("2026-01-28 14:30:00"), base);  // timestamp without time zone: read as UTC
  EXPECT_EQ(pg("2026-01-28"), base - (14 * 3600 + 30 * 60) * kSecond);
  EXPECT_EQ(pg("0001-01-01 00:00:00+00"), micros_of("0001-01-01T00:00:00Z"));
  EXPECT_EQ(pg("0001-12-31 00:00:00+00 BC"), micros_of("0000-12-31T00:00:00Z"));  // year 0
  EXPECT_EQ(pg("4714-11-24 00:00:00+00 BC"), -210866803200 * kSecond);  // PostgreSQL's first day
  EXPECT_EQ(pg("10000-01-01 00:00:00+00"), 253402300800 * kSecond);
  EXPECT_EQ(pg("infinity"), kInfiniteFuture.micros);
  EXPECT_EQ(pg("-infinity"), kInfinitePast.micros);
}

TEST(ParsePgTimestamp, PastMicrosecondsSince1970InSixtyFourBitsItStaysInsideTheInfinities) {
  // PostgreSQL's last instant is about 30 years past what fits; it orders after every other.
  const auto last = parse_pg_timestamp("294276-12-31 23:59:59.999999+00");
  ASSERT_TRUE(last.has_value());
  EXPECT_LT(*last, kInfiniteFuture);
  EXPECT_GT(*last, *parse_pg_timestamp("294000-01-01 00:00:00+00"));
}

TEST(ParsePgTimestamp, AnythingElseIsNotATime) {
  for (std::string_view text :
       {"", "yesterday", "2026-01-28T14:30:00Z", "2026-02-30 00:00:00+00", "2026-01-28 24:00:00+00",
        "0000-01-01 00:00:00+00 BC", "2026-01-28 14:30:00+00 AD", "26-01-28 14:30:00+00",
        "2026-01-28 14:30:00+0", "Infinity", "2026-01-28 14:30:00.+00"}) {
    EXPECT_FALSE(parse_pg_timestamp(text).has_value()) << text;
  }
}

TEST(Instant, EveryInstantRoundTripsThroughItsText) {
  for (int64_t micros :
       {INT64_MIN, INT64_MIN + 1, int64_t{-210866803200000000}, int64_t{-1}, int64_t{0},
        kSeedSeconds * kSecond + 5, int64_t{253402300800000000}, INT64_MAX - 1, INT64_MAX}) {
    const std::string text = format_instant(Timestamp{micros});
    const auto back = parse_instant(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(back->micros, micros) << text;
  }
  EXPECT_EQ(format_instant(kInfiniteFuture), "infinity");
  EXPECT_EQ(format_instant(kInfinitePast), "-infinity");
  EXPECT_EQ(format_instant(Timestamp{253402300800000000}), "+010000-01-01T00:00:00Z");
  // A message's timestamp is RFC 3339 alone: the extended forms are the worker's own.
  EXPECT_FALSE(parse_rfc3339("+010000-01-01T00:00:00Z").has_value());
  EXPECT_FALSE(parse_rfc3339("infinity").has_value());
}

}  // namespace
}  // namespace atw
