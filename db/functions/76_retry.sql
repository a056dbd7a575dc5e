-- retry_workflow: a failed order runs again once its cause is fixed (restocked, card replaced),
-- as a new run of the same order (014_runs.sql). Its history is kept (75_history.sql); its
-- steps start over; its effects are new, under keys that carry the run number
-- (<orderId>:run2:charge, <orderId>:run2:confirm, a provider's <orderId>:run2:charge), so the
-- old run's charge and refund are never replayed or confused with the new run's. Only once the
-- old run's compensation is complete: a refund still at the provider (or dead there) blocks it.
-- Locks: the workflows row, then (read) its steps and effects — the usual order.

-- retry_workflow(order_id) → jsonb: the order's state after its new run started (the run's
-- steps run at once, as resume_now would). OF404 unknown order; OF409 when the order is not
-- failed or its compensation is not complete.
CREATE OR REPLACE FUNCTION orderflow.retry_workflow(p_order_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_wf  orderflow.workflows;
    v_now timestamptz;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'operator', true);
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', p_order_id USING ERRCODE = 'OF404';
    END IF;
    IF v_wf.status <> 'failed' THEN
        RAISE EXCEPTION 'order % is %: only a failed order can be retried', p_order_id, v_wf.status
            USING ERRCODE = 'OF409';
    END IF;
    IF EXISTS (SELECT 1 FROM orderflow.workflow_steps s
                WHERE s.order_id = p_order_id AND s.completed_at IS NOT NULL AND s.compensated_at IS NULL)
       OR EXISTS (SELECT 1 FROM orderflow.effects e
                   WHERE e.order_id = p_order_id AND e.run = v_wf.run AND e.kind <> 'webhook'
                     AND e.state IN ('open', 'dead')) THEN
        RAISE EXCEPTION 'order % is still being compensated: its refund is not recorded yet', p_order_id
            USING ERRCODE = 'OF409',
                  HINT = 'See orderflow.provider_effects; retry once the refund succeeded.';
    END IF;
    v_now := orderflow.clock_now();
    PERFORM orderflow._record(p_order_id, v_now, 'action', 'retry_workflow', 'done',
                              p_detail => format('run %s after %s', v_wf.run + 1, v_wf.error));
    -- The old run's steps are in the history; the new run's start empty.
    DELETE FROM orderflow.workflow_steps WHERE order_id = p_order_id;
    v_wf := orderflow._transition(v_wf, 'pending', v_now, v_now);
    RETURN orderflow._workflow_state(orderflow._run_steps(v_wf, v_now));
END
$$;
COMMENT ON FUNCTION orderflow.retry_workflow(text) IS
    'Operators: runs a failed order again as its next run (new keys <orderId>:run<n>:..., history '
    'kept) once its compensation is complete; returns its state. OF404 unknown, OF409 not failed or '
    'still compensating.';
