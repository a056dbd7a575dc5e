-- An order's history (013_history.sql): what happened, step by step, with times, and who
-- caused it. Rows are written where what they record happens, in its transaction:
--   transition  _transition (15_state_machine.sql): every status change, from and to
--   step        _checkpoint (a run's completed steps, one statement), _step_failed (a failed
--               attempt: retry or failed), _after_effect (a charge the provider confirmed),
--               _compensate (an undone step)
--   call        report_effect (45_effects.sql): every provider call's outcome (HTTP status,
--               object id, the state it left the call in)
--   action      resume_now, redrive: what an operator did
-- Who caused it is the transaction's orderflow.actor, set (set_config, transaction-local) by the
-- entry point first thing (process_order*: client, the default; resume_due / janitor_tick /
-- claim_effects: janitor; cancel_order*: cancel; resume_now / redrive / retry_workflow /
-- reset_circuit / console_*: operator), read by _actor(). Not a function SET clause: PostgreSQL
-- 15 lets only a superuser create a function that sets a custom parameter, and the schema owner
-- need not be one.
-- Reads take no lock. get_workflow does not read history: it stays one index probe.

-- _actor() → text: who caused what this transaction does (client unless an entry point said).
CREATE OR REPLACE FUNCTION orderflow._actor()
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT COALESCE(NULLIF(current_setting('orderflow.actor', true), ''), 'client')
$$;
COMMENT ON FUNCTION orderflow._actor() IS
    'Internal: client, janitor, operator or cancel: the setting orderflow.actor of the entry point.';

-- _record(order_id, at, kind, step, outcome, ...) → void: appends one history row.
CREATE OR REPLACE FUNCTION orderflow._record(p_order_id text, p_at timestamptz, p_kind text,
                                             p_step text, p_outcome text,
                                             p_from_status text DEFAULT NULL,
                                             p_attempt integer DEFAULT NULL,
                                             p_duration_ms double precision DEFAULT NULL,
                                             p_error text DEFAULT NULL, p_sqlstate text DEFAULT NULL,
                                             p_http_status integer DEFAULT NULL,
                                             p_object_id text DEFAULT NULL, p_provider text DEFAULT NULL,
                                             p_detail text DEFAULT NULL, p_actor text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    -- PL/pgSQL, not SQL: its INSERT's plan is kept per session (a SQL function that cannot be
    -- inlined, as an INSERT cannot, is planned again at every call).
    INSERT INTO orderflow.history (order_id, at, kind, step, outcome, from_status, attempt,
                                   duration_ms, error, sqlstate, http_status, object_id, provider,
                                   actor, detail)
    VALUES (p_order_id, p_at, p_kind, p_step, p_outcome, p_from_status, p_attempt, p_duration_ms,
            p_error, p_sqlstate, p_http_status, p_object_id, p_provider,
            COALESCE(p_actor, orderflow._actor()), left(p_detail, 2000));
END
$$;
COMMENT ON FUNCTION orderflow._record(text, timestamptz, text, text, text, text, integer, double precision, text, text, integer, text, text, text, text) IS
    'Internal: appends one row to the order''s history (actor: the transaction''s, unless given).';

-- order_history(order_id) → jsonb: the order's timeline, oldest first: {orderId, status,
-- events: [{at, kind, step, outcome, from, attempt, durationMs, error, sqlstate, httpStatus,
-- objectId, provider, actor, detail}]}, beginning with its creation. OF404 unknown order.
CREATE OR REPLACE FUNCTION orderflow.order_history(p_order_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_wf     orderflow.workflows;
    v_events jsonb;
BEGIN
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', p_order_id USING ERRCODE = 'OF404';
    END IF;
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'at', orderflow._iso(h.at), 'kind', h.kind, 'step', h.step, 'outcome', h.outcome,
               'from', h.from_status, 'attempt', h.attempt,
               'durationMs', round(h.duration_ms::numeric, 3), 'error', h.error,
               'sqlstate', h.sqlstate, 'httpStatus', h.http_status, 'objectId', h.object_id,
               'provider', h.provider, 'actor', h.actor, 'detail', h.detail)) ORDER BY h.id)
      INTO v_events
      FROM orderflow.history h WHERE h.order_id = p_order_id;
    RETURN jsonb_build_object(
        'orderId', v_wf.order_id, 'status', v_wf.status,
        'events', jsonb_build_array(jsonb_build_object(
                      'at', orderflow._iso(v_wf.created_at), 'kind', 'created', 'outcome', 'pending',
                      'amount', trim_scale(v_wf.amount), 'item', v_wf.item))
                  || COALESCE(v_events, '[]'));
END
$$;
COMMENT ON FUNCTION orderflow.order_history(text) IS
    'Operators: the order''s timeline (creation, every transition, step attempt, provider call and '
    'operator action with times, outcomes, errors and who caused them), oldest first. OF404 unknown.';

-- step_report(since) → setof rows: per step and provider (null: in the database) over the
-- last p_since: attempts, successes, success rate, retries needed (attempts that failed and
-- were tried again), failures (attempts that ended the step), average and p95 duration in ms,
-- and the five most frequent errors with their counts. 22023 for a negative or null interval.
CREATE OR REPLACE FUNCTION orderflow.step_report(p_since interval DEFAULT interval '24 hours')
RETURNS TABLE (step text, provider text, attempts bigint, successes bigint, success_rate numeric,
               retries bigint, failures bigint, avg_ms numeric, p95_ms numeric, top_errors jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_from timestamptz;
BEGIN
    IF p_since IS NULL OR p_since < interval '0' THEN
        RAISE EXCEPTION 'since must be a positive interval' USING ERRCODE = '22023';
    END IF;
    v_from := orderflow.clock_now() - p_since;
    RETURN QUERY
    WITH a AS (
        SELECT h.step, h.provider, h.outcome, h.duration_ms, h.error
          FROM orderflow.history h
         WHERE h.at >= v_from AND h.kind IN ('step', 'call') AND h.outcome <> 'compensated'),
    errors AS (
        SELECT e.step, e.provider,
               jsonb_agg(jsonb_build_object('error', e.error, 'count', e.n) ORDER BY e.n DESC, e.error) AS top
          FROM (SELECT a.step, a.provider, a.error, count(*) AS n,
                       row_number() OVER (PARTITION BY a.step, a.provider ORDER BY count(*) DESC, a.error) AS r
                  FROM a WHERE a.error IS NOT NULL AND a.outcome <> 'succeeded'
                 GROUP BY a.step, a.provider, a.error) e
         WHERE e.r <= 5
         GROUP BY e.step, e.provider)
    SELECT a.step, a.provider, count(*),
           count(*) FILTER (WHERE a.outcome = 'succeeded'),
           round(count(*) FILTER (WHERE a.outcome = 'succeeded')::numeric / count(*), 4),
           count(*) FILTER (WHERE a.outcome IN ('retry', 'lookup')),
           count(*) FILTER (WHERE a.outcome IN ('failed', 'dead')),
           round(avg(a.duration_ms)::numeric, 3),
           round((percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms))::numeric, 3),
           COALESCE(errors.top, '[]')
      FROM a LEFT JOIN errors ON errors.step = a.step AND errors.provider IS NOT DISTINCT FROM a.provider
     GROUP BY a.step, a.provider, errors.top
     ORDER BY array_position(ARRAY['charge', 'reserve', 'confirm', 'refund', 'webhook'], a.step), a.provider NULLS FIRST;
END
$$;
COMMENT ON FUNCTION orderflow.step_report(interval) IS
    'Operators: per step and provider over the last p_since: attempts, successes, success rate, '
    'retries needed, failures, avg and p95 ms, top five errors. 22023 bad interval.';

-- step_health() → jsonb: for /metrics: per step and provider over the last hour {step,
-- provider, attempts, retries, failures}, and the stuck workflows (stuck_workflows): how many
-- and the age of the oldest. {"steps": [...], "stuck": n, "stuckOldestSeconds": s or null}.
CREATE OR REPLACE FUNCTION orderflow.step_health()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_stuck  bigint;
    v_oldest numeric;
BEGIN
    -- One pass over stuck_workflows for both figures.
    SELECT count(*), round(extract(epoch FROM max(s.age))) INTO v_stuck, v_oldest
      FROM orderflow.stuck_workflows s;
    RETURN jsonb_build_object(
        'steps', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                               'step', r.step, 'provider', r.provider, 'attempts', r.attempts,
                               'retries', r.retries, 'failures', r.failures))
                             FROM orderflow.step_report(interval '1 hour') r), '[]'),
        'stuck', v_stuck,
        'stuckOldestSeconds', v_oldest);
END
$$;
COMMENT ON FUNCTION orderflow.step_health() IS
    '/metrics: attempts, retries and failures per step and provider over the last hour, and the '
    'number and oldest age of stuck workflows.';
