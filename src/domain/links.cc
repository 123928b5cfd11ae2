#include "domain/links.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>

#include "common/error_types.h"
#include "domain/json_writer.h"

namespace atw {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

Status unreadable(std::string message) {
  return Status::permanent(error_type::kLinkUnreadable, std::move(message));
}

std::string_view kind_of(element v) {
  switch (v.type()) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
    case element_type::STRING:
      return "a string";
    default:
      return "a number";
  }
}

// The text JavaScript would put into `port_${port}_` for a numeric port.
std::string number_text(element v) {
  std::string text;
  switch (v.type()) {
    case element_type::INT64:
      return std::to_string(v.get_int64().value_unsafe());
    case element_type::UINT64:
      return std::to_string(v.get_uint64().value_unsafe());
    default:
      JsonWriter(text).number(v.get_double().value_unsafe());
      return text;
  }
}

Status read_port(element v, DeviceLink& link) {
  switch (v.type()) {
    case element_type::NULL_VALUE:
      link.port.reset();
      return Status();
    case element_type::STRING:
      link.port.emplace(v.get_string().value_unsafe());
      return Status();
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      link.port = number_text(v);
      return Status();
    default:
      return unreadable(fmt::format("metadata.port: {}, not a number or a string", kind_of(v)));
  }
}

// As metadata->>'role' gives it: a string's content, any other value's JSON text.
void read_role(element v, DeviceLink& link) {
  if (v.is_null()) {
    link.role.reset();
  } else if (v.is_string()) {
    link.role.emplace(v.get_string().value_unsafe());
  } else {
    link.role = simdjson::minify(v);
  }
}

Status read_mapping(element v, DeviceLink& link) {
  link.metrics_mapping.clear();
  if (v.is_null()) return Status();
  simdjson::dom::object obj;
  if (v.get_object().get(obj)) {
    return unreadable(fmt::format("metadata.metrics_mapping: {}, not an object", kind_of(v)));
  }
  link.metrics_mapping.reserve(obj.size());
  for (const auto& field : obj) {
    if (field.value.is_null()) continue;  // maps nothing
    std::string_view target;
    if (field.value.get_string().get(target)) {
      return unreadable(fmt::format("metadata.metrics_mapping[\"{}\"]: {}, not a string", field.key,
                                    kind_of(field.value)));
    }
    link.metrics_mapping.emplace_back(std::string(field.key), std::string(target));
  }
  return Status();
}

}  // namespace

void order_by_link_id(LinkSet& set) {
  std::stable_sort(set.links.begin(), set.links.end(),
                   [](const DeviceLink& a, const DeviceLink& b) { return a.link_id < b.link_id; });
}

Status read_link_metadata(std::string_view metadata_json, DeviceLink& link) {
  link.port.reset();
  link.role.reset();
  link.metrics_mapping.clear();
  if (metadata_json.empty()) return Status();  // SQL NULL
  thread_local simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(metadata_json.data(), metadata_json.size()).get(root)) {
    return unreadable(fmt::format("metadata: not JSON ({})", simdjson::error_message(err)));
  }
  if (root.is_null()) return Status();
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) {
    return unreadable(fmt::format("metadata: {}, not an object", kind_of(root)));
  }
  // A repeated key takes its last value, as jsonb keeps it.
  for (const auto& field : obj) {
    Status st;
    if (field.key == "port") {
      st = read_port(field.value, link);
    } else if (field.key == "role") {
      read_role(field.value, link);
    } else if (field.key == "metrics_mapping") {
      st = read_mapping(field.value, link);
    }
    if (!st.ok()) return st;
  }
  return Status();
}

Status read_link_bound(std::string_view field, std::string_view text,
                       std::optional<Timestamp>& bound) {
  bound.reset();
  if (text.empty()) return Status();  // SQL NULL: open
  bound = parse_pg_timestamp(text);
  if (bound) return Status();
  std::string shown(text.substr(0, 40));
  return unreadable(fmt::format("{}: \"{}\" is not a timestamp", field, shown));
}

}  // namespace atw
