-- The shape of the schema: tables, keys, and the unique constraints that make a second
-- charge, reservation or event for one order impossible whatever code runs.
BEGIN;
SELECT plan(37);

-- pg_temp.sharded(table): whether the table is distributed by Citus (false on plain PostgreSQL).
CREATE FUNCTION pg_temp.sharded(p_table regclass) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_sharded boolean := false;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                                 WHERE logicalrelid = $1 AND partmethod = ''h'')'
           INTO v_sharded USING p_table;
    END IF;
    RETURN v_sharded;
END
$$;

SELECT has_schema('orderflow', 'schema orderflow exists');

SELECT has_table('orderflow', 'schema_migrations', 'migrations are recorded in a table');
SELECT has_table('orderflow', 'settings', 'settings table exists');
SELECT has_table('orderflow', 'orders', 'orders table exists');
SELECT has_table('orderflow', 'idempotency_keys', 'idempotency_keys table exists');
SELECT has_table('orderflow', 'workflows', 'workflows table exists');
SELECT has_table('orderflow', 'workflow_steps', 'workflow_steps table exists');
SELECT has_table('orderflow', 'payments', 'payments ledger table exists');
SELECT has_table('orderflow', 'inventory', 'inventory table exists');
SELECT has_table('orderflow', 'reservations', 'reservations table exists');
SELECT has_table('orderflow', 'outbox', 'outbox table exists');

SELECT col_is_pk('orderflow', 'idempotency_keys', 'key', 'an idempotency key is claimed by its primary key');
SELECT col_is_pk('orderflow', 'workflows', 'order_id', 'one workflow per order id');
SELECT col_is_pk('orderflow', 'workflow_steps', ARRAY['order_id', 'step'], 'one checkpoint per workflow and step');
SELECT col_is_pk('orderflow', 'reservations', ARRAY['order_id', 'run'], 'one reservation per run of an order');
-- On Citus (db/citus/1_tables.sql) every unique key of a distributed table also holds the
-- column it is sharded by; the keys of payments and outbox begin with their order id, so unique
-- per order is unique.
SELECT col_is_unique('orderflow', 'payments',
                     CASE WHEN pg_temp.sharded('orderflow.payments') THEN ARRAY['order_id', 'idempotency_key']
                          ELSE ARRAY['idempotency_key'] END, 'ledger keys are unique');
SELECT col_is_unique('orderflow', 'payments', ARRAY['order_id', 'run', 'kind'],
                     'one charge and one refund per run of an order at most');
SELECT col_is_unique('orderflow', 'outbox',
                     CASE WHEN pg_temp.sharded('orderflow.outbox') THEN ARRAY['order_id', 'event_key']
                          ELSE ARRAY['event_key'] END, 'outbox event keys are unique');
SELECT col_is_unique('orderflow', 'idempotency_keys',
                     CASE WHEN pg_temp.sharded('orderflow.idempotency_keys') THEN ARRAY['key', 'order_id']
                          ELSE ARRAY['order_id'] END, 'a key maps to exactly one order');
SELECT col_is_fk('orderflow', 'idempotency_keys',
                 CASE WHEN pg_temp.sharded('orderflow.idempotency_keys') THEN ARRAY['key', 'order_id']
                      ELSE ARRAY['order_id'] END, 'a key points at its order');
SELECT has_index('orderflow', 'workflows', 'workflows_due', 'the janitor finds due workflows by index');
SELECT has_index('orderflow', 'idempotency_keys', 'idempotency_keys_expires_at', 'prune finds expired keys by index');

SELECT has_function('orderflow', 'process_order', ARRAY['text', 'numeric', 'text'], 'process_order(order_id, amount, item) exists');
SELECT function_returns('orderflow', 'process_order', ARRAY['text', 'numeric', 'text'], 'jsonb', 'process_order returns jsonb');
SELECT has_function('orderflow', 'create_order_idempotent', ARRAY['text', 'jsonb'], 'create_order_idempotent(key, request) exists');
SELECT has_function('orderflow', 'get_workflow', ARRAY['text'], 'get_workflow(order_id) exists');
SELECT has_function('orderflow', 'get_order', ARRAY['text'], 'get_order(id) exists');
SELECT has_function('orderflow', 'clock_now', 'clock_now() exists');
SELECT ok(obj_description('orderflow.process_order(text,numeric,text)'::regprocedure, 'pg_proc') IS NOT NULL,
          'process_order has a COMMENT');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'orderflow' AND obj_description(p.oid, 'pg_proc') IS NULL),
          0, 'every orderflow function has a COMMENT ON FUNCTION');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'orderflow' AND p.proname NOT LIKE '\_%' AND p.prosecdef
              AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')),
          0, 'every SECURITY DEFINER function fixes its search_path');

SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'orderflow' AND 'enable_seqscan=off' = ANY (p.proconfig)
             AND 'jit=off' = ANY (p.proconfig)),
          ARRAY['cancel_order', 'cancel_order_http', 'cancel_order_request', 'claim_effects',
                'console_order', 'create_order_idempotent', 'get_order', 'get_workflow', 'janitor_tick',
                'janitor_tick_report',
                'order_history', 'process_order', 'process_order_http', 'process_order_request',
                'publish_outbox', 'read_events', 'redrive', 'report_effect', 'report_effect', 'resume_due',
                'resume_now', 'retry_workflow'],
          'the request-path entry points pin their plans to the indexes (enable_seqscan=off, jit=off)');

-- The ledger refuses a second charge for the same order, whoever inserts it.
INSERT INTO orderflow.payments (order_id, kind, amount, idempotency_key, created_at)
VALUES ('schema-1', 'charge', 10, 'schema-1:charge', now());
SELECT throws_ok(
    $$INSERT INTO orderflow.payments (order_id, kind, amount, idempotency_key, created_at)
      VALUES ('schema-1', 'charge', 10, 'schema-1:charge', now())$$,
    '23505', NULL, 'a second charge for one order violates the unique key');
SELECT throws_ok(
    $$INSERT INTO orderflow.payments (order_id, kind, amount, idempotency_key, created_at)
      VALUES ('schema-1', 'charge', 10, 'other-key', now())$$,
    '23514', NULL, 'a ledger key must be <orderId>:<kind>');
SELECT throws_ok(
    $$INSERT INTO orderflow.reservations (order_id, item, quantity, tracked, reserved_at)
      VALUES ('schema-1', 'w', 1, false, now()), ('schema-1', 'w', 1, false, now())$$,
    '23505', NULL, 'a second reservation for one order violates the primary key');

-- A workflow that is not finished must be scheduled, so the janitor can never lose one.
SELECT throws_ok(
    $$INSERT INTO orderflow.workflows (order_id, amount, item, status, created_at, updated_at)
      VALUES ('schema-2', 1, 'w', 'reserving', now(), now())$$,
    '23514', NULL, 'an unfinished workflow without next_retry_at is refused');
SELECT throws_ok(
    $$INSERT INTO orderflow.workflows (order_id, amount, item, status, next_retry_at, created_at, updated_at)
      VALUES ('schema-3', 1, 'w', 'shipping', now(), now(), now())$$,
    '23514', NULL, 'unknown statuses are refused');

SELECT * FROM finish();
ROLLBACK;
