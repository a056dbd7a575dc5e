-- The outbox relay. Steps write events into orderflow.outbox in their own transaction; this
-- sends the NOTIFY orderflow_events for them afterwards, in batches (see
-- db/migrations/006_outbox_relay.sql for why not in the step). Events are read in a bounded batch,
-- then claimed one by one with FOR UPDATE SKIP LOCKED, so several servers relay at once without
-- sending one twice.
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
    v_sent  record;
    v_count integer := 0;
    v_now   timestamptz := orderflow.clock_now();
BEGIN
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'batch must be from 1 to 10000' USING ERRCODE = '22023';
    END IF;
    -- Read without a lock (on Citus, every shard), then each event claimed by its order id
    -- and id (one shard) with SKIP LOCKED: an event another relay holds is skipped.
    FOR v_event IN
        SELECT o.order_id, o.id FROM orderflow.outbox o
         WHERE o.published_at IS NULL
         ORDER BY o.id
         LIMIT p_batch
    LOOP
        PERFORM 1 FROM orderflow.outbox o
          WHERE o.order_id = v_event.order_id AND o.id = v_event.id AND o.published_at IS NULL
            FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE orderflow.outbox o SET published_at = v_now
         WHERE o.order_id = v_event.order_id AND o.id = v_event.id
        RETURNING o.id, o.event_key, o.event_type INTO v_sent;
        PERFORM pg_notify('orderflow_events',
                          jsonb_build_object('id', v_sent.id, 'key', v_sent.event_key,
                                             'type', v_sent.event_type)::text);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow.publish_outbox(integer) IS
    'Outbox relay: NOTIFYs orderflow_events for up to p_batch unpublished events (oldest first, '
    'claimed with FOR UPDATE SKIP LOCKED) and marks them published; returns how many.';

-- read_events(after, limit) → jsonb: the events for consumers that poll instead of (or beside)
-- webhooks: {"events": [{id, type, timestamp, orderId, data, cursor}], "next": cursor}, in
-- commit-safe order. Pass "next" back as p_after to resume (null: from the oldest event kept).
--
-- Why it cannot skip an event: ids are taken when a transaction inserts, not when it commits,
-- so id 7 can become visible after id 8 and a reader paging by id alone would step over it.
-- Each event carries its transaction id (outbox.txid); this reads only events of transactions
-- below the snapshot's xmin — every one of those has committed or aborted, so no event can
-- appear below the cursor later — ordered by (txid, id). An event shows up once every
-- transaction older than its own has ended (a session left idle in a transaction delays
-- reading, never loses an event). Events are kept for prune's p_older_than after publication.
-- 22023 malformed cursor or a limit outside 1..1000.
CREATE OR REPLACE FUNCTION orderflow.read_events(p_after text DEFAULT NULL, p_limit integer DEFAULT 100)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_txid    xid8 := '0';
    v_id      bigint := 0;
    v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    v_events  jsonb;
    v_next    text;
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit must be from 1 to 1000' USING ERRCODE = '22023';
    END IF;
    IF p_after IS NOT NULL THEN
        IF p_after !~ '^[0-9]{1,19}-[0-9]{1,18}$' THEN
            RAISE EXCEPTION 'after must be a cursor returned as "next" by read_events' USING ERRCODE = '22023';
        END IF;
        v_txid := split_part(p_after, '-', 1)::xid8;
        v_id := split_part(p_after, '-', 2)::bigint;
    END IF;
    SELECT jsonb_agg(jsonb_build_object(
               'id', 'evt_' || o.id, 'type', o.event_type, 'timestamp', orderflow._iso(o.created_at),
               'orderId', o.order_id, 'data', o.payload, 'cursor', o.txid || '-' || o.id)
             ORDER BY o.txid, o.id),
           (array_agg(o.txid || '-' || o.id ORDER BY o.txid DESC, o.id DESC))[1]
      INTO v_events, v_next
      FROM (SELECT * FROM orderflow.outbox x
             WHERE (x.txid, x.id) > (v_txid, v_id) AND x.txid < v_horizon
             ORDER BY x.txid, x.id
             LIMIT p_limit) o;
    RETURN jsonb_build_object('events', COALESCE(v_events, '[]'), 'next', COALESCE(v_next, p_after));
END
$$;
COMMENT ON FUNCTION orderflow.read_events(text, integer) IS
    'Consumers: up to p_limit events after the cursor p_after (null: from the start) in commit-safe '
    'order (transaction id, then id, below the snapshot''s xmin: none can appear behind a cursor); '
    'returns {events, next}. 22023 bad cursor or limit.';
