#!/usr/bin/env bash
# The growth benchmark: what a message costs as the plant grows, one factor at a time while the
# others stay standard (1,000 devices, 6 metrics a message, 2 assets a device, an empty history):
#   devices              1,000 / 100,000 / 1,000,000 (a backlog of each device twice: the first
#                        pass with cold caches, Redis flushed and a fresh worker, then warm);
#   metrics per message  6 / 60 / 600 (the extra ones carried by the port-1 link);
#   assets per device    2 / 10;
#   history rows         0 / 10 M / 50 M already in telemetry_history, over 30 days of daily
#                        partitions (bench/history.sql), with their processed_messages rows.
# Each point: one worker drains a backlog from a quiet machine (bench/lib.sh's settle); the drain
# rate, the CPU of the worker, nats-server and PostgreSQL per message and per history row, and
# the worker's peak RSS. Writes reports/growth-<time>.{jsonl,md,png} (bench/growth_report.py)
# and prints the table with the targets. Takes 20-30 minutes; GROWTH_QUICK=1 runs every factor
# at a tenth of its size (a few minutes), to try the script itself; GROWTH_FACTORS (default
# "devices metrics assets history") runs some of them only (the standard point always).
# Stops the servers it started at the end; `--keep` leaves them running.
set -euo pipefail
source "$(dirname "$0")/../scripts/servers.sh"
source "$(dirname "$0")/lib.sh"
BATCH="${BATCH_SIZE:-2000}"
WRITERS="${DB_WRITERS:-2}"
BASE="${GROWTH_BACKLOG:-200000}"  # messages of a point, unless the factor needs more
DEVICES="1000 100000 1000000" METRICS="60 600" ASSETS="10" HISTORY="10000000 50000000"
FACTORS=" ${GROWTH_FACTORS:-devices metrics assets history} "
if [ "${GROWTH_QUICK:-0}" = 1 ]; then
  BASE=20000 DEVICES="1000 10000 100000" METRICS="60 600" ASSETS="10" HISTORY="1000000 5000000"
fi

atw_install python3 procps gnuplot-nox redis-tools
atw_build Release "$ATW_ROOT/build" asset-worker atw-bench atw-devtool
bench_start growth "${1:-}"
: >"$out.jsonl"
bench_worker_environment

# WAL written so far (bytes, full-page images): a page's first change after a checkpoint writes
# the whole page to the WAL, so the number of pages a drain touches shows here.
wal_written() {
  psql "$BENCH_DB" -tAF ' ' -c "SELECT pg_current_wal_lsn() - '0/0', wal_fpi FROM pg_stat_wal"
}

# point FACTOR VALUE DEVICES METRICS COUNT: a drain of COUNT messages of DEVICES devices with
# METRICS metrics each, from cold caches, timed in two halves; one line of $out.jsonl.
point() {
  local factor=$1 value=$2 devices=$3 metrics=$4 count=$5 worker nats0 pg0 nats1 pg1 cpu rss wal0 wal1
  atw_log "growth: $factor $value ($count messages, $devices devices, $metrics metrics)"
  bench_fresh_streams
  redis-cli -u "$REDIS_URL" FLUSHALL >/dev/null
  build/atw-bench --run "g$value" --devices "$devices" --metrics "$metrics" prefill \
    --subject bench.telemetry.normalized.v1 --count "$count" >/dev/null
  settle
  wal0=$(wal_written)
  DATABASE_URL="$BENCH_DB" build/asset-worker run 2>"$out-worker-$factor-$value.log" &
  worker=$!
  read -r nats0 pg0 < <(server_cpu)
  build/atw-bench drain --stream BENCH_IN --durable bench-worker --count "$count" \
    --split "$((count / 2))" --timeout 1800 >"$out-$factor-$value-drain.json"
  read -r cpu rss < <(proc_stats "$worker")
  read -r nats1 pg1 < <(server_cpu)
  curl -fsS http://127.0.0.1:19090/metrics >"$out-$factor-$value-metrics.txt"
  kill -TERM "$worker"
  wait "$worker" || true
  wal1=$(wal_written)  # after the worker's sessions ended: they report their WAL as they end
  python3 - "$factor" "$value" "$devices" "$metrics" "$out-$factor-$value-drain.json" \
    "$out-$factor-$value-metrics.txt" "$cpu" "$rss" "$nats0" "$nats1" "$pg0" "$pg1" $wal0 $wal1 \
    <<'PY' | tee -a "$out.jsonl"
import json, re, sys
factor, value, devices, metrics, drain, scrape = sys.argv[1:7]
cpu, rss, nats0, nats1, pg0, pg1, bytes0, fpi0, bytes1, fpi1 = map(float, sys.argv[7:17])
d = json.load(open(drain))
text = open(scrape).read()
def counter(name, labels=""):
    m = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m[1]) if m else 0.0
print(json.dumps({
    "factor": factor, "value": int(value), "devices": int(devices), "metrics": int(metrics),
    "messages": d["messages"], "seconds": d["seconds"], "rate": d["rate"],
    "cold_rate": d.get("first_rate"), "warm_rate": d.get("rest_rate"),
    "redelivered": d["redelivered"],
    "history_rows": counter("asset_worker_history_rows_total"),
    "store_loads": counter("asset_worker_link_store_loads_total"),
    "worker_cpu_s": cpu, "nats_cpu_s": round(nats1 - nats0, 2), "postgres_cpu_s": round(pg1 - pg0, 2),
    "wal_bytes": bytes1 - bytes0, "wal_fpi": fpi1 - fpi0, "peak_rss_mb": rss}))
PY
}

atw_log "the machine: PostgreSQL alone, one connection (the standard workload's rows)"
bench_fresh_database
DATABASE_URL="$BENCH_DB" build/atw-bench --run "c$stamp" ceiling-postgres --count 200000 \
  --batch "$BATCH" --connections 1 | tee "$out-ceiling-pg1.json"

# A short drain first, not reported: the first drain after the servers start runs slower
# (PostgreSQL's buffers and caches fill; once 9,162 against 22,552 msg/s).
bench_fresh_database
point warm-up 1000 1000 6 "$((BASE / 5))" >/dev/null
: >"$out.jsonl"
# The standard point first: it is every factor's first value.
for d in $DEVICES; do
  [ "$d" = 1000 ] || [[ "$FACTORS" == *" devices "* ]] || continue
  bench_fresh_database devices="$d"
  point devices "$d" "$d" 6 "$((2 * d > BASE ? 2 * d : BASE))"
done
bench_fresh_database
[[ "$FACTORS" == *" metrics "* ]] || METRICS=""
[[ "$FACTORS" == *" assets "* ]] || ASSETS=""
[[ "$FACTORS" == *" history "* ]] || HISTORY=""
for m in $METRICS; do  # as many history rows a point as the standard backlog writes, or more
  point metrics "$m" 1000 "$m" "$((BASE * 7 / (m + 1) > BASE / 20 ? BASE * 7 / (m + 1) : BASE / 20))"
done
for a in $ASSETS; do
  bench_fresh_database assets_per_device="$a"
  point assets "$a" 1000 6 "$BASE"
done
bench_fresh_database
filled=0
for h in $HISTORY; do
  atw_log "history: rows $filled to $h"
  started=$SECONDS
  psql "$BENCH_DB" -v ON_ERROR_STOP=1 -v from_row="$filled" -v to_row="$h" -v devices=1000 \
    -qf bench/history.sql
  atw_log "history: filled in $((SECONDS - started)) s"
  filled=$h
  point history "$h" 1000 6 "$BASE"
done

python3 bench/growth_report.py "$out" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"])' "$out-ceiling-pg1.json")"
