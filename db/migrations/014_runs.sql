-- 014_runs: a failed order can run again (retry_workflow, db/functions/76_retry.sql) as a new
-- run of the same order. The ledger's "one charge per order" becomes one per run: each run's
-- payments, reservation and provider calls carry its number, and their keys carry it too from
-- the second run on (<orderId>:run2:charge, <orderId>:run2:confirm). The first run's keys are
-- unchanged, so every existing row stays valid.
ALTER TABLE orderflow.workflows ADD COLUMN run integer NOT NULL DEFAULT 1
    CONSTRAINT workflows_run_positive CHECK (run >= 1);
COMMENT ON COLUMN orderflow.workflows.run IS
    'Which run of the order this is: 1, then one more per retry_workflow.';

ALTER TABLE orderflow.payments ADD COLUMN run integer NOT NULL DEFAULT 1
    CONSTRAINT payments_run_positive CHECK (run >= 1);
ALTER TABLE orderflow.payments DROP CONSTRAINT payments_order_id_kind_key;
ALTER TABLE orderflow.payments ADD CONSTRAINT payments_one_per_run_and_kind UNIQUE (order_id, run, kind);
ALTER TABLE orderflow.payments DROP CONSTRAINT payments_check;  -- idempotency_key = order_id:kind
ALTER TABLE orderflow.payments ADD CONSTRAINT payments_key_is_order_run_kind CHECK (
    idempotency_key = order_id || CASE WHEN run = 1 THEN '' ELSE ':run' || run END || ':' || kind);

ALTER TABLE orderflow.reservations ADD COLUMN run integer NOT NULL DEFAULT 1
    CONSTRAINT reservations_run_positive CHECK (run >= 1);
ALTER TABLE orderflow.reservations DROP CONSTRAINT reservations_pkey;
ALTER TABLE orderflow.reservations ADD PRIMARY KEY (order_id, run);

ALTER TABLE orderflow.effects ADD COLUMN run integer NOT NULL DEFAULT 1
    CONSTRAINT effects_run_positive CHECK (run >= 1);
DROP INDEX orderflow.effects_one_payment_call_per_kind;
CREATE UNIQUE INDEX effects_one_payment_call_per_run_and_kind ON orderflow.effects (order_id, run, kind)
    WHERE kind <> 'webhook';

-- Effects are written per run now (the workflow, not only its order id).
DROP FUNCTION IF EXISTS orderflow._new_effect(text, text, text, text, text, timestamptz);
-- redrive gains a filter by dead letter id (the console's redrive button).
DROP FUNCTION IF EXISTS orderflow.redrive(text, text, text, timestamptz, integer, numeric);
