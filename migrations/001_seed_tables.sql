-- The design document's tables, with its column names exactly (SPEC D4), for a database that does
-- not have them yet. Other services own and read these tables: one that exists already is adopted
-- as it is (SPEC D15: nothing here adds to, renames, retypes or changes the storage of a table the
-- worker did not create; docs/adopting.md). What the worker needs beyond them is its own tables.
--
-- Where the worker makes a table itself, it makes it as it wants it from the start:
--   assets keeps half of each page free (fillfactor 50): every message rewrites its assets' rows
--   (health_score and its time), and with pages packed full (the default, 100) a new row version
--   rarely fits on its own page, so the update goes elsewhere (not HOT), the table fills with dead
--   versions between vacuums and each batch's lookup of its assets reads all of them;
--   telemetry_history is partitioned by day of "timestamp" (migration 004 maintains it).
--
-- (This file was written again when adoption was: databases that applied its first text keep
-- what it did then, which added assets' columns where missing.)

DO $$
BEGIN
  IF to_regclass('asset_types') IS NULL THEN
    CREATE TABLE asset_types (
      id               text PRIMARY KEY,
      name             text,
      telemetry_schema jsonb,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now()
    );
  END IF;

  IF to_regclass('assets') IS NULL THEN
    CREATE TABLE assets (
      id                       text PRIMARY KEY,
      tenant_id                text,
      name                     text,
      asset_type_id            text REFERENCES asset_types (id),
      health_score             double precision,
      health_score_updated_at  timestamptz,
      health_score_computed_by text,
      created_at               timestamptz NOT NULL DEFAULT now(),
      updated_at               timestamptz
    ) WITH (fillfactor = 50);
  END IF;

  IF to_regclass('entity_edges') IS NULL THEN
    CREATE TABLE entity_edges (
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
    -- The link query looks up by (tenant, device) for the MONITORED_BY edges of devices to
    -- assets (an adopted table gets it concurrently: migration 008).
    CREATE INDEX entity_edges_device_links_idx ON entity_edges (tenant_id, source_entity_id)
      WHERE source_entity_type = 'Device' AND target_entity_type = 'Asset'
        AND relationship_type = 'MONITORED_BY';
  END IF;

  IF to_regclass('telemetry_history') IS NULL THEN
    CREATE TABLE telemetry_history (
      entity_id        text NOT NULL,
      entity_type      text NOT NULL,
      metric_key       text NOT NULL,
      value            double precision,
      "timestamp"      timestamptz NOT NULL,
      received_at      timestamptz NOT NULL DEFAULT now(),
      source_device_id text,
      quality          text
    ) PARTITION BY RANGE ("timestamp");
    CREATE INDEX telemetry_history_entity_time_idx ON telemetry_history (entity_id, "timestamp");
    CREATE TABLE telemetry_history_default PARTITION OF telemetry_history DEFAULT;
  END IF;
END;
$$;
