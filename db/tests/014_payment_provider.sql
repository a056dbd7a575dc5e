-- The payment provider (Stripe's API) as the database sees it: the stored request, the lease
-- and its fencing token, the classification of every kind of outcome (rules as data), the retry
-- schedule on a pinned clock, lookups before a new key, and what each outcome does to the
-- workflow (completed, failed, suspended, cancelling → cancelled).
BEGIN;
SELECT plan(64);

UPDATE orderflow.faults SET remaining = 0;
-- Deterministic schedule: no jitter.
UPDATE orderflow.effect_policies SET jitter = 0, base_delay_ms = 1000, multiplier = 2,
       max_delay_ms = 60000, max_attempts = 5;

-- Helpers: report an outcome for an order's open effect under its current lease.
CREATE FUNCTION pg_temp.lease_token(p_order text, p_kind text DEFAULT 'charge') RETURNS uuid
LANGUAGE sql AS $$ SELECT lease_token FROM orderflow.effects WHERE order_id = p_order AND kind = p_kind $$;
CREATE FUNCTION pg_temp.effect_id(p_order text, p_kind text DEFAULT 'charge') RETURNS bigint
LANGUAGE sql AS $$ SELECT id FROM orderflow.effects WHERE order_id = p_order AND kind = p_kind $$;
CREATE FUNCTION pg_temp.report(p_order text, p_outcome jsonb, p_kind text DEFAULT 'charge')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT state FROM orderflow.report_effect(pg_temp.effect_id(p_order, p_kind),
                                              pg_temp.lease_token(p_order, p_kind), p_outcome, NULL)
$$;
CREATE FUNCTION pg_temp.claim(p_order text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT e FROM orderflow.claim_effects(100, 'test-janitor') AS e WHERE e ->> 'orderId' = p_order
$$;
CREATE FUNCTION pg_temp.pi(p_id text, p_status text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('status', 200, 'body',
        jsonb_build_object('id', p_id, 'object', 'payment_intent', 'status', p_status)::text)
$$;

-- set_provider checks what it stores.
SELECT throws_ok($$SELECT orderflow.set_provider('payments', 'ftp://x', '{}')$$, '22023', NULL,
                 'only http(s) base URLs');
SELECT throws_ok($$SELECT orderflow.set_provider('payments', 'http://x/', '{}')$$, '22023', NULL,
                 'no trailing slash');
SELECT throws_ok($$SELECT orderflow.set_provider('payments', 'http://x', '{"timeoutMs": 5}')$$, '22023',
                 'timeoutMs must be an integer from 100 to 60000', 'timeoutMs is bounded');
SELECT throws_ok($$SELECT orderflow.set_provider('payments', 'http://x', '{"colour": 1}')$$, '22023',
                 'unknown provider setting colour', 'unknown settings are refused');
SELECT throws_ok($$SELECT orderflow.set_provider('payments', 'http://x', '{"currency": "xxx"}')$$, '22023',
                 NULL, 'unknown currencies are refused');
SELECT throws_ok($$SELECT orderflow.set_provider('mail', 'http://x')$$, '22023', NULL,
                 'only the payments provider');

-- The ledger stays the default.
SELECT is(orderflow.set_provider('payments', NULL), NULL, 'set_provider(payments, NULL) is the ledger');
SELECT is(orderflow.process_order('pp-ledger', 10, 'w')->>'status', 'completed', 'no provider: the ledger charges');
SELECT is((SELECT count(*) FROM orderflow.effects WHERE order_id = 'pp-ledger'), 0::bigint, 'and no effect is written');

SELECT orderflow.pin_clock('2031-01-01 00:00:00+00');
SELECT isnt(orderflow.set_provider('payments', 'http://127.0.0.1:1',
                                   '{"timeoutMs": 2000, "reconcileDelayMs": 30000}'), NULL,
            'the simulator is the provider');

-- A new workflow writes its charge's request once and waits on it.
CREATE TEMP TABLE first AS
    SELECT * FROM orderflow.process_order_http('pp-1', '{"orderId":"pp-1","amount":25.5,"item":"w"}', 'srv-a', 'test');
SELECT is((SELECT state->>'status' FROM first), 'charging', 'the workflow waits on the provider');
SELECT is((SELECT effect->>'body' FROM first),
          'amount=2550&currency=usd&payment_method=pm_card_visa&confirm=true&metadata%5Border_id%5D=pp-1',
          'the stored request: amount in cents, confirm, the order id in metadata');
SELECT is((SELECT effect->'headers'->0 FROM first), '["Idempotency-Key", "pp-1:charge"]'::jsonb,
          'the key is <orderId>:charge');
SELECT is((SELECT effect->>'url' FROM first), 'http://127.0.0.1:1/v1/payment_intents', 'POST /v1/payment_intents');
SELECT is((SELECT (effect->>'token')::uuid FROM first), pg_temp.lease_token('pp-1'), 'leased to the caller');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE order_id = 'pp-1'),
          '2031-01-01 00:00:07+00'::timestamptz, 'the lease lasts timeoutMs + 5 s');
SELECT is((SELECT effect FROM orderflow.process_order_http('pp-1', '{"orderId":"pp-1"}', 'srv-b', 'test')), NULL,
          'a concurrent call does not start a second attempt while one is in flight');
SELECT is((SELECT count(*) FROM orderflow.claim_effects(10, 'srv-c') AS e WHERE e->>'orderId' = 'pp-1'),
          0::bigint, 'nor does a janitor');

-- A stale report changes nothing.
SELECT is((SELECT state->>'status' FROM orderflow.report_effect(pg_temp.effect_id('pp-1'), gen_random_uuid(),
                                                                 pg_temp.pi('pi_x', 'succeeded'), NULL)),
          'charging', 'a report with another lease token is ignored');
SELECT is((SELECT state FROM orderflow.effects WHERE order_id = 'pp-1'), 'open', 'the effect is still open');

-- Transient outcomes retry the same key on the schedule.
SELECT is(pg_temp.report('pp-1', '{"transport": "timeout", "error": "timed out"}')->'steps'->'charge'->>'lastError',
          'no answer from the provider in time, will retry with the same key', 'a timeout retries');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE order_id = 'pp-1'),
          '2031-01-01 00:00:01+00'::timestamptz, 'after 1 s (base delay)');
SELECT is((SELECT pg_temp.claim('pp-1')), NULL, 'not due before then');
SELECT orderflow.pin_clock('2031-01-01 00:00:01+00');
SELECT is((SELECT pg_temp.claim('pp-1')->'headers'->0->>1), 'pp-1:charge', 'then claimed with the same key');
SELECT is(pg_temp.report('pp-1', '{"status": 429, "retryAfter": "30", "body": "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"rate_limit\"}}"}')->>'status',
          'charging', '429 retries');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE order_id = 'pp-1'),
          '2031-01-01 00:00:31+00'::timestamptz, 'no earlier than Retry-After');
SELECT orderflow.pin_clock('2031-01-01 00:00:31+00');
SELECT isnt(pg_temp.claim('pp-1'), NULL, 'claimed again');
SELECT is(pg_temp.report('pp-1', '{"status": 409, "body": "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"idempotency_key_in_use\"}}"}')->>'status',
          'charging', '409 idempotency_key_in_use retries');
SELECT is((SELECT next_attempt_at FROM orderflow.effects WHERE order_id = 'pp-1'),
          '2031-01-01 00:00:35+00'::timestamptz, 'backoff doubles: 4 s after the third attempt');
SELECT orderflow.pin_clock('2031-01-01 00:00:35+00');
SELECT isnt(pg_temp.claim('pp-1'), NULL, 'claimed a fourth time');
SELECT is(pg_temp.report('pp-1', pg_temp.pi('pi_pp1', 'succeeded'))->>'status', 'completed',
          'a succeeded PaymentIntent completes the charge and runs reserve and confirm');
SELECT is((SELECT object_id FROM orderflow.effects WHERE order_id = 'pp-1'), 'pi_pp1', 'the PaymentIntent id is kept');
SELECT is((orderflow.get_workflow('pp-1'))->'steps'->'charge'->'provider'->>'objectId', 'pi_pp1',
          'and shown in the state');
SELECT is((SELECT count(*) FROM orderflow.payments WHERE order_id = 'pp-1'), 0::bigint, 'the ledger is not used');

-- A stored 500 on creation: look before any new key.
SELECT orderflow.pin_clock('2031-01-01 00:01:00+00');
SELECT isnt((SELECT effect FROM orderflow.process_order_http('pp-2', '{"orderId":"pp-2","amount":3,"item":"w"}', 'srv-a', 'test')),
            NULL, 'pp-2 leased');
SELECT is(pg_temp.report('pp-2', '{"status": 500, "body": "{\"error\":{\"type\":\"api_error\"}}"}')->>'status',
          'charging', 'a 500 leaves the outcome unknown');
SELECT is((SELECT phase || ' ' || next_attempt_at FROM orderflow.effects WHERE order_id = 'pp-2'),
          'lookup 2031-01-01 00:01:30+00', 'the next attempt is a lookup, after reconcileDelayMs');
SELECT orderflow.pin_clock('2031-01-01 00:01:30+00');
SELECT is((SELECT e->>'method' || ' ' || (e->>'url') FROM pg_temp.claim('pp-2') AS e),
          'GET http://127.0.0.1:1/v1/payment_intents/search?query=metadata%5B%27order_id%27%5D%3A%27pp-2%27',
          'a search on metadata order_id');
SELECT is(pg_temp.report('pp-2', '{"status": 200, "body": "{\"object\":\"search_result\",\"data\":[]}"}')->>'status',
          'charging', 'nothing was charged');
SELECT is((SELECT phase || ' ' || idempotency_key FROM orderflow.effects WHERE order_id = 'pp-2'),
          'send pp-2:charge:2', 'only then a new key');
SELECT is((SELECT e->'headers'->0->>1 FROM pg_temp.claim('pp-2') AS e), 'pp-2:charge:2', 'sent with it');
SELECT is(pg_temp.report('pp-2', '{"status": 500, "body": "{}"}')->>'status', 'charging', 'another 500');
SELECT orderflow.pin_clock('2031-01-01 00:02:30+00');
SELECT isnt(pg_temp.claim('pp-2'), NULL, 'looked up again');
SELECT is(pg_temp.report('pp-2', jsonb_build_object('status', 200, 'body',
          '{"object":"search_result","data":[{"id":"pi_pp2","object":"payment_intent","status":"succeeded"}]}'))->>'status',
          'completed', 'the search finds the charge: done, no third key');

-- Declined, requires_action, dead.
SELECT isnt((SELECT effect FROM orderflow.process_order_http('pp-3', '{"orderId":"pp-3","amount":3,"item":"w"}', 'srv-a', 'test')),
            NULL, 'pp-3 leased');
SELECT is(pg_temp.report('pp-3', '{"status": 402, "body": "{\"error\":{\"type\":\"card_error\",\"code\":\"card_declined\",\"payment_intent\":{\"id\":\"pi_pp3\",\"object\":\"payment_intent\",\"status\":\"requires_payment_method\"}}}"}')->>'error',
          'charge failed: card declined', '402 fails the order with the decline');
SELECT is((SELECT count(*) FROM orderflow.reservations WHERE order_id = 'pp-3'), 0::bigint, 'nothing reserved');
SELECT isnt((SELECT effect FROM orderflow.process_order_http('pp-4', '{"orderId":"pp-4","amount":3,"item":"w"}', 'srv-a', 'test')),
            NULL, 'pp-4 leased');
SELECT is(pg_temp.report('pp-4', pg_temp.pi('pi_pp4', 'requires_action'))->>'error',
          'charge failed: requires_action: the payment needs the customer''s authentication',
          'requires_action fails the order with that reason');
SELECT isnt((SELECT effect FROM orderflow.process_order_http('pp-5', '{"orderId":"pp-5","amount":3,"item":"w"}', 'srv-a', 'test')),
            NULL, 'pp-5 leased');
SELECT is(pg_temp.report('pp-5', '{"status": 400, "body": "{\"error\":{\"type\":\"idempotency_error\"}}"}')->>'status',
          'suspended', '400 idempotency_error stops: suspended for an operator');
SELECT is((SELECT phase FROM orderflow.provider_effects WHERE order_id = 'pp-5'), 'dead', 'listed as dead');
SELECT is(orderflow.resume_now('pp-5')->>'status', 'charging', 'resume_now reopens it');
SELECT is((SELECT phase || ' ' || idempotency_key FROM orderflow.effects WHERE order_id = 'pp-5'),
          'send pp-5:charge', 'with the same key, sent again: the key is hours from expiring (015 has the other case)');

-- Out of attempts: dead.
SELECT isnt((SELECT effect FROM orderflow.process_order_http('pp-6', '{"orderId":"pp-6","amount":3,"item":"w"}', 'srv-a', 'test')),
            NULL, 'pp-6 leased');
UPDATE orderflow.effects SET attempts = 5 WHERE order_id = 'pp-6';
SELECT is(pg_temp.report('pp-6', '{"status": 503, "body": ""}')->>'status', 'suspended',
          'the fifth failed attempt of five is the last');

-- Cancel: never sent → abandoned at once; charged → cancelling until the refund is reported.
SELECT orderflow.process_order_request('pp-7', '{"orderId":"pp-7","amount":3,"item":"w"}');
SELECT is(orderflow.cancel_order('pp-7')->>'status', 'cancelled', 'a charge never sent is abandoned: cancelled at once');
SELECT is((SELECT state FROM orderflow.effects WHERE order_id = 'pp-7'), 'abandoned', 'the effect is abandoned');
SELECT isnt((SELECT effect FROM orderflow.process_order_http('pp-8', '{"orderId":"pp-8","amount":3,"item":"w"}', 'srv-a', 'test')),
            NULL, 'pp-8 leased');
SELECT is((SELECT state->>'status' FROM orderflow.cancel_order_http('pp-8', NULL, 'srv-a')), 'cancelling',
          'a cancel while the charge is in flight waits for it');
SELECT is(pg_temp.report('pp-8', pg_temp.pi('pi_pp8', 'succeeded'))->>'status', 'cancelling',
          'the charge happened: now it is refunded');
SELECT is((SELECT body FROM orderflow.effects WHERE order_id = 'pp-8' AND kind = 'refund'),
          'payment_intent=pi_pp8&metadata%5Border_id%5D=pp-8', 'the refund names the PaymentIntent');
SELECT isnt(pg_temp.claim('pp-8'), NULL, 'the refund is claimed');
SELECT is(pg_temp.report('pp-8', '{"status": 200, "body": "{\"id\":\"re_8\",\"object\":\"refund\",\"status\":\"succeeded\"}"}', 'refund')->>'status',
          'cancelled', 'the refund reported: cancelled');

SELECT * FROM finish();
ROLLBACK;
