#!/usr/bin/env bash
# The throughput benchmark (issue 3), one run on this machine:
#   1. servers, a fresh database with the standard workload, a backlog of 200,000 messages;
#   2. the ceilings: JetStream alone (fetch+ack the backlog), PostgreSQL alone (COPY the same
#      rows into an identical table);
#   3. one worker drains the backlog: rate, CPU seconds, peak RSS;
#   4. a steady offered load (5,000 msg/s for 60 s): processing and end-to-end latency;
#   5. one table on stdout, and reports/bench-<time>.{md,png} (git-ignored), the PNG with the
#      CPU of each process over the steady phase (bench/cpu_sampler.py) beside its latency.
# Durability is production's: fsync and synchronous_commit on, JetStream file storage.
set -euo pipefail
source "$(dirname "$0")/../scripts/servers.sh"
BACKLOG="${BACKLOG:-200000}"
RATE="${RATE:-5000}"
BATCH="${BATCH_SIZE:-2000}"
WRITERS="${DB_WRITERS:-2}"
STEADY_SECONDS="${STEADY_SECONDS:-60}"

atw_install python3 procps gnuplot-nox
atw_build Release

# The kernel's writeback (issue 22). With its defaults, pages written and not synced are kept
# until they are 30 s old and then written together: nats-server 2.9 syncs its stream files only
# every 2 minutes, so 30 s into a steady load the kernel writes some 600 MB at once and every
# task waits on the disk for up to a second (end-to-end p99 760 ms at half the capacity, against
# 150-190 ms with writeback started at 64 MB or 5 s; PostgreSQL's backend_flush_after alone did
# not help). The benchmark runs with that continuous writeback, as docs/runbook.md recommends for
# a node running nats-server, and puts the kernel's values back at the end.
# BENCH_WRITEBACK=kernel keeps the machine's own.
writeback_restore=""
if [ "${BENCH_WRITEBACK:-continuous}" != kernel ] && [ -w /proc/sys/vm/dirty_background_bytes ]; then
  # Setting one of bytes or ratio zeroes the other: the one that was in use is put back.
  writeback_restore="vm.dirty_expire_centisecs=$(cat /proc/sys/vm/dirty_expire_centisecs)"
  if [ "$(cat /proc/sys/vm/dirty_background_bytes)" = 0 ]; then
    writeback_restore+=" vm.dirty_background_ratio=$(cat /proc/sys/vm/dirty_background_ratio)"
  else
    writeback_restore+=" vm.dirty_background_bytes=$(cat /proc/sys/vm/dirty_background_bytes)"
  fi
  trap 'sysctl -q -w $writeback_restore' EXIT
  sysctl -q -w vm.dirty_background_bytes=67108864 vm.dirty_expire_centisecs=500
  atw_log "writeback from 64 MB or 5 s (the kernel's values are put back at the end)"
fi
atw_start_servers
cd "$ATW_ROOT"
mkdir -p reports
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="reports/bench-$stamp"
BENCH_DB="postgresql://postgres@127.0.0.1:${ATW_PG_PORT}/asset_bench"

atw_log "fresh database asset_bench, standard workload"
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS asset_bench" -c "CREATE DATABASE asset_bench"
DATABASE_URL="$BENCH_DB" build/asset-worker migrate >/dev/null
psql "$BENCH_DB" -v ON_ERROR_STOP=1 -qf bench/workload.sql

atw_log "fresh streams"
build/atw-devtool delete-stream --stream BENCH_IN >/dev/null 2>&1 || true
build/atw-devtool delete-stream --stream BENCH_OUT >/dev/null 2>&1 || true
build/atw-devtool delete-stream --stream BENCH_DLQ >/dev/null 2>&1 || true
build/atw-devtool delete-stream --stream BENCH_STATE >/dev/null 2>&1 || true
build/atw-devtool ensure-stream --stream BENCH_IN --subject bench.telemetry.normalized.v1 >/dev/null
build/atw-devtool ensure-stream --stream BENCH_OUT --subject bench.telemetry.asset.v1 >/dev/null
build/atw-devtool ensure-stream --stream BENCH_DLQ --subject bench.telemetry.dlq >/dev/null
build/atw-devtool ensure-stream --stream BENCH_STATE --subject bench.telemetry.asset.state.v1 >/dev/null

atw_log "prefilling $BACKLOG messages"
range_from=$(date -u -d '-600 seconds' +%Y-%m-%dT%H:%M:%SZ)  # the backlog's measurement times
build/atw-bench --run "b$stamp" prefill --subject bench.telemetry.normalized.v1 --count "$BACKLOG" \
  | tee "$out-prefill.json"
range_to=$(date -u -d '+1 seconds' +%Y-%m-%dT%H:%M:%SZ)

atw_log "ceiling: JetStream alone (fetch and ack the backlog, no work)"
build/atw-bench --run "b$stamp" ceiling-jetstream --stream BENCH_IN \
  --subject bench.telemetry.normalized.v1 --count "$BACKLOG" --batch "$BATCH" | tee "$out-ceiling-js.json"

atw_log "ceiling: PostgreSQL alone (COPY the same rows into an identical table)"
# With as many connections as the worker writes on, and with one (a single COPY stream). The
# one-connection ceiling is measured again after the drain (below): the target compares the
# drain with the mean of the two, as this machine's speed drifts from one minute to the next.
DATABASE_URL="$BENCH_DB" build/atw-bench --run "c$stamp" ceiling-postgres --count "$BACKLOG" \
  --batch "$BATCH" --connections "$WRITERS" | tee "$out-ceiling-pg.json"
psql "$BENCH_DB" -qc "TRUNCATE telemetry_history_ceiling"
ceiling_pg1() {  # $1: the run id's letter, $2: the output file
  DATABASE_URL="$BENCH_DB" build/atw-bench --run "$1$stamp" ceiling-postgres --count "$BACKLOG" \
    --batch "$BATCH" --connections 1 | tee "$2"
  psql "$BENCH_DB" -qc "TRUNCATE telemetry_history_ceiling"
}

export INPUT_SUBJECT=bench.telemetry.normalized.v1 OUTPUT_SUBJECT=bench.telemetry.asset.v1 \
  STATE_SUBJECT=bench.telemetry.asset.state.v1 DLQ_SUBJECT=bench.telemetry.dlq NATS_DURABLE=bench-worker HTTP_ADDR=127.0.0.1:19090 \
  WORKER_ID=bench LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" BATCH_SIZE="$BATCH" DB_WRITERS="$WRITERS"

proc_stats() {  # cpu seconds and peak RSS (MB) of a pid
  local ticks hz
  hz=$(getconf CLK_TCK)
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
  echo "$(awk -v t="$ticks" -v h="$hz" 'BEGIN {printf "%.2f", t / h}') $(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status")"
}

# CPU seconds of the servers, from /proc: nats-server, and PostgreSQL's postmaster with its
# children (backends, WAL writer, checkpointer; backends that end meanwhile are not counted).
server_cpu() {
  local hz pm pids t=0 n=0 p
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

settle
ceiling_pg1 e "$out-ceiling-pg1.json"

settle
atw_log "drain: one worker over the backlog"
DATABASE_URL="$BENCH_DB" build/asset-worker run 2>"$out-worker-drain.log" &
worker=$!
read -r nats0 pg0 < <(server_cpu)
build/atw-bench drain --stream BENCH_IN --durable bench-worker --count "$BACKLOG" \
  --csv "$out-drain.csv" | tee "$out-drain.json"
read -r cpu rss < <(proc_stats "$worker")
read -r nats1 pg1 < <(server_cpu)
echo "{\"cpu_seconds\":$cpu,\"peak_rss_mb\":$rss,\"nats_cpu_seconds\":$(awk -v a="$nats0" -v b="$nats1" 'BEGIN {printf "%.2f", b - a}'),\"postgres_cpu_seconds\":$(awk -v a="$pg0" -v b="$pg1" 'BEGIN {printf "%.2f", b - a}')}" | tee "$out-drain-proc.json"
kill -TERM "$worker"; wait "$worker" || true

settle
atw_log "ceiling: PostgreSQL alone, 1 connection, again after the drain"
ceiling_pg1 f "$out-ceiling-pg1-after.json"

# A steady load: messages offered at a fixed rate for STEADY_SECONDS to a worker started for it.
# The worker's own histogram is scraped before and after (processing latency, fetch to ack);
# atw-bench times each event from its message's publish (end to end).
steady_phase() {  # steady_phase NAME RATE RUN-LETTER: files $out-NAME*
  local name=$1 rate=$2 letter=$3 worker sampler nats0 pg0 nats1 pg1 wcpu0 cpu2 rss2
  settle
  atw_log "$name: $rate messages/s offered for $STEADY_SECONDS s"
  DATABASE_URL="$BENCH_DB" build/asset-worker run 2>"$out-worker-$name.log" &
  worker=$!
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:19090/readyz >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS http://127.0.0.1:19090/metrics >"$out-metrics-$name-before.txt"
  read -r nats0 pg0 < <(server_cpu)
  wcpu0=$(proc_stats "$worker" | cut -d' ' -f1)
  python3 bench/cpu_sampler.py "$out-cpu-$name.csv" "$worker" &
  sampler=$!
  build/atw-bench --run "$letter$stamp" steady --subject bench.telemetry.normalized.v1 \
    --events-subject bench.telemetry.asset.v1 --rate "$rate" --seconds "$STEADY_SECONDS" \
    --csv "$out-$name.csv" | tee "$out-$name.json"
  curl -fsS http://127.0.0.1:19090/metrics >"$out-metrics-$name-after.txt"
  kill -TERM "$sampler"; wait "$sampler" || true
  read -r cpu2 rss2 < <(proc_stats "$worker")
  read -r nats1 pg1 < <(server_cpu)
  echo "{\"rate\":$rate,\"cpu_seconds\":$(awk -v a="$wcpu0" -v b="$cpu2" 'BEGIN {printf "%.2f", b - a}'),\"peak_rss_mb\":$rss2,\"nats_cpu_seconds\":$(awk -v a="$nats0" -v b="$nats1" 'BEGIN {printf "%.2f", b - a}'),\"postgres_cpu_seconds\":$(awk -v a="$pg0" -v b="$pg1" 'BEGIN {printf "%.2f", b - a}')}" | tee "$out-$name-proc.json"
  kill -TERM "$worker"; wait "$worker" || true
}

# The fixed rate of earlier reports, then half of the drain rate this run measured: the latency
# targets hold at a share of this machine's capacity, so they mean the same on a slower one.
steady_phase steady "$RATE" s
half_rate=$(tail -n1 "$out-drain.json" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rate"] / 2))')
steady_phase half "$half_rate" h

atw_log "correctness after the run"
psql "$BENCH_DB" -tAc "SELECT json_build_object(
  'history_rows', (SELECT count(*) FROM telemetry_history),
  'processed_messages', (SELECT count(*) FROM processed_messages),
  'duplicate_rows', (SELECT count(*) FROM (SELECT 1 FROM telemetry_history
      GROUP BY entity_id, metric_key, \"timestamp\" HAVING count(*) > 1) d))" | tee "$out-check.json"

# Reprocess (issue 20): the backlog's range again after a formula change, alone and beside a
# live load of half the steady rate; each run corrects every message (pump A's power and score).
reprocess_range() {  # reprocess_range FACTOR OUTPUT: the formula times FACTOR, then the run
  psql "$BENCH_DB" -qc "UPDATE asset_types SET telemetry_schema = '{\"derived_metrics\":
    [{\"name\": \"power_consumption\", \"formula\": \"power_input * power_current * $1\"}]}'
    WHERE id = 'bench-type-pump'"
  local t0 t1
  t0=$(date +%s.%N)
  DATABASE_URL="$BENCH_DB" build/asset-worker reprocess --from "$range_from" --to "$range_to" \
    --json >"$2" 2>"$2.log"
  t1=$(date +%s.%N)
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(json.dumps({"seconds": float(sys.argv[3]) - float(sys.argv[2]), "selected": j["messagesSelected"], "corrected": j["messagesCorrected"], "rate": j["messagesSelected"] / (float(sys.argv[3]) - float(sys.argv[2]))}))' \
    "$2" "$t0" "$t1" | tee "$2.rate"
}
if [ "${BENCH_REPROCESS:-1}" = 1 ]; then
  settle
  atw_log "reprocess: the backlog's range after a formula change, alone"
  reprocess_range 1.1 "$out-reprocess.json"
  settle
  atw_log "reprocess: again, beside a live load of $((RATE / 2)) messages/s"
  DATABASE_URL="$BENCH_DB" build/asset-worker run 2>"$out-worker-live.log" &
  worker=$!
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:19090/readyz >/dev/null 2>&1 && break; sleep 0.1; done
  build/atw-bench --run "r$stamp" steady --subject bench.telemetry.normalized.v1 \
    --events-subject bench.telemetry.asset.v1 --rate "$((RATE / 2))" --seconds 45 \
    --csv "$out-live.csv" >"$out-live.json" &
  steady=$!
  sleep 5
  reprocess_range 1.2 "$out-reprocess-live.json"
  wait "$steady" || true
  kill -TERM "$worker"; wait "$worker" || true
fi

python3 bench/report.py "$out" "$BACKLOG" "$RATE"
if [ "${BENCH_REPROCESS:-1}" = 1 ]; then
  {
    echo
    echo "reprocess of the backlog's range (msg/s): $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["rate"]))' "$out-reprocess.json.rate") alone," \
      "$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["rate"]))' "$out-reprocess-live.json.rate") beside $((RATE / 2)) msg/s live;" \
      "live end-to-end p99 meanwhile $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["e2e_p99_ms"])' "$out-live.json") ms"
  } | tee -a "$out.md"
fi
