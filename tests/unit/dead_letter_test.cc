#include "domain/dead_letter.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace atw {
namespace {

using nlohmann::ordered_json;

DeadLetter record(std::string_view payload) {
  DeadLetter d;
  d.original_stream = "TELEMETRY_NORMALIZED";
  d.original_subject = "telemetry.normalized.v1";
  d.stream_sequence = 18446744073709ULL;
  d.consumer = "asset-processor-group";
  d.delivery_count = 3;
  d.last_error = "Database connection timeout: \"db\"\n";
  d.error_type = "db_write_failed";
  d.failed_at = Timestamp{1769610601234567};  // 2026-01-28T14:30:01.234567Z
  d.payload = payload;
  return d;
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string_view("\xFB\xFF\xBF\x00", 4)), "+/+/AA==");
}

TEST(DeadLetterJson, FieldsInOrderWithJsonPayloadEmbedded) {
  const std::string payload = R"({"messageId":"uuid-12345","metrics":{"temperature":25.5}})";
  const std::string json = to_json(record(payload));
  const ordered_json j = ordered_json::parse(json);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"originalStream", "originalSubject", "streamSequence",
                                            "consumer", "deliveryCount", "lastError", "errorType",
                                            "failedAt", "payload"}));
  EXPECT_EQ(j["originalStream"], "TELEMETRY_NORMALIZED");
  EXPECT_EQ(j["originalSubject"], "telemetry.normalized.v1");
  EXPECT_EQ(j["streamSequence"], 18446744073709ULL);
  EXPECT_EQ(j["consumer"], "asset-processor-group");
  EXPECT_EQ(j["deliveryCount"], 3);
  EXPECT_EQ(j["lastError"], "Database connection timeout: \"db\"\n");
  EXPECT_EQ(j["errorType"], "db_write_failed");
  EXPECT_EQ(j["failedAt"], "2026-01-28T14:30:01.234Z");
  EXPECT_EQ(j["payload"], ordered_json::parse(payload));
  // Embedded byte for byte, not re-serialized.
  EXPECT_NE(json.find(R"("payload":)" + payload + "}"), std::string::npos) << json;
}

TEST(DeadLetterJson, ScalarAndWhitespacePaddedJsonIsEmbedded) {
  EXPECT_EQ(ordered_json::parse(to_json(record("42")))["payload"], 42);
  const ordered_json j = ordered_json::parse(to_json(record(" [1, \"x\"]\n")));
  EXPECT_EQ(j["payload"], ordered_json::parse(R"([1,"x"])"));
}

void expect_base64(std::string_view payload) {
  const ordered_json j = ordered_json::parse(to_json(record(payload)));
  EXPECT_FALSE(j.contains("payload")) << payload;
  ASSERT_TRUE(j.contains("payloadBase64")) << payload;
  EXPECT_EQ(j["payloadBase64"], base64_encode(payload));
  EXPECT_EQ(j.size(), 9u);
}

TEST(DeadLetterJson, NonJsonPayloadGoesToBase64) {
  expect_base64("not json");
  expect_base64("");
  expect_base64(R"({"a":1)");           // truncated
  expect_base64(R"({"a":1} {"b":2})");  // two values
  expect_base64("{\"a\":\"\x01\"}");    // raw control character in a string
  expect_base64(R"({"a":NaN})");
  expect_base64("{} // comment");
}

TEST(DeadLetterJson, InvalidUtf8OrBomGoesToBase64) {
  expect_base64("{\"a\":\"\xFF\"}");
  expect_base64("{\"a\":\"\xED\xA0\x80\"}");  // encoded surrogate
  expect_base64("\xEF\xBB\xBF{\"a\":1}");     // BOM: the parser would skip it, we must not
  const std::string bytes("\x00\x01\x02\xFF", 4);
  const ordered_json j = ordered_json::parse(to_json(record(bytes)));
  EXPECT_EQ(j["payloadBase64"], "AAEC/w==");
}

// Found by tests/fuzz/telemetry_fuzz.cc: nlohmann's parser takes a NUL byte for the end of its
// input, so a JSON value followed by a NUL (and anything after it) was embedded whole, and the
// DLQ record was not JSON.
TEST(DeadLetterJson, JsonFollowedByANulByteGoesToBase64) {
  expect_base64(std::string_view("{\"a\":1}\0", 8));
  expect_base64(std::string_view("{\"a\":1}\0\0\0", 10));
  expect_base64(std::string_view("42\0 garbage", 11));
}

TEST(DeadLetterJson, ARecordLargerThanTheLimitOmitsThePayloadAndSaysHowBigItWas) {
  const std::string big = "{\"messageId\":\"m\",\"pad\":\"" + std::string(5000, 'x') + "\"}";
  DeadLetter record{
      "TELEMETRY_NORMALIZED", "telemetry.normalized.v1",           7,  "c", 1, "too large",
      "invalid_message",      Timestamp::from_seconds(1769610600), big};
  const auto whole = nlohmann::json::parse(to_json(record, 6000));
  EXPECT_EQ(whole["payload"]["messageId"], "m");
  EXPECT_FALSE(whole.contains("payloadOmitted"));

  const std::string cut = to_json(record, 4000);
  EXPECT_LE(cut.size(), 4000u);
  const auto j = nlohmann::json::parse(cut);
  EXPECT_FALSE(j.contains("payload"));
  EXPECT_EQ(j["payloadOmitted"], true);
  EXPECT_EQ(j["payloadBytes"], big.size());
  EXPECT_EQ(j["streamSequence"], 7);  // where the original can still be read

  // Base64 counts at its encoded size: 3,000 bytes are 4,000 encoded.
  const std::string binary(3000, '\xff');
  record.payload = binary;
  EXPECT_TRUE(nlohmann::json::parse(to_json(record, 4200)).contains("payloadOmitted"));
  EXPECT_TRUE(nlohmann::json::parse(to_json(record, 4500)).contains("payloadBase64"));
}

// SPEC D14: `dlq replay` republishes the original bytes exactly: whitespace, key order, number
// forms and escapes as the producer wrote them.
TEST(DeadLetterJson, TheEmbeddedPayloadReadsBackByteForByte) {
  for (std::string_view payload :
       {std::string_view(R"({"z":1,"a":[1.50, 2e3],"s":"\u00e9\"}"})"),
        std::string_view("  {\"messageId\" : \"m\" ,\n \"metrics\":{} }\n"),
        std::string_view(R"("just a string, with } and , inside")"), std::string_view("[]"),
        std::string_view("12.50")}) {
    const DeadLetter record{
        "S",    "s.1", 9, "c", 1, "why", "invalid_message", Timestamp::from_seconds(1769610600),
        payload};
    const std::string json = to_json(record);
    const auto back = embedded_payload(json);
    ASSERT_TRUE(back.has_value()) << json;
    EXPECT_EQ(*back, payload);
  }
}

TEST(DeadLetterJson, ARecordWithoutAnEmbeddedPayloadHasNone) {
  const DeadLetter binary{
      "S",       "s.1", 9, "c", 1, "why", "invalid_message", Timestamp::from_seconds(1769610600),
      "\xff\xfe"};
  EXPECT_FALSE(embedded_payload(to_json(binary)).has_value());
  EXPECT_FALSE(embedded_payload("not json").has_value());
  EXPECT_FALSE(embedded_payload(R"({"payload")").has_value());
  EXPECT_FALSE(embedded_payload(R"({"a":{"payload":1}})").has_value());  // not at the top
  EXPECT_EQ(embedded_payload(R"({"a":"payload","payload":{"b":[1,{"c":"}"}]}})"),
            R"({"b":[1,{"c":"}"}]})");
}

}  // namespace
}  // namespace atw
