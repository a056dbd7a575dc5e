-- 009_step_rows_when_run: a workflow_steps row is written when its step first runs (completes
-- or fails), not three empty rows when the workflow is created, and the checkpoints of one
-- run are written in one statement. A new workflow went from four statements on workflow_steps
-- (one insert, three updates, each deserialising the table's CHECK constraints and, for rows
-- inserted in the same transaction, firing the foreign-key check again) to one.
--
-- The foreign key to workflows goes: its check cost about a tenth of a new workflow's
-- instructions (valgrind, bench/dbcost.sh), steps are written only under the workflow's row lock
-- by the functions that hold it, and prune() deletes a workflow's steps with it.
ALTER TABLE orderflow.workflow_steps DROP CONSTRAINT workflow_steps_order_id_fkey;
COMMENT ON TABLE orderflow.workflow_steps IS
    'Per workflow and step that has run: attempts, completion, last error, time spent, compensation. '
    'A step without a row has not run yet.';
-- Rows of steps that never ran carry nothing: the new shape has no row for them.
DELETE FROM orderflow.workflow_steps
 WHERE attempts = 0 AND completed_at IS NULL AND failed_at IS NULL AND last_error IS NULL;
