-- 013_history: an order's history that loses nothing. workflow_steps keeps one row per step
-- (its last error, its attempt count); this keeps every attempt of every step and every
-- provider call, every status transition and every operator action, with its time, outcome,
-- error and who caused it. Append-only: written in the transaction of what it records
-- (db/functions/75_history.sql), read by order_history() and step_report(), deleted by prune()
-- with its workflow.
CREATE TABLE orderflow.history (
    id          bigint           GENERATED ALWAYS AS IDENTITY,
    order_id    text             NOT NULL,
    at          timestamptz      NOT NULL,
    kind        text             NOT NULL CHECK (kind IN ('transition', 'step', 'call', 'action')),
    -- transition: null; step: charge|reserve|confirm; call: charge|refund|webhook; action: its name
    step        text,
    -- transition: the new status; step: succeeded|retry|failed|compensated;
    -- call: succeeded|retry|lookup|failed|dead; action: done
    outcome     text             NOT NULL,
    from_status text,
    attempt     integer,
    duration_ms double precision,
    error       text,
    sqlstate    text,
    http_status integer,
    object_id   text,
    provider    text,
    actor       text             NOT NULL CHECK (actor IN ('client', 'janitor', 'operator', 'cancel')),
    detail      text,
    CONSTRAINT history_transitions_have_from CHECK ((kind = 'transition') = (from_status IS NOT NULL))
);
COMMENT ON TABLE orderflow.history IS
    'Every transition, step attempt, provider call and operator action of every order, in order '
    '(order_history, step_report). Append-only; prune deletes it with its workflow.';
COMMENT ON COLUMN orderflow.history.actor IS
    'Who caused it: client (an API call), janitor (a retry or a claimed call), operator (resume_now, '
    'redrive, the console), cancel (a cancellation and its compensation).';
-- An order's timeline, and the time range step_report reads (BRIN: the table is appended in
-- time order, so the index costs almost nothing to keep).
CREATE INDEX history_by_order ON orderflow.history (order_id, id);
CREATE INDEX history_by_time ON orderflow.history USING brin (at);

-- Who leased a provider call, for the history row of its outcome.
ALTER TABLE orderflow.effects ADD COLUMN lease_actor text
    CHECK (lease_actor IN ('client', 'janitor', 'operator', 'cancel'));
