-- 012_operators: what operators need (issue 12) — drills scoped to one order, a role of their
-- own, and the index that lists workflows newest first.

-- Scoped drills. A fault row is for one order (order_id) or, as before, for every order
-- (order_id null). The order need not exist: nothing references workflows, the row waits for
-- it. One row per step and scope; NULLS NOT DISTINCT makes the every-order row unique too, and
-- the same index is what _run_steps probes once per run (order_id IS NULL OR order_id = $1),
-- so an unrelated order never reads another order's drill and the probe stays two index
-- descents however many orders are drilled.
ALTER TABLE orderflow.faults
    ADD COLUMN order_id text CHECK (order_id IS NULL OR char_length(order_id) BETWEEN 1 AND 200);
ALTER TABLE orderflow.faults DROP CONSTRAINT faults_pkey;
ALTER TABLE orderflow.faults ADD CONSTRAINT faults_scope UNIQUE NULLS NOT DISTINCT (order_id, step);
COMMENT ON TABLE orderflow.faults IS
    'Faults injected by inject_fault(): the next `remaining` runs of the step fail, for one order '
    '(order_id) or for every order (order_id null). Tests and drills.';
COMMENT ON COLUMN orderflow.faults.order_id IS
    'The one order this fault breaks (it may not exist yet); null: every order.';
-- _take_fault(step) became _take_fault(step, order_id) (40_process_order.sql).
DROP FUNCTION IF EXISTS orderflow._take_fault(text);

-- list_workflows(): newest first, (created_at, order_id) descending, paged by keyset. One
-- index per status serves every filter: list_workflows walks it once per status asked for
-- (all of them when none is) and merges the walks, so no status can be starved by another,
-- and a time range or a cursor is an index condition. created_at never changes; status is
-- already in other indexes' predicates, so a status change was never a HOT update and this
-- adds one index entry per row version, nothing more.
CREATE INDEX workflows_by_status ON orderflow.workflows (status, created_at, order_id);

-- The operator role: reads the operator views and the tables they need, executes the operator
-- functions (db/functions/99_grants.sql, re-applied at every start, says which and why). No
-- login is a member of it by default; an administrator grants it to people:
--   GRANT orderflow_operator TO alice;
-- Created like orderflow_api (003_roles.sql): creating it needs CREATEROLE; a schema owner
-- without it migrates once an administrator created the role (CREATE ROLE orderflow_operator
-- NOLOGIN); the comment is then left to whoever created it.
DO $$
DECLARE
    v_may_manage_roles boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO v_may_manage_roles
      FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_operator') THEN
        IF NOT v_may_manage_roles THEN
            RAISE EXCEPTION 'role orderflow_operator does not exist and % may not create it', current_user
                USING ERRCODE = '42501',
                      HINT = 'As a superuser or a role with CREATEROLE, run once: CREATE ROLE orderflow_operator NOLOGIN';
        END IF;
        CREATE ROLE orderflow_operator NOLOGIN;
    END IF;
    IF v_may_manage_roles THEN
        COMMENT ON ROLE orderflow_operator IS
            'orderflow operators: may read the operator views and execute the operator functions; '
            'never the webhook secrets. Grant it to people, never to the API login.';
    END IF;
END
$$;
GRANT USAGE ON SCHEMA orderflow TO orderflow_operator;
