-- Least privilege: orderflow_api (the HTTP front's role) can execute the API functions and
-- nothing else — no table can be read or written directly, no operator function called.
BEGIN;
SELECT plan(23);

SELECT has_role('orderflow_api', 'the orderflow_api role exists');
SELECT is((SELECT count(*)::int FROM pg_tables t
            CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p (privilege)
            WHERE t.schemaname = 'orderflow'
              AND has_table_privilege('orderflow_api', format('%I.%I', t.schemaname, t.tablename), p.privilege)),
          0, 'orderflow_api has no SELECT, INSERT, UPDATE or DELETE on any orderflow table');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'orderflow' AND has_function_privilege('orderflow_api', p.oid, 'EXECUTE')),
          ARRAY['cancel_order', 'cancel_order_http', 'cancel_order_request', 'claim_effects',
                'create_order_idempotent', 'get_order', 'get_workflow', 'janitor_tick', 'janitor_tick_report',
                'process_order', 'process_order_http', 'process_order_request', 'provider_health',
                'publish_outbox', 'read_events', 'report_effect', 'resume_due', 'workflow_counts'],
          'orderflow_api may execute exactly the functions the front calls');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'orderflow' AND has_function_privilege('orderflow_api', p.oid, 'EXECUTE')
              AND NOT p.prosecdef),
          0, 'each of them is SECURITY DEFINER');

-- The same, tried for real as that role.
UPDATE orderflow.faults SET remaining = 0;
SET LOCAL ROLE orderflow_api;
SELECT throws_ok($$SELECT * FROM orderflow.payments$$, '42501', NULL, 'cannot read the ledger');
SELECT throws_ok($$SELECT * FROM orderflow.workflows$$, '42501', NULL, 'cannot read workflows');
SELECT throws_ok($$SELECT * FROM orderflow.idempotency_keys$$, '42501', NULL, 'cannot read idempotency keys');
SELECT throws_ok($$INSERT INTO orderflow.payments (order_id, kind, amount, idempotency_key, created_at)
                   VALUES ('p', 'charge', 1, 'p:charge', now())$$, '42501', NULL, 'cannot write the ledger');
SELECT throws_ok($$UPDATE orderflow.workflows SET status = 'completed'$$, '42501', NULL, 'cannot update workflows');
SELECT throws_ok($$DELETE FROM orderflow.idempotency_keys$$, '42501', NULL, 'cannot delete idempotency keys');
SELECT throws_ok($$UPDATE orderflow.retry_policies SET max_attempts = 1$$, '42501', NULL, 'cannot change retry policies');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, true)$$, '42501', NULL, 'cannot inject faults');
SELECT throws_ok($$SELECT orderflow.set_stock('x', 1)$$, '42501', NULL, 'cannot set stock');
SELECT throws_ok($$SELECT orderflow.prune(interval '1 day')$$, '42501', NULL, 'cannot prune');
SELECT throws_ok($$SELECT orderflow.pin_clock(now())$$, '42501', NULL, 'cannot pin the clock');
SELECT throws_ok($$SELECT orderflow._charge(NULL::orderflow.workflows, now())$$, '42501', NULL, 'cannot call internal helpers');
SELECT lives_ok($$SELECT orderflow.process_order('priv-1', 3, 'widget')$$, 'can process an order');
SELECT lives_ok($$SELECT orderflow.get_workflow('priv-1')$$, 'can read a workflow through the API');
SELECT lives_ok($$SELECT orderflow.create_order_idempotent('priv-key', '{"item": "w", "quantity": 1}')$$, 'can create an order');
SELECT lives_ok($$SELECT orderflow.cancel_order('priv-1')$$, 'can cancel');
SELECT lives_ok($$SELECT orderflow.resume_due(1)$$, 'can run the janitor');
SELECT lives_ok($$SELECT orderflow.publish_outbox(1)$$, 'can relay the outbox');
SELECT lives_ok($$SELECT orderflow.workflow_counts()$$, 'can read the counts');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
