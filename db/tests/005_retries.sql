-- Transient failures: backoff grows and caps as the policy says, jitter stays in its bounds,
-- running out of attempts fails the workflow, and a permanent error is never retried.
BEGIN;
SELECT plan(31);

SELECT orderflow.pin_clock('2030-01-01 00:00:00+00');
UPDATE orderflow.faults SET remaining = 0;
UPDATE orderflow.retry_policies
   SET max_attempts = 10, base_delay_ms = 100, multiplier = 2, max_delay_ms = 350, jitter = 0
 WHERE step = 'reserve';

-- Four transient faults at reserve; the client calls again each time (resume at once).
SELECT orderflow.inject_fault('reserve', 4, true);
CREATE TEMP TABLE s AS SELECT orderflow.process_order('rt-1', 10, 'widget') AS state;
SELECT is((SELECT state->>'status' FROM s), 'reserving', 'a transient failure leaves the status on its step');
SELECT is((SELECT state->'steps'->'charge'->>'completed' FROM s), 'true', 'the step before stays done');
SELECT is((SELECT state->'steps'->'reserve'->>'attempts' FROM s), '1', 'the failed attempt is counted');
SELECT is((SELECT state->'steps'->'reserve'->>'lastError' FROM s), 'injected transient fault', 'lastError says why');
SELECT is((SELECT state->>'nextRetryAt' FROM s), '2030-01-01T00:00:00.100Z', 'attempt 1 waits base_delay = 100 ms');
SELECT is((SELECT last_sqlstate FROM orderflow.workflow_steps WHERE order_id = 'rt-1' AND step = 'reserve'), 'OFT01',
          'the SQLSTATE of the last error is kept');

SELECT orderflow.pin_clock('2030-01-01 00:00:01+00');
SELECT is(orderflow.process_order('rt-1')->>'nextRetryAt', '2030-01-01T00:00:01.200Z', 'attempt 2 waits 100 * 2 = 200 ms');
SELECT orderflow.pin_clock('2030-01-01 00:00:02+00');
SELECT is(orderflow.process_order('rt-1')->>'nextRetryAt', '2030-01-01T00:00:02.350Z', 'attempt 3 waits 400 ms capped to 350');
SELECT orderflow.pin_clock('2030-01-01 00:00:03+00');
SELECT is(orderflow.process_order('rt-1')->>'nextRetryAt', '2030-01-01T00:00:03.350Z', 'attempt 4 stays at the 350 ms cap');
SELECT orderflow.pin_clock('2030-01-01 00:00:04+00');
TRUNCATE s;
INSERT INTO s SELECT orderflow.process_order('rt-1');
SELECT is((SELECT state->>'status' FROM s), 'completed', 'once the faults are used up the workflow completes');
SELECT is((SELECT state->'steps'->'reserve'->>'attempts' FROM s), '5', 'reserve took five attempts');
SELECT is((SELECT state->'steps'->'reserve'->'lastError' FROM s), 'null'::jsonb,
          'a completed step shows no lastError (order_history keeps every failure)');
SELECT is((SELECT count(*) FROM orderflow.history WHERE order_id = 'rt-1' AND step = 'reserve' AND outcome = 'retry'
              AND error = 'injected transient fault'), 4::bigint, 'the history has the four failed attempts');
SELECT is((SELECT state->'steps'->'charge'->>'attempts' FROM s), '1', 'charge ran once, however often reserve was retried');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'rt-1'), 1, 'one charge, no refund');
SELECT is((SELECT state->'nextRetryAt' FROM s), 'null'::jsonb, 'nothing is scheduled once completed');

-- Jitter shortens a delay by at most `jitter` of it, and really varies.
CREATE TEMP TABLE samples AS
SELECT orderflow._backoff_ms(ROW('reserve', 5, 1000, 2, 10000, 0.5)::orderflow.retry_policies, 1) AS ms
  FROM generate_series(1, 2000);
SELECT ok((SELECT bool_and(ms BETWEEN 500 AND 1000) FROM samples), 'attempt 1 with jitter 0.5 waits 500..1000 ms');
SELECT ok((SELECT min(ms) < 600 AND max(ms) > 900 FROM samples), 'jitter spreads over its range');
SELECT ok((SELECT bool_and(orderflow._backoff_ms(ROW('reserve', 20, 1000, 2, 10000, 0.5)::orderflow.retry_policies, 12)
                           BETWEEN 5000 AND 10000)
             FROM generate_series(1, 500)),
          'the cap applies before jitter: never above max_delay');

-- Out of attempts: failed, with the count in the error.
UPDATE orderflow.retry_policies SET max_attempts = 2 WHERE step = 'charge';
SELECT orderflow.inject_fault('charge', 5, true);
SELECT is(orderflow.process_order('rt-2', 7, 'widget')->>'status', 'charging', 'first transient failure: retry scheduled');
TRUNCATE s;
INSERT INTO s SELECT orderflow.process_order('rt-2');
SELECT is((SELECT state->>'status' FROM s), 'failed', 'the second failure with max_attempts 2 fails the workflow');
SELECT is((SELECT state->>'error' FROM s), 'charge failed after 2 attempts: injected transient fault',
          'the error says which step, how many attempts and why');
SELECT is((SELECT state->'nextRetryAt' FROM s), 'null'::jsonb, 'a failed workflow is not scheduled');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id = 'rt-2'), 0, 'nothing was charged, nothing refunded');
SELECT is(orderflow.process_order('rt-2')->>'status', 'failed', 'calling again does not revive a failed workflow');
SELECT is((SELECT remaining FROM orderflow.faults WHERE step = 'charge'), 3, 'a finished workflow uses up no more faults');
UPDATE orderflow.faults SET remaining = 0;

-- out_of_stock is permanent: one attempt, whatever max_attempts allows.
SELECT orderflow.set_stock('scarce', 0);
TRUNCATE s;
INSERT INTO s SELECT orderflow.process_order('rt-3', 5, 'scarce');
SELECT is((SELECT state->>'status' FROM s), 'failed', 'a tracked item without stock fails the workflow');
SELECT is((SELECT state->>'error' FROM s), 'reserve failed: out_of_stock', 'the error names out_of_stock');
SELECT is((SELECT state->'steps'->'reserve'->>'attempts' FROM s), '1', 'out_of_stock is not retried');
SELECT is((SELECT last_sqlstate FROM orderflow.workflow_steps WHERE order_id = 'rt-3' AND step = 'reserve'), 'OFS01',
          'out_of_stock raises OFS01');
SELECT is((SELECT array_agg(kind ORDER BY id) FROM orderflow.payments WHERE order_id = 'rt-3'), ARRAY['charge', 'refund'],
          'the charge is refunded');

SELECT * FROM finish();
ROLLBACK;
