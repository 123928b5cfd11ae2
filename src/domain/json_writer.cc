#include "domain/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "domain/js_number.h"
#include "domain/utf8.h"

namespace atw {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

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
      const int len = utf8_sequence_length(s, i);
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

}  // namespace atw
