#!/usr/bin/env bash
# The main job, end to end, on this machine: installs what is missing, builds, starts
# nats-server, PostgreSQL and Redis on loopback (data in .local/), migrates, loads the design
# document's example plant, runs the worker, publishes the document's example message and shows
# what came out. Stops what it started unless --keep is given.
set -euo pipefail
source "$(dirname "$0")/servers.sh"
keep=0
[ "${1:-}" = "--keep" ] && keep=1

atw_install
# What the demo runs: the worker and the tool that publishes and reads the streams.
atw_build Release "$ATW_ROOT/build" asset-worker atw-devtool
atw_start_servers
[ "$keep" = 1 ] || atw_at_exit atw_stop_started

cd "$ATW_ROOT"
PSQL=(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q)
atw_log "migrating"
build/asset-worker migrate
atw_log "loading the example plant (examples/plant.sql)"
"${PSQL[@]}" -f examples/plant.sql
# A fresh start for the demo: its own rows and scores, not those of an earlier run.
"${PSQL[@]}" -c "DELETE FROM telemetry_history WHERE entity_id IN ('asset-pump-a','asset-pump-b');
  DELETE FROM processed_messages WHERE message_id = 'uuid-12345';
  UPDATE assets SET health_score = NULL, health_score_updated_at = NULL WHERE id IN ('asset-pump-a','asset-pump-b');"

atw_log "starting the worker"
HTTP_ADDR=127.0.0.1:18080 build/asset-worker run >"$ATW_STATE/worker.log" 2>&1 &
worker=$!
atw_at_exit 'kill $worker 2>/dev/null'
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break
  sleep 0.2
done

before=$(build/atw-devtool dump --stream TELEMETRY_ASSET | wc -l)
atw_log "publishing the document's example message (examples/message.json)"
build/atw-devtool publish --subject telemetry.normalized.v1 --file examples/message.json
for _ in $(seq 1 50); do
  n=$(build/atw-devtool dump --stream TELEMETRY_ASSET | wc -l)
  [ "$n" -ge $((before + 2)) ] && break
  sleep 0.2
done

atw_log "events on telemetry.asset.v1"
build/atw-devtool dump --stream TELEMETRY_ASSET --from 1 | tail -n 2
atw_log "telemetry_history rows"
"${PSQL[@]}" -c "SELECT entity_id, metric_key, value, \"timestamp\", source_device_id, quality
  FROM telemetry_history WHERE entity_id IN ('asset-pump-a','asset-pump-b')
  ORDER BY entity_id, metric_key"
atw_log "health scores"
"${PSQL[@]}" -c "SELECT id, name, health_score, health_score_updated_at, health_score_computed_by
  FROM assets WHERE id IN ('asset-pump-a','asset-pump-b') ORDER BY id"
atw_log "metrics (excerpt)"
curl -fsS http://127.0.0.1:18080/metrics | grep -E '^asset_worker_(messages_processed_total|events_published_total|history_rows_total)'

kill -TERM "$worker"
wait "$worker" || true
atw_log "worker stopped; its log is $ATW_STATE/worker.log"
if [ "$keep" = 1 ]; then
  atw_log "servers left running; stop them with: bash scripts/stop-servers.sh"
fi
