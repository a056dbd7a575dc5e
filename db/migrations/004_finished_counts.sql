-- 004_finished_counts: workflow counts by status that metrics can read cheaply at any history
-- size. Finished workflows are counted in striped counters: a transaction adds to the stripe of
-- its backend (pid % 64), so concurrent writers almost never touch the same row. Unfinished
-- workflows are few and are counted exactly, through the workflows_unfinished index.
CREATE TABLE orderflow.finished_counts (
    status text     NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    stripe smallint NOT NULL CHECK (stripe BETWEEN 0 AND 63),
    n      bigint   NOT NULL,
    PRIMARY KEY (status, stripe)
);
COMMENT ON TABLE orderflow.finished_counts IS
    'Striped counters of finished workflows per status; sum(n) by status is the count. See workflow_counts().';

INSERT INTO orderflow.finished_counts (status, stripe, n)
SELECT status, 0, count(*) FROM orderflow.workflows
 WHERE status IN ('completed', 'failed', 'cancelled')
 GROUP BY status;

REVOKE ALL ON orderflow.finished_counts FROM PUBLIC;
