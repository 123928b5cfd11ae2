#pragma once
// The subcommands of `asset-worker` (SPEC D15). Each returns the process exit code.

#include <atomic>

#include "app/config.h"

namespace atw {

// Runs the worker until `stop` is set (SIGTERM/SIGINT), then drains.
int run_worker(const Config& config, const std::atomic<bool>& stop);
int run_migrate(const Config& config);

}  // namespace atw
