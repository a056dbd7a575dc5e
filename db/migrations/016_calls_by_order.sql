-- 016_calls_by_order: the helpers that lock or change one provider call take its order id
-- beside its id (db/functions/45_effects.sql), so that each statement names the row's shard on
-- Citus and its primary key on both. The forms by id alone go; the functions are re-created
-- right after the migrations.
DROP FUNCTION IF EXISTS orderflow._lease(bigint, text, timestamptz);
DROP FUNCTION IF EXISTS orderflow._reopen_effect(bigint, timestamptz, timestamptz);
