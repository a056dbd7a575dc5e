-- Webhooks, dead letters, circuit breakers and rate limits as the database sees them: the
-- Standard Webhooks signature (the specification's own test vector), subscriptions and their
-- checks, fan-out in the event's transaction, the delivery schedule on a pinned clock, 410,
-- redrive, read_events' cursor, circuit transitions and token-bucket refills.
BEGIN;
SELECT plan(81);

UPDATE orderflow.faults SET remaining = 0;
SELECT orderflow.set_provider('payments', NULL);
SELECT orderflow.pin_clock('2031-06-01 00:00:00+00');

CREATE FUNCTION pg_temp.claim() RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT e FROM orderflow.claim_effects(100, 'test-janitor', false) AS e
$$;
CREATE FUNCTION pg_temp.delivery(p_order text, p_hook bigint) RETURNS orderflow.effects LANGUAGE sql AS $$
    SELECT * FROM orderflow.effects WHERE order_id = p_order AND webhook_id = p_hook
$$;
-- PL/pgSQL, the token read first: Citus plans no distributed query with a SQL function's parameters.
CREATE FUNCTION pg_temp.report(p_id bigint, p_outcome jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_token uuid;
BEGIN
    SELECT e.lease_token INTO v_token FROM orderflow.effects e WHERE e.id = p_id;
    RETURN (SELECT r.state FROM orderflow.report_effect(p_id, v_token, p_outcome, NULL) AS r);
END
$$;
CREATE FUNCTION pg_temp.header(p_request jsonb, p_name text) RETURNS text LANGUAGE sql AS $$
    SELECT h ->> 1 FROM jsonb_array_elements(p_request -> 'headers') AS h WHERE h ->> 0 = p_name
$$;
CREATE FUNCTION pg_temp.advance(p_ms integer) RETURNS void LANGUAGE sql AS $$
    SELECT orderflow.pin_clock(orderflow.clock_now() + p_ms * interval '1 millisecond')
$$;
-- The pinned clock, for the test's own UPDATEs: STABLE, since it is pinned (Citus refuses a
-- VOLATILE function such as clock_now() in an UPDATE of a distributed table, and evaluates this
-- one once, on the coordinator).
CREATE FUNCTION pg_temp.pinned_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT orderflow.clock_now()
$$;

-- The signature: the test vector of the Standard Webhooks specification's libraries.
SELECT is(orderflow.webhook_signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
                                      1614265330, '{"test": 2432232314}'),
          'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'the Standard Webhooks test vector');

-- Subscriptions check what they store.
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('ftp://example.com/x')$$, '22023', NULL, 'only http(s)');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://user:pw@example.com/x')$$, '22023', NULL,
                 'no credentials in the URL');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://127.0.0.1:9/x')$$, '22023',
                 'url http://127.0.0.1:9/x is on a loopback or private address', 'loopback refused');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://10.1.2.3/x')$$, '22023', NULL, 'private refused');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://[::1]/x')$$, '22023', NULL, 'IPv6 loopback refused');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://[::ffff:192.168.0.1]/x')$$, '22023', NULL,
                 'IPv4-mapped private refused');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://localhost/x')$$, '22023', NULL, 'localhost refused');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('http://2130706433/x')$$, '22023', NULL,
                 'a bare number (127.0.0.1 to a resolver) refused');
SELECT throws_ok($$SELECT * FROM orderflow.add_webhook('https://example.com/x', ARRAY['order.shipped'])$$,
                 '22023', NULL, 'unknown event types refused');
SELECT lives_ok($$SELECT * FROM orderflow.add_webhook('https://hooks.example.com/orders')$$,
                'a public URL is accepted');

CREATE TEMP TABLE hooks AS
SELECT 'all' AS name, * FROM orderflow.add_webhook('http://127.0.0.1:9/all', NULL, true)
UNION ALL
SELECT 'cancels', * FROM orderflow.add_webhook('http://127.0.0.1:9/cancels', ARRAY['order.cancelled'], true);
CREATE FUNCTION pg_temp.hook(p_name text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM hooks WHERE name = p_name $$;
SELECT ok((SELECT bool_and(secret ~ '^whsec_[A-Za-z0-9+/]{32}$' AND length(decode(substr(secret, 7), 'base64')) = 24)
             FROM hooks), 'secrets are whsec_ + base64 of 24 random bytes');
SELECT is((SELECT count(*) FROM orderflow.webhook_subscriptions WHERE id IN (SELECT id FROM hooks)), 2::bigint,
          'the subscriptions are listed');
SELECT hasnt_column('orderflow', 'webhook_subscriptions', 'secret', 'the list never shows a secret');
-- Only these two subscriptions take part below.
SELECT orderflow.remove_webhook(id) FROM orderflow.webhooks WHERE id NOT IN (SELECT id FROM hooks) AND removed_at IS NULL;

-- Fan-out in the event's transaction: the confirm step writes one delivery per subscription that wants it.
SELECT is(orderflow.process_order('wh-1', 10, 'w')->>'status', 'completed', 'an order completes');
SELECT is((SELECT count(*) FROM orderflow.effects WHERE order_id = 'wh-1' AND kind = 'webhook'), 1::bigint,
          'order.confirmed: one delivery, to the subscription of all events');
SELECT is((pg_temp.delivery('wh-1', pg_temp.hook('all'))).state, 'open', 'due now');
CREATE TEMP TABLE req AS SELECT * FROM pg_temp.claim() AS r;
SELECT is((SELECT count(*) FROM req), 1::bigint, 'the janitor claims it (a server without a payments key too)');
SELECT is((SELECT r ->> 'url' FROM req r), 'http://127.0.0.1:9/all', 'to the subscribed URL');
SELECT is((SELECT pg_temp.header(r, 'webhook-id') FROM req r),
          'evt_' || (SELECT id FROM orderflow.outbox WHERE event_key = 'wh-1:confirm'), 'webhook-id is the event id');
SELECT is((SELECT pg_temp.header(r, 'webhook-timestamp') FROM req r),
          extract(epoch FROM timestamptz '2031-06-01 00:00:00+00')::bigint::text, 'webhook-timestamp is this attempt');
SELECT is((SELECT pg_temp.header(r, 'webhook-signature') FROM req r),
          (SELECT orderflow.webhook_signature(h.secret, pg_temp.header(r, 'webhook-id'),
                                              pg_temp.header(r, 'webhook-timestamp')::bigint, r ->> 'body')
             FROM req r, hooks h WHERE h.name = 'all'), 'signed with the subscription''s secret');
SELECT is((SELECT (r ->> 'body')::jsonb - 'timestamp' FROM req r),
          '{"type": "order.confirmed", "data": {"item": "w", "amount": 10, "orderId": "wh-1"}}'::jsonb,
          'the body is {type, timestamp, data}');
SELECT is((SELECT pg_temp.header(r, 'Authorization') FROM req r), NULL, 'no credentials of ours go to a consumer');
SELECT is((SELECT r ->> 'provider' FROM req r), 'webhook:' || pg_temp.hook('all'), 'the call names its provider');

-- The schedule (clock pinned): 500 → 5 s, then 5 min; 503 with Retry-After honours it; same webhook-id.
CREATE TEMP TABLE d AS SELECT (pg_temp.delivery('wh-1', pg_temp.hook('all'))).id AS id;
SELECT pg_temp.report((SELECT id FROM d), '{"status": 500, "body": "oops"}');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE id = (SELECT id FROM d)),
          timestamptz '2031-06-01 00:00:05+00', 'after the first failure: 5 s');
SELECT pg_temp.advance(5000);
CREATE TEMP TABLE req2 AS SELECT * FROM pg_temp.claim() AS r;
SELECT is((SELECT pg_temp.header(r, 'webhook-id') FROM req2 r), (SELECT pg_temp.header(r, 'webhook-id') FROM req r),
          'the retry carries the same webhook-id');
SELECT isnt((SELECT pg_temp.header(r, 'webhook-timestamp') FROM req2 r), (SELECT pg_temp.header(r, 'webhook-timestamp') FROM req r),
            'and its own timestamp');
SELECT pg_temp.report((SELECT id FROM d), '{"transport": "timeout", "error": "timed out"}');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE id = (SELECT id FROM d)),
          timestamptz '2031-06-01 00:05:05+00', 'after the second: 5 min');
SELECT pg_temp.advance(300000);
SELECT is((SELECT count(*) FROM pg_temp.claim()), 1::bigint, 'sent again when due');
SELECT pg_temp.report((SELECT id FROM d), '{"status": 503, "body": "", "retryAfter": "3600"}');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE id = (SELECT id FROM d)),
          timestamptz '2031-06-01 01:05:05+00', '503 with Retry-After 3600: not before an hour (the schedule said 30 min)');
SELECT pg_temp.advance(3600000);
SELECT is((SELECT count(*) FROM pg_temp.claim()), 1::bigint, 'sent after the Retry-After');
SELECT is(pg_temp.report((SELECT id FROM d), '{"status": 204, "body": ""}') #>> '{delivery,state}', 'succeeded',
          '2xx: delivered');

-- The whole schedule: ten attempts over about three days, then dead.
UPDATE orderflow.effects SET state = 'open', finished_at = NULL, attempts = 9, next_attempt_at = pg_temp.pinned_now()
 WHERE id = (SELECT id FROM d);
SELECT is((SELECT count(*) FROM pg_temp.claim()), 1::bigint, 'the tenth attempt');
SELECT pg_temp.report((SELECT id FROM d), '{"status": 500, "body": ""}');
SELECT is((SELECT state FROM orderflow.effects WHERE id = (SELECT id FROM d)), 'dead', 'after the tenth it is dead');
SELECT is((SELECT (sum(x) / 3600000.0)::numeric(6,2) FROM unnest((SELECT schedule_ms FROM orderflow.effect_policies
                                                                  WHERE kind = 'webhook')) AS x),
          75.58::numeric(6,2), 'the schedule spans about three days (75.6 h)');
SELECT is((SELECT kind || ' ' || event_type FROM orderflow.dead_letters WHERE id = (SELECT id FROM d)),
          'webhook order.confirmed', 'listed in dead_letters');

-- Redrive: same webhook-id, fresh attempts, spread at the given rate.
SELECT is(orderflow.redrive('webhook', p_per_second => 2), 1, 'redrive puts one back');
SELECT is((SELECT state || ' ' || attempts FROM orderflow.effects WHERE id = (SELECT id FROM d)), 'open 0',
          'open with fresh attempts');
SELECT is((SELECT pg_temp.header(r, 'webhook-id') FROM pg_temp.claim() r), (SELECT pg_temp.header(r, 'webhook-id') FROM req r),
          'and the same webhook-id');
SELECT pg_temp.report((SELECT id FROM d), '{"status": 200, "body": "ok"}');

-- 410 Gone disables the subscription; its next deliveries wait until it is enabled again.
SELECT orderflow.process_order('wh-2', 10, 'w');
SELECT pg_temp.claim();
SELECT pg_temp.report((pg_temp.delivery('wh-2', pg_temp.hook('all'))).id, '{"status": 410, "body": ""}');
SELECT is((SELECT enabled FROM orderflow.webhooks WHERE id = pg_temp.hook('all')), false, '410 disables the subscription');
SELECT orderflow.process_order('wh-3', 10, 'w');
SELECT is((SELECT count(*) FROM orderflow.effects WHERE order_id = 'wh-3' AND kind = 'webhook'), 0::bigint,
          'a disabled subscription gets no new deliveries');
SELECT is(orderflow.enable_webhook(pg_temp.hook('all')), true, 'enable_webhook');
SELECT is(orderflow.redrive(p_provider => 'webhook:' || pg_temp.hook('all')), 1, 'the 410 delivery is redriven');
SELECT is((SELECT count(*) FROM pg_temp.claim()), 1::bigint, 'and sent again');
SELECT pg_temp.report((pg_temp.delivery('wh-2', pg_temp.hook('all'))).id, '{"status": 200, "body": ""}');

-- Cancellation fans out to both; removal abandons what is not delivered, and nothing more is written.
SELECT is(orderflow.cancel_order('wh-1')->>'status', 'cancelled', 'cancel a confirmed order');
-- (The event's id looked up first: Citus joins effects and outbox only on the order id.)
SELECT is((SELECT count(*) FROM orderflow.effects e
            WHERE e.event_id = (SELECT o.id FROM orderflow.outbox o WHERE o.event_key = 'wh-1:cancel')),
          2::bigint, 'order.cancelled goes to both subscriptions');
SELECT is(orderflow.remove_webhook(pg_temp.hook('cancels')), 1, 'remove_webhook abandons its open delivery');
SELECT is((SELECT count(*) FROM pg_temp.claim() r WHERE r ->> 'provider' = 'webhook:' || pg_temp.hook('cancels')),
          0::bigint, 'nothing is sent to a removed subscription');
SELECT throws_ok(format('SELECT orderflow.rotate_webhook_secret(%s)', pg_temp.hook('cancels')), 'OF404', NULL,
                 'a removed subscription is gone');

-- Rotation: both secrets sign for 24 h.
SELECT orderflow.rotate_webhook_secret(pg_temp.hook('all'));
SELECT orderflow.process_order('wh-4', 10, 'w');
SELECT is((SELECT array_length(string_to_array(pg_temp.header(r, 'webhook-signature'), ' '), 1) FROM pg_temp.claim() r
            WHERE r ->> 'orderId' = 'wh-4'), 2, 'after a rotation two signatures, new and old');
SELECT pg_temp.report((pg_temp.delivery('wh-4', pg_temp.hook('all'))).id, '{"status": 200, "body": ""}');

-- read_events pages through the published stream by a cursor, in order, and resumes. An event
-- is read once the relay has published it (numbered it), never before.
SELECT orderflow.publish_outbox(10000);
SELECT orderflow.process_order('wh-late', 10, 'w');
CREATE TEMP TABLE page1 AS SELECT orderflow.read_events(NULL, 2) AS p;
SELECT is((SELECT jsonb_array_length(p -> 'events') FROM page1), 2, 'a page of two');
SELECT is((SELECT p #>> '{events,0,type}' FROM page1), 'order.confirmed', 'events carry their type');
CREATE TEMP TABLE page2 AS SELECT orderflow.read_events((SELECT p ->> 'next' FROM page1), 1000) AS p;
SELECT is((SELECT jsonb_array_length(p1.p -> 'events') + jsonb_array_length(p2.p -> 'events') FROM page1 p1, page2 p2),
          (SELECT count(*)::int FROM orderflow.outbox WHERE published_seq IS NOT NULL), 'the two pages hold every published event once');
SELECT is((SELECT orderflow.read_events(p ->> 'next', 10) -> 'events' FROM page2), '[]'::jsonb,
          'the event the relay has not published yet is not read');
SELECT is(orderflow.publish_outbox(10), 1, 'the relay publishes it');
SELECT is((SELECT orderflow.read_events(p ->> 'next', 10) #>> '{events,0,orderId}' FROM page2), 'wh-late',
          'then it comes next: the cursor skipped nothing');
SELECT is((SELECT orderflow.read_events(p ->> 'next', 10) #>> '{events,0,cursor}' FROM page2),
          (SELECT published_seq::text FROM orderflow.outbox WHERE order_id = 'wh-late'),
          'its cursor is its place in the published stream');
SELECT throws_ok($$SELECT orderflow.read_events('12-3', 10)$$, '22023', NULL, 'a malformed cursor is refused');
SELECT throws_ok($$SELECT orderflow.read_events(NULL, 0)$$, '22023', NULL, 'limit 1..1000');

-- Circuit breaker (payments): 10 calls at 50 % failures open it; open, nothing is leased and the
-- call keeps its attempts; after 5 s one probe; a failed probe doubles the open time; a good one closes.
SELECT orderflow.set_provider('payments', 'http://127.0.0.1:1', '{"timeoutMs": 1000}');
CREATE FUNCTION pg_temp.charge_call(p_order text, p_outcome jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE v jsonb;
BEGIN
    SELECT effect INTO v FROM orderflow.process_order_http(p_order, jsonb_build_object('orderId', p_order, 'amount', 1, 'item', 'w'),
                                                         'srv', 'test');
    IF v IS NULL THEN RETURN NULL; END IF;
    PERFORM orderflow.report_effect((v ->> 'id')::bigint, (v ->> 'token')::uuid, p_outcome, NULL);
    RETURN v;
END $$;
SELECT pg_temp.charge_call('cb-' || i, CASE WHEN i % 2 = 0 THEN '{"status": 503, "body": ""}'::jsonb
                                           ELSE jsonb_build_object('status', 200, 'body',
                                                '{"id":"pi_x","object":"payment_intent","status":"succeeded"}') END)
  FROM generate_series(1, 9) AS i;
SELECT is((SELECT state FROM orderflow.circuits WHERE provider = 'payments'), 'closed', '9 calls: still closed');
SELECT pg_temp.charge_call('cb-10', '{"status": 503, "body": ""}');
SELECT is((SELECT state FROM orderflow.circuits WHERE provider = 'payments'), 'open',
          'the tenth call, 5 of 10 failed: open');
SELECT is((SELECT open_until FROM orderflow.circuits WHERE provider = 'payments'),
          orderflow.clock_now() + interval '5 seconds', 'for 5 s');
SELECT is(pg_temp.charge_call('cb-11', '{"status": 200, "body": ""}'), NULL, 'open: a new charge is not sent');
SELECT is((SELECT attempts FROM orderflow.effects WHERE order_id = 'cb-11'), 0, 'and keeps its attempts');
SELECT is(orderflow.get_workflow('cb-11') #>> '{steps,charge,provider,waitingFor,reason}', 'circuit_open',
          'the state says why the order waits');
SELECT is((SELECT count(*) FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments'),
          0::bigint, 'the janitor sends none either');
SELECT pg_temp.advance(5000);
CREATE TEMP TABLE probes AS SELECT e FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments';
SELECT is((SELECT count(*) FROM probes), 1::bigint, 'after 5 s: one probe, though six calls are due');
SELECT is((SELECT state FROM orderflow.circuits WHERE provider = 'payments'), 'half_open', 'half-open');
SELECT orderflow.report_effect((e ->> 'id')::bigint, (e ->> 'token')::uuid, '{"transport": "connect", "error": "refused"}', NULL)
  FROM probes;
SELECT is((SELECT state || ' ' || (open_until - orderflow.clock_now()) FROM orderflow.circuits WHERE provider = 'payments'),
          'open 00:00:10', 'the probe failed: open again, for twice as long');
SELECT pg_temp.advance(10000);
DELETE FROM probes;
INSERT INTO probes SELECT e FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments';
SELECT orderflow.report_effect((e ->> 'id')::bigint, (e ->> 'token')::uuid,
                               jsonb_build_object('status', 200, 'body', '{"id":"pi_p","object":"payment_intent","status":"succeeded"}'),
                               NULL) FROM probes;
SELECT is((SELECT state || ' ' || trips FROM orderflow.circuits WHERE provider = 'payments'), 'closed 0',
          'the probe succeeded: closed');
SELECT cmp_ok((SELECT count(*) FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments'),
              '>=', 5::bigint, 'and the waiting calls are due at once');

-- A 429's Retry-After pauses the whole provider.
UPDATE orderflow.effects SET lease_token = NULL, next_attempt_at = pg_temp.pinned_now()
 WHERE provider = 'payments' AND state = 'open';
SELECT pg_temp.charge_call('rl-1', '{"status": 429, "body": "", "retryAfter": "7"}');
SELECT is((SELECT paused_until FROM orderflow.circuits WHERE provider = 'payments'), orderflow.clock_now() + interval '7 seconds',
          'a 429 with Retry-After 7 pauses the provider for 7 s');
SELECT is((SELECT count(*) FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments'), 0::bigint,
          'nothing of the provider is sent meanwhile');
SELECT is((SELECT state FROM orderflow.circuits WHERE provider = 'payments'), 'closed', 'a 429 is not a failure');

-- Token bucket: 2 per second; empty after two; refilled at the rate.
SELECT orderflow.set_provider('payments', 'http://127.0.0.1:1', '{"timeoutMs": 1000, "ratePerSecond": 2}');
SELECT pg_temp.advance(7000);
UPDATE orderflow.effects SET next_attempt_at = pg_temp.pinned_now() WHERE provider = 'payments' AND state = 'open';
SELECT is((SELECT count(*) FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments'), 2::bigint,
          'a full bucket of 2 lets two calls go');
SELECT is((SELECT count(*) FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments'), 0::bigint,
          'then none');
SELECT pg_temp.advance(500);
SELECT is(orderflow._tokens('payments', orderflow.clock_now()), 1::double precision,
          'half a second refills one token (half of each of its two stripes)');
SELECT pg_temp.advance(500);
SELECT is((SELECT count(*) FROM orderflow.claim_effects(100, 'j', true) e WHERE e ->> 'provider' = 'payments'), 2::bigint,
          'a second refills two, which let two calls go');

-- A payment call whose key was first sent 20 h ago is redriven into reconciliation, not re-sent.
UPDATE orderflow.effects SET state = 'dead', next_attempt_at = NULL, finished_at = pg_temp.pinned_now(),
       key_sent_at = pg_temp.pinned_now() - interval '21 hours', lease_token = NULL
 WHERE order_id = 'cb-2' AND kind = 'charge';
SELECT is(orderflow.redrive('charge', p_order_id => 'cb-2'), 1, 'a dead charge is redriven');
SELECT is((SELECT phase FROM orderflow.effects WHERE order_id = 'cb-2' AND kind = 'charge'), 'lookup',
          'as a lookup: its key may have expired');

SELECT * FROM finish();
ROLLBACK;
