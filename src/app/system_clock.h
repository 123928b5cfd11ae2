#pragma once
#include <chrono>

#include "pipeline/ports.h"

namespace atw {

class SystemClock final : public Clock {
 public:
  Timestamp now() const override {
    return Timestamp{std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()};
  }
};

}  // namespace atw
