-- 011_webhooks: events reach their consumers (signed webhooks, dead letters, a readable event
-- stream), and every outside party gets a circuit breaker and a rate limit.
--
-- A webhook delivery is an effect (kind 'webhook') like a charge: the same rows, leases, fencing
-- tokens, executor and retry machinery (db/functions/45_effects.sql). Each outbox event fans out,
-- in the transaction that writes it, into one delivery per matching subscription
-- (db/functions/47_webhooks.sql). Every effect belongs to a provider: 'payments' for charges and
-- refunds, 'webhook:<id>' for deliveries to subscription <id>; each provider has one circuit row
-- (db/functions/44_circuits.sql), read at lease time and written only on its transitions, and
-- optional token-bucket stripes.

-- HMAC-SHA256 for the Standard Webhooks signature (trusted extension: the owner may create it).
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- The event types a subscription may name.
CREATE TABLE orderflow.event_types (
    type     text PRIMARY KEY CHECK (type ~ '^[a-z]+\.[a-z_]+$'),
    sentence text NOT NULL CHECK (char_length(sentence) BETWEEN 1 AND 200)
);
COMMENT ON TABLE orderflow.event_types IS 'The events orderflow emits, which webhooks may subscribe to.';
INSERT INTO orderflow.event_types (type, sentence) VALUES
    ('order.confirmed', 'the order was charged, reserved and confirmed'),
    ('order.cancelled', 'a confirmed order was cancelled and compensated');

-- Webhook subscriptions. The secret is only returned by add_webhook / rotate_webhook_secret.
CREATE TABLE orderflow.webhooks (
    id                    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   text        NOT NULL CHECK (char_length(url) <= 2000
                                                      AND url ~ '^https?://[^\s/?#@]+(/[^\s#]*)?$'),
    events                text[]      CHECK (events IS NULL OR cardinality(events) >= 1),
    allow_private         boolean     NOT NULL,
    secret                text        NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/]{32,}={0,2}$'),
    previous_secret       text        CHECK (previous_secret ~ '^whsec_[A-Za-z0-9+/]{32,}={0,2}$'),
    previous_secret_until timestamptz,
    timeout_ms            integer     NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 60000),
    enabled               boolean     NOT NULL DEFAULT true,
    disabled_at           timestamptz,
    disabled_reason       text,
    removed_at            timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    CONSTRAINT webhooks_disabled_have_disabled_at CHECK (enabled = (disabled_at IS NULL)),
    CONSTRAINT webhooks_removed_are_disabled CHECK (removed_at IS NULL OR NOT enabled),
    CONSTRAINT webhooks_previous_secret_has_deadline CHECK (
        (previous_secret IS NULL) = (previous_secret_until IS NULL))
);
COMMENT ON TABLE orderflow.webhooks IS
    'Webhook subscriptions (add_webhook, remove_webhook, rotate_webhook_secret, set_webhook, '
    'enable_webhook). Operators read webhook_subscriptions, which never shows a secret.';
COMMENT ON COLUMN orderflow.webhooks.previous_secret IS
    'After a rotation the old secret also signs (a second v1 signature) until previous_secret_until.';

-- Circuit breakers, one per provider: statuses and transitions as data.
CREATE TABLE orderflow.circuit_transitions (
    from_state text NOT NULL CHECK (from_state IN ('closed', 'open', 'half_open')),
    to_state   text NOT NULL CHECK (to_state IN ('closed', 'open', 'half_open')),
    sentence   text NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
COMMENT ON TABLE orderflow.circuit_transitions IS
    'The moves a circuit breaker may make (44_circuits.sql _circuit_move is the only writer of state).';
INSERT INTO orderflow.circuit_transitions VALUES
    ('closed',    'open',      'the failure rate reached the threshold'),
    ('open',      'half_open', 'the open time is over: probing'),
    ('half_open', 'open',      'a probe failed'),
    ('half_open', 'closed',    'the probes succeeded'),
    ('open',      'closed',    'reset by an operator (reset_circuit)');

CREATE TABLE orderflow.circuits (
    provider          text        PRIMARY KEY CHECK (provider = 'payments' OR provider ~ '^webhook:[0-9]+$'),
    state             text        NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    -- Settings (resilience4j's model): set_provider / set_webhook.
    minimum_calls     integer     NOT NULL DEFAULT 10 CHECK (minimum_calls BETWEEN 1 AND 100000),
    window_ms         integer     NOT NULL DEFAULT 30000 CHECK (window_ms BETWEEN 1000 AND 3600000),
    failure_rate      numeric     NOT NULL DEFAULT 50 CHECK (failure_rate > 0 AND failure_rate <= 100),
    open_ms           integer     NOT NULL DEFAULT 5000 CHECK (open_ms BETWEEN 100 AND 3600000),
    max_open_ms       integer     NOT NULL DEFAULT 300000 CHECK (max_open_ms BETWEEN 100 AND 86400000),
    probes            integer     NOT NULL DEFAULT 1 CHECK (probes BETWEEN 1 AND 100),
    rate_per_second   numeric     CHECK (rate_per_second > 0 AND rate_per_second <= 100000),
    -- State.
    window_started_at timestamptz NOT NULL,
    opened_at         timestamptz,
    open_until        timestamptz,
    trips             integer     NOT NULL DEFAULT 0 CHECK (trips >= 0),
    probes_granted    integer     NOT NULL DEFAULT 0 CHECK (probes_granted >= 0),
    probes_succeeded  integer     NOT NULL DEFAULT 0 CHECK (probes_succeeded >= 0),
    probe_until       timestamptz,
    paused_until      timestamptz,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT circuits_open_have_open_until CHECK ((state = 'open') = (open_until IS NOT NULL)),
    CONSTRAINT circuits_closed_have_no_trip_time CHECK ((state = 'closed') = (opened_at IS NULL)),
    CONSTRAINT circuits_max_open_not_below_open CHECK (max_open_ms >= open_ms)
);
COMMENT ON TABLE orderflow.circuits IS
    'One circuit breaker per provider (payments, webhook:<id>): closed, open (no call sent until '
    'open_until), half_open (probes only). Read at lease time, written on transitions only.';
INSERT INTO orderflow.circuits (provider, window_started_at, updated_at) VALUES ('payments', now(), now());

-- Calls counted for the breakers' windows: one row per provider, second and stripe (the
-- reporting connection's pid modulo 16), so concurrent reports rarely share a row.
CREATE TABLE orderflow.circuit_calls (
    provider  text     NOT NULL,
    second    bigint   NOT NULL,
    stripe    smallint NOT NULL,
    successes integer  NOT NULL DEFAULT 0,
    failures  integer  NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, second, stripe)
);
CREATE INDEX circuit_calls_second ON orderflow.circuit_calls (second);
COMMENT ON TABLE orderflow.circuit_calls IS
    'Successes and failures per provider, second and stripe: the breakers'' sliding windows.';

-- Token buckets of rate-limited providers, striped the same way (tokens per stripe = rate/stripes).
CREATE TABLE orderflow.rate_buckets (
    provider    text             NOT NULL REFERENCES orderflow.circuits ON DELETE CASCADE,
    stripe      smallint         NOT NULL CHECK (stripe >= 0),
    tokens      double precision NOT NULL CHECK (tokens >= 0),
    refilled_at timestamptz      NOT NULL,
    PRIMARY KEY (provider, stripe)
);
COMMENT ON TABLE orderflow.rate_buckets IS
    'Token-bucket stripes of a provider with rate_per_second: each refills at rate/stripes per second '
    'up to max(1, rate/stripes) tokens; a lease takes one token from a stripe nobody else holds.';

-- Effects gain webhook deliveries.
ALTER TABLE orderflow.effects DROP CONSTRAINT effects_kind_check;
ALTER TABLE orderflow.effects ADD CONSTRAINT effects_kind_check
    CHECK (kind IN ('charge', 'refund', 'webhook'));
ALTER TABLE orderflow.effects DROP CONSTRAINT effects_order_id_kind_key;
CREATE UNIQUE INDEX effects_one_payment_call_per_kind ON orderflow.effects (order_id, kind)
    WHERE kind <> 'webhook';
ALTER TABLE orderflow.effects
    ADD COLUMN provider text NOT NULL DEFAULT 'payments',
    ADD COLUMN webhook_id bigint,
    ADD COLUMN event_id bigint,
    ADD COLUMN circuit_probe boolean NOT NULL DEFAULT false,
    ADD COLUMN key_sent_at timestamptz,
    ADD CONSTRAINT effects_webhooks_have_event CHECK (
        (kind = 'webhook') = (webhook_id IS NOT NULL AND event_id IS NOT NULL)),
    ADD CONSTRAINT effects_provider_of_kind CHECK (
        provider = CASE WHEN kind = 'webhook' THEN 'webhook:' || webhook_id ELSE 'payments' END);
COMMENT ON COLUMN orderflow.effects.provider IS
    'Whose circuit and rate limit the call goes through: payments, or webhook:<subscription id>.';
COMMENT ON COLUMN orderflow.effects.circuit_probe IS
    'This lease was the half-open circuit''s probe: its outcome closes or reopens the circuit.';
COMMENT ON COLUMN orderflow.effects.key_sent_at IS
    'When the current idempotency key was first sent; past 20 h a payment call is only looked up '
    '(Stripe keeps keys 24 h), never re-sent.';
DROP INDEX orderflow.effects_due;
CREATE INDEX effects_due_by_provider ON orderflow.effects (provider, next_attempt_at) WHERE state = 'open';
CREATE INDEX effects_dead ON orderflow.effects (provider, finished_at) WHERE state = 'dead';
CREATE INDEX effects_event ON orderflow.effects (event_id) WHERE event_id IS NOT NULL;

-- Outcome rules gain a target (payments or webhook) and what the outcome means to the breaker.
ALTER TABLE orderflow.provider_outcomes DROP CONSTRAINT provider_outcomes_verdict_check;
ALTER TABLE orderflow.provider_outcomes
    ADD CONSTRAINT provider_outcomes_verdict_check CHECK (
        verdict IN ('object', 'declined', 'retry', 'reconcile', 'dead', 'delivered', 'disable')),
    ADD COLUMN target text NOT NULL DEFAULT 'payments' CHECK (target IN ('payments', 'webhook')),
    ADD COLUMN breaker text NOT NULL DEFAULT 'ignore' CHECK (breaker IN ('success', 'failure', 'ignore'));
COMMENT ON COLUMN orderflow.provider_outcomes.breaker IS
    'What the outcome counts as in the provider''s circuit window: success, failure, or nothing '
    '(declines, 409s, 429s, client errors; read-only lookups never count).';
UPDATE orderflow.provider_outcomes SET breaker = 'success' WHERE rule = 10;
UPDATE orderflow.provider_outcomes SET breaker = 'failure' WHERE rule IN (70, 80, 90, 91, 92, 93);
INSERT INTO orderflow.provider_outcomes
       (rule, target, phase, status_min, status_max, transport, verdict, honour_retry_after, breaker,
        sentence) VALUES
    (200, 'webhook', NULL, 200, 299, NULL,      'delivered', false, 'success', 'delivered'),
    (210, 'webhook', NULL, 410, 410, NULL,      'disable',   false, 'ignore',
     'the endpoint answered 410 Gone: the subscription is disabled'),
    (220, 'webhook', NULL, 429, 429, NULL,      'retry',     true,  'ignore',
     'the endpoint is rate limiting, will retry'),
    (230, 'webhook', NULL, 409, 409, NULL,      'retry',     false, 'ignore',
     'the endpoint answered 409, will retry'),
    (240, 'webhook', NULL, 502, 504, NULL,      'retry',     true,  'failure',
     'the endpoint is unavailable, will retry'),
    (250, 'webhook', NULL, NULL, NULL, 'timeout', 'retry',   true,  'failure',
     'no answer from the endpoint in time, will retry'),
    (260, 'webhook', NULL, NULL, NULL, 'connect', 'retry',   false, 'failure',
     'the endpoint is unreachable, will retry'),
    (261, 'webhook', NULL, NULL, NULL, 'reset',   'retry',   false, 'failure',
     'the connection to the endpoint broke, will retry'),
    (262, 'webhook', NULL, NULL, NULL, 'other',   'retry',   false, 'failure',
     'calling the endpoint failed, will retry'),
    (270, 'webhook', NULL, 100, 599, NULL,      'retry',     false, 'failure',
     'the endpoint did not accept the event, will retry');

-- Retry policies gain the webhook schedule (about three days), as data.
ALTER TABLE orderflow.effect_policies DROP CONSTRAINT effect_policies_kind_check;
ALTER TABLE orderflow.effect_policies DROP CONSTRAINT effect_policies_give_up_after_check;
ALTER TABLE orderflow.effect_policies
    ADD CONSTRAINT effect_policies_kind_check CHECK (kind IN ('charge', 'refund', 'webhook')),
    ADD COLUMN schedule_ms integer[] CHECK (schedule_ms IS NULL OR (cardinality(schedule_ms) >= 1
                                                                   AND 0 <= ALL (schedule_ms))),
    ADD CONSTRAINT effect_policies_give_up_after_check CHECK (
        give_up_after > interval '0'
        AND (kind = 'webhook' OR give_up_after <= interval '20 hours'));
COMMENT ON COLUMN orderflow.effect_policies.schedule_ms IS
    'When set: the delay before attempt n is schedule_ms[n] (the first is 0: at once), and after '
    'the last the call is dead; backoff columns are then unused.';
INSERT INTO orderflow.effect_policies
       (kind, max_attempts, base_delay_ms, multiplier, max_delay_ms, jitter, give_up_after, schedule_ms)
VALUES ('webhook', 10, 0, 1, 86400000, 0, interval '4 days',
        '{0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 50400000, 72000000, 86400000}');

-- The outbox: each event remembers its transaction, so that readers can page in commit-safe
-- order (read_events: ids can commit out of order; transaction ids below the oldest running
-- one cannot gain events any more).
ALTER TABLE orderflow.outbox ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
COMMENT ON COLUMN orderflow.outbox.txid IS
    'The transaction that wrote the event: read_events pages by (txid, id) below the snapshot''s xmin.';
CREATE INDEX outbox_by_transaction ON orderflow.outbox (txid, id);

-- claim_effects learns which kinds this server can send.
DROP FUNCTION IF EXISTS orderflow.claim_effects(integer, text);
