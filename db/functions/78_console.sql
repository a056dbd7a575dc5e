-- What the operators' console (src/admin/) calls, as orderflow_operator: one function per page
-- and one per kind of action, each a thin composition of the operator API (the console has no
-- SQL and no rule of its own). Actions are recorded in the order's history with where they came
-- from (p_source: "console <remote address>").

-- console_overview() → jsonb: the overview page: {counts: {status: n}, stuck: [...], failing:
-- [...] (each {orderId, status, step, attempts, error, updatedAt}), circuits: provider_health(),
-- deadLetters: n, deadLetterList: the newest 20, chart: [{hour, step, attempts, retries,
-- failures}]} over the last 24 hours.
CREATE OR REPLACE FUNCTION orderflow.console_overview()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_now  timestamptz := orderflow.clock_now();
    v_from timestamptz := date_trunc('hour', orderflow.clock_now()) - interval '23 hours';
BEGIN
    RETURN jsonb_build_object(
        'at', orderflow._iso(v_now),
        'counts', orderflow.workflow_counts(),
        'stuck', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                               'orderId', s.order_id, 'status', s.status, 'step', s.waiting_step,
                               'attempts', s.attempts, 'error', COALESCE(s.error, s.last_error),
                               'ageSeconds', round(extract(epoch FROM s.age)),
                               'nextRetryAt', orderflow._iso(s.next_retry_at), 'updatedAt', orderflow._iso(s.updated_at))
                             ORDER BY s.created_at)
                             FROM (SELECT * FROM orderflow.stuck_workflows ORDER BY created_at LIMIT 20) s), '[]'),
        'failing', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                 'orderId', w.order_id, 'status', w.status, 'error', w.error, 'run', w.run,
                                 'updatedAt', orderflow._iso(w.finished_at)) ORDER BY w.finished_at DESC)
                               FROM (SELECT * FROM orderflow.workflows
                                      WHERE status = 'failed' AND finished_at >= v_now - interval '24 hours'
                                      ORDER BY finished_at DESC LIMIT 20) w), '[]'),
        'circuits', orderflow.provider_health(),
        'deadLetters', (SELECT count(*) FROM orderflow.dead_letters),
        'deadLetterList', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                                'id', d.id, 'kind', d.kind, 'provider', d.provider, 'orderId', d.order_id,
                                'eventId', d.event_id, 'attempts', d.attempts, 'lastError', d.last_error,
                                'diedAt', orderflow._iso(d.died_at)) ORDER BY d.died_at DESC)
                              FROM (SELECT * FROM orderflow.dead_letters ORDER BY died_at DESC LIMIT 20) d), '[]'),
        'chart', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                               'hour', orderflow._iso(c.hour), 'step', c.step, 'attempts', c.attempts,
                               'retries', c.retries, 'failures', c.failures) ORDER BY c.hour, c.step)
                             FROM (SELECT date_trunc('hour', h.at) AS hour, h.step,
                                          count(*) AS attempts,
                                          count(*) FILTER (WHERE h.outcome IN ('retry', 'lookup')) AS retries,
                                          count(*) FILTER (WHERE h.outcome IN ('failed', 'dead')) AS failures
                                     FROM orderflow.history h
                                    WHERE h.at >= v_from AND h.kind IN ('step', 'call') AND h.outcome <> 'compensated'
                                    GROUP BY 1, 2) c), '[]'));
END
$$;
COMMENT ON FUNCTION orderflow.console_overview() IS
    'Console: counts by status, stuck and failing orders, circuits, dead letters and a 24-hour chart '
    'of attempts, retries and failures per step.';

-- console_order(order_id) → jsonb: the order page: {state, history, ledger, calls}. OF404 unknown.
-- One statement per part: on Citus a statement that reads the order's shard runs whole on its
-- worker, where get_workflow and order_history (queries of their own) could not run inside it.
CREATE OR REPLACE FUNCTION orderflow.console_order(p_order_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_state   jsonb := orderflow.get_workflow(p_order_id);  -- OF404 first, as before any other part
    v_history jsonb := orderflow.order_history(p_order_id);
    v_ledger  jsonb;
    v_calls   jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_build_object(
               'run', p.run, 'kind', p.kind, 'amount', trim_scale(p.amount),
               'signedAmount', trim_scale(CASE p.kind WHEN 'charge' THEN p.amount ELSE -p.amount END),
               'balance', trim_scale(p.balance),
               'idempotencyKey', p.idempotency_key, 'createdAt', orderflow._iso(p.created_at))
             ORDER BY p.id)
      INTO v_ledger
      FROM (SELECT x.*, sum(CASE x.kind WHEN 'charge' THEN x.amount ELSE -x.amount END)
                            OVER (ORDER BY x.id) AS balance
              FROM orderflow.payments x WHERE x.order_id = p_order_id) p;
    SELECT jsonb_agg(jsonb_build_object(
               'id', e.id, 'run', e.run, 'kind', e.kind, 'provider', e.provider,
               'state', e.state, 'phase', e.phase, 'idempotencyKey', e.idempotency_key,
               'attempts', e.attempts, 'objectId', e.object_id, 'lastOutcome', e.last_outcome,
               'lastHttpStatus', e.last_http_status,
               'lastError', e.last_error, 'nextAttemptAt', orderflow._iso(e.next_attempt_at),
               'updatedAt', orderflow._iso(e.updated_at)) ORDER BY e.id)
      INTO v_calls
      FROM orderflow.effects e WHERE e.order_id = p_order_id;
    RETURN jsonb_build_object('state', v_state, 'history', v_history,
                              'ledger', COALESCE(v_ledger, '[]'), 'calls', COALESCE(v_calls, '[]'));
END
$$;
COMMENT ON FUNCTION orderflow.console_order(text) IS
    'Console: an order''s state, timeline, ledger rows and provider calls. OF404 unknown order.';

-- console_action(order_id, action, reason, source) → jsonb: an operator's action from the
-- console — cancel (with p_reason), resume_now, retry — recorded in the order's history with
-- p_source, then done; returns the order's state. 22023 unknown action; the action's own errors
-- (OF404, OF409) as they are.
CREATE OR REPLACE FUNCTION orderflow.console_action(p_order_id text, p_action text, p_reason text,
                                                    p_source text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'operator', true);
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    IF p_action IS NULL OR p_action NOT IN ('cancel', 'resume_now', 'retry') THEN
        RAISE EXCEPTION 'action must be cancel, resume_now or retry' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orderflow.workflows WHERE order_id = p_order_id) THEN
        RAISE EXCEPTION 'order % not found', p_order_id USING ERRCODE = 'OF404';
    END IF;
    PERFORM orderflow._record(p_order_id, orderflow.clock_now(), 'action', 'console_' || p_action, 'requested',
                              p_detail => concat_ws(' — ', left(p_source, 200), left(p_reason, 500)));
    RETURN CASE p_action
        WHEN 'cancel' THEN orderflow.cancel_order(p_order_id, COALESCE(p_reason, 'cancelled by an operator'))
        WHEN 'resume_now' THEN orderflow.resume_now(p_order_id)
        ELSE orderflow.retry_workflow(p_order_id) END;
END
$$;
COMMENT ON FUNCTION orderflow.console_action(text, text, text, text) IS
    'Console: cancel (with a reason), resume_now or retry an order, recorded in its history with the '
    'source; returns its state. 22023 unknown action, OF404, OF409.';

-- console_redrive(effect_id, source) → integer: redrives one dead letter (1, or 0 when it is not
-- dead any more), recorded in its order's history with p_source. OF404 unknown call.
CREATE OR REPLACE FUNCTION orderflow.console_redrive(p_effect_id bigint, p_source text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_order_id text;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'operator', true);
    SELECT order_id INTO v_order_id FROM orderflow.effects WHERE id = p_effect_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'call % not found', p_effect_id USING ERRCODE = 'OF404';
    END IF;
    PERFORM orderflow._record(v_order_id, orderflow.clock_now(), 'action', 'console_redrive', 'requested',
                              p_detail => concat_ws(' — ', left(p_source, 200), 'call ' || p_effect_id));
    RETURN orderflow.redrive(p_effect_id => p_effect_id, p_per_second => 1000);
END
$$;
COMMENT ON FUNCTION orderflow.console_redrive(bigint, text) IS
    'Console: redrives one dead letter (1, or 0 if it is no longer dead), recorded with the source. OF404.';
