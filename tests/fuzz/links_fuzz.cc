// Fuzz target: arbitrary bytes as what the worker reads about links from outside: a link's
// metadata and validity bounds as the link query gives them (entity_edges is another service's
// table: any JSON, any text), and a cached link set as Redis gives it back (anyone can write
// there). Each reader either refuses the bytes with its own error type or gives values that
// keep their contracts and survive the cache's round trip unchanged.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/link_cache_codec.h"
#include "domain/links.h"
#include "domain/mapping.h"
#include "fuzz_check.h"

namespace atw {
namespace {

const DeviceKey kKey{"org-xyz-789", "device-abc-123"};

// A link read from these metadata bytes: refused as link_unreadable, or a link whose port and
// mapping the cache carries back exactly, and which maps without surprises.
void check_metadata(std::string_view bytes) {
  DeviceLink link;
  link.link_id = "link-1";
  link.asset_id = "asset-1";
  link.asset_type_id = "type-1";
  link.telemetry_schema = "null";
  const Status st = read_link_metadata(bytes, link);
  if (!st.ok()) {
    ATW_FUZZ_CHECK(st.permanent() && st.type() == "link_unreadable");
    return;
  }
  const Result<LinkSet> back = parse_link_set(serialize_link_set(kKey, {{link}}), kKey);
  ATW_FUZZ_CHECK(back.ok() && back->links.size() == 1 && back->links[0] == link);
  // Every device metric the mapping or the port names is copied, and nothing else.
  MetricSet device;
  for (const auto& [from, to] : link.metrics_mapping) device.set(from.substr(0, 128), 1.5);
  if (link.port) device.set("port_" + *link.port + "_x", 2.5);
  const MetricSet asset = map_device_metrics(device, link);
  ATW_FUZZ_CHECK(asset.size() <= link.metrics_mapping.size() + device.size());
  for (const Metric& m : asset)
    ATW_FUZZ_CHECK(!m.name.empty() && (m.value == 1.5 || m.value == 2.5));
}

// A bound read from this text: refused as link_unreadable, or an instant that the cache's text
// form gives back exactly.
void check_bound(std::string_view bytes) {
  std::optional<Timestamp> bound;
  const Status st = read_link_bound("valid_from", bytes, bound);
  if (!st.ok()) {
    ATW_FUZZ_CHECK(st.type() == "link_unreadable" && !bound);
    return;
  }
  ATW_FUZZ_CHECK(bytes.empty() == !bound.has_value());
  if (!bound) return;
  const auto back = parse_instant(format_instant(*bound));
  ATW_FUZZ_CHECK(back && *back == *bound);
}

// A cached value: refused as corrupt or a mismatch, or links that serialize and parse back the
// same, in link-id order.
void check_cached(std::string_view bytes) {
  const Result<LinkSet> set = parse_link_set(bytes, kKey);
  if (!set.ok()) {
    ATW_FUZZ_CHECK(set.status().type() == "cache_corrupt" ||
                   set.status().type() == "cache_mismatch");
    return;
  }
  for (size_t i = 1; i < set->links.size(); ++i) {
    ATW_FUZZ_CHECK(set->links[i - 1].link_id <= set->links[i].link_id);
  }
  const std::string again = serialize_link_set(kKey, *set);
  const Result<LinkSet> back = parse_link_set(again, kKey);
  ATW_FUZZ_CHECK(back.ok() && *back == *set);
  ATW_FUZZ_CHECK(serialize_link_set(kKey, *back) == again);
  // Never someone else's: the same bytes are a mismatch for any other pair.
  ATW_FUZZ_CHECK(
      parse_link_set(bytes, {kKey.organization_id, "x:" + kKey.device_id}).status().type() ==
      "cache_mismatch");
}

}  // namespace
}  // namespace atw

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace atw;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_metadata(bytes);
  check_bound(bytes);
  check_cached(bytes);
  return 0;
}
