#!/usr/bin/env bash
# Every test: installs what is missing, builds, starts nats-server, PostgreSQL and Redis on
# loopback, runs the unit and integration tests with ctest, and stops the servers it started.
set -euo pipefail
source "$(dirname "$0")/servers.sh"

atw_install
atw_build Release
atw_start_servers
trap "atw_stop_servers 2>/dev/null" EXIT

export ATW_TEST_NATS_URL="$NATS_URL"
export ATW_TEST_DATABASE_URL="$DATABASE_URL"
export ATW_TEST_REDIS_URL="$REDIS_URL"
"$ATW_ROOT/build/asset-worker" migrate >/dev/null

cd "$ATW_ROOT/build"
ctest --output-on-failure --timeout 600 "$@"
