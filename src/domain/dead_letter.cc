#include "domain/dead_letter.h"

#include <nlohmann/json.hpp>

#include "domain/json_writer.h"

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

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = uint32_t{p[i]} << 16 | uint32_t{p[i + 1]} << 8 | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    const uint32_t v = uint32_t{p[i]} << 16 | (rest == 2 ? uint32_t{p[i + 1]} << 8 : 0);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

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

}  // namespace atw
