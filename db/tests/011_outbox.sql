-- The outbox: steps write events in their own transaction without NOTIFY; publish_outbox sends
-- the NOTIFYs afterwards, oldest first, each event once.
BEGIN;
SELECT plan(9);

UPDATE orderflow.faults SET remaining = 0;
-- Only our events are unpublished inside this transaction.
SELECT orderflow.publish_outbox(10000);

SELECT orderflow.process_order('ob-' || i, 1, 'widget') FROM generate_series(1, 3) AS i;
SELECT is((SELECT count(*)::int FROM orderflow.outbox WHERE order_id LIKE 'ob-%' AND published_at IS NULL), 3,
          'each confirmed order left one unpublished event');
SELECT is((SELECT event_key FROM orderflow.outbox WHERE order_id = 'ob-1'), 'ob-1:confirm', 'keyed <orderId>:confirm');
SELECT is((SELECT payload FROM orderflow.outbox WHERE order_id = 'ob-1'),
          '{"item": "widget", "amount": 1, "orderId": "ob-1"}'::jsonb, 'the payload describes the order');

SELECT is(orderflow.publish_outbox(2), 2, 'a batch of 2 publishes 2');
SELECT is((SELECT array_agg(order_id ORDER BY id) FROM orderflow.outbox WHERE order_id LIKE 'ob-%' AND published_at IS NOT NULL),
          ARRAY['ob-1', 'ob-2'], 'oldest first');
SELECT is(orderflow.publish_outbox(100), 1, 'the next call publishes the rest');
SELECT is(orderflow.publish_outbox(100), 0, 'and then nothing is left: each event is published once');
SELECT is((SELECT array_agg(order_id ORDER BY published_seq) FROM orderflow.outbox WHERE order_id LIKE 'ob-%'),
          ARRAY['ob-1', 'ob-2', 'ob-3'], 'each event is numbered as it is published: the stream read_events pages');
SELECT throws_ok($$SELECT orderflow.publish_outbox(0)$$, '22023', 'batch must be from 1 to 10000', 'batch 0 is refused');

SELECT * FROM finish();
ROLLBACK;
