-- Compensation and cancellation. Completed steps are undone in reverse order — confirm
-- (an order.cancelled event), reserve (release the unit), charge (refund) — and each undo writes
-- its compensated_at checkpoint in the same transaction as its effect, so it happens once.
-- The refund has its own unique ledger key <orderId>:refund: a second refund cannot be written.
-- Locks: as in 40_process_order.sql — workflows row, then steps, then the inventory row.

-- _refund(workflow, now) → void: writes the refund of the order's charge into the ledger.
CREATE OR REPLACE FUNCTION orderflow._refund(p_wf orderflow.workflows, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    INSERT INTO orderflow.payments (order_id, run, kind, amount, idempotency_key, created_at)
    SELECT p.order_id, p.run, 'refund', p.amount, orderflow._run_key(p_wf.order_id, p_wf.run) || ':refund', p_now
      FROM orderflow.payments p
     WHERE p.idempotency_key = orderflow._run_key(p_wf.order_id, p_wf.run) || ':charge';
END
$$;
COMMENT ON FUNCTION orderflow._refund(orderflow.workflows, timestamptz) IS
    'Internal (undo charge): one ledger row, kind refund, for the charged amount, key <orderId>:refund (unique).';

-- _release(workflow, now) → void: releases the order's reservation and gives a tracked unit back.
CREATE OR REPLACE FUNCTION orderflow._release(p_wf orderflow.workflows, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_reservation orderflow.reservations;
BEGIN
    UPDATE orderflow.reservations SET released_at = p_now
     WHERE order_id = p_wf.order_id AND run = p_wf.run AND released_at IS NULL
    RETURNING * INTO v_reservation;
    IF FOUND AND v_reservation.tracked THEN
        -- An overflow is refused by the WHERE, under the row lock, and raised here: on Citus a
        -- statement failing on a reference table's placements leaves the caller's subtransaction
        -- unable to roll back (resume_due suspends this workflow and goes on with its batch).
        UPDATE orderflow.inventory
           SET on_hand = on_hand + v_reservation.quantity, updated_at = p_now
         WHERE item = v_reservation.item AND on_hand <= 2147483647 - v_reservation.quantity;
        IF NOT FOUND AND EXISTS (SELECT 1 FROM orderflow.inventory i WHERE i.item = v_reservation.item) THEN
            RAISE EXCEPTION 'integer out of range'
                  USING ERRCODE = 'numeric_value_out_of_range',
                        DETAIL = format('releasing %s of %s would overflow its stock', v_reservation.quantity, v_reservation.item);
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._release(orderflow.workflows, timestamptz) IS
    'Internal (undo reserve): marks the reservation released and returns a tracked unit to stock.';

-- _compensate(workflow, now) → boolean: undoes the completed, not yet compensated steps in
-- reverse order. A charge made at the payment provider is refunded there: its refund effect is
-- written (45_effects.sql) and the step is compensated when report_effect records the refund.
-- Returns true when everything is undone now, false while a refund waits on the provider.
-- Caller holds the workflows row lock.
CREATE OR REPLACE FUNCTION orderflow._compensate(p_wf orderflow.workflows, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_step text;
    v_done boolean := true;
BEGIN
    FOR v_step IN
        SELECT s.step FROM orderflow.workflow_steps s
         WHERE s.order_id = p_wf.order_id AND s.completed_at IS NOT NULL AND s.compensated_at IS NULL
         ORDER BY array_position(orderflow._steps(), s.step) DESC
    LOOP
        CASE v_step
            WHEN 'confirm' THEN PERFORM orderflow._emit(p_wf, 'cancel', 'order.cancelled', p_now);
            WHEN 'reserve' THEN PERFORM orderflow._release(p_wf, p_now);
            WHEN 'charge' THEN
                IF orderflow._refund_at_provider(p_wf, p_now) THEN
                    v_done := false;
                    CONTINUE;  -- compensated when the provider's refund is reported
                END IF;
                PERFORM orderflow._refund(p_wf, p_now);
        END CASE;
        UPDATE orderflow.workflow_steps SET compensated_at = p_now
         WHERE order_id = p_wf.order_id AND step = v_step;
        PERFORM orderflow._record(p_wf.order_id, p_now, 'step', v_step, 'compensated');
    END LOOP;
    RETURN v_done;
END
$$;
COMMENT ON FUNCTION orderflow._compensate(orderflow.workflows, timestamptz) IS
    'Internal: undoes completed steps in reverse order (confirm → order.cancelled event, reserve → '
    'release, charge → refund, at the provider when charged there), each once; false while a '
    'provider refund is pending. Caller holds the workflows row lock.';

-- cancel_order(order_id, reason) → jsonb: compensates whatever the workflow did and marks it
-- cancelled; a second call returns the same state and changes nothing. With the payment
-- provider the cancel is `cancelling` until the refund is reported (or, for a charge still at the
-- provider, until the charge's outcome is known: charged → refunded, declined → nothing to undo);
-- a charge never sent is abandoned at once. OF404 unknown order (also when prune() removed it
-- while we waited for its lock).
CREATE OR REPLACE FUNCTION orderflow.cancel_order(p_order_id text, p_reason text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_wf     orderflow.workflows;
    v_now    timestamptz;
    v_charge orderflow.effects;
    v_to     text;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'cancel', true);
    PERFORM orderflow._check_text('orderId', p_order_id, 200);
    IF p_reason IS NOT NULL THEN
        PERFORM orderflow._check_text('reason', p_reason, 500);
    END IF;

    -- Read path, no lock: a cancelled workflow never changes again.
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id;
    IF FOUND AND v_wf.status IN ('cancelled', 'cancelling') THEN
        RETURN orderflow._workflow_state(v_wf);
    END IF;

    -- The lock first, then the state it decides on.
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found', p_order_id USING ERRCODE = 'OF404';
    END IF;
    IF v_wf.status NOT IN ('cancelled', 'cancelling') THEN
        v_now := orderflow.clock_now();
        -- A charge still open at the provider (the lock order: workflow, then effect).
        SELECT * INTO v_charge FROM orderflow.effects
         WHERE order_id = p_order_id AND run = v_wf.run AND kind = 'charge' AND state = 'open' FOR UPDATE;
        IF v_charge.id IS NOT NULL AND v_charge.lease_token IS NULL AND v_charge.attempts = 0 THEN
            -- Never leased, so never sent: nothing can have been charged.
            PERFORM orderflow._effect_final(v_charge, 'abandoned', NULL, 'cancelled before it was sent',
                                            NULL, NULL, v_now);
            v_to := 'cancelled';
        ELSIF v_charge.id IS NOT NULL THEN
            v_to := 'cancelling';  -- report_effect() finishes the cancel once the charge is known
        ELSE
            v_to := CASE WHEN orderflow._compensate(v_wf, v_now) THEN 'cancelled' ELSE 'cancelling' END;
        END IF;
        v_wf := orderflow._transition(v_wf, v_to, v_now, NULL, NULL, NULL,
                                      COALESCE(p_reason, v_wf.cancel_reason));
    END IF;
    RETURN orderflow._workflow_state(v_wf);
END
$$;
COMMENT ON FUNCTION orderflow.cancel_order(text, text) IS
    'Compensates what the order''s workflow did (refund, release, order.cancelled event) and marks it '
    'cancelled; calling again returns the same state. OF404 unknown order, 22023 bad arguments.';

-- cancel_order_request(order_id, request) → jsonb: POST /api/orders/{orderId}/cancel. p_request
-- is the JSON body or null when there is none: {"reason"?: string 1..500}. 22023 bad input.
CREATE OR REPLACE FUNCTION orderflow.cancel_order_request(p_order_id text, p_request jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'cancel', true);
    IF p_request IS NULL THEN
        RETURN orderflow.cancel_order(p_order_id, NULL);
    END IF;
    PERFORM orderflow._check_object(p_request);
    RETURN orderflow.cancel_order(p_order_id, orderflow._json_text(p_request, 'reason', 500, false));
END
$$;
COMMENT ON FUNCTION orderflow.cancel_order_request(text, jsonb) IS
    'POST /api/orders/{orderId}/cancel: validates the optional JSON body {"reason"} and calls cancel_order.';
