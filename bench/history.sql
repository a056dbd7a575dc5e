-- bench/history.sql: loads :n finished workflows and :n idempotent orders, as if the service had
-- been running for a while, so the benchmark can show that a request's cost does not grow with
-- history. Run on a freshly migrated database:
--
--   psql -v ON_ERROR_STOP=1 -v n=1000000 -f bench/history.sql "$DATABASE_URL"
--
-- Every row is what the functions themselves would have written for a completed order of an
-- untracked item: a workflow (completed, finished_at set, next_retry_at null), its three step
-- rows, the charge in the ledger (key <orderId>:charge), the reservation, the order.confirmed
-- outbox event (key <orderId>:confirm); and for POST /orders an order with its idempotency key
-- and stored 201 response. Set-based INSERTs from generate_series, one statement per table,
-- with every constraint and foreign key checked as usual.
--
-- History ids ('hist-…') never collide with the benchmark's numeric keys and order ids.

\set ON_ERROR_STOP on
SET synchronous_commit = off;          -- a load, not a workload: no need to wait for each flush
SET maintenance_work_mem = '256MB';

-- The history spans the 20 hours before now: young enough that no idempotency key has expired
-- (the TTL is 24 hours), so every key row is one a request could still replay.
CREATE TEMPORARY TABLE hist AS
SELECT i,
       'hist-' || i                                                   AS order_id,
       ((i % 10000) + 1) / 100.0                                      AS amount,
       now() - interval '20 hours' + (i * interval '20 hours') / greatest(:n, 1) AS at
  FROM generate_series(1, :n) AS i;

BEGIN;

INSERT INTO orderflow.workflows (order_id, amount, item, status, error, cancel_reason,
                                 next_retry_at, created_at, updated_at, finished_at)
SELECT order_id, amount, 'widget', 'completed', NULL, NULL,
       NULL, at, at + interval '3 ms', at + interval '3 ms'
  FROM hist;

-- Steps in the order they ran, one millisecond apart, each completed at its first attempt.
INSERT INTO orderflow.workflow_steps (order_id, step, attempts, completed_at, failed_at,
                                      last_error, total_ms, compensated_at, last_sqlstate)
SELECT h.order_id, s.step, 1, h.at + s.nr * interval '1 ms', NULL, NULL, 0.5, NULL, NULL
  FROM hist h
 CROSS JOIN (VALUES (1, 'charge'), (2, 'reserve'), (3, 'confirm')) AS s (nr, step);

INSERT INTO orderflow.payments (order_id, kind, amount, idempotency_key, created_at)
SELECT order_id, 'charge', amount, order_id || ':charge', at + interval '1 ms'
  FROM hist;

-- 'widget' has no inventory row: untracked, as in the benchmark's own requests.
INSERT INTO orderflow.reservations (order_id, item, quantity, tracked, reserved_at, released_at)
SELECT order_id, 'widget', 1, false, at + interval '2 ms', NULL
  FROM hist;

INSERT INTO orderflow.outbox (event_key, order_id, event_type, payload, created_at)
SELECT order_id || ':confirm', order_id, 'order.confirmed',
       jsonb_build_object('orderId', order_id, 'amount', trim_scale(amount), 'item', 'widget'),
       at + interval '3 ms'
  FROM hist;

-- POST /orders history: an order per key, ids derived from i so a reload is reproducible.
CREATE TEMPORARY TABLE hist_orders AS
SELECT h.i, 'hist-' || h.i AS key, md5('hist-order-' || h.i)::uuid AS id, h.at
  FROM hist h;

INSERT INTO orderflow.orders (id, item, quantity, created_at)
SELECT id, 'widget', 1, at FROM hist_orders;

INSERT INTO orderflow.idempotency_keys (key, request, status, response, order_id, created_at, expires_at)
SELECT o.key, '{"item": "widget", "quantity": 1}'::jsonb, 201,
       jsonb_build_object('id', o.id, 'item', 'widget', 'quantity', 1,
                          'createdAt', orderflow._iso(o.at)),
       o.id, o.at, o.at + s.idempotency_ttl
  FROM hist_orders o CROSS JOIN orderflow.settings s;

COMMIT;

DROP TABLE hist, hist_orders;

-- Leave the tables as a long-running database would have them: vacuumed (hint bits and
-- visibility map set, so autovacuum does not start on the loaded rows in the middle of a
-- measurement), analyzed, and checkpointed (so the load's WAL is not flushed during one).
-- Not for an empty history: a freshly migrated database has never been vacuumed, and the
-- planner then assumes a table of at least 10 pages and looks keys up by index. Vacuuming the
-- empty tables would record them as truly empty, every connection would plan (and cache) a
-- sequential scan, and the "empty" runs would slow down as the tables fill.
SELECT :n > 0 AS has_history \gset
\if :has_history
VACUUM (ANALYZE) orderflow.workflows, orderflow.workflow_steps, orderflow.payments,
                 orderflow.reservations, orderflow.outbox, orderflow.orders,
                 orderflow.idempotency_keys;
CHECKPOINT;
\endif

SELECT (SELECT count(*) FROM orderflow.workflows WHERE status = 'completed') AS completed_workflows,
       (SELECT count(*) FROM orderflow.idempotency_keys)                     AS idempotency_keys;
