-- The workflow state machine: its statuses and allowed transitions as data, and _transition(),
-- the one function through which every status change goes.
--
--                      step failed, transient, attempts left (waits for next_retry_at)
--                       ┌───────────┐
--                       ▼           │
--   (created)       charging ───────┤
--   pending ──┬──▶ reserving ───────┤──── all steps done ─────▶ completed ──┐
--             │    confirming ──────┘                                       │ cancel
--             │        │  ▲                                                 ▼ (compensates)
--             │        │  │ resume_now (operator)                      cancelled
--             │        ▼  │                                                 ▲
--             ├──▶ suspended  (failure handling itself raised: the          │ cancel
--             │               janitor stops retrying; an operator acts) ────┤
--             │                                                             │
--             └── step failed for good / out of attempts ──▶ failed ────────┘
--                                                      (completed steps compensated)
--   failed ──▶ pending: retry_workflow (operator), the order's next run (run + 1, new keys)
--
-- Any unfinished status (pending, charging, reserving, confirming, suspended) may also go to
-- failed or cancelled. `scheduled` statuses carry next_retry_at (the janitor resumes them);
-- `finished` statuses carry finished_at; the CHECK constraints on workflows that say so are
-- derived from this data by _sync_status_constraints() below. A new status (waiting for a
-- payment provider, reconciling, compensating) is a row here with its transitions — nowhere else.
--
-- _transition() sets updated_at, finished_at and next_retry_at from the status's flags and the
-- decision's time, keeps the finished counts, and raises OFX01 for a transition the table does
-- not allow (completed → failed, cancelled → completed, …): a bug fails loudly instead of
-- refunding a customer. Its caller holds the workflows row lock (see 40_process_order.sql).

INSERT INTO orderflow.workflow_statuses AS s (status, finished, scheduled, step, description) VALUES
    ('pending',    false, true,  NULL,      'created; its steps run in the same transaction'),
    ('charging',   false, true,  'charge',  'the charge step waits for its retry'),
    ('reserving',  false, true,  'reserve', 'the reserve step waits for its retry'),
    ('confirming', false, true,  'confirm', 'the confirm step waits for its retry'),
    ('suspended',  false, false, NULL,      'resuming raised an internal error; waits for an operator'),
    ('cancelling', false, false, NULL,      'cancelled; waits for the provider''s refund (or charge) to resolve'),
    ('completed',  true,  false, NULL,      'every step done'),
    ('failed',     true,  false, NULL,      'a step failed for good; completed steps compensated'),
    ('cancelled',  true,  false, NULL,      'cancelled; completed steps compensated')
ON CONFLICT (status) DO UPDATE
    SET finished = EXCLUDED.finished, scheduled = EXCLUDED.scheduled, step = EXCLUDED.step,
        description = EXCLUDED.description
    WHERE (s.finished, s.scheduled, s.step, s.description)
          IS DISTINCT FROM (EXCLUDED.finished, EXCLUDED.scheduled, EXCLUDED.step, EXCLUDED.description);

-- The allowed pairs as one array of 'from>to', then the table made equal to it: plain
-- statements on workflow_transitions alone (no temporary table), which Citus runs on its
-- reference table too.
DO $$
DECLARE
    v_pairs text[];
BEGIN
    SELECT array_agg(p.f || '>' || p.t) INTO v_pairs FROM (
        SELECT f.s, t.s
          FROM unnest(ARRAY['pending', 'charging', 'reserving', 'confirming']) AS f (s)
         CROSS JOIN unnest(ARRAY['charging', 'reserving', 'confirming', 'completed', 'failed',
                                 'cancelled', 'suspended']) AS t (s)
         -- Steps only move forward: a workflow waiting on reserve never waits on charge again.
         WHERE array_position(ARRAY['pending', 'charging', 'reserving', 'confirming'], t.s)
               IS NULL OR array_position(ARRAY['pending', 'charging', 'reserving', 'confirming'], t.s)
               >= array_position(ARRAY['pending', 'charging', 'reserving', 'confirming'], f.s)
        UNION ALL
        SELECT 'suspended', t.s
          FROM unnest(ARRAY['charging', 'reserving', 'confirming', 'failed', 'cancelled']) AS t (s)
        UNION ALL VALUES ('completed', 'cancelled'), ('failed', 'cancelled'),
            -- cancelling: a cancel that waits for the payment provider (45_effects.sql).
            ('pending', 'cancelling'), ('charging', 'cancelling'), ('reserving', 'cancelling'),
            ('confirming', 'cancelling'), ('suspended', 'cancelling'), ('completed', 'cancelling'),
            ('failed', 'cancelling'), ('cancelling', 'cancelled'),
            -- retry_workflow (76_retry.sql): a failed order runs again, as a new run.
            ('failed', 'pending')
    ) AS p (f, t);
    DELETE FROM orderflow.workflow_transitions t
     WHERE NOT (t.from_status || '>' || t.to_status = ANY (v_pairs));
    INSERT INTO orderflow.workflow_transitions (from_status, to_status)
    SELECT split_part(p, '>', 1), split_part(p, '>', 2) FROM unnest(v_pairs) AS p
    ON CONFLICT DO NOTHING;
END
$$;
DELETE FROM orderflow.workflow_statuses s
 WHERE s.status NOT IN ('pending', 'charging', 'reserving', 'confirming', 'suspended',
                        'cancelling', 'completed', 'failed', 'cancelled');

-- _sync_status_constraints() → void: (re)creates the workflows CHECK constraints that tie status
-- to the status list, finished_at and next_retry_at, from workflow_statuses. Each constraint's
-- comment holds the definition it was made from, so nothing is rebuilt when nothing changed.
CREATE OR REPLACE FUNCTION orderflow._sync_status_constraints()
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_all       text;
    v_finished  text;
    v_scheduled text;
    v_name      text;
    v_def       text;
BEGIN
    -- Each list is one array constant ('{a,b}'::text[]), not IN (...): PostgreSQL reads every
    -- CHECK of a table from its stored node tree at each INSERT or UPDATE statement on it, and
    -- a list of literals costs a node per element and a constant-folding pass each time
    -- (bench/dbcost.sh counts the instructions).
    SELECT quote_literal(array_agg(status ORDER BY status)::text),
           quote_literal(COALESCE(array_agg(status ORDER BY status) FILTER (WHERE finished), '{}')::text),
           quote_literal(COALESCE(array_agg(status ORDER BY status) FILTER (WHERE scheduled), '{}')::text)
      INTO v_all, v_finished, v_scheduled
      FROM orderflow.workflow_statuses;
    FOR v_name, v_def IN VALUES
        ('workflows_status_known', format('status = ANY (%s::text[])', v_all)),
        ('workflows_finished_have_finished_at',
         format('(status = ANY (%s::text[])) = (finished_at IS NOT NULL)', v_finished)),
        ('workflows_scheduled_have_next_retry_at',
         format('(status = ANY (%s::text[])) = (next_retry_at IS NOT NULL)', v_scheduled))
    LOOP
        IF obj_description((SELECT c.oid FROM pg_catalog.pg_constraint c
                             WHERE c.conrelid = 'orderflow.workflows'::regclass AND c.conname = v_name),
                           'pg_constraint') IS DISTINCT FROM v_def THEN
            EXECUTE format('ALTER TABLE orderflow.workflows DROP CONSTRAINT IF EXISTS %I', v_name);
            EXECUTE format('ALTER TABLE orderflow.workflows ADD CONSTRAINT %I CHECK (%s)', v_name, v_def);
            EXECUTE format('COMMENT ON CONSTRAINT %I ON orderflow.workflows IS %L', v_name, v_def);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION orderflow._sync_status_constraints() IS
    'Internal: derives the workflows status CHECK constraints from workflow_statuses (run at every start).';
SELECT orderflow._sync_status_constraints();

-- _status_of_step(step) → text: the scheduled status of a workflow whose next step is p_step.
CREATE OR REPLACE FUNCTION orderflow._status_of_step(p_step text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_status text;
BEGIN
    SELECT s.status INTO STRICT v_status FROM orderflow.workflow_statuses s
     WHERE s.step = p_step AND s.scheduled;
    RETURN v_status;
END
$$;
COMMENT ON FUNCTION orderflow._status_of_step(text) IS
    'Internal: the scheduled status that waits on p_step (charge → charging, ...).';

-- _transition(workflow, to, now, next_retry_at, error, error_detail, cancel_reason) → workflow:
-- moves the locked workflow p_wf (as read under its lock) to status p_to and returns the row
-- after. OFX01 when workflow_transitions has no (p_wf.status, p_to) or the row changed under
-- the caller. finished_at is p_now on entering a finished status; next_retry_at is
-- p_next_retry_at (default p_now) for a scheduled status, null otherwise; error and
-- error_detail are kept for finished statuses unless given, cleared otherwise.
CREATE OR REPLACE FUNCTION orderflow._transition(
    p_wf orderflow.workflows, p_to text, p_now timestamptz,
    p_next_retry_at timestamptz DEFAULT NULL, p_error text DEFAULT NULL,
    p_error_detail text DEFAULT NULL, p_cancel_reason text DEFAULT NULL)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_finished boolean;
    v_wf       orderflow.workflows;
BEGIN
    -- The allowed transition and the update in one statement; why there is no row is looked up
    -- only when there is none.
    UPDATE orderflow.workflows w
       SET status = p_to,
           updated_at = p_now,
           finished_at = CASE WHEN s.finished THEN p_now END,
           next_retry_at = CASE WHEN s.scheduled THEN COALESCE(p_next_retry_at, p_now) END,
           error = COALESCE(p_error, CASE WHEN s.finished THEN w.error END),
           error_detail = COALESCE(p_error_detail, CASE WHEN s.finished THEN w.error_detail END),
           cancel_reason = COALESCE(p_cancel_reason, w.cancel_reason),
           -- A failed workflow that goes back to pending starts its next run (retry_workflow).
           run = CASE WHEN w.status = 'failed' AND p_to = 'pending' THEN w.run + 1 ELSE w.run END
      FROM orderflow.workflow_transitions t
      JOIN orderflow.workflow_statuses s ON s.status = t.to_status
     WHERE w.order_id = p_wf.order_id AND w.status = p_wf.status
       AND t.from_status = p_wf.status AND t.to_status = p_to
    RETURNING w.* INTO v_wf;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM orderflow.workflow_transitions t
                        WHERE t.from_status = p_wf.status AND t.to_status = p_to) THEN
            RAISE EXCEPTION 'workflow % cannot go from % to %', p_wf.order_id, p_wf.status, p_to
                USING ERRCODE = 'OFX01';
        END IF;
        RAISE EXCEPTION 'workflow % changed under its lock (expected status %)', p_wf.order_id, p_wf.status
            USING ERRCODE = 'OFX01';
    END IF;
    v_finished := v_wf.finished_at IS NOT NULL;
    PERFORM orderflow._record(p_wf.order_id, p_now, 'transition', NULL, p_to, p_wf.status,
                              p_error => p_error, p_detail => p_error_detail);  -- 75_history.sql
    -- The finished counts: an append, never a shared row (80_counts.sql).
    IF p_wf.finished_at IS NOT NULL THEN
        INSERT INTO orderflow.finished_count_deltas (order_id, status, delta) VALUES (p_wf.order_id, p_wf.status, -1);
    END IF;
    IF v_finished THEN
        INSERT INTO orderflow.finished_count_deltas (order_id, status, delta) VALUES (p_wf.order_id, p_to, 1);
    END IF;
    RETURN v_wf;
END
$$;
COMMENT ON FUNCTION orderflow._transition(orderflow.workflows, text, timestamptz, timestamptz, text, text, text) IS
    'Internal: the one way a workflow''s status changes: checks workflow_transitions (OFX01 if not '
    'allowed), sets updated_at/finished_at/next_retry_at consistently, keeps the finished counts. '
    'Caller holds the workflows row lock.';
