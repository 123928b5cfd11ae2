#pragma once
// Device-asset links (seed step 3): what one link says, read from entity_edges, and its
// validity at measurement time (SPEC D5).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "domain/timestamp.h"

namespace atw {

// One link of the seed's link query, plus its validity window (SPEC D6: caches carry the window
// so that validity is decided per message, not per lookup).
struct DeviceLink {
  std::string link_id;
  std::string asset_id;
  std::optional<std::string> port;  // metadata.port: a number as JavaScript writes it, or text
  std::optional<std::string> role;  // metadata.role, as metadata->>'role' gives it
  // metadata.metrics_mapping, in the order PostgreSQL's jsonb returns its keys.
  std::vector<std::pair<std::string, std::string>> metrics_mapping;
  std::string asset_name;
  std::string asset_type_id;
  std::string telemetry_schema;         // asset_types.telemetry_schema as JSON text; "null" if none
  std::optional<Timestamp> valid_from;  // NULL: open; -infinity is kInfinitePast
  std::optional<Timestamp> valid_until;  // NULL: open; infinity is kInfiniteFuture

  // valid_from <= t < valid_until, NULL bounds open (SPEC D5). The infinities compare as
  // PostgreSQL compares them: -infinity and infinity are open bounds where they stand first and
  // last; a link that starts at infinity (or ends at -infinity) serves nothing.
  bool valid_at(Timestamp t) const {
    return (!valid_from || *valid_from <= t) && (!valid_until || t < *valid_until);
  }
  bool operator==(const DeviceLink&) const = default;
};

// Every link of one (organization, device), whatever its window, in order of link id (byte
// order): the order in which several links to one asset are merged (SPEC D8).
struct LinkSet {
  std::vector<DeviceLink> links;
  bool operator==(const LinkSet&) const = default;
};

// Puts `set.links` in link-id order (stable for equal ids).
void order_by_link_id(LinkSet& set);

struct DeviceKey {
  std::string organization_id;
  std::string device_id;
  bool operator==(const DeviceKey&) const = default;
};

// One hash of a device's two ids, for whatever holds them (a DeviceKey, or views of one).
inline size_t device_key_hash(std::string_view organization_id, std::string_view device_id) {
  return std::hash<std::string_view>{}(organization_id)*31 ^
         std::hash<std::string_view>{}(device_id);
}

struct DeviceKeyHash {
  size_t operator()(const DeviceKey& k) const noexcept {
    return device_key_hash(k.organization_id, k.device_id);
  }
};

// Reads entity_edges.metadata (JSON text; empty for SQL NULL) into `link`: `port` (a number or a
// string; absent or null: none), `role` (any value, as ->> gives it) and `metrics_mapping` (an
// object whose values are strings; a null value maps nothing; absent or null: no mapping).
// Anything else makes the link unreadable: a permanent "link_unreadable" error that names the
// field, e.g. "metadata.port: an object, not a number or a string" (SPEC D8: such a link is
// skipped, never the batch).
Status read_link_metadata(std::string_view metadata_json, DeviceLink& link);

// A validity bound as the link query gives it (PostgreSQL's text, parse_pg_timestamp; empty for
// SQL NULL) into `bound`; a permanent "link_unreadable" error naming `field` if it is not a time.
Status read_link_bound(std::string_view field, std::string_view text,
                       std::optional<Timestamp>& bound);

}  // namespace atw
