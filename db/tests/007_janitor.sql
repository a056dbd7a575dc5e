-- resume_due claims only due workflows, at most a batch, and leaves the others alone.
-- (Two janitors racing on separate connections: tests/e2e/janitor_race_test.cc.)
BEGIN;
SELECT plan(12);

SELECT orderflow.pin_clock('2030-01-01 00:00:00+00');
UPDATE orderflow.faults SET remaining = 0;
-- Only our workflows exist inside this transaction's view of what is due.
UPDATE orderflow.workflows SET status = 'failed', next_retry_at = NULL, finished_at = now()
 WHERE next_retry_at IS NOT NULL;
UPDATE orderflow.retry_policies SET base_delay_ms = 1000, multiplier = 1, max_delay_ms = 1000, jitter = 0
 WHERE step = 'charge';

SELECT orderflow.inject_fault('charge', 5, true);
SELECT orderflow.process_order('jn-1', 1, 'widget');          -- due at 00:00:01
SELECT orderflow.pin_clock('2030-01-01 00:00:02+00');
SELECT orderflow.process_order('jn-2', 1, 'widget');          -- due at 00:00:03
UPDATE orderflow.faults SET remaining = 0;

SELECT is(orderflow.resume_due(10), 1, 'at 00:00:02 only the workflow due at 00:00:01 is resumed');
SELECT is(orderflow.get_workflow('jn-1')->>'status', 'completed', 'the due workflow completes');
SELECT is(orderflow.get_workflow('jn-2')->'steps'->'charge'->>'attempts', '1', 'the workflow not yet due is untouched');
SELECT is(orderflow.resume_due(10), 0, 'nothing else is due');

SELECT orderflow.pin_clock('2030-01-01 00:00:03+00');
SELECT is(orderflow.resume_due(10), 1, 'at 00:00:03 the second one is due');
SELECT is(orderflow.get_workflow('jn-2')->>'status', 'completed', 'and completes');

-- A batch bounds the claim.
SELECT orderflow.inject_fault('charge', 3, true);
SELECT orderflow.process_order('jn-' || i, 1, 'widget') FROM generate_series(3, 5) AS i;
UPDATE orderflow.faults SET remaining = 0;
SELECT orderflow.pin_clock('2030-01-01 00:00:10+00');
SELECT is(orderflow.resume_due(2), 2, 'resume_due(2) resumes two of three due workflows');
SELECT is(orderflow.resume_due(2), 1, 'the next call takes the rest');
SELECT is((SELECT count(*)::int FROM orderflow.workflows WHERE order_id IN ('jn-3', 'jn-4', 'jn-5') AND status = 'completed'), 3,
          'all three completed');
SELECT is((SELECT count(*)::int FROM orderflow.payments WHERE order_id LIKE 'jn-%' AND kind = 'charge'), 5, 'one charge each');

SELECT throws_ok($$SELECT orderflow.resume_due(0)$$, '22023', 'batch must be from 1 to 1000', 'batch 0 is refused');
SELECT throws_ok($$SELECT orderflow.resume_due(NULL)$$, '22023', 'batch must be from 1 to 1000', 'a null batch is refused');

SELECT * FROM finish();
ROLLBACK;
