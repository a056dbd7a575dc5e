-- 015_shard_keys: every row written on a request path carries the column it can be sharded by,
-- on plain PostgreSQL too, so that one set of functions runs on both (the Citus migration,
-- db/citus/, distributes the tables by these columns; see DESIGN.md "Sharding on Citus").
--   orders.idempotency_key: the key that created the order. orders and idempotency_keys are
--     sharded by the key, so that a create touches one shard.
--   finished_count_deltas.order_id: the order whose finish the delta counts, so that the append
--     lands on the order's own shard.
-- Plain PostgreSQL keeps its keys and constraints: only new columns are added here.
ALTER TABLE orderflow.orders ADD COLUMN idempotency_key text;
UPDATE orderflow.orders o SET idempotency_key = k.key
  FROM orderflow.idempotency_keys k
 WHERE k.order_id = o.id;
COMMENT ON COLUMN orderflow.orders.idempotency_key IS
    'The Idempotency-Key that created the order (null only for orders whose key expired before '
    'this column existed); the column orders are sharded by on Citus.';

ALTER TABLE orderflow.finished_count_deltas ADD COLUMN order_id text;
COMMENT ON COLUMN orderflow.finished_count_deltas.order_id IS
    'The order whose finish (or retry) this delta counts; the column the deltas are sharded by on Citus.';
