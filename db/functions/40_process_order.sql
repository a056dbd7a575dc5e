-- The retry-safe workflow: process_order and the step runner.
--
-- Lock order (the same in every function that takes more than one lock):
--   1. the workflows row of the order (FOR UPDATE; only that order's row, never a range)
--   2. its workflow_steps rows (updated only while 1 is held)
--   3. the faults row of the step, while a fault is injected for it
--   4. the inventory row of the order's item (reserve, and release in compensation)
--   5. unique index entries of payments / reservations / outbox (the effects)
-- Unrelated orders share no lock except 3 during drills and 4 when they order the same
-- tracked item. cancel_order and resume_due take the same locks in the same order.
--
-- Plans: every API entry point (process_order, create_order_idempotent, get_workflow,
-- get_order, cancel_order, resume_due, publish_outbox) runs with SET enable_seqscan = off.
-- Everything they do is a point lookup through an index, by design; the setting pins that into
-- the plans whatever the statistics say. A connection that cached its plans (and PostgreSQL's own
-- foreign-key check queries) right after a tiny table was analyzed would otherwise keep scanning
-- that table as it grows: measured in `make bench`, new workflows fell from about 1 600 to 497
-- per second after workflows was analyzed while it held one row. They also run with jit = off:
-- with sequential scans disabled, a scan that has no index condition is costed as prohibitive,
-- which would make PostgreSQL JIT-compile a one-row read (measured: 111 ms per call, when the
-- settings lookup still lacked its WHERE).

-- _create_workflow(order_id, amount, item) → workflow: inserts the workflow and its step rows
-- and returns the new row, or a row of nulls when the order exists (a concurrent creator of the
-- same order id waits here for the first one to commit). OF409 when the order id belonged to a
-- workflow that prune() removed: its ledger rows remain, so the id can never be charged again.
CREATE OR REPLACE FUNCTION orderflow._create_workflow(p_order_id text, p_amount numeric, p_item text)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_wf orderflow.workflows;
BEGIN
    IF EXISTS (SELECT 1 FROM orderflow.payments WHERE idempotency_key = p_order_id || ':charge')
       AND NOT EXISTS (SELECT 1 FROM orderflow.workflows WHERE order_id = p_order_id) THEN
        RAISE EXCEPTION 'orderId % was used by a workflow that has been pruned', p_order_id
            USING ERRCODE = 'OF409';
    END IF;
    WITH created AS (
        INSERT INTO orderflow.workflows (order_id, amount, item, status, next_retry_at,
                                         created_at, updated_at)
        SELECT p_order_id, p_amount, p_item, 'pending', t.now, t.now, t.now
          FROM (SELECT orderflow.clock_now() AS now) t
        ON CONFLICT (order_id) DO NOTHING
        RETURNING *),
    steps AS (
        INSERT INTO orderflow.workflow_steps (order_id, step)
        SELECT c.order_id, s.step FROM created c CROSS JOIN unnest(orderflow._steps()) AS s (step))
    SELECT * INTO v_wf FROM created;
    RETURN v_wf;
END
$$;
COMMENT ON FUNCTION orderflow._create_workflow(text, numeric, text) IS
    'Internal: creates a pending workflow with its step rows and returns it (nulls when the order id '
    'exists); OF409 for the id of a pruned workflow.';

-- _check_same_order(workflow, amount, item) → void: OF409 when a given amount or item differs from the stored one.
CREATE OR REPLACE FUNCTION orderflow._check_same_order(p_wf orderflow.workflows, p_amount numeric, p_item text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF (p_amount IS NOT NULL AND p_amount <> p_wf.amount)
       OR (p_item IS NOT NULL AND p_item <> p_wf.item) THEN
        RAISE EXCEPTION 'orderId % is already known with another amount or item', p_wf.order_id
            USING ERRCODE = 'OF409',
                  DETAIL = format('Known: amount %s, item %L.', trim_scale(p_wf.amount), p_wf.item);
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._check_same_order(orderflow.workflows, numeric, text) IS
    'Internal: raises OF409 when a given amount or item differs from the workflow''s.';

-- _run_steps(workflow) → workflow: runs the steps not yet completed, in order, each in its own
-- exception block with its checkpoint, and returns the workflow row as it is afterwards; the
-- caller holds the workflows row lock. A failing step is handed to _step_failed, which
-- schedules a retry or fails and compensates the workflow.
CREATE OR REPLACE FUNCTION orderflow._run_steps(p_wf orderflow.workflows)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_done    text[];
    v_step    text;
    v_fault   boolean;
    v_started timestamptz;
    v_state   text;
    v_message text;
    v_wf      orderflow.workflows;
BEGIN
    SELECT COALESCE(array_agg(step), '{}') INTO v_done FROM orderflow.workflow_steps
     WHERE order_id = p_wf.order_id AND completed_at IS NOT NULL;
    FOREACH v_step IN ARRAY orderflow._steps() LOOP
        CONTINUE WHEN v_step = ANY (v_done);
        -- Taken outside the step's block, so that the fault is used up even though the
        -- step's subtransaction rolls back.
        v_fault := orderflow._take_fault(v_step);
        v_started := clock_timestamp();
        BEGIN
            IF v_fault IS NOT NULL THEN
                RAISE EXCEPTION 'injected % fault in %', CASE WHEN v_fault THEN 'transient' ELSE 'permanent' END, v_step
                    USING ERRCODE = CASE WHEN v_fault THEN 'OFT01' ELSE 'OFP01' END;
            END IF;
            CASE v_step
                WHEN 'charge' THEN PERFORM orderflow._charge(p_wf);
                WHEN 'reserve' THEN PERFORM orderflow._reserve(p_wf);
                WHEN 'confirm' THEN PERFORM orderflow._confirm(p_wf);
            END CASE;
            -- The checkpoint, in the same subtransaction as the effect.
            UPDATE orderflow.workflow_steps
               SET attempts = attempts + 1, completed_at = orderflow.clock_now(),
                   total_ms = total_ms + 1000 * extract(epoch FROM clock_timestamp() - v_started)
             WHERE order_id = p_wf.order_id AND step = v_step;
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            -- The effect and its checkpoint are gone; the steps before this one stay done.
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
            RETURN orderflow._step_failed(p_wf, v_step, v_state, v_message,
                                          1000 * extract(epoch FROM clock_timestamp() - v_started));
        END;
    END LOOP;

    UPDATE orderflow.workflows
       SET status = 'completed', error = NULL, next_retry_at = NULL,
           updated_at = orderflow.clock_now(), finished_at = orderflow.clock_now()
     WHERE order_id = p_wf.order_id
    RETURNING * INTO v_wf;
    PERFORM orderflow._count_finished('completed', 1);
    RETURN v_wf;
END
$$;
COMMENT ON FUNCTION orderflow._run_steps(orderflow.workflows) IS
    'Internal: runs the workflow''s unfinished steps in order, each effect with its checkpoint in one '
    'subtransaction; a failing step goes to _step_failed. Returns the row after. Caller holds the lock.';

-- _is_transient(sqlstate) → boolean: serialization failure, deadlock, lock timeout, statement
-- timeout and injected transient faults are worth retrying; everything else is permanent.
CREATE OR REPLACE FUNCTION orderflow._is_transient(p_sqlstate text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_sqlstate IN ('40001', '40P01', '55P03', '57014', 'OFT01')
$$;
COMMENT ON FUNCTION orderflow._is_transient(text) IS
    'Internal: true for the SQLSTATEs a step retries (40001, 40P01, 55P03, 57014, OFT01).';

-- _backoff_ms(policy, attempt) → double precision: the wait after failed attempt n,
-- min(max_delay, base * multiplier^(n-1)) shortened by up to `jitter` of itself at random.
CREATE OR REPLACE FUNCTION orderflow._backoff_ms(p_policy orderflow.retry_policies, p_attempt integer)
RETURNS double precision
LANGUAGE sql VOLATILE
AS $$
    SELECT least(p_policy.max_delay_ms::double precision,
                 p_policy.base_delay_ms * power(p_policy.multiplier::double precision, p_attempt - 1))
           * (1 - p_policy.jitter::double precision * random())
$$;
COMMENT ON FUNCTION orderflow._backoff_ms(orderflow.retry_policies, integer) IS
    'Internal: backoff after failed attempt n: min(max_delay, base*multiplier^(n-1)) * (1 - jitter*random()).';

-- _take_fault(step) → boolean: uses up one injected fault of the step; true = transient,
-- false = permanent, null = none injected.
CREATE OR REPLACE FUNCTION orderflow._take_fault(p_step text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_transient boolean;
BEGIN
    UPDATE orderflow.faults SET remaining = remaining - 1
     WHERE step = p_step AND remaining > 0
    RETURNING transient INTO v_transient;
    RETURN v_transient;
END
$$;
COMMENT ON FUNCTION orderflow._take_fault(text) IS
    'Internal: uses up one injected fault of the step: true transient, false permanent, null none.';

-- _step_failed(workflow, step, sqlstate, message, ms) → workflow: records the failed attempt; a
-- transient failure with attempts left schedules a retry (status stays on the step), anything
-- else fails the workflow and compensates its completed steps. Returns the workflow row after.
CREATE OR REPLACE FUNCTION orderflow._step_failed(p_wf orderflow.workflows, p_step text,
                                                  p_sqlstate text, p_message text, p_ms double precision)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_now       timestamptz := orderflow.clock_now();
    v_transient boolean := orderflow._is_transient(p_sqlstate);
    v_attempts  integer;
    v_policy    orderflow.retry_policies;
    v_wf        orderflow.workflows;
BEGIN
    UPDATE orderflow.workflow_steps
       SET attempts = attempts + 1, last_error = p_message, last_sqlstate = p_sqlstate,
           total_ms = total_ms + p_ms
     WHERE order_id = p_wf.order_id AND step = p_step
    RETURNING attempts INTO v_attempts;
    SELECT * INTO v_policy FROM orderflow.retry_policies WHERE step = p_step;

    IF v_transient AND v_attempts < COALESCE(v_policy.max_attempts, 1) THEN
        UPDATE orderflow.workflows
           SET status = orderflow._running_status(p_step),
               next_retry_at = v_now + orderflow._backoff_ms(v_policy, v_attempts) * interval '1 millisecond',
               updated_at = v_now
         WHERE order_id = p_wf.order_id
        RETURNING * INTO v_wf;
        RETURN v_wf;
    END IF;

    UPDATE orderflow.workflow_steps SET failed_at = v_now
     WHERE order_id = p_wf.order_id AND step = p_step;
    PERFORM orderflow._compensate(p_wf);
    UPDATE orderflow.workflows
       SET status = 'failed',
           error = CASE WHEN v_transient
                        THEN format('%s failed after %s attempts: %s', p_step, v_attempts, p_message)
                        ELSE format('%s failed: %s', p_step, p_message) END,
           next_retry_at = NULL, updated_at = v_now, finished_at = v_now
     WHERE order_id = p_wf.order_id
    RETURNING * INTO v_wf;
    PERFORM orderflow._count_finished('failed', 1);
    RETURN v_wf;
END
$$;
COMMENT ON FUNCTION orderflow._step_failed(orderflow.workflows, text, text, text, double precision) IS
    'Internal: records a failed attempt; retries transient failures per retry_policies, else fails '
    'the workflow and compensates its completed steps in reverse order. Returns the row after.';

-- process_order(order_id, amount, item) → jsonb: starts or resumes the order's workflow and returns
-- its state. amount and item may be omitted for a known order. 22023 bad arguments, OF409 mismatch.
CREATE OR REPLACE FUNCTION orderflow.process_order(p_order_id text, p_amount numeric DEFAULT NULL,
                                                   p_item text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_wf orderflow.workflows;
BEGIN
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    IF p_amount IS NOT NULL THEN
        PERFORM orderflow._check_amount(p_amount);
    END IF;
    IF p_item IS NOT NULL THEN
        PERFORM orderflow._check_text('item', p_item, 200);
    END IF;

    -- Read path, no lock: a finished workflow is answered from here.
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id;
    IF FOUND THEN
        PERFORM orderflow._check_same_order(v_wf, p_amount, p_item);
        IF orderflow._is_finished(v_wf.status) THEN
            RETURN orderflow._workflow_state(v_wf);
        END IF;
    ELSE
        IF p_amount IS NULL OR p_item IS NULL THEN
            RAISE EXCEPTION '% is required to start a workflow',
                CASE WHEN p_amount IS NULL THEN 'amount' ELSE 'item' END
                USING ERRCODE = '22023';
        END IF;
        -- The row we insert is ours (locked) until we commit.
        v_wf := orderflow._create_workflow(p_order_id, p_amount, p_item);
    END IF;

    -- Write path: lock this order's row unless we created it. Whoever held it before us has
    -- committed, so the row and its steps are read as they are now.
    IF v_wf.order_id IS NULL THEN
        SELECT * INTO STRICT v_wf FROM orderflow.workflows WHERE order_id = p_order_id FOR UPDATE;
        PERFORM orderflow._check_same_order(v_wf, p_amount, p_item);
    END IF;
    IF NOT orderflow._is_finished(v_wf.status) THEN
        v_wf := orderflow._run_steps(v_wf);
    END IF;
    RETURN orderflow._workflow_state(v_wf);
END
$$;
COMMENT ON FUNCTION orderflow.process_order(text, numeric, text) IS
    'Starts or resumes the workflow of an order (charge → reserve → confirm, each at most once) and '
    'returns its state. 22023 for bad arguments, OF409 when the order id is known with another '
    'amount or item. Finished workflows are answered without a lock.';
