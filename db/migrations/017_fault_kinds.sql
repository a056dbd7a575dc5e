-- 017_fault_kinds: drills that raise what a real error would, and drills that slow a step
-- down, as data (issue 13: Citus refuses triggers on distributed tables, so the tests that
-- injected such faults with a trigger now inject them here, as an operator can).
--
-- A fault row is now one of two kinds, told apart by transient:
--   fail   (transient true or false): the step raises OFT01 / OFP01, as before;
--   custom (transient null): the step waits delay_ms, then raises sqlstate with message when
--          one is given (else it runs as usual, late). Its failure is classified by step_errors
--          like any error of that SQLSTATE raised there.
-- Stored by inject_fault(step, times, order_id, delay_ms, sqlstate, message) (70_operator.sql),
-- taken by _take_fault and raised by _run_steps (40_process_order.sql) where every injected
-- fault is raised: inside the step's exception block.
-- Written for a database already placed on Citus too (faults is a reference table there): one
-- subcommand per ALTER TABLE (Citus runs ADD CONSTRAINT only on its own), and DROP NOT NULL and
-- ADD CONSTRAINT through EXECUTE, because Citus sends those to the workers with the text of the
-- whole query they came in, and --migrate sends this file as one query ("cannot insert
-- multiple commands into a prepared statement").
ALTER TABLE orderflow.faults ADD COLUMN delay_ms integer NOT NULL DEFAULT 0;
ALTER TABLE orderflow.faults ADD COLUMN sqlstate text;
ALTER TABLE orderflow.faults ADD COLUMN message text;
DO $$
BEGIN
    EXECUTE 'ALTER TABLE orderflow.faults ALTER COLUMN transient DROP NOT NULL';
    EXECUTE 'ALTER TABLE orderflow.faults ADD CONSTRAINT faults_delay_ms_range
                 CHECK (delay_ms BETWEEN 0 AND 60000)';
    -- An error's SQLSTATE: five digits or capitals, not of the classes that are no error (00
    -- success, 01 warning, 02 no data).
    EXECUTE $c$ALTER TABLE orderflow.faults ADD CONSTRAINT faults_sqlstate_is_error
                 CHECK (sqlstate IS NULL OR (sqlstate ~ '^[0-9A-Z]{5}$' AND left(sqlstate, 2) NOT IN ('00', '01', '02')))$c$;
    EXECUTE 'ALTER TABLE orderflow.faults ADD CONSTRAINT faults_message_length
                 CHECK (message IS NULL OR char_length(message) BETWEEN 1 AND 500)';
    EXECUTE 'ALTER TABLE orderflow.faults ADD CONSTRAINT faults_message_needs_sqlstate
                 CHECK (message IS NULL OR sqlstate IS NOT NULL)';
    EXECUTE 'ALTER TABLE orderflow.faults ADD CONSTRAINT faults_one_kind
                 CHECK ((transient IS NOT NULL AND delay_ms = 0 AND sqlstate IS NULL)
                        OR (transient IS NULL AND (delay_ms > 0 OR sqlstate IS NOT NULL)))';
END
$$;
COMMENT ON COLUMN orderflow.faults.transient IS
    'A fail fault: true raises OFT01 (retried), false OFP01 (for good); null: a custom fault (delay_ms, sqlstate).';
COMMENT ON COLUMN orderflow.faults.delay_ms IS
    'A custom fault: the step waits this long first (inside the step: a statement timeout cancels it).';
COMMENT ON COLUMN orderflow.faults.sqlstate IS
    'A custom fault: the SQLSTATE the step then raises (null: the step runs, late).';
COMMENT ON COLUMN orderflow.faults.message IS
    'A custom fault: the message raised with sqlstate (null: "injected <sqlstate> fault in <step>").';
-- _take_fault(step, order_id) returns the fault to raise instead of a boolean, and
-- _inject_fault takes every column; the functions are re-created right after the migrations.
DROP FUNCTION IF EXISTS orderflow._take_fault(text, text);
DROP FUNCTION IF EXISTS orderflow._inject_fault(text, integer, boolean, text);
