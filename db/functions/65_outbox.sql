-- The outbox relay. Steps write events into orderflow.outbox in their own transaction; this
-- sends the NOTIFY orderflow_events for them afterwards, in batches (see
-- db/migrations/006_outbox_relay.sql for why not in the step), and numbers them: the published
-- stream that read_events pages through (migration 018).
--
-- Why the numbers cannot be stepped over: one relay publishes at a time (an exclusive advisory
-- lock, held to its commit) and draws each event's number while it holds it, so the numbers
-- commit in the order they were drawn. read_events takes the same lock shared before it reads:
-- no relay is between drawing and committing then, so every number below the largest it can see
-- has committed, on every node. On plain PostgreSQL one snapshot would be enough; on Citus a
-- read across workers takes one snapshot per worker, and the lock is what makes them agree.
--
-- Locks, in this order: the relay's advisory lock (hashtext('orderflow.publish_outbox'),
-- exclusive for the relay, shared for readers), then outbox rows (FOR UPDATE SKIP LOCKED).

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
    v_seq   bigint;
    v_now   timestamptz := orderflow.clock_now();
BEGIN
    IF p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'batch must be from 1 to 10000' USING ERRCODE = '22023';
    END IF;
    -- One relay at a time; readers of the stream wait for it (and it for them) only while
    -- one of them runs.
    PERFORM pg_advisory_xact_lock(hashtext('orderflow.publish_outbox'));
    -- Read without a lock (on Citus, every shard), then each event claimed by its order id
    -- and id (one shard) with SKIP LOCKED: an event a pruner or a caller holds is skipped.
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
        v_seq := nextval('orderflow.outbox_published_seq');  -- a value: on Citus the UPDATE runs on the shard
        UPDATE orderflow.outbox o SET published_at = v_now, published_seq = v_seq
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
    'Outbox relay, one at a time: NOTIFYs orderflow_events for up to p_batch unpublished events '
    '(claimed with FOR UPDATE SKIP LOCKED), marks them published and numbers them for read_events; '
    'returns how many.';

-- read_events(after, limit) → jsonb: the events for consumers that poll instead of (or beside)
-- webhooks: {"events": [{id, type, timestamp, orderId, data, cursor}], "next": cursor}, in the
-- order the relay published them. Pass "next" back as p_after to resume (null: from the oldest
-- event kept). An event is read once publish_outbox has published it (the server's janitor runs
-- the relay every tick), never before, and no event can appear behind a cursor later: see the
-- top of this file. Events are kept for prune's p_older_than after publication.
-- 22023 malformed cursor or a limit outside 1..1000.
CREATE OR REPLACE FUNCTION orderflow.read_events(p_after text DEFAULT NULL, p_limit integer DEFAULT 100)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_after  bigint := 0;
    v_events jsonb;
    v_next   bigint;
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit must be from 1 to 1000' USING ERRCODE = '22023';
    END IF;
    IF p_after IS NOT NULL THEN
        IF p_after !~ '^[0-9]{1,18}$' THEN
            RAISE EXCEPTION 'after must be a cursor returned as "next" by read_events' USING ERRCODE = '22023';
        END IF;
        v_after := p_after::bigint;
    END IF;
    -- No relay between drawing a number and committing it while this reads (VOLATILE: the read
    -- below takes its snapshot after the lock).
    PERFORM pg_advisory_xact_lock_shared(hashtext('orderflow.publish_outbox'));
    SELECT jsonb_agg(jsonb_build_object(
               'id', 'evt_' || o.id, 'type', o.event_type, 'timestamp', orderflow._iso(o.created_at),
               'orderId', o.order_id, 'data', o.payload, 'cursor', o.published_seq::text)
             ORDER BY o.published_seq),
           max(o.published_seq)
      INTO v_events, v_next
      FROM (SELECT * FROM orderflow.outbox x
             WHERE x.published_seq > v_after
             ORDER BY x.published_seq
             LIMIT p_limit) o;
    RETURN jsonb_build_object('events', COALESCE(v_events, '[]'), 'next', COALESCE(v_next::text, p_after));
END
$$;
COMMENT ON FUNCTION orderflow.read_events(text, integer) IS
    'Consumers: up to p_limit published events after the cursor p_after (null: from the start), in '
    'the order the relay published them (none can appear behind a cursor); returns {events, next}. '
    '22023 bad cursor or limit.';
