-- 008_state_machine: the workflow state machine as data, one guarded way to change a status,
-- the suspended status, stable error sentences kept apart from internal detail, and finished
-- counts that no two request transactions share.
--
-- The rows of workflow_statuses and workflow_transitions are written by
-- db/functions/15_state_machine.sql (re-applied at every start), which also derives the
-- workflows CHECK constraints from them: a new status is added there and nowhere else.

CREATE TABLE orderflow.workflow_statuses (
    status      text    PRIMARY KEY CHECK (status ~ '^[a-z_]{1,30}$'),
    finished    boolean NOT NULL,
    scheduled   boolean NOT NULL,
    step        text    CHECK (step IN ('charge', 'reserve', 'confirm')),
    description text    NOT NULL,
    CONSTRAINT workflow_statuses_finished_are_not_scheduled CHECK (NOT (finished AND scheduled))
);
COMMENT ON TABLE orderflow.workflow_statuses IS
    'Workflow statuses: finished (terminal), scheduled (the janitor resumes it at next_retry_at), '
    'the step it runs or waits on. Rows come from db/functions/15_state_machine.sql.';

CREATE TABLE orderflow.workflow_transitions (
    from_status text NOT NULL REFERENCES orderflow.workflow_statuses ON DELETE CASCADE,
    to_status   text NOT NULL REFERENCES orderflow.workflow_statuses ON DELETE CASCADE,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE orderflow.workflow_transitions IS
    'The status changes _transition() allows; any other raises OFX01. Rows come from '
    'db/functions/15_state_machine.sql.';

-- The constraints that list statuses are re-created from the data by 15_state_machine.sql.
ALTER TABLE orderflow.workflows DROP CONSTRAINT workflows_status_check;
ALTER TABLE orderflow.workflows DROP CONSTRAINT workflows_unfinished_are_scheduled;
ALTER TABLE orderflow.workflows DROP CONSTRAINT workflows_finished_have_finished_at;
DROP INDEX orderflow.workflows_unfinished;
-- Unfinished is finished_at IS NULL (a constraint says so), whatever statuses come later.
CREATE INDEX workflows_unfinished ON orderflow.workflows (created_at) WHERE finished_at IS NULL;
-- The finished counts take whatever finished statuses workflow_statuses names.
ALTER TABLE orderflow.finished_counts DROP CONSTRAINT finished_counts_status_check;

-- Stable sentences for clients; what the database really said stays with operators.
ALTER TABLE orderflow.workflows ADD COLUMN error_detail text;
COMMENT ON COLUMN orderflow.workflows.error IS
    'The stable sentence clients see for a failed or suspended workflow (never internal text).';
COMMENT ON COLUMN orderflow.workflows.error_detail IS
    'Internal detail behind error (the database''s own message); operators only.';
ALTER TABLE orderflow.workflow_steps ADD COLUMN last_detail text;
COMMENT ON COLUMN orderflow.workflow_steps.last_error IS
    'The stable sentence of the step''s last failure (step_errors.sentence), shown to clients.';
COMMENT ON COLUMN orderflow.workflow_steps.last_detail IS
    'Internal detail of the last failure (the database''s own message); operators only.';

-- How a step's failure is classified and worded, by SQLSTATE: rules as data. A SQLSTATE without
-- a row is permanent and worded 'internal error'.
CREATE TABLE orderflow.step_errors (
    sqlstate  text    PRIMARY KEY CHECK (sqlstate ~ '^[0-9A-Z]{5}$'),
    transient boolean NOT NULL,
    sentence  text    NOT NULL CHECK (char_length(sentence) BETWEEN 1 AND 200)
);
COMMENT ON TABLE orderflow.step_errors IS
    'Per SQLSTATE: whether a failing step retries (transient) and the sentence clients see. '
    'Unlisted SQLSTATEs are permanent internal errors.';
INSERT INTO orderflow.step_errors (sqlstate, transient, sentence) VALUES
    ('40001', true, 'serialization failure, will retry'),
    ('40P01', true, 'deadlock detected, will retry'),
    ('55P03', true, 'lock not available in time, will retry'),
    ('OFT01', true, 'injected transient fault'),
    ('OFP01', false, 'injected permanent fault'),
    ('OFS01', false, 'out_of_stock');

UPDATE orderflow.workflow_steps s
   SET last_detail = s.last_error,
       last_error = COALESCE((SELECT e.sentence FROM orderflow.step_errors e
                               WHERE e.sqlstate = s.last_sqlstate), 'internal error')
 WHERE s.last_error IS NOT NULL;
UPDATE orderflow.workflows w
   SET error_detail = w.error,
       error = (SELECT format('%s failed: %s', s.step, s.last_error)
                  FROM orderflow.workflow_steps s
                 WHERE s.order_id = w.order_id AND s.failed_at IS NOT NULL
                 ORDER BY s.failed_at DESC LIMIT 1)
 WHERE w.error IS NOT NULL;

-- Finished counts without a shared row in the request's transaction: a transition appends its
-- change to finished_count_deltas (a heap without indexes: an append never waits), and the
-- janitor folds the deltas into finished_counts in its own transaction. workflow_counts() adds
-- both. Before this, unrelated orders waited on each other's stripe rows (measured: 1.5 s behind
-- one open transaction).
CREATE TABLE orderflow.finished_count_deltas (
    status text   NOT NULL,
    delta  bigint NOT NULL
);
COMMENT ON TABLE orderflow.finished_count_deltas IS
    'Changes to the finished counts not yet folded into finished_counts (by janitor_tick).';
REVOKE ALL ON orderflow.finished_count_deltas FROM PUBLIC;

-- The view is re-created by 70_operator.sql without the functions dropped below.
DROP VIEW IF EXISTS orderflow.stuck_workflows;
-- Old signatures replaced by versions that take the decision's time (one clock reading).
DROP FUNCTION IF EXISTS orderflow._run_steps(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._step_failed(orderflow.workflows, text, text, text, double precision);
DROP FUNCTION IF EXISTS orderflow._compensate(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._charge(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._reserve(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._confirm(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._refund(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._release(orderflow.workflows);
DROP FUNCTION IF EXISTS orderflow._emit(orderflow.workflows, text, text);
DROP FUNCTION IF EXISTS orderflow._create_workflow(text, numeric, text);
DROP FUNCTION IF EXISTS orderflow._count_finished(text, bigint);
DROP FUNCTION IF EXISTS orderflow._is_transient(text);
DROP FUNCTION IF EXISTS orderflow._take_fault(text);
DROP FUNCTION IF EXISTS orderflow._running_status(text);
DROP FUNCTION IF EXISTS orderflow._is_finished(text);
