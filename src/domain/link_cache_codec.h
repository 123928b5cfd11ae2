#pragma once
// The shared link cache's key and value (SPEC D6). Ids are free text: the key percent-encodes
// the `:` and `%` in them, so no two (organization, device) pairs share a key, and the value
// names the pair it belongs to, so that a value found under a key is checked before it is used.

#include <string>
#include <string_view>

#include "common/status.h"
#include "domain/links.h"

namespace atw {

// Every link key starts with this; `links invalidate --all` deletes the keys that match it.
inline constexpr std::string_view kLinkCacheKeyPrefix = "device_asset_links:";

// `device_asset_links:{organizationId}:{deviceId}`, with `%` written `%25` and `:` written `%3A`
// in each id (every other byte as it is).
std::string link_cache_key(const DeviceKey& key);

// The cached value: {"organizationId": ..., "deviceId": ..., "links": [...]}, each link an
// object of the seed's row fields (snake_case, as in the seed's example) plus `valid_from` /
// `valid_until` (format_instant; null for an open bound).
std::string serialize_link_set(const DeviceKey& key, const LinkSet& set);

// Reads a cached value for `key`. Errors (the caller treats each as a miss, and counts it):
//   "cache_corrupt": not the shape above (a value of another version, or damaged);
//   "cache_mismatch": well formed, but it names another organization or device.
// The links come back in link-id order.
Result<LinkSet> parse_link_set(std::string_view json, const DeviceKey& key);

// A telemetry_schema as every cache tier carries it: JSON without insignificant whitespace (the
// Redis tier's parse gives it; PostgreSQL's jsonb text has spaces). One schema must be one text
// whichever tier its link came from, because compiled asset types are looked up by it. Text that
// is not JSON is returned as it is (compiling it reports the problem).
std::string minify_schema_text(std::string_view json);

}  // namespace atw
