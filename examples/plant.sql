-- The design document's example plant: device-abc-123 of org-xyz-789 monitors Pump A and
-- Pump B, with exactly the document's mappings, port, roles and formula. Safe to load twice.

INSERT INTO asset_types (id, name, telemetry_schema) VALUES
  ('type-pump', 'Pump',
   '{"derived_metrics": [{"name": "power_consumption", "formula": "power_input * power_current", "unit": "watts"}]}')
ON CONFLICT (id) DO UPDATE SET telemetry_schema = EXCLUDED.telemetry_schema;

INSERT INTO assets (id, tenant_id, name, asset_type_id) VALUES
  ('asset-pump-a', 'org-xyz-789', 'Pump A', 'type-pump'),
  ('asset-pump-b', 'org-xyz-789', 'Pump B', 'type-pump')
ON CONFLICT (id) DO NOTHING;

INSERT INTO entity_edges (id, tenant_id, source_entity_id, source_entity_type, target_entity_id,
                          target_entity_type, relationship_type, metadata) VALUES
  ('link-uuid-1', 'org-xyz-789', 'device-abc-123', 'Device', 'asset-pump-a', 'Asset',
   'MONITORED_BY',
   '{"role": "primary", "metrics_mapping": {"device.voltage": "asset.power_input", "device.current": "asset.power_current", "device.temperature": "asset.motor_temperature"}}'),
  ('link-uuid-2', 'org-xyz-789', 'device-abc-123', 'Device', 'asset-pump-b', 'Asset',
   'MONITORED_BY',
   '{"port": 1, "role": "secondary", "metrics_mapping": {"device.temperature": "asset.motor_temperature"}}')
ON CONFLICT (id) DO NOTHING;
