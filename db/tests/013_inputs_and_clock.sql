-- Input rules owned by the database (the same sentences over HTTP and psql), the clock only the
-- owner can pin, keys that expire by themselves, statements that stop when cancelled, stable
-- error sentences, and prune keeping what was never published.
BEGIN;
SELECT plan(39);

UPDATE orderflow.faults SET remaining = 0;

-- process_order_request: the JSON body is checked field by field.
SELECT throws_ok($$SELECT orderflow.process_order_request(NULL, '[1]')$$, '22023',
                 'request body must be a JSON object', 'an array is not a request');
SELECT throws_ok($$SELECT orderflow.process_order_request(NULL, '{}')$$, '22023',
                 'orderId is required', 'orderId is required');
SELECT throws_ok($$SELECT orderflow.process_order_request(NULL, '{"orderId": 7}')$$, '22023',
                 'orderId must be a string of 1 to 200 characters', 'a numeric orderId is refused');
SELECT throws_ok($$SELECT orderflow.process_order_request('in-1', '{"orderId": "in-1", "amount": "12"}')$$, '22023',
                 'amount must be a number greater than 0 and less than 10000000000', 'a string amount is refused');
SELECT throws_ok($$SELECT orderflow.process_order_request('in-1', '{"orderId": "in-1", "amount": 1, "item": 5}')$$, '22023',
                 'item must be a string of 1 to 200 characters', 'a numeric item is refused');
SELECT throws_ok($$SELECT orderflow.process_order_request('other', '{"orderId": "in-1", "amount": 1, "item": "w"}')$$, '22023',
                 NULL, 'the routing argument must equal the body''s orderId');
SELECT throws_ok($$SELECT orderflow.process_order_request('   ', '{"orderId": "   ", "amount": 1, "item": "w"}')$$, '22023',
                 'orderId must not be blank', 'a whitespace-only orderId is refused');
SELECT throws_ok($$SELECT orderflow.process_order(E'a\u0085b', 1, 'w')$$, '22023',
                 'orderId must not contain control characters', 'U+0085 is a control character');
SELECT throws_ok($$SELECT orderflow.process_order(E'a\u2028b', 1, 'w')$$, '22023',
                 'orderId must not contain control characters', 'U+2028 is refused too');
SELECT throws_ok($$SELECT orderflow.process_order('in-x', 1, E'\u00a0\u3000')$$, '22023',
                 'item must not be blank', 'blank in any Unicode space is blank');
SELECT is(orderflow.process_order_request('in-1', '{"orderId": "in-1", "amount": 12.50, "item": "w", "extra": true}')->>'status',
          'completed', 'a valid body runs the workflow; unknown fields are ignored');
SELECT is(orderflow.process_order_request('in-1', '{"orderId": "in-1", "amount": null}')->>'status',
          'completed', 'a null amount is an omitted one (resume by id)');

-- cancel_order_request: no body, or {"reason"}.
SELECT is(orderflow.cancel_order_request('in-1', NULL)->>'status', 'cancelled', 'a cancel needs no body');
SELECT throws_ok($$SELECT orderflow.cancel_order_request('in-1', '{"reason": 3}')$$, '22023',
                 'reason must be a string of 1 to 500 characters', 'a numeric reason is refused');
SELECT throws_ok($$SELECT orderflow.cancel_order_request('in-1', '"why"')$$, '22023',
                 'request body must be a JSON object', 'a cancel body must be an object');

-- create_order_idempotent: 2.0 is the integer 2, as JSON means it.
SELECT is((SELECT body->>'quantity' FROM orderflow.create_order_idempotent('in-key-1', '{"item":"w","quantity":2.0}')),
          '2', 'quantity 2.0 is accepted as 2');
SELECT throws_ok($$SELECT * FROM orderflow.create_order_idempotent('in-key-2', '{"item":"w","quantity":2.5}')$$, '22023',
                 'quantity must be an integer from 1 to 1000000', 'quantity 2.5 is refused');
SELECT throws_ok($$SELECT * FROM orderflow.create_order_idempotent('in-key-2', '{"quantity":2}')$$, '22023',
                 'item is required', 'a missing item is required');
SELECT throws_ok($$SELECT * FROM orderflow.create_order_idempotent('', '{"item":"w","quantity":1}')$$, '22023',
                 'Idempotency-Key header is required', 'the seed sentence for an empty key');

-- Keys expire by themselves: an expired key is claimed anew, and janitor_tick deletes them.
SELECT orderflow.pin_clock('2030-01-01 00:00:00+00');
CREATE TEMP TABLE first_order AS
    SELECT body->>'id' AS id FROM orderflow.create_order_idempotent('in-exp', '{"item":"w","quantity":1}');
SELECT orderflow.pin_clock('2030-01-01 23:59:59+00');
SELECT is((SELECT replayed FROM orderflow.create_order_idempotent('in-exp', '{"item":"w","quantity":1}')),
          true, 'before 24 hours the key replays');
SELECT orderflow.pin_clock('2030-01-02 00:00:01+00');
CREATE TEMP TABLE second_order AS
    SELECT status, replayed, body->>'id' AS id
      FROM orderflow.create_order_idempotent('in-exp', '{"item":"w","quantity":2}');
SELECT is((SELECT status FROM second_order), 201, 'after 24 hours the key is absent: a new order (201), even with another body');
SELECT isnt((SELECT id FROM second_order), (SELECT id FROM first_order), 'with a new order id');
SELECT ok(EXISTS (SELECT 1 FROM orderflow.orders WHERE id = (SELECT id::uuid FROM first_order)), 'the old order stays');
SELECT orderflow.create_order_idempotent('in-exp-2', '{"item":"w","quantity":1}');
SELECT orderflow.pin_clock('2030-01-04 00:00:00+00');
DELETE FROM orderflow.idempotency_keys WHERE key NOT LIKE 'in-%';  -- a tick deletes at most 1000
SELECT lives_ok($$SELECT orderflow.janitor_tick(1)$$, 'the janitor ticks');
SELECT is((SELECT count(*)::int FROM orderflow.idempotency_keys WHERE key IN ('in-exp', 'in-exp-2')), 0,
          'the janitor deleted the expired keys without anyone calling prune');

-- The clock: only the owner pins; no infinite or out-of-range times.
SELECT throws_ok($$SELECT orderflow.pin_clock('infinity')$$, '22023', 'pin_clock needs a finite time', 'infinity cannot be pinned');
SELECT throws_ok($$SELECT orderflow.advance_clock('1000000 years')$$, '22023', NULL, 'advancing out of range is 22023');
SELECT lives_ok($$SELECT orderflow.prune('1000000 years')$$, 'prune of an interval longer than time itself deletes nothing and lives');
SELECT orderflow.unpin_clock();
SET SESSION AUTHORIZATION orderflow_app;
SET LOCAL orderflow.pinned_now = '2099-01-01 00:00:00+00';
SELECT orderflow.process_order('in-clock', 1, 'w');
RESET SESSION AUTHORIZATION;
SELECT ok((SELECT created_at < '2090-01-01' FROM orderflow.workflows WHERE order_id = 'in-clock'),
          'the API role setting orderflow.pinned_now does not move the service clock');
SELECT is(orderflow.clock_now(), '2099-01-01 00:00:00+00'::timestamptz, 'while the owner''s session honours the same setting');
SELECT orderflow.unpin_clock();

-- A cancelled statement stops: statement_timeout inside a step is not caught as a step failure.
-- A drill makes this order's charge wait 2 s inside the step (where a slow provider or lock would).
SELECT orderflow.inject_fault('charge', 1, 'in-slow', 2000, NULL, NULL);
-- (throws_ok cannot see it: PL/pgSQL's WHEN OTHERS does not catch query_canceled, so this
-- catches it by name. Had a step caught it, process_order would return a state.)
CREATE FUNCTION pg_temp.try_slow() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orderflow.process_order('in-slow', 1, 'w');
    RETURN 'returned a state';
EXCEPTION WHEN query_canceled THEN
    RETURN 'cancelled';
END
$$;
SET LOCAL statement_timeout = '200ms';
SELECT is(pg_temp.try_slow(), 'cancelled', 'a statement timeout inside a step cancels the call');
RESET statement_timeout;
SELECT is(orderflow.get_workflow('in-slow'), NULL, 'and nothing of it is committed');
SELECT orderflow.inject_fault('charge', 0, 'in-slow', 0, NULL, NULL);  -- still armed: its use rolled back too

-- Internal errors reach clients as stable sentences; the detail stays with operators. A drill
-- raises in this order's charge the error a unique index would, with its constraint's name.
SELECT orderflow.inject_fault('charge', 1, 'in-leak', 0, '23505',
                              'duplicate key value violates unique constraint "payments_idempotency_key_key"');
CREATE TEMP TABLE leak AS SELECT orderflow.process_order('in-leak', 1, 'w') AS state;
SELECT is((SELECT state->>'error' FROM leak), 'charge failed: internal error', 'the error is a stable sentence');
SELECT doesnt_imatch((SELECT state::text FROM leak), 'constraint|duplicate key', 'no constraint name or database text in the state');
SELECT is((SELECT last_detail FROM orderflow.workflow_steps WHERE order_id = 'in-leak' AND step = 'charge'),
          'duplicate key value violates unique constraint "payments_idempotency_key_key"',
          'the database''s message is kept for operators');

-- prune never deletes an event that was not published.
SELECT orderflow.pin_clock('2031-01-01 00:00:00+00');
SELECT orderflow.process_order('in-event', 1, 'w');
SELECT orderflow.pin_clock('2031-06-01 00:00:00+00');
SELECT ok(orderflow.prune('1 day') >= 1, 'prune removes the old workflow');
SELECT ok(EXISTS (SELECT 1 FROM orderflow.outbox WHERE event_key = 'in-event:confirm' AND published_at IS NULL),
          'its unpublished order.confirmed event stays');
SELECT ok(orderflow.publish_outbox(10000) >= 1, 'it is published later');
SELECT orderflow.pin_clock('2031-12-01 00:00:00+00');
SELECT orderflow.prune('1 day');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderflow.outbox WHERE event_key = 'in-event:confirm'),
          'and pruned once published and old');

SELECT * FROM finish();
ROLLBACK;
