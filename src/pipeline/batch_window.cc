#include "pipeline/batch_window.h"

#include <algorithm>

namespace atw {

BatchWindow::BatchWindow(const BatchSizes& sizes)
    : sizes_(sizes),
      live_(std::min(sizes.batch_size, sizes.live_batch_size)),
      catch_up_(std::clamp(sizes.catch_up_batch_size, live_, sizes.batch_size)),
      widest_(live_) {}

void BatchWindow::grew(uint64_t behind) {
  window_ = std::min(sizes_.batch_size, window_ * 2);
  if (behind >= BatchSizes::kDeepBacklog * sizes_.batch_size) {
    widest_ = sizes_.batch_size;
  } else {
    widest_ = behind >= catch_up_ ? catch_up_ : live_;
  }
}

}  // namespace atw
