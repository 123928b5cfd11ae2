# The pieces bench/run.sh and bench/growth.sh share (sourced after scripts/servers.sh): the
# kernel's writeback for the run, a fresh database and fresh streams, the worker's settings,
# CPU and memory read from /proc, and a quiet machine before each measured phase.

BENCH_DB="postgresql://postgres@127.0.0.1:${ATW_PG_PORT}/asset_bench"

# The kernel's writeback. With its defaults, pages written and not synced are kept until they
# are 30 s old and then written together: nats-server 2.9 syncs its stream files only every 2
# minutes, so 30 s into a steady load the kernel writes some 600 MB at once and every task waits
# on the disk for up to a second (end-to-end p99 760 ms at half the capacity, against 150-190 ms
# with writeback started at 64 MB or 5 s; PostgreSQL's backend_flush_after alone did not help).
# The benchmarks run with that continuous writeback, as docs/runbook.md recommends for a node
# running nats-server, and put the kernel's values back at the end (an EXIT trap).
# BENCH_WRITEBACK=kernel keeps the machine's own.
bench_writeback() {
  [ "${BENCH_WRITEBACK:-continuous}" != kernel ] && [ -w /proc/sys/vm/dirty_background_bytes ] ||
    return 0
  # Setting one of bytes or ratio zeroes the other: the one that was in use is put back.
  bench_writeback_restore="vm.dirty_expire_centisecs=$(cat /proc/sys/vm/dirty_expire_centisecs)"
  if [ "$(cat /proc/sys/vm/dirty_background_bytes)" = 0 ]; then
    bench_writeback_restore+=" vm.dirty_background_ratio=$(cat /proc/sys/vm/dirty_background_ratio)"
  else
    bench_writeback_restore+=" vm.dirty_background_bytes=$(cat /proc/sys/vm/dirty_background_bytes)"
  fi
  atw_at_exit 'sysctl -q -w $bench_writeback_restore'
  sysctl -q -w vm.dirty_background_bytes=67108864 vm.dirty_expire_centisecs=500
  atw_log "writeback from 64 MB or 5 s (the kernel's values are put back at the end)"
}

# bench_start NAME [--keep]: the writeback, the servers (stopped at the end if this run started
# them, unless --keep), and the run's reports: sets stamp (the run's UTC time) and out
# (reports/NAME-<stamp>, the prefix of every file it writes). From the checkout.
bench_start() {
  case "${2:-}" in
    "" | --keep) ;;
    *) echo "usage: $0 [--keep]" >&2; exit 2 ;;
  esac
  bench_writeback
  atw_start_servers
  [ "${2:-}" = --keep ] || atw_at_exit atw_stop_started
  cd "$ATW_ROOT"
  mkdir -p reports
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  out="reports/$1-$stamp"
}

# bench_fresh_database [PSQL-VARIABLE=VALUE...]: asset_bench made again, migrated, with the
# workload (bench/workload.sql; its variables grow the plant).
bench_fresh_database() {
  local vars=() v
  for v in "$@"; do vars+=(-v "$v"); done
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS asset_bench" -c "CREATE DATABASE asset_bench"
  DATABASE_URL="$BENCH_DB" "$ATW_ROOT/build/asset-worker" migrate >/dev/null
  psql "$BENCH_DB" -v ON_ERROR_STOP=1 "${vars[@]}" -qf "$ATW_ROOT/bench/workload.sql"
}

bench_fresh_streams() {
  atw_log "fresh streams"
  local s
  for s in BENCH_IN BENCH_OUT BENCH_DLQ BENCH_STATE; do
    "$ATW_ROOT/build/atw-devtool" delete-stream --stream "$s" >/dev/null 2>&1 || true
  done
  "$ATW_ROOT/build/atw-devtool" ensure-stream --stream BENCH_IN --subject bench.telemetry.normalized.v1 >/dev/null
  "$ATW_ROOT/build/atw-devtool" ensure-stream --stream BENCH_OUT --subject bench.telemetry.asset.v1 >/dev/null
  "$ATW_ROOT/build/atw-devtool" ensure-stream --stream BENCH_DLQ --subject bench.telemetry.dlq >/dev/null
  "$ATW_ROOT/build/atw-devtool" ensure-stream --stream BENCH_STATE --subject bench.telemetry.asset.state.v1 >/dev/null
}

# The worker's settings for the benchmark's streams (BATCH and WRITERS set by the caller).
bench_worker_environment() {
  export INPUT_SUBJECT=bench.telemetry.normalized.v1 OUTPUT_SUBJECT=bench.telemetry.asset.v1 \
    STATE_SUBJECT=bench.telemetry.asset.state.v1 DLQ_SUBJECT=bench.telemetry.dlq \
    NATS_DURABLE=bench-worker HTTP_ADDR=127.0.0.1:19090 WORKER_ID=bench \
    LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" BATCH_SIZE="$BATCH" DB_WRITERS="$WRITERS"
}

proc_stats() {  # cpu seconds and peak RSS (MB) of a pid
  local ticks hz
  hz=$(getconf CLK_TCK)
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
  echo "$(awk -v t="$ticks" -v h="$hz" 'BEGIN {printf "%.2f", t / h}') $(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status")"
}

# CPU seconds of the servers, from /proc: nats-server, and PostgreSQL's postmaster with its
# children (backends, WAL writer, checkpointer; backends that end meanwhile are not counted).
server_cpu() {
  local hz pm t=0 n=0 p
  hz=$(getconf CLK_TCK)
  pm=$(head -n1 "$(atw_pg_dir)/postmaster.pid")
  for p in "$pm" $(pgrep -P "$pm"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  n=$(awk '{print $14 + $15}' "/proc/$(cat "$ATW_STATE/nats.pid")/stat" 2>/dev/null || echo 0)
  awk -v n="$n" -v t="$t" -v h="$hz" 'BEGIN {printf "%.2f %.2f\n", n / h, t / h}'
}

# Each measured phase starts from a quiet machine, as pgbench starts from a vacuumed database:
# what the earlier phases left dirty in the page cache is written, PostgreSQL checkpoints, and
# the tables they filled are vacuumed now rather than by autovacuum a minute into the next
# phase. The autovacuum the phase's own writes call for still runs within it.
settle() {
  local started=$SECONDS
  sync
  psql "$BENCH_DB" -qc "VACUUM (ANALYZE) telemetry_history, processed_messages, assets" \
    -c "CHECKPOINT"
  sync
  atw_log "settled in $((SECONDS - started)) s"
}
