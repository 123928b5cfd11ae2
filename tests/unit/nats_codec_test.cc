// What the worker reads off JetStream without a server: a delivery's ack subject (which stream
// position, which delivery, how much is left) and a PubAck's body (stored, or why not, and
// whether waiting can help).

#include <gtest/gtest.h>

#include <string>

#include "adapters/nats/jetstream_publisher.h"
#include "adapters/nats/jetstream_source.h"
#include "adapters/nats/max_deliveries_advisory.h"
#include "common/error_types.h"

namespace atw {
namespace {

// 2026-01-28T14:30:00.123456789Z in nanoseconds, as the server writes <tm>.
constexpr std::string_view kPublishedNanos = "1769610600123456789";
constexpr int64_t kPublishedMicros = 1769610600123456;

TEST(AckSubject, ReadsEveryFieldOfAV1Subject) {
  Delivery d;
  uint64_t pending = 0;
  ASSERT_TRUE(parse_ack_subject(
      "$JS.ACK.TELEMETRY.asset-worker.2.1234.567." + std::string(kPublishedNanos) + ".42", d,
      pending));
  EXPECT_EQ(d.stream, "TELEMETRY");
  EXPECT_EQ(d.consumer, "asset-worker");
  EXPECT_EQ(d.delivery_count, 2u);
  EXPECT_EQ(d.stream_sequence, 1234u);
  EXPECT_EQ(d.published_at.micros, kPublishedMicros);  // nanoseconds truncated to micros
  EXPECT_EQ(pending, 42u);
}

TEST(AckSubject, ReadsTheStreamSequenceAndPendingOfAV2Subject) {
  Delivery d;
  uint64_t pending = 0;
  ASSERT_TRUE(parse_ack_subject("$JS.ACK.hub.ACCOUNTHASH.TELEMETRY.asset-worker.1.99.7." +
                                    std::string(kPublishedNanos) + ".0.a1b2c3",
                                d, pending));
  EXPECT_EQ(d.stream, "TELEMETRY");  // not the domain or the account hash
  EXPECT_EQ(d.consumer, "asset-worker");
  EXPECT_EQ(d.delivery_count, 1u);
  EXPECT_EQ(d.stream_sequence, 99u);
  EXPECT_EQ(d.published_at.micros, kPublishedMicros);
  EXPECT_EQ(pending, 0u);
}

TEST(AckSubject, AV2SubjectWithTokensAfterTheRandomOneIsStillRead) {
  // The server may append tokens to the v2 form: the fields before them are what counts.
  Delivery d;
  uint64_t pending = 0;
  ASSERT_TRUE(parse_ack_subject(
      "$JS.ACK._.ACCOUNTHASH.S.C.3.18446744073709551615.1.2000.7.tok.more", d, pending));
  EXPECT_EQ(d.stream, "S");
  EXPECT_EQ(d.consumer, "C");
  EXPECT_EQ(d.delivery_count, 3u);
  EXPECT_EQ(d.stream_sequence, UINT64_MAX);
  EXPECT_EQ(d.published_at.micros, 2);
  EXPECT_EQ(pending, 7u);
}

TEST(AckSubject, FillsOnlyThePositionAndLeavesTheMessageToTheCaller) {
  Delivery d;
  d.payload = "body";
  d.subject = "telemetry.org.dev";
  d.ack_token = "kept";
  d.stream_pending = 5;
  uint64_t pending = 0;
  ASSERT_TRUE(parse_ack_subject("$JS.ACK.S.C.1.2.3.4000.9", d, pending));
  EXPECT_EQ(d.payload, "body");
  EXPECT_EQ(d.subject, "telemetry.org.dev");
  EXPECT_EQ(d.ack_token, "kept");
  EXPECT_EQ(d.stream_pending, 5u);  // pending comes back through its own argument
  EXPECT_EQ(pending, 9u);
  EXPECT_EQ(d.published_at.micros, 4);
}

TEST(AckSubject, SubjectsThatAreNotAckSubjectsAreRejected) {
  for (const std::string_view bad : {
           "",
           "$JS.ACK",
           "$JS.ACK.S.C.1.2.3.4",                       // 8 tokens: pending missing
           "$JS.ACK.D.S.C.1.2.3.4.5",                   // 10 tokens: neither form
           "$JS.ACK.D.A.S.C.1.2.3.4.5",                 // 11 tokens: v2 without its token
           "$JS.API.S.C.1.2.3.4.5",                     // not an ack
           "$js.ack.S.C.1.2.3.4.5",                     // subjects are case-sensitive
           "JS.ACK.S.C.1.2.3.4.5",                      // no $
           "_INBOX.abc.S.C.1.2.3.4.5",                  // a status reply on the inbox
           "$JS.ACK.S.C.x.2.3.4.5",                     // delivered not a number
           "$JS.ACK.S.C.1.x.3.4.5",                     // stream sequence not a number
           "$JS.ACK.S.C.1.2.x.4.5",                     // consumer sequence not a number
           "$JS.ACK.S.C.1.2.3.x.5",                     // timestamp not a number
           "$JS.ACK.S.C.1.2.3.4.x",                     // pending not a number
           "$JS.ACK.S.C.1.2.3.4.",                      // pending empty
           "$JS.ACK.S.C..2.3.4.5",                      // delivered empty
           "$JS.ACK.S.C.-1.2.3.4.5",                    // negative
           "$JS.ACK.S.C.+1.2.3.4.5",                    // signed
           "$JS.ACK.S.C. 1.2.3.4.5",                    // space
           "$JS.ACK.S.C.1.2x.3.4.5",                    // trailing garbage
           "$JS.ACK.S.C.1.18446744073709551616.3.4.5",  // past 64 bits
           "$JS.ACK.D.A.S.C.1.2.3.x.5.tok",             // v2 with a bad timestamp
           "$JS.ACK.D.A.S.C.1.2.3.4.x.tok",             // v2 with a bad pending
       }) {
    Delivery d;
    d.stream = "untouched";
    d.stream_sequence = 77;
    uint64_t pending = 0;
    EXPECT_FALSE(parse_ack_subject(bad, d, pending)) << bad;
    EXPECT_EQ(d.stream, "untouched") << bad;
    EXPECT_EQ(d.stream_sequence, 77u) << bad;
  }
}

void expect_failure(const Status& st, ErrorKind kind, std::string_view type,
                    std::string_view body) {
  ASSERT_FALSE(st.ok()) << body;
  EXPECT_EQ(st.kind(), kind) << body << " -> " << st.to_string();
  EXPECT_EQ(st.type(), type) << body << " -> " << st.to_string();
}

TEST(PubAck, AStoredMessageIsOk) {
  EXPECT_TRUE(parse_pub_ack(R"({"stream":"X","seq":5})").ok());
  EXPECT_TRUE(
      parse_pub_ack(R"({"stream":"EVENTS","domain":"hub","seq":18446744073709551615})").ok());
}

TEST(PubAck, ADuplicateTheStreamDroppedCountsAsPublished) {
  EXPECT_TRUE(parse_pub_ack(R"({"stream":"X","seq":5,"duplicate":true})").ok());
}

TEST(PubAck, AMessageLargerThanTheStreamTakesIsRefusedForGood) {
  const std::string_view body =
      R"({"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}})";
  const Status st = parse_pub_ack(body);
  expect_failure(st, ErrorKind::kPermanent, error_type::kPublishRefused, body);
  EXPECT_EQ(st.message(), "the stream refused it: message size exceeds maximum allowed");
}

TEST(PubAck, ARefusalThatWouldRefuseAnyMessageIsWaitedOut) {
  // A full stream (discard new), an account over its limits, storage trouble: not the
  // message's fault, so Unavailable (retryable, no delivery spent), never dead-lettered.
  for (const std::string_view body : {
           R"({"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}})",
           R"({"error":{"code":400,"err_code":10047,"description":"insufficient resources"}})",
           R"({"error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}})",
       }) {
    const Status st = parse_pub_ack(body);
    expect_failure(st, ErrorKind::kUnavailable, error_type::kPublishFailed, body);
    EXPECT_TRUE(st.retryable()) << body;
  }
  EXPECT_EQ(
      parse_pub_ack(
          R"({"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}})")
          .message(),
      "maximum messages exceeded (err_code 10077)");
}

TEST(PubAck, AnErrorWithoutCodeOrDescriptionIsWaitedOut) {
  const std::string_view body = R"({"error":{"code":503}})";
  const Status st = parse_pub_ack(body);
  expect_failure(st, ErrorKind::kUnavailable, error_type::kPublishFailed, body);
  EXPECT_EQ(st.message(), "error (err_code 0)");
  // An error the JSON parser cannot read is an error all the same, never a success.
  const std::string_view cut = R"({"error":{"code":503,"err_code":10054)";
  const Status cut_status = parse_pub_ack(cut);
  expect_failure(cut_status, ErrorKind::kUnavailable, error_type::kPublishFailed, cut);
  EXPECT_EQ(cut_status.message(), "error (err_code 0)");
  const std::string_view not_object = R"({"error":"stream not found","seq":1})";
  expect_failure(parse_pub_ack(not_object), ErrorKind::kUnavailable, error_type::kPublishFailed,
                 not_object);
}

TEST(PubAck, ABodyThatIsNoPubAckIsWaitedOut) {
  for (const std::string_view body : {"", "garbage", "{}", "null", R"({"stream":"X"})", "+OK"}) {
    const Status st = parse_pub_ack(body);
    expect_failure(st, ErrorKind::kUnavailable, error_type::kPublishFailed, body);
    EXPECT_EQ(st.message(), "unexpected PubAck: " + std::string(body));
  }
}

// The body is read as JSON, not searched for text: `error` is a valid stream name.
TEST(PubAck, AStoredMessageOnAStreamNamedErrorIsOk) {
  EXPECT_TRUE(parse_pub_ack(R"({"stream":"error","seq":5})").ok());
}

// A cut or garbled PubAck is not a sign the message was stored.
TEST(PubAck, ABodyThatOnlyMentionsSeqIsNotASuccess) {
  EXPECT_FALSE(parse_pub_ack(R"({"stream":"X","seq":)").ok());
  EXPECT_FALSE(parse_pub_ack(R"(garbage "seq")").ok());
}

// Fields of other types than JetStream sends give a Status, never an exception.
TEST(PubAck, AnErrorWithFieldsOfOtherTypesIsAStatusNotAnException) {
  Status st;
  ASSERT_NO_THROW(st = parse_pub_ack(R"({"error":{"code":400,"err_code":"10054"}})"));
  EXPECT_EQ(st.kind(), ErrorKind::kUnavailable);
  ASSERT_NO_THROW(st = parse_pub_ack(R"({"error":{"code":400,"description":7}})"));
  EXPECT_EQ(st.kind(), ErrorKind::kUnavailable);
}

TEST(MaxDeliveriesAdvisory, ReadsTheStreamSequenceConsumerAndDeliveries) {
  const auto a = read_max_deliveries_advisory(
      R"({"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2026-01-01T00:00:00Z",)"
      R"("stream":"TELEMETRY_NORMALIZED","consumer":"asset-processor-group","stream_seq":42,"deliveries":3})");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->stream, "TELEMETRY_NORMALIZED");
  EXPECT_EQ(a->consumer, "asset-processor-group");
  EXPECT_EQ(a->stream_sequence, 42u);
  EXPECT_EQ(a->deliveries, 3u);
}

TEST(MaxDeliveriesAdvisory, WithoutConsumerOrDeliveriesThoseAreEmpty) {
  const auto a = read_max_deliveries_advisory(R"({"stream":"S","stream_seq":7,"deliveries":"3"})");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->consumer, "");
  EXPECT_EQ(a->deliveries, 0u);  // a field of another type is read as absent
}

TEST(MaxDeliveriesAdvisory, WithoutAStreamOrAnUnsignedSequenceItIsNone) {
  for (const std::string_view payload :
       {"", "{not json", "[]", R"({"stream":"S"})", R"({"stream_seq":1})",
        R"({"stream":"S","stream_seq":-1})", R"({"stream":7,"stream_seq":1})",
        R"({"stream":"S","stream_seq":"1"})"}) {
    EXPECT_FALSE(read_max_deliveries_advisory(payload).has_value()) << payload;
  }
}

}  // namespace
}  // namespace atw
