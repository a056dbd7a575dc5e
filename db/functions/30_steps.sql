-- The effects of the three steps. Each is called by _run_steps inside the step's own exception
-- block, together with the step's checkpoint, so effect and checkpoint commit or vanish together.
-- Every effect carries a unique key derived from the order id: running one twice raises
-- unique_violation instead of charging, reserving or announcing twice (a bug caught, never a
-- path: the workflows row lock keeps a second runner out).
-- Locks (taken after the caller's lock on the workflows row): inventory row of the item.
-- p_now is the caller's decision time (00_clock.sql). The effects are PL/pgSQL rather than SQL
-- functions: PL/pgSQL keeps its plans for the session, a SQL function called from PL/pgSQL is
-- planned again on every call.

-- _run_key(order_id, run) → text: what the keys of a run's effects start with: the order id for
-- the first run, <orderId>:run<n> from the second (retry_workflow, 76_retry.sql). Inlined where
-- it is used (bench/dbcost.sh: not inlined, it cost about 125 k instructions a call).
CREATE OR REPLACE FUNCTION orderflow._run_key(p_order_id text, p_run integer)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    -- p_run::text, not text || integer (anytextcat is only STABLE): an IMMUTABLE SQL function
    -- whose body is less so is not inlined, and then costs a plan at every call.
    SELECT p_order_id || CASE WHEN COALESCE(p_run, 1) = 1 THEN '' ELSE ':run' || p_run::text END
$$;
COMMENT ON FUNCTION orderflow._run_key(text, integer) IS
    'Internal: <orderId> for the first run, <orderId>:run<n> after a retry: the prefix of the run''s keys.';

-- _charge(workflow, now) → boolean: charges the order: through the payments provider when one
-- is set (45_effects.sql: writes the charge's effect; true = the step waits for its report), or
-- into the payments ledger (false: done now).
CREATE OR REPLACE FUNCTION orderflow._charge(p_wf orderflow.workflows, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF orderflow._charge_at_provider(p_wf, p_now) THEN
        RETURN true;
    END IF;
    INSERT INTO orderflow.payments (order_id, run, kind, amount, idempotency_key, created_at)
    VALUES (p_wf.order_id, p_wf.run, 'charge', p_wf.amount, orderflow._run_key(p_wf.order_id, p_wf.run) || ':charge', p_now);
    RETURN false;
END
$$;
COMMENT ON FUNCTION orderflow._charge(orderflow.workflows, timestamptz) IS
    'Internal (charge step): the provider''s charge effect (true: waits for its report) or one ledger '
    'row, kind charge, key <orderId>:charge (unique) (false: done).';

-- _reserve(workflow, now) → void: takes one unit of a tracked item (OFS01 out_of_stock when none
-- is left) and records the reservation; untracked items are always available.
CREATE OR REPLACE FUNCTION orderflow._reserve(p_wf orderflow.workflows, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_on_hand integer;
BEGIN
    -- An untracked item (no row) costs one index probe and takes no lock; a tracked one is
    -- locked, then taken. The look comes first because on Citus inventory is a reference table:
    -- a read of it is local, a lock or a write is taken on every node.
    IF EXISTS (SELECT 1 FROM orderflow.inventory WHERE item = p_wf.item) THEN
        SELECT on_hand INTO v_on_hand FROM orderflow.inventory WHERE item = p_wf.item FOR UPDATE;
    END IF;
    IF v_on_hand = 0 THEN
        RAISE EXCEPTION 'out_of_stock' USING ERRCODE = 'OFS01',
            DETAIL = format('No stock left for item %L.', p_wf.item);
    ELSIF v_on_hand IS NOT NULL THEN
        UPDATE orderflow.inventory SET on_hand = on_hand - 1, updated_at = p_now WHERE item = p_wf.item;
    END IF;
    INSERT INTO orderflow.reservations (order_id, run, item, quantity, tracked, reserved_at)
    VALUES (p_wf.order_id, p_wf.run, p_wf.item, 1, v_on_hand IS NOT NULL, p_now);
END
$$;
COMMENT ON FUNCTION orderflow._reserve(orderflow.workflows, timestamptz) IS
    'Internal (reserve step): takes one unit of a tracked item, raises OFS01 out_of_stock when none '
    'is left; untracked items always succeed. One reservation row per order.';

-- _confirm(workflow, now) → void: writes the order.confirmed event to the outbox (publish_outbox
-- sends its NOTIFY after the commit).
CREATE OR REPLACE FUNCTION orderflow._confirm(p_wf orderflow.workflows, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM orderflow._emit(p_wf, 'confirm', 'order.confirmed', p_now);
END
$$;
COMMENT ON FUNCTION orderflow._confirm(orderflow.workflows, timestamptz) IS
    'Internal (confirm step): the order.confirmed outbox event, key <orderId>:confirm.';

-- _emit(workflow, key_suffix, event_type, now) → bigint: one outbox event keyed <orderId>:<suffix>,
-- fanned out into one webhook delivery per subscription that wants it (47_webhooks.sql).
-- No NOTIFY here: it would serialise every workflow's commit (006_outbox_relay.sql); the relay
-- publish_outbox() sends it once the event is committed.
CREATE OR REPLACE FUNCTION orderflow._emit(p_wf orderflow.workflows, p_suffix text, p_type text,
                                           p_now timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_id      bigint;
    v_payload jsonb;
BEGIN
    INSERT INTO orderflow.outbox (event_key, order_id, event_type, payload, created_at)
    VALUES (orderflow._run_key(p_wf.order_id, p_wf.run) || ':' || p_suffix, p_wf.order_id, p_type,
            jsonb_build_object('orderId', p_wf.order_id, 'amount', trim_scale(p_wf.amount),
                               'item', p_wf.item),
            p_now)
    RETURNING id, payload INTO v_id, v_payload;
    -- Webhook deliveries, in this transaction: the event and its deliveries commit together.
    PERFORM orderflow._fan_out(v_id, p_wf.order_id, p_type, v_payload, p_now);
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION orderflow._emit(orderflow.workflows, text, text, timestamptz) IS
    'Internal: writes one outbox event keyed <orderId>:<suffix> and its webhook deliveries; '
    'publish_outbox() NOTIFYs it after commit.';
