#!/usr/bin/env bash
# Past one PostgreSQL (docs/scaling.md, "one shard per group of tenants"), run on this machine:
#   one nats-server and one stream capturing telemetry.normalized.v1.>; two PostgreSQL primaries,
#   each holding the assets and links of its shard's tenants (the standard benchmark workload,
#   split); two worker deployments of SHARDS_REPLICAS replicas each, filtered on their shard's
#   subject (INPUT_SUBJECT=telemetry.normalized.v1.<shard>, a durable of their own, the
#   DATABASE_URL of their primary); a backlog of SHARDS_BACKLOG messages published to the
#   subject of each message's shard by the fixed map below. Mid-run one replica of shard a is
#   SIGKILLed (its supervisor restarts it, as Kubernetes would). Afterwards it checks that every
#   message landed once in its tenant's primary and nowhere else (its 7 history rows, one
#   processed row, none of another shard's tenants), that every event is unique and the
#   dead-letter stream is empty, and prints each replica's share and the combined rate.
#
#   bash scripts/shards.sh            # install, build, run; every server it started is stopped
#   bash scripts/shards.sh --keep     # leave the servers and workers running afterwards
#   bash scripts/shards.sh --test     # as the test suite runs it: no install, no build
# Settings (environment): SHARDS_BACKLOG (40000), SHARDS_REPLICAS (2), SHARDS_PORT (27300: nats
# +0, its monitoring +1, Redis +2, the primaries +3 and +4, the workers' HTTP +10...),
# SHARDS_KILL_AT (30: percent processed when a replica is killed; 1000: never),
# SHARDS_TIMEOUT_S (600), SHARDS_LOG_LEVEL (warn).
set -euo pipefail
source "$(dirname "$0")/servers.sh"

atw_run_mode "${1:-}"
mode=$ATW_MODE

BACKLOG="${SHARDS_BACKLOG:-40000}"
REPLICAS="${SHARDS_REPLICAS:-2}"
PORT="${SHARDS_PORT:-27300}"
KILL_AT="${SHARDS_KILL_AT:-30}"
TIMEOUT_S="${SHARDS_TIMEOUT_S:-600}"
BUILD="${ATW_BUILD_DIR:-$ATW_ROOT/build}"
STATE="${SHARDS_STATE:-$ATW_STATE/shards-$PORT}"
SHARDS=(a b)
# The fixed map: an organization's messages always go to the same shard (its scores stay in
# order and its rows in one primary).
SHARD_MAP="bench-org-1=a,bench-org-2=b,bench-org-3=a,bench-org-4=b"
declare -A PG_PORT=([a]=$((PORT + 3)) [b]=$((PORT + 4)))
NATS_PORT=$PORT
REDIS_PORT=$((PORT + 2))
export NATS_URL="nats://127.0.0.1:$NATS_PORT"

if [ "$mode" != test ]; then
  atw_install python3 procps
  atw_build Release "$BUILD" asset-worker atw-bench atw-devtool
fi

shard_db() { echo "postgresql://postgres@127.0.0.1:${PG_PORT[$1]}/asset_telemetry"; }
shard_pg_dir() { ATW_STATE="$STATE/$1" atw_pg_dir; }
shard_psql() { local s=$1; shift; psql "$(shard_db "$s")" -v ON_ERROR_STOP=1 -qtA "$@"; }

cleanup() {
  local rc=$? f s
  if [ "$mode" = keep ] && [ $rc -eq 0 ]; then
    atw_log "left running (pids in $STATE); stop with: touch $STATE/stop; kill \$(cat $STATE/*.pid)"
    return
  fi
  touch "$STATE/stop"
  for f in "$STATE"/worker-*.pid "$STATE"/nats.pid "$STATE"/redis.pid; do
    [ -e "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$STATE"/*.supervisor; do [ -e "$f" ] && { wait "$(cat "$f")" 2>/dev/null || true; }; done
  for s in "${SHARDS[@]}"; do
    runuser -u postgres -- "$ATW_PG_BIN/pg_ctl" -D "$(shard_pg_dir "$s")" -m fast stop \
      >/dev/null 2>&1 || true
  done
  return $rc
}

rm -rf "$STATE"
mkdir -p "$STATE"
trap cleanup EXIT

# ---- servers -----------------------------------------------------------------------------
atw_log "nats-server on 127.0.0.1:$NATS_PORT, Redis on $REDIS_PORT"
nats-server -a 127.0.0.1 -p "$NATS_PORT" -m "$((PORT + 1))" -js -sd "$STATE/nats" \
  -P "$STATE/nats.pid" -l "$STATE/nats.log" </dev/null >/dev/null 2>&1 &
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE" --save "" --appendonly no \
  </dev/null >"$STATE/redis.log" 2>&1 &
echo $! >"$STATE/redis.pid"
atw_wait_port "$NATS_PORT" nats-server
atw_wait_port "$REDIS_PORT" redis-server

for s in "${SHARDS[@]}"; do
  atw_log "primary of shard $s: PostgreSQL on 127.0.0.1:${PG_PORT[$s]}"
  atw_start_postgres "$(shard_pg_dir "$s")" "${PG_PORT[$s]}"
  DATABASE_URL="$(shard_db "$s")" "$BUILD/asset-worker" migrate >/dev/null
  # The standard workload, then only this shard's tenants kept: their assets and links.
  shard_psql "$s" -f "$ATW_ROOT/bench/workload.sql" >"$STATE/workload-$s.log" 2>&1
  tenants=$(tr ',' '\n' <<<"$SHARD_MAP" | awk -F= -v s="$s" '$2 == s {printf "%s'\''%s'\''", n++ ? "," : "", $1}')
  shard_psql "$s" -c "DELETE FROM entity_edges WHERE tenant_id NOT IN ($tenants)" \
    -c "DELETE FROM assets WHERE tenant_id NOT IN ($tenants)"
  echo "  shard $s: tenants $tenants, $(shard_psql "$s" -c "SELECT count(*) FROM assets") assets"
done

atw_log "one stream for every shard's subject"
"$BUILD/atw-devtool" ensure-stream --stream TELEMETRY_NORMALIZED \
  --subject 'telemetry.normalized.v1.>' >/dev/null

# ---- the deployments ---------------------------------------------------------------------
atw_log "two deployments of $REPLICAS replicas, one a shard"
workers=()
for s in "${SHARDS[@]}"; do
  for r in $(seq 1 "$REPLICAS"); do
    name="$s-$r"
    workers+=("$name")
    http=$((PORT + 10 + ${#workers[@]}))
    echo "$http" >"$STATE/worker-$name.http"
    atw_supervise "$STATE" "worker-$name" env DATABASE_URL="$(shard_db "$s")" \
      REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" NATS_URL="$NATS_URL" \
      INPUT_SUBJECT="telemetry.normalized.v1.$s" NATS_DURABLE="asset-processor-$s" \
      HTTP_ADDR="127.0.0.1:$http" LOG_LEVEL="${SHARDS_LOG_LEVEL:-warn}" ACK_WAIT_S=10 \
      bash -c "WORKER_ID=shard-$name.\$ATW_START exec '$BUILD/asset-worker' run"
  done
done
for name in "${workers[@]}"; do
  for _ in $(seq 1 600); do
    curl -fsS -m 1 "http://127.0.0.1:$(cat "$STATE/worker-$name.http")/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

atw_log "publishing $BACKLOG messages, each to its shard's subject ($SHARD_MAP)"
run_id="sh$(date +%s)"
processed() {  # processed SHARD: this run's messages its primary holds
  shard_psql "$1" -c "SELECT count(*) FROM processed_messages WHERE message_id LIKE '$run_id-%'"
}
t0=$(date +%s.%N)
"$BUILD/atw-bench" --run "$run_id" prefill --subject telemetry.normalized.v1 \
  --shard-map "$SHARD_MAP" --count "$BACKLOG" >"$STATE/prefill.log" 2>&1 &
prefill=$!

killed=0 done_at=""
deadline=$(($(date +%s) + TIMEOUT_S))
while :; do
  n=$(($(processed a) + $(processed b)))
  pct=$((n * 100 / BACKLOG))
  if [ "$killed" = 0 ] && [ "$pct" -ge "$KILL_AT" ] && [ "$(shard_psql a -c "SELECT count(*) FROM
      processed_messages WHERE processed_by LIKE 'shard-a-1.%'")" -gt 0 ]; then
    pid=$(cat "$STATE/worker-a-1.pid")
    atw_log "$n processed ($pct%): SIGKILL replica a-1 (pid $pid); its supervisor restarts it"
    kill -KILL "$pid"
    killed=1
  fi
  if [ "$n" -ge "$BACKLOG" ]; then done_at=$(date +%s.%N); break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "timed out after $TIMEOUT_S s with $n of $BACKLOG processed" >&2
    break
  fi
  sleep 0.2
done
elapsed=$(awk -v a="$t0" -v b="${done_at:-$(date +%s.%N)}" 'BEGIN {printf "%.1f", b - a}')
wait "$prefill" || { echo "publishing failed:" >&2; cat "$STATE/prefill.log" >&2; exit 1; }

# The last acks and events, then the workers stopped (SIGTERM: drained).
for s in "${SHARDS[@]}"; do
  for _ in $(seq 1 60); do
    left=$("$BUILD/atw-devtool" consumer-info --stream TELEMETRY_NORMALIZED \
      --durable "asset-processor-$s" 2>/dev/null |
      python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["num_pending"] + j["num_ack_pending"])' \
      2>/dev/null || echo "?")
    [ "$left" = 0 ] && break
    sleep 0.5
  done
done
atw_stop_supervised "$STATE" $(printf 'worker-%s ' "${workers[@]}")

# ---- checks ------------------------------------------------------------------------------
atw_log "checking"
# Message n comes from device n % 1000 + 1 of organization device % 4 + 1 (tools/atw_bench.cc).
for s in "${SHARDS[@]}"; do
  expected=$(python3 -c '
import sys
backlog, shard, pairs = int(sys.argv[1]), sys.argv[2], dict(p.split("=") for p in sys.argv[3].split(","))
print(sum(1 for n in range(backlog) if pairs[f"bench-org-{(n % 1000 + 1) % 4 + 1}"] == shard))' \
    "$BACKLOG" "$s" "$SHARD_MAP")
  tenants=$(tr ',' '\n' <<<"$SHARD_MAP" | awk -F= -v s="$s" '$2 == s {printf "%s'\''%s'\''", n++ ? "," : "", $1}')
  atw_check "shard $s: messages processed in its primary" "$expected" "$(processed "$s")"
  atw_check "shard $s: its primary's rows of other shards' tenants" 0 \
    "$(shard_psql "$s" -c "SELECT count(*) FROM processed_messages WHERE organization_id NOT IN ($tenants)")"
  atw_check "shard $s: history rows (7 a message)" "$((expected * 7))" \
    "$(shard_psql "$s" -c "SELECT count(*) FROM telemetry_history WHERE source_device_id LIKE 'bench-dev-%'")"
  atw_check "shard $s: history rows written twice" 0 \
    "$(shard_psql "$s" -c "SELECT count(*) FROM (SELECT 1 FROM telemetry_history GROUP BY entity_id, metric_key, \"timestamp\" HAVING count(*) > 1) d")"
  atw_check "shard $s: assets scored (each of its tenants' assets)" \
    "$(shard_psql "$s" -c "SELECT count(*) FROM assets")" \
    "$(shard_psql "$s" -c "SELECT count(*) FROM assets WHERE health_score IS NOT NULL")"
done
"$BUILD/atw-devtool" dump --stream TELEMETRY_ASSET --max $((BACKLOG * 4)) >"$STATE/events.jsonl"
atw_check "events in TELEMETRY_ASSET (2 a message)" "$((BACKLOG * 2))" "$(wc -l <"$STATE/events.jsonl")"
atw_check "distinct events (messageId, assetId)" "$((BACKLOG * 2))" \
  "$(python3 -c 'import json,sys; print(len({(json.loads(l)["data"]["messageId"], json.loads(l)["data"]["assetId"]) for l in open(sys.argv[1])}))' "$STATE/events.jsonl")"
atw_check "messages in TELEMETRY_DLQ" 0 \
  "$("$BUILD/atw-devtool" stream-info --stream TELEMETRY_DLQ | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["messages"])')"
restarts=$(($(cat "$STATE"/worker-*.starts | wc -l) - ${#workers[@]}))
[ "$KILL_AT" -gt 100 ] || atw_check_at_least "replicas killed and restarted" 1 "$restarts"

atw_log "per replica (processed_messages.processed_by in each primary)"
for s in "${SHARDS[@]}"; do
  shard_psql "$s" -F ' ' -c "SELECT processed_by, count(*) FROM processed_messages
    WHERE message_id LIKE '$run_id-%' GROUP BY 1 ORDER BY 1"
done | while read -r who count; do printf '  %-16s %8d\n' "$who" "$count"; done
echo "  total: $BACKLOG messages in $elapsed s = $(awk -v n="$BACKLOG" -v t="$elapsed" 'BEGIN {printf "%.0f", n / t}') messages/s" \
  "(2 primaries, 2 deployments of $REPLICAS replicas, one nats-server; publishing included)"
if [ "$ATW_FAILURES" -gt 0 ]; then
  echo "shards run: $ATW_FAILURES check(s) failed; logs in $STATE" >&2
  exit 1
fi
echo "shards run: all checks passed"
