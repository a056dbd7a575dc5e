-- The janitor: resumes workflows whose retry is due. Rows are claimed with a bounded
-- FOR UPDATE SKIP LOCKED, so any number of servers (or psql sessions) can run it at once:
-- a row locked by one janitor, or by a client's process_order, is skipped by the others, and a
-- row that a janitor finished is no longer due when the next one looks.
-- Locks: the claimed workflows rows (in next_retry_at order, never waiting), then per workflow
-- the locks of 40_process_order.sql.

-- resume_due(batch) → integer: runs the next step of up to p_batch due workflows; returns how many.
CREATE OR REPLACE FUNCTION orderflow.resume_due(p_batch integer DEFAULT 16)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_ids text[];
    v_id  text;
    v_wf  orderflow.workflows;
BEGIN
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'batch must be from 1 to 1000' USING ERRCODE = '22023';
    END IF;

    WITH due AS (
        SELECT w.order_id
          FROM orderflow.workflows w
         WHERE w.next_retry_at <= orderflow.clock_now()
         ORDER BY w.next_retry_at
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED)
    SELECT array_agg(order_id) INTO v_ids FROM due;

    FOREACH v_id IN ARRAY COALESCE(v_ids, '{}') LOOP
        SELECT * INTO STRICT v_wf FROM orderflow.workflows WHERE order_id = v_id;
        PERFORM orderflow._run_steps(v_wf);
    END LOOP;
    RETURN COALESCE(cardinality(v_ids), 0);
END
$$;
COMMENT ON FUNCTION orderflow.resume_due(integer) IS
    'Janitor: resumes up to p_batch workflows whose next_retry_at has passed, claimed with FOR UPDATE '
    'SKIP LOCKED so concurrent janitors never run the same one; returns how many it resumed.';
