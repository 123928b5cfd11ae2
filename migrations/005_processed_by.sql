-- Which worker replica wrote each message (its WORKER_ID): how a backlog spread over the
-- replicas, exactly, even for a replica that was killed before it could report a metric.
ALTER TABLE processed_messages ADD COLUMN IF NOT EXISTS processed_by text;
