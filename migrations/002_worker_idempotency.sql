-- What the worker needs on top of the seed's tables (SPEC D11): one row per message it has
-- written, so a redelivery or a republished message writes nothing twice. The row also keeps
-- each asset's score before the message, so the events of a redelivery carry the same
-- previousHealthScore as the first time.

CREATE TABLE IF NOT EXISTS processed_messages (
  message_id      text PRIMARY KEY,
  organization_id text NOT NULL,
  device_id       text NOT NULL,
  "timestamp"     timestamptz NOT NULL,
  processed_at    timestamptz NOT NULL DEFAULT now(),
  previous_scores jsonb NOT NULL  -- {"assetId": score or null, ...}
);
