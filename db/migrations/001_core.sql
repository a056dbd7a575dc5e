-- 001_core: the tables behind both retry-safe APIs.
--
-- POST /orders      -> orders + idempotency_keys (a key maps to exactly one order)
-- process_order     -> workflows + workflow_steps, and the effects the steps leave:
--                      payments (the ledger), inventory + reservations, outbox.
--
-- Exactly-once is enforced by the schema, not only by the functions: every effect carries a
-- unique key derived from the order id, so a second charge, reservation or event for the same
-- order cannot be inserted whatever code runs.

CREATE TABLE orderflow.settings (
    singleton       boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    idempotency_ttl interval NOT NULL DEFAULT interval '24 hours' CHECK (idempotency_ttl > interval '0'),
    stuck_after     interval NOT NULL DEFAULT interval '5 minutes' CHECK (stuck_after > interval '0')
);
COMMENT ON TABLE orderflow.settings IS
    'One row of tunables: how long idempotency keys live, when a workflow counts as stuck.';
INSERT INTO orderflow.settings DEFAULT VALUES;

-- Orders created through POST /orders.
CREATE TABLE orderflow.orders (
    id         uuid        PRIMARY KEY,
    item       text        NOT NULL CHECK (char_length(item) BETWEEN 1 AND 200),
    quantity   integer     NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    created_at timestamptz NOT NULL
);
COMMENT ON TABLE orderflow.orders IS 'Orders created by create_order_idempotent (POST /orders).';

-- One row per Idempotency-Key: the normalised request and the response stored for replays.
CREATE TABLE orderflow.idempotency_keys (
    key        text        PRIMARY KEY CHECK (key ~ '^[\x20-\x7e]{1,255}$'),
    request    jsonb       NOT NULL,
    status     smallint    NOT NULL,
    response   jsonb       NOT NULL,
    order_id   uuid        NOT NULL UNIQUE
                           REFERENCES orderflow.orders (id) DEFERRABLE INITIALLY DEFERRED,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expires_at ON orderflow.idempotency_keys (expires_at);
COMMENT ON TABLE orderflow.idempotency_keys IS
    'Claimed Idempotency-Keys. The primary key is the claim; prune() deletes expired rows.';

-- One row per workflow started by process_order. Invariant (checked): a workflow that is not
-- finished always has a next_retry_at, so the janitor can never lose one.
CREATE TABLE orderflow.workflows (
    order_id      text          PRIMARY KEY CHECK (char_length(order_id) BETWEEN 1 AND 200),
    amount        numeric(12,2) NOT NULL CHECK (amount > 0),
    item          text          NOT NULL CHECK (char_length(item) BETWEEN 1 AND 200),
    status        text          NOT NULL CHECK (status IN ('pending', 'charging', 'reserving',
                                                           'confirming', 'completed', 'failed',
                                                           'cancelled')),
    error         text,
    cancel_reason text,
    next_retry_at timestamptz,
    created_at    timestamptz   NOT NULL,
    updated_at    timestamptz   NOT NULL,
    finished_at   timestamptz,
    CONSTRAINT workflows_unfinished_are_scheduled CHECK (
        (status IN ('completed', 'failed', 'cancelled')) = (next_retry_at IS NULL)),
    CONSTRAINT workflows_finished_have_finished_at CHECK (
        (status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX workflows_due ON orderflow.workflows (next_retry_at) WHERE next_retry_at IS NOT NULL;
CREATE INDEX workflows_finished ON orderflow.workflows (finished_at) WHERE finished_at IS NOT NULL;
COMMENT ON TABLE orderflow.workflows IS
    'One row per order workflow; its row lock serialises everything done to that order.';

-- One row per workflow and step: the checkpoint written in the same transaction as the effect.
CREATE TABLE orderflow.workflow_steps (
    order_id       text        NOT NULL REFERENCES orderflow.workflows (order_id) ON DELETE CASCADE,
    step           text        NOT NULL CHECK (step IN ('charge', 'reserve', 'confirm')),
    attempts       integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    completed_at   timestamptz,
    failed_at      timestamptz,
    last_error     text,
    total_ms       double precision NOT NULL DEFAULT 0,
    compensated_at timestamptz,
    PRIMARY KEY (order_id, step),
    CHECK (compensated_at IS NULL OR completed_at IS NOT NULL)
);
COMMENT ON TABLE orderflow.workflow_steps IS
    'Per workflow and step: attempts, completion, last error, time spent, compensation.';

-- The payments ledger. One charge and at most one refund per order, by construction.
CREATE TABLE orderflow.payments (
    id              bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        text          NOT NULL,
    kind            text          NOT NULL CHECK (kind IN ('charge', 'refund')),
    amount          numeric(12,2) NOT NULL CHECK (amount > 0),
    idempotency_key text          NOT NULL UNIQUE CHECK (idempotency_key = order_id || ':' || kind),
    created_at      timestamptz   NOT NULL,
    UNIQUE (order_id, kind)
);
COMMENT ON TABLE orderflow.payments IS
    'Ledger of charges and refunds, keyed <orderId>:charge / <orderId>:refund (unique). Never pruned.';

-- Stock of tracked items. An item without a row is untracked: always available.
CREATE TABLE orderflow.inventory (
    item       text        PRIMARY KEY CHECK (char_length(item) BETWEEN 1 AND 200),
    on_hand    integer     NOT NULL CHECK (on_hand >= 0),
    updated_at timestamptz NOT NULL
);
COMMENT ON TABLE orderflow.inventory IS 'Stock of tracked items; items without a row are untracked.';

-- One reservation per order (the reserve step's effect), released by compensation.
CREATE TABLE orderflow.reservations (
    order_id    text        PRIMARY KEY,
    item        text        NOT NULL,
    quantity    integer     NOT NULL CHECK (quantity > 0),
    tracked     boolean     NOT NULL,
    reserved_at timestamptz NOT NULL,
    released_at timestamptz
);
COMMENT ON TABLE orderflow.reservations IS
    'The reserve step''s effect: one row per order; released_at is set once by compensation.';

-- Transactional outbox: events for the world outside the database, keyed <orderId>:<step>.
CREATE TABLE orderflow.outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key  text        NOT NULL UNIQUE,
    order_id   text        NOT NULL,
    event_type text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX outbox_order_id ON orderflow.outbox (order_id);
COMMENT ON TABLE orderflow.outbox IS
    'Events for consumers outside the database (also sent with NOTIFY orderflow_events); '
    'event_key <orderId>:<step> lets consumers deduplicate.';
