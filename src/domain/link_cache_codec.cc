#include "domain/link_cache_codec.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <iterator>

#include "common/error_types.h"
#include "domain/json_writer.h"

namespace atw {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

Status corrupt(std::string message) {
  return Status::permanent(error_type::kCacheCorrupt, std::move(message));
}

void append_key_part(std::string& out, std::string_view id) {
  for (char c : id) {
    if (c == '%') {
      out.append("%25");
    } else if (c == ':') {
      out.append("%3A");
    } else {
      out.push_back(c);
    }
  }
}

void write_bound(JsonWriter& w, const std::optional<Timestamp>& t) {
  if (t) {
    w.string(format_instant(*t));
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

bool read_bound(element v, std::optional<Timestamp>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out = parse_instant(s);
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

// A cached link's fields: the seed's row plus the validity window. The port is the text the
// link store made of it.
constexpr FieldReader kFields[] = {
    {"link_id", [](element v, DeviceLink& l) { return read_string(v, l.link_id); }},
    {"asset_id", [](element v, DeviceLink& l) { return read_string(v, l.asset_id); }},
    {"port", [](element v, DeviceLink& l) { return read_optional_string(v, l.port); }},
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
    {"valid_from", [](element v, DeviceLink& l) { return read_bound(v, l.valid_from); }},
    {"valid_until", [](element v, DeviceLink& l) { return read_bound(v, l.valid_until); }},
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
  out.reserve(kLinkCacheKeyPrefix.size() + 1 + key.organization_id.size() + key.device_id.size());
  out.append(kLinkCacheKeyPrefix);
  append_key_part(out, key.organization_id);
  out.push_back(':');
  append_key_part(out, key.device_id);
  return out;
}

std::string serialize_link_set(const DeviceKey& key, const LinkSet& set) {
  std::string out;
  size_t estimate = 64 + key.organization_id.size() + key.device_id.size();
  for (const auto& l : set.links) {
    estimate += 320 + l.telemetry_schema.size() + 48 * l.metrics_mapping.size();
  }
  out.reserve(estimate);
  JsonWriter w(out);
  w.begin_object();
  w.key("organizationId").string(key.organization_id);
  w.key("deviceId").string(key.device_id);
  w.key("links").begin_array();
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
    write_bound(w, l.valid_from);
    w.key("valid_until");
    write_bound(w, l.valid_until);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return out;
}

Result<LinkSet> parse_link_set(std::string_view json, const DeviceKey& key) {
  // A parser per thread, kept: building one per call cost more than the parse itself when a
  // thousand cached link sets expire at once.
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root)) {
    return corrupt(fmt::format("not JSON: {}", simdjson::error_message(err)));
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return corrupt("not an object");
  std::string_view organization, device;
  simdjson::dom::array rows;
  if (obj["organizationId"].get_string().get(organization) ||
      obj["deviceId"].get_string().get(device) || obj["links"].get_array().get(rows)) {
    return corrupt("no organizationId, deviceId and links");
  }
  if (organization != key.organization_id || device != key.device_id) {
    return Status::permanent(error_type::kCacheMismatch,
                             "the cached links belong to another organization or device");
  }
  LinkSet set;
  set.links.reserve(rows.size());
  size_t index = 0;
  for (element row : rows) {
    Result<DeviceLink> link = parse_link(row, index++);
    if (!link) return link.status();
    set.links.push_back(std::move(link).value());
  }
  order_by_link_id(set);
  return set;
}

std::string minify_schema_text(std::string_view json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) return std::string(json);
  return simdjson::minify(root);
}

}  // namespace atw
