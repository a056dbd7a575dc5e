-- retry_workflow: a failed order runs again as a new run, under new keys, its history kept,
-- only once its compensation is complete; and the console's functions: the overview, the
-- order page, actions recorded with their source, a dead letter redriven by id.
BEGIN;
SELECT plan(27);

UPDATE orderflow.faults SET remaining = 0;
SELECT orderflow.set_provider('payments', NULL);
SELECT orderflow.remove_webhook(id) FROM orderflow.webhooks WHERE removed_at IS NULL;
SELECT orderflow.pin_clock('2033-05-01 09:00:00+00');

-- Out of stock: the order fails, its charge refunded.
SELECT orderflow.set_stock('rt-item', 0);
SELECT is(orderflow.process_order('rr-1', 7, 'rt-item')->>'status', 'failed', 'out of stock: failed');
SELECT throws_ok($$SELECT orderflow.retry_workflow('rr-nobody')$$, 'OF404', NULL, 'unknown order: OF404');
SELECT orderflow.process_order('rr-done', 7, 'w');
SELECT throws_ok($$SELECT orderflow.retry_workflow('rr-done')$$, 'OF409',
                 'order rr-done is completed: only a failed order can be retried', 'only a failed order');

-- Restocked: the retry runs at once as run 2, under run-2 keys.
SELECT orderflow.set_stock('rt-item', 5);
SELECT orderflow.pin_clock('2033-05-01 09:05:00+00');
SELECT is(orderflow.retry_workflow('rr-1')->>'status', 'completed', 'the retry completes once restocked');
SELECT is((SELECT run FROM orderflow.workflows WHERE order_id = 'rr-1'), 2, 'as run 2');
SELECT is((SELECT array_agg(idempotency_key ORDER BY id) FROM orderflow.payments WHERE order_id = 'rr-1'),
          ARRAY['rr-1:charge', 'rr-1:refund', 'rr-1:run2:charge'], 'run 1 charged and refunded; run 2 charged under its own key');
SELECT is((SELECT sum(CASE kind WHEN 'charge' THEN amount ELSE -amount END) FROM orderflow.payments WHERE order_id = 'rr-1'),
          7::numeric, 'the order is charged once in all');
SELECT is((SELECT count(*) FROM orderflow.reservations WHERE order_id = 'rr-1' AND run = 2 AND released_at IS NULL),
          1::bigint, 'run 2 holds its reservation');
SELECT is((SELECT event_key FROM orderflow.outbox WHERE order_id = 'rr-1'), 'rr-1:run2:confirm',
          'its event is the run''s');
SELECT is(orderflow.get_workflow('rr-1') #>> '{steps,reserve,attempts}', '1', 'the new run''s steps start over');
SELECT is((SELECT count(*) FROM jsonb_array_elements(orderflow.order_history('rr-1') -> 'events') e
            WHERE e ->> 'outcome' = 'failed' AND e ->> 'step' = 'reserve'), 1::bigint, 'the old run''s failure is in the history');
SELECT is((SELECT e ->> 'actor' FROM jsonb_array_elements(orderflow.order_history('rr-1') -> 'events') e
            WHERE e ->> 'step' = 'retry_workflow'), 'operator', 'the retry is recorded as the operator''s');
SELECT is((SELECT e ->> 'from' FROM jsonb_array_elements(orderflow.order_history('rr-1') -> 'events') e
            WHERE e ->> 'kind' = 'transition' AND e ->> 'outcome' = 'pending'), 'failed', 'failed → pending');
SELECT is(orderflow.cancel_order('rr-1')->>'status', 'cancelled', 'run 2 can be cancelled like any order');
SELECT is((SELECT count(*) FROM orderflow.payments WHERE order_id = 'rr-1' AND idempotency_key = 'rr-1:run2:refund'),
          1::bigint, 'its refund is run 2''s');

-- Not while a refund is still at the provider.
SELECT orderflow.set_provider('payments', 'http://127.0.0.1:9', '{"timeoutMs": 1000}');
SELECT orderflow.set_stock('rt-gone', 0);
CREATE TEMP TABLE l AS
    SELECT effect FROM orderflow.process_order_http('rr-2', '{"orderId":"rr-2","amount":3,"item":"rt-gone"}', 'srv', 'test');
SELECT is((SELECT s ->> 'status' FROM l, orderflow.report_effect((effect ->> 'id')::bigint, (effect ->> 'token')::uuid,
             jsonb_build_object('status', 200, 'body', '{"id":"pi_rr2","object":"payment_intent","status":"succeeded"}'),
             NULL) AS r (s, e)), 'failed', 'charged at the provider, then out of stock: failed, refund pending');
SELECT throws_ok($$SELECT orderflow.retry_workflow('rr-2')$$, 'OF409', NULL, 'no retry while its refund is open');
SELECT orderflow.set_provider('payments', NULL);

-- The console: the overview, an order's page, actions with their source.
SELECT ok(orderflow.console_overview() ?& ARRAY['counts', 'stuck', 'failing', 'circuits', 'deadLetters',
                                                'deadLetterList', 'chart'],
          'the overview has every part');
SELECT cmp_ok(jsonb_array_length(orderflow.console_overview() -> 'chart'), '>', 0, 'the chart has points');
SELECT is((SELECT jsonb_array_length(orderflow.console_order('rr-1') -> 'ledger')), 4, 'the order page shows its ledger');
SELECT throws_ok($$SELECT orderflow.console_order('rr-nobody')$$, 'OF404', NULL, 'unknown order');
SELECT orderflow.inject_fault('reserve', 1, true);
SELECT orderflow.process_order('rr-3', 2, 'w');
SELECT is(orderflow.console_action('rr-3', 'cancel', 'customer phoned', 'console 127.0.0.1')->>'status', 'cancelled',
          'cancel from the console');
SELECT is((SELECT e ->> 'detail' FROM jsonb_array_elements(orderflow.order_history('rr-3') -> 'events') e
            WHERE e ->> 'step' = 'console_cancel'), 'console 127.0.0.1 — customer phoned', 'recorded with where it came from');
SELECT throws_ok($$SELECT orderflow.console_action('rr-3', 'explode', NULL, 'console')$$, '22023', NULL, 'unknown action');
SELECT throws_ok($$SELECT orderflow.console_action('rr-3', 'retry', NULL, 'console')$$, 'OF409', NULL,
                 'retry of a cancelled order: its own error');

-- A dead letter redriven by id.
SELECT orderflow.set_provider('payments', 'http://127.0.0.1:9', '{"timeoutMs": 1000}');
CREATE TEMP TABLE l4 AS
    SELECT effect FROM orderflow.process_order_http('rr-4', '{"orderId":"rr-4","amount":3,"item":"w"}', 'srv', 'test');
SELECT orderflow.report_effect((effect ->> 'id')::bigint, (effect ->> 'token')::uuid, '{"status": 401, "body": ""}', NULL) FROM l4;
SELECT is(orderflow.console_redrive((SELECT (effect ->> 'id')::bigint FROM l4), 'console 127.0.0.1'), 1,
          'the dead call is redriven');
SELECT is((SELECT state FROM orderflow.effects WHERE order_id = 'rr-4'), 'open', 'open again');
SELECT orderflow.set_provider('payments', NULL);

SELECT * FROM finish();
ROLLBACK;
