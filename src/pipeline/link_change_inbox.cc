#include "pipeline/link_change_inbox.h"

#include <utility>

namespace atw {

void LinkChangeInbox::post(DeviceKey key) {
  std::lock_guard lock(mu_);
  keys_.push_back(std::move(key));
}

void LinkChangeInbox::post_all() {
  std::lock_guard lock(mu_);
  all_ = true;
}

void LinkChangeInbox::post_reset() {
  std::lock_guard lock(mu_);
  reset_ = true;
}

size_t LinkChangeInbox::apply(LinkResolver& resolver) {
  std::vector<DeviceKey> keys;
  bool all = false;
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    keys.swap(keys_);
    std::swap(all, all_);
    std::swap(reset, reset_);
  }
  if (all) {
    resolver.invalidate_all();
    return 1;
  }
  if (reset) resolver.forget_all();
  if (!keys.empty()) resolver.invalidate(keys);
  return keys.size() + (reset ? 1 : 0);
}

}  // namespace atw
