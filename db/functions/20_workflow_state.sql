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

-- _workflow_state(workflow) → jsonb: the state document of one workflow row and its steps.
CREATE OR REPLACE FUNCTION orderflow._workflow_state(p_wf orderflow.workflows)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN jsonb_build_object(
        'orderId', p_wf.order_id,
        'status', p_wf.status,
        'amount', trim_scale(p_wf.amount),
        'item', p_wf.item,
        -- Every step is shown; one that has not run yet has no row.
        'steps', (SELECT jsonb_object_agg(st.step, jsonb_build_object(
                             'completed', s.completed_at IS NOT NULL,
                             'attempts', COALESCE(s.attempts, 0),
                             'completedAt', orderflow._iso(s.completed_at),
                             'lastError', s.last_error,
                             'compensatedAt', orderflow._iso(s.compensated_at)))
                    FROM unnest(orderflow._steps()) AS st (step)
                    LEFT JOIN orderflow.workflow_steps s
                           ON s.order_id = p_wf.order_id AND s.step = st.step),
        'error', p_wf.error,
        'cancelReason', p_wf.cancel_reason,
        'nextRetryAt', orderflow._iso(p_wf.next_retry_at),
        'createdAt', orderflow._iso(p_wf.created_at),
        'updatedAt', orderflow._iso(p_wf.updated_at));
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
