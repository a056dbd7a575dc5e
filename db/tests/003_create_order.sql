-- create_order_idempotent and get_order: the first request creates, an equal one replays, a
-- different one is refused with OF422, bad input with 22023 — and nothing is created by a refusal.
BEGIN;
SELECT plan(34);

SELECT orderflow.pin_clock('2030-01-01 12:00:00+00');
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM orderflow.orders) AS orders;

-- Happy path.
CREATE TEMP TABLE first AS
SELECT * FROM orderflow.create_order_idempotent('key-1', '{"item": "widget", "quantity": 2, "note": "dropped"}');
SELECT is((SELECT status FROM first), 201, 'the first request creates: 201');
SELECT is((SELECT replayed FROM first), false, 'the first request is not a replay');
SELECT is((SELECT body - 'id' FROM first),
          '{"item": "widget", "quantity": 2, "createdAt": "2030-01-01T12:00:00.000Z"}'::jsonb,
          'the body is the order, unknown fields dropped');
SELECT is((SELECT count(*)::int FROM orderflow.orders WHERE id = (SELECT (body->>'id')::uuid FROM first)), 1,
          'one order row exists');
SELECT is((SELECT substr(body->>'id', 15, 1) FROM first), '7', 'order ids are version 7 (time-ordered) UUIDs');
SELECT ok((SELECT abs(('x' || lpad(replace(substr(orderflow._new_order_id()::text, 1, 13), '-', ''), 16, '0'))::bit(64)::bigint
                      - floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) < 1000),
          'their first 48 bits are the Unix time in milliseconds');
SELECT is((SELECT request FROM orderflow.idempotency_keys WHERE key = 'key-1'),
          '{"item": "widget", "quantity": 2}'::jsonb, 'the stored request keeps only item and quantity');
SELECT is((SELECT expires_at FROM orderflow.idempotency_keys WHERE key = 'key-1'),
          '2030-01-02 12:00:00+00'::timestamptz, 'the key expires after 24 hours by default');

-- Replay: equal as JSON values, not as bytes.
SELECT orderflow.advance_clock(interval '1 hour');
CREATE TEMP TABLE replay AS
SELECT * FROM orderflow.create_order_idempotent('key-1', '{"quantity": 2.0, "item": "widget"}');
SELECT is((SELECT status FROM replay), 200, 'a replay answers 200');
SELECT is((SELECT replayed FROM replay), true, 'a replay says so');
SELECT is((SELECT body FROM replay), (SELECT body FROM first), 'a replay returns the stored body');
SELECT is((SELECT count(*) FROM orderflow.orders), (SELECT orders + 1 FROM before),
          'a replay creates nothing');

-- Mismatch.
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-1', '{"item": "widget", "quantity": 3}')$$,
                 'OF422', 'Idempotency-Key was already used with a different request',
                 'the same key with another request raises OF422');
SELECT is((SELECT count(*) FROM orderflow.orders), (SELECT orders + 1 FROM before),
          'a refused request creates nothing');

-- Different keys, different orders.
SELECT isnt((SELECT body->>'id' FROM orderflow.create_order_idempotent('key-2', '{"item": "widget", "quantity": 2}')),
            (SELECT body->>'id' FROM first), 'another key creates another order');

-- Invalid arguments: 22023 each, and no key is consumed.
SELECT throws_ok($$SELECT orderflow.create_order_idempotent(NULL, '{"item": "w", "quantity": 1}')$$,
                 '22023', 'Idempotency-Key header is required', 'a null key is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('', '{"item": "w", "quantity": 1}')$$,
                 '22023', 'Idempotency-Key header is required', 'an empty key is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent(repeat('k', 256), '{"item": "w", "quantity": 1}')$$,
                 '22023', 'Idempotency-Key must be 1 to 255 printable ASCII characters', 'a 256-character key is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('café', '{"item": "w", "quantity": 1}')$$,
                 '22023', 'Idempotency-Key must be 1 to 255 printable ASCII characters', 'a non-ASCII key is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent(E'tab\tkey', '{"item": "w", "quantity": 1}')$$,
                 '22023', 'Idempotency-Key must be 1 to 255 printable ASCII characters', 'a key with a control character is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '[1]')$$,
                 '22023', 'request body must be a JSON object', 'a request that is not an object is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', NULL)$$,
                 '22023', 'request body must be a JSON object', 'a null request is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"quantity": 1}')$$,
                 '22023', 'item is required', 'a missing item is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"item": "", "quantity": 1}')$$,
                 '22023', 'item must be a string of 1 to 200 characters', 'an empty item is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', jsonb_build_object('item', repeat('x', 201), 'quantity', 1))$$,
                 '22023', 'item must be a string of 1 to 200 characters', 'a 201-character item is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"item": "a\u0007b", "quantity": 1}')$$,
                 '22023', 'item must not contain control characters', 'an item with a control character is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"item": "w", "quantity": 0}')$$,
                 '22023', 'quantity must be an integer from 1 to 1000000', 'quantity 0 is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"item": "w", "quantity": 1.5}')$$,
                 '22023', 'quantity must be an integer from 1 to 1000000', 'a fractional quantity is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"item": "w", "quantity": 1000001}')$$,
                 '22023', 'quantity must be an integer from 1 to 1000000', 'a quantity over 1000000 is refused');
SELECT throws_ok($$SELECT orderflow.create_order_idempotent('key-3', '{"item": "w", "quantity": "1"}')$$,
                 '22023', 'quantity must be an integer from 1 to 1000000', 'a quantity given as a string is refused');
SELECT is((SELECT count(*)::int FROM orderflow.idempotency_keys WHERE key = 'key-3'), 0,
          'refused requests do not consume their key');

-- get_order.
SELECT is(orderflow.get_order((SELECT body->>'id' FROM first)), (SELECT body FROM first), 'get_order returns the order');
SELECT is(orderflow.get_order('00000000-0000-0000-0000-000000000000'), NULL, 'get_order of an unknown id is null');
SELECT is(orderflow.get_order('not-a-uuid'), NULL, 'get_order of a malformed id is null, not an error');

SELECT * FROM finish();
ROLLBACK;
