#include "domain/dead_letter.h"

#include <nlohmann/json.hpp>

#include "domain/json_writer.h"
#include "domain/utf8.h"

namespace atw {
namespace {

// Embedding is safe only for bytes that are, on their own, one JSON value in UTF-8 without a
// byte order mark (the parser skips a BOM, but inside our record it would be invalid JSON).
// JSON text never holds a raw NUL, and nlohmann's parser takes one for the end of its input, so
// it would accept `{}` followed by a NUL and anything at all.
bool embeddable_json(std::string_view payload) {
  if (payload.substr(0, 3) == "\xEF\xBB\xBF") return false;
  if (payload.find('\0') != std::string_view::npos) return false;
  return is_valid_utf8(payload) && nlohmann::json::accept(payload);
}

}  // namespace

std::string to_json(const DeadLetter& record, size_t max_bytes) {
  const bool embed = embeddable_json(record.payload);
  const size_t payload_size = embed ? record.payload.size() : (record.payload.size() + 2) / 3 * 4;
  std::string out;
  out.reserve(256 + record.last_error.size() + payload_size);
  JsonWriter w(out);
  w.begin_object();
  w.key("originalStream").string(record.original_stream);
  w.key("originalSubject").string(record.original_subject);
  w.key("streamSequence").integer(static_cast<int64_t>(record.stream_sequence));
  w.key("consumer").string(record.consumer);
  w.key("deliveryCount").integer(static_cast<int64_t>(record.delivery_count));
  w.key("lastError").string(record.last_error);
  w.key("errorType").string(record.error_type);
  w.key("failedAt").string(format_iso_millis(record.failed_at));
  // The fields so far plus the payload's key, quotes and closing brace.
  if (out.size() + payload_size + 20 > max_bytes) {
    w.key("payloadOmitted").boolean(true);
    w.key("payloadBytes").integer(static_cast<int64_t>(record.payload.size()));
  } else if (embed) {
    w.key("payload").raw(record.payload);
  } else {
    w.key("payloadBase64").string(base64_encode(record.payload));
  }
  w.end_object();
  return out;
}

namespace {

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// The end of the string whose opening quote is at `i` (one past its closing quote), or npos.
size_t string_end(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The end of the value starting at or after `i`: the `,` or `}` that closes it at the top level
// of its object, or npos.
size_t value_end(std::string_view s, size_t i) {
  int depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      i = string_end(s, i);
      if (i == std::string_view::npos) return i;
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') {
      if (depth == 0) return c == '}' ? i : std::string_view::npos;
      --depth;
    }
    if (c == ',' && depth == 0) return i;
    ++i;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string_view> embedded_payload(std::string_view record) {
  // The record's members, scanned as written: the payload is the bytes between its colon and
  // the delimiter after it, which are the original's own, whitespace included.
  size_t i = skip_space(record, 0);
  if (i >= record.size() || record[i] != '{') return std::nullopt;
  ++i;
  while (true) {
    i = skip_space(record, i);
    if (i >= record.size() || record[i] != '"') return std::nullopt;
    const size_t key_end = string_end(record, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    const std::string_view key = record.substr(i + 1, key_end - i - 2);
    i = skip_space(record, key_end);
    if (i >= record.size() || record[i] != ':') return std::nullopt;
    const size_t start = i + 1;
    const size_t end = value_end(record, start);
    if (end == std::string_view::npos) return std::nullopt;
    if (key == "payload") return record.substr(start, end - start);
    if (record[end] == '}') return std::nullopt;
    i = end + 1;
  }
}

}  // namespace atw
