-- 002_failures: what failing steps need — retry policies as data, injectable faults for tests
-- and drills, and the SQLSTATE of a step's last error.

-- Per-step retry policy. A transient failure of attempt n waits
--   min(max_delay_ms, base_delay_ms * multiplier^(n-1)) * (1 - jitter * random())
-- before the janitor resumes it; the n-th failure with n = max_attempts fails the workflow.
CREATE TABLE orderflow.retry_policies (
    step          text    PRIMARY KEY CHECK (step IN ('charge', 'reserve', 'confirm')),
    max_attempts  integer NOT NULL CHECK (max_attempts >= 1),
    base_delay_ms integer NOT NULL CHECK (base_delay_ms >= 0),
    multiplier    numeric NOT NULL CHECK (multiplier >= 1),
    max_delay_ms  integer NOT NULL CHECK (max_delay_ms >= base_delay_ms),
    jitter        numeric NOT NULL CHECK (jitter >= 0 AND jitter <= 1)
);
COMMENT ON TABLE orderflow.retry_policies IS
    'Retry policy per step: attempts allowed and exponential backoff with jitter. Edit rows to tune.';
INSERT INTO orderflow.retry_policies (step, max_attempts, base_delay_ms, multiplier, max_delay_ms, jitter)
VALUES ('charge', 5, 200, 2, 10000, 0.2),
       ('reserve', 5, 200, 2, 10000, 0.2),
       ('confirm', 5, 200, 2, 10000, 0.2);

-- Injected faults: the next `remaining` runs of a step fail, transiently or for good.
CREATE TABLE orderflow.faults (
    step        text        PRIMARY KEY CHECK (step IN ('charge', 'reserve', 'confirm')),
    remaining   integer     NOT NULL CHECK (remaining >= 0),
    transient   boolean     NOT NULL,
    injected_at timestamptz NOT NULL
);
COMMENT ON TABLE orderflow.faults IS
    'Faults injected by inject_fault(): the next `remaining` runs of the step fail (tests and drills).';

ALTER TABLE orderflow.workflow_steps ADD COLUMN last_sqlstate text;
COMMENT ON COLUMN orderflow.workflow_steps.last_sqlstate IS 'SQLSTATE of last_error (OFS01 out_of_stock, OFT01 injected transient fault, ...).';

-- stuck_workflows lists unfinished workflows older than settings.stuck_after.
CREATE INDEX workflows_unfinished ON orderflow.workflows (created_at)
    WHERE status NOT IN ('completed', 'failed', 'cancelled');
