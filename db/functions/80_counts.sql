-- Workflow counts by status, for metrics. A transition appends its change to the finished counts
-- to finished_count_deltas (15_state_machine.sql): an insert into a heap with no index, which
-- never waits for another transaction, so unrelated orders share no row. The janitor folds the
-- deltas into finished_counts in its own transaction (_fold_counts, from janitor_tick); the
-- count is finished_counts plus the deltas not folded yet. Unfinished workflows are few and are
-- counted exactly through the workflows_unfinished index.

-- _fold_counts() → bigint: moves the committed deltas into finished_counts; returns how many
-- delta rows it folded. One folder at a time (a second one returns 0 at once).
CREATE OR REPLACE FUNCTION orderflow._fold_counts()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('orderflow._fold_counts')) THEN
        RETURN 0;
    END IF;
    WITH folded AS (
        DELETE FROM orderflow.finished_count_deltas RETURNING status, delta),
    per_status AS (
        SELECT status, sum(delta)::bigint AS n, count(*) AS rows FROM folded GROUP BY status),
    applied AS (
        INSERT INTO orderflow.finished_counts AS c (status, stripe, n)
        SELECT status, 0, n FROM per_status
        ON CONFLICT (status, stripe) DO UPDATE SET n = c.n + EXCLUDED.n)
    SELECT COALESCE(sum(rows), 0) INTO v_rows FROM per_status;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION orderflow._fold_counts() IS
    'Internal: folds finished_count_deltas into finished_counts (one folder at a time); returns rows folded.';

-- workflow_counts() → jsonb: {"pending": n, ..., "cancelled": n}, every status of
-- workflow_statuses present. Cost does not grow with history: finished ones come from the folded
-- counters plus the unfolded deltas, unfinished ones from a partial index.
CREATE OR REPLACE FUNCTION orderflow.workflow_counts()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(s.status, COALESCE(f.n, 0) + COALESCE(d.n, 0) + COALESCE(u.n, 0)
                            ORDER BY s.status)
      FROM orderflow.workflow_statuses s
      LEFT JOIN (SELECT c.status, sum(c.n)::bigint AS n FROM orderflow.finished_counts c
                  GROUP BY c.status) f ON f.status = s.status AND s.finished
      LEFT JOIN (SELECT c.status, sum(c.delta)::bigint AS n FROM orderflow.finished_count_deltas c
                  GROUP BY c.status) d ON d.status = s.status AND s.finished
      LEFT JOIN (SELECT w.status, count(*) AS n FROM orderflow.workflows w
                  WHERE w.finished_at IS NULL
                  GROUP BY w.status) u ON u.status = s.status AND NOT s.finished
$$;
COMMENT ON FUNCTION orderflow.workflow_counts() IS
    'Workflow counts by status as {"pending": n, ...}; cheap at any history size (for /metrics).';
