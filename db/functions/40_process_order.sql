-- The retry-safe workflow: process_order, its JSON entry point process_order_request, and the
-- step runner.
--
-- Lock order (the same in every function that takes more than one lock; tested by
-- tests/e2e/db_race_test.cc):
--   1. the workflows row of the order (FOR UPDATE, or the insert that creates it). Every path
--      that can change a workflow takes it BEFORE it reads the state it decides on:
--      process_order, cancel_order, resume_due / janitor_tick (FOR UPDATE SKIP LOCKED),
--      resume_now, prune (its DELETE). Only an already finished workflow is answered without it.
--   2. its workflow_steps rows (updated only while 1 is held), then its effects rows (the
--      provider calls, 45_effects.sql; claim_effects takes these alone, with SKIP LOCKED)
--   3. the faults row of the step, while a fault is injected for it: the order's own (a drill
--      scoped to it by inject_fault(step, times, transient, order_id) or by inject_fault(step,
--      times, order_id, delay_ms, sqlstate, message)), else the one for every order (the
--      3-argument form); one of them per run of a step, never both
--   4. the inventory row of the order's item (reserve, and release in compensation)
--   5. unique index entries of payments / reservations / outbox (the effects)
--   6. a provider's circuits row, circuit_calls stripe, rate_buckets stripe (44_circuits.sql),
--      each with SKIP LOCKED except by a half-open probe's own report
-- Unrelated orders share no lock except 3 during drills for every order (a scoped drill's row
-- is its order's alone) and 4 when they order the same tracked item. The finished counts are appended to finished_count_deltas (no index, no shared row)
-- and folded by the janitor in its own transaction, so they are no lock at all.
--
-- Plans: every API entry point runs with SET enable_seqscan = off. Everything they do is a
-- point lookup through an index, by design; the setting pins that into the plans whatever the
-- statistics say. A connection that cached its plans (and PostgreSQL's own foreign-key check
-- queries) right after a tiny table was analyzed would otherwise keep scanning that table as
-- it grows: measured in `make bench`, new workflows fell from about 1 600 to 497 per second
-- after workflows was analyzed while it held one row. They also run with jit = off: with
-- sequential scans disabled, a scan that has no index condition is costed as prohibitive,
-- which would make PostgreSQL JIT-compile a one-row read.
--
-- Failures: a step's exception block catches OTHERS only. query_canceled (57014: a statement
-- timeout or pg_cancel_backend) is not caught anywhere: the statement stops and its transaction
-- rolls back, as PostgreSQL means it to.

-- _create_workflow(order_id, amount, item, payment_method, now) → workflow: inserts the workflow (its step rows
-- are written when the steps run) and returns the new row (locked: ours until commit), or a row of nulls when the order
-- exists (a concurrent creator of the same order id waits here for the first one to commit).
-- OF409 when the order id belonged to a workflow that prune() removed: its ledger rows remain,
-- so the id can never be charged again.
CREATE OR REPLACE FUNCTION orderflow._create_workflow(p_order_id text, p_amount numeric, p_item text,
                                                      p_payment_method text, p_now timestamptz)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_wf orderflow.workflows;
BEGIN
    INSERT INTO orderflow.workflows (order_id, amount, item, payment_method, status, next_retry_at,
                                     created_at, updated_at)
    VALUES (p_order_id, p_amount, p_item, p_payment_method, 'pending', p_now, p_now, p_now)
    ON CONFLICT (order_id) DO NOTHING
    RETURNING * INTO v_wf;
    IF FOUND THEN
        -- Checked once the insert is ours: a ledger row without a workflow row is a pruned one
        -- (a concurrent creator's charge would have made our insert conflict instead).
        IF EXISTS (SELECT 1 FROM orderflow.payments WHERE order_id = p_order_id AND kind = 'charge')
           OR EXISTS (SELECT 1 FROM orderflow.effects WHERE order_id = p_order_id AND kind = 'charge') THEN
            RAISE EXCEPTION 'orderId % was used by a workflow that has been pruned', p_order_id
                USING ERRCODE = 'OF409';
        END IF;
    END IF;
    RETURN v_wf;
END
$$;
COMMENT ON FUNCTION orderflow._create_workflow(text, numeric, text, text, timestamptz) IS
    'Internal: creates a pending workflow and returns it (nulls when the order id '
    'exists); OF409 for the id of a pruned workflow.';

-- _check_same_order(workflow, amount, item, payment_method) → void: OF409 when a given amount,
-- item or payment method differs from the stored one.
CREATE OR REPLACE FUNCTION orderflow._check_same_order(p_wf orderflow.workflows, p_amount numeric, p_item text,
                                                       p_payment_method text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF (p_amount IS NOT NULL AND p_amount <> p_wf.amount)
       OR (p_item IS NOT NULL AND p_item <> p_wf.item)
       OR (p_payment_method IS NOT NULL AND p_payment_method IS DISTINCT FROM p_wf.payment_method) THEN
        RAISE EXCEPTION 'orderId % is already known with another amount, item or payment method', p_wf.order_id
            USING ERRCODE = 'OF409',
                  DETAIL = format('Known: amount %s, item %L.', trim_scale(p_wf.amount), p_wf.item);
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._check_same_order(orderflow.workflows, numeric, text, text) IS
    'Internal: raises OF409 when a given amount, item or payment method differs from the workflow''s.';

-- _take_fault(step, order_id) → (sqlstate, message, delay_ms): uses up one injected fault of
-- the step for this order: the order's own first (deleted once used up: a scoped drill leaves
-- nothing behind), else the one for every order. Returns what the step is to do: wait
-- p_delay_ms, then raise p_sqlstate with p_message (a fail fault: OFT01 transient or OFP01
-- permanent, no wait); all null/0 when none is injected.
CREATE OR REPLACE FUNCTION orderflow._take_fault(p_step text, p_order_id text, OUT p_sqlstate text,
                                                 OUT p_message text, OUT p_delay_ms integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_transient boolean;
    v_remaining integer;
BEGIN
    UPDATE orderflow.faults f SET remaining = f.remaining - 1
     WHERE f.order_id = p_order_id AND f.step = p_step AND f.remaining > 0
    RETURNING f.transient, f.remaining, f.sqlstate, f.message, f.delay_ms
         INTO v_transient, v_remaining, p_sqlstate, p_message, p_delay_ms;
    IF FOUND THEN
        IF v_remaining = 0 THEN
            DELETE FROM orderflow.faults f WHERE f.order_id = p_order_id AND f.step = p_step;
        END IF;
    ELSE
        UPDATE orderflow.faults f SET remaining = f.remaining - 1
         WHERE f.order_id IS NULL AND f.step = p_step AND f.remaining > 0
        RETURNING f.transient, f.sqlstate, f.message, f.delay_ms
             INTO v_transient, p_sqlstate, p_message, p_delay_ms;
        IF NOT FOUND THEN
            p_delay_ms := 0;
            RETURN;
        END IF;
    END IF;
    IF v_transient IS NOT NULL THEN
        p_sqlstate := CASE WHEN v_transient THEN 'OFT01' ELSE 'OFP01' END;
        p_message := format('injected %s fault in %s', CASE WHEN v_transient THEN 'transient' ELSE 'permanent' END,
                            p_step);
    ELSIF p_sqlstate IS NOT NULL AND p_message IS NULL THEN
        p_message := format('injected %s fault in %s', p_sqlstate, p_step);
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._take_fault(text, text) IS
    'Internal: uses up one injected fault of the step for the order (its own first, else the one '
    'for every order): the SQLSTATE and message to raise (OFT01/OFP01 for a fail fault) and the '
    'ms to wait first; null, null, 0 when none.';

-- _checkpoint(workflow, steps, ms, now) → void: records that p_steps completed at p_now, having
-- taken p_ms milliseconds each: one statement for all the steps of a run.
CREATE OR REPLACE FUNCTION orderflow._checkpoint(p_wf orderflow.workflows, p_steps text[],
                                                 p_ms double precision[], p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_actor text;
BEGIN
    IF cardinality(p_steps) > 0 THEN
        -- The checkpoints, then their history rows (75_history.sql) with the attempts the
        -- checkpoints now hold: two statements, each on the order's rows only. (One statement
        -- with a data-modifying CTE would do on plain PostgreSQL; Citus plans such a CTE as a
        -- subplan whose result it ships to other nodes.)
        INSERT INTO orderflow.workflow_steps AS s (order_id, step, attempts, completed_at, total_ms)
        SELECT p_wf.order_id, c.step, 1, p_now, c.ms FROM unnest(p_steps, p_ms) AS c (step, ms)
        ON CONFLICT (order_id, step) DO UPDATE
            SET attempts = s.attempts + 1, completed_at = EXCLUDED.completed_at,
                total_ms = s.total_ms + EXCLUDED.total_ms;
        v_actor := orderflow._actor();  -- a value: on Citus the INSERT ... SELECT runs on the shard
        INSERT INTO orderflow.history (order_id, at, kind, step, outcome, attempt, duration_ms, actor)
        SELECT p_wf.order_id, p_now, 'step', s.step, 'succeeded', s.attempts, c.ms, v_actor
          FROM orderflow.workflow_steps s
          JOIN unnest(p_steps, p_ms) WITH ORDINALITY AS c (step, ms, n) ON c.step = s.step
         WHERE s.order_id = p_wf.order_id
         ORDER BY c.n;  -- their ids in the order the steps ran, whatever join the planner picks
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._checkpoint(orderflow.workflows, text[], double precision[], timestamptz) IS
    'Internal: writes the completion checkpoints of the steps of one run, and their history, in one statement.';

-- _run_steps(workflow, now) → workflow: runs the steps not yet completed, in order, each effect
-- in its own exception block, and returns the workflow row as it is afterwards. The checkpoints
-- of the steps that completed are written together after the loop (or before a failure is
-- handled), in the same transaction as their effects: both commit or neither does. The caller
-- holds the workflows row lock and passes the row as read under it. A failing step is handed to
-- _step_failed, which schedules a retry or fails and compensates the workflow.
CREATE OR REPLACE FUNCTION orderflow._run_steps(p_wf orderflow.workflows, p_now timestamptz)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_done    text[];
    v_ran     text[] := '{}';
    v_ms      double precision[] := '{}';
    v_step    text;
    v_faults  boolean;
    v_fault   record;     -- _take_fault's answer, for the current step (read only while v_faults)
    v_started timestamptz;
    v_waiting boolean := false;
    v_state   text;
    v_message text;
BEGIN
    -- A pending workflow was created in this transaction: none of its steps has run.
    IF p_wf.status = 'pending' THEN
        v_done := '{}';
    ELSE
        SELECT COALESCE(array_agg(step), '{}') INTO v_done FROM orderflow.workflow_steps
         WHERE order_id = p_wf.order_id AND completed_at IS NOT NULL;
    END IF;
    -- One look at the faults table per run instead of one update per step: this order's drills
    -- and the ones for every order (two probes of faults_scope, nothing else).
    v_faults := EXISTS (SELECT 1 FROM orderflow.faults
                         WHERE (order_id IS NULL OR order_id = p_wf.order_id) AND remaining > 0);
    FOREACH v_step IN ARRAY orderflow._steps() LOOP
        CONTINUE WHEN v_step = ANY (v_done);
        -- Taken outside the step's block, so that the fault is used up even though the
        -- step's subtransaction rolls back.
        IF v_faults THEN
            SELECT * INTO v_fault FROM orderflow._take_fault(v_step, p_wf.order_id);
        END IF;
        v_started := clock_timestamp();
        BEGIN
            -- Raised here, inside the step, as a real error of the step would be: the same
            -- handler, the same classification by SQLSTATE (step_errors), and a wait that a
            -- statement timeout cancels (57014 is not caught: the call stops).
            IF v_faults THEN
                IF v_fault.p_delay_ms > 0 THEN
                    PERFORM pg_sleep(v_fault.p_delay_ms / 1000.0);
                END IF;
                IF v_fault.p_sqlstate IS NOT NULL THEN
                    RAISE EXCEPTION USING ERRCODE = v_fault.p_sqlstate, MESSAGE = v_fault.p_message;
                END IF;
            END IF;
            CASE v_step
                WHEN 'charge' THEN v_waiting := orderflow._charge(p_wf, p_now);
                WHEN 'reserve' THEN PERFORM orderflow._reserve(p_wf, p_now);
                WHEN 'confirm' THEN PERFORM orderflow._confirm(p_wf, p_now);
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            -- This step's effect is gone; the steps before it stay done.
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
            PERFORM orderflow._checkpoint(p_wf, v_ran, v_ms, p_now);
            RETURN orderflow._step_failed(p_wf, v_step, v_state, v_message,
                                          1000 * extract(epoch FROM clock_timestamp() - v_started), p_now);
        END;
        IF v_waiting THEN
            -- The charge is at the payment provider: report_effect() completes the step. The
            -- workflow waits on it; the effect, not the workflow, is what is scheduled.
            PERFORM orderflow._checkpoint(p_wf, v_ran, v_ms, p_now);
            IF p_wf.status = 'charging' AND p_wf.next_retry_at = 'infinity' THEN
                RETURN p_wf;
            END IF;
            RETURN orderflow._transition(p_wf, 'charging', p_now, 'infinity');
        END IF;
        v_ran := v_ran || v_step;
        v_ms := v_ms || 1000 * extract(epoch FROM clock_timestamp() - v_started)::double precision;
    END LOOP;
    PERFORM orderflow._checkpoint(p_wf, v_ran, v_ms, p_now);
    RETURN orderflow._transition(p_wf, 'completed', p_now);
END
$$;
COMMENT ON FUNCTION orderflow._run_steps(orderflow.workflows, timestamptz) IS
    'Internal: runs the workflow''s unfinished steps in order, each effect in its own subtransaction, '
    'their checkpoints in one statement; a failing step goes to _step_failed. Returns the row after. '
    'Caller holds the lock.';

-- _backoff(base, multiplier, max, jitter, attempt) → double precision: the wait in ms after
-- failed attempt n, min(max, base * multiplier^(n-1)) shortened by up to `jitter` of itself at
-- random. The one backoff of the schema: step retries (retry_policies) and provider calls
-- (effect_policies, 45_effects.sql).
CREATE OR REPLACE FUNCTION orderflow._backoff(p_base_ms integer, p_multiplier numeric,
                                              p_max_ms integer, p_jitter numeric, p_attempt integer)
RETURNS double precision
LANGUAGE sql VOLATILE
AS $$
    SELECT least(p_max_ms::double precision,
                 p_base_ms * power(p_multiplier::double precision, p_attempt - 1))
           * (1 - p_jitter::double precision * random())
$$;
COMMENT ON FUNCTION orderflow._backoff(integer, numeric, integer, numeric, integer) IS
    'Internal: backoff after failed attempt n: min(max, base*multiplier^(n-1)) * (1 - jitter*random()).';

-- _backoff_ms(policy, attempt) → double precision: _backoff with a step's retry policy.
CREATE OR REPLACE FUNCTION orderflow._backoff_ms(p_policy orderflow.retry_policies, p_attempt integer)
RETURNS double precision
LANGUAGE sql VOLATILE
AS $$
    SELECT orderflow._backoff(p_policy.base_delay_ms, p_policy.multiplier, p_policy.max_delay_ms,
                              p_policy.jitter, p_attempt)
$$;
COMMENT ON FUNCTION orderflow._backoff_ms(orderflow.retry_policies, integer) IS
    'Internal: the backoff after failed attempt n of a step, by its retry policy (_backoff).';

-- _step_failed(workflow, step, sqlstate, message, ms, now) → workflow: records the failed
-- attempt (the stable sentence of step_errors for clients, the message as internal detail); a
-- transient failure with attempts left schedules a retry (status waits on the step), anything
-- else fails the workflow and compensates its completed steps. Returns the workflow row after.
CREATE OR REPLACE FUNCTION orderflow._step_failed(p_wf orderflow.workflows, p_step text,
                                                  p_sqlstate text, p_message text,
                                                  p_ms double precision, p_now timestamptz)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_error     orderflow.step_errors;
    v_sentence  text;
    v_attempts  integer;
    v_policy    orderflow.retry_policies;
BEGIN
    SELECT * INTO v_error FROM orderflow.step_errors WHERE sqlstate = p_sqlstate;
    v_sentence := COALESCE(v_error.sentence, 'internal error');
    IF v_error.sqlstate IS NULL THEN
        RAISE LOG 'orderflow: order % step % failed with SQLSTATE %: %', p_wf.order_id, p_step,
            p_sqlstate, p_message;
    END IF;
    INSERT INTO orderflow.workflow_steps AS s
           (order_id, step, attempts, last_error, last_detail, last_sqlstate, total_ms)
    VALUES (p_wf.order_id, p_step, 1, v_sentence, p_message, p_sqlstate, p_ms)
    ON CONFLICT (order_id, step) DO UPDATE
        SET attempts = s.attempts + 1, last_error = EXCLUDED.last_error,
            last_detail = EXCLUDED.last_detail, last_sqlstate = EXCLUDED.last_sqlstate,
            total_ms = s.total_ms + EXCLUDED.total_ms
    RETURNING attempts INTO v_attempts;
    SELECT * INTO v_policy FROM orderflow.retry_policies WHERE step = p_step;

    IF COALESCE(v_error.transient, false) AND v_attempts < COALESCE(v_policy.max_attempts, 1) THEN
        PERFORM orderflow._record(p_wf.order_id, p_now, 'step', p_step, 'retry', NULL, v_attempts, p_ms,
                                  v_sentence, p_sqlstate, p_detail => p_message);
        RETURN orderflow._transition(
            p_wf, orderflow._status_of_step(p_step), p_now,
            p_now + orderflow._backoff_ms(v_policy, v_attempts) * interval '1 millisecond');
    END IF;

    UPDATE orderflow.workflow_steps SET failed_at = p_now
     WHERE order_id = p_wf.order_id AND step = p_step;
    PERFORM orderflow._record(p_wf.order_id, p_now, 'step', p_step, 'failed', NULL, v_attempts, p_ms,
                              v_sentence, p_sqlstate, p_detail => p_message);
    PERFORM orderflow._compensate(p_wf, p_now);
    RETURN orderflow._transition(
        p_wf, 'failed', p_now, NULL,
        CASE WHEN v_error.transient
             THEN format('%s failed after %s attempts: %s', p_step, v_attempts, v_sentence)
             ELSE format('%s failed: %s', p_step, v_sentence) END,
        p_message);
END
$$;
COMMENT ON FUNCTION orderflow._step_failed(orderflow.workflows, text, text, text, double precision, timestamptz) IS
    'Internal: records a failed attempt; retries transient failures (step_errors) per retry_policies, '
    'else fails the workflow and compensates its completed steps in reverse order. Returns the row after.';

-- _process_order(order_id, amount, item, payment_method) → jsonb: process_order once its arguments are checked
-- (by process_order or process_order_request, each for its own shape of input).
CREATE OR REPLACE FUNCTION orderflow._process_order(p_order_id text, p_amount numeric, p_item text,
                                                    p_payment_method text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_wf    orderflow.workflows;
    v_now   timestamptz;
    v_found boolean;
BEGIN
    -- Read path, no lock: only a finished workflow is answered from here (it never changes
    -- again except by cancel_order, which takes the lock).
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id;
    v_found := FOUND;
    IF v_found AND v_wf.finished_at IS NOT NULL THEN
        PERFORM orderflow._check_same_order(v_wf, p_amount, p_item, p_payment_method);
        RETURN orderflow._workflow_state(v_wf);
    END IF;

    v_now := orderflow.clock_now();
    IF NOT v_found THEN
        IF p_amount IS NULL OR p_item IS NULL THEN
            RAISE EXCEPTION '% is required to start a workflow',
                CASE WHEN p_amount IS NULL THEN 'amount' ELSE 'item' END
                USING ERRCODE = '22023';
        END IF;
        -- The row we insert is ours (locked) until we commit.
        v_wf := orderflow._create_workflow(p_order_id, p_amount, p_item, p_payment_method, v_now);
    ELSE
        v_wf := NULL;
    END IF;

    -- Write path: lock this order's row unless we created it, then read it as it is now
    -- (whoever held it before us has committed).
    IF v_wf.order_id IS NULL THEN
        SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id FOR UPDATE;
        IF NOT FOUND THEN
            -- It existed when we looked, finished, and prune() removed it since.
            RAISE EXCEPTION 'orderId % was used by a workflow that has been pruned', p_order_id
                USING ERRCODE = 'OF409';
        END IF;
        PERFORM orderflow._check_same_order(v_wf, p_amount, p_item, p_payment_method);
        v_now := orderflow.clock_now();  -- the decision is taken now, after the wait
    END IF;
    -- A finished workflow is answered; a suspended one waits for an operator (resume_now).
    IF v_wf.next_retry_at IS NOT NULL THEN
        v_wf := orderflow._run_steps(v_wf, v_now);
    END IF;
    RETURN orderflow._workflow_state(v_wf);
END
$$;
COMMENT ON FUNCTION orderflow._process_order(text, numeric, text, text) IS
    'Internal: process_order with checked arguments. Takes the workflow''s row lock; only finished '
    'workflows are answered without it.';

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
BEGIN
    -- A client's call (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'client', true);
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    IF p_amount IS NOT NULL THEN
        PERFORM orderflow._check_amount(p_amount);
    END IF;
    IF p_item IS NOT NULL THEN
        PERFORM orderflow._check_text('item', p_item, 200);
    END IF;
    RETURN orderflow._process_order(p_order_id, p_amount, p_item, NULL);
END
$$;
COMMENT ON FUNCTION orderflow.process_order(text, numeric, text) IS
    'Starts or resumes the workflow of an order (charge → reserve → confirm, each at most once) and '
    'returns its state. 22023 for bad arguments, OF409 when the order id is known with another '
    'amount or item. Takes the workflow''s row lock; only finished workflows are answered without it.';

-- process_order_request(order_id, request) → jsonb: POST /api/orders/process. Validates the JSON
-- body {"orderId", "amount"?, "item"?, "paymentMethod"?} (22023 with the field's sentence), then
-- process_order.
-- p_order_id is the body's orderId, passed apart so that a sharded deployment can route on it.
CREATE OR REPLACE FUNCTION orderflow.process_order_request(p_order_id text, p_request jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_order_id text;
    v_amount   jsonb;
    v_amount_n numeric;
    v_method   text;
BEGIN
    -- A client's call (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'client', true);
    PERFORM orderflow._check_object(p_request);
    v_order_id := orderflow._json_text(p_request, 'orderId', 200, true);
    IF p_order_id IS DISTINCT FROM v_order_id THEN
        RAISE EXCEPTION 'orderId must be passed as the first argument too, equal to the body''s'
            USING ERRCODE = '22023';
    END IF;
    v_amount := p_request -> 'amount';
    IF v_amount IS NOT NULL AND jsonb_typeof(v_amount) NOT IN ('number', 'null') THEN
        RAISE EXCEPTION 'amount must be a number greater than 0 and less than 10000000000'
            USING ERRCODE = '22023';
    END IF;
    v_amount_n := (v_amount #>> '{}')::numeric;
    IF v_amount_n IS NOT NULL THEN
        PERFORM orderflow._check_amount(v_amount_n);
    END IF;
    v_method := orderflow._json_text(p_request, 'paymentMethod', 100, false);
    IF v_method !~ '^pm_[A-Za-z0-9_]{1,96}$' THEN
        RAISE EXCEPTION 'paymentMethod must be a PaymentMethod id (pm_ followed by letters, digits or _)'
            USING ERRCODE = '22023';
    END IF;
    RETURN orderflow._process_order(v_order_id, v_amount_n,
                                    orderflow._json_text(p_request, 'item', 200, false), v_method);
END
$$;
COMMENT ON FUNCTION orderflow.process_order_request(text, jsonb) IS
    'POST /api/orders/process: validates the JSON body (orderId required; amount and item optional for '
    'a known order) and calls process_order. 22023 with the field''s sentence for bad input.';
