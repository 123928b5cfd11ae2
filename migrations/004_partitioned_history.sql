-- telemetry_history partitioned by time (issue 6): PostgreSQL's declarative partitioning, by
-- range of "timestamp", one partition per UTC day named telemetry_history_pYYYYMMDD, and a
-- DEFAULT partition (telemetry_history_default) for any row no daily partition covers.
-- telemetry_history_maintain below makes the partitions ahead of time and drops them past a
-- retention; `asset-worker maintain` runs it, and so does every worker on a timer.
--
-- The worker partitions a telemetry_history it creates itself (migration 001). One that another
-- service created is adopted as it is: `asset-worker storage history-partitions` converts it, on
-- an operator's word, after a dry run that says what it will do and lock (docs/adopting.md).
-- While it is not partitioned, maintenance leaves it alone: it makes and drops no partition, and
-- deletes none of its rows.
--
-- processed_messages stays one table, not partitioned: its primary key on the message's identity
-- across all time is what makes a redelivery write nothing twice (SPEC D11) whichever partition
-- the first copy's rows went to. Partitioning it by time would put the time into that key.
--
-- (This file was written again when adoption was: databases that applied its first text had an
-- unpartitioned telemetry_history converted here.)

-- Retention deletes old processed_messages rows by processed_at. BRIN: the rows arrive in
-- processed_at order, so a few pages of summary find them, and inserts pay next to nothing.
CREATE INDEX IF NOT EXISTS processed_messages_processed_at_brin
  ON processed_messages USING brin (processed_at);

-- telemetry_history's partitions: the range ones with their bounds (NULL for MINVALUE or
-- MAXVALUE) and the DEFAULT one (is_default, NULL bounds). `relation` is quoted and qualified as
-- needed, ready for SQL. The bounds are read from the catalog's text form, which this function's
-- time zone setting writes in UTC.
CREATE OR REPLACE FUNCTION telemetry_history_partitions()
RETURNS TABLE (relation text, lower_bound timestamptz, upper_bound timestamptz,
               is_default boolean)
LANGUAGE sql STABLE SET timezone = 'UTC' SET datestyle = 'ISO, YMD' AS $$
  SELECT c.oid::regclass::text,
         CASE WHEN b.m[1] IS NULL OR b.m[1] = 'MINVALUE' THEN NULL
              ELSE btrim(b.m[1], '''')::timestamptz END,
         CASE WHEN b.m[2] IS NULL OR b.m[2] = 'MAXVALUE' THEN NULL
              ELSE btrim(b.m[2], '''')::timestamptz END,
         pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                          '^FOR VALUES FROM \((.+)\) TO \((.+)\)$')) AS b(m)
  WHERE i.inhparent = 'telemetry_history'::regclass
  ORDER BY 4, 2 NULLS FIRST
$$;

-- Makes the daily partition of `day` (UTC) unless some partition already covers part of that
-- day; `relation` is NULL then. An operator may call it for a past day whose rows sit in the
-- DEFAULT partition (docs/runbook.md). Rows the DEFAULT partition holds for the day move into
-- the new one (`moved`), so that making it never fails on them: the table is made beside the
-- parent, filled, then attached.
--
-- Writers wait meanwhile: the parent is locked against them (SHARE ROW EXCLUSIVE; readers go
-- on) until the caller's transaction ends. A COPY that began before the attach would otherwise
-- route a row of the new day by the partitions it saw at its start, into the DEFAULT partition,
-- and fail on its new constraint. The lock order, the parent and then the DEFAULT partition, is
-- the writers' own, so this cannot deadlock with them.
CREATE OR REPLACE FUNCTION telemetry_history_add_partition(day date, OUT relation text,
                                                           OUT moved bigint)
LANGUAGE plpgsql SET timezone = 'UTC' AS $$
DECLARE
  parent regclass := 'telemetry_history'::regclass;
  lo timestamptz := day::timestamptz;
  hi timestamptz := (day + 1)::timestamptz;
  default_part text;
  part text;
BEGIN
  relation := NULL;
  moved := NULL;
  IF (SELECT c.relkind FROM pg_class c WHERE c.oid = parent) <> 'p' THEN
    RAISE EXCEPTION 'telemetry_history is not partitioned'
      USING HINT = 'asset-worker storage history-partitions --dry-run says how to convert it';
  END IF;
  -- Reentrant: telemetry_history_maintain holds it already; anyone else waits for it.
  PERFORM pg_advisory_xact_lock(7216402292);
  IF EXISTS (SELECT FROM telemetry_history_partitions() p
             WHERE NOT p.is_default AND coalesce(p.lower_bound, '-infinity') < hi
               AND coalesce(p.upper_bound, 'infinity') > lo) THEN
    RETURN;
  END IF;
  EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', parent);
  SELECT format('%I.%I', n.nspname, 'telemetry_history_p' || to_char(day, 'YYYYMMDD')) INTO part
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
  SELECT p.relation INTO default_part FROM telemetry_history_partitions() p WHERE p.is_default;
  EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                 ' INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING GENERATED)', part, parent);
  moved := 0;
  IF default_part IS NOT NULL THEN
    -- Against anyone writing to the DEFAULT partition directly, not through the parent.
    EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', default_part);
    EXECUTE format('WITH m AS (DELETE FROM %s WHERE "timestamp" >= $1 AND "timestamp" < $2'
                   ' RETURNING *) INSERT INTO %s SELECT * FROM m', default_part, part)
      USING lo, hi;
    GET DIAGNOSTICS moved = ROW_COUNT;
  END IF;
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                 parent, part, lo, hi);
  relation := part::regclass::text;
END;
$$;

-- History maintenance, in the caller's transaction; returns what it did, one row per action:
--   deleted  <table>      <rows>   (DEFAULT partition rows and processed_messages rows)
--   dropped  <partition>  NULL
--   created  <partition>  <rows moved into it from the DEFAULT partition>
--   skipped  NULL         NULL     (another session is maintaining: replicas run this together)
-- On a telemetry_history that is not partitioned (adopted as it is), only forgets the
-- processed_messages rows past the retention: its rows are its owner's to keep or delete.
-- Makes the daily partitions from `today` (default: the current UTC date) to today + ahead_days
-- that do not exist, and those of the days since the newest partition ended if maintenance has
-- not run for longer than that (days past the retention excepted). With retention_days > 0,
-- drops the partitions that end at or before the start of (today - retention_days), the legacy
-- one included, deletes the DEFAULT partition's rows older than that, and forgets the
-- processed_messages rows older than that: only where no history row of theirs can be left,
-- which keeps a redelivery from writing twice (SPEC D11) for as long as its first rows exist.
--
-- Locks are held to the end of the transaction, so the deletes, which only lock rows, come
-- first, and what locks the parent against writers (a drop, a new partition) comes last. Each
-- lock waits at most lock_timeout (5 s): a long query on the table makes this fail, and the next
-- run retries, rather than holding up the writers queued behind it.
CREATE OR REPLACE FUNCTION telemetry_history_maintain(ahead_days int, retention_days int,
                                                      today date DEFAULT NULL)
RETURNS TABLE (action text, relation text, row_count bigint)
LANGUAGE plpgsql SET timezone = 'UTC' SET lock_timeout = '5s' AS $$
DECLARE
  day0 date := coalesce(today, (now() AT TIME ZONE 'UTC')::date);
  cutoff timestamptz;
  forget_before timestamptz;
  newest timestamptz;
  first_day date;
  partitioned boolean;
  default_part text;
  expired record;
  made record;
  d date;
  n bigint;
BEGIN
  IF ahead_days IS NULL OR ahead_days < 0 OR retention_days IS NULL OR retention_days < 0 THEN
    RAISE EXCEPTION 'ahead_days and retention_days must be 0 or more';
  END IF;
  -- A fixed key of this worker's, beside the migration lock's 7216402291.
  IF NOT pg_try_advisory_xact_lock(7216402292) THEN
    action := 'skipped';
    relation := NULL;
    row_count := NULL;
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT p.relation INTO default_part FROM telemetry_history_partitions() p WHERE p.is_default;
  partitioned := (SELECT c.relkind FROM pg_class c
                  WHERE c.oid = to_regclass('telemetry_history')) = 'p';

  IF retention_days > 0 THEN
    cutoff := (day0 - retention_days)::timestamptz;
    IF partitioned AND default_part IS NOT NULL THEN
      EXECUTE format('DELETE FROM %s WHERE "timestamp" < $1', default_part) USING cutoff;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n > 0 THEN
        action := 'deleted';
        relation := default_part;
        row_count := n;
        RETURN NEXT;
      END IF;
    END IF;
    -- A message's history rows are all gone once its timestamp is below the cutoff and below
    -- every range partition kept (one from MINVALUE, the legacy one, keeps them all).
    SELECT least(cutoff, min(coalesce(q.lower_bound, '-infinity'))) INTO forget_before
      FROM telemetry_history_partitions() q WHERE NOT q.is_default AND q.upper_bound > cutoff;
    DELETE FROM processed_messages m
      WHERE m.processed_at < forget_before AND m."timestamp" < forget_before;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
      action := 'deleted';
      relation := 'processed_messages';
      row_count := n;
      RETURN NEXT;
    END IF;
    FOR expired IN SELECT q.relation FROM telemetry_history_partitions() q
                   WHERE NOT q.is_default AND q.upper_bound <= cutoff ORDER BY q.upper_bound LOOP
      EXECUTE format('DROP TABLE %s', expired.relation);
      action := 'dropped';
      relation := expired.relation;
      row_count := NULL;
      RETURN NEXT;
    END LOOP;
  END IF;

  IF NOT partitioned THEN
    RETURN;
  END IF;
  -- From today, or from where the newest partition ends if that is earlier (maintenance did not
  -- run for a while), but never a day that retention would drop at once.
  SELECT max(q.upper_bound) INTO newest FROM telemetry_history_partitions() q
    WHERE NOT q.is_default;
  first_day := least(day0, newest::date);
  IF cutoff IS NOT NULL THEN
    first_day := greatest(first_day, cutoff::date);
  END IF;
  d := first_day;
  WHILE d <= day0 + ahead_days LOOP
    SELECT * INTO made FROM telemetry_history_add_partition(d);
    IF made.relation IS NOT NULL THEN
      action := 'created';
      relation := made.relation;
      row_count := made.moved;
      RETURN NEXT;
    END IF;
    d := d + 1;
  END LOOP;
END;
$$;

-- A fresh database gets its partitions now: today and the 7 days after it.
DO $$
BEGIN
  PERFORM * FROM telemetry_history_maintain(7, 0);
END;
$$;
