#!/usr/bin/env bash
# Every test: installs what is missing, builds, starts nats-server, PostgreSQL and Redis on
# loopback, runs the unit and integration tests under ASan+UBSan, runs each fuzz target for
# ATW_FUZZ_SECONDS (20), then runs the fault suite, the ops tests, the cluster run and the shards
# run against the Release build with ctest (last, so that its summary ends the output), and stops
# the servers it started. Any failing phase fails the script. Each test runs once: the unit and
# integration tests in the sanitizer build only (the Release build compiles neither).
set -euo pipefail
source "$(dirname "$0")/servers.sh"

atw_install "${ATW_TEST_PACKAGES[@]}"
# What the Release tests run: the worker, the tools the ops tests and the cluster run use, and
# the fault suite with its fault injector.
atw_build Release "$ATW_ROOT/build" asset-worker atw-devtool atw-bench faults_fault_suite \
  atw_fault_preload
atw_start_servers
trap "atw_stop_servers 2>/dev/null" EXIT

export ATW_TEST_NATS_URL="$NATS_URL"
export ATW_TEST_DATABASE_URL="$DATABASE_URL"
export ATW_TEST_REDIS_URL="$REDIS_URL"
"$ATW_ROOT/build/asset-worker" migrate >/dev/null

# Sanitizers (preset asan, build-asan/): leaks and undefined behaviour are fatal. The integration
# tests fork build-asan's own worker binary, so the worker is checked as well as the tests; some
# LD_PRELOAD a fault injector into it, ahead of the ASan runtime (verify_asan_link_order=0).
atw_log "building (ASan+UBSan) in build-asan, then the unit and integration tests under it"
(cd "$ATW_ROOT" && cmake --preset asan >/dev/null)
# Only the unit and integration test targets (they pull in the worker), not the tools.
asan_targets="$(ninja -C "$ATW_ROOT/build-asan" -t targets all |
  sed -n 's/^\(\(unit\|integration\)_[A-Za-z0-9_]*\): phony$/\1/p')"
cmake --build "$ATW_ROOT/build-asan" -j"$(nproc)" --target $asan_targets
asan_options="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1"
(cd "$ATW_ROOT/build-asan" &&
  ASAN_OPTIONS="$asan_options:verify_asan_link_order=0" UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure --timeout 600 -R '^(unit|integration)\.')

# Fuzzing (preset fuzz, build-fuzz/, clang-14 + libFuzzer): each target from a copy of its
# committed corpus, so the run does not write into the repository; a crashing input is kept in
# build-fuzz/artifacts/.
atw_log "building the fuzz targets in build-fuzz"
(cd "$ATW_ROOT" && cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j"$(nproc)")
mkdir -p "$ATW_ROOT/build-fuzz/artifacts"
for target in telemetry formula links; do
  atw_log "fuzzing $target for ${ATW_FUZZ_SECONDS:-20} s"
  corpus="$(mktemp -d)"
  cp "$ATW_ROOT/tests/fuzz/corpus/$target/"* "$corpus/"
  if ! ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer \
    "$ATW_ROOT/build-fuzz/fuzz_$target" -max_total_time="${ATW_FUZZ_SECONDS:-20}" \
    -dict="$ATW_ROOT/tests/fuzz/$target.dict" \
    -artifact_prefix="$ATW_ROOT/build-fuzz/artifacts/$target-" "$corpus" >"$corpus.log" 2>&1; then
    tail -n 60 "$corpus.log"
    echo "fuzz_$target failed; its input is in build-fuzz/artifacts/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$corpus.log" || true
  rm -rf "$corpus" "$corpus.log"
done

atw_log "fault suite, ops tests, cluster and shards runs (Release, build/)"
cd "$ATW_ROOT/build"
ctest --output-on-failure --timeout 600 -R '^(faults|ops|cluster)\.' "$@"
