-- 018_event_positions: read_events pages by the order in which the relay published the events
-- (publish_outbox numbers them, one relay at a time), instead of by (transaction id, id) below
-- the snapshot's xmin. Transaction ids and snapshots are one server's: on Citus each worker has
-- its own, and a reader paging by them across workers could step over an event for good. The
-- publication number is drawn on the node that runs the relay, in commit order (DESIGN.md §8).
ALTER TABLE orderflow.outbox ADD COLUMN published_seq bigint;
COMMENT ON COLUMN orderflow.outbox.published_seq IS
    'The event''s place in the published stream: read_events pages by it. publish_outbox draws it '
    'from outbox_published_seq while it holds the relay''s lock, so numbers commit in order.';
CREATE SEQUENCE orderflow.outbox_published_seq;
COMMENT ON SEQUENCE orderflow.outbox_published_seq IS
    'Publication numbers of events (outbox.published_seq), drawn only by publish_outbox.';

-- The events published before: numbered in the order read_events gave them, one row at a time
-- by its key (one shard each on Citus; the number is a value before the UPDATE).
DO $$
DECLARE
    v_event record;
    v_seq   bigint;
BEGIN
    FOR v_event IN
        SELECT order_id, id FROM orderflow.outbox WHERE published_at IS NOT NULL ORDER BY txid, id
    LOOP
        v_seq := nextval('orderflow.outbox_published_seq');
        UPDATE orderflow.outbox SET published_seq = v_seq
         WHERE order_id = v_event.order_id AND id = v_event.id;
    END LOOP;
END
$$;

ALTER TABLE orderflow.outbox ADD CONSTRAINT outbox_published_numbered
    CHECK ((published_at IS NULL) = (published_seq IS NULL));
CREATE INDEX outbox_by_publication ON orderflow.outbox (published_seq) WHERE published_seq IS NOT NULL;

-- The transaction id is no longer read: its column and index go (one index less per event).
DROP INDEX orderflow.outbox_by_transaction;
ALTER TABLE orderflow.outbox DROP COLUMN txid;
