// What the PostgreSQL adapter decides and writes without a server: the kind of a refusal by its
// SQLSTATE (wait, retry or dead-letter), the bytes of the binary COPYs the sink streams, and
// the text[] literals its statements take.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adapters/postgres/pg_connection.h"
#include "adapters/postgres/pg_telemetry_sink.h"
#include "common/error_types.h"

namespace atw {
namespace {

// ---- pg_sqlstate_status / pg_error_status ----

constexpr std::string_view kType = "db_write_failed";

void expect_kind(std::string_view sqlstate, ErrorKind kind, std::string_view type) {
  const Status st = pg_sqlstate_status(sqlstate, "ERROR:  it failed", kType);
  ASSERT_FALSE(st.ok()) << sqlstate;
  EXPECT_EQ(st.kind(), kind) << sqlstate << " -> " << st.to_string();
  EXPECT_EQ(st.type(), type) << sqlstate << " -> " << st.to_string();
}

TEST(PgSqlstate, ALostConnectionIsUnavailableWithTheCallersType) {
  for (std::string_view s : {"08000", "08003", "08006", "08001", "08004", "08P01"}) {
    expect_kind(s, ErrorKind::kUnavailable, kType);
  }
  EXPECT_EQ(pg_sqlstate_status("08006", "server closed the connection", kType).message(),
            "server closed the connection");
}

TEST(PgSqlstate, DataAndConstraintErrorsArePermanent) {
  // The message's own data: the same batch fails again, so it is split and dead-lettered.
  for (std::string_view s :
       {"22000", "22001", "22003", "22007", "22P02", "23000", "23505", "23503", "23514", "23P01"}) {
    expect_kind(s, ErrorKind::kPermanent, kType);
  }
  EXPECT_EQ(pg_sqlstate_status("23505", "duplicate key", kType).message(), "duplicate key");
}

TEST(PgSqlstate, AServerNotReadyForTheWorkerIsWaitedOutAsDbNotReady) {
  for (std::string_view s :
       {"42P01", "42703", "42883", "42501", "42601", "42809", "25006", "57014", "55P03",
        "55006", "53000", "53100", "53200", "53300", "57P01", "57P02", "57P03", "57P04",
        "3D000", "28000", "28P01", "58000", "58030", "22P03", "23502"}) {
    expect_kind(s, ErrorKind::kUnavailable, error_type::kDbNotReady);
  }
}

TEST(PgSqlstate, ANotReadyMessageNamesTheSqlstateAndWhatToDo) {
  EXPECT_EQ(
      pg_sqlstate_status("42P01", "relation \"telemetry_history\" does not exist", kType).message(),
      "relation \"telemetry_history\" does not exist [SQLSTATE 42P01] (the schema is not "
      "the worker's yet: run `asset-worker migrate`)");
  EXPECT_EQ(pg_sqlstate_status("42501", "permission denied for table assets", kType).message(),
            "permission denied for table assets [SQLSTATE 42501] (grant the worker's role the "
            "rights docs/adopting.md lists)");
  EXPECT_EQ(pg_sqlstate_status("23502", "null value in column \"x\"", kType).message(),
            "null value in column \"x\" [SQLSTATE 23502] (the table's columns are not what the "
            "worker writes: see docs/adopting.md)");
  EXPECT_EQ(pg_sqlstate_status("57P01", "terminating connection", kType).message(),
            "terminating connection [SQLSTATE 57P01]");
}

TEST(PgSqlstate, EverythingElseIsRetryable) {
  // Conflicts between transactions and the like: the same batch may well succeed next time.
  for (std::string_view s : {"40001", "40P01", "25P02", "55000", "XX000", "P0001", "0A000", "21000",
                             "24000", "2D000", "44000", "57000"}) {
    expect_kind(s, ErrorKind::kRetryable, kType);
  }
}

TEST(PgErrorStatus, NoConnectionIsUnavailable) {
  const Status st = pg_error_status(nullptr, nullptr, kType);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(st.type(), kType);
  EXPECT_EQ(st.message(), "no connection");
}

TEST(PgErrorStatus, ABrokenConnectionIsUnavailableWithLibpqsWordsTrimmed) {
  // A socket directory that does not exist: libpq fails at once, no server involved.
  std::unique_ptr<PGconn, PgConnDeleter> conn(
      PQconnectdb("host=/nonexistent-atw-socket-dir port=1 connect_timeout=1"));
  ASSERT_NE(conn, nullptr);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
  const Status st = pg_error_status(nullptr, conn.get(), kType);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.kind(), ErrorKind::kUnavailable);
  EXPECT_EQ(st.type(), kType);
  EXPECT_NE(st.message().find("/nonexistent-atw-socket-dir/.s.PGSQL.1"), std::string::npos)
      << st.message();
  ASSERT_FALSE(st.message().empty());
  EXPECT_NE(st.message().back(), '\n');
  EXPECT_NE(st.message().back(), ' ');
}

// ---- binary COPY ----

// Expected bytes, written field by field: `hex` for the binary parts, `text` for raw text.
class Bytes {
 public:
  Bytes& hex(std::string_view h) {
    for (size_t i = 0; i < h.size();) {
      if (h[i] == ' ') {
        ++i;
        continue;
      }
      out_.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
      i += 2;
    }
    return *this;
  }
  Bytes& text(std::string_view t) {
    out_.append(t);
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// One byte per pair of hex digits, so that a mismatch shows where.
std::string as_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out.push_back(' ');
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xF]);
  }
  return out;
}

// PostgreSQL's binary COPY signature, flags (0) and header extension length (0).
constexpr std::string_view kCopyHeaderHex =
    "50 47 43 4f 50 59 0a ff 0d 0a 00  00 00 00 00  00 00 00 00";
constexpr std::string_view kCopyTrailerHex = "ff ff";

using Row = std::vector<std::optional<std::string>>;

// Reads a binary COPY back (header, tuples, trailer), failing the test on anything malformed.
std::vector<Row> read_copy(std::string_view data) {
  std::vector<Row> rows;
  const std::string header = Bytes().hex(kCopyHeaderHex).str();
  EXPECT_EQ(as_hex(data.substr(0, header.size())), as_hex(header));
  size_t at = header.size();
  auto take = [&](size_t n) -> uint64_t {
    uint64_t v = 0;
    if (at + n > data.size()) {
      ADD_FAILURE() << "COPY data ends inside a field";
      at = data.size();
      return 0;
    }
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(data[at + i]);
    at += n;
    return v;
  };
  while (at < data.size()) {
    const auto fields = static_cast<int16_t>(take(2));
    if (fields == -1) {
      EXPECT_EQ(at, data.size()) << "bytes after the trailer";
      return rows;
    }
    Row row;
    for (int16_t f = 0; f < fields && at < data.size(); ++f) {
      const auto len = static_cast<int32_t>(take(4));
      if (len == -1) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(data.substr(at, static_cast<size_t>(len))));
        at += static_cast<size_t>(len);
      }
    }
    rows.push_back(std::move(row));
  }
  ADD_FAILURE() << "no trailer";
  return rows;
}

constexpr Timestamp kMeasured = Timestamp::from_seconds(1769610600);  // 2026-01-28T14:30:00Z
constexpr Timestamp kReceived{1769610601250000};                      // 14:30:01.25

MessageResult message(std::string id, std::string device, std::vector<AssetResult> assets) {
  MessageResult m;
  m.message_id = std::move(id);
  m.device_id = std::move(device);
  m.organization_id = "org-1";
  m.timestamp = kMeasured;
  m.assets = std::move(assets);
  return m;
}

AssetResult asset(std::string id, MetricSet metrics) {
  AssetResult a;
  a.asset_id = std::move(id);
  a.metrics = std::move(metrics);
  return a;
}

TEST(HistoryCopy, OneRowIsExactlyPostgresBinaryCopy) {
  const std::vector<MessageResult> batch = {
      message("msg-1", "dev-1", {asset("pump-a", {{"temp", 21.5, Quality::kGood}})})};
  std::string out;
  encode_history_copy(batch, {true}, kReceived, out);
  const std::string expected = Bytes()
                                   .hex(kCopyHeaderHex)
                                   .hex("00 08")  // eight fields
                                   .hex("00 00 00 06")
                                   .text("pump-a")  // entity_id
                                   .hex("00 00 00 05")
                                   .text("Asset")  // entity_type
                                   .hex("00 00 00 04")
                                   .text("temp")                                 // metric_key
                                   .hex("00 00 00 08  40 35 80 00 00 00 00 00")  // 21.5
                                   // timestamp: 822925800 s after 2000-01-01, in microseconds
                                   .hex("00 00 00 08  00 02 ec 72 57 fc 4a 00")
                                   .hex("00 00 00 08  00 02 ec 72 58 0f 5c d0")  // received_at
                                   .hex("00 00 00 05")
                                   .text("dev-1")  // source_device_id
                                   .hex("00 00 00 04")
                                   .text("good")  // quality
                                   .hex(kCopyTrailerHex)
                                   .str();
  EXPECT_EQ(as_hex(out), as_hex(expected));
}

TEST(HistoryCopy, AnEmptyBatchIsHeaderAndTrailerOnly) {
  const std::vector<MessageResult> batch = {
      message("msg-1", "dev-1", {asset("pump-a", {{"temp", 21.5}})})};
  std::string out;
  encode_history_copy(batch, {false}, kReceived, out);
  EXPECT_EQ(as_hex(out), as_hex(Bytes().hex(kCopyHeaderHex).hex(kCopyTrailerHex).str()));
  std::string none;
  encode_history_copy({}, {}, kReceived, none);
  EXPECT_EQ(none, out);
}

TEST(HistoryCopy, AppendsToWhatTheBufferHolds) {
  std::string out = "kept";
  encode_history_copy({}, {}, kReceived, out);
  EXPECT_EQ(as_hex(out), as_hex(Bytes().text("kept").hex(kCopyHeaderHex).hex("ff ff").str()));
}

TEST(HistoryCopy, OneRowPerAssetMetricOfTheIncludedMessagesInOrder) {
  const std::vector<MessageResult> batch = {
      message("msg-1", "dev-1",
              {asset("pump-a", {{"temp", 21.5}, {"flow", -1.25, Quality::kUncertain}}),
               asset("pump-b", {{"power", 0.1, Quality::kBad}})}),
      message("msg-2", "dev-2", {asset("pump-c", {{"temp", 99}})}),  // left out
      message("msg-3", "dev-3", {asset("pump-d", {{"level", 3}})}),
  };
  std::string out;
  encode_history_copy(batch, {true, false, true}, kReceived, out);
  const std::vector<Row> rows = read_copy(out);
  ASSERT_EQ(rows.size(), 4u);
  for (const Row& r : rows) ASSERT_EQ(r.size(), 8u);
  auto field = [&](size_t row, size_t col) { return *rows[row][col]; };
  EXPECT_EQ(field(0, 0), "pump-a");
  EXPECT_EQ(field(0, 2), "temp");
  EXPECT_EQ(field(1, 0), "pump-a");
  EXPECT_EQ(field(1, 2), "flow");
  EXPECT_EQ(as_hex(field(1, 3)), "bf f4 00 00 00 00 00 00");  // -1.25
  EXPECT_EQ(field(1, 7), "uncertain");
  EXPECT_EQ(field(2, 0), "pump-b");
  EXPECT_EQ(as_hex(field(2, 3)), "3f b9 99 99 99 99 99 9a");  // 0.1
  EXPECT_EQ(field(2, 6), "dev-1");
  EXPECT_EQ(field(2, 7), "bad");
  EXPECT_EQ(field(3, 0), "pump-d");
  EXPECT_EQ(field(3, 2), "level");
  EXPECT_EQ(field(3, 6), "dev-3");
  for (const Row& r : rows) EXPECT_EQ(r[1], "Asset");
}

TEST(HistoryCopy, AnInstantBefore2000IsANegativeCount) {
  std::vector<MessageResult> batch = {message("m", "d", {asset("a", {{"t", 1}})})};
  batch[0].timestamp = Timestamp::from_seconds(946684799);  // 1999-12-31T23:59:59Z
  std::string out;
  encode_history_copy(batch, {true}, Timestamp::from_seconds(946684800), out);
  const std::vector<Row> rows = read_copy(out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(as_hex(*rows[0][4]), "ff ff ff ff ff f0 bd c0");  // -1,000,000 microseconds
  EXPECT_EQ(as_hex(*rows[0][5]), "00 00 00 00 00 00 00 00");  // 2000-01-01 itself
}

TEST(ProcessedCopy, OneRowIsExactlyPostgresBinaryCopy) {
  const std::vector<MessageResult> batch = {
      message("msg-1", "dev-1", {asset("pump-a", {{"temp", 21.5}})})};
  const std::vector<RecordedWrite> recorded = {{R"({"pump-a":87.5})", R"([{"to":"warning"}])"}};
  std::string out;
  encode_processed_copy(batch, {true}, recorded, kReceived, "worker-7", out);
  const std::string expected = Bytes()
                                   .hex(kCopyHeaderHex)
                                   .hex("00 08")
                                   .hex("00 00 00 05")
                                   .text("msg-1")  // message_id
                                   .hex("00 00 00 05")
                                   .text("org-1")  // organization_id
                                   .hex("00 00 00 05")
                                   .text("dev-1")                                // device_id
                                   .hex("00 00 00 08  00 02 ec 72 57 fc 4a 00")  // timestamp
                                   .hex("00 00 00 08  00 02 ec 72 58 0f 5c d0")  // processed_at
                                   // previous_scores, jsonb: version 1, then the text
                                   .hex("00 00 00 10  01")
                                   .text(R"({"pump-a":87.5})")
                                   .hex("00 00 00 08")
                                   .text("worker-7")  // processed_by
                                   .hex("00 00 00 12")
                                   .text(R"([{"to":"warning"}])")  // state_changes, json
                                   .hex(kCopyTrailerHex)
                                   .str();
  EXPECT_EQ(as_hex(out), as_hex(expected));
}

TEST(ProcessedCopy, NoWorkerIdAndNoStateChangesAreNull) {
  const std::vector<MessageResult> batch = {
      message("msg-1", "dev-1", {asset("pump-a", {{"temp", 1}})}),
      message("msg-2", "dev-2", {asset("pump-b", {{"temp", 2}})}),
      message("msg-3", "dev-3", {asset("pump-c", {{"temp", 3}})}),
  };
  const std::vector<RecordedWrite> recorded = {
      {R"({"pump-a":null})", ""}, {"unused", "unused"}, {R"({"pump-c":1})", R"([])"}};
  std::string out;
  encode_processed_copy(batch, {true, false, true}, recorded, kReceived, "", out);
  const std::vector<Row> rows = read_copy(out);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0].size(), 8u);
  ASSERT_EQ(rows[1].size(), 8u);
  EXPECT_EQ(rows[0][0], "msg-1");
  EXPECT_EQ(rows[0][5], std::string("\1") + R"({"pump-a":null})");
  EXPECT_EQ(rows[0][6], std::nullopt);  // processed_by
  EXPECT_EQ(rows[0][7], std::nullopt);  // state_changes
  EXPECT_EQ(rows[1][0], "msg-3");
  EXPECT_EQ(rows[1][2], "dev-3");
  EXPECT_EQ(rows[1][5], std::string("\1") + R"({"pump-c":1})");
  EXPECT_EQ(rows[1][6], std::nullopt);
  EXPECT_EQ(rows[1][7], "[]");
  // NULL is a length of -1 with no bytes after it: the first row ends on two, the next begins.
  EXPECT_NE(as_hex(out).find("ff ff ff ff ff ff ff ff 00 08 00 00 00 05"), std::string::npos);
}

TEST(HistoryCopyText, EscapesWhatCopysTextFormatWouldReadAsSeparators) {
  const std::vector<MessageResult> batch = {
      message("m", "dev\t1\\x", {asset("pump\na", {{"te\rmp", 21.5, Quality::kUncertain}})})};
  std::string out;
  encode_history_copy_text(batch, {true}, kReceived, out);
  EXPECT_EQ(out,
            "pump\\na\tAsset\tte\\rmp\t21.5\t2026-01-28T14:30:00Z\t2026-01-28T14:30:01.25Z\t"
            "dev\\t1\\\\x\tuncertain\n");
}

TEST(HistoryColumns, OnlyTheTypesOfTheBinaryRowsTakeThem) {
  const std::vector<std::string> ours = {"text",
                                         "character varying(50)",
                                         "character(20)",
                                         "double precision",
                                         "timestamp with time zone",
                                         "timestamp without time zone",
                                         "text",
                                         "text"};
  EXPECT_TRUE(history_columns_take_binary(ours));
  auto with = [&](size_t i, std::string type) {
    std::vector<std::string> c = ours;
    c[i] = std::move(type);
    return c;
  };
  EXPECT_FALSE(history_columns_take_binary(with(3, "numeric")));
  EXPECT_FALSE(history_columns_take_binary(with(3, "real")));
  EXPECT_FALSE(history_columns_take_binary(with(4, "bigint")));
  EXPECT_FALSE(history_columns_take_binary(with(0, "uuid")));
  EXPECT_FALSE(history_columns_take_binary(with(7, "smallint")));
  EXPECT_FALSE(history_columns_take_binary({ours.begin(), ours.end() - 1}));
  EXPECT_FALSE(history_columns_take_binary({}));
}

TEST(IdentityKey, JoinsOrganizationDeviceAndMessageIdByNewlines) {
  MessageResult m = message("msg-1", "dev-1", {});
  EXPECT_EQ(identity_key(m), "org-1\ndev-1\nmsg-1");
}

// ---- text[] literals ----

TEST(PgTextArray, QuotesEveryElementAndEscapesQuoteAndBackslash) {
  EXPECT_EQ(pg_text_array({}), "{}");
  EXPECT_EQ(pg_text_array({"a"}), R"({"a"})");
  EXPECT_EQ(pg_text_array({"a", "b\"c"}), R"({"a","b\"c"})");
  EXPECT_EQ(pg_text_array({R"(back\slash)"}), R"({"back\\slash"})");
  EXPECT_EQ(pg_text_array({R"(\")"}), R"({"\\\""})");
}

TEST(PgTextArray, SeparatorsBracesAndEmptyStringsStayInsideTheirElement) {
  EXPECT_EQ(pg_text_array({"a,b", "{c}", ""}), R"({"a,b","{c}",""})");
  EXPECT_EQ(pg_text_array({"", ""}), R"({"",""})");
  // Quoted, NULL is the text NULL, and spaces are kept.
  EXPECT_EQ(pg_text_array({"NULL", " x "}), R"({"NULL"," x "})");
  EXPECT_EQ(pg_text_array({"caf\xC3\xA9", "a'b"}), "{\"caf\xC3\xA9\",\"a'b\"}");
}

}  // namespace
}  // namespace atw
