-- The workflow state document (DESIGN.md §3), built in one query from a workflow row and its
-- step rows. Reads only: no lock is taken, so replays of finished workflows never queue.
-- _workflow_state and get_workflow are PL/pgSQL so that their plans are kept per session (a SQL
-- function that is not inlined — these are not — is planned again on every call).

-- _steps() → text[]: the workflow's steps in the order they run.
CREATE OR REPLACE FUNCTION orderflow._steps()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ARRAY['charge', 'reserve', 'confirm']
$$;
COMMENT ON FUNCTION orderflow._steps() IS 'Internal: the steps of a workflow, in the order they run.';

-- _effect_state(effect) → jsonb: an effect as the state document shows it (no request, no key).
CREATE OR REPLACE FUNCTION orderflow._effect_state(p_effect orderflow.effects)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN p_effect.id IS NOT NULL THEN jsonb_build_object(
        'state', p_effect.state,
        'objectId', p_effect.object_id,
        'objectStatus', p_effect.object_status,
        'attempts', p_effect.attempts,
        'lastOutcome', p_effect.last_outcome,
        'lastError', p_effect.last_error,
        'nextAttemptAt', orderflow._iso(p_effect.next_attempt_at)) END
$$;
COMMENT ON FUNCTION orderflow._effect_state(orderflow.effects) IS
    'Internal: a provider effect in the state document: state, object id (pi_…, re_…), attempts, last outcome.';

-- _workflow_state(workflow) → jsonb: the state document of one workflow row and its steps.
-- A charge made at the payment provider shows its provider call (and the refund's) under
-- steps.charge.provider / steps.charge.refund; while the workflow waits on it, nextRetryAt is
-- the call's next attempt, and waitingFor says what holds it back (circuit_open, half_open,
-- paused, rate_limited; null when nothing does).
CREATE OR REPLACE FUNCTION orderflow._workflow_state(p_wf orderflow.workflows)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v_charge orderflow.effects;
    v_refund orderflow.effects;
    v_row    orderflow.effects;
    v_state  jsonb;
BEGIN
    -- One index probe; none is found for an order charged through the ledger.
    FOR v_row IN SELECT * FROM orderflow.effects e
                  WHERE e.order_id = p_wf.order_id AND e.run = p_wf.run AND e.kind <> 'webhook' LOOP
        IF v_row.kind = 'charge' THEN
            v_charge := v_row;
        ELSE
            v_refund := v_row;
        END IF;
    END LOOP;
    v_state := jsonb_build_object(
        'orderId', p_wf.order_id,
        'status', p_wf.status,
        'amount', trim_scale(p_wf.amount),
        'item', p_wf.item,
        -- Every step is shown; one that has not run yet has no row.
        'steps', (SELECT jsonb_object_agg(st.step, jsonb_build_object(
                             'completed', s.completed_at IS NOT NULL,
                             'attempts', COALESCE(s.attempts, 0),
                             'completedAt', orderflow._iso(s.completed_at),
                             'lastError', CASE WHEN s.completed_at IS NULL THEN s.last_error END,
                             'compensatedAt', orderflow._iso(s.compensated_at)))
                    FROM unnest(orderflow._steps()) AS st (step)
                    LEFT JOIN orderflow.workflow_steps s
                           ON s.order_id = p_wf.order_id AND s.step = st.step),
        'error', p_wf.error,
        'cancelReason', p_wf.cancel_reason,
        'nextRetryAt', orderflow._iso(CASE WHEN p_wf.next_retry_at = 'infinity'
                                           THEN v_charge.next_attempt_at ELSE p_wf.next_retry_at END),
        'createdAt', orderflow._iso(p_wf.created_at),
        'updatedAt', orderflow._iso(p_wf.updated_at));
    IF v_charge.id IS NOT NULL THEN
        v_state := jsonb_set(v_state, '{steps,charge,provider}', orderflow._effect_state(v_charge));
        IF v_charge.state = 'open' AND COALESCE(v_charge.leased_until <= orderflow.clock_now(), true) THEN
            -- Why it waits: an open circuit, a pause, the rate limit (44_circuits.sql).
            v_state := jsonb_set(v_state, '{steps,charge,provider,waitingFor}',
                                 COALESCE(orderflow._waiting_for(v_charge.provider, orderflow.clock_now()),
                                          'null'));
        END IF;
        IF v_charge.state = 'open' AND v_charge.last_error IS NOT NULL THEN
            v_state := jsonb_set(v_state, '{steps,charge,lastError}', to_jsonb(v_charge.last_error));
        END IF;
        IF v_charge.state = 'open' THEN
            v_state := jsonb_set(v_state, '{steps,charge,attempts}', to_jsonb(v_charge.attempts));
        END IF;
    END IF;
    IF v_refund.id IS NOT NULL THEN
        v_state := jsonb_set(v_state, '{steps,charge,refund}', orderflow._effect_state(v_refund));
        IF v_refund.state = 'open' AND COALESCE(v_refund.leased_until <= orderflow.clock_now(), true) THEN
            v_state := jsonb_set(v_state, '{steps,charge,refund,waitingFor}',
                                 COALESCE(orderflow._waiting_for(v_refund.provider, orderflow.clock_now()),
                                          'null'));
        END IF;
    END IF;
    RETURN v_state;
END
$$;
COMMENT ON FUNCTION orderflow._workflow_state(orderflow.workflows) IS
    'Internal: the state document of a workflow (DESIGN.md §3) from its row and its step rows.';

-- get_workflow(order_id) → jsonb: the workflow's state document, or null when the order is unknown.
CREATE OR REPLACE FUNCTION orderflow.get_workflow(p_order_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_wf orderflow.workflows;
BEGIN
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN orderflow._workflow_state(v_wf);
END
$$;
COMMENT ON FUNCTION orderflow.get_workflow(text) IS
    'The state document of the workflow for that order id, or null when it is unknown. Takes no lock.';
