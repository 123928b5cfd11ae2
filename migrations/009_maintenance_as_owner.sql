-- The history maintenance (migration 004) runs as its owner, the role that ran `migrate`, so that
-- a worker's role needs only EXECUTE on it, no right to make or drop partitions
-- (deploy/postgres/roles.sql). A function that runs as its owner names the schema it works in:
-- the one migrate ran in.

DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION telemetry_history_maintain(integer, integer, date)'
                 ' SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION telemetry_history_add_partition(date)'
                 ' SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION telemetry_history_partitions() SET search_path = %I, pg_temp',
                 current_schema());
END;
$$;
