-- Health states (issue 21): each asset's state (good, warning, critical, or the levels its type
-- names), kept by the worker in a table of its own, never on the platform's assets. A row is
-- made at the asset's first measurement and changed only when the state changes or a run of
-- measurements towards another state starts, grows or ends (telemetry_schema.health_states),
-- so most batches write nothing here. Rows are read and written under the lock the worker
-- already takes on the asset's row in assets, so replicas take turns per asset.
CREATE TABLE IF NOT EXISTS asset_health_states (
  asset_id        text PRIMARY KEY,
  organization_id text NOT NULL,
  state           text NOT NULL,
  entered_at      timestamptz NOT NULL,        -- measurement time of the message that moved it
  entered_score   double precision NOT NULL,   -- the score that moved it
  changes         bigint NOT NULL DEFAULT 0,   -- state changes so far (the last one's sequence)
  pending_state   text,                        -- where a run of measurements points, if anywhere
  pending_since   timestamptz,                 -- the run's first measurement time
  pending_count   integer NOT NULL DEFAULT 0,  -- measurements in the run
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The state changes a message made, as their events' JSON (an array; NULL when none): a
-- redelivery republishes them under the same ids instead of computing them again, so a change
-- whose event was lost in a crash is published, and one that was published is dropped by the
-- stream's duplicate window.
ALTER TABLE processed_messages ADD COLUMN IF NOT EXISTS state_changes json;
