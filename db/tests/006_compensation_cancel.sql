-- Compensation runs in reverse order and once; cancel_order compensates whatever was done and
-- a second cancel changes nothing.
BEGIN;
SELECT plan(30);

UPDATE orderflow.faults SET remaining = 0;
SELECT orderflow.set_stock('lamp', 3);

-- A permanent fault at confirm: reserve and charge are undone, reserve first.
SELECT orderflow.inject_fault('confirm', 1, false);
CREATE TEMP TABLE s AS SELECT orderflow.process_order('cp-1', 20, 'lamp') AS state;
SELECT is((SELECT state->>'status' FROM s), 'failed', 'a permanent fault fails the workflow');
SELECT is((SELECT state->>'error' FROM s), 'confirm failed: injected permanent fault', 'the error names the step');
SELECT is((SELECT state->'steps'->'confirm'->>'attempts' FROM s), '1', 'a permanent fault is not retried');
SELECT ok((SELECT (state->'steps'->'charge'->>'compensatedAt') IS NOT NULL FROM s), 'charge is compensated');
SELECT ok((SELECT (state->'steps'->'reserve'->>'compensatedAt') IS NOT NULL FROM s), 'reserve is compensated');
-- The order in which compensations happened: _compensate appends a history row right after
-- each undo (75_history.sql), and the ids of one call's rows are drawn in order by the one node
-- that runs it (on Citus each node draws from its own range: an order across calls would not do).
SELECT is((SELECT array_agg(step ORDER BY id) FROM orderflow.history
            WHERE order_id = 'cp-1' AND kind = 'step' AND outcome = 'compensated'),
          ARRAY['reserve', 'charge'], 'reserve is undone before charge: reverse order');
SELECT is((SELECT array_agg(kind ORDER BY id) FROM orderflow.payments WHERE order_id = 'cp-1'), ARRAY['charge', 'refund'],
          'one charge and one refund');
SELECT is((SELECT amount FROM orderflow.payments WHERE idempotency_key = 'cp-1:refund'), 20.00::numeric, 'the refund is for the charge');
SELECT ok((SELECT released_at IS NOT NULL FROM orderflow.reservations WHERE order_id = 'cp-1'), 'the reservation is released');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'lamp'), 3, 'the unit is back in stock');

-- Calling anything again compensates nothing more.
SELECT is(orderflow.process_order('cp-1')->>'status', 'failed', 'process_order on a failed workflow changes nothing');
SELECT is((SELECT state->>'status' FROM (SELECT orderflow.cancel_order('cp-1', 'give up') AS state) c), 'cancelled',
          'a failed order can be cancelled');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'cp-1'), 2, 'cancelling a failed order refunds nothing more');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'lamp'), 3, 'nor releases anything more');

-- Cancel a completed order: everything is undone, once.
TRUNCATE s;
INSERT INTO s SELECT orderflow.process_order('cp-2', 15.50, 'lamp');
SELECT is((SELECT state->>'status' FROM s), 'completed', 'the order completes');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'lamp'), 2, 'it took a unit');
CREATE TEMP TABLE c1 AS SELECT orderflow.cancel_order('cp-2', 'customer asked') AS state;
SELECT is((SELECT state->>'status' FROM c1), 'cancelled', 'cancel sets cancelled');
SELECT is((SELECT state->>'cancelReason' FROM c1), 'customer asked', 'the reason is kept');
SELECT is((SELECT array_agg(kind ORDER BY id) FROM orderflow.payments WHERE order_id = 'cp-2'), ARRAY['charge', 'refund'],
          'cancel refunds the charge');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'lamp'), 3, 'cancel releases the unit');
SELECT is((SELECT event_type FROM orderflow.outbox WHERE event_key = 'cp-2:cancel'), 'order.cancelled',
          'a confirmed order announces its cancellation');
SELECT is(orderflow.cancel_order('cp-2', 'again'), (SELECT state FROM c1), 'a second cancel returns the same state');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'cp-2'), 2, 'and refunds nothing more');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'lamp'), 3, 'and releases nothing more');
SELECT is(orderflow.process_order('cp-2', 15.50, 'lamp'), (SELECT state FROM c1), 'process_order does not revive a cancelled order');

-- Cancel a workflow waiting for a retry: it is no longer scheduled.
SELECT orderflow.inject_fault('reserve', 1, true);
SELECT is(orderflow.process_order('cp-3', 1, 'widget')->>'status', 'reserving', 'the workflow waits for a retry');
SELECT is(orderflow.cancel_order('cp-3')->'nextRetryAt', 'null'::jsonb, 'cancel unschedules it');
SELECT is((SELECT array_agg(kind ORDER BY id) FROM orderflow.payments WHERE order_id = 'cp-3'), ARRAY['charge', 'refund'],
          'its charge is refunded');

SELECT throws_ok($$SELECT orderflow.cancel_order('cp-unknown')$$, 'OF404', 'order cp-unknown not found', 'an unknown order raises OF404');
SELECT throws_ok($$SELECT orderflow.cancel_order('cp-2', repeat('r', 501))$$, '22023', 'reason must be a string of 1 to 500 characters',
                 'an overlong reason raises 22023');

SELECT * FROM finish();
ROLLBACK;
