-- workflow_counts() agrees with the workflows table through every transition: completion,
-- failure, waiting, cancellation (of finished and unfinished workflows) and prune.
BEGIN;
SELECT plan(10);

SELECT orderflow.pin_clock('2030-01-01 00:00:00+00');
UPDATE orderflow.faults SET remaining = 0;

CREATE FUNCTION pg_temp.actual() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_object_agg(s.status, COALESCE(c.n, 0))
      FROM orderflow.workflow_statuses s
      LEFT JOIN (SELECT w.status, count(*) AS n FROM orderflow.workflows w GROUP BY w.status) c
        ON c.status = s.status
$$;

SELECT is(orderflow.workflow_counts(), pg_temp.actual(), 'counts agree with the table before anything happens');

SELECT orderflow.process_order('cnt-' || i, 1, 'widget') FROM generate_series(1, 5) i;
SELECT orderflow.set_stock('cnt-none', 0);
SELECT orderflow.process_order('cnt-fail', 1, 'cnt-none');
SELECT orderflow.inject_fault('reserve', 2, true);
SELECT orderflow.process_order('cnt-wait-' || i, 1, 'widget') FROM generate_series(1, 2) i;
SELECT is(orderflow.workflow_counts(), pg_temp.actual(), 'after completions, a failure and two waiting workflows');
SELECT ok((orderflow.workflow_counts()->>'reserving')::int >= 2, 'waiting workflows are counted by their status');

SELECT orderflow.cancel_order('cnt-1');
SELECT orderflow.cancel_order('cnt-fail');
SELECT orderflow.cancel_order('cnt-wait-1');
SELECT orderflow.cancel_order('cnt-wait-1');
SELECT is(orderflow.workflow_counts(), pg_temp.actual(), 'after cancelling completed, failed and waiting workflows (one twice)');

SELECT ok(orderflow._fold_counts() > 0, 'the janitor folds the deltas into the counters');
SELECT is(orderflow.workflow_counts(), pg_temp.actual(), 'after folding');
SELECT is((SELECT count(*)::int FROM orderflow.finished_count_deltas), 0, 'no delta is left unfolded');

SELECT orderflow.pin_clock('2030-03-01 00:00:00+00');
SELECT ok(orderflow.prune(interval '1 day') >= 7, 'prune removes the finished workflows');
SELECT is(orderflow.workflow_counts(), pg_temp.actual(), 'after prune');
SELECT orderflow._fold_counts();
SELECT is(orderflow.workflow_counts(), pg_temp.actual(), 'after prune and folding');

SELECT * FROM finish();
ROLLBACK;
