-- The janitor: resumes workflows whose retry is due, folds the finished counts and drops expired
-- idempotency keys. Rows are claimed with a bounded FOR UPDATE SKIP LOCKED, so any number of
-- servers (or psql sessions) can run it at once: a row locked by one janitor, or by a client's
-- process_order, is skipped by the others, and a row that a janitor finished is no longer due
-- when the next one looks.
-- Locks: the claimed workflows rows (in next_retry_at order, never waiting), then per workflow
-- the locks of 40_process_order.sql. Each workflow runs in its own subtransaction: one whose
-- failure handling raises is rolled back alone, suspended with its error (an operator's to act
-- on), and the rest of the batch goes on.

-- _resume_due(batch) → jsonb: runs the next step of up to p_batch due workflows and says, for
-- each, what it waited on and what it is now: [{orderId, was, step, attempt, reason, now}].
CREATE OR REPLACE FUNCTION orderflow._resume_due(p_batch integer)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_now     timestamptz := orderflow.clock_now();
    v_ids     text[];
    v_id      text;
    v_wf      orderflow.workflows;
    v_after   orderflow.workflows;
    v_step    text;
    v_waiting orderflow.workflow_steps;
    v_report  jsonb := '[]';
    v_state   text;
    v_message text;
BEGIN
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'batch must be from 1 to 1000' USING ERRCODE = '22023';
    END IF;

    -- The due workflows are read without a lock (on Citus, a read of every shard), then each
    -- is claimed with its own row lock, FOR UPDATE SKIP LOCKED by its order id (one shard),
    -- under which it is read again: one that another janitor or a client holds, or that is no
    -- longer due, is skipped.
    SELECT array_agg(d.order_id ORDER BY d.next_retry_at) INTO v_ids
      FROM (SELECT w.order_id, w.next_retry_at
              FROM orderflow.workflows w
             WHERE w.next_retry_at <= v_now
             ORDER BY w.next_retry_at
             LIMIT p_batch) d;

    FOREACH v_id IN ARRAY COALESCE(v_ids, '{}') LOOP
        SELECT * INTO v_wf FROM orderflow.workflows
         WHERE order_id = v_id AND next_retry_at <= v_now
           FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        -- Why it was due: the step it waits on and that step's last error (for the log).
        SELECT st.step INTO v_step FROM orderflow.workflow_statuses st WHERE st.status = v_wf.status;
        SELECT * INTO v_waiting FROM orderflow.workflow_steps s WHERE s.order_id = v_id AND s.step = v_step;
        BEGIN
            v_after := orderflow._run_steps(v_wf, v_now);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
            RAISE LOG 'orderflow: resuming order % raised SQLSTATE %: %', v_id, v_state, v_message;
            v_after := v_wf;
            -- A lock or serialization conflict passes: the workflow stays due for the next tick.
            -- Anything else would raise again at every tick: suspend it for an operator.
            IF NOT COALESCE((SELECT e.transient FROM orderflow.step_errors e
                              WHERE e.sqlstate = v_state), false) THEN
                v_after := orderflow._transition(
                    v_wf, 'suspended', v_now, NULL,
                    'resuming this workflow failed with an internal error; an operator must act',
                    format('SQLSTATE %s: %s', v_state, v_message));
            END IF;
        END;
        v_report := v_report || jsonb_build_object(
            'orderId', v_id, 'was', v_wf.status, 'step', v_step,
            'attempt', COALESCE(v_waiting.attempts, 0) + 1, 'reason', v_waiting.last_error,
            'now', v_after.status);
    END LOOP;
    RETURN v_report;
END
$$;
COMMENT ON FUNCTION orderflow._resume_due(integer) IS
    'Internal: resumes up to p_batch due workflows (FOR UPDATE SKIP LOCKED, each in its own '
    'subtransaction; one that raises is suspended) and reports each: was, step, attempt, reason, now.';

-- resume_due(batch) → integer: runs the next step of up to p_batch due workflows; returns how many.
CREATE OR REPLACE FUNCTION orderflow.resume_due(p_batch integer DEFAULT 16)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'janitor', true);
    RETURN jsonb_array_length(orderflow._resume_due(p_batch));
END
$$;
COMMENT ON FUNCTION orderflow.resume_due(integer) IS
    'Janitor: resumes up to p_batch workflows whose next_retry_at has passed, claimed with FOR UPDATE '
    'SKIP LOCKED, each in its own subtransaction (one that raises is suspended); returns how many.';

-- _expire_keys(now, batch) → integer: deletes up to p_batch idempotency keys expired at p_now.
CREATE OR REPLACE FUNCTION orderflow._expire_keys(p_now timestamptz, p_batch integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_count integer;
    v_key   text;
BEGIN
    -- Read without a lock, then each key deleted by its own key (one shard on Citus); a key
    -- a create holds is skipped (SKIP LOCKED), as is one claimed anew meanwhile.
    v_count := 0;
    FOREACH v_key IN ARRAY COALESCE((
        SELECT array_agg(d.key ORDER BY d.expires_at)
          FROM (SELECT e.key, e.expires_at FROM orderflow.idempotency_keys e
                 WHERE e.expires_at <= p_now
                 ORDER BY e.expires_at
                 LIMIT p_batch) d), '{}')
    LOOP
        PERFORM 1 FROM orderflow.idempotency_keys k
          WHERE k.key = v_key AND k.expires_at <= p_now
            FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        DELETE FROM orderflow.idempotency_keys k WHERE k.key = v_key;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow._expire_keys(timestamptz, integer) IS
    'Internal: deletes up to p_batch expired idempotency keys (claimed with SKIP LOCKED); returns how many.';

-- janitor_tick_report(batch) → jsonb: one tick of the server's janitor: _resume_due(p_batch),
-- then the finished counts folded and up to 1000 expired keys deleted. Returns {resumed: n,
-- orders: [{orderId, was, step, attempt, reason, now}]}: the janitor logs each order.
CREATE OR REPLACE FUNCTION orderflow.janitor_tick_report(p_batch integer DEFAULT 16)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_orders jsonb;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'janitor', true);
    v_orders := orderflow._resume_due(p_batch);
    PERFORM orderflow._fold_counts();
    PERFORM orderflow._expire_keys(orderflow.clock_now(), 1000);
    RETURN jsonb_build_object('resumed', jsonb_array_length(v_orders), 'orders', v_orders);
END
$$;
COMMENT ON FUNCTION orderflow.janitor_tick_report(integer) IS
    'The server janitor''s tick: resumes up to p_batch due workflows, folds the finished counts, '
    'deletes up to 1000 expired keys; returns {resumed, orders: what each waited on and is now}.';

-- janitor_tick(batch) → integer: janitor_tick_report, counted (for psql and older fronts).
CREATE OR REPLACE FUNCTION orderflow.janitor_tick(p_batch integer DEFAULT 16)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'janitor', true);
    RETURN (orderflow.janitor_tick_report(p_batch) ->> 'resumed')::integer;
END
$$;
COMMENT ON FUNCTION orderflow.janitor_tick(integer) IS
    'janitor_tick_report(p_batch) as a number: the workflows resumed.';

-- resume_now(order_id) → jsonb: an operator's "run it now": a waiting or suspended workflow runs
-- its next step at once; a provider call that gave up (dead) is reopened, as a lookup, for the
-- janitor to send; a finished one is returned as it is. OF404 unknown order.
CREATE OR REPLACE FUNCTION orderflow.resume_now(p_order_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_wf   orderflow.workflows;
    v_now  timestamptz;
    v_step text;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'operator', true);
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', p_order_id USING ERRCODE = 'OF404';
    END IF;
    v_now := orderflow.clock_now();
    PERFORM orderflow._record(p_order_id, v_now, 'action', 'resume_now', 'done');
    -- A provider call that gave up is tried again, as a lookup first (its outcome is unknown);
    -- this is also how an operator retries the dead refund of a finished workflow.
    IF orderflow._reopen_effects(p_order_id, v_now) > 0 OR v_wf.status = 'cancelling'
       OR v_wf.finished_at IS NOT NULL THEN
        IF v_wf.status = 'suspended' AND EXISTS (
            SELECT 1 FROM orderflow.effects e
             WHERE e.order_id = p_order_id AND e.kind = 'charge' AND e.state = 'open') THEN
            v_wf := orderflow._transition(v_wf, 'charging', v_now, 'infinity');
        END IF;
        RETURN orderflow._workflow_state(v_wf);  -- the janitor sends it (claim_effects)
    END IF;
    IF v_wf.next_retry_at IS NULL THEN
        -- Suspended: back to waiting on its first unfinished step, due now.
        SELECT st.step INTO v_step FROM unnest(orderflow._steps()) WITH ORDINALITY AS st (step, n)
         WHERE NOT EXISTS (SELECT 1 FROM orderflow.workflow_steps s
                            WHERE s.order_id = p_order_id AND s.step = st.step AND s.completed_at IS NOT NULL)
         ORDER BY st.n LIMIT 1;
        v_wf := orderflow._transition(v_wf, orderflow._status_of_step(v_step), v_now, v_now);
    END IF;
    RETURN orderflow._workflow_state(orderflow._run_steps(v_wf, v_now));
END
$$;
COMMENT ON FUNCTION orderflow.resume_now(text) IS
    'Operators: runs a waiting or suspended workflow''s next step at once and returns its state; '
    'finished ones are returned unchanged. OF404 unknown order.';
