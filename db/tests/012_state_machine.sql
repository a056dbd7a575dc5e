-- The state machine: statuses and transitions are data, every status change goes through
-- _transition (which refuses what the table does not allow with OFX01), one decision writes one
-- time, and a workflow whose failure handling raises is suspended instead of stalling the janitor.
BEGIN;
SELECT plan(26);

SELECT orderflow.pin_clock('2030-01-01 00:00:00+00');
UPDATE orderflow.faults SET remaining = 0;

-- The data and the constraints derived from it.
SELECT set_eq($$SELECT status FROM orderflow.workflow_statuses$$,
              ARRAY['pending', 'charging', 'reserving', 'confirming', 'suspended', 'cancelling',
                    'completed', 'failed', 'cancelled'],
              'the statuses are rows of workflow_statuses');
SELECT set_eq($$SELECT status FROM orderflow.workflow_statuses WHERE finished$$,
              ARRAY['completed', 'failed', 'cancelled'], 'completed, failed and cancelled are finished');
SELECT ok(NOT EXISTS (SELECT 1 FROM orderflow.workflow_transitions WHERE from_status = 'cancelled'),
          'nothing leaves cancelled');
SELECT set_eq($$SELECT to_status FROM orderflow.workflow_transitions WHERE from_status = 'completed'$$,
              ARRAY['cancelled', 'cancelling'],
              'a completed workflow can only be cancelled (at once, or cancelling while the provider refunds)');
SELECT is((SELECT count(*)::int FROM pg_constraint c
            WHERE c.conrelid = 'orderflow.workflows'::regclass
              AND c.conname IN ('workflows_status_known', 'workflows_finished_have_finished_at',
                                'workflows_scheduled_have_next_retry_at')
              AND obj_description(c.oid, 'pg_constraint') IS NOT NULL),
          3, 'the three status constraints exist, each made from the data');
SELECT throws_ok($$INSERT INTO orderflow.workflows (order_id, amount, item, status, next_retry_at, created_at, updated_at)
                   VALUES ('sm-bad', 1, 'w', 'bogus', now(), now(), now())$$,
                 '23514', NULL, 'a status that is not in the table is refused by the constraint');

-- One function changes statuses: no other function of the schema updates workflows.
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'orderflow' AND p.prosrc ~* 'update\s+orderflow\.workflows\M'),
          ARRAY['_transition'], 'only _transition updates the workflows table');

-- Illegal transitions raise OFX01. pg_temp.wf reads a workflow row into a value first (on Citus
-- a row of the shard table read in the same statement would have the shard's row type).
CREATE FUNCTION pg_temp.wf(p_order_id text) RETURNS orderflow.workflows LANGUAGE plpgsql AS $$
DECLARE
    v_wf orderflow.workflows;
BEGIN
    SELECT * INTO v_wf FROM orderflow.workflows WHERE order_id = p_order_id;
    RETURN v_wf;
END
$$;
SELECT orderflow.process_order('sm-1', 5, 'widget');
SELECT throws_ok($$SELECT orderflow._transition(pg_temp.wf('sm-1'), 'failed', orderflow.clock_now())$$,
                 'OFX01', 'workflow sm-1 cannot go from completed to failed', 'completed → failed raises OFX01');
SELECT throws_ok($$SELECT orderflow._transition(pg_temp.wf('sm-1'), 'charging', orderflow.clock_now())$$,
                 'OFX01', NULL, 'completed → charging raises OFX01');
SELECT orderflow.cancel_order('sm-1', 'test');
SELECT throws_ok($$SELECT orderflow._transition(pg_temp.wf('sm-1'), 'completed', orderflow.clock_now())$$,
                 'OFX01', 'workflow sm-1 cannot go from cancelled to completed', 'cancelled → completed raises OFX01');
SELECT throws_ok($$SELECT orderflow._transition(pg_temp.wf('sm-1'), 'cancelled', orderflow.clock_now())$$,
                 'OFX01', NULL, 'cancelled → cancelled raises OFX01');
-- A row read before someone else changed it is refused too (the caller did not hold the lock).
SELECT orderflow.process_order('sm-2', 5, 'widget');
CREATE TEMP TABLE stale AS SELECT pg_temp.wf('sm-2') AS w;
SELECT orderflow.cancel_order('sm-2');
SELECT throws_ok($$SELECT orderflow._transition(s.w, 'cancelled', orderflow.clock_now()) FROM stale s$$,
                 'OFX01', 'workflow sm-2 changed under its lock (expected status completed)',
                 'a stale row is refused');

-- One decision, one time: the completing call writes the same instant everywhere.
SELECT orderflow.pin_clock('2030-01-01 00:10:00+00');
SELECT orderflow.process_order('sm-3', 5, 'widget');
SELECT is((SELECT count(DISTINCT t)::int FROM (
             SELECT created_at AS t FROM orderflow.workflows WHERE order_id = 'sm-3'
             UNION ALL SELECT updated_at FROM orderflow.workflows WHERE order_id = 'sm-3'
             UNION ALL SELECT finished_at FROM orderflow.workflows WHERE order_id = 'sm-3'
             UNION ALL SELECT completed_at FROM orderflow.workflow_steps WHERE order_id = 'sm-3') x),
          1, 'created_at, updated_at, finished_at and every completed_at are one reading of the clock');
-- Cancelling a completed order: finished_at is the cancel's time, not the completion's.
SELECT orderflow.pin_clock('2030-01-01 00:20:00+00');
SELECT orderflow.cancel_order('sm-3');
SELECT is((SELECT finished_at FROM orderflow.workflows WHERE order_id = 'sm-3'),
          '2030-01-01 00:20:00+00'::timestamptz, 'a cancelled workflow finished when it was cancelled');

-- Failure handling that raises (a release overflowing on_hand) in the janitor: that workflow is
-- suspended, the rest of the batch goes on.
UPDATE orderflow.workflows SET status = 'failed', next_retry_at = NULL, finished_at = now(), error = 'test'
 WHERE next_retry_at IS NOT NULL;
UPDATE orderflow.retry_policies SET base_delay_ms = 1000, multiplier = 1, max_delay_ms = 1000, jitter = 0
 WHERE step = 'confirm';
SELECT orderflow.set_stock('sm-item', 5);
SELECT orderflow.inject_fault('confirm', 1, true);
SELECT orderflow.process_order('sm-ov', 5, 'sm-item');                    -- reserved, waits on confirm
SELECT orderflow.inject_fault('charge', 1, true);
SELECT orderflow.process_order('sm-ok', 5, 'widget');                     -- waits on charge
SELECT orderflow.set_stock('sm-item', 2147483647);                        -- the release will overflow
-- and its confirm fails for good: a drill of its own (the one above was for every order).
SELECT orderflow.inject_fault('confirm', 1, false, 'sm-ov');
SELECT orderflow.pin_clock('2030-01-01 00:30:00+00');
SELECT is(orderflow.resume_due(10), 2, 'both due workflows are claimed');
SELECT is(orderflow.get_workflow('sm-ok')->>'status', 'completed', 'the healthy one completes in the same batch');
SELECT is(orderflow.get_workflow('sm-ov')->>'status', 'suspended', 'the one whose compensation raised is suspended');
SELECT is(orderflow.get_workflow('sm-ov')->>'error',
          'resuming this workflow failed with an internal error; an operator must act',
          'with a stable sentence for clients');
SELECT matches((SELECT error_detail FROM orderflow.workflows WHERE order_id = 'sm-ov'), '^SQLSTATE 22003: ',
               'and the database''s own error for operators');
SELECT is((SELECT next_retry_at FROM orderflow.workflows WHERE order_id = 'sm-ov'), NULL,
          'a suspended workflow is not scheduled: the janitor does not retry it every second');
SELECT orderflow.pin_clock('2030-01-01 01:00:00+00');
SELECT is(orderflow.resume_due(10), 0, 'later, nothing is due');
SELECT is(orderflow.process_order('sm-ov')->>'status', 'suspended', 'a client resume answers the suspended state');
SELECT is((orderflow.workflow_counts()->>'suspended')::int >= 1, true, 'suspended workflows are counted');
SELECT ok(EXISTS (SELECT 1 FROM orderflow.stuck_workflows WHERE order_id = 'sm-ov'), 'and listed as stuck');
-- The operator fixes the cause and resumes it.
SELECT orderflow.set_stock('sm-item', 10);
-- and ends the drill, still armed: the suspended run was rolled back, its use of the fault too.
SELECT orderflow.inject_fault('confirm', 0, false, 'sm-ov');
SELECT is(orderflow.resume_now('sm-ov')->>'status', 'completed', 'resume_now runs it once the cause is fixed');
SELECT throws_ok($$SELECT orderflow.resume_now('sm-none')$$, 'OF404', NULL, 'resume_now of an unknown order is OF404');

SELECT * FROM finish();
ROLLBACK;
