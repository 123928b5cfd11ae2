#!/usr/bin/env bash
# Every test: installs what is missing, checks the formatting, builds with warnings as errors,
# starts nats-server, PostgreSQL and Redis on loopback, and runs, each phase failing the script:
#   1. the unit and integration tests under ASan+UBSan (build-asan/);
#   2. meanwhile, at the lowest CPU priority (the integration tests mostly wait on servers):
#      the ThreadSanitizer build (build-tsan/) and clang-tidy on src/ (.clang-tidy says which
#      checks and why);
#   3. the unit tests and the integration tests that exercise the threads under TSan;
#   4. each fuzz target for ATW_FUZZ_SECONDS (20);
#   5. the fault suite, the ops tests, the cluster run and the shards run against the Release
#      build with ctest (last, so that its summary ends the output);
# then stops the servers it started. The unit and integration tests run in the sanitizer builds
# only (the Release build compiles neither).
set -euo pipefail
source "$(dirname "$0")/servers.sh"

atw_install "${ATW_TEST_PACKAGES[@]}"
cd "$ATW_ROOT"
atw_log "checking the formatting of every C++ file (clang-format-14, .clang-format)"
git ls-files -z '*.cc' '*.h' | xargs -0 clang-format-14 --dry-run --Werror

# What the Release tests run: the worker, the tools the ops tests and the cluster run use, and
# the fault suite with its fault injector. Its compile commands serve clang-tidy.
cmake -S "$ATW_ROOT" -B "$ATW_ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DATW_WERROR=ON \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
atw_build Release "$ATW_ROOT/build" asset-worker atw-devtool atw-bench faults_fault_suite \
  atw_fault_preload
atw_start_servers
atw_at_exit atw_stop_started

export ATW_TEST_NATS_URL="$NATS_URL"
export ATW_TEST_DATABASE_URL="$DATABASE_URL"
export ATW_TEST_REDIS_URL="$REDIS_URL"
"$ATW_ROOT/build/asset-worker" migrate >/dev/null

# The unit test targets, and the integration tests that need a thread checker: nats.c's
# callbacks and the pull source (PullSourceSoak), the whole worker with its writer lanes, link
# listener, safety-net thread and HTTP server (WorkerEndToEnd, LinkInvalidation, SafetyNet),
# the writer pool (PgSink).
tsan_integration="worker link_invalidation safety_net pull_source_soak pg_sink"
test_targets() {  # $1: the build dir; $2: a regex of the integration tests' names
  ninja -C "$1" -t targets all |
    sed -n "s/^\(unit_[A-Za-z0-9_]*\|integration_\($2\)_test\): phony\$/\1/p"
}

# Sanitizers (preset asan, build-asan/): leaks and undefined behaviour are fatal. The integration
# tests fork build-asan's own worker binary, so the worker is checked as well as the tests; some
# LD_PRELOAD a fault injector into it, ahead of the ASan runtime (verify_asan_link_order=0).
atw_log "building (ASan+UBSan) in build-asan, then the unit and integration tests under it"
cmake --preset asan >/dev/null
cmake --build "$ATW_ROOT/build-asan" -j"$(nproc)" --target $(test_targets build-asan '[a-z_]*')

background_log="$(mktemp)"
(
  set -e
  atw_log "building (TSan) in build-tsan"
  cmake --preset tsan >/dev/null
  nice -n 19 cmake --build "$ATW_ROOT/build-tsan" -j"$(nproc)" \
    --target $(test_targets build-tsan "${tsan_integration// /\\|}")
  atw_log "clang-tidy on src/"
  nice -n 19 run-clang-tidy-14 -p "$ATW_ROOT/build" -j "$(nproc)" -quiet "$ATW_ROOT/src/"
) >"$background_log" 2>&1 &
background=$!
atw_at_exit "kill $background 2>/dev/null"

asan_options="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1"
(cd "$ATW_ROOT/build-asan" &&
  ASAN_OPTIONS="$asan_options:verify_asan_link_order=0" UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure --timeout 600 -R '^(unit|integration)\.')

atw_log "waiting for the TSan build and clang-tidy"
if ! wait "$background"; then
  grep -v '^[0-9]* warnings generated\.$' "$background_log" | tail -n 80
  echo "the TSan build or clang-tidy failed (above)" >&2
  exit 1
fi
grep -E '^(==>|\[[0-9]+/[0-9]+\] Linking)' "$background_log" | tail -n 3 || true

# ThreadSanitizer (preset tsan, build-tsan/): the integration tests fork build-tsan's worker, so
# its threads are checked too. Every report goes to a file under $tsan_reports, whichever
# process wrote it (a forked worker's stderr is its log, which nobody reads); any file there
# fails the phase. tests/tsan.supp holds the suppressions, each with its reason.
tsan_reports="$(mktemp -d)"
atw_log "the unit tests and the threaded integration tests under TSan"
(cd "$ATW_ROOT/build-tsan" &&
  TSAN_OPTIONS="log_path=$tsan_reports/report second_deadlock_stack=1 suppressions=$ATW_ROOT/tests/tsan.supp" \
    ctest --output-on-failure --timeout 600 \
    -R "^unit\.|^integration\.($(cd "$ATW_ROOT" && for t in $tsan_integration; do
      sed -n 's/^TEST[_F]*(\([A-Za-z0-9]*\),.*/\1/p' "tests/integration/${t}_test.cc"
    done | sort -u | paste -sd '|'))\.")
if compgen -G "$tsan_reports/report*" >/dev/null; then
  cat "$tsan_reports"/report* | head -n 200
  echo "ThreadSanitizer reported the races above ($(ls "$tsan_reports" | wc -l) reports)" >&2
  exit 1
fi

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
