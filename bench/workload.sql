-- The standard workload of the throughput benchmark: 1,000 devices across 4 organizations, each
-- monitoring Pump A (primary, no port, the document's mapping, an asset type with
-- power_consumption = power_input * power_current) and Pump B (secondary, port 1, temperature
-- mapped to motor_temperature, an asset type with no telemetry schema).
--
-- The growth benchmark (bench/growth.sh) sets psql variables to grow it: `devices`, and
-- `assets_per_device` (2: the standard; each one more is a sensor asset of the schema-less type
-- with temperature mapped to motor_temperature, no port).
\if :{?devices}
\else
  \set devices 1000
\endif
\if :{?assets_per_device}
\else
  \set assets_per_device 2
\endif

INSERT INTO asset_types (id, name, telemetry_schema) VALUES
  ('bench-type-pump', 'Pump',
   '{"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current", "unit": "watts"}]}'),
  ('bench-type-basic', 'Pump (no schema)', NULL)
ON CONFLICT (id) DO NOTHING;

INSERT INTO assets (id, tenant_id, name, asset_type_id)
SELECT 'bench-a-' || d, 'bench-org-' || (d % 4 + 1), 'Pump A ' || d, 'bench-type-pump'
FROM generate_series(1, :devices) AS d
UNION ALL
SELECT 'bench-b-' || d, 'bench-org-' || (d % 4 + 1), 'Pump B ' || d, 'bench-type-basic'
FROM generate_series(1, :devices) AS d
UNION ALL
SELECT 'bench-x' || k || '-' || d, 'bench-org-' || (d % 4 + 1), 'Sensor ' || k || ' ' || d,
       'bench-type-basic'
FROM generate_series(1, :devices) AS d, generate_series(3, :assets_per_device) AS k
ON CONFLICT (id) DO NOTHING;

INSERT INTO entity_edges (id, tenant_id, source_entity_id, source_entity_type, target_entity_id,
                          target_entity_type, relationship_type, metadata)
SELECT 'bench-link-a-' || d, 'bench-org-' || (d % 4 + 1), 'bench-dev-' || d, 'Device',
       'bench-a-' || d, 'Asset', 'MONITORED_BY',
       '{"role": "primary", "metrics_mapping": {"device.voltage": "asset.power_input", "device.current": "asset.power_current", "device.temperature": "asset.motor_temperature"}}'::jsonb
FROM generate_series(1, :devices) AS d
UNION ALL
SELECT 'bench-link-b-' || d, 'bench-org-' || (d % 4 + 1), 'bench-dev-' || d, 'Device',
       'bench-b-' || d, 'Asset', 'MONITORED_BY',
       '{"port": 1, "role": "secondary", "metrics_mapping": {"device.temperature": "asset.motor_temperature"}}'::jsonb
FROM generate_series(1, :devices) AS d
UNION ALL
SELECT 'bench-link-x' || k || '-' || d, 'bench-org-' || (d % 4 + 1), 'bench-dev-' || d, 'Device',
       'bench-x' || k || '-' || d, 'Asset', 'MONITORED_BY',
       '{"role": "secondary", "metrics_mapping": {"device.temperature": "asset.motor_temperature"}}'::jsonb
FROM generate_series(1, :devices) AS d, generate_series(3, :assets_per_device) AS k
ON CONFLICT (id) DO NOTHING;

-- The PostgreSQL ceiling writes the same rows into an identical table: partitioned as
-- telemetry_history is (migrations/004_partitioned_history.sql), with a partition of the same
-- bounds for each of its partitions, so that the ceiling pays for the routing the worker pays for.
DROP TABLE IF EXISTS telemetry_history_ceiling;
CREATE TABLE telemetry_history_ceiling (LIKE telemetry_history INCLUDING ALL)
  PARTITION BY RANGE ("timestamp");
DO $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT * FROM telemetry_history_partitions() LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF telemetry_history_ceiling %s',
                   replace(p.relation, 'telemetry_history', 'telemetry_history_ceiling'),
                   CASE WHEN p.is_default THEN 'DEFAULT'
                        ELSE format('FOR VALUES FROM (%s) TO (%s)',
                                    coalesce(quote_literal(p.lower_bound), 'MINVALUE'),
                                    coalesce(quote_literal(p.upper_bound), 'MAXVALUE')) END);
  END LOOP;
END;
$$;
