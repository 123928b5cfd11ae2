#!/usr/bin/env bash
# The cluster run, one command on this machine:
#   three nats-server nodes clustered on loopback (JetStream, file storage), the worker's three
#   streams at 3 replicas, PostgreSQL and Redis; the standard benchmark workload (bench/
#   workload.sql) in a fresh database; a backlog of CLUSTER_BACKLOG messages; three worker
#   replicas sharing the durable consumer. Mid-run one worker is SIGKILLed (and restarted, as
#   Kubernetes would) and the node leading the input stream is restarted. Afterwards it checks
#   that every message was processed exactly once (its 7 history rows, one processed row), that
#   every event is unique and the dead-letter stream is empty, and prints how many messages each
#   replica processed and the total rate. Exit 0 only when every check passes.
#
# Every worker and node runs under a supervisor loop that restarts it when it exits, so more
# kills (kill -9 of any pid in $CLUSTER_STATE/*.pid, at any moment) are part of the run too.
#
#   bash scripts/cluster.sh            # install, build, run (servers it started are stopped)
#   bash scripts/cluster.sh --keep     # leave the cluster running afterwards
#   bash scripts/cluster.sh --test     # as the test suite runs it: no install/build, the
#                                        servers of ATW_TEST_DATABASE_URL/ATW_TEST_REDIS_URL
# Settings (environment): CLUSTER_BACKLOG (100000), CLUSTER_PORT (24222: client ports
# 24222-24224, routes +2000, monitoring +4000), CLUSTER_KILL_AT (30: percent processed when a
# worker is killed), CLUSTER_RESTART_AT (55: percent when a node restarts), CLUSTER_FAULTS (1;
# 0: neither, for the rate of an undisturbed run), CLUSTER_TIMEOUT_S (600),
# CLUSTER_LOG_LEVEL (warn), CLUSTER_SECURE (0; 1: the nodes take TLS only, clients' certificates
# verified, routes over TLS too, and password users in an account: the workers log in as the
# shipped deploy/nats ASSET_WORKER user, the scripts' tools as an administrator; certificates
# and passwords are made for the run with openssl, in $CLUSTER_STATE/pki).
set -euo pipefail
source "$(dirname "$0")/servers.sh"

atw_run_mode "${1:-}"
mode=$ATW_MODE

BACKLOG="${CLUSTER_BACKLOG:-100000}"
PORT="${CLUSTER_PORT:-24222}"
KILL_AT="${CLUSTER_KILL_AT:-30}"
RESTART_AT="${CLUSTER_RESTART_AT:-55}"
TIMEOUT_S="${CLUSTER_TIMEOUT_S:-600}"
FAULTS="${CLUSTER_FAULTS:-1}"
SECURE="${CLUSTER_SECURE:-0}"
if [ "$FAULTS" = 0 ]; then KILL_AT=1000 RESTART_AT=1000; fi
BUILD="${ATW_BUILD_DIR:-$ATW_ROOT/build}"
CLUSTER_STATE="${CLUSTER_STATE:-$ATW_STATE/cluster-$PORT}"
NODES=(1 2 3)
REPLICAS=(1 2 3)

if [ "$mode" = test ]; then
  : "${ATW_TEST_DATABASE_URL:?the test mode needs ATW_TEST_DATABASE_URL}"
  : "${ATW_TEST_REDIS_URL:?the test mode needs ATW_TEST_REDIS_URL}"
  admin_url="$ATW_TEST_DATABASE_URL"
  redis_base="${ATW_TEST_REDIS_URL%/*}"
else
  atw_install python3 procps openssl
  atw_build Release "$BUILD"
  pg_was_up=0 redis_was_up=0
  nc_ok 127.0.0.1 "$ATW_PG_PORT" && pg_was_up=1
  nc_ok 127.0.0.1 "$ATW_REDIS_PORT" && redis_was_up=1
  atw_start_postgres
  atw_start_redis
  admin_url="$DATABASE_URL"
  redis_base="${REDIS_URL%/*}"
fi
db_name="asset_cluster_$PORT"
CLUSTER_DB="${admin_url%/*}/$db_name"
scheme=nats
[ "$SECURE" = 1 ] && scheme=tls
NATS_URLS="$scheme://127.0.0.1:$PORT,$scheme://127.0.0.1:$((PORT + 1)),$scheme://127.0.0.1:$((PORT + 2))"
export NATS_URL="$NATS_URLS"
PSQL=(psql "$CLUSTER_DB" -v ON_ERROR_STOP=1 -qtA)

# ---- supervision -------------------------------------------------------------------------
# supervise NAME CMD...: atw_supervise in $CLUSTER_STATE (scripts/servers.sh).
supervise() { atw_supervise "$CLUSTER_STATE" "$@"; }

stop_all() {
  touch "$CLUSTER_STATE/stop"
  local f
  # Workers first (drained by SIGTERM), then the nodes.
  for f in "$CLUSTER_STATE"/worker-*.pid "$CLUSTER_STATE"/nats-*.pid; do
    [ -e "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$CLUSTER_STATE"/*.supervisor; do
    [ -e "$f" ] && { wait "$(cat "$f")" 2>/dev/null || true; }
  done
}

cleanup() {
  local rc=$?
  if [ "$mode" = keep ] && [ $rc -eq 0 ]; then
    atw_log "cluster left running (pids in $CLUSTER_STATE); stop it with: touch $CLUSTER_STATE/stop; kill \$(cat $CLUSTER_STATE/*.pid)"
    return
  fi
  stop_all
  if [ "$mode" = run ]; then
    [ "$pg_was_up" = 1 ] || runuser -u postgres -- "$ATW_PG_BIN/pg_ctl" -D "$(atw_pg_dir)" -m fast stop >/dev/null 2>&1 || true
    [ "$redis_was_up" = 1 ] || { [ -f "$ATW_STATE/redis.pid" ] && kill "$(cat "$ATW_STATE/redis.pid")" 2>/dev/null; } || true
  fi
  return $rc
}

# ---- the cluster -------------------------------------------------------------------------
rm -rf "$CLUSTER_STATE"
mkdir -p "$CLUSTER_STATE"
trap cleanup EXIT

# ---- security (CLUSTER_SECURE=1) ----------------------------------------------------------
# A CA of the run's own, one certificate for the nodes (clients and routes), one for clients; a
# password for the workers' user and one for the administrator the scripts' tools log in as.
node_security="" worker_login=()
if [ "$SECURE" = 1 ]; then
  pki="$CLUSTER_STATE/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj /CN=atw-cluster-ca
    openssl req "${ec[@]}" -keyout node.key -out node.csr -subj /CN=localhost
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >node.ext
    openssl x509 -req -in node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile node.ext -out node.crt
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj /CN=asset-worker
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -out client.crt
    openssl rand -hex 24 | tr -d '\n' >worker.password
    openssl rand -hex 24 | tr -d '\n' >admin.password
    chmod 600 ./*.key ./*.password
  ) >"$CLUSTER_STATE/pki.log" 2>&1 || { cat "$CLUSTER_STATE/pki.log" >&2; exit 1; }
  tls_files="cert_file: \"$pki/node.crt\", key_file: \"$pki/node.key\", ca_file: \"$pki/ca.crt\""
  # The shipped permissions without the DLQ readers' blocks (nats-server refuses a variable
  # nothing uses); the configuration holds the passwords, so only its owner reads it.
  node_security="$(sed '/^DLQ_READER = {/,$d' "$ATW_ROOT/deploy/nats/asset-worker-permissions.conf")
tls { $tls_files, verify: true }
accounts {
  TELEMETRY {
    jetstream: enabled
    users: [
      { user: asset-worker, password: \"$(cat "$pki/worker.password")\", permissions: \$ASSET_WORKER }
      { user: admin, password: \"$(cat "$pki/admin.password")\" }
    ]
  }
}"
  export NATS_CA_FILE="$pki/ca.crt" NATS_CERT_FILE="$pki/client.crt" NATS_KEY_FILE="$pki/client.key"
  export NATS_USER=admin NATS_PASSWORD_FILE="$pki/admin.password"
  worker_login=(NATS_USER=asset-worker NATS_PASSWORD_FILE="$pki/worker.password")
fi

routes=""
for n in "${NODES[@]}"; do
  routes+="nats-route://127.0.0.1:$((PORT + 2000 + n - 1)),"
done
routes="${routes%,}"
route_tls=""
[ "$SECURE" = 1 ] && route_tls=", tls { $tls_files, verify: true }"
for n in "${NODES[@]}"; do
  cat >"$CLUSTER_STATE/nats-$n.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:$((PORT + n - 1))
http: 127.0.0.1:$((PORT + 4000 + n - 1))
jetstream { store_dir: "$CLUSTER_STATE/data-$n", max_memory_store: 256MB, max_file_store: 8GB }
cluster { name: atw, listen: 127.0.0.1:$((PORT + 2000 + n - 1)), routes: [$routes]$route_tls }
$node_security
EOF
  chmod 600 "$CLUSTER_STATE/nats-$n.conf"
  supervise "nats-$n" nats-server -c "$CLUSTER_STATE/nats-$n.conf"
done
atw_log "three nats-server nodes on 127.0.0.1:$PORT-$((PORT + 2)), waiting for a JetStream meta leader"
for n in "${NODES[@]}"; do atw_wait_port "$((PORT + n - 1))" "nats-server n$n"; done
meta_ready=0
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$((PORT + 4000))/jsz" 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j.get("meta_cluster",{}).get("leader") and j["meta_cluster"].get("cluster_size",0)>=3 else 1)'; then
    meta_ready=1
    break
  fi
  sleep 0.2
done
[ "$meta_ready" = 1 ] || { echo "the JetStream cluster elected no meta leader" >&2; exit 1; }

atw_log "fresh database $db_name with the standard workload; redis db 3"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name"
DATABASE_URL="$CLUSTER_DB" "$BUILD/asset-worker" migrate >/dev/null
"${PSQL[@]}" -f "$ATW_ROOT/bench/workload.sql" >/dev/null
redis-cli -u "$redis_base/3" FLUSHDB >/dev/null

atw_log "streams at 3 replicas"
for spec in TELEMETRY_NORMALIZED:telemetry.normalized.v1 TELEMETRY_ASSET:telemetry.asset.v1 \
  TELEMETRY_ASSET_STATE:telemetry.asset.state.v1 TELEMETRY_DLQ:telemetry.dlq; do
  ok=0
  for _ in $(seq 1 50); do
    if "$BUILD/atw-devtool" ensure-stream --stream "${spec%%:*}" --subject "${spec#*:}" \
      --replicas 3 >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || { echo "cannot create stream ${spec%%:*}" >&2; exit 1; }
done
stream_json() { "$BUILD/atw-devtool" stream-info --stream "$1"; }
stream_field() {  # stream_field STREAM PYTHON-EXPRESSION-ON-j
  stream_json "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)"
}
for s in TELEMETRY_NORMALIZED TELEMETRY_ASSET TELEMETRY_ASSET_STATE TELEMETRY_DLQ; do
  echo "  $s: replicas $(stream_field "$s" 'j["config"]["num_replicas"]'), leader $(stream_field "$s" 'j["cluster"].get("leader")')"
done

atw_log "three worker replicas"
for r in "${REPLICAS[@]}"; do
  # WORKER_ID replica-R.I, I counting the starts of replica R: processed_messages.processed_by
  # then tells exactly what each process wrote, even one that was killed.
  supervise "worker-$r" env DATABASE_URL="$CLUSTER_DB" REDIS_URL="$redis_base/3" "${worker_login[@]}" \
    NATS_URL="$NATS_URLS" STREAM_REPLICAS=3 HTTP_ADDR="127.0.0.1:$((PORT + 6000 + r))" \
    LOG_LEVEL="${CLUSTER_LOG_LEVEL:-warn}" ACK_WAIT_S=10 bash -c \
    "WORKER_ID=replica-$r.\$ATW_START exec '$BUILD/asset-worker' run"
done
# CPU seconds (user + system) of every process of a kind, from /proc: where the time goes.
cpu_seconds() {  # cpu_seconds PID...
  local hz total=0 p t
  hz=$(getconf CLK_TCK)
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
    total=$((total + t))
  done
  awk -v t="$total" -v h="$hz" 'BEGIN {printf "%.1f", t / h}'
}
pg_pids() {  # the postmaster serving $CLUSTER_DB and its children (backends, WAL writer, ...)
  local postmaster
  # The checkpointer lives as long as the server; its parent is the postmaster.
  postmaster=$(ps -o ppid= -p "$("${PSQL[@]}" -c "SELECT pid FROM pg_stat_activity
    WHERE backend_type = 'checkpointer'")" | tr -d ' ')
  echo "$postmaster" $(pgrep -P "$postmaster")
}
cpu_snapshot() {  # prints "nats workers postgres" CPU seconds of the processes alive now
  local nats=() workers=() f
  for f in "$CLUSTER_STATE"/nats-*.pid; do nats+=("$(cat "$f")"); done
  for f in "$CLUSTER_STATE"/worker-*.pid; do workers+=("$(cat "$f")"); done
  echo "$(cpu_seconds "${nats[@]}") $(cpu_seconds "${workers[@]}") $(cpu_seconds $(pg_pids))"
}
# Every replica ready (consumer found, servers reachable) before the backlog is published, so
# that none starts late and the faults below hit a run in which all three work.
ready_t0=$(date +%s.%N)
for r in "${REPLICAS[@]}"; do
  for _ in $(seq 1 600); do
    curl -fsS -m 1 "http://127.0.0.1:$((PORT + 6000 + r))/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "  replica-$r ready after $(awk -v a="$ready_t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
done

atw_log "publishing a backlog of $BACKLOG messages while the replicas work"
run_id="cl$(date +%s)"
read -r cpu0_nats cpu0_workers cpu0_pg < <(cpu_snapshot)
t0=$(date +%s.%N)
"$BUILD/atw-bench" --run "$run_id" prefill --subject telemetry.normalized.v1 --count "$BACKLOG" \
  >"$CLUSTER_STATE/prefill.log" 2>&1 &
prefill=$!
processed() { "${PSQL[@]}" -c "SELECT count(*) FROM processed_messages WHERE message_id LIKE '$run_id-%'"; }

killed=0 restarted=0 done_at=""
deadline=$(($(date +%s) + TIMEOUT_S))
echo "seconds,processed" >"$CLUSTER_STATE/timeline.csv"
while :; do
  n=$(processed)
  echo "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'),$n" >>"$CLUSTER_STATE/timeline.csv"
  pct=$((n * 100 / BACKLOG))
  # The victim must have written something first: a kill of an idle process proves little.
  if [ "$killed" = 0 ] && [ "$pct" -ge "$KILL_AT" ] && [ "$("${PSQL[@]}" -c "SELECT count(*) FROM
      processed_messages WHERE processed_by LIKE 'replica-2.%'")" -gt 0 ]; then
    pid=$(cat "$CLUSTER_STATE/worker-2.pid")
    atw_log "$(tail -n1 "$CLUSTER_STATE/timeline.csv" | cut -d, -f1) s, $n processed ($pct%): SIGKILL worker replica-2 (pid $pid); its supervisor restarts it"
    kill -KILL "$pid"
    killed=1
  fi
  # After the kill, and once the backlog is all published (the publisher is not under test).
  if [ "$restarted" = 0 ] && [ "$pct" -ge "$RESTART_AT" ] && [ "$killed" = 1 ] &&
    ! kill -0 "$prefill" 2>/dev/null; then
    leader=$(stream_field TELEMETRY_NORMALIZED 'j["cluster"].get("leader","n1")' 2>/dev/null || echo n1)
    node=${leader#n}
    pid=$(cat "$CLUSTER_STATE/nats-$node.pid")
    atw_log "$(tail -n1 "$CLUSTER_STATE/timeline.csv" | cut -d, -f1) s, $n processed ($pct%): restarting nats-server $leader (input stream leader, pid $pid)"
    kill -TERM "$pid"
    restarted=1
  fi
  if [ "$n" -ge "$BACKLOG" ]; then
    done_at=$(date +%s.%N)
    read -r cpu1_nats cpu1_workers cpu1_pg < <(cpu_snapshot)
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "timed out after $TIMEOUT_S s with $n of $BACKLOG processed" >&2
    break
  fi
  sleep 0.2
done
elapsed=$(awk -v a="$t0" -v b="${done_at:-$(date +%s.%N)}" 'BEGIN {printf "%.1f", b - a}')
wait "$prefill" || { echo "publishing the backlog failed:" >&2; cat "$CLUSTER_STATE/prefill.log" >&2; exit 1; }

# Let the last acks and events settle, then stop the workers (SIGTERM: drained).
for _ in $(seq 1 60); do
  ack_pending=$("$BUILD/atw-devtool" consumer-info --stream TELEMETRY_NORMALIZED \
    --durable asset-processor-group 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["num_pending"] + j["num_ack_pending"])' \
    2>/dev/null || echo "?")
  [ "$ack_pending" = 0 ] && break
  sleep 0.5
done
atw_stop_supervised "$CLUSTER_STATE" $(printf 'worker-%s ' "${REPLICAS[@]}")

# ---- checks ------------------------------------------------------------------------------
atw_log "checking"
atw_check "messages processed (processed_messages rows)" "$BACKLOG" "$(processed)"
atw_check "history rows (7 per message)" "$((BACKLOG * 7))" \
  "$("${PSQL[@]}" -c "SELECT count(*) FROM telemetry_history WHERE source_device_id LIKE 'bench-dev-%'")"
atw_check "history rows written twice" 0 \
  "$("${PSQL[@]}" -c "SELECT count(*) FROM (SELECT 1 FROM telemetry_history GROUP BY entity_id, metric_key, \"timestamp\" HAVING count(*) > 1) d")"
"$BUILD/atw-devtool" dump --stream TELEMETRY_ASSET --max $((BACKLOG * 4)) >"$CLUSTER_STATE/events.jsonl"
atw_check "events in TELEMETRY_ASSET (2 per message)" "$((BACKLOG * 2))" "$(wc -l <"$CLUSTER_STATE/events.jsonl")"
atw_check "distinct event messageIds" "$((BACKLOG * 2))" \
  "$(python3 -c 'import json,sys; print(len({json.loads(l)["data"]["messageId"] for l in open(sys.argv[1])}))' "$CLUSTER_STATE/events.jsonl")"
atw_check "messages in TELEMETRY_DLQ" 0 "$(stream_field TELEMETRY_DLQ 'j["state"]["messages"]')"
atw_check "input stream replicas" 3 "$(stream_field TELEMETRY_NORMALIZED 'j["config"]["num_replicas"]')"
# Restarts are counted from the supervisors' records, so kills from outside the script count too.
worker_restarts=$(($(cat "$CLUSTER_STATE"/worker-*.starts | wc -l) - 3))
node_restarts=$(($(cat "$CLUSTER_STATE"/nats-*.starts | wc -l) - 3))
atw_check_at_least "worker processes killed and restarted" "$FAULTS" "$worker_restarts"
atw_check_at_least "nats-server nodes restarted" "$FAULTS" "$node_restarts"

atw_log "per replica (processed_messages.processed_by: what each process wrote)"
"${PSQL[@]}" -F ' ' -c "SELECT processed_by, count(*) FROM processed_messages
  WHERE message_id LIKE '$run_id-%' GROUP BY 1 ORDER BY 1" >"$CLUSTER_STATE/per-process.txt"
while read -r who count; do printf '  %-14s %8d\n' "$who" "$count"; done <"$CLUSTER_STATE/per-process.txt"
for r in "${REPLICAS[@]}"; do
  sum=$(awk -v r="replica-$r." 'index($1, r) == 1 {s += $2} END {print s + 0}' "$CLUSTER_STATE/per-process.txt")
  printf '  replica-%s total  %8d\n' "$r" "$sum"
  [ "$sum" -gt 0 ] || { echo "  FAIL  replica-$r processed nothing"; ATW_FAILURES=$((ATW_FAILURES + 1)); }
done
rate=$(awk -v n="$BACKLOG" -v t="$elapsed" 'BEGIN {printf "%.0f", n / t}')
if [ -n "$done_at" ]; then
  # Processes restarted mid-run lose what they used before; PostgreSQL's count starts with the
  # backends alive at the start (the workers' connections come later and count whole).
  awk -v n="$BACKLOG" -v t="$elapsed" -v a="$cpu0_nats" -v b="$cpu1_nats" -v c="$cpu0_workers" \
    -v d="$cpu1_workers" -v e="$cpu0_pg" -v f="$cpu1_pg" 'BEGIN {
      printf "  CPU seconds during the run (%.1f s, 2 cores = %.0f s): nats-server nodes %.1f,", t, 2 * t, b - a
      printf " workers %.1f, PostgreSQL %.1f\n", d - c, f - e
      printf "  CPU per message: nats-server %.0f us, workers %.0f us, PostgreSQL %.0f us\n",
        (b - a) * 1e6 / n, (d - c) * 1e6 / n, (f - e) * 1e6 / n }'
fi
if [ "$FAULTS" = 0 ]; then faults="undisturbed"; else faults="with the kill and the restart"; fi
echo "  total: $BACKLOG messages in $elapsed s = $rate messages/s (3 replicas, 3 nodes, R3, $faults)"
if [ "$ATW_FAILURES" -gt 0 ]; then
  echo "cluster run: $ATW_FAILURES check(s) failed; logs in $CLUSTER_STATE" >&2
  exit 1
fi
echo "cluster run: all checks passed"
