-- Link-change invalidation (SPEC D7). A committed change to a device's links notifies every
-- worker on channel asset_worker_links with the device's cache key {"org": ..., "device": ...};
-- a change to an asset type or to an asset's type or tenant, which every cached link of its
-- assets carries, notifies {"all": true}. NOTIFY is delivered at commit, so a worker that reads
-- the links after the notice sees the change.

CREATE OR REPLACE FUNCTION asset_worker_notify_link_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'entity_edges' THEN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.source_entity_type = 'Device' THEN
      PERFORM pg_notify('asset_worker_links',
                        json_build_object('org', OLD.tenant_id, 'device', OLD.source_entity_id)::text);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.source_entity_type = 'Device' AND
       (TG_OP = 'INSERT' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR
        NEW.source_entity_id IS DISTINCT FROM OLD.source_entity_id) THEN
      PERFORM pg_notify('asset_worker_links',
                        json_build_object('org', NEW.tenant_id, 'device', NEW.source_entity_id)::text);
    END IF;
  ELSE
    PERFORM pg_notify('asset_worker_links', '{"all": true}');
  END IF;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS asset_worker_link_change ON entity_edges;
CREATE TRIGGER asset_worker_link_change
  AFTER INSERT OR UPDATE OR DELETE ON entity_edges
  FOR EACH ROW EXECUTE FUNCTION asset_worker_notify_link_change();

DROP TRIGGER IF EXISTS asset_worker_link_change ON asset_types;
CREATE TRIGGER asset_worker_link_change
  AFTER UPDATE OR DELETE ON asset_types
  FOR EACH STATEMENT EXECUTE FUNCTION asset_worker_notify_link_change();

-- The columns of assets that cached links carry: tenant_id only where the table has it (an
-- adopted table may not; SPEC D15).
DO $$
DECLARE
  columns text := 'asset_type_id, name';
BEGIN
  IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'assets'::regclass
             AND attname = 'tenant_id' AND attnum > 0 AND NOT attisdropped) THEN
    columns := columns || ', tenant_id';
  END IF;
  DROP TRIGGER IF EXISTS asset_worker_link_change ON assets;
  EXECUTE format('CREATE TRIGGER asset_worker_link_change AFTER UPDATE OF %s OR DELETE ON assets'
                 ' FOR EACH STATEMENT EXECUTE FUNCTION asset_worker_notify_link_change()', columns);
END;
$$;
