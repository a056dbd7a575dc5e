-- An order's history loses nothing: every transition, step attempt (with its error and
-- SQLSTATE), provider call (HTTP status, object id) and operator action, in order, with who
-- caused it; order_history returns it; step_report sums it per step and provider over a time
-- range; prune removes it with its workflow.
BEGIN;
SELECT plan(24);

UPDATE orderflow.faults SET remaining = 0;
SELECT orderflow.set_provider('payments', NULL);
SELECT orderflow.remove_webhook(id) FROM orderflow.webhooks WHERE removed_at IS NULL;
UPDATE orderflow.retry_policies SET jitter = 0, base_delay_ms = 1000, max_delay_ms = 1000, max_attempts = 5;
SELECT orderflow.pin_clock('2032-03-01 10:00:00+00');

CREATE FUNCTION pg_temp.events(p_order text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT orderflow.order_history(p_order) -> 'events'
$$;
CREATE FUNCTION pg_temp.line(p_order text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(concat_ws(':', e ->> 'kind', e ->> 'step', e ->> 'outcome', e ->> 'actor'), ' '
                      ORDER BY n)
      FROM jsonb_array_elements(pg_temp.events(p_order)) WITH ORDINALITY AS x (e, n)
$$;

-- A step that fails twice, retried by the janitor, then completes.
SELECT orderflow.inject_fault('reserve', 2, true);
SELECT orderflow.process_order('hi-1', 10, 'w');
SELECT orderflow.pin_clock('2032-03-01 10:00:01+00');
SELECT orderflow.resume_due(10);
SELECT orderflow.pin_clock('2032-03-01 10:00:02+00');
SELECT orderflow.resume_due(10);
SELECT is(pg_temp.line('hi-1'),
          'created:pending step:charge:succeeded:client step:reserve:retry:client transition:reserving:client '
          'step:reserve:retry:janitor transition:reserving:janitor '
          'step:reserve:succeeded:janitor step:confirm:succeeded:janitor transition:completed:janitor',
          'every attempt and transition, in order, with who caused it');
SELECT is((SELECT e ->> 'error' FROM jsonb_array_elements(pg_temp.events('hi-1')) e
            WHERE e ->> 'outcome' = 'retry' LIMIT 1), 'injected transient fault', 'a failed attempt keeps its error');
SELECT is((SELECT e ->> 'sqlstate' FROM jsonb_array_elements(pg_temp.events('hi-1')) e
            WHERE e ->> 'outcome' = 'retry' LIMIT 1), 'OFT01', 'and its SQLSTATE');
SELECT is((SELECT array_agg((e ->> 'attempt')::int ORDER BY n) FROM jsonb_array_elements(pg_temp.events('hi-1'))
              WITH ORDINALITY AS x (e, n) WHERE e ->> 'step' = 'reserve'), ARRAY[1, 2, 3],
          'attempts are numbered');
SELECT is((SELECT e ->> 'at' FROM jsonb_array_elements(pg_temp.events('hi-1')) e
            WHERE e ->> 'outcome' = 'completed'), '2032-03-01T10:00:02.000Z', 'with times');
SELECT is((SELECT e ->> 'from' FROM jsonb_array_elements(pg_temp.events('hi-1')) e
            WHERE e ->> 'outcome' = 'completed'), 'reserving', 'a transition says where it came from');
SELECT is(orderflow.get_workflow('hi-1') -> 'steps' -> 'reserve' -> 'lastError', 'null'::jsonb,
          'the completed step shows no stale lastError');

-- A cancel: the compensation and the transition are the cancel's.
SELECT orderflow.cancel_order('hi-1', 'customer asked');
SELECT is((SELECT string_agg(concat_ws(':', e ->> 'kind', e ->> 'step', e ->> 'outcome', e ->> 'actor'), ' ' ORDER BY n)
             FROM jsonb_array_elements(pg_temp.events('hi-1')) WITH ORDINALITY AS x (e, n) WHERE n > 9),
          'step:confirm:compensated:cancel step:reserve:compensated:cancel step:charge:compensated:cancel '
          'transition:cancelled:cancel', 'compensation in reverse, then cancelled, caused by the cancel');

-- A permanent failure.
SELECT orderflow.inject_fault('charge', 1, false);
SELECT orderflow.process_order('hi-2', 10, 'w');
SELECT is(pg_temp.line('hi-2'), 'created:pending step:charge:failed:client transition:failed:client',
          'a permanent failure: one failed attempt, then failed');

-- An operator's action.
SELECT orderflow.inject_fault('reserve', 1, true);
SELECT orderflow.process_order('hi-3', 10, 'w');
SELECT orderflow.resume_now('hi-3');
SELECT is((SELECT string_agg(concat_ws(':', e ->> 'kind', e ->> 'step', e ->> 'actor'), ' ' ORDER BY n)
             FROM jsonb_array_elements(pg_temp.events('hi-3')) WITH ORDINALITY AS x (e, n) WHERE n >= 5),
          'action:resume_now:operator step:reserve:operator step:confirm:operator transition:operator',
          'resume_now is recorded, and what it ran is the operator''s');

-- Provider calls: every outcome with its HTTP status and object id.
SELECT orderflow.set_provider('payments', 'http://127.0.0.1:9', '{"timeoutMs": 1000}');
CREATE TEMP TABLE lease AS
    SELECT effect FROM orderflow.process_order_http('hi-4', '{"orderId":"hi-4","amount":3,"item":"w"}', 'srv', 'test');
SELECT orderflow.report_effect((effect ->> 'id')::bigint, (effect ->> 'token')::uuid,
                               '{"status": 503, "body": "", "elapsedMs": 12.5}', NULL) FROM lease;
SELECT orderflow.pin_clock('2032-03-01 10:01:00+00');
CREATE TEMP TABLE lease2 AS SELECT e AS effect FROM orderflow.claim_effects(10, 'j', true) e WHERE e ->> 'orderId' = 'hi-4';
SELECT orderflow.report_effect((effect ->> 'id')::bigint, (effect ->> 'token')::uuid,
                               jsonb_build_object('status', 200, 'elapsedMs', 30, 'body',
                                   '{"id":"pi_hi4","object":"payment_intent","status":"succeeded"}'), NULL) FROM lease2;
SELECT is(pg_temp.line('hi-4'),
          'created:pending transition:charging:client call:charge:retry:client call:charge:succeeded:janitor '
          'step:charge:succeeded:janitor step:reserve:succeeded:janitor step:confirm:succeeded:janitor '
          'transition:completed:janitor',
          'the first call was the client''s (inline), the second the janitor''s (claimed)');
SELECT is((SELECT e ->> 'httpStatus' || ' ' || (e ->> 'durationMs') FROM jsonb_array_elements(pg_temp.events('hi-4')) e
            WHERE e ->> 'outcome' = 'retry'), '503 12.500', 'a call keeps its HTTP status and duration');
SELECT is((SELECT e ->> 'objectId' || ' ' || (e ->> 'provider') FROM jsonb_array_elements(pg_temp.events('hi-4')) e
            WHERE e ->> 'kind' = 'call' AND e ->> 'outcome' = 'succeeded'), 'pi_hi4 payments', 'and the provider''s object id');
SELECT orderflow.set_provider('payments', NULL);

SELECT throws_ok($$SELECT orderflow.order_history('nobody')$$, 'OF404', NULL, 'unknown order: OF404');
SELECT throws_ok($$SELECT orderflow.order_history(NULL)$$, '22023', NULL, 'null order id: 22023');

-- step_report over a time range.
CREATE TEMP TABLE report AS SELECT * FROM orderflow.step_report(interval '1 hour');
SELECT is((SELECT attempts || ' ' || successes || ' ' || retries || ' ' || failures FROM report
            WHERE step = 'reserve' AND provider IS NULL), '6 3 3 0',
          'reserve: 6 attempts, 3 successes, 3 retries needed, no failure');
SELECT is((SELECT success_rate FROM report WHERE step = 'reserve' AND provider IS NULL), 0.5000::numeric,
          'its success rate');
SELECT is((SELECT top_errors -> 0 FROM report WHERE step = 'reserve' AND provider IS NULL),
          '{"error": "injected transient fault", "count": 3}'::jsonb, 'its top error');
SELECT is((SELECT failures FROM report WHERE step = 'charge' AND provider IS NULL), 1::bigint,
          'charge: the permanent failure');
SELECT is((SELECT attempts || ' ' || successes || ' ' || retries FROM report WHERE step = 'charge' AND provider = 'payments'),
          '3 2 1', 'provider charge calls: two calls (one retried) and the step they completed');
SELECT is((SELECT p95_ms FROM report WHERE step = 'charge' AND provider = 'payments' ), 
          (SELECT round((percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms))::numeric, 3) FROM orderflow.history
            WHERE provider = 'payments' AND kind IN ('step', 'call') AND step = 'charge'), 'p95 of the durations');
SELECT orderflow.pin_clock('2032-03-01 13:00:00+00');
SELECT is((SELECT count(*) FROM orderflow.step_report(interval '1 hour')), 0::bigint, 'nothing in the last hour, later');
SELECT throws_ok($$SELECT * FROM orderflow.step_report(interval '-1 hour')$$, '22023', NULL, 'a negative interval');

-- prune removes the history with its workflow.
SELECT orderflow.prune(interval '1 hour');
SELECT is((SELECT count(*) FROM orderflow.history WHERE order_id IN ('hi-1', 'hi-2')), 0::bigint,
          'prune removed the history of the workflows it removed');

SELECT * FROM finish();
ROLLBACK;
