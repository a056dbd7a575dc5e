-- 005_step_runner_returns_rows: _create_workflow, _run_steps and _step_failed now return the
-- workflow row they leave behind (saving process_order two reads of it). A return type cannot be
-- changed by CREATE OR REPLACE, so the old versions are dropped here; db/functions creates the
-- new ones right after the migrations.
DROP FUNCTION IF EXISTS orderflow._create_workflow(text, numeric, text);
DROP FUNCTION IF EXISTS orderflow._run_steps(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._step_failed(orderflow.workflows, text, text, text, double precision);
