-- Workflow counts by status, for metrics. See db/migrations/004_finished_counts.sql.

-- _count_finished(status, delta) → void: adds delta to the count of finished workflows in status.
CREATE OR REPLACE FUNCTION orderflow._count_finished(p_status text, p_delta bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    INSERT INTO orderflow.finished_counts AS c (status, stripe, n)
    VALUES (p_status, pg_backend_pid() % 64, p_delta)
    ON CONFLICT (status, stripe) DO UPDATE SET n = c.n + EXCLUDED.n;
END
$$;
COMMENT ON FUNCTION orderflow._count_finished(text, bigint) IS
    'Internal: adds p_delta to the striped count of finished workflows in p_status.';

-- workflow_counts() → jsonb: {"pending": n, ..., "cancelled": n}, every status present. Cost does
-- not grow with history: finished ones come from striped counters, unfinished ones from a
-- partial index.
CREATE OR REPLACE FUNCTION orderflow.workflow_counts()
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(s.status, COALESCE(f.n, u.n, 0))
      FROM unnest(ARRAY['pending', 'charging', 'reserving', 'confirming',
                        'completed', 'failed', 'cancelled']) AS s (status)
      LEFT JOIN (SELECT c.status, sum(c.n)::bigint AS n FROM orderflow.finished_counts c
                  GROUP BY c.status) f ON f.status = s.status
      LEFT JOIN (SELECT w.status, count(*) AS n FROM orderflow.workflows w
                  WHERE w.status NOT IN ('completed', 'failed', 'cancelled')
                  GROUP BY w.status) u ON u.status = s.status
$$;
COMMENT ON FUNCTION orderflow.workflow_counts() IS
    'Workflow counts by status as {"pending": n, ...}; cheap at any history size (for /metrics).';
