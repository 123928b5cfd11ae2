# Sourced by demo.sh, test.sh and the benchmark: installs what a fresh Debian 12 machine lacks,
# builds, and starts nats-server (JetStream, file store), PostgreSQL and Redis on loopback with
# their data under one git-ignored folder ($ATW_STATE, default .local/).
#
# Ports are not the servers' defaults, so a developer's own servers are left alone:
#   NATS 14222 (monitoring 18222), PostgreSQL 15432, Redis 16379.

ATW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ATW_STATE="${ATW_STATE:-$ATW_ROOT/.local}"
ATW_NATS_PORT="${ATW_NATS_PORT:-14222}"
ATW_PG_PORT="${ATW_PG_PORT:-15432}"
ATW_REDIS_PORT="${ATW_REDIS_PORT:-16379}"
ATW_PG_BIN="/usr/lib/postgresql/15/bin"
# nats-server's garbage collector target and its Go scheduler's processors (see atw_start_nats);
# an empty ATW_NATS_GOMAXPROCS leaves Go's default, one per core.
ATW_NATS_GOGC="${ATW_NATS_GOGC:-400}"
ATW_NATS_GOMAXPROCS="${ATW_NATS_GOMAXPROCS-1}"

export NATS_URL="nats://127.0.0.1:${ATW_NATS_PORT}"
export DATABASE_URL="postgresql://postgres@127.0.0.1:${ATW_PG_PORT}/asset_telemetry"
export REDIS_URL="redis://127.0.0.1:${ATW_REDIS_PORT}/0"

# atw_run_mode ARG: the run scripts' one argument (cluster.sh, shards.sh): sets ATW_MODE to run
# (none), keep (--keep) or test (--test); anything else is a usage error.
atw_run_mode() {
  case "${1:-}" in
    "") ATW_MODE=run ;;
    --keep) ATW_MODE=keep ;;
    --test) ATW_MODE=test ;;
    *) echo "usage: $0 [--keep|--test]" >&2; exit 2 ;;
  esac
}

# One rule for every script: it stops what it started, unless given --keep. A server already
# running on its port is used and left running; the ones a script starts are named in
# ATW_STARTED, and atw_stop_started stops those. Exit actions are registered with atw_at_exit
# (run last first, each whatever the others do), so that several can share the EXIT trap.
ATW_STARTED=""
ATW_AT_EXIT=()
atw_at_exit() {
  ATW_AT_EXIT+=("$1")
  trap atw_run_at_exit EXIT
}
atw_run_at_exit() {
  local i
  for ((i = ${#ATW_AT_EXIT[@]} - 1; i >= 0; i--)); do eval "${ATW_AT_EXIT[$i]}" || true; done
}

atw_log() { printf '\033[1m==> %s %s\033[0m\n' "$(date +%T)" "$*" >&2; }

ATW_PACKAGES=(build-essential cmake ninja-build pkg-config git ca-certificates
  nats-server libnats-dev postgresql-15 postgresql-client-15 libpq-dev redis-server
  libhiredis-dev libmuparser-dev libsimdjson-dev nlohmann-json3-dev libfmt-dev libcli11-dev
  libcpp-httplib-dev libssl-dev libgtest-dev libgmock-dev googletest curl)
# What scripts/test.sh needs besides (atw_install "${ATW_TEST_PACKAGES[@]}"): clang and libFuzzer
# for the fuzz targets (libclang-rt holds clang's sanitizer and fuzzer runtimes), and
# llvm-symbolizer for readable sanitizer reports; Prometheus and promtool, and Debian's python3
# with PyYAML, for the ops tests (tests/ops); python3 and procps (pgrep, ps) for the cluster
# run's checks and CPU figures (scripts/cluster.sh); clang-format and clang-tidy for the
# format and lint checks.
ATW_TEST_PACKAGES=(clang-14 libclang-rt-14-dev libfuzzer-14-dev llvm-14 prometheus python3-yaml
  python3 procps clang-format-14 clang-tidy-14)

atw_install() {
  local missing=()
  for p in "${ATW_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    atw_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The postgresql package would start a cluster of its own on 5432: not needed here.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# atw_build [TYPE [DIR [TARGET...]]]: every target unless some are named.
atw_build() {
  local type="${1:-Release}" dir="${2:-$ATW_ROOT/build}"
  shift $(($# < 2 ? $# : 2))
  atw_log "building ($type) in $dir${*:+: $*}"
  cmake -S "$ATW_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" >/dev/null
  cmake --build "$dir" -j"$(nproc)" ${*:+--target "$@"}
}

# PostgreSQL will not run as root, and its data folder must be reachable by the postgres user;
# where the checkout is not (a home folder), the data goes to /var/tmp and .local/ links to it.
atw_pg_dir() {
  mkdir -p "$ATW_STATE"
  if runuser -u postgres -- test -x "$ATW_STATE" 2>/dev/null; then
    echo "$ATW_STATE/pg"
  else
    local alt="/var/tmp/atw-pg-$(echo "$ATW_STATE" | md5sum | cut -c1-8)"
    ln -sfn "$alt" "$ATW_STATE/pg-data-link"
    echo "$alt"
  fi
}

atw_start_nats() {
  mkdir -p "$ATW_STATE/nats"
  if nc_ok 127.0.0.1 "$ATW_NATS_PORT"; then return; fi
  atw_log "starting nats-server on 127.0.0.1:$ATW_NATS_PORT"
  ATW_STARTED+=" nats"
  # GOGC=400: the collector runs a quarter as often. The duplicate windows keep every message id
  # of the last 10 minutes on the heap, and each collection marks them all, taking a core from
  # the worker and PostgreSQL on a small machine (docs/benchmarks.md).
  # GOMAXPROCS=1: these servers and the worker share the machine's cores, and nats-server needs
  # well under one; run on one scheduler processor it spent less CPU per message in a drain,
  # and so did the worker beside it (docs/benchmarks.md).
  # disable_sublist_cache: nearly every subject this server routes is used once (each message's
  # ack subject, each PubAck's reply subject), so its subject cache only churns.
  echo "disable_sublist_cache: true" >"$ATW_STATE/nats.conf"
  env GOGC="$ATW_NATS_GOGC" ${ATW_NATS_GOMAXPROCS:+GOMAXPROCS="$ATW_NATS_GOMAXPROCS"} \
    nats-server -c "$ATW_STATE/nats.conf" -a 127.0.0.1 -p "$ATW_NATS_PORT" \
    -m "$((ATW_NATS_PORT + 4000))" -js \
    -sd "$ATW_STATE/nats" -P "$ATW_STATE/nats.pid" -l "$ATW_STATE/nats.log" </dev/null >/dev/null 2>&1 &
  disown
  atw_wait_port "$ATW_NATS_PORT" nats-server
}

# atw_start_postgres [DIR PORT]: the cluster in DIR (default atw_pg_dir) on PORT (default
# ATW_PG_PORT), made on first use, with a database asset_telemetry.
atw_start_postgres() {
  local dir="${1:-}" port="${2:-$ATW_PG_PORT}"
  [ -n "$dir" ] || dir="$(atw_pg_dir)"
  if [ ! -s "$dir/PG_VERSION" ]; then
    atw_log "creating a PostgreSQL cluster in $dir"
    mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
    runuser -u postgres -- "$ATW_PG_BIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 >/dev/null
  fi
  if ! runuser -u postgres -- "$ATW_PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    atw_log "starting PostgreSQL on 127.0.0.1:$port"
    [ -n "${1:-}" ] || ATW_STARTED+=" postgres"
    # Durable settings as in production (fsync and synchronous_commit stay on); memory and WAL
    # sized for a write-heavy service rather than PostgreSQL's tiny defaults.
    runuser -u postgres -- "$ATW_PG_BIN/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=200 \
          -c shared_buffers=512MB -c wal_buffers=32MB -c max_wal_size=4GB \
          -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9 \
          -c log_checkpoints=on -c log_lock_waits=on -c log_autovacuum_min_duration=250ms \
          -c log_line_prefix='%m [%p] '" start \
      >/dev/null
  fi
  psql -h 127.0.0.1 -p "$port" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'asset_telemetry'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE asset_telemetry"
}

atw_start_redis() {
  mkdir -p "$ATW_STATE/redis"
  if nc_ok 127.0.0.1 "$ATW_REDIS_PORT"; then return; fi
  atw_log "starting Redis on 127.0.0.1:$ATW_REDIS_PORT"
  ATW_STARTED+=" redis"
  redis-server --bind 127.0.0.1 --port "$ATW_REDIS_PORT" --dir "$ATW_STATE/redis" \
    --daemonize yes --pidfile "$ATW_STATE/redis.pid" --logfile "$ATW_STATE/redis.log" \
    --save "" --appendonly no >/dev/null
  atw_wait_port "$ATW_REDIS_PORT" redis-server
}

atw_start_servers() {
  atw_start_nats
  atw_start_postgres
  atw_start_redis
}

atw_stop_nats() {
  [ -f "$ATW_STATE/nats.pid" ] && kill "$(cat "$ATW_STATE/nats.pid")" 2>/dev/null
  rm -f "$ATW_STATE/nats.pid"
}
atw_stop_postgres() {
  runuser -u postgres -- "$ATW_PG_BIN/pg_ctl" -D "$(atw_pg_dir)" -m fast stop >/dev/null 2>&1 ||
    true
}
atw_stop_redis() {
  [ -f "$ATW_STATE/redis.pid" ] && kill "$(cat "$ATW_STATE/redis.pid")" 2>/dev/null
  rm -f "$ATW_STATE/redis.pid"
}

# Every server under $ATW_STATE, whoever started it (scripts/stop-servers.sh).
atw_stop_servers() {
  atw_log "stopping the servers under $ATW_STATE"
  atw_stop_nats
  atw_stop_redis
  atw_stop_postgres
}

# The servers this script started (ATW_STARTED), none other.
atw_stop_started() {
  [ -n "$ATW_STARTED" ] || return 0
  atw_log "stopping what this script started:$ATW_STARTED"
  local s
  for s in $ATW_STARTED; do "atw_stop_$s"; done
  ATW_STARTED=""
}

nc_ok() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

atw_wait_port() {
  for _ in $(seq 1 100); do
    nc_ok 127.0.0.1 "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not start on port $1" >&2
  return 1
}

# atw_supervise DIR NAME CMD...: runs CMD again whenever it exits (as Kubernetes restarts a
# container), until DIR/stop exists. The current child's pid is in DIR/NAME.pid; each start
# appends "pid time" to DIR/NAME.starts and runs with ATW_START set to its number (1, 2, ...).
# The supervisor's own pid is in DIR/NAME.supervisor.
atw_supervise() {
  local dir="$1" name="$2"
  shift 2
  (
    export ATW_START=0
    while [ ! -e "$dir/stop" ]; do
      ATW_START=$((ATW_START + 1))
      "$@" >>"$dir/$name.log" 2>&1 &
      echo $! >"$dir/$name.pid"
      echo "$! $(date +%s.%N)" >>"$dir/$name.starts"
      wait $! || true
      [ -e "$dir/stop" ] || sleep 1
    done
  ) </dev/null &
  echo $! >"$dir/$name.supervisor"
}

# atw_stop_supervised DIR NAME...: stops the supervised processes NAME... (SIGTERM: a worker
# drains) and their supervisors, and leaves DIR ready for more.
atw_stop_supervised() {
  local dir="$1" name
  shift
  touch "$dir/stop"
  for name in "$@"; do kill -TERM "$(cat "$dir/$name.pid")" 2>/dev/null || true; done
  for name in "$@"; do wait "$(cat "$dir/$name.supervisor")" 2>/dev/null || true; done
  rm -f "$dir/stop"
}

# The run scripts' checks (cluster.sh, shards.sh): one line each; ATW_FAILURES counts the failed.
ATW_FAILURES=0
atw_check() {  # atw_check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    printf '  ok    %-62s %s\n' "$1" "$3"
  else
    printf '  FAIL  %-62s %s (expected %s)\n' "$1" "$3" "$2"
    ATW_FAILURES=$((ATW_FAILURES + 1))
  fi
}
atw_check_at_least() {  # atw_check_at_least DESCRIPTION MINIMUM ACTUAL
  if [ "$3" -ge "$2" ]; then
    printf '  ok    %-62s %s\n' "$1" "$3"
  else
    printf '  FAIL  %-62s %s (expected at least %s)\n' "$1" "$3" "$2"
    ATW_FAILURES=$((ATW_FAILURES + 1))
  fi
}
