#include "domain/telemetry.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/seed_example.h"

namespace atw {
namespace {

using atw::testing::kSeedMessage;

constexpr int64_t kSeedMicros = 1'769'610'600LL * 1'000'000;
const Timestamp kNow{kSeedMicros + 1'234'000};  // the seed's receivedAt

// A valid message built from raw JSON parts, so that a test can replace any one of them.
std::string message(std::string_view timestamp_json = R"("2026-01-28T14:30:00Z")",
                    std::string_view metrics_json = R"({"temperature": 25.5})",
                    std::string_view ids_json = R"("messageId": "m-1", "deviceId": "d-1",
                                                  "organizationId": "o-1")") {
  return fmt::format(R"({{{}, "timestamp": {}, "metrics": {}}})", ids_json, timestamp_json,
                     metrics_json);
}

Result<TelemetryMessage> parse(std::string_view payload, const ValidationLimits& limits = {}) {
  return parse_telemetry(payload, kNow, limits);
}

// Asserts a permanent "invalid_message" failure whose text is exactly `expected`.
void expect_invalid(std::string_view payload, std::string_view expected,
                    const ValidationLimits& limits = {}) {
  const auto r = parse(payload, limits);
  ASSERT_FALSE(r.ok()) << "accepted: " << payload.substr(0, 200);
  EXPECT_TRUE(r.status().permanent());
  EXPECT_EQ(r.status().type(), "invalid_message");
  EXPECT_EQ(r.status().message(), expected);
}

// Asserts a permanent "invalid_message" failure whose text starts with `prefix`.
void expect_invalid_prefix(std::string_view payload, std::string_view prefix,
                           const ValidationLimits& limits = {}) {
  const auto r = parse(payload, limits);
  ASSERT_FALSE(r.ok()) << "accepted: " << payload.substr(0, 200);
  EXPECT_TRUE(r.status().permanent());
  EXPECT_EQ(r.status().type(), "invalid_message");
  EXPECT_EQ(r.status().message().substr(0, prefix.size()), prefix) << r.status().message();
}

std::vector<Metric> metrics_of(const TelemetryMessage& m) {
  return std::vector<Metric>(m.metrics.begin(), m.metrics.end());
}

TEST(ParseTelemetry, SeedExampleParsesToExactValues) {
  const auto r = parse(kSeedMessage);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->message_id, "uuid-12345");
  EXPECT_EQ(r->device_id, "device-abc-123");
  EXPECT_EQ(r->organization_id, "org-xyz-789");
  EXPECT_EQ(r->timestamp, Timestamp{kSeedMicros});
  EXPECT_EQ(metrics_of(*r),
            (std::vector<Metric>{
                {"temperature", 25.5}, {"voltage", 12.3}, {"current", 2.5}, {"pressure", 101.3}}));
  EXPECT_EQ(r->skipped_metrics, 0);
}

TEST(ParseTelemetry, ParsesTheSameOnRepeatedCalls) {
  // The parser is reused per thread: a second parse must not see the first one's document.
  ASSERT_TRUE(parse(kSeedMessage).ok());
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", R"({"x": 1})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"x", 1}}));
  EXPECT_EQ(r->message_id, "m-1");
}

// --- payload ---------------------------------------------------------------------------------

TEST(ParseTelemetry, PayloadAtTheSizeLimitPasses) {
  std::string payload = message();
  ValidationLimits limits;
  limits.max_payload_bytes = payload.size();
  EXPECT_TRUE(parse(payload, limits).ok());
}

TEST(ParseTelemetry, OversizedPayloadFails) {
  std::string payload = message();
  ValidationLimits limits;
  limits.max_payload_bytes = payload.size() - 1;
  expect_invalid(
      payload,
      fmt::format("payload: {} bytes exceeds the limit of {}", payload.size(), payload.size() - 1),
      limits);
}

TEST(ParseTelemetry, OversizedPayloadFailsAtTheDefaultOneMebibyte) {
  // Valid JSON padded with whitespace to one byte over 1 MiB.
  std::string payload = message();
  payload.append((1 << 20) + 1 - payload.size(), ' ');
  expect_invalid(payload, "payload: 1048577 bytes exceeds the limit of 1048576");
  payload.pop_back();
  EXPECT_TRUE(parse(payload).ok());
}

TEST(ParseTelemetry, InvalidJsonFails) {
  for (const char* payload : {"", "{", "{\"messageId\": }", "{\"a\":1}x", "{'a': 1}", "{\"a\": 1,}",
                              "{\"a\": 0123}", "nope"}) {
    expect_invalid_prefix(payload, "payload: not valid JSON (");
  }
  // JSON forbids raw control characters inside strings; only escaped ones reach the id checks.
  expect_invalid_prefix(message(R"("2026-01-28T14:30:00Z")", "{}",
                                "\"messageId\": \"a\x01"
                                "b\", \"deviceId\": \"d\", \"organizationId\": \"o\""),
                        "payload: not valid JSON (");
}

TEST(ParseTelemetry, InvalidUtf8Fails) {
  // A lone continuation byte, an overlong encoding of '/', a truncated sequence and a UTF-16
  // surrogate encoded as UTF-8: each inside an otherwise valid message.
  for (std::string_view bad : {"\x80", "\xC0\xAF", "\xE2\x82", "\xED\xA0\x80", "\xFF"}) {
    const std::string ids =
        fmt::format(R"("messageId": "m-{}", "deviceId": "d-1", "organizationId": "o-1")", bad);
    expect_invalid_prefix(message(R"("2026-01-28T14:30:00Z")", "{}", ids),
                          "payload: not valid JSON (");
  }
}

TEST(ParseTelemetry, ValidUtf8IdsPass) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", "{}",
                               R"("messageId": "m-\u00e9", "deviceId": "Gerät-😀",
                                  "organizationId": "o-1")"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->message_id, "m-\xC3\xA9");
  EXPECT_EQ(r->device_id, "Ger\xC3\xA4t-\xF0\x9F\x98\x80");
}

TEST(ParseTelemetry, RootMustBeAnObject) {
  for (const char* payload : {"[]", "[{\"messageId\": \"m\"}]", "\"text\"", "42", "null", "true"}) {
    expect_invalid(payload, "payload: not a JSON object");
  }
}

std::string nested_metrics(int metrics_depth) {
  // The root object and `metrics` are two levels; the rest are arrays inside one metric, whose
  // innermost holds a number (not empty) so that every level counts.
  std::string inner = "1";
  for (int i = 0; i < metrics_depth - 2; ++i) inner = "[" + inner + "]";
  return message(R"("2026-01-28T14:30:00Z")", fmt::format(R"({{"deep": {}}})", inner));
}

TEST(ParseTelemetry, NestingUpToTheLimitPasses) {
  ValidationLimits limits;
  limits.max_depth = 8;
  const auto r = parse(nested_metrics(8), limits);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->skipped_metrics, 1);  // the nested array is skipped, not fatal
}

TEST(ParseTelemetry, NestingPastTheLimitFails) {
  ValidationLimits limits;
  limits.max_depth = 8;
  expect_invalid(nested_metrics(9), "payload: nested deeper than 8 levels", limits);
  expect_invalid(nested_metrics(65), "payload: nested deeper than 64 levels");
  EXPECT_TRUE(parse(nested_metrics(64)).ok());
}

TEST(ParseTelemetry, DepthLimitFollowsEachCallsLimits) {
  // The per-thread parser must not keep a previous call's depth.
  ValidationLimits shallow;
  shallow.max_depth = 4;
  EXPECT_FALSE(parse(nested_metrics(10), shallow).ok());
  EXPECT_TRUE(parse(nested_metrics(10)).ok());
  EXPECT_FALSE(parse(nested_metrics(10), shallow).ok());
}

TEST(ParseTelemetry, HugelyDeepInputIsRejectedWithoutCrashing) {
  const std::string opened(100'000, '[');
  expect_invalid_prefix(opened, "payload: ");
  expect_invalid(opened + std::string(100'000, ']'), "payload: nested deeper than 64 levels");
  const std::string objects = [] {
    std::string s;
    for (int i = 0; i < 100'000; ++i) s += R"({"a":)";
    s += "1";
    s.append(100'000, '}');
    return s;
  }();
  expect_invalid(objects, "payload: nested deeper than 64 levels");
}

// --- ids -------------------------------------------------------------------------------------

class IdFieldTest : public ::testing::TestWithParam<const char*> {
 protected:
  // The three ids with `field` set to the raw JSON `value`, or left out when value is null.
  static std::string ids_with(std::string_view field, const char* value) {
    std::string out;
    for (std::string_view name : {"messageId", "deviceId", "organizationId"}) {
      std::string v = name == field ? (value ? value : "") : "\"ok\"";
      if (v.empty()) continue;
      if (!out.empty()) out += ", ";
      out += fmt::format(R"("{}": {})", name, v);
    }
    return out;
  }
  static std::string payload(const char* value) {
    return message(R"("2026-01-28T14:30:00Z")", "{}", ids_with(GetParam(), value));
  }
  static std::string expected(std::string_view reason) {
    return fmt::format("{}: {}", GetParam(), reason);
  }
};

TEST_P(IdFieldTest, Missing) {
  expect_invalid(payload(nullptr), expected("missing"));
}

TEST_P(IdFieldTest, MustBeAString) {
  for (const char* v : {"42", "null", "true", "[\"a\"]", "{\"id\": \"a\"}"}) {
    expect_invalid(payload(v), expected("must be a string"));
  }
}

TEST_P(IdFieldTest, Empty) {
  expect_invalid(payload("\"\""), expected("empty"));
}

TEST_P(IdFieldTest, LengthLimitIsInBytes) {
  const std::string at_limit = "\"" + std::string(256, 'a') + "\"";
  const auto r = parse(payload(at_limit.c_str()));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::string over = "\"" + std::string(257, 'a') + "\"";
  expect_invalid(payload(over.c_str()), expected("longer than 256 bytes"));
  // 128 two-byte characters are 256 bytes; one more ASCII byte is over.
  std::string multibyte = "\"";
  for (int i = 0; i < 128; ++i) multibyte += "\xC3\xA9";
  EXPECT_TRUE(parse(payload((multibyte + "\"").c_str())).ok());
  expect_invalid(payload((multibyte + "x\"").c_str()), expected("longer than 256 bytes"));
}

TEST_P(IdFieldTest, ControlCharactersFail) {
  for (const char* v : {R"("a\u0000b")", R"("a\nb")", R"("a\tb")", R"("\u001f")"}) {
    expect_invalid(payload(v), expected("contains a control character"));
  }
}

TEST_P(IdFieldTest, EscapesAreDecoded) {
  const auto r = parse(payload(R"("a\"b\\c\/d\u0041")"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::string field = GetParam();
  const std::string& got = field == "messageId"  ? r->message_id
                           : field == "deviceId" ? r->device_id
                                                 : r->organization_id;
  EXPECT_EQ(got, "a\"b\\c/dA");
}

INSTANTIATE_TEST_SUITE_P(Ids, IdFieldTest,
                         ::testing::Values("messageId", "deviceId", "organizationId"));

TEST(ParseTelemetry, ConfiguredIdLimitIsUsed) {
  ValidationLimits limits;
  limits.max_id_bytes = 3;
  expect_invalid(message(R"("2026-01-28T14:30:00Z")", "{}",
                         R"("messageId": "abcd", "deviceId": "d", "organizationId": "o")"),
                 "messageId: longer than 3 bytes", limits);
}

TEST(ParseTelemetry, FirstFailingFieldIsReported) {
  expect_invalid(R"({"metrics": 5})", "messageId: missing");
  expect_invalid(R"({})", "messageId: missing");
}

// --- timestamp -------------------------------------------------------------------------------

TEST(ParseTelemetry, TimestampMissing) {
  expect_invalid(R"({"messageId": "m", "deviceId": "d", "organizationId": "o", "metrics": {}})",
                 "timestamp: missing");
}

TEST(ParseTelemetry, TimestampMustBeAString) {
  for (const char* v : {"1769610600", "1769610600000", "null", "{}"}) {
    expect_invalid(message(v), "timestamp: must be a string");
  }
}

TEST(ParseTelemetry, TimestampMustBeRfc3339) {
  for (const char* v :
       {R"("")", R"("2026-01-28")", R"("2026-01-28T14:30:00")", R"("2026-02-29T00:00:00Z")",
        R"("2026-01-28T14:30:60Z")", R"("Wed, 28 Jan 2026 14:30:00 GMT")", R"("1769610600")"}) {
    expect_invalid(message(v), "timestamp: not RFC 3339");
  }
}

TEST(ParseTelemetry, TimestampWithOffsetIsStoredAsUtc) {
  const auto r = parse(message(R"("2026-01-28T16:30:00.25+02:00")"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->timestamp, Timestamp{kSeedMicros + 250'000});
  const auto west = parse(message(R"("2026-01-28T09:00:00-05:30")"));
  ASSERT_TRUE(west.ok()) << west.status().to_string();
  EXPECT_EQ(west->timestamp, Timestamp{kSeedMicros});
}

TEST(ParseTelemetry, FractionalSecondsAreKeptToTheMicrosecond) {
  const auto r = parse(message(R"("2026-01-28T14:30:00.1234567Z")"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->timestamp, Timestamp{kSeedMicros + 123'456});
}

TEST(ParseTelemetry, FutureBoundIsInclusive) {
  const Timestamp now{kSeedMicros};
  const ValidationLimits limits;
  const auto at = parse_telemetry(message(R"("2026-01-28T14:35:00Z")"), now, limits);
  ASSERT_TRUE(at.ok()) << at.status().to_string();
  EXPECT_EQ(at->timestamp, Timestamp{kSeedMicros + 300'000'000});

  const auto over = parse_telemetry(message(R"("2026-01-28T14:35:00.000001Z")"), now, limits);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(over.status().permanent());
  EXPECT_EQ(over.status().message(),
            "timestamp: 2026-01-28T14:35:00.000001Z is more than 300 s in the future");
}

TEST(ParseTelemetry, PastTimestampsAreAccepted) {
  const auto r = parse(message(R"("1999-12-31T23:59:59Z")"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->timestamp, Timestamp::from_seconds(946'684'799));
}

TEST(ParseTelemetry, ConfiguredFutureBoundIsUsed) {
  ValidationLimits limits;
  limits.max_future_micros = 60'000'000;
  EXPECT_TRUE(
      parse_telemetry(message(R"("2026-01-28T14:31:00Z")"), Timestamp{kSeedMicros}, limits).ok());
  const auto r =
      parse_telemetry(message(R"("2026-01-28T14:31:01Z")"), Timestamp{kSeedMicros}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "timestamp: 2026-01-28T14:31:01Z is more than 60 s in the future");
}

// --- metrics ---------------------------------------------------------------------------------

TEST(ParseTelemetry, MetricsMissing) {
  expect_invalid(
      R"({"messageId": "m", "deviceId": "d", "organizationId": "o", "timestamp": "2026-01-28T14:30:00Z"})",
      "metrics: missing");
}

TEST(ParseTelemetry, MetricsMustBeAnObject) {
  for (const char* v : {"[]", "[1, 2]", "null", "5", "\"a\"", "true"}) {
    expect_invalid(message(R"("2026-01-28T14:30:00Z")", v), "metrics: must be an object");
  }
}

TEST(ParseTelemetry, EmptyMetricsPass) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", "{}"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->metrics.empty());
  EXPECT_EQ(r->skipped_metrics, 0);
}

TEST(ParseTelemetry, NumbersAreKeptAndBooleansBecomeOneOrZero) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", R"({
      "int": 42, "neg": -7, "zero": 0, "float": 1.5e3, "tiny": -2.5E-3,
      "big": 18446744073709551615, "min": -9223372036854775808, "huge": 1.7976931348623157e308,
      "on": true, "off": false})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"int", 42},
                                                 {"neg", -7},
                                                 {"zero", 0},
                                                 {"float", 1500},
                                                 {"tiny", -0.0025},
                                                 {"big", 18446744073709551615.0},
                                                 {"min", -9223372036854775808.0},
                                                 {"huge", 1.7976931348623157e308},
                                                 {"on", 1},
                                                 {"off", 0}}));
  EXPECT_EQ(r->skipped_metrics, 0);
}

TEST(ParseTelemetry, NonNumericValuesAreSkippedAndCounted) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", R"({
      "a": 1, "s": "12.5", "n": null, "arr": [1, 2], "obj": {"x": 1}, "b": 2})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(r->skipped_metrics, 4);
}

// SPEC D3: any JSON number is a number. An integer past 64 bits is its nearest double; a number
// past a double's range is non-finite, so that metric is skipped and counted, and the message
// stands, with its other metrics.
TEST(ParseTelemetry, IntegersPast64BitsAreTheirNearestDouble) {
  for (const auto& [text, value] :
       {std::pair{"18446744073709551616", 18446744073709551616.0},
        std::pair{"-9223372036854775809", -9223372036854775809.0},
        std::pair{"123456789012345678901234567890", 1.2345678901234568e29},
        std::pair{"18446744073709551615", 18446744073709551615.0},  // fits: exact, as before
        std::pair{"-9223372036854775808", -9223372036854775808.0}}) {
    const auto r =
        parse(message(R"("2026-01-28T14:30:00Z")", fmt::format(R"({{"x": {}, "y": 2}})", text)));
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().to_string();
    EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"x", value}, {"y", 2}})) << text;
    EXPECT_EQ(r->skipped_metrics, 0);
  }
}

TEST(ParseTelemetry, NumbersPastADoubleAreSkippedAndCounted) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")",
                               R"({"a": 1e309, "b": -1e400, "c": 1.5, "d": 1e-400, "e": 0e999})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"c", 1.5}, {"d", 0}, {"e", 0}}));
  EXPECT_EQ(r->skipped_metrics, 2);
}

TEST(ParseTelemetry, OutOfRangeNumbersOutsideMetricsChangeNothingElse) {
  // In another field, inside strings (never numbers), and beside an invalid number.
  const auto r = parse(R"({"messageId": "m 1e999 18446744073709551616", "deviceId": "d",
      "organizationId": "o", "timestamp": "2026-01-28T14:30:00Z", "receivedAt": 1e999,
      "deviceMetadata": {"serial": 99999999999999999999999}, "metrics": {"a\"1e9": 1}})");
  EXPECT_FALSE(r.ok());  // the metric name is invalid
  const auto ok = parse(R"({"messageId": "m 1e999 18446744073709551616", "deviceId": "d",
      "organizationId": "o", "timestamp": "2026-01-28T14:30:00Z", "receivedAt": 1e999,
      "deviceMetadata": {"serial": 99999999999999999999999}, "metrics": {"a": 1}})");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->message_id, "m 1e999 18446744073709551616");
  EXPECT_EQ(metrics_of(*ok), (std::vector<Metric>{{"a", 1}}));
  // A number a parser would refuse whatever its size is still not JSON.
  expect_invalid_prefix(message(R"("2026-01-28T14:30:00Z")", R"({"x": 1e999, "y": 01})"),
                        "payload: not valid JSON (");
  // A number as messageId is still not a string.
  expect_invalid_prefix(R"({"messageId": 1e999, "deviceId": "d", "organizationId": "o",
      "timestamp": "2026-01-28T14:30:00Z", "metrics": {}})",
                        "messageId: must be a string");
}

TEST(ParseTelemetry, TimestampsWithNineFractionalDigitsAreKeptToTheMicrosecond) {
  const auto r = parse(message(R"("2026-01-28T14:30:00.123456789Z")", R"({"a": 1})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->timestamp.micros, 1769610600123456);
}

TEST(ParseTelemetry, DuplicateMetricNamesKeepFirstPositionAndLastValue) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", R"({"a": 1, "b": 2, "a": 3})"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"a", 3}, {"b", 2}}));
}

TEST(ParseTelemetry, DuplicateTopLevelFieldsTakeTheLastValue) {
  const auto r = parse(R"({"messageId": "first", "deviceId": "d", "organizationId": "o",
      "timestamp": "2026-01-28T14:30:00Z", "metrics": {"a": 1}, "messageId": "last",
      "metrics": {"b": 2}})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->message_id, "last");
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"b", 2}}));
}

std::string metrics_with(int n) {
  std::string out = "{";
  for (int i = 0; i < n; ++i) out += fmt::format(R"({}"m{}": {})", i ? "," : "", i, i);
  return out + "}";
}

TEST(ParseTelemetry, AThousandMetricsPass) {
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")", metrics_with(1000)));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->metrics.size(), 1000u);
  EXPECT_EQ(r->metrics.get("m999"), 999.0);
}

TEST(ParseTelemetry, AThousandAndOneMetricsFail) {
  expect_invalid(message(R"("2026-01-28T14:30:00Z")", metrics_with(1001)),
                 "metrics: 1001 entries exceed the limit of 1000");
}

TEST(ParseTelemetry, MetricNamesOfAllowedCharactersPass) {
  const std::string name128(128, 'n');
  const auto r = parse(message(R"("2026-01-28T14:30:00Z")",
                               fmt::format(R"({{"Az09_.:-": 1, "{}": 2, "x": 3}})", name128)));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"Az09_.:-", 1}, {name128, 2}, {"x", 3}}));
}

TEST(ParseTelemetry, MetricNameOf129CharactersFails) {
  const std::string name129(129, 'n');
  expect_invalid(message(R"("2026-01-28T14:30:00Z")", fmt::format(R"({{"{}": 1}})", name129)),
                 fmt::format("metrics: invalid name \"{}...\"", std::string(128, 'n')));
}

TEST(ParseTelemetry, MetricNamesOutsideTheAlphabetFail) {
  for (const char* name : {"", "with space", "slash/name", "semi;colon", "quote\\\"", "caf\u00e9",
                           "tab\\t", "nul\\u0000"}) {
    expect_invalid_prefix(message(R"("2026-01-28T14:30:00Z")", fmt::format(R"({{"{}": 1}})", name)),
                          "metrics: invalid name \"");
  }
  expect_invalid(message(R"("2026-01-28T14:30:00Z")", R"({"ok": 1, "bad name": 2})"),
                 "metrics: invalid name \"bad name\"");
}

TEST(ParseTelemetry, InvalidNameFailsEvenWhenItsValueWouldBeSkipped) {
  expect_invalid(message(R"("2026-01-28T14:30:00Z")", R"({"bad name": "text"})"),
                 "metrics: invalid name \"bad name\"");
}

TEST(ParseTelemetry, UnknownFieldsAreIgnored) {
  const auto r = parse(R"({"extra": [1, {"deep": null}], "messageId": "m", "deviceId": "d",
      "organizationId": "o", "timestamp": "2026-01-28T14:30:00Z", "metrics": {"a": 1},
      "receivedAt": "not even a time", "deviceMetadata": {"deviceType": "RTU-4000"}})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(metrics_of(*r), (std::vector<Metric>{{"a", 1}}));
}

// `quality`, with the message's ids, timestamp and two metrics.
std::string with_quality(std::string_view quality_json) {
  return fmt::format(R"({{"messageId": "m-1", "deviceId": "d-1", "organizationId": "o-1",)"
                     R"( "timestamp": "2026-01-28T14:30:00Z", "quality": {},)"
                     R"( "metrics": {{"temperature": 25.5, "voltage": 12}}}})",
                     quality_json);
}

Quality quality_of(const TelemetryMessage& m, std::string_view metric) {
  return m.metrics.find_metric(metric)->quality;
}

TEST(ParseQuality, AbsentIsGood) {
  const auto m = parse(message());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(quality_of(*m, "temperature"), Quality::kGood);
  EXPECT_FALSE(m->metrics.any_not_good());
}

TEST(ParseQuality, OneValueForTheWholeMessage) {
  const auto m = parse(with_quality(R"("uncertain")"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(quality_of(*m, "temperature"), Quality::kUncertain);
  EXPECT_EQ(quality_of(*m, "voltage"), Quality::kUncertain);
}

TEST(ParseQuality, PerMetricBeforeOrAfterTheMetrics) {
  const auto m = parse(with_quality(R"({"temperature": "bad", "nothing": "bad"})"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(quality_of(*m, "temperature"), Quality::kBad);
  EXPECT_EQ(quality_of(*m, "voltage"), Quality::kGood);
  EXPECT_EQ(m->unknown_qualities, 0);
}

TEST(ParseQuality, OpcUaNamesAndStatusCodes) {
  for (const auto& [given, want] : std::vector<std::pair<std::string, Quality>>{
           {R"("GOOD")", Quality::kGood},
           {R"("GoodClamped")", Quality::kGood},
           {R"("UncertainLastUsableValue")", Quality::kUncertain},
           {R"("BadSensorFailure")", Quality::kBad},
           {"0", Quality::kGood},                // Good
           {"1083244544", Quality::kUncertain},  // 0x40910000: severity bits 01
           {"2156724224", Quality::kBad},        // 0x808D0000: 10
           {"3221225472", Quality::kBad}}) {     // 0xC0000000: 11
    const auto m = parse(with_quality(given));
    ASSERT_TRUE(m.ok()) << given;
    EXPECT_EQ(quality_of(*m, "temperature"), want) << given;
  }
}

TEST(ParseQuality, AnUnknownValueIsUncertainAndCounted) {
  const auto m = parse(with_quality(R"({"temperature": "dubious", "voltage": "good"})"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(quality_of(*m, "temperature"), Quality::kUncertain);
  EXPECT_EQ(m->unknown_qualities, 1);
  const auto whole = parse(with_quality(R"("sort of")"));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(quality_of(*whole, "voltage"), Quality::kUncertain);
  EXPECT_EQ(whole->unknown_qualities, 1);
  const auto big = parse(with_quality("4294967296"));  // past 32 bits: no status code
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->unknown_qualities, 1);
}

TEST(ParseQuality, AFieldThatCannotBeReadIsInvalid) {
  expect_invalid(with_quality("[1]"),
                 "quality: must be a string, a status code or an object of them per metric");
  expect_invalid(with_quality("true"),
                 "quality: must be a string, a status code or an object of them per metric");
  expect_invalid_prefix(with_quality(R"({"temperature": [1]})"),
                        "quality: the value for \"temperature\" must be");
}

}  // namespace
}  // namespace atw
