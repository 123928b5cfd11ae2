-- Reprocessing (issue 20): every version of an asset type's telemetry_schema, recorded by a
-- trigger on the platform's asset_types; what reprocess corrected of each message; and the runs
-- of reprocess, so that one stopped halfway resumes where it stopped.

-- Version 1 of each type is its schema when this migration first ran (or when the type was
-- made); each change of telemetry_schema adds the next. Rows are never changed or removed by
-- the worker (an operator may prune old versions).
CREATE TABLE IF NOT EXISTS asset_type_schema_versions (
  asset_type_id    text        NOT NULL,
  version          integer     NOT NULL,
  telemetry_schema jsonb,
  recorded_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (asset_type_id, version)
);

-- Runs as its owner (the role that ran migrate): the platform's roles that write asset_types
-- need no right on the worker's table, and a failure here never fails their write (a version
-- that two writers of one type race for is recorded once).
CREATE OR REPLACE FUNCTION asset_worker_record_schema_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND
     NEW.telemetry_schema IS NOT DISTINCT FROM OLD.telemetry_schema THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('asset_type_schema_versions'), hashtext(NEW.id));
  INSERT INTO asset_type_schema_versions (asset_type_id, version, telemetry_schema)
  SELECT NEW.id, coalesce(max(v.version), 0) + 1, NEW.telemetry_schema
    FROM asset_type_schema_versions v WHERE v.asset_type_id = NEW.id
  ON CONFLICT DO NOTHING;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'asset-worker: schema version of asset type % not recorded: %', NEW.id, SQLERRM;
  RETURN NULL;
END;
$$;

DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION asset_worker_record_schema_version()'
                 ' SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END;
$$;

DROP TRIGGER IF EXISTS asset_worker_schema_version ON asset_types;
CREATE TRIGGER asset_worker_schema_version
  AFTER INSERT OR UPDATE OF telemetry_schema ON asset_types
  FOR EACH ROW EXECUTE FUNCTION asset_worker_record_schema_version();

INSERT INTO asset_type_schema_versions (asset_type_id, version, telemetry_schema)
SELECT t.id, 1, t.telemetry_schema FROM asset_types t
WHERE NOT EXISTS (SELECT FROM asset_type_schema_versions v WHERE v.asset_type_id = t.id);

-- What reprocess made of a message: when, and each asset's score then ({"asset": score}), so
-- that a second run over the same range sees nothing left to correct. NULL until corrected.
ALTER TABLE processed_messages
  ADD COLUMN IF NOT EXISTS corrected_at timestamptz,
  ADD COLUMN IF NOT EXISTS corrected_scores jsonb;

-- One row per reprocess run: its selection, how far it has come (input stream sequences, done
-- in order), and its counts. A run resumed goes on from next_sequence.
CREATE TABLE IF NOT EXISTS reprocess_runs (
  id            text        PRIMARY KEY,
  selection     jsonb       NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  next_sequence bigint      NOT NULL,
  last_sequence bigint      NOT NULL,
  counts        jsonb       NOT NULL DEFAULT '{}'
);
