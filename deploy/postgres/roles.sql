-- The asset telemetry worker's PostgreSQL roles: each gets only what its job needs
-- (docs/security.md, "What each credential grants"). Run it as a superuser (or the database's
-- owner) in the worker's database, once before `asset-worker migrate` and once after it (the
-- second run grants on the tables and functions migrate made); it is safe to run again. Set
-- the passwords yourself, never in this file:
--   ALTER ROLE asset_worker_owner PASSWORD '...';   -- or \password in psql
--   ALTER ROLE asset_worker PASSWORD '...';
--
--   asset_worker_owner  runs `asset-worker migrate` (and `maintain`, `storage`): owns the
--                       worker's own tables and functions, adds the link-change triggers to the
--                       platform's tables (TRIGGER on them).
--   asset_worker        runs `asset-worker run`: reads links and asset types, updates the score
--                       columns of assets, inserts history, reads and writes processed_messages
--                       and asset_health_states, and runs the history maintenance function
--                       (which runs as its owner).
--   asset_worker_tools  `asset-worker formulas check|try|history` and `links invalidate`: reads
--                       asset types and their schema versions; notifies the workers (pg_notify,
--                       open to every role).
--   asset_worker_reprocess  `asset-worker reprocess`: reads what `run` reads and the schema
--                       versions; rewrites history rows (insert, delete, update of value and
--                       quality),
--                       the score columns of assets and reprocess's columns of
--                       processed_messages; keeps its runs in reprocess_runs.
-- The platform's tables (entity_edges, assets, asset_types, telemetry_history) stay their
-- owner's. On a database the worker adopts, `migrate` adds the link query's index to
-- entity_edges only if asset_worker_owner may (it must own the table); else the table's owner
-- makes it: docs/adopting.md.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'asset_worker_owner') THEN
    CREATE ROLE asset_worker_owner LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'asset_worker') THEN
    CREATE ROLE asset_worker LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'asset_worker_tools') THEN
    CREATE ROLE asset_worker_tools LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'asset_worker_reprocess') THEN
    CREATE ROLE asset_worker_reprocess LOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO asset_worker_owner, asset_worker,'
                 ' asset_worker_tools, asset_worker_reprocess', current_database());
  EXECUTE format('GRANT CREATE ON DATABASE %I TO asset_worker_owner', current_database());
END;
$$;

GRANT USAGE, CREATE ON SCHEMA public TO asset_worker_owner;
GRANT USAGE ON SCHEMA public TO asset_worker, asset_worker_tools, asset_worker_reprocess;

-- What exists now: the platform's tables (before the first migrate, only where they are there
-- already), and the worker's own objects (after migrate).
DO $$
DECLARE
  t text;
BEGIN
  -- The platform's tables: what the worker reads and writes, and the owner's triggers.
  IF to_regclass('entity_edges') IS NOT NULL THEN
    GRANT SELECT ON entity_edges TO asset_worker, asset_worker_reprocess;
    GRANT TRIGGER ON entity_edges TO asset_worker_owner;
  END IF;
  IF to_regclass('asset_types') IS NOT NULL THEN
    GRANT SELECT ON asset_types TO asset_worker, asset_worker_tools, asset_worker_reprocess;
    GRANT TRIGGER ON asset_types TO asset_worker_owner;
  END IF;
  IF to_regclass('assets') IS NOT NULL THEN
    GRANT SELECT, UPDATE (health_score, health_score_updated_at, health_score_computed_by,
                          updated_at)
      ON assets TO asset_worker, asset_worker_reprocess;
    GRANT TRIGGER ON assets TO asset_worker_owner;
  END IF;
  IF to_regclass('telemetry_history') IS NOT NULL THEN
    GRANT INSERT ON telemetry_history TO asset_worker;
    GRANT SELECT, INSERT, DELETE, UPDATE (value, quality) ON telemetry_history
      TO asset_worker_reprocess;
  END IF;
  -- The worker's own: processed_messages, and the history maintenance, which runs as its owner
  -- (SECURITY DEFINER) so that the worker needs no right to make or drop partitions.
  IF to_regclass('processed_messages') IS NOT NULL THEN
    GRANT SELECT, INSERT ON processed_messages TO asset_worker;
  END IF;
  -- The health states (migration 011): read with the locked assets, then inserted or updated.
  IF to_regclass('asset_health_states') IS NOT NULL THEN
    GRANT SELECT, INSERT, UPDATE ON asset_health_states TO asset_worker;
  END IF;
  -- Reprocess's (migration 010).
  IF to_regclass('asset_type_schema_versions') IS NOT NULL THEN
    GRANT SELECT, UPDATE (corrected_at, corrected_scores) ON processed_messages
      TO asset_worker_reprocess;
    GRANT SELECT ON asset_type_schema_versions TO asset_worker_tools, asset_worker_reprocess;
    GRANT SELECT, INSERT, UPDATE ON reprocess_runs TO asset_worker_reprocess;
  END IF;
  IF to_regprocedure('telemetry_history_maintain(integer, integer, date)') IS NOT NULL THEN
    REVOKE EXECUTE ON FUNCTION telemetry_history_maintain(integer, integer, date) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION telemetry_history_maintain(integer, integer, date)
      TO asset_worker;
    REVOKE EXECUTE ON FUNCTION telemetry_history_add_partition(date) FROM PUBLIC;
  END IF;
  -- Tables the owner role made (the first migrate on an empty database): theirs is the
  -- owner's; the platform keeps reading them as before.
  FOREACH t IN ARRAY ARRAY['entity_edges', 'assets', 'asset_types', 'telemetry_history'] LOOP
    IF to_regclass(t) IS NOT NULL AND
       (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(t))
         = 'asset_worker_owner' THEN
      EXECUTE format('GRANT SELECT ON %I TO asset_worker_tools', t);
    END IF;
  END LOOP;
END;
$$;
