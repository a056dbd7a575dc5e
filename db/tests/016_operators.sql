-- Operators (issue 12): drills scoped to one order (fail and custom ones), the 3-argument drill unchanged, and
-- list_workflows' filters, cursor and arguments.
BEGIN;
SELECT plan(99);

SELECT orderflow.pin_clock('2032-01-01 00:00:00+00');
UPDATE orderflow.faults SET remaining = 0;
DELETE FROM orderflow.workflows;
DELETE FROM orderflow.payments;

-- Scoped drills: the fault waits for an order that does not exist yet, and breaks only it.
SELECT is(orderflow.get_workflow('op16-a'), NULL, 'op16-a does not exist yet');
SELECT is(orderflow.inject_fault('reserve', 2, true, 'op16-a'), 2, 'the scoped inject_fault returns the count');
SELECT is((SELECT (remaining, transient) FROM orderflow.faults WHERE order_id = 'op16-a' AND step = 'reserve'),
          ROW(2, true), 'the fault is stored for that order');
SELECT is((SELECT count(*)::int FROM orderflow.faults WHERE order_id IS NULL AND remaining > 0), 0,
          'no fault for every order is armed by it');
SELECT is(orderflow.process_order('op16-b', 5, 'widget') ->> 'status', 'completed', 'another order is not broken');
SELECT is((SELECT attempts FROM orderflow.workflow_steps WHERE order_id = 'op16-b' AND step = 'reserve'), 1,
          'its reserve ran once');
SELECT is((SELECT remaining FROM orderflow.faults WHERE order_id = 'op16-a' AND step = 'reserve'), 2,
          'and used up nothing of op16-a''s fault');
SELECT is(orderflow.process_order('op16-a', 5, 'widget') ->> 'status', 'reserving',
          'the order the fault waited for breaks at reserve');
SELECT is(orderflow.get_workflow('op16-a') #>> '{steps,reserve,lastError}', 'injected transient fault',
          'with the injected transient fault');
SELECT is(orderflow.process_order('op16-a') ->> 'status', 'reserving', 'its second run breaks too');
SELECT is(orderflow.process_order('op16-a') ->> 'status', 'completed', 'its third run completes');
SELECT is((SELECT count(*)::int FROM orderflow.faults WHERE order_id = 'op16-a'), 0,
          'a used-up scoped fault leaves no row');
SELECT is(orderflow.inject_fault('charge', 1, false, 'op16-c'), 1, 'a permanent scoped fault');
SELECT is(orderflow.process_order('op16-c', 7, 'widget') ->> 'error', 'charge failed: injected permanent fault',
          'fails its order for good');
SELECT is(orderflow.inject_fault('confirm', 3, true, 'op16-d'), 3, 'a scoped fault');
SELECT is(orderflow.inject_fault('confirm', 0, true, 'op16-d'), 0, 'times 0 clears it');
SELECT is((SELECT count(*)::int FROM orderflow.faults WHERE order_id = 'op16-d'), 0, 'and leaves no row');
SELECT is(orderflow.process_order('op16-d', 1, 'widget') ->> 'status', 'completed', 'the cleared order completes');

-- The order's own fault is used before the one for every order; the 3-argument form keeps its
-- meaning (every order) and its row.
SELECT is(orderflow.inject_fault('reserve', 1, true), 1, 'a fault for every order');
SELECT is(orderflow.inject_fault('reserve', 1, false, 'op16-e'), 1, 'and one for op16-e');
SELECT is(orderflow.process_order('op16-e', 1, 'widget') ->> 'error', 'reserve failed: injected permanent fault',
          'op16-e meets its own fault');
SELECT is((SELECT remaining FROM orderflow.faults WHERE order_id IS NULL AND step = 'reserve'), 1,
          'the fault for every order is still armed');
SELECT is(orderflow.process_order('op16-f', 1, 'widget') ->> 'status', 'reserving',
          'the next order meets the fault for every order');
SELECT is((SELECT remaining FROM orderflow.faults WHERE order_id IS NULL AND step = 'reserve'), 0,
          'which is used up and its row kept, as before');
SELECT is(orderflow.inject_fault('charge', 3, true), 3, 'the 3-argument form');
SELECT is(orderflow.inject_fault('charge', 2), 2, 'again, transient by default: it replaces the first');
SELECT is((SELECT array_agg((remaining, transient)::text) FROM orderflow.faults WHERE order_id IS NULL AND step = 'charge'),
          ARRAY['(2,t)'], 'one row for every order');
SELECT is(orderflow.process_order('op16-g', 1, 'widget') ->> 'status', 'charging', 'it breaks any order');
SELECT is(orderflow.inject_fault('charge', 0, true), 0, 'times 0 clears it');

SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, true, NULL)$$, '22023', 'orderId is required',
                 'the scoped form needs an order id (null is not "every order")');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, true, ' ')$$, '22023', 'orderId must not be blank',
                 'a blank order id');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, true, repeat('x', 201))$$, '22023',
                 'orderId must be a string of 1 to 200 characters', 'an order id too long');
SELECT throws_ok($$SELECT orderflow.inject_fault('ship', 1, true, 'op16-x')$$, '22023',
                 'step must be one of charge, reserve, confirm', 'scoped: unknown step');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', -1, true, 'op16-x')$$, '22023',
                 'times must be from 0 to 1000000', 'scoped: negative times');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, NULL, 'op16-x')$$, '22023',
                 'transient must be true or false', 'scoped: null transient');

-- Custom scoped drills (017_fault_kinds.sql): an SQLSTATE and message raised inside the step,
-- handled as that error raised there; a delay inside the step.
SELECT is(orderflow.inject_fault('charge', 2, 'op16-h', 0, 'P0001', NULL), 2,
          'the custom form returns the count');
SELECT is((SELECT (remaining, transient, delay_ms, sqlstate, message) FROM orderflow.faults
            WHERE order_id = 'op16-h' AND step = 'charge'),
          ROW(2, NULL::boolean, 0, 'P0001'::text, NULL::text), 'it is stored as a custom fault for that order');
SELECT is(orderflow.process_order('op16-h', 1, 'widget') ->> 'error', 'charge failed: internal error',
          'an SQLSTATE step_errors does not know fails the step for good, with the stable sentence');
SELECT is((SELECT ARRAY[last_sqlstate, last_detail] FROM orderflow.workflow_steps WHERE order_id = 'op16-h' AND step = 'charge'),
          ARRAY['P0001', 'injected P0001 fault in charge'],
          'the step keeps the SQLSTATE and, without a message given, the default one');
SELECT is((SELECT remaining FROM orderflow.faults WHERE order_id = 'op16-h' AND step = 'charge'), 1,
          'one run used one of its two');
SELECT is(orderflow.inject_fault('charge', 0, 'op16-h', 0, NULL, NULL), 0, 'times 0 clears a custom fault');
SELECT is((SELECT count(*)::int FROM orderflow.faults WHERE order_id = 'op16-h'), 0, 'and leaves no row');
SELECT is(orderflow.inject_fault('reserve', 1, 'op16-i', 0, '40001', 'could not serialize access'), 1,
          'a custom fault with a transient SQLSTATE');
SELECT is(orderflow.process_order('op16-i', 1, 'widget') ->> 'status', 'reserving',
          'is retried, as a real serialization failure in the step would be');
SELECT is((SELECT ARRAY[last_sqlstate, last_error, last_detail] FROM orderflow.workflow_steps
            WHERE order_id = 'op16-i' AND step = 'reserve'),
          ARRAY['40001', 'serialization failure, will retry', 'could not serialize access'],
          'with step_errors'' sentence for clients and the given message for operators');
SELECT is(orderflow.process_order('op16-i') ->> 'status', 'completed', 'its next run completes');
SELECT is(orderflow.inject_fault('confirm', 1, 'op16-j', 50, NULL, NULL), 1, 'a delay alone');
SELECT is(orderflow.process_order('op16-j', 1, 'widget') ->> 'status', 'completed', 'slows the step, which then runs');
SELECT ok((SELECT total_ms >= 50 FROM orderflow.workflow_steps WHERE order_id = 'op16-j' AND step = 'confirm'),
          'the wait is inside the step: its time counts it');
SELECT is(orderflow.inject_fault('charge', 1, 'op16-k', 10, 'OFD01', 'declined by the drill'), 1,
          'a delay and an SQLSTATE');
SELECT is(orderflow.inject_fault('charge', 1, true, 'op16-k'), 1, 'replaced by a fail fault');
SELECT is((SELECT (transient, delay_ms, sqlstate, message) FROM orderflow.faults WHERE order_id = 'op16-k'),
          ROW(true, 0, NULL::text, NULL::text), 'which keeps nothing of the custom one');
SELECT throws_ok($$INSERT INTO orderflow.faults (step, order_id, remaining, transient, sqlstate, injected_at)
                   VALUES ('charge', 'op16-x', 1, true, 'P0001', now())$$, '23514', NULL,
                 'a row is a fail fault or a custom one, not both (faults_one_kind)');

SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, NULL, 0, 'P0001', NULL)$$, '22023', 'orderId is required',
                 'custom: the order id is required (drills are scoped)');
SELECT throws_ok($$SELECT orderflow.inject_fault('ship', 1, 'op16-x', 0, 'P0001', NULL)$$, '22023',
                 'step must be one of charge, reserve, confirm', 'custom: unknown step');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', NULL, 'op16-x', 0, 'P0001', NULL)$$, '22023',
                 'times must be from 0 to 1000000', 'custom: null times');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', -1, NULL, NULL)$$, '22023',
                 'delay_ms must be from 0 to 60000', 'custom: a negative delay');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 60001, NULL, NULL)$$, '22023',
                 'delay_ms must be from 0 to 60000', 'custom: a delay over a minute');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', NULL, 'P0001', NULL)$$, '22023',
                 'delay_ms must be from 0 to 60000', 'custom: a null delay');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 0, '2350', NULL)$$, '22023',
                 'sqlstate must be five digits or capital letters, of an error class (not 00, 01 or 02)',
                 'custom: an SQLSTATE of four characters');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 0, 'p0001', NULL)$$, '22023',
                 'sqlstate must be five digits or capital letters, of an error class (not 00, 01 or 02)',
                 'custom: an SQLSTATE in small letters');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 0, '01000', NULL)$$, '22023',
                 'sqlstate must be five digits or capital letters, of an error class (not 00, 01 or 02)',
                 'custom: a warning is not an error');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 10, NULL, 'no state')$$, '22023',
                 'message needs a sqlstate', 'custom: a message without an SQLSTATE');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 0, 'P0001', '')$$, '22023',
                 'message must be a string of 1 to 500 characters', 'custom: an empty message');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 0, 'P0001', repeat('m', 501))$$, '22023',
                 'message must be a string of 1 to 500 characters', 'custom: a message too long');
SELECT throws_ok($$SELECT orderflow.inject_fault('charge', 1, 'op16-x', 0, NULL, NULL)$$, '22023',
                 'a fault needs a delay_ms above 0 or a sqlstate', 'custom: neither a delay nor an SQLSTATE');
SELECT is((SELECT count(*)::int FROM orderflow.faults WHERE order_id = 'op16-x'), 0, 'no refused drill is stored');

-- list_workflows. A history at known times (ties included: the clock is pinned).
DELETE FROM orderflow.workflows;
SELECT orderflow.pin_clock('2032-02-01 00:00:00+00');
SELECT orderflow.process_order(id, 2, 'widget') FROM unnest(ARRAY['L-a1', 'L-a2']) AS id;
SELECT orderflow.inject_fault('reserve', 1, true, 'L-b1');
SELECT orderflow.process_order('L-b1', 3, 'widget');                    -- reserving
SELECT orderflow.pin_clock('2032-02-02 00:00:00+00');
SELECT orderflow.set_stock('L-none', 0);
SELECT orderflow.process_order('L-b2', 4, 'L-none');                    -- failed
SELECT orderflow.inject_fault('charge', 1, true, 'L-c1');
SELECT orderflow.process_order('L-c1', 5, 'widget');                    -- charging
SELECT orderflow.pin_clock('2032-02-03 00:00:00+00');
SELECT orderflow.process_order('M-1', 6, 'widget');
SELECT orderflow.cancel_order('L-a1', 'asked');                         -- cancelled, created 02-01

CREATE TEMP TABLE everything AS SELECT orderflow.list_workflows() AS page;
SELECT is((SELECT array_agg(e ->> 'orderId' ORDER BY n) FROM everything,
                  jsonb_array_elements(page -> 'workflows') WITH ORDINALITY AS x (e, n)),
          ARRAY['M-1', 'L-c1', 'L-b2', 'L-b1', 'L-a2', 'L-a1'],
          'list_workflows() lists every workflow newest first, ties by order id descending');
SELECT is((SELECT page -> 'next' FROM everything), 'null'::jsonb, 'next is null when nothing follows');
SELECT is((SELECT array_agg(k ORDER BY k) FROM everything, jsonb_object_keys(page #> '{workflows,0}') AS k),
          ARRAY['amount', 'attempts', 'createdAt', 'item', 'lastError', 'nextRetryAt', 'orderId', 'status',
                'step', 'updatedAt'], 'each entry has the documented fields');
SELECT is((SELECT jsonb_path_query_first(page, '$.workflows[*] ? (@.orderId == "L-b1")') - 'nextRetryAt' FROM everything),
          '{"orderId": "L-b1", "status": "reserving", "amount": 3, "item": "widget", "step": "reserve",
            "attempts": 1, "lastError": "injected transient fault", "createdAt": "2032-02-01T00:00:00.000Z",
            "updatedAt": "2032-02-01T00:00:00.000Z"}'::jsonb,
          'a waiting workflow shows the step it waits on, its attempts and its last error');
SELECT ok((SELECT (jsonb_path_query_first(page, '$.workflows[*] ? (@.orderId == "L-b1")') ->> 'nextRetryAt')::timestamptz
                  > '2032-02-01' FROM everything), 'and when it is retried');
SELECT is((SELECT jsonb_build_array(e -> 'step', e -> 'attempts', e -> 'lastError', e -> 'nextRetryAt')
             FROM everything, jsonb_path_query_first(page, '$.workflows[*] ? (@.orderId == "L-a2")') AS e),
          '[null, null, null, null]'::jsonb, 'a completed workflow has no step, attempts, error or retry');
SELECT is((SELECT jsonb_path_query_first(page, '$.workflows[*] ? (@.orderId == "L-b2")') ->> 'lastError' FROM everything),
          'reserve failed: out_of_stock', 'a failed workflow shows its error');

-- Filters, alone and combined.
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(orderflow.list_workflows('completed') -> 'workflows') e),
          ARRAY['M-1', 'L-a2'], 'by status');
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(orderflow.list_workflows(p_step => 'reserve') -> 'workflows') e),
          ARRAY['L-b1'], 'by the step a workflow waits on');
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(orderflow.list_workflows(p_step => 'charge') -> 'workflows') e),
          ARRAY['L-c1'], 'by another step');
SELECT is(orderflow.list_workflows('completed', 'reserve') -> 'workflows', '[]'::jsonb,
          'a finished status waits on no step');
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(
                  orderflow.list_workflows(p_from => '2032-02-02', p_to => '2032-02-03') -> 'workflows') e),
          ARRAY['L-c1', 'L-b2'], 'by creation time, from inclusive, to exclusive');
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(orderflow.list_workflows(p_prefix => 'L-b') -> 'workflows') e),
          ARRAY['L-b2', 'L-b1'], 'by order-id prefix');
SELECT is(orderflow.list_workflows(p_prefix => 'L_') -> 'workflows', '[]'::jsonb, 'the prefix is literal, not a pattern');
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(
                  orderflow.list_workflows('cancelled', NULL, '2032-02-01', NULL, 'L-') -> 'workflows') e),
          ARRAY['L-a1'], 'filters combine');

-- Paging: every row once, in order, while new orders arrive between pages.
CREATE TEMP TABLE first_page AS SELECT orderflow.list_workflows(p_limit => 2) AS page;
SELECT ok((SELECT page ->> 'next' IS NOT NULL FROM first_page), 'a full page has a next cursor');
SELECT orderflow.pin_clock('2032-02-04 00:00:00+00');
SELECT orderflow.process_order(id, 1, 'widget') FROM unnest(ARRAY['N-1', 'N-2', 'N-3']) AS id;
WITH RECURSIVE pages (n, page) AS (
    SELECT 1, page FROM first_page
    UNION ALL
    SELECT n + 1, orderflow.list_workflows(p_after => page ->> 'next', p_limit => 2)
      FROM pages WHERE page ->> 'next' IS NOT NULL)
SELECT is(array_agg(e ->> 'orderId' ORDER BY p.n, x.k), ARRAY['M-1', 'L-c1', 'L-b2', 'L-b1', 'L-a2', 'L-a1'],
          'paging by the cursor neither skips nor repeats a row while new orders arrive')
  FROM pages p, jsonb_array_elements(p.page -> 'workflows') WITH ORDINALITY AS x (e, k);
SELECT is(orderflow.list_workflows(p_after => (SELECT page ->> 'next' FROM first_page), p_limit => 4) -> 'next',
          'null'::jsonb, 'the last page, exactly full, has no next cursor');
SELECT is((SELECT array_agg(e ->> 'orderId') FROM jsonb_array_elements(orderflow.list_workflows(p_limit => 3) -> 'workflows') e),
          ARRAY['N-3', 'N-2', 'N-1'], 'a new first page shows the new orders');
SELECT orderflow.process_order('P-' || i, 1, 'widget') FROM generate_series(1, 50) AS i;
SELECT is(jsonb_array_length(orderflow.list_workflows() -> 'workflows'), 50, 'list_workflows() lists the newest 50');
SELECT ok(orderflow.list_workflows() ->> 'next' IS NOT NULL, 'and says there are more');
SELECT is(jsonb_array_length(orderflow.list_workflows(p_limit => 500) -> 'workflows'), 59, 'a limit of 500 is allowed');

-- Bad arguments.
SELECT throws_ok($$SELECT orderflow.list_workflows('shipped')$$, '22023',
                 'status must be one of cancelled, cancelling, charging, completed, confirming, failed, pending, reserving, suspended',
                 'an unknown status');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_step => 'ship')$$, '22023',
                 'step must be one of charge, reserve, confirm', 'an unknown step');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_after => 'not a cursor!')$$, '22023',
                 'after must be a cursor returned as "next" by list_workflows', 'a malformed cursor');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_after => 'Zm9vOmJhcg')$$, '22023',
                 'after must be a cursor returned as "next" by list_workflows', 'base64 that is not a position');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_after => '')$$, '22023',
                 'after must be a cursor returned as "next" by list_workflows', 'an empty cursor');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_limit => 0)$$, '22023', 'limit must be from 1 to 500', 'limit 0');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_limit => 501)$$, '22023', 'limit must be from 1 to 500', 'limit 501');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_limit => NULL)$$, '22023', 'limit must be from 1 to 500', 'limit null');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_from => '2032-02-02', p_to => '2032-02-01')$$, '22023',
                 'from must not be later than to', 'from after to');
SELECT throws_ok($$SELECT orderflow.list_workflows(p_prefix => '')$$, '22023',
                 'prefix must be a string of 1 to 200 characters', 'an empty prefix');

SELECT * FROM finish();
ROLLBACK;
