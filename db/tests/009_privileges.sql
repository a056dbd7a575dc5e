-- Least privilege: orderflow_api (the HTTP front's role) can execute the API functions and
-- nothing else — no table can be read or written directly, no operator function called.
-- orderflow_operator (people on call) reads the operator views and the tables of state and
-- rules, never a webhook secret, and executes the operator functions; the API login is not a
-- member of it.
BEGIN;
SELECT plan(63);

-- An operator reads the views and the tables of state, as orderflow_console, the console's login
-- (a member of orderflow_operator with no rights of its own; scripts/pg.sh). A login, because on
-- Citus the coordinator reaches the workers as the current role, and orderflow_operator cannot
-- log in; and first, because there a transaction cannot read as one role the shards it changed
-- as another.
SET LOCAL ROLE orderflow_console;
SELECT lives_ok($$SELECT * FROM orderflow.ledger$$, 'an operator reads the ledger');
SELECT lives_ok($$SELECT * FROM orderflow.step_stats$$, 'and step_stats');
SELECT lives_ok($$SELECT * FROM orderflow.stuck_workflows$$, 'and stuck_workflows');
SELECT lives_ok($$SELECT * FROM orderflow.provider_effects$$, 'and provider_effects');
SELECT lives_ok($$SELECT * FROM orderflow.webhook_subscriptions$$, 'and webhook_subscriptions');
SELECT lives_ok($$SELECT * FROM orderflow.dead_letters$$, 'and dead_letters');
SELECT lives_ok($$SELECT * FROM orderflow.workflows JOIN orderflow.workflow_steps USING (order_id)$$, 'and workflows with their steps');
RESET ROLE;

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
                'publish_outbox', 'read_events', 'report_effect', 'report_effect', 'resume_due', 'step_health',
                'workflow_counts'],
          'orderflow_api may execute exactly the functions the front calls (report_effect: by order and effect id, and by effect id)');
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
SELECT throws_ok($$SELECT orderflow.list_workflows()$$, '42501', NULL, 'cannot list workflows (an operator function)');
SELECT throws_ok($$SELECT * FROM orderflow.stuck_workflows$$, '42501', NULL, 'cannot read the operator views');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_views v
            WHERE v.schemaname = 'orderflow'
              AND has_table_privilege('orderflow_api', format('%I.%I', v.schemaname, v.viewname), 'SELECT')),
          0, 'orderflow_api reads no orderflow view');

-- orderflow_operator: its rights, exactly.
SELECT has_role('orderflow_operator', 'the orderflow_operator role exists');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'orderflow_operator'), false, 'it cannot log in by itself');
SELECT is((SELECT array_agg(replace(p.oid::regprocedure::text, 'orderflow.', '') ORDER BY p.oid::regprocedure::text COLLATE "C")
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'orderflow' AND has_function_privilege('orderflow_operator', p.oid, 'EXECUTE')),
          ARRAY['_may_pin()', '_read_dead_letters()', '_read_ledger()', '_read_provider_effects()',
                '_read_webhook_subscriptions()', '_steps()', 'add_webhook(text,text[],boolean)',
                'cancel_order(text,text)', 'clock_now()', 'console_action(text,text,text,text)',
                'console_order(text)', 'console_overview()', 'console_redrive(bigint,text)',
                'enable_webhook(bigint)', 'get_order(text)', 'get_workflow(text)',
                'inject_fault(text,integer,boolean)', 'inject_fault(text,integer,boolean,text)',
                'inject_fault(text,integer,text,integer,text,text)',
                'list_workflows(text,text,timestamp with time zone,timestamp with time zone,text,text,integer)',
                'order_history(text)', 'provider_health()', 'prune(interval)',
                'read_events(text,integer)',
                'redrive(text,text,text,timestamp with time zone,integer,numeric,bigint)',
                'remove_webhook(bigint)', 'reset_circuit(text)', 'resume_now(text)',
                'retry_workflow(text)', 'rotate_webhook_secret(bigint)',
                'set_provider(text,text,jsonb)', 'set_stock(text,integer)',
                'set_webhook(bigint,jsonb)', 'step_health()', 'step_report(interval)', 'workflow_counts()'],
          'orderflow_operator may execute exactly the operator functions and the views'' read-only helpers '
          '(the _read_ functions: the rows of the views over tables it is not granted)');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname COLLATE "C") FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'orderflow' AND has_function_privilege('orderflow_operator', p.oid, 'EXECUTE')
              AND NOT p.prosecdef),
          ARRAY['_may_pin', '_steps', 'clock_now'],
          'each of them is SECURITY DEFINER but the read-only helpers the views call');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname COLLATE "C") FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'orderflow' AND c.relkind IN ('r', 'v', 'p', 'm')
              AND has_table_privilege('orderflow_operator', c.oid, 'SELECT')),
          ARRAY['circuit_transitions', 'circuits', 'currencies', 'dead_letters', 'effect_policies',
                'event_types', 'faults', 'history', 'inventory', 'ledger', 'orders', 'provider_effects',
                'provider_object_statuses', 'provider_outcomes', 'providers', 'reservations',
                'retry_policies', 'settings', 'step_errors', 'step_stats', 'stuck_workflows',
                'webhook_subscriptions', 'workflow_statuses', 'workflow_steps', 'workflow_transitions',
                'workflows'],
          'orderflow_operator reads exactly the operator views and the tables of state and rules');
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p (privilege)
            WHERE n.nspname = 'orderflow' AND c.relkind IN ('r', 'v', 'p', 'm')
              AND has_table_privilege('orderflow_operator', c.oid, p.privilege)),
          0, 'orderflow_operator writes no table or view: every change goes through a function');
SELECT ok(NOT has_column_privilege('orderflow_operator', 'orderflow.webhooks', 'secret', 'SELECT')
          AND NOT has_column_privilege('orderflow_operator', 'orderflow.webhooks', 'previous_secret', 'SELECT'),
          'orderflow_operator cannot read a webhook secret');

-- No escalation from the API: its login and role are not operators (nor the other way round).
SELECT ok(NOT pg_has_role('orderflow_app', 'orderflow_operator', 'MEMBER'), 'orderflow_app is not a member of orderflow_operator');
SELECT ok(NOT pg_has_role('orderflow_api', 'orderflow_operator', 'MEMBER'), 'orderflow_api is not a member of orderflow_operator');
SELECT ok(NOT pg_has_role('orderflow_operator', 'orderflow_api', 'MEMBER'), 'orderflow_operator is not a member of orderflow_api');
SELECT is((SELECT count(*)::int FROM pg_roles r
            WHERE NOT r.rolsuper AND pg_has_role(r.oid, 'orderflow_api', 'MEMBER')
              AND pg_has_role(r.oid, 'orderflow_operator', 'MEMBER')),
          0, 'no login of the API is an operator');
SET LOCAL SESSION AUTHORIZATION orderflow_app;
SELECT throws_ok($$SET ROLE orderflow_operator$$, '42501', NULL, 'orderflow_app cannot SET ROLE orderflow_operator');
RESET SESSION AUTHORIZATION;

-- The same, tried for real as an operator (orderflow_console, as above).
SET LOCAL ROLE orderflow_console;
SELECT lives_ok($$SELECT * FROM orderflow.retry_policies, orderflow.effect_policies, orderflow.circuits, orderflow.event_types$$,
                'and the rules');
SELECT throws_ok($$SELECT * FROM orderflow.webhooks$$, '42501', NULL, 'but not the webhooks table');
SELECT throws_ok($$SELECT secret FROM orderflow.webhooks$$, '42501', NULL, 'nor its secret');
SELECT throws_ok($$SELECT * FROM orderflow.idempotency_keys$$, '42501', NULL, 'nor the idempotency keys');
SELECT throws_ok($$UPDATE orderflow.retry_policies SET max_attempts = 1$$, '42501', NULL, 'cannot change retry policies by hand');
SELECT throws_ok($$DELETE FROM orderflow.workflows$$, '42501', NULL, 'cannot delete workflows by hand');
SELECT throws_ok($$SELECT orderflow.pin_clock(now())$$, '42501', NULL, 'cannot pin the clock');
SELECT throws_ok($$SELECT orderflow.process_order('priv-op', 3, 'widget')$$, '42501', NULL, 'cannot place orders');
SELECT throws_ok($$SELECT * FROM orderflow.claim_effects(1, 'operator')$$, '42501', NULL, 'cannot lease provider calls');
SELECT lives_ok($$SELECT orderflow.inject_fault('reserve', 1, true, 'priv-op-drill')$$, 'can inject a scoped fault');
SELECT lives_ok($$SELECT orderflow.inject_fault('reserve', 0, true)$$, 'and one for every order');
SELECT lives_ok($$SELECT orderflow.set_stock('priv-item', 3)$$, 'can set stock');
SELECT lives_ok($$SELECT orderflow.list_workflows()$$, 'can list workflows');
SELECT lives_ok($$SELECT orderflow.get_workflow('priv-1')$$, 'can read a workflow');
SELECT throws_ok($$SELECT orderflow.resume_now('priv-none')$$, 'OF404', 'order priv-none not found', 'can call resume_now');
SELECT lives_ok($$SELECT orderflow.cancel_order('priv-1', 'operator')$$, 'can cancel an order');
SELECT lives_ok($$SELECT orderflow.redrive()$$, 'can redrive dead letters');
SELECT lives_ok($$SELECT orderflow.prune(interval '3650 days')$$, 'can prune');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
