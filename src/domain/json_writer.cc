#include "domain/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace atw {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Length of the well-formed UTF-8 sequence that starts at s[i] (a non-ASCII lead byte), or, when
// it is ill-formed, the negated length of its maximal subpart (Unicode §3.9, U+FFFD substitution
// of maximal subparts), so that each broken sequence becomes exactly one U+FFFD.
int utf8_sequence(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int need;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return -1;  // stray continuation byte, overlong C0/C1, or F5..FF
  }
  int len = 1;
  for (int k = 0; k < need; ++k, lo = 0x80, hi = 0xBF) {
    if (i + len >= s.size()) return -len;
    const auto b = static_cast<unsigned char>(s[i + len]);
    if (b < lo || b > hi) return -len;
    ++len;
  }
  return len;
}

// Bytes that go into a JSON string literal as they are: printable ASCII other than `"` and `\`.
constexpr auto kVerbatim = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

bool is_verbatim(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return kVerbatim[static_cast<unsigned char>(c)]; });
}

// Appends `"s"` (`s` all verbatim bytes) with an optional comma before and colon after, in one
// step: the common case, a key or string that needs no escaping.
void append_plain(std::string& out, bool comma, std::string_view s, bool colon) {
  const size_t at = out.size();
  out.resize(at + (comma ? 1 : 0) + s.size() + 2 + (colon ? 1 : 0));
  char* p = out.data() + at;
  if (comma) *p++ = ',';
  *p++ = '"';
  std::memcpy(p, s.data(), s.size());
  p += s.size();
  *p++ = '"';
  if (colon) *p = ':';
}

// Appends `s` as a JSON string literal. One pass: runs of bytes that need no escaping (including
// well-formed multi-byte sequences) are copied in one append.
void append_quoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;  // start of the pending run of bytes to copy verbatim
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    while (i < n && kVerbatim[static_cast<unsigned char>(s[i])]) ++i;
    if (i == n) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const int len = utf8_sequence(s, i);
      if (len > 0) {
        i += static_cast<size_t>(len);
        continue;
      }
      out.append(s.data() + run, i - run);
      out += kReplacement;
      i += static_cast<size_t>(-len);
      run = i;
      continue;
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
    ++i;
    run = i;
  }
  out.append(s.data() + run, i - run);
  out += '"';
}

// Number.prototype.toString() (ECMA-262 Number::toString): the shortest digits that round-trip,
// laid out in plain notation for exponents in [-7, 21) and in `1.5e+21` notation outside.
void append_js_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  if (v == 0) {  // also -0, which JavaScript prints as "0"
    out += '0';
    return;
  }
  if (v < 0) {
    out += '-';
    v = -v;
  }
  if (v < 1e15 && v == std::floor(v)) {
    // Whole numbers (scores, counts) are common and print exactly as integers, several times
    // faster than the shortest-digits search.
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out.append(buf, res.ptr);
    return;
  }
  if (v >= 1e-6 && v < 1e15) {
    // Most readings: the shortest round-trip form, when it comes out in plain notation, is
    // JavaScript's (the same digits, laid out the same way in this range). When the scientific
    // form is shorter (1.5e-05), it is laid out below.
    char plain[32];
    const auto res = std::to_chars(plain, plain + sizeof plain, v);
    if (std::find(plain, res.ptr, 'e') == res.ptr) {
      out.append(plain, res.ptr);
      return;
    }
  }
  // Shortest round-trip scientific form: d[.ddd]e±XX.
  char sci[32];
  const auto res = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  char digits[24];
  int k = 0;
  const char* p = sci;
  for (; p < res.ptr && *p != 'e'; ++p) {
    if (*p != '.') digits[k++] = *p;
  }
  int exp10 = 0;
  std::from_chars(p + (p[1] == '+' ? 2 : 1), res.ptr, exp10);
  const int n = exp10 + 1;  // v = 0.digits × 10^n
  if (k <= n && n <= 21) {
    out.append(digits, static_cast<size_t>(k));
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, static_cast<size_t>(n));
    out += '.';
    out.append(digits + n, static_cast<size_t>(k - n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out.append(digits, static_cast<size_t>(k));
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits + 1, static_cast<size_t>(k - 1));
    }
    out += n - 1 >= 0 ? "e+" : "e-";
    char e[8];
    const auto er = std::to_chars(e, e + sizeof e, std::abs(n - 1));
    out.append(e, er.ptr);
  }
}

}  // namespace

void JsonWriter::separate() {
  if (need_comma_) out_ += ',';
}

JsonWriter& JsonWriter::begin_object() {
  separate();
  out_ += '{';
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  separate();
  out_ += '[';
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_ += ']';
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  if (is_verbatim(k)) {
    append_plain(out_, need_comma_, k, true);
  } else {
    separate();
    append_quoted(out_, k);
    out_ += ':';
  }
  need_comma_ = false;  // the value follows the colon directly
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view s) {
  if (is_verbatim(s)) {
    append_plain(out_, need_comma_, s, false);
  } else {
    separate();
    append_quoted(out_, s);
  }
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::number(double v) {
  separate();
  append_js_number(out_, v);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::integer(int64_t v) {
  separate();
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, res.ptr);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::boolean(bool v) {
  separate();
  out_ += v ? "true" : "false";
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  separate();
  out_ += json;
  need_comma_ = true;
  return *this;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII is the common case: skip it eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= s.size()) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const int len = utf8_sequence(s, i);
    if (len < 0) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

}  // namespace atw
