#include "domain/links.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstdint>
#include <iterator>

#include "domain/json_writer.h"

namespace atw {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

Status corrupt(std::string message) {
  return Status::permanent("cache_corrupt", std::move(message));
}

void write_optional_time(JsonWriter& w, const std::optional<Timestamp>& t) {
  if (t) {
    w.string(format_rfc3339(*t));
  } else {
    w.null();
  }
}

bool read_string(element v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out.assign(s);
  return true;
}

bool read_optional_string(element v, std::optional<std::string>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out.emplace(s);
  return true;
}

// `port` is text (metadata->>'port'), but the seed's example row shows it as a number; a number
// becomes the text JavaScript would put into `port_${port}_`.
bool read_port(element v, std::optional<std::string>& out) {
  switch (v.type()) {
    case element_type::INT64:
      out = std::to_string(v.get_int64().value_unsafe());
      return true;
    case element_type::UINT64:
      out = std::to_string(v.get_uint64().value_unsafe());
      return true;
    case element_type::DOUBLE: {
      std::string text;
      JsonWriter(text).number(v.get_double().value_unsafe());
      out = std::move(text);
      return true;
    }
    default:
      return read_optional_string(v, out);
  }
}

bool read_optional_time(element v, std::optional<Timestamp>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out = parse_rfc3339(s);
  return out.has_value();
}

bool read_mapping(element v, std::vector<std::pair<std::string, std::string>>& out) {
  simdjson::dom::object obj;
  if (v.get_object().get(obj)) return false;
  out.clear();
  out.reserve(obj.size());
  for (const auto& field : obj) {
    std::string_view target;
    if (field.value.get_string().get(target)) return false;
    out.emplace_back(std::string(field.key), std::string(target));
  }
  return true;
}

struct FieldReader {
  std::string_view name;
  bool (*read)(element v, DeviceLink& link);
};

// The cached row's fields (SPEC D6): the seed's row plus the validity window.
constexpr FieldReader kFields[] = {
    {"link_id", [](element v, DeviceLink& l) { return read_string(v, l.link_id); }},
    {"asset_id", [](element v, DeviceLink& l) { return read_string(v, l.asset_id); }},
    {"port", [](element v, DeviceLink& l) { return read_port(v, l.port); }},
    {"role", [](element v, DeviceLink& l) { return read_optional_string(v, l.role); }},
    {"metrics_mapping",
     [](element v, DeviceLink& l) { return read_mapping(v, l.metrics_mapping); }},
    {"asset_name", [](element v, DeviceLink& l) { return read_string(v, l.asset_name); }},
    {"asset_type_id", [](element v, DeviceLink& l) { return read_string(v, l.asset_type_id); }},
    {"telemetry_schema",
     [](element v, DeviceLink& l) {
       l.telemetry_schema = simdjson::minify(v);
       return true;
     }},
    {"valid_from", [](element v, DeviceLink& l) { return read_optional_time(v, l.valid_from); }},
    {"valid_until", [](element v, DeviceLink& l) { return read_optional_time(v, l.valid_until); }},
};
constexpr unsigned kAllFields = (1u << std::size(kFields)) - 1;

// Every field must be present exactly once with its type; unknown fields are ignored so that a
// later version may add one without making older workers miss the cache.
Result<DeviceLink> parse_link(element row, size_t index) {
  simdjson::dom::object obj;
  if (row.get_object().get(obj)) return corrupt(fmt::format("link {}: not an object", index));
  DeviceLink link;
  unsigned seen = 0;
  for (const auto& field : obj) {
    const std::string_view k = field.key;
    size_t i = 0;
    while (i < std::size(kFields) && kFields[i].name != k) ++i;
    if (i == std::size(kFields)) continue;
    const unsigned bit = 1u << i;
    if (seen & bit) return corrupt(fmt::format("link {}: duplicate field {}", index, k));
    if (!kFields[i].read(field.value, link)) {
      return corrupt(fmt::format("link {}: field {} has the wrong type or value", index, k));
    }
    seen |= bit;
  }
  if (seen != kAllFields) return corrupt(fmt::format("link {}: missing fields", index));
  return link;
}

}  // namespace

std::string link_cache_key(const DeviceKey& key) {
  std::string out;
  out.reserve(20 + key.organization_id.size() + key.device_id.size());
  out.append("device_asset_links:")
      .append(key.organization_id)
      .append(1, ':')
      .append(key.device_id);
  return out;
}

std::string serialize_link_set(const LinkSet& set) {
  std::string out;
  size_t estimate = 2;
  for (const auto& l : set.links)
    estimate += 320 + l.telemetry_schema.size() + 48 * l.metrics_mapping.size();
  out.reserve(estimate);
  JsonWriter w(out);
  w.begin_array();
  for (const DeviceLink& l : set.links) {
    w.begin_object();
    w.key("link_id").string(l.link_id);
    w.key("asset_id").string(l.asset_id);
    w.key("port").optional_string(l.port);
    w.key("role").optional_string(l.role);
    w.key("metrics_mapping").begin_object();
    for (const auto& [from, to] : l.metrics_mapping) w.key(from).string(to);
    w.end_object();
    w.key("asset_name").string(l.asset_name);
    w.key("asset_type_id").string(l.asset_type_id);
    // Trusted JSON text from asset_types.telemetry_schema (jsonb); empty means none.
    w.key("telemetry_schema").raw(l.telemetry_schema.empty() ? "null" : l.telemetry_schema);
    w.key("valid_from");
    write_optional_time(w, l.valid_from);
    w.key("valid_until");
    write_optional_time(w, l.valid_until);
    w.end_object();
  }
  w.end_array();
  return out;
}

Result<LinkSet> parse_link_set(std::string_view json) {
  // A parser per thread, kept: building one per call cost more than the parse itself when a
  // thousand cached link sets expire at once.
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root)) {
    return corrupt(fmt::format("not JSON: {}", simdjson::error_message(err)));
  }
  simdjson::dom::array rows;
  if (root.get_array().get(rows)) return corrupt("not an array");
  LinkSet set;
  set.links.reserve(rows.size());
  size_t index = 0;
  for (element row : rows) {
    Result<DeviceLink> link = parse_link(row, index++);
    if (!link) return link.status();
    set.links.push_back(std::move(link).value());
  }
  return set;
}

std::string minify_schema_text(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return std::string(json);
  return simdjson::minify(root);
}

std::vector<std::pair<std::string, std::string>> parse_metrics_mapping(std::string_view json) {
  std::vector<std::pair<std::string, std::string>> out;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get_object().get(obj)) return out;
  out.reserve(obj.size());
  for (const auto& field : obj) {
    std::string_view target;
    if (field.value.get_string().get(target)) continue;
    out.emplace_back(std::string(field.key), std::string(target));
  }
  return out;
}

}  // namespace atw
