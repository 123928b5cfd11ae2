-- atw:no-transaction
-- Indexes built without blocking the tables' writers (CREATE INDEX CONCURRENTLY, which cannot
-- run in a transaction: each statement here runs on its own, and a failed run is run again).
--
-- A message is identified by (organizationId, deviceId, messageId) (SPEC D11): the unique index
-- that becomes processed_messages' primary key in migration 008. Every row keeps the protection
-- it gave: the old key, messageId alone, was unique, so the new one is too.
--
-- An adopted entity_edges gets the link query's index here (migration 001 made it with a table
-- of its own). A build that failed leaves an invalid index, which is dropped first.

DO $$
DECLARE
  name text;
BEGIN
  FOREACH name IN ARRAY ARRAY['processed_messages_identity_key', 'entity_edges_device_links_idx']
  LOOP
    IF EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass(name) AND NOT indisvalid) THEN
      EXECUTE format('DROP INDEX %I', name);
    END IF;
  END LOOP;
END;
$$;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS processed_messages_identity_key
  ON processed_messages (organization_id, device_id, message_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS entity_edges_device_links_idx
  ON entity_edges (tenant_id, source_entity_id)
  WHERE source_entity_type = 'Device' AND target_entity_type = 'Asset'
    AND relationship_type = 'MONITORED_BY';
