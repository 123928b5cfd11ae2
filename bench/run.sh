#!/usr/bin/env bash
# The throughput benchmark, one run on this machine:
#   1. servers, a fresh database with the standard workload, a backlog of 200,000 messages;
#   2. the ceilings: JetStream alone (fetch+ack the backlog), PostgreSQL alone (COPY the same
#      rows into an identical table);
#   3. one worker drains the backlog: rate, CPU seconds, peak RSS;
#   4. a steady offered load (5,000 msg/s for 60 s): processing and end-to-end latency;
#   5. one table on stdout, and reports/bench-<time>.{md,png} (git-ignored), the PNG with the
#      CPU of each process over the steady phase (bench/cpu_sampler.py) beside its latency.
# Durability is production's: fsync and synchronous_commit on, JetStream file storage.
# Stops the servers it started at the end; `bash bench/run.sh --keep` leaves them running.
set -euo pipefail
source "$(dirname "$0")/../scripts/servers.sh"
source "$(dirname "$0")/lib.sh"
BACKLOG="${BACKLOG:-200000}"
RATE="${RATE:-5000}"
BATCH="${BATCH_SIZE:-2000}"
WRITERS="${DB_WRITERS:-2}"
STEADY_SECONDS="${STEADY_SECONDS:-60}"

atw_install python3 procps gnuplot-nox
atw_build Release

bench_start bench "${1:-}"

atw_log "fresh database asset_bench, standard workload"
bench_fresh_database

bench_fresh_streams

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

bench_worker_environment

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

# Reprocess: the backlog's range again after a formula change, alone and beside a
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
