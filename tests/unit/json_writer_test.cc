#include "domain/json_writer.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "domain/utf8.h"

namespace atw {
namespace {

std::string num(double v) {
  std::string out;
  JsonWriter(out).number(v);
  return out;
}

std::string str(std::string_view s) {
  std::string out;
  JsonWriter(out).string(s);
  return out;
}

TEST(JsonWriterNumber, MatchesJavaScriptToString) {
  // Expected strings produced by node: String(v).
  struct Case {
    double v;
    const char* js;
  };
  const Case cases[] = {
      {100, "100"},
      {30.75, "30.75"},
      {0.1, "0.1"},
      {1e21, "1e+21"},
      {1e20, "100000000000000000000"},
      {123456789012345680000.0, "123456789012345680000"},
      {1.5e21, "1.5e+21"},
      {1e-6, "0.000001"},
      {1e-7, "1e-7"},
      {1.5e-7, "1.5e-7"},
      {0.000001234, "0.000001234"},
      {-2.5, "-2.5"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {9007199254740992.0, "9007199254740992"},
      {1152921504606846976.0, "1152921504606847000"},
      {0.1 + 0.2, "0.30000000000000004"},
      {12.3, "12.3"},
      {101.3, "101.3"},
      {-1e-10, "-1e-10"},
      {1.0 / 3, "0.3333333333333333"},
      {123e-20, "1.23e-18"},
      {1, "1"},
      {-7, "-7"},
      {999999999999999.0, "999999999999999"},
      {1e15, "1000000000000000"},
      {-123456.0, "-123456"},
      {4503599627370497.0, "4503599627370497"},
      {11.5, "11.5"},
      {1.5e-5, "0.000015"},
      {123456.789, "123456.789"},
      {999999999999999.9, "999999999999999.9"},
      {0.0000015, "0.0000015"},
  };
  for (const auto& c : cases) EXPECT_EQ(num(c.v), c.js) << c.js;
}

TEST(JsonWriterNumber, NegativeZeroIsZero) {
  EXPECT_EQ(num(-0.0), "0");
}

TEST(JsonWriterNumber, NonFiniteIsNull) {
  EXPECT_EQ(num(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(num(-std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(num(std::numeric_limits<double>::quiet_NaN()), "null");
}

TEST(JsonWriterNumber, RandomValuesRoundTripAndAreValidJson) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    if (!std::isfinite(v)) continue;
    const std::string s = num(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v == 0 ? 0.0 : v) << s;
    EXPECT_TRUE(nlohmann::json::accept(s)) << s;
    EXPECT_EQ(s.find(".e"), std::string::npos) << s;
  }
}

// The shortest round-trip digits of `v`: its scientific form without the point and exponent.
std::string shortest_digits(double v) {
  char buf[40];
  const auto end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific).ptr;
  std::string digits;
  for (const char* p = buf; p < end && *p != 'e'; ++p) {
    if (*p != '.' && *p != '-') digits += *p;
  }
  return digits;
}

TEST(JsonWriterNumber, PlainRangeHasTheShortestDigitsInPlainNotation) {
  // JavaScript writes 1e-6 <= |v| < 1e21 in plain notation, with the shortest digits that
  // round-trip. Values spread over that range by their exponent, fractions most of them.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-6, 15);
  std::uniform_real_distribution<double> mantissa(1, 10);
  for (int i = 0; i < 20000; ++i) {
    const double v = mantissa(rng) * std::pow(10.0, std::floor(exponent(rng)));
    if (v < 1e-6 || v >= 1e15) continue;
    const std::string s = num(v);
    EXPECT_EQ(s.find('e'), std::string::npos) << s;
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
    std::string digits;
    for (char c : s) {
      if (c != '.' && c != '-') digits += c;
    }
    digits.erase(0, digits.find_first_not_of('0'));  // 0.000015 -> 15
    if (s.find('.') == std::string::npos) {
      digits.erase(digits.find_last_not_of('0') + 1);  // 1500 -> 15
    }
    EXPECT_EQ(digits, shortest_digits(v)) << s;
  }
}

TEST(JsonWriterInteger, PrintsFullRange) {
  std::string out;
  JsonWriter(out)
      .begin_array()
      .integer(0)
      .integer(-42)
      .integer(INT64_MAX)
      .integer(INT64_MIN)
      .end_array();
  EXPECT_EQ(out, "[0,-42,9223372036854775807,-9223372036854775808]");
}

TEST(JsonWriterString, EscapesQuotesBackslashAndControls) {
  EXPECT_EQ(str("plain"), "\"plain\"");
  EXPECT_EQ(str("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(str("\n\t\r\b\f"), R"("\n\t\r\b\f")");
  EXPECT_EQ(str(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(str("\x7f/"), "\"\x7f/\"");  // DEL and '/' need no escape
  EXPECT_EQ(str(""), "\"\"");
}

TEST(JsonWriterString, KeepsValidUtf8) {
  const std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8";
  EXPECT_EQ(str(s), "\"" + s + "\"");
  EXPECT_EQ(nlohmann::json::parse(str(s)).get<std::string>(), s);
}

TEST(JsonWriterString, ReplacesInvalidUtf8WithOneReplacementPerMaximalSubpart) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(str("a\xFF"
                "b"),
            "\"a" + r + "b\"");  // never-valid byte
  EXPECT_EQ(str("a\x80"
                "b"),
            "\"a" + r + "b\"");                                     // stray continuation
  EXPECT_EQ(str("\xC0\xAF"), "\"" + r + r + "\"");                  // overlong lead, then stray
  EXPECT_EQ(str("\xE2\x82"), "\"" + r + "\"");                      // truncated at end
  EXPECT_EQ(str("\xE2\x82x"), "\"" + r + "x\"");                    // truncated before ASCII
  EXPECT_EQ(str("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // surrogate U+D800
  EXPECT_EQ(str("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(str("\xF0\x9F\x98"), "\"" + r + "\"");
  // The result is always valid JSON that parses.
  EXPECT_TRUE(nlohmann::json::accept(str("x\xC3\"\xFE\n")));
  EXPECT_EQ(str("x\xC3\"\n"), "\"x" + r + "\\\"\\n\"");
}

TEST(IsValidUtf8, AcceptsWellFormedRejectsIllFormed) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("abcdefgh\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("abc\xE2\x82"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

TEST(JsonWriterStructure, CommasAcrossNesting) {
  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .key("a")
      .integer(1)
      .key("b")
      .begin_array()
      .begin_object()
      .end_object()
      .begin_object()
      .key("x")
      .null()
      .end_object()
      .begin_array()
      .end_array()
      .boolean(true)
      .end_array()
      .key("c")
      .begin_object()
      .key("d")
      .string("e")
      .key("f")
      .number(1.5)
      .end_object()
      .key("g")
      .raw(R"({"r":[1,2]})")
      .key("h")
      .optional_string(std::nullopt)
      .key("i")
      .optional_number(2.0)
      .key("j")
      .boolean(false)
      .end_object();
  EXPECT_EQ(out, R"({"a":1,"b":[{},{"x":null},[],true],"c":{"d":"e","f":1.5},"g":{"r":[1,2]},)"
                 R"("h":null,"i":2,"j":false})");
  EXPECT_TRUE(nlohmann::json::accept(out));
}

TEST(JsonWriterStructure, AppendsToExistingContent) {
  std::string out = "prefix:";
  JsonWriter(out).begin_array().string("k\"").end_array();
  EXPECT_EQ(out, R"(prefix:["k\""])");
}

TEST(JsonWriterStructure, UnescapedKeysAndStringsTakeCommasLikeTheRest) {
  std::string out;
  JsonWriter(out)
      .begin_object()
      .key("a")
      .string("x")
      .key("b")
      .begin_array()
      .string("y")
      .string("z\n")
      .string("")
      .end_array()
      .key("c")
      .string("w")
      .end_object();
  EXPECT_EQ(out, R"({"a":"x","b":["y","z\n",""],"c":"w"})");
}

TEST(JsonWriterStructure, KeysAreEscaped) {
  std::string out;
  JsonWriter(out).begin_object().key("a\"\x01").integer(1).end_object();
  EXPECT_EQ(out, R"({"a\"\u0001":1})");
}

}  // namespace
}  // namespace atw
