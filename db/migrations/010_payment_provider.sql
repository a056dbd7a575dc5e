-- 010_payment_provider: charge and refund through a payment provider speaking Stripe's API.
--
-- An external effect is a row of `effects`: the request to send (stored once, re-sent
-- byte-for-byte), its idempotency key, its state, attempts, lease and result. The row is
-- written in the transaction of the workflow checkpoint that needs it; the HTTP front only
-- sends the request and reports the outcome to report_effect() (db/functions/45_effects.sql),
-- which classifies it with the rules below (data) and advances the workflow in the same
-- transaction. The in-database ledger (payments) stays the default: with no row in
-- `providers`, nothing here is used.

-- Where the payments provider is. No secret is stored: the server reads STRIPE_API_KEY.
CREATE TABLE orderflow.providers (
    name       text        PRIMARY KEY CHECK (name IN ('payments')),
    base_url   text        NOT NULL CHECK (base_url ~ '^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?$'
                                           AND base_url !~ '/$'),
    settings   jsonb       NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    updated_at timestamptz NOT NULL
);
COMMENT ON TABLE orderflow.providers IS
    'The payments provider (Stripe''s API) and its settings; no row = the in-database ledger. '
    'Written by set_provider(). The secret key is never stored (STRIPE_API_KEY on the server).';

-- Minor units per currency: the provider takes amounts in the smallest unit.
CREATE TABLE orderflow.currencies (
    code        text     PRIMARY KEY CHECK (code ~ '^[a-z]{3}$'),
    minor_units smallint NOT NULL CHECK (minor_units BETWEEN 0 AND 3)
);
COMMENT ON TABLE orderflow.currencies IS
    'Currencies the provider may be asked for, and the digits of their minor unit (usd 2, jpy 0).';
INSERT INTO orderflow.currencies (code, minor_units) VALUES
    ('usd', 2), ('eur', 2), ('gbp', 2), ('chf', 2), ('cad', 2), ('aud', 2), ('sek', 2),
    ('nok', 2), ('dkk', 2), ('pln', 2), ('jpy', 0), ('krw', 0), ('vnd', 0), ('clp', 0),
    ('isk', 0), ('bhd', 3), ('kwd', 3), ('jod', 3), ('omr', 3), ('tnd', 3);

-- One row per provider call an order needs: its charge and its refund.
CREATE TABLE orderflow.effects (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('charge', 'refund')),
    -- open: not resolved yet (due at next_attempt_at, or leased until then); the rest are final.
    state           text        NOT NULL CHECK (state IN ('open', 'succeeded', 'failed', 'dead',
                                                          'abandoned')),
    -- What the next attempt sends: the stored request, or a read-only lookup of what happened.
    phase           text        NOT NULL CHECK (phase IN ('send', 'lookup')),
    method          text        NOT NULL CHECK (method IN ('POST')),
    path            text        NOT NULL,
    body            text        NOT NULL,
    key_base        text        NOT NULL,
    key_generation  integer     NOT NULL DEFAULT 1 CHECK (key_generation >= 1),
    idempotency_key text        NOT NULL UNIQUE,
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    lease_token     uuid,
    lease_owner     text,
    leased_until    timestamptz,
    object_id       text,
    object_status   text,
    last_outcome    text,
    last_http_status integer,
    last_error      text,
    last_detail     text,
    failure_sqlstate text CHECK (failure_sqlstate ~ '^OFD0[0-9]$'),
    result          jsonb,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    UNIQUE (order_id, kind),
    CONSTRAINT effects_open_have_next_attempt_at CHECK ((state = 'open') = (next_attempt_at IS NOT NULL)),
    CONSTRAINT effects_final_have_finished_at CHECK ((state = 'open') = (finished_at IS NULL)),
    CONSTRAINT effects_key_is_base_and_generation CHECK (
        idempotency_key = CASE WHEN key_generation = 1 THEN key_base
                               ELSE key_base || ':' || key_generation END)
);
CREATE INDEX effects_due ON orderflow.effects (next_attempt_at) WHERE state = 'open';
COMMENT ON TABLE orderflow.effects IS
    'Provider calls (charge, refund) per order: the request stored once, its key, state, '
    'attempts, lease (fenced by lease_token) and outcome. Claimed by claim_effects() or leased '
    'inline; resolved by report_effect().';
COMMENT ON COLUMN orderflow.effects.next_attempt_at IS
    'Open effects: when the next attempt may start. While leased it is the lease''s end, so an '
    'expired lease is simply due again.';
COMMENT ON COLUMN orderflow.effects.lease_token IS
    'The current lease; report_effect() ignores a report carrying any other token (a stale worker).';

-- How an outcome is classified: rules as data, first match by rule number.
CREATE TABLE orderflow.provider_outcomes (
    rule        integer PRIMARY KEY,
    phase       text    CHECK (phase IN ('send', 'lookup')),
    status_min  integer,
    status_max  integer,
    transport   text    CHECK (transport IN ('connect', 'timeout', 'reset', 'other')),
    error_type  text,
    error_code  text,
    verdict     text    NOT NULL CHECK (verdict IN ('object', 'declined', 'retry', 'reconcile',
                                                    'dead')),
    honour_retry_after boolean NOT NULL DEFAULT false,
    sentence    text    NOT NULL CHECK (char_length(sentence) BETWEEN 1 AND 200),
    CONSTRAINT provider_outcomes_status_or_transport CHECK (
        (transport IS NULL) = (status_min IS NOT NULL AND status_max IS NOT NULL))
);
COMMENT ON TABLE orderflow.provider_outcomes IS
    'Classification of a provider call''s outcome (HTTP status, Stripe error type/code, or transport '
    'error), first matching rule wins. Verdicts: object (read the returned object), declined, retry '
    '(same key), reconcile (look up what happened before any new key), dead (stop, an operator acts).';
INSERT INTO orderflow.provider_outcomes
       (rule, phase, status_min, status_max, transport, error_type, error_code, verdict,
        honour_retry_after, sentence) VALUES
    (10,  NULL,     200, 299, NULL,      NULL, NULL, 'object',    false, 'the provider answered'),
    (20,  'send',   402, 402, NULL,      NULL, NULL, 'declined',  false, 'card declined'),
    (30,  NULL,     409, 409, NULL,      NULL, 'idempotency_key_in_use', 'retry', false,
     'the provider is still processing an earlier attempt, will retry'),
    (40,  NULL,     429, 429, NULL,      NULL, NULL, 'retry',     true,  'rate limited by the provider, will retry'),
    (50,  NULL,     400, 400, NULL,      'idempotency_error', NULL, 'dead', false,
     'the provider refused a reused idempotency key; an operator must act'),
    (60,  NULL,     401, 401, NULL,      NULL, NULL, 'dead',      false,
     'the provider refused our credentials; an operator must act'),
    (61,  NULL,     403, 403, NULL,      NULL, NULL, 'dead',      false,
     'the provider refused our credentials; an operator must act'),
    (70,  'send',   500, 500, NULL,      NULL, NULL, 'reconcile', false,
     'the provider failed; checking what happened before trying again'),
    (80,  NULL,     500, 599, NULL,      NULL, NULL, 'retry',     true,  'the provider is unavailable, will retry'),
    (90,  NULL,     NULL, NULL, 'connect', NULL, NULL, 'retry',   false, 'the provider is unreachable, will retry'),
    (91,  NULL,     NULL, NULL, 'timeout', NULL, NULL, 'retry',   false,
     'no answer from the provider in time, will retry with the same key'),
    (92,  NULL,     NULL, NULL, 'reset',   NULL, NULL, 'retry',   false,
     'the connection to the provider broke, will retry with the same key'),
    (93,  NULL,     NULL, NULL, 'other',   NULL, NULL, 'retry',   false,
     'calling the provider failed, will retry with the same key'),
    (100, NULL,     400, 499, NULL,      NULL, NULL, 'dead',      false,
     'the provider refused the request; an operator must act'),
    (110, NULL,     100, 399, NULL,      NULL, NULL, 'dead',      false,
     'unexpected answer from the provider; an operator must act');

-- What a returned object's status means: rules as data.
CREATE TABLE orderflow.provider_object_statuses (
    object   text NOT NULL CHECK (object IN ('payment_intent', 'refund')),
    status   text NOT NULL,
    verdict  text NOT NULL CHECK (verdict IN ('succeeded', 'follow_up', 'declined', 'failed')),
    sqlstate text CHECK ((verdict = 'declined') = (sqlstate IS NOT NULL)),
    sentence text NOT NULL CHECK (char_length(sentence) BETWEEN 1 AND 200),
    PRIMARY KEY (object, status)
);
COMMENT ON TABLE orderflow.provider_object_statuses IS
    'Per returned object and status: succeeded, follow_up (look it up again later), declined (the '
    'charge did not happen), failed (final, an operator sees it). Unlisted statuses are dead.';
INSERT INTO orderflow.provider_object_statuses (object, status, verdict, sqlstate, sentence) VALUES
    ('payment_intent', 'succeeded',               'succeeded', NULL,    'charged'),
    ('payment_intent', 'processing',              'follow_up', NULL,    'the payment is processing'),
    ('payment_intent', 'requires_action',         'declined',  'OFD02',
     'requires_action: the payment needs the customer''s authentication'),
    ('payment_intent', 'requires_payment_method', 'declined',  'OFD01', 'card declined'),
    ('payment_intent', 'canceled',                'declined',  'OFD01', 'the payment was canceled'),
    ('refund',         'succeeded',               'succeeded', NULL,    'refunded'),
    ('refund',         'pending',                 'follow_up', NULL,    'the refund is pending'),
    ('refund',         'requires_action',         'follow_up', NULL,    'the refund is pending'),
    ('refund',         'failed',                  'failed',    NULL,    'the refund failed; an operator must act'),
    ('refund',         'canceled',                'failed',    NULL,    'the refund was canceled; an operator must act');

-- Retry schedule of provider calls. Attempts stop well inside Stripe's 24-hour key window.
CREATE TABLE orderflow.effect_policies (
    kind          text     PRIMARY KEY CHECK (kind IN ('charge', 'refund')),
    max_attempts  integer  NOT NULL CHECK (max_attempts >= 1),
    base_delay_ms integer  NOT NULL CHECK (base_delay_ms >= 0),
    multiplier    numeric  NOT NULL CHECK (multiplier >= 1),
    max_delay_ms  integer  NOT NULL CHECK (max_delay_ms >= base_delay_ms),
    jitter        numeric  NOT NULL CHECK (jitter >= 0 AND jitter <= 1),
    give_up_after interval NOT NULL CHECK (give_up_after > interval '0'
                                           AND give_up_after <= interval '20 hours')
);
COMMENT ON TABLE orderflow.effect_policies IS
    'Retry schedule per provider call kind; after max_attempts or give_up_after (from the first '
    'attempt; at most 20 h, inside the provider''s 24 h key window) the effect is dead.';
INSERT INTO orderflow.effect_policies VALUES
    ('charge', 25, 200, 2, 60000, 0.2, interval '12 hours'),
    ('refund', 25, 200, 2, 60000, 0.2, interval '12 hours');

-- Errors of provider steps, in the step_errors vocabulary.
INSERT INTO orderflow.step_errors (sqlstate, transient, sentence) VALUES
    ('OFD01', false, 'card declined'),
    ('OFD02', false, 'requires_action: the payment needs the customer''s authentication'),
    ('OFD03', false, 'the amount cannot be expressed in the currency''s minor unit')
ON CONFLICT (sqlstate) DO NOTHING;

-- The payment method a workflow's charge uses (POST /api/orders/process's paymentMethod).
ALTER TABLE orderflow.workflows ADD COLUMN payment_method text
    CONSTRAINT workflows_payment_method_is_an_id CHECK (payment_method ~ '^pm_[A-Za-z0-9_]{1,96}$');
COMMENT ON COLUMN orderflow.workflows.payment_method IS
    'The provider PaymentMethod the charge uses, when the request named one (else the provider settings'' default).';

INSERT INTO orderflow.step_errors (sqlstate, transient, sentence) VALUES
    ('OFD04', false, 'no payment method for the charge')
ON CONFLICT (sqlstate) DO NOTHING;

-- The state machine gains `cancelling` (db/functions/15_state_machine.sql writes its rows).
-- Signatures that change: the charge and the compensation now say whether they wait on the
-- provider; a workflow carries its payment method.
DROP FUNCTION IF EXISTS orderflow._charge(orderflow.workflows, timestamptz);
DROP FUNCTION IF EXISTS orderflow._compensate(orderflow.workflows, timestamptz);
DROP FUNCTION IF EXISTS orderflow._create_workflow(text, numeric, text, timestamptz);
DROP FUNCTION IF EXISTS orderflow._check_same_order(orderflow.workflows, numeric, text);
DROP FUNCTION IF EXISTS orderflow._process_order(text, numeric, text);
