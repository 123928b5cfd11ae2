#pragma once

#include <mutex>
#include <vector>

#include "domain/links.h"
#include "pipeline/link_resolver.h"

namespace atw {

// Link changes announced by another thread (the database listener, SPEC D7), applied by the
// pipeline thread between batches: the caches are only ever touched by the pipeline thread, and
// a batch that read a link before the change has written it to the caches before the purge.
class LinkChangeInbox {
 public:
  void post(DeviceKey key);
  void post_all();    // something every link carries changed: purge both caches whole
  void post_reset();  // notices may have been missed: drop the in-process cache whole
  // Applies and clears what was posted. Returns how many keys (or whole purges) it applied.
  size_t apply(LinkResolver& resolver);

 private:
  std::mutex mu_;
  std::vector<DeviceKey> keys_;
  bool all_ = false;
  bool reset_ = false;
};

}  // namespace atw
