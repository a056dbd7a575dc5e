-- process_order and get_workflow: the happy path, replays that change nothing, resume by id,
-- OF409 on a mismatch and 22023 for every invalid argument.
BEGIN;
SELECT plan(40);

SELECT orderflow.pin_clock('2030-01-01 12:00:00+00');

-- Happy path: all three steps, once each, with their effects.
CREATE TEMP TABLE first AS SELECT orderflow.process_order('wf-1', 99.99, 'widget') AS state;
SELECT is((SELECT state->>'status' FROM first), 'completed', 'a new workflow runs to completed');
SELECT is((SELECT state->>'orderId' FROM first), 'wf-1', 'the state names the order');
SELECT is((SELECT state->'amount' FROM first), '99.99'::jsonb, 'the amount is a JSON number');
SELECT is((SELECT state->>'item' FROM first), 'widget', 'the state carries the item');
SELECT is((SELECT state->'steps'->'charge' FROM first),
          '{"attempts": 1, "completed": true, "lastError": null, "completedAt": "2030-01-01T12:00:00.000Z", "compensatedAt": null}'::jsonb,
          'charge: completed on the first attempt');
SELECT is((SELECT state->'steps'->'reserve'->>'attempts' FROM first), '1', 'reserve: one attempt');
SELECT is((SELECT state->'steps'->'confirm'->>'completed' FROM first), 'true', 'confirm: completed');
SELECT is((SELECT state->'error' FROM first), 'null'::jsonb, 'no error');
SELECT is((SELECT state->'nextRetryAt' FROM first), 'null'::jsonb, 'nothing scheduled');
SELECT is((SELECT state->>'createdAt' FROM first), '2030-01-01T12:00:00.000Z', 'createdAt comes from the clock');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'wf-1' AND kind = 'charge'), 1,
          'one charge in the ledger');
SELECT is((SELECT idempotency_key FROM orderflow.payments WHERE order_id = 'wf-1'), 'wf-1:charge',
          'the charge is keyed <orderId>:charge');
SELECT is((SELECT amount FROM orderflow.payments WHERE order_id = 'wf-1'), 99.99::numeric, 'the charge is for the amount');
SELECT is((SELECT count(*)::int FROM orderflow.reservations WHERE order_id = 'wf-1'), 1, 'one reservation');
SELECT is((SELECT event_type FROM orderflow.outbox WHERE event_key = 'wf-1:confirm'), 'order.confirmed',
          'one order.confirmed event keyed <orderId>:confirm');

-- Replays change nothing, whatever they pass.
SELECT orderflow.advance_clock(interval '1 minute');
SELECT is(orderflow.process_order('wf-1', 99.99, 'widget'), (SELECT state FROM first), 'a second call returns the same state');
SELECT is(orderflow.process_order('wf-1', 99.990, NULL), (SELECT state FROM first), 'an equal amount is the same order');
SELECT is(orderflow.process_order('wf-1'), (SELECT state FROM first), 'resume by id alone returns the same state');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'wf-1'), 1, 'still one charge');
SELECT is((SELECT sum(attempts)::int FROM orderflow.workflow_steps WHERE order_id = 'wf-1'), 3, 'still one attempt per step');
SELECT is(orderflow.get_workflow('wf-1'), (SELECT state FROM first), 'get_workflow returns the same state');
SELECT is(orderflow.get_workflow('wf-unknown'), NULL, 'get_workflow of an unknown order is null');

-- Independent orders.
SELECT is(orderflow.process_order('wf-2', 5, 'gadget')->>'status', 'completed', 'another order completes on its own');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id IN ('wf-1', 'wf-2')), 2, 'each order has its own charge');

-- Mismatch: OF409, and nothing changes.
SELECT throws_ok($$SELECT orderflow.process_order('wf-1', 10, 'widget')$$, 'OF409',
                 'orderId wf-1 is already known with another amount, item or payment method', 'another amount raises OF409');
SELECT throws_ok($$SELECT orderflow.process_order('wf-1', 99.99, 'gadget')$$, 'OF409',
                 'orderId wf-1 is already known with another amount, item or payment method', 'another item raises OF409');

-- Invalid arguments: 22023, and no workflow is created.
SELECT throws_ok($$SELECT orderflow.process_order(NULL, 1, 'w')$$, '22023', 'orderId is required', 'a null orderId');
SELECT throws_ok($$SELECT orderflow.process_order('', 1, 'w')$$, '22023', 'orderId must be a string of 1 to 200 characters', 'an empty orderId');
SELECT throws_ok($$SELECT orderflow.process_order(repeat('o', 201), 1, 'w')$$, '22023', 'orderId must be a string of 1 to 200 characters', 'a 201-character orderId');
SELECT throws_ok($$SELECT orderflow.process_order(E'o\n1', 1, 'w')$$, '22023', 'orderId must not contain control characters', 'an orderId with a newline');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', 0, 'w')$$, '22023', 'amount must be a number greater than 0 and less than 10000000000', 'amount 0');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', -5, 'w')$$, '22023', 'amount must be a number greater than 0 and less than 10000000000', 'a negative amount');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', 'NaN', 'w')$$, '22023', 'amount must be a number greater than 0 and less than 10000000000', 'amount NaN');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', 1e10, 'w')$$, '22023', 'amount must be a number greater than 0 and less than 10000000000', 'amount 10^10');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', 1.005, 'w')$$, '22023', 'amount must have at most 2 decimal places', 'three decimals');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', 1, '')$$, '22023', 'item must be a string of 1 to 200 characters', 'an empty item');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', NULL, 'w')$$, '22023', 'amount is required to start a workflow', 'a new order without amount');
SELECT throws_ok($$SELECT orderflow.process_order('wf-bad', 1, NULL)$$, '22023', 'item is required to start a workflow', 'a new order without item');
SELECT is((SELECT count(*)::int FROM orderflow.workflows WHERE order_id = 'wf-bad'), 0, 'refused calls create no workflow');

-- Stock: a tracked item loses one unit per order.
INSERT INTO orderflow.inventory (item, on_hand, updated_at) VALUES ('lamp', 2, now());
SELECT orderflow.process_order('wf-3', 1, 'lamp');
SELECT is((SELECT on_hand FROM orderflow.inventory WHERE item = 'lamp'), 1, 'a tracked item loses one unit');

SELECT * FROM finish();
ROLLBACK;
