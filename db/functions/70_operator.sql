-- The operator's SQL API: stock, fault drills, pruning, and the views an operator reads.

-- set_stock(item, on_hand) → integer: tracks the item with that stock (null stops tracking it).
CREATE OR REPLACE FUNCTION orderflow.set_stock(p_item text, p_on_hand integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orderflow._check_text('item', p_item, 200);
    IF p_on_hand IS NULL THEN
        DELETE FROM orderflow.inventory WHERE item = p_item;
        RETURN NULL;
    END IF;
    IF p_on_hand < 0 THEN
        RAISE EXCEPTION 'on_hand must not be negative' USING ERRCODE = '22023';
    END IF;
    INSERT INTO orderflow.inventory (item, on_hand, updated_at)
    VALUES (p_item, p_on_hand, orderflow.clock_now())
    ON CONFLICT (item) DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = EXCLUDED.updated_at;
    RETURN p_on_hand;
END
$$;
COMMENT ON FUNCTION orderflow.set_stock(text, integer) IS
    'Tracks an item with on_hand units in stock (upsert); null stops tracking it. 22023 bad arguments.';

-- _inject_fault(step, times, order_id, transient, delay_ms, sqlstate, message) → integer: checks
-- the arguments every form of inject_fault shares and stores the fault for that order (null:
-- every order), replacing the one it had for the step; times 0 clears it. A fail fault has
-- transient, a custom one (transient null) a delay, an SQLSTATE or both (017_fault_kinds.sql).
CREATE OR REPLACE FUNCTION orderflow._inject_fault(p_step text, p_times integer, p_order_id text,
                                                   p_transient boolean, p_delay_ms integer,
                                                   p_sqlstate text, p_message text)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF p_step IS NULL OR NOT p_step = ANY (orderflow._steps()) THEN
        RAISE EXCEPTION 'step must be one of charge, reserve, confirm' USING ERRCODE = '22023';
    END IF;
    IF p_times IS NULL OR p_times NOT BETWEEN 0 AND 1000000 THEN
        RAISE EXCEPTION 'times must be from 0 to 1000000' USING ERRCODE = '22023';
    END IF;
    IF p_times = 0 AND p_order_id IS NOT NULL THEN
        -- A cleared scoped drill leaves no row (the every-order row stays, at 0, as it always did).
        DELETE FROM orderflow.faults WHERE order_id = p_order_id AND step = p_step;
        RETURN 0;
    END IF;
    INSERT INTO orderflow.faults (step, order_id, remaining, transient, delay_ms, sqlstate, message, injected_at)
    VALUES (p_step, p_order_id, p_times, p_transient, p_delay_ms, p_sqlstate, p_message, orderflow.clock_now())
    ON CONFLICT ON CONSTRAINT faults_scope DO UPDATE
        SET remaining = EXCLUDED.remaining, transient = EXCLUDED.transient,
            delay_ms = EXCLUDED.delay_ms, sqlstate = EXCLUDED.sqlstate, message = EXCLUDED.message,
            injected_at = EXCLUDED.injected_at;
    RETURN p_times;
END
$$;
COMMENT ON FUNCTION orderflow._inject_fault(text, integer, text, boolean, integer, text, text) IS
    'Internal: checks the step and times of inject_fault and stores the fault (fail or custom) for '
    'one order (null: every order), replacing its previous one; times 0 clears it. 22023 bad arguments.';

-- inject_fault(step, times, transient) → integer: the next p_times runs of p_step fail, for
-- every order (test systems; on a live system scope the drill to one order, below).
CREATE OR REPLACE FUNCTION orderflow.inject_fault(p_step text, p_times integer, p_transient boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_transient IS NULL THEN
        RAISE EXCEPTION 'transient must be true or false' USING ERRCODE = '22023';
    END IF;
    RETURN orderflow._inject_fault(p_step, p_times, NULL, p_transient, 0, NULL, NULL);
END
$$;
COMMENT ON FUNCTION orderflow.inject_fault(text, integer, boolean) IS
    'Drills and tests: the next p_times runs of the step fail for every order, transiently (retried) '
    'or for good; p_times 0 clears. 22023 bad arguments.';

-- inject_fault(step, times, transient, order_id) → integer: the next p_times runs of p_step
-- fail for that one order only; the order may not exist yet (the fault waits for it). Its own
-- fault is used before one for every order. 22023 bad arguments, a missing order id included
-- (null would break every order: that is the 3-argument form, asked for by name).
CREATE OR REPLACE FUNCTION orderflow.inject_fault(p_step text, p_times integer, p_transient boolean,
                                                  p_order_id text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    IF p_transient IS NULL THEN
        RAISE EXCEPTION 'transient must be true or false' USING ERRCODE = '22023';
    END IF;
    RETURN orderflow._inject_fault(p_step, p_times, p_order_id, p_transient, 0, NULL, NULL);
END
$$;
COMMENT ON FUNCTION orderflow.inject_fault(text, integer, boolean, text) IS
    'Scoped drills: the next p_times runs of the step fail for that one order only (it may not '
    'exist yet), transiently or for good; p_times 0 clears. Other orders are untouched. 22023 bad '
    'arguments.';

-- inject_fault(step, times, order_id, delay_ms, sqlstate, message) → integer: custom scoped
-- drills: the next p_times runs of p_step for that one order (it may not exist yet) wait
-- p_delay_ms inside the step, then raise p_sqlstate with p_message (default "injected
-- <sqlstate> fault in <step>"); a null p_sqlstate only delays the step, which then runs. The
-- raised error is handled as one of that SQLSTATE raised by the step itself: step_errors decides
-- retry or failure and the sentence clients see; the message stays the operators' detail; a
-- statement timeout during the wait cancels the call. Replaces the order's fault of that step;
-- p_times 0 clears it. 22023 bad arguments: a missing order id, p_delay_ms not from 0 to 60000,
-- p_sqlstate not five digits or capitals of an error class (00, 01 and 02 are not errors), a
-- message without an SQLSTATE or longer than 500 characters, neither a delay nor an SQLSTATE.
-- Every argument is required (no defaults): no call of the other forms can resolve to this one.
CREATE OR REPLACE FUNCTION orderflow.inject_fault(p_step text, p_times integer, p_order_id text,
                                                  p_delay_ms integer, p_sqlstate text, p_message text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    IF p_delay_ms IS NULL OR p_delay_ms NOT BETWEEN 0 AND 60000 THEN
        RAISE EXCEPTION 'delay_ms must be from 0 to 60000' USING ERRCODE = '22023';
    END IF;
    IF p_sqlstate IS NOT NULL AND (p_sqlstate !~ '^[0-9A-Z]{5}$' OR left(p_sqlstate, 2) IN ('00', '01', '02')) THEN
        RAISE EXCEPTION 'sqlstate must be five digits or capital letters, of an error class (not 00, 01 or 02)'
            USING ERRCODE = '22023';
    END IF;
    IF p_message IS NOT NULL THEN
        IF p_sqlstate IS NULL THEN
            RAISE EXCEPTION 'message needs a sqlstate' USING ERRCODE = '22023';
        END IF;
        IF char_length(p_message) NOT BETWEEN 1 AND 500 THEN
            RAISE EXCEPTION 'message must be a string of 1 to 500 characters' USING ERRCODE = '22023';
        END IF;
    END IF;
    IF p_times > 0 AND p_delay_ms = 0 AND p_sqlstate IS NULL THEN  -- (a null p_times: 22023 below)
        RAISE EXCEPTION 'a fault needs a delay_ms above 0 or a sqlstate' USING ERRCODE = '22023';
    END IF;
    RETURN orderflow._inject_fault(p_step, p_times, p_order_id, NULL, p_delay_ms, p_sqlstate, p_message);
END
$$;
COMMENT ON FUNCTION orderflow.inject_fault(text, integer, text, integer, text, text) IS
    'Custom scoped drills: the next p_times runs of the step for that one order wait p_delay_ms, then '
    'raise p_sqlstate with p_message (handled as that error raised by the step; null p_sqlstate: the '
    'step runs, late); p_times 0 clears. 22023 bad arguments.';

-- prune(older_than) → bigint: deletes expired idempotency keys, the workflows that finished more
-- than p_older_than ago (with their steps, reservations and history, taken off the finished counts) and
-- the outbox events published more than p_older_than ago (never one unpublished or with a
-- webhook delivery still open; readers of read_events must keep up within p_older_than), and
-- webhook deliveries done that long ago (dead ones stay as dead letters). The ledger and the orders stay. Returns the number of keys and workflows deleted.
-- Locks: the idempotency_keys rows, then the workflows rows it deletes (its DELETE takes them;
-- a workflow changed meanwhile is re-checked and kept), then their steps, reservations and history, then
-- outbox rows.
CREATE OR REPLACE FUNCTION orderflow.prune(p_older_than interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now       timestamptz := orderflow.clock_now();
    v_cutoff    timestamptz;
    v_keys      bigint;
    v_workflows bigint;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval' USING ERRCODE = '22023';
    END IF;
    BEGIN
        v_cutoff := v_now - p_older_than;
    EXCEPTION WHEN datetime_field_overflow THEN
        -- Older than the range of timestamps: nothing finished that long ago.
        v_cutoff := '-infinity';
    END;
    DELETE FROM orderflow.idempotency_keys WHERE expires_at <= v_now;
    GET DIAGNOSTICS v_keys = ROW_COUNT;

    WITH old AS (
        DELETE FROM orderflow.workflows w
         WHERE w.finished_at <= v_cutoff
           -- A refund still at the provider keeps its workflow.
           AND NOT EXISTS (SELECT 1 FROM orderflow.effects e
                            WHERE e.order_id = w.order_id AND e.kind <> 'webhook' AND e.state = 'open')
        RETURNING w.order_id, w.status),
    steps AS (
        DELETE FROM orderflow.workflow_steps s USING old WHERE s.order_id = old.order_id),
    reservations AS (
        DELETE FROM orderflow.reservations r USING old WHERE r.order_id = old.order_id),
    history AS (
        DELETE FROM orderflow.history h USING old WHERE h.order_id = old.order_id),
    counted AS (
        INSERT INTO orderflow.finished_count_deltas (order_id, status, delta)
        SELECT order_id, status, -1 FROM old)
    SELECT count(*) INTO v_workflows FROM old;

    -- Events stay while a delivery of theirs is not done; delivered and abandoned deliveries go
    -- with them (dead ones stay: they are dead letters, with their own copy of the body).
    DELETE FROM orderflow.effects e
     WHERE e.kind = 'webhook' AND e.state IN ('succeeded', 'abandoned') AND e.finished_at <= v_cutoff;
    DELETE FROM orderflow.outbox o
     WHERE o.published_at <= v_cutoff
       -- A delivery has its event's order id: the join is by it too (colocated on Citus).
       AND NOT EXISTS (SELECT 1 FROM orderflow.effects e
                        WHERE e.order_id = o.order_id AND e.event_id = o.id AND e.state = 'open');
    RETURN v_keys + v_workflows;
END
$$;
COMMENT ON FUNCTION orderflow.prune(interval) IS
    'Deletes expired idempotency keys, workflows finished more than p_older_than ago (with their '
    'steps, reservations and history) and events published that long ago (never an unpublished one); keeps '
    'the ledger and orders. Returns keys and workflows deleted. 22023 for a negative interval.';

-- Views an operator reads.

-- _read_ledger() → the rows of ledger: every charge and refund with its sign and its order's
-- balance. The view selects from it, as the owner, for the reason given in 47_webhooks.sql above
-- webhook_subscriptions (operators are not granted payments; on Citus a view reads the shards
-- with its reader's rights). The window is per order, so on Citus it runs on the shards.
DROP VIEW IF EXISTS orderflow.ledger;
CREATE OR REPLACE FUNCTION orderflow._read_ledger()
RETURNS TABLE (order_id text, kind text, amount numeric, signed_amount numeric,
               order_balance numeric, idempotency_key text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.order_id,
           p.kind,
           p.amount,
           CASE p.kind WHEN 'charge' THEN p.amount ELSE -p.amount END,
           sum(CASE p.kind WHEN 'charge' THEN p.amount ELSE -p.amount END) OVER (PARTITION BY p.order_id),
           p.idempotency_key,
           p.created_at
      FROM orderflow.payments p
$$;
COMMENT ON FUNCTION orderflow._read_ledger() IS
    'Internal (the view ledger, as its owner): every charge and refund, signed, with its order''s balance.';

CREATE VIEW orderflow.ledger AS
SELECT l.order_id,
       l.kind,
       l.amount::numeric(12,2) AS amount,  -- the column's type, as payments has it
       l.signed_amount,
       l.order_balance,
       l.idempotency_key,
       l.created_at
  FROM orderflow._read_ledger() l;
COMMENT ON VIEW orderflow.ledger IS
    'Every charge and refund, with its sign and the balance of its order (0 once refunded).';

CREATE OR REPLACE VIEW orderflow.step_stats AS
SELECT s.step,
       sum(s.attempts)::bigint AS attempts,
       count(s.completed_at) AS successes,
       (sum(s.attempts) - count(s.completed_at) - count(s.failed_at))::bigint AS retries,
       count(s.failed_at) AS failures,
       round((sum(s.total_ms) / NULLIF(sum(s.attempts), 0))::numeric, 3) AS avg_ms
  FROM orderflow.workflow_steps s
 GROUP BY s.step
 ORDER BY array_position(orderflow._steps(), s.step);
COMMENT ON VIEW orderflow.step_stats IS
    'Per step: attempts, successes, retries (failed attempts retried or awaiting retry), failures '
    '(attempts that failed the workflow) and average milliseconds per attempt.';

DROP VIEW IF EXISTS orderflow.stuck_workflows;
-- The clock is read once, in a materialized CTE: on Citus that runs on the coordinator, where a
-- pinned clock (a setting of the session) is seen, and its value goes to the shards.
CREATE VIEW orderflow.stuck_workflows AS
WITH clock AS MATERIALIZED (SELECT orderflow.clock_now() AS now)
SELECT w.order_id,
       w.status,
       w.created_at,
       w.updated_at,
       w.next_retry_at,
       clock.now - w.created_at AS age,
       s.step AS waiting_step,
       s.attempts,
       s.last_error,
       s.last_detail,
       w.error,
       w.error_detail
  FROM orderflow.workflows w
  CROSS JOIN clock
  CROSS JOIN orderflow.settings st
  LEFT JOIN LATERAL (
        SELECT st.step, r.attempts, r.last_error, r.last_detail
          FROM unnest(orderflow._steps()) WITH ORDINALITY AS st (step, n)
          LEFT JOIN orderflow.workflow_steps r ON r.order_id = w.order_id AND r.step = st.step
         WHERE r.completed_at IS NULL
         ORDER BY st.n LIMIT 1) s ON true
 WHERE w.finished_at IS NULL
   AND (w.status = 'suspended' OR w.created_at < clock.now - st.stuck_after);
COMMENT ON VIEW orderflow.stuck_workflows IS
    'Unfinished workflows that are suspended or were created longer ago than settings.stuck_after, '
    'with the step they wait on and the internal detail of their last error.';
