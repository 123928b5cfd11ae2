#include "pipeline/in_process_link_cache.h"

namespace atw {

LinkSetPtr InProcessLinkCache::get(const DeviceKey& key, Timestamp now) {
  const auto found = index_.find(view_of(key));
  if (found == index_.end()) return nullptr;
  const Order::iterator entry = found->second;
  if (entry->expires <= now) {
    index_.erase(found);
    order_.erase(entry);
    return nullptr;
  }
  order_.splice(order_.begin(), order_, entry);
  return entry->set;
}

void InProcessLinkCache::put(const DeviceKey& key, LinkSetPtr set, Timestamp now) {
  const int64_t ttl =
      std::chrono::duration_cast<std::chrono::microseconds>(set->links.empty() ? empty_ttl_ : ttl_)
          .count();
  const int64_t spread = static_cast<int64_t>(DeviceKeyHash{}(key) % 1000);
  const Timestamp expires{now.micros + ttl - ttl / 5 * spread / 1000};
  if (const auto found = index_.find(view_of(key)); found != index_.end()) {
    found->second->set = std::move(set);
    found->second->expires = expires;
    order_.splice(order_.begin(), order_, found->second);
    return;
  }
  if (capacity_ == 0) return;
  if (index_.size() >= capacity_) {
    index_.erase(view_of(order_.back().key));
    order_.pop_back();
  }
  order_.push_front(Entry{key, std::move(set), expires});
  index_.emplace(view_of(order_.front().key), order_.begin());
}

void InProcessLinkCache::erase(const DeviceKey& key) {
  const auto found = index_.find(view_of(key));
  if (found == index_.end()) return;
  const Order::iterator entry = found->second;
  index_.erase(found);
  order_.erase(entry);
}

void InProcessLinkCache::clear() {
  index_.clear();
  order_.clear();
}

}  // namespace atw
