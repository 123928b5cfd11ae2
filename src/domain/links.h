#pragma once
// Device-asset links (seed step 3) and their validity at measurement time (SPEC D5).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "domain/timestamp.h"

namespace atw {

// One row of the seed's link query, plus the validity window (SPEC D6: the cached value
// carries it so that validity is decided per message, not per lookup).
struct DeviceLink {
  std::string link_id;
  std::string asset_id;
  std::optional<std::string> port;  // metadata->>'port': text, as the seed's query returns it
  std::optional<std::string> role;
  // metadata->'metrics_mapping', in the order PostgreSQL's jsonb returns its keys.
  std::vector<std::pair<std::string, std::string>> metrics_mapping;
  std::string asset_name;
  std::string asset_type_id;
  std::string telemetry_schema;         // asset_types.telemetry_schema as JSON text; "null" if none
  std::optional<Timestamp> valid_from;  // NULL: open
  std::optional<Timestamp> valid_until;  // NULL: open

  // valid_from <= t < valid_until, NULL bounds open (SPEC D5).
  bool valid_at(Timestamp t) const {
    return (!valid_from || *valid_from <= t) && (!valid_until || t < *valid_until);
  }
  bool operator==(const DeviceLink&) const = default;
};

// Every link of one (organization, device), whatever its window: what the caches hold.
struct LinkSet {
  std::vector<DeviceLink> links;
  bool operator==(const LinkSet&) const = default;
};

struct DeviceKey {
  std::string organization_id;
  std::string device_id;
  bool operator==(const DeviceKey&) const = default;
};

struct DeviceKeyHash {
  size_t operator()(const DeviceKey& k) const noexcept {
    return std::hash<std::string_view>{}(k.organization_id) * 31 ^
           std::hash<std::string_view>{}(k.device_id);
  }
};

// Redis key of SPEC D6: `device_asset_links:{organizationId}:{deviceId}`.
std::string link_cache_key(const DeviceKey& key);

// The cached form: a JSON array of the seed's row objects (snake_case names as in the seed's
// example) plus `valid_from`/`valid_until`. Parsing is strict: a value written by something else
// that does not have this shape is an error (the caller treats it as a cache miss).
std::string serialize_link_set(const LinkSet& set);
Result<LinkSet> parse_link_set(std::string_view json);

// A telemetry_schema as every cache tier carries it: JSON without insignificant whitespace (the
// Redis tier's parse gives it; PostgreSQL's jsonb text has spaces). One schema must be one text
// whichever tier its link came from, because compiled asset types are looked up by it. Text that
// is not JSON is returned as it is (compiling it reports the problem).
std::string minify_schema_text(std::string_view json);

// Builds a link's mapping from the metrics_mapping JSON text (an object of strings; anything else
// yields an empty mapping, non-string values are skipped).
std::vector<std::pair<std::string, std::string>> parse_metrics_mapping(std::string_view json);

}  // namespace atw
