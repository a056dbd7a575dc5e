-- 016_calls_by_order: the helpers that lock or change one provider call take its order id
-- beside its id (db/functions/45_effects.sql), so that each statement names the row's shard on
-- Citus and its primary key on both. The forms by id alone go; the functions are re-created
-- right after the migrations.
DROP FUNCTION IF EXISTS orderflow._lease(bigint, text, timestamptz);
DROP FUNCTION IF EXISTS orderflow._reopen_effect(bigint, timestamptz, timestamptz);
-- _refilled takes a bucket's columns instead of its row (a shard's row has its own type).
DROP FUNCTION IF EXISTS orderflow._refilled(orderflow.rate_buckets, numeric, timestamptz);
