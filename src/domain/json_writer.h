#pragma once
// A minimal append-only JSON writer for the hot path (events, DLQ records, cached links).
// The caller is responsible for well-formed nesting; the writer handles commas and escaping.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace atw {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& string(std::string_view s);  // escapes per RFC 8259; invalid UTF-8 becomes U+FFFD
  JsonWriter& number(double v);            // shortest round-trip form; non-finite becomes null
  JsonWriter& integer(int64_t v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  JsonWriter& optional_string(const std::optional<std::string>& s) {
    return s ? string(*s) : null();
  }
  JsonWriter& optional_number(const std::optional<double>& v) { return v ? number(*v) : null(); }
  // Inserts already-serialized JSON as a value (trusted: not checked).
  JsonWriter& raw(std::string_view json);

 private:
  void separate();
  std::string& out_;
  bool need_comma_ = false;
};

}  // namespace atw
