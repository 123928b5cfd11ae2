-- The design document's tables, with its column names exactly (SPEC D4). Other services own and
-- read these tables, so nothing here renames, retypes or drops what may already exist.

CREATE TABLE IF NOT EXISTS asset_types (
  id               text PRIMARY KEY,
  name             text,
  telemetry_schema jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS assets (
  id                       text PRIMARY KEY,
  tenant_id                text,
  name                     text,
  asset_type_id            text REFERENCES asset_types (id),
  health_score             double precision,
  health_score_updated_at  timestamptz,
  health_score_computed_by text,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz
);
ALTER TABLE assets ADD COLUMN IF NOT EXISTS tenant_id text;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS health_score double precision;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS health_score_updated_at timestamptz;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS health_score_computed_by text;
ALTER TABLE assets ADD COLUMN IF NOT EXISTS updated_at timestamptz;

CREATE TABLE IF NOT EXISTS entity_edges (
  id                 text PRIMARY KEY,
  tenant_id          text NOT NULL,
  source_entity_id   text NOT NULL,
  source_entity_type text NOT NULL,
  target_entity_id   text NOT NULL,
  target_entity_type text NOT NULL,
  relationship_type  text NOT NULL,
  metadata           jsonb,
  valid_from         timestamptz,
  valid_until        timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The link query looks up by (tenant, device) for the MONITORED_BY edges of devices to assets.
CREATE INDEX IF NOT EXISTS entity_edges_device_links_idx
  ON entity_edges (tenant_id, source_entity_id)
  WHERE source_entity_type = 'Device' AND target_entity_type = 'Asset'
    AND relationship_type = 'MONITORED_BY';

CREATE TABLE IF NOT EXISTS telemetry_history (
  entity_id        text NOT NULL,
  entity_type      text NOT NULL,
  metric_key       text NOT NULL,
  value            double precision,
  "timestamp"      timestamptz NOT NULL,
  received_at      timestamptz NOT NULL DEFAULT now(),
  source_device_id text,
  quality          text
);
CREATE INDEX IF NOT EXISTS telemetry_history_entity_time_idx
  ON telemetry_history (entity_id, "timestamp");
