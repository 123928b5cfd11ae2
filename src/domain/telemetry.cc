#include "domain/telemetry.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>
#include <optional>

#include "common/error_types.h"

namespace atw {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

Status invalid(std::string message) {
  return Status::permanent(error_type::kInvalidMessage, std::move(message));
}

// One parser per thread: it keeps its buffers between messages, so the hot path allocates
// nothing once it has seen its largest payload. A parser is not thread-safe, and the parsed
// document lives in it only until the next parse on the same thread, so nothing returned by
// parse_telemetry points into it.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Ids end up in PostgreSQL text columns, which cannot hold NUL, and in logs and keys, where the
// other control characters only cause trouble.
bool has_control_char(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

Status read_id(std::string_view field, const std::optional<element>& e, size_t max_bytes,
               std::string& out) {
  if (!e) return invalid(fmt::format("{}: missing", field));
  std::string_view s;
  if (e->get_string().get(s) != simdjson::SUCCESS) {
    return invalid(fmt::format("{}: must be a string", field));
  }
  if (s.empty()) return invalid(fmt::format("{}: empty", field));
  if (s.size() > max_bytes) {
    return invalid(fmt::format("{}: longer than {} bytes", field, max_bytes));
  }
  if (has_control_char(s)) return invalid(fmt::format("{}: contains a control character", field));
  out.assign(s);
  return Status();
}

// An invalid name can be up to the whole payload long: the error quotes only its start, cut on a
// UTF-8 character boundary.
std::string quoted_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return fmt::format("\"{}\"", s);
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return fmt::format("\"{}...\"", s.substr(0, n));
}

Status read_timestamp(const std::optional<element>& e, Timestamp now,
                      const ValidationLimits& limits, Timestamp& out) {
  if (!e) return invalid("timestamp: missing");
  std::string_view s;
  if (e->get_string().get(s) != simdjson::SUCCESS) return invalid("timestamp: must be a string");
  const std::optional<Timestamp> t = parse_rfc3339(s);
  if (!t) return invalid("timestamp: not RFC 3339");
  if (t->micros - now.micros > limits.max_future_micros) {
    return invalid(fmt::format("timestamp: {} is more than {} s in the future", format_rfc3339(*t),
                               static_cast<double>(limits.max_future_micros) / 1e6));
  }
  out = *t;
  return Status();
}

Status read_metrics(const std::optional<element>& e, const ValidationLimits& limits,
                    TelemetryMessage& msg) {
  if (!e) return invalid("metrics: missing");
  simdjson::dom::object metrics;
  if (e->get_object().get(metrics) != simdjson::SUCCESS) {
    return invalid("metrics: must be an object");
  }
  // Counted as written, duplicates included: the bound is on the work a message can cost.
  const size_t count = metrics.size();
  if (count > limits.max_metrics) {
    return invalid(
        fmt::format("metrics: {} entries exceed the limit of {}", count, limits.max_metrics));
  }
  msg.metrics.reserve(count);
  for (auto [name, value] : metrics) {
    if (!is_valid_metric_name(name, limits.max_metric_name_bytes)) {
      return invalid(fmt::format("metrics: invalid name {}",
                                 quoted_prefix(name, limits.max_metric_name_bytes)));
    }
    // simdjson rejects numbers that do not fit a double (or a 64-bit integer) while parsing, so
    // every number that reaches here is finite.
    switch (value.type()) {
      case element_type::INT64:
        msg.metrics.set(name, static_cast<double>(value.get_int64().value_unsafe()));
        break;
      case element_type::UINT64:
        msg.metrics.set(name, static_cast<double>(value.get_uint64().value_unsafe()));
        break;
      case element_type::DOUBLE:
        msg.metrics.set(name, value.get_double().value_unsafe());
        break;
      case element_type::BOOL:
        msg.metrics.set(name, value.get_bool().value_unsafe() ? 1.0 : 0.0);
        break;
      default:  // strings, nulls, arrays, objects
        ++msg.skipped_metrics;
        break;
    }
  }
  return Status();
}

// One quality value: a name (good, uncertain, bad, an OPC UA status name) or an OPC UA status
// code. nullopt when it is of a readable type but unknown; false in `readable` otherwise.
std::optional<Quality> read_quality_value(const element& v, bool& readable) {
  readable = true;
  switch (v.type()) {
    case element_type::STRING:
      return parse_quality(v.get_string().value_unsafe());
    case element_type::INT64: {
      const int64_t n = v.get_int64().value_unsafe();
      return n < 0 ? std::nullopt : quality_of_status_code(static_cast<uint64_t>(n));
    }
    case element_type::UINT64:
      return quality_of_status_code(v.get_uint64().value_unsafe());
    default:
      readable = false;
      return std::nullopt;
  }
}

// `quality`: one value for every metric of the message, or an object of values per
// metric. Absent: good. A field of another type is a validation error; an unknown value counts
// (unknown_qualities) and reads as uncertain.
Status read_quality(const std::optional<element>& e, TelemetryMessage& msg) {
  if (!e) return Status();
  auto quality_or_uncertain = [&msg](std::optional<Quality> q) {
    if (q) return *q;
    ++msg.unknown_qualities;
    return Quality::kUncertain;
  };
  bool readable = true;
  simdjson::dom::object per_metric;
  if (e->get_object().get(per_metric) == simdjson::SUCCESS) {
    for (auto [name, value] : per_metric) {
      Metric* m = msg.metrics.find_metric(name);
      const auto q = read_quality_value(value, readable);
      if (!readable) {
        return invalid(fmt::format("quality: the value for {} must be a string or a status code",
                                   quoted_prefix(name, 64)));
      }
      if (m != nullptr) m->quality = quality_or_uncertain(q);
    }
    return Status();
  }
  const auto q = read_quality_value(*e, readable);
  if (!readable) {
    return invalid("quality: must be a string, a status code or an object of them per metric");
  }
  const Quality all = quality_or_uncertain(q);
  msg.metrics.set_quality_of_all(all);
  return Status();
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The end of the JSON number token starting at `pos` (RFC 8259's grammar), or `pos` when the
// text there is not a well-formed number.
size_t number_end(std::string_view s, size_t pos) {
  size_t i = pos;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || !is_digit(s[i])) return pos;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i < s.size() && s[i] == '.') {
    if (++i >= s.size() || !is_digit(s[i])) return pos;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !is_digit(s[i])) return pos;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  return i;
}

// Whether a number whose double conversion is out of range is too large (rather than too
// small, which reads as zero): the decimal exponent of its first significant digit.
bool overflows(std::string_view number) {
  if (number.front() == '-') number.remove_prefix(1);
  const size_t exp_at = number.find_first_of("eE");
  const std::string_view mantissa = number.substr(0, exp_at);
  int64_t exponent = 0;
  if (exp_at != std::string_view::npos) {
    std::string_view e = number.substr(exp_at + 1);
    const bool negative = !e.empty() && e.front() == '-';
    if (!e.empty() && (e.front() == '+' || e.front() == '-')) e.remove_prefix(1);
    // Exponents past any double's range are clamped: only the sign and size matter.
    for (char c : e) exponent = std::min<int64_t>(exponent * 10 + (c - '0'), 100000);
    if (negative) exponent = -exponent;
  }
  const size_t point = mantissa.find('.');
  const std::string_view whole = mantissa.substr(0, point);
  const size_t first_nonzero = whole.find_first_not_of('0');
  if (first_nonzero != std::string_view::npos) {
    return exponent + static_cast<int64_t>(whole.size() - first_nonzero) > 0;
  }
  // 0.000ddd: the first significant digit is after the leading zeros of the fraction.
  const std::string_view fraction =
      point == std::string_view::npos ? "" : mantissa.substr(point + 1);
  const size_t lead = fraction.find_first_not_of('0');
  if (lead == std::string_view::npos) return false;  // zero
  return exponent - static_cast<int64_t>(lead) > 0;
}

// simdjson refuses a document with an integer past 64 bits or a number past a double's range
// (SPEC D3 keeps the message: the first as its nearest double, the second as a skipped metric).
// This rewrites those number tokens, outside strings: an integer that does not fit becomes its
// nearest double in exponent form, which simdjson reads as a double; a number that overflows
// becomes null, so a metric of that value is skipped and counted like any other non-number.
// Everything else is copied as it is. Returns nullopt when no token needed rewriting.
std::optional<std::string> rewrite_out_of_range_numbers(std::string_view s) {
  std::string out;
  size_t copied = 0;
  bool changed = false;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '"') {
      // Skip the string, escapes included; an unterminated one ends the scan.
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
      ++i;
      continue;
    }
    if (c != '-' && !is_digit(c)) {
      ++i;
      continue;
    }
    const size_t end = number_end(s, i);
    if (end == i) {
      ++i;
      continue;
    }
    const std::string_view token = s.substr(i, end - i);
    const bool integer = token.find_first_of(".eE") == std::string_view::npos;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    std::string replacement;
    if (ec == std::errc::result_out_of_range) {
      if (overflows(token)) replacement = "null";
    } else if (ec == std::errc() && ptr == token.data() + token.size() && integer) {
      int64_t as_signed;
      uint64_t as_unsigned;
      const bool fits =
          std::from_chars(token.data(), token.data() + token.size(), as_signed).ec == std::errc() ||
          std::from_chars(token.data(), token.data() + token.size(), as_unsigned).ec == std::errc();
      if (!fits) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
        replacement.assign(buf, r.ptr);
      }
    }
    if (!replacement.empty()) {
      if (!changed) out.reserve(s.size() + 16);
      out.append(s.substr(copied, i - copied)).append(replacement);
      copied = end;
      changed = true;
    }
    i = end;
  }
  if (!changed) return std::nullopt;
  out.append(s.substr(copied));
  return out;
}

// Parses `payload` into `root`. Padding is added by copying into the parser's own reusable
// buffer (realloc_if_needed), which also keeps a rewritten text's document after it is gone.
simdjson::error_code parse_document(simdjson::dom::parser& parser, std::string_view payload,
                                    element& root) {
  const auto err = parser.parse(payload.data(), payload.size(), true).get(root);
  if (err != simdjson::NUMBER_ERROR) return err;
  // Rare: a number simdjson cannot hold.
  const auto rewritten = rewrite_out_of_range_numbers(payload);
  if (!rewritten) return err;
  return parser.parse(rewritten->data(), rewritten->size(), true).get(root);
}

}  // namespace

Result<TelemetryMessage> parse_telemetry(std::string_view payload, Timestamp now,
                                         const ValidationLimits& limits) {
  if (payload.size() > limits.max_payload_bytes) {
    return invalid(fmt::format("payload: {} bytes exceeds the limit of {}", payload.size(),
                               limits.max_payload_bytes));
  }

  simdjson::dom::parser& parser = thread_parser();
  // simdjson counts the document itself as a level, so limits.max_depth nested containers need
  // one more. (It lets an empty innermost container go one level deeper still; harmless.)
  const size_t depth = limits.max_depth + 1;
  if (parser.max_depth() != depth) {
    if (auto err = parser.allocate(parser.capacity(), depth); err != simdjson::SUCCESS) {
      return Status::retryable(error_type::kOutOfMemory,
                               fmt::format("payload: {}", simdjson::error_message(err)));
    }
  }

  element root;
  const auto err = parse_document(parser, payload, root);
  if (err != simdjson::SUCCESS) {
    if (err == simdjson::DEPTH_ERROR) {
      return invalid(fmt::format("payload: nested deeper than {} levels", limits.max_depth));
    }
    if (err == simdjson::MEMALLOC) {
      return Status::retryable(error_type::kOutOfMemory,
                               fmt::format("payload: {}", simdjson::error_message(err)));
    }
    return invalid(fmt::format("payload: not valid JSON ({})", simdjson::error_message(err)));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return invalid("payload: not a JSON object");
  }

  // One pass over the fields; a repeated field takes its last value, as JSON.parse does.
  std::optional<element> message_id, device_id, organization_id, timestamp, metrics, quality;
  for (auto [key, value] : object) {
    if (key == "messageId") {
      message_id = value;
    } else if (key == "deviceId") {
      device_id = value;
    } else if (key == "organizationId") {
      organization_id = value;
    } else if (key == "timestamp") {
      timestamp = value;
    } else if (key == "metrics") {
      metrics = value;
    } else if (key == "quality") {
      quality = value;
    }
  }

  TelemetryMessage msg;
  Status s = read_id("messageId", message_id, limits.max_id_bytes, msg.message_id);
  if (s.ok()) s = read_id("deviceId", device_id, limits.max_id_bytes, msg.device_id);
  if (s.ok()) {
    s = read_id("organizationId", organization_id, limits.max_id_bytes, msg.organization_id);
  }
  if (s.ok()) s = read_timestamp(timestamp, now, limits, msg.timestamp);
  if (s.ok()) s = read_metrics(metrics, limits, msg);
  if (s.ok()) s = read_quality(quality, msg);
  if (!s.ok()) return s;
  return msg;
}

}  // namespace atw
