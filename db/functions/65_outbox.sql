-- The outbox relay. Steps write events into orderflow.outbox in their own transaction; this
-- sends the NOTIFY orderflow_events for them afterwards, in batches (see
-- db/migrations/006_outbox_relay.sql for why not in the step). Events are claimed with a bounded
-- FOR UPDATE SKIP LOCKED, so several servers relay at once without sending one twice.
-- Locks: outbox rows only.

-- publish_outbox(batch) → integer: NOTIFYs up to p_batch unpublished events, oldest first, marks
-- them published and returns how many.
CREATE OR REPLACE FUNCTION orderflow.publish_outbox(p_batch integer DEFAULT 100)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_event record;
    v_count integer := 0;
    v_now   timestamptz := orderflow.clock_now();
BEGIN
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'batch must be from 1 to 10000' USING ERRCODE = '22023';
    END IF;
    FOR v_event IN
        WITH next AS (
            SELECT o.id FROM orderflow.outbox o
             WHERE o.published_at IS NULL
             ORDER BY o.id
             LIMIT p_batch
               FOR UPDATE SKIP LOCKED)
        UPDATE orderflow.outbox o SET published_at = v_now
          FROM next WHERE o.id = next.id
        RETURNING o.id, o.event_key, o.event_type
    LOOP
        PERFORM pg_notify('orderflow_events',
                          jsonb_build_object('id', v_event.id, 'key', v_event.event_key,
                                             'type', v_event.event_type)::text);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow.publish_outbox(integer) IS
    'Outbox relay: NOTIFYs orderflow_events for up to p_batch unpublished events (oldest first, '
    'claimed with FOR UPDATE SKIP LOCKED) and marks them published; returns how many.';
