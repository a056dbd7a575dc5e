-- The operator's API: set_stock, inject_fault, prune, and the views ledger, step_stats,
-- stuck_workflows.
BEGIN;
SELECT plan(32);

SELECT orderflow.pin_clock('2030-01-01 00:00:00+00');
UPDATE orderflow.faults SET remaining = 0;
-- The views summarise everything; start from an empty history inside this transaction.
DELETE FROM orderflow.workflows;
DELETE FROM orderflow.payments;
DELETE FROM orderflow.idempotency_keys;

-- set_stock
SELECT is(orderflow.set_stock('op-item', 2), 2, 'set_stock tracks an item');
SELECT is(orderflow.set_stock('op-item', 5), 5, 'set_stock updates the stock');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'op-item'), 5, 'the stock is stored');
SELECT is(orderflow.set_stock('op-item', NULL), NULL, 'null stops tracking');
SELECT is((SELECT count(*)::int FROM orderflow.inventory WHERE item = 'op-item'), 0, 'the item is untracked');
SELECT throws_ok($$SELECT orderflow.set_stock('op-item', -1)$$, '22023', 'on_hand must not be negative', 'negative stock is refused');
SELECT throws_ok($$SELECT orderflow.set_stock('', 1)$$, '22023', 'item must be a string of 1 to 200 characters', 'an empty item is refused');

-- inject_fault
SELECT is(orderflow.inject_fault('charge', 2, true), 2, 'inject_fault returns the count');
SELECT is((SELECT remaining FROM orderflow.faults WHERE step = 'charge'), 2, 'the fault is stored');
SELECT is(orderflow.inject_fault('charge', 0, true), 0, 'times 0 clears');
SELECT throws_ok($$SELECT orderflow.inject_fault('ship', 1, true)$$, '22023', 'step must be one of charge, reserve, confirm', 'unknown step');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', -1, true)$$, '22023', 'times must be from 0 to 1000000', 'negative times');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, NULL)$$, '22023', 'transient must be true or false', 'null transient');

-- History for prune and the views, at known times.
CREATE TEMP TABLE old_order AS
SELECT (body->>'id')::uuid AS id FROM orderflow.create_order_idempotent('op-key-old', '{"item": "w", "quantity": 1}');
SELECT orderflow.process_order('op-old', 10, 'w');                 -- finished 2030-01-01
SELECT orderflow.inject_fault('reserve', 1, true);
SELECT orderflow.process_order('op-waiting', 3, 'w');              -- waits for a retry
UPDATE orderflow.workflows SET next_retry_at = '2031-01-01' WHERE order_id = 'op-waiting';
SELECT orderflow.pin_clock('2030-01-10 00:00:00+00');
SELECT orderflow.create_order_idempotent('op-key-new', '{"item": "w", "quantity": 1}');
SELECT orderflow.process_order('op-new', 4, 'w');                  -- finished 2030-01-10
SELECT orderflow.set_stock('op-none', 0);
SELECT orderflow.process_order('op-failed', 6, 'op-none');         -- failed 2030-01-10, refunded

-- Views.
SELECT is((SELECT count(*)::int FROM orderflow.ledger WHERE order_id = 'op-failed'), 2, 'ledger lists the charge and the refund');
SELECT is((SELECT DISTINCT order_balance FROM orderflow.ledger WHERE order_id = 'op-failed'), 0.00::numeric,
          'a refunded order balances to zero');
SELECT is((SELECT order_balance FROM orderflow.ledger WHERE order_id = 'op-new'), 4.00::numeric, 'a charged order owes its amount');
SELECT is((SELECT array_agg(step) FROM orderflow.step_stats), ARRAY['charge', 'reserve', 'confirm'],
          'step_stats has a row per step, in step order');
SELECT is((SELECT (attempts, successes, retries, failures) FROM orderflow.step_stats WHERE step = 'charge'),
          ROW(4::bigint, 4::bigint, 0::bigint, 0::bigint), 'charge: 4 attempts, 4 successes');
SELECT is((SELECT (attempts, successes, retries, failures) FROM orderflow.step_stats WHERE step = 'reserve'),
          ROW(4::bigint, 2::bigint, 1::bigint, 1::bigint), 'reserve: one retry pending, one failure');
SELECT ok((SELECT avg_ms >= 0 FROM orderflow.step_stats WHERE step = 'charge'), 'step_stats reports the average duration');
SELECT is((SELECT array_agg(order_id) FROM orderflow.stuck_workflows), ARRAY['op-waiting'],
          'stuck_workflows lists the unfinished workflow older than stuck_after');
SELECT is((SELECT waiting_step FROM orderflow.stuck_workflows WHERE order_id = 'op-waiting'), 'reserve',
          'and the step it waits on');
SELECT is((SELECT last_error FROM orderflow.stuck_workflows WHERE order_id = 'op-waiting'), 'injected transient fault',
          'and why');

-- prune: on 2030-01-10 the key from 2030-01-01 has expired; op-old finished 9 days ago.
SELECT is(orderflow.prune(interval '7 days'), 2::bigint, 'prune deletes one expired key and one old finished workflow');
SELECT is((SELECT array_agg(key) FROM orderflow.idempotency_keys), ARRAY['op-key-new'], 'the unexpired key stays');
SELECT is((SELECT array_agg(order_id ORDER BY order_id) FROM orderflow.workflows),
          ARRAY['op-failed', 'op-new', 'op-waiting'], 'recent and unfinished workflows stay');
SELECT is((SELECT count(*)::int FROM orderflow.workflow_steps WHERE order_id = 'op-old'), 0, 'its steps went with it');
SELECT is((SELECT count(*)::int FROM orderflow.reservations WHERE order_id = 'op-old'), 0, 'its reservation too');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'op-old'), 1, 'the ledger keeps its charge');
SELECT is((SELECT count(*)::int FROM orderflow.orders WHERE id = (SELECT id FROM old_order)), 1,
          'the order of an expired key stays: orders are never pruned');
SELECT throws_ok($$SELECT orderflow.process_order('op-old', 10, 'w')$$, 'OF409',
                 'orderId op-old was used by a workflow that has been pruned', 'a pruned order id cannot be charged again');
SELECT throws_ok($$SELECT orderflow.prune(NULL)$$, '22023', 'older_than must be a positive interval', 'prune needs an interval');

SELECT * FROM finish();
ROLLBACK;
