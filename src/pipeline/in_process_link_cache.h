#pragma once
// The in-process tier of the link caches (SPEC D6): a device's links for a time to live, at most
// `capacity` devices, the least recently used dropped first when full. Single-threaded, like the
// pipeline.

#include <chrono>
#include <list>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "domain/links.h"
#include "domain/timestamp.h"

namespace atw {

using LinkSetPtr = std::shared_ptr<const LinkSet>;

class InProcessLinkCache {
 public:
  // Each key lives between 80% and 100% of its TTL (`empty_ttl` for a device with no links), a
  // fixed share per key: devices first seen together would otherwise all expire in the same
  // batch and reload at once.
  InProcessLinkCache(size_t capacity, std::chrono::milliseconds ttl,
                     std::chrono::milliseconds empty_ttl)
      : capacity_(capacity), ttl_(ttl), empty_ttl_(empty_ttl) {}

  // The key's links unless absent or expired; a hit makes the key the most recently used.
  LinkSetPtr get(const DeviceKey& key, Timestamp now);
  // Stores (or replaces) the key's links as the most recently used; when full, the least
  // recently used key goes first. Constant time: a plant larger than the capacity (every put
  // evicting) costs no more per message than a small one.
  void put(const DeviceKey& key, LinkSetPtr set, Timestamp now);
  void erase(const DeviceKey& key);
  void clear();
  size_t size() const { return index_.size(); }

 private:
  struct Entry {
    DeviceKey key;
    LinkSetPtr set;
    Timestamp expires;
  };
  using Order = std::list<Entry>;  // most recently used first

  // The index looks keys up by views of the key each entry holds, so a key is stored once.
  struct KeyView {
    std::string_view organization_id;
    std::string_view device_id;
    bool operator==(const KeyView&) const = default;
  };
  struct KeyViewHash {
    size_t operator()(const KeyView& k) const {
      return device_key_hash(k.organization_id, k.device_id);
    }
  };
  static KeyView view_of(const DeviceKey& key) { return {key.organization_id, key.device_id}; }

  size_t capacity_;
  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds empty_ttl_;
  Order order_;
  std::unordered_map<KeyView, Order::iterator, KeyViewHash> index_;
};

}  // namespace atw
