-- History already written, for the growth benchmark (bench/growth.sh): rows `from_row` to
-- `to_row` (exclusive) of a history spread evenly over the 30 days that end now, in the daily
-- partitions the worker's maintenance would have made (the first call makes them), with the
-- processed_messages rows such a history leaves: one per 7 history rows, as the standard
-- workload writes 7 rows per message. Rows go in time order, as the worker writes them. Each
-- call spreads its rows over all 30 days, so filling 0-10 M and then 10-50 M gives the same
-- table as filling 0-50 M at once. Needs psql variables from_row, to_row and devices.
SELECT count(telemetry_history_add_partition((now() AT TIME ZONE 'UTC')::date - i))
FROM generate_series(0, 30) AS i \gset made_

INSERT INTO telemetry_history (entity_id, entity_type, metric_key, value, "timestamp",
                               received_at, source_device_id, quality)
SELECT CASE WHEN r % 7 < 4 THEN 'bench-a-' ELSE 'bench-b-' END || d, 'Asset',
       (ARRAY['power_input', 'power_current', 'motor_temperature', 'power_consumption',
              'motor_temperature', 'temp', 'flow'])[r % 7 + 1],
       (r % 1000) / 10.0, t, t, 'bench-dev-' || d, 'good'
FROM generate_series(:from_row::bigint, :to_row::bigint - 1) AS r
CROSS JOIN LATERAL (SELECT (r / 7) % :devices + 1 AS d,
                           now() - interval '30 days' * (1 - ((r - :from_row)::float8
                                                           / (:to_row - :from_row))) AS t) AS x;

INSERT INTO processed_messages (message_id, organization_id, device_id, "timestamp",
                                processed_at, previous_scores)
SELECT 'history-' || m, 'bench-org-' || (d % 4 + 1), 'bench-dev-' || d, t, t, '{}'
FROM generate_series(:from_row::bigint / 7, :to_row::bigint / 7 - 1) AS m
CROSS JOIN LATERAL (SELECT m % :devices + 1 AS d,
                           now() - interval '30 days' * (1 - ((m * 7 - :from_row)::float8
                                                           / (:to_row - :from_row))) AS t) AS x;
