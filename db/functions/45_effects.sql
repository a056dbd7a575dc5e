-- Provider effects: the charge and the refund at a payment provider speaking Stripe's API
-- (010_payment_provider.sql has the tables and the classification rules).
--
-- The database decides, the front carries:
--   1. a step that needs the provider writes an `effects` row (the request, stored once, with
--      its idempotency key <orderId>:charge / <orderId>:refund) in the same transaction as the
--      workflow's checkpoint, and the workflow waits (charging with next_retry_at = infinity,
--      or cancelling);
--   2. the front leases it — inline, in the same call as the request that created it
--      (process_order_http, cancel_order_http, report_effect), or from the janitor
--      (claim_effects, FOR UPDATE SKIP LOCKED) — sends it with no transaction open, and
--   3. reports the outcome to report_effect(), which checks the lease token (a stale worker's
--      report changes nothing), classifies the outcome (provider_outcomes,
--      provider_object_statuses), schedules the retry or records the result, and advances the
--      workflow in the same transaction.
-- A lease lasts the call's timeout plus 5 s on the database's clock; an expired lease is due
-- again (next_attempt_at is the lease's end), so any server's janitor re-sends the same key.
-- A 500 on creation is stored by Stripe and replayed for the same key: the outcome is unknown,
-- so the next attempt is a read-only lookup (by id, or a search on metadata order_id), and a new
-- key (<orderId>:charge:2, ...) is used only once the lookup shows nothing was charged.
--
-- Locks (see 40_process_order.sql): the workflows row first, then the order's effects rows,
-- then the provider's circuit and bucket rows (SKIP LOCKED). claim_effects takes effects rows
-- only, with SKIP LOCKED: it never waits. A webhook delivery (47_webhooks.sql) is an effect
-- without a workflow: its report takes its own row only.

-- _provider() → providers: the payments provider's row, or a row of nulls (the ledger).
CREATE OR REPLACE FUNCTION orderflow._provider()
RETURNS orderflow.providers
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_provider orderflow.providers;
BEGIN
    SELECT * INTO v_provider FROM orderflow.providers WHERE name = 'payments';
    RETURN v_provider;
END
$$;
COMMENT ON FUNCTION orderflow._provider() IS
    'Internal: the payments provider row (set_provider), nulls when charges use the ledger.';

-- _setting_ms(settings, key, default) → integer: a millisecond setting of the provider.
CREATE OR REPLACE FUNCTION orderflow._setting_ms(p_settings jsonb, p_key text, p_default integer)
RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$
    SELECT COALESCE((p_settings ->> p_key)::integer, p_default)
$$;
COMMENT ON FUNCTION orderflow._setting_ms(jsonb, text, integer) IS
    'Internal: an integer setting of the provider, or the default.';

-- set_provider(name, base_url, settings) → jsonb: routes charges and refunds through the
-- provider at base_url (Stripe's API), or back to the in-database ledger when base_url is null.
-- Settings: timeoutMs (100..60000, default 10000), currency (default usd), paymentMethod,
-- stripeVersion (default 2024-06-20), reconcileDelayMs (0..3600000, default 60000: Stripe's
-- search lags writes by up to a minute), and the provider's rate limit and circuit breaker
-- (ratePerSecond, circuit*: 44_circuits.sql _set_limits). 22023 for anything else. Operators only.
CREATE OR REPLACE FUNCTION orderflow.set_provider(p_name text, p_base_url text,
                                                  p_settings jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text;
    v_min  integer;
    v_max  integer;
    v_row  orderflow.providers;
BEGIN
    IF p_name IS DISTINCT FROM 'payments' THEN
        RAISE EXCEPTION 'provider must be payments' USING ERRCODE = '22023';
    END IF;
    IF p_base_url IS NULL THEN
        DELETE FROM orderflow.providers WHERE name = p_name;
        RETURN NULL;
    END IF;
    IF p_base_url !~ '^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?$' OR p_base_url ~ '/$' THEN
        RAISE EXCEPTION 'base_url must be an http(s) URL without a trailing slash, query or credentials'
            USING ERRCODE = '22023';
    END IF;
    p_settings := COALESCE(p_settings, '{}');
    IF jsonb_typeof(p_settings) <> 'object' THEN
        RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(p_settings) LOOP
        CASE v_key
            WHEN 'timeoutMs', 'reconcileDelayMs' THEN
                v_min := CASE WHEN v_key = 'timeoutMs' THEN 100 ELSE 0 END;
                v_max := CASE WHEN v_key = 'timeoutMs' THEN 60000 ELSE 3600000 END;
                IF jsonb_typeof(p_settings -> v_key) <> 'number'
                   OR (p_settings ->> v_key)::numeric <> trunc((p_settings ->> v_key)::numeric)
                   OR (p_settings ->> v_key)::numeric NOT BETWEEN v_min AND v_max THEN
                    RAISE EXCEPTION '% must be an integer from % to %', v_key, v_min, v_max
                        USING ERRCODE = '22023';
                END IF;
            WHEN 'currency' THEN
                IF NOT EXISTS (SELECT 1 FROM orderflow.currencies c WHERE c.code = p_settings ->> v_key) THEN
                    RAISE EXCEPTION 'currency must be one of orderflow.currencies (lowercase ISO 4217)'
                        USING ERRCODE = '22023';
                END IF;
            WHEN 'paymentMethod' THEN
                IF jsonb_typeof(p_settings -> v_key) <> 'string'
                   OR (p_settings ->> v_key) !~ '^pm_[A-Za-z0-9_]{1,96}$' THEN
                    RAISE EXCEPTION 'paymentMethod must be a PaymentMethod id (pm_...)' USING ERRCODE = '22023';
                END IF;
            WHEN 'stripeVersion' THEN
                IF jsonb_typeof(p_settings -> v_key) <> 'string'
                   OR (p_settings ->> v_key) !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?$' THEN
                    RAISE EXCEPTION 'stripeVersion must look like 2024-06-20' USING ERRCODE = '22023';
                END IF;
            WHEN 'ratePerSecond', 'circuitMinimumCalls', 'circuitWindowMs', 'circuitFailureRate',
                 'circuitOpenMs', 'circuitMaxOpenMs', 'circuitProbes' THEN
                NULL;  -- checked and written by _set_limits below
            ELSE
                RAISE EXCEPTION 'unknown provider setting %', v_key
                    USING ERRCODE = '22023',
                          HINT = 'Known: timeoutMs, currency, paymentMethod, stripeVersion, reconcileDelayMs, '
                                 'ratePerSecond, circuitMinimumCalls, circuitWindowMs, circuitFailureRate, '
                                 'circuitOpenMs, circuitMaxOpenMs, circuitProbes.';
        END CASE;
    END LOOP;
    PERFORM orderflow._set_limits(p_name, p_settings, orderflow.clock_now());
    INSERT INTO orderflow.providers (name, base_url, settings, updated_at)
    VALUES (p_name, p_base_url, p_settings, orderflow.clock_now())
    ON CONFLICT (name) DO UPDATE
        SET base_url = EXCLUDED.base_url, settings = EXCLUDED.settings, updated_at = EXCLUDED.updated_at
    RETURNING * INTO v_row;
    RETURN jsonb_build_object('name', v_row.name, 'baseUrl', v_row.base_url, 'settings', v_row.settings);
END
$$;
COMMENT ON FUNCTION orderflow.set_provider(text, text, jsonb) IS
    'Operators: charge and refund through the payments provider at base_url (Stripe''s API; the key '
    'is the server''s STRIPE_API_KEY), or the in-database ledger when base_url is null. 22023 bad settings.';

-- _form_encode(text) → text: application/x-www-form-urlencoded encoding of one name or value.
CREATE OR REPLACE FUNCTION orderflow._form_encode(p_text text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT COALESCE(string_agg(
               CASE WHEN b.byte BETWEEN 48 AND 57 OR b.byte BETWEEN 65 AND 90
                         OR b.byte BETWEEN 97 AND 122 OR b.byte IN (45, 46, 95, 126)
                    THEN chr(b.byte)
                    ELSE '%' || upper(lpad(to_hex(b.byte), 2, '0')) END, '' ORDER BY b.n), '')
      FROM (SELECT get_byte(convert_to(p_text, 'UTF8'), i) AS byte, i AS n
              FROM generate_series(0, octet_length(convert_to(p_text, 'UTF8')) - 1) AS i) AS b
$$;
COMMENT ON FUNCTION orderflow._form_encode(text) IS
    'Internal: percent-encodes a form name or value (everything but A-Z a-z 0-9 - . _ ~, as UTF-8).';

-- _minor_amount(amount, currency) → bigint: the amount in the currency's minor unit;
-- OFD03 when it has more decimals than the currency (2.5 jpy).
CREATE OR REPLACE FUNCTION orderflow._minor_amount(p_amount numeric, p_currency text)
RETURNS bigint
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_units  smallint;
    v_minor  numeric;
BEGIN
    SELECT minor_units INTO STRICT v_units FROM orderflow.currencies WHERE code = p_currency;
    v_minor := p_amount * power(10::numeric, v_units);
    IF v_minor <> trunc(v_minor) THEN
        RAISE EXCEPTION 'amount % has more decimals than % allows', trim_scale(p_amount), p_currency
            USING ERRCODE = 'OFD03';
    END IF;
    RETURN v_minor::bigint;
END
$$;
COMMENT ON FUNCTION orderflow._minor_amount(numeric, text) IS
    'Internal: amount in the currency''s minor unit (x100 usd, x1 jpy); OFD03 if not a whole number of them.';

-- _new_effect(workflow, kind, path, body, now) → effects: writes an open effect of the
-- workflow's run, due now, keyed <run key>:<kind> (<orderId>:charge, <orderId>:run2:refund).
CREATE OR REPLACE FUNCTION orderflow._new_effect(p_wf orderflow.workflows, p_kind text, p_path text,
                                                 p_body text, p_now timestamptz)
RETURNS orderflow.effects
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_key    text := orderflow._run_key(p_wf.order_id, p_wf.run) || ':' || p_kind;
    v_effect orderflow.effects;
BEGIN
    INSERT INTO orderflow.effects (order_id, run, kind, state, phase, method, path, body, key_base,
                                   idempotency_key, next_attempt_at, created_at, updated_at)
    VALUES (p_wf.order_id, p_wf.run, p_kind, 'open', 'send', 'POST', p_path, p_body, v_key, v_key,
            p_now, p_now, p_now)
    RETURNING * INTO v_effect;
    RETURN v_effect;
END
$$;
COMMENT ON FUNCTION orderflow._new_effect(orderflow.workflows, text, text, text, timestamptz) IS
    'Internal: inserts an open provider effect of the workflow''s run with its stored request, due now.';

-- _charge_at_provider(workflow, now) → boolean: true when the order's charge goes through the
-- provider (then its effect exists now: written here if it did not), false for the ledger.
-- An order's first charge decides: one charged through the ledger is never sent, and the other
-- way round. OFD03 amount not in minor units, OFD04 no payment method.
CREATE OR REPLACE FUNCTION orderflow._charge_at_provider(p_wf orderflow.workflows, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_provider orderflow.providers;
    v_currency text;
    v_method   text;
BEGIN
    -- A pending workflow was created in this transaction: it has no effect yet.
    IF p_wf.status <> 'pending' AND EXISTS (
        SELECT 1 FROM orderflow.effects WHERE order_id = p_wf.order_id AND run = p_wf.run AND kind = 'charge') THEN
        RETURN true;
    END IF;
    v_provider := orderflow._provider();
    IF v_provider.name IS NULL THEN
        RETURN false;
    END IF;
    v_currency := COALESCE(v_provider.settings ->> 'currency', 'usd');
    v_method := COALESCE(p_wf.payment_method, v_provider.settings ->> 'paymentMethod',
                         CASE WHEN COALESCE(current_setting('orderflow.key_mode', true), '') <> 'live'
                              THEN 'pm_card_visa' END);
    IF v_method IS NULL THEN
        RAISE EXCEPTION 'no payment method: the request and the provider settings name none'
            USING ERRCODE = 'OFD04';
    END IF;
    PERFORM orderflow._new_effect(
        p_wf, 'charge', '/v1/payment_intents',
        'amount=' || orderflow._minor_amount(p_wf.amount, v_currency)
        || '&currency=' || v_currency
        || '&payment_method=' || orderflow._form_encode(v_method)
        || '&confirm=true'
        || '&metadata%5Border_id%5D=' || orderflow._form_encode(p_wf.order_id),
        p_now);
    RETURN true;
END
$$;
COMMENT ON FUNCTION orderflow._charge_at_provider(orderflow.workflows, timestamptz) IS
    'Internal: true when the charge goes through the provider (its effect written if new), false for '
    'the ledger. OFD03 amount not in minor units, OFD04 no payment method.';

-- _refund_at_provider(workflow, now) → boolean: for an order charged at the provider, makes sure
-- its refund effect exists (true: the refund is the provider's, pending until reported); false
-- when the order was charged through the ledger.
CREATE OR REPLACE FUNCTION orderflow._refund_at_provider(p_wf orderflow.workflows, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_charge orderflow.effects;
BEGIN
    SELECT * INTO v_charge FROM orderflow.effects
     WHERE order_id = p_wf.order_id AND run = p_wf.run AND kind = 'charge';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orderflow.effects
                    WHERE order_id = p_wf.order_id AND run = p_wf.run AND kind = 'refund') THEN
        PERFORM orderflow._new_effect(
            p_wf, 'refund', '/v1/refunds',
            'payment_intent=' || orderflow._form_encode(v_charge.object_id)
            || '&metadata%5Border_id%5D=' || orderflow._form_encode(p_wf.order_id),
            p_now);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION orderflow._refund_at_provider(orderflow.workflows, timestamptz) IS
    'Internal: writes the refund effect of an order charged at the provider (once); false for the ledger.';

-- _effect_request(effect, provider) → jsonb: what the front sends for the effect's next attempt:
-- {id, token, orderId, kind, phase, method, url, headers: [[name, value]...], body, timeoutMs}.
-- The send phase is the stored request, byte for byte; the lookup phase a GET of the object (by
-- id when known, else a search on metadata order_id).
CREATE OR REPLACE FUNCTION orderflow._effect_request(p_effect orderflow.effects,
                                                     p_provider orderflow.providers)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_version text := COALESCE(p_provider.settings ->> 'stripeVersion', '2024-06-20');
    v_path    text;
    v_charge  text;
BEGIN
    IF p_effect.kind = 'webhook' THEN
        RETURN orderflow._webhook_request(p_effect);  -- 47_webhooks.sql
    END IF;
    IF p_effect.phase = 'send' THEN
        RETURN jsonb_build_object(
            'id', p_effect.id, 'token', p_effect.lease_token, 'orderId', p_effect.order_id,
            'kind', p_effect.kind, 'provider', 'payments', 'phase', p_effect.phase,
            'method', p_effect.method,
            'url', p_provider.base_url || p_effect.path, 'body', p_effect.body,
            'headers', jsonb_build_array(
                jsonb_build_array('Idempotency-Key', p_effect.idempotency_key),
                jsonb_build_array('Stripe-Version', v_version),
                jsonb_build_array('Content-Type', 'application/x-www-form-urlencoded')),
            'timeoutMs', orderflow._setting_ms(p_provider.settings, 'timeoutMs', 10000));
    END IF;
    IF p_effect.object_id IS NOT NULL THEN
        v_path := CASE p_effect.kind WHEN 'charge' THEN '/v1/payment_intents/' ELSE '/v1/refunds/' END
                  || orderflow._form_encode(p_effect.object_id);
    ELSIF p_effect.kind = 'charge' THEN
        v_path := '/v1/payment_intents/search?query='
                  || orderflow._form_encode(format('metadata[''order_id'']:''%s''',
                                                   replace(p_effect.order_id, '''', '\''')));
    ELSE
        SELECT object_id INTO v_charge FROM orderflow.effects
         WHERE order_id = p_effect.order_id AND run = p_effect.run AND kind = 'charge';
        v_path := '/v1/refunds?payment_intent=' || orderflow._form_encode(v_charge);
    END IF;
    RETURN jsonb_build_object(
        'id', p_effect.id, 'token', p_effect.lease_token, 'orderId', p_effect.order_id,
        'kind', p_effect.kind, 'provider', 'payments', 'phase', p_effect.phase, 'method', 'GET',
        'url', p_provider.base_url || v_path, 'body', '',
        'headers', jsonb_build_array(jsonb_build_array('Stripe-Version', v_version)),
        'timeoutMs', orderflow._setting_ms(p_provider.settings, 'timeoutMs', 10000));
END
$$;
COMMENT ON FUNCTION orderflow._effect_request(orderflow.effects, orderflow.providers) IS
    'Internal: the request of an effect''s next attempt (stored request, or a lookup), with its lease token.';

-- _lease(effect_id, owner, now) → jsonb: leases one due open effect (skipping it when another
-- holds its row) to p_owner and returns its request, or null. The one place a lease is made:
-- the provider's circuit and rate limit are asked first (_admit, 44_circuits.sql), and a call
-- they hold back is left untouched (not leased, no attempt counted). Counts the attempt.
CREATE OR REPLACE FUNCTION orderflow._lease(p_order_id text, p_effect_id bigint, p_owner text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_provider orderflow.providers;
    v_effect   orderflow.effects;
    v_timeout  integer;
    v_until    timestamptz;
    v_admit    text;
    v_token    uuid;
    v_actor    text;
BEGIN
    IF p_owner IS NULL THEN
        RETURN NULL;  -- a front without a key
    END IF;
    -- By the order id as well: on Citus a row lock is taken on one shard only.
    SELECT * INTO v_effect FROM orderflow.effects d
     WHERE d.order_id = p_order_id AND d.id = p_effect_id AND d.state = 'open' AND d.next_attempt_at <= p_now
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_effect.kind = 'webhook' THEN
        SELECT w.timeout_ms INTO v_timeout FROM orderflow.webhooks w
         WHERE w.id = v_effect.webhook_id AND w.enabled;
        IF NOT FOUND THEN
            RETURN NULL;  -- disabled (it waits for enable_webhook) or removed (remove_webhook abandons it)
        END IF;
    ELSE
        v_provider := orderflow._provider();
        IF v_provider.name IS NULL THEN
            RETURN NULL;  -- no provider: payment calls wait until one is set again
        END IF;
        v_timeout := orderflow._setting_ms(v_provider.settings, 'timeoutMs', 10000);
    END IF;
    v_until := p_now + (v_timeout + 5000) * interval '1 millisecond';
    v_admit := orderflow._admit(v_effect.provider, v_until, p_now);
    IF v_admit NOT IN ('closed', 'probe') THEN
        RETURN NULL;
    END IF;
    -- Values, not calls, in the UPDATE: Citus runs no volatile function in an UPDATE of a
    -- distributed table (it could give each shard another value).
    v_token := gen_random_uuid();
    v_actor := orderflow._actor();
    UPDATE orderflow.effects e
       SET lease_token = v_token, lease_owner = p_owner,
           leased_until = v_until, next_attempt_at = v_until,
           attempts = e.attempts + 1, updated_at = p_now, circuit_probe = (v_admit = 'probe'),
           lease_actor = v_actor,
           key_sent_at = COALESCE(e.key_sent_at, CASE WHEN e.phase = 'send' THEN p_now END)
     WHERE e.order_id = p_order_id AND e.id = p_effect_id
    RETURNING * INTO v_effect;
    RETURN orderflow._effect_request(v_effect, v_provider);
END
$$;
COMMENT ON FUNCTION orderflow._lease(text, bigint, text, timestamptz) IS
    'Internal: leases a due open effect to p_owner (new lease token, lease = timeout + 5 s, one '
    'attempt counted) once its provider''s circuit and rate limit admit it, and returns its '
    'request; null when not due, held, held back, or no provider is set.';

-- _lease_for_order(order_id, owner, now) → jsonb: leases the order's due open charge or refund,
-- if any (webhook deliveries are the janitor's: a client never waits on a consumer).
CREATE OR REPLACE FUNCTION orderflow._lease_for_order(p_order_id text, p_owner text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_owner IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT id INTO v_id FROM orderflow.effects
     WHERE order_id = p_order_id AND kind <> 'webhook' AND state = 'open' AND next_attempt_at <= p_now
     ORDER BY kind LIMIT 1;
    IF v_id IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN orderflow._lease(p_order_id, v_id, p_owner, p_now);
END
$$;
COMMENT ON FUNCTION orderflow._lease_for_order(text, text, timestamptz) IS
    'Internal: leases the order''s due open effect to p_owner and returns its request, or null.';

-- claim_effects(limit, owner, with_payments) → setof jsonb: the janitor's claim: leases up to
-- p_limit due open effects to p_owner and returns their requests. It visits only providers that
-- may send now (circuit not open, not paused; webhooks enabled; payments only when
-- p_with_payments: a server without the provider's key sends webhooks alone), in random order
-- so none starves another, each oldest due first with FOR UPDATE SKIP LOCKED; it stops at a
-- provider's first call its circuit or rate limit holds back. Also drops circuit windows
-- older than an hour.
CREATE OR REPLACE FUNCTION orderflow.claim_effects(p_limit integer, p_owner text,
                                                   p_with_payments boolean DEFAULT true)
RETURNS SETOF jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_now      timestamptz := orderflow.clock_now();
    v_provider text;
    v_due      record;
    v_request  jsonb;
    v_count    integer := 0;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'janitor', true);
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit must be from 1 to 1000' USING ERRCODE = '22023';
    END IF;
    PERFORM orderflow._check_text('owner', p_owner, 200);
    -- Looked at first: on Citus circuit_calls is a reference table, and a write to it (even one
    -- that deletes nothing) is a write on every node.
    IF EXISTS (SELECT 1 FROM orderflow.circuit_calls WHERE second < extract(epoch FROM v_now)::bigint - 3600) THEN
        DELETE FROM orderflow.circuit_calls WHERE second < extract(epoch FROM v_now)::bigint - 3600;
    END IF;
    FOR v_provider IN
        SELECT c.provider FROM orderflow.circuits c
         WHERE (c.provider <> 'payments' OR COALESCE(p_with_payments, true))
           AND NOT (c.state = 'open' AND c.open_until > v_now)
           AND (c.paused_until IS NULL OR c.paused_until <= v_now)
           AND (c.provider = 'payments' OR EXISTS (
                    SELECT 1 FROM orderflow.webhooks w
                     WHERE c.provider = 'webhook:' || w.id AND w.enabled))
         ORDER BY random()
    LOOP
        -- The due calls are read without a lock (on Citus a read of every shard), then each is
        -- claimed by _lease, the one place a lease is made, with its own row lock (FOR UPDATE
        -- SKIP LOCKED on one shard; a call another claimer holds, or that stopped being due, is
        -- skipped).
        FOR v_due IN
            SELECT d.order_id, d.id FROM orderflow.effects d
             WHERE d.provider = v_provider AND d.state = 'open' AND d.next_attempt_at <= v_now
             ORDER BY d.next_attempt_at
             LIMIT p_limit - v_count
        LOOP
            v_request := orderflow._lease(v_due.order_id, v_due.id, p_owner, v_now);
            IF v_request IS NULL THEN
                -- Held back by the circuit or the rate limit: the rest of this provider waits
                -- too. Otherwise the call was taken by another claimer meanwhile: next one.
                EXIT WHEN orderflow._waiting_for(v_provider, v_now) IS NOT NULL;
                CONTINUE;
            END IF;
            v_count := v_count + 1;
            RETURN NEXT v_request;
        END LOOP;
        EXIT WHEN v_count >= p_limit;
    END LOOP;
END
$$;
COMMENT ON FUNCTION orderflow.claim_effects(integer, text, boolean) IS
    'Janitor: leases up to p_limit due calls (payment calls only when p_with_payments) of providers '
    'whose circuit and rate limit admit them (FOR UPDATE SKIP LOCKED; an expired lease is due '
    'again) to p_owner and returns the requests to send; report each with report_effect().';

-- _outcome_object(effect, body) → jsonb: the object an answer is about: the returned object, or
-- from a search or list the one that counts (succeeded before processing before the rest);
-- null when a search or list is empty (nothing was done).
CREATE OR REPLACE FUNCTION orderflow._outcome_object(p_effect orderflow.effects, p_body jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN p_body ->> 'object' IN ('search_result', 'list') THEN
               (SELECT o FROM jsonb_array_elements(p_body -> 'data') AS o
                 ORDER BY array_position(ARRAY['succeeded', 'processing', 'pending', 'requires_action'],
                                         o ->> 'status') NULLS LAST
                 LIMIT 1)
           ELSE p_body END
$$;
COMMENT ON FUNCTION orderflow._outcome_object(orderflow.effects, jsonb) IS
    'Internal: the object a provider answer reports on (the best match of a search or list; null if empty).';

-- _key_may_expire(effect, now) → boolean: the effect's idempotency key was first sent 20 h or
-- more ago (Stripe keeps keys at least 24 h): re-sending it could execute twice.
CREATE OR REPLACE FUNCTION orderflow._key_may_expire(p_effect orderflow.effects, p_now timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
    SELECT p_effect.key_sent_at IS NOT NULL AND p_now - p_effect.key_sent_at >= interval '20 hours'
$$;
COMMENT ON FUNCTION orderflow._key_may_expire(orderflow.effects, timestamptz) IS
    'Internal: true once a call''s key was first sent 20 h ago or more (then it is looked up, never re-sent).';

-- _effect_retry(effect, outcome, sentence, detail, delay_floor_ms, now) → effects: schedules
-- the next attempt (effect_policies: its schedule when it has one, else backoff; no earlier
-- than p_floor_ms, a Retry-After), or makes the effect dead when attempts or the give-up time
-- are used up.
CREATE OR REPLACE FUNCTION orderflow._effect_retry(p_effect orderflow.effects, p_outcome text,
                                                   p_sentence text, p_detail text,
                                                   p_floor_ms double precision, p_now timestamptz)
RETURNS orderflow.effects
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_policy orderflow.effect_policies;
    v_delay  double precision;
    v_effect orderflow.effects;
BEGIN
    SELECT * INTO STRICT v_policy FROM orderflow.effect_policies WHERE kind = p_effect.kind;
    IF v_policy.schedule_ms IS NOT NULL THEN
        v_policy.max_attempts := cardinality(v_policy.schedule_ms);
    END IF;
    IF p_effect.attempts >= v_policy.max_attempts OR p_now - p_effect.created_at >= v_policy.give_up_after THEN
        UPDATE orderflow.effects
           SET state = 'dead', next_attempt_at = NULL, finished_at = p_now, updated_at = p_now,
               last_outcome = p_outcome,
               last_error = format('gave up after %s attempts: %s', p_effect.attempts, p_sentence),
               last_detail = p_detail, lease_token = NULL, leased_until = NULL
         WHERE order_id = p_effect.order_id AND id = p_effect.id
        RETURNING * INTO v_effect;
        RETURN v_effect;
    END IF;
    v_delay := greatest(COALESCE(p_floor_ms, 0),
                        CASE WHEN v_policy.schedule_ms IS NOT NULL
                             THEN v_policy.schedule_ms[p_effect.attempts + 1]::double precision
                             ELSE orderflow._backoff(v_policy.base_delay_ms, v_policy.multiplier,
                                                     v_policy.max_delay_ms, v_policy.jitter,
                                                     p_effect.attempts) END);
    UPDATE orderflow.effects
       SET next_attempt_at = p_now + v_delay * interval '1 millisecond', updated_at = p_now,
           -- A payment key first sent 20 h ago may expire at the provider before the next
           -- attempt: from now on it is only looked up, never re-sent.
           phase = CASE WHEN kind <> 'webhook' AND orderflow._key_may_expire(p_effect, p_now)
                        THEN 'lookup' ELSE phase END,
           last_outcome = p_outcome, last_error = p_sentence, last_detail = p_detail,
           lease_token = NULL, leased_until = NULL
     WHERE order_id = p_effect.order_id AND id = p_effect.id
    RETURNING * INTO v_effect;
    RETURN v_effect;
END
$$;
COMMENT ON FUNCTION orderflow._effect_retry(orderflow.effects, text, text, text, double precision, timestamptz) IS
    'Internal: schedules an effect''s next attempt (effect_policies backoff, not before p_floor_ms) or, '
    'out of attempts or past give_up_after, makes it dead.';

-- _effect_final(effect, state, outcome, sentence, detail, object, now) → effects: resolves the effect.
CREATE OR REPLACE FUNCTION orderflow._effect_final(p_effect orderflow.effects, p_state text,
                                                   p_outcome text, p_sentence text, p_detail text,
                                                   p_object jsonb, p_now timestamptz,
                                                   p_sqlstate text DEFAULT NULL)
RETURNS orderflow.effects
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_effect orderflow.effects;
BEGIN
    IF p_state IN ('dead', 'failed') THEN
        -- The alert: a call that stopped for good waits for an operator (provider_effects).
        RAISE LOG 'orderflow: provider % call of order % is %: %', p_effect.kind,
            p_effect.order_id, p_state, concat_ws(' — ', p_sentence, p_detail);
    END IF;
    UPDATE orderflow.effects
       SET state = p_state, next_attempt_at = NULL, finished_at = p_now, updated_at = p_now,
           last_outcome = p_outcome, last_error = CASE WHEN p_state = 'succeeded' THEN NULL ELSE p_sentence END,
           last_detail = p_detail, failure_sqlstate = p_sqlstate,
           object_id = COALESCE(p_object ->> 'id', object_id),
           object_status = COALESCE(p_object ->> 'status', object_status),
           result = COALESCE(p_object, result), lease_token = NULL, leased_until = NULL
     WHERE order_id = p_effect.order_id AND id = p_effect.id
    RETURNING * INTO v_effect;
    RETURN v_effect;
END
$$;
COMMENT ON FUNCTION orderflow._effect_final(orderflow.effects, text, text, text, text, jsonb, timestamptz, text) IS
    'Internal: records an effect''s final state (succeeded, failed, dead, abandoned) and its object.';

-- _apply_outcome(effect, outcome, now) → effects: classifies a reported outcome
-- {status, body, retryAfter, transport, error} with provider_outcomes and
-- provider_object_statuses, and writes what follows to the effect: retry, lookup, new key,
-- or a final state. The effect is locked by the caller and its lease checked.
CREATE OR REPLACE FUNCTION orderflow._apply_outcome(p_effect orderflow.effects, p_outcome jsonb,
                                                    p_now timestamptz)
RETURNS orderflow.effects
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_status    integer;
    v_transport text := NULLIF(p_outcome ->> 'transport', 'none');
    v_body      jsonb;
    v_rule      orderflow.provider_outcomes;
    v_object    jsonb;
    v_meaning   orderflow.provider_object_statuses;
    v_label     text;
    v_detail    text;
    v_retry_ms  double precision;
    v_settings  jsonb := COALESCE((orderflow._provider()).settings, '{}');
    v_effect    orderflow.effects;
BEGIN
    v_status := CASE WHEN v_transport IS NULL AND (p_outcome ->> 'status') ~ '^[0-9]{3}$'
                     THEN (p_outcome ->> 'status')::integer END;
    IF v_transport IS NULL AND v_status IS NULL THEN
        v_transport := 'other';
    END IF;
    BEGIN
        v_body := (p_outcome ->> 'body')::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        v_body := NULL;  -- not JSON (a proxy's HTML page): classified by status alone
    END;
    IF jsonb_typeof(v_body) IS DISTINCT FROM 'object' THEN
        v_body := NULL;
    END IF;
    v_label := COALESCE(v_status::text, v_transport);
    v_detail := left(concat_ws(': ', v_label, p_outcome ->> 'error',
                               v_body -> 'error' ->> 'code', v_body -> 'error' ->> 'message'), 500);

    SELECT * INTO v_rule FROM orderflow.provider_outcomes r
     WHERE r.target = CASE WHEN p_effect.kind = 'webhook' THEN 'webhook' ELSE 'payments' END
       AND (r.phase IS NULL OR r.phase = p_effect.phase)
       AND CASE WHEN v_transport IS NOT NULL THEN r.transport = v_transport
                ELSE v_status BETWEEN r.status_min AND r.status_max END
       AND (r.error_type IS NULL OR r.error_type = v_body -> 'error' ->> 'type')
       AND (r.error_code IS NULL OR r.error_code = v_body -> 'error' ->> 'code')
     ORDER BY r.rule LIMIT 1;
    IF v_rule.honour_retry_after AND (p_outcome ->> 'retryAfter') ~ '^[0-9]{1,6}$' THEN
        v_retry_ms := (p_outcome ->> 'retryAfter')::double precision * 1000;
    END IF;
    -- The provider's circuit and pause (44_circuits.sql): outside this workflow's rows.
    PERFORM orderflow._circuit_record(p_effect, v_rule, v_status, v_retry_ms, p_now);
    IF v_rule.rule IS NULL THEN
        RETURN orderflow._effect_final(p_effect, 'dead', v_label,
                                       'unexpected answer from the provider; an operator must act',
                                       v_detail, NULL, p_now);
    END IF;

    CASE v_rule.verdict
        WHEN 'retry' THEN
            RETURN orderflow._effect_retry(p_effect, v_label, v_rule.sentence, v_detail, v_retry_ms, p_now);
        WHEN 'reconcile' THEN
            -- Stripe stored this answer under the key: the same key would replay it. Look first.
            UPDATE orderflow.effects SET phase = 'lookup' WHERE order_id = p_effect.order_id AND id = p_effect.id
            RETURNING * INTO v_effect;
            RETURN orderflow._effect_retry(
                v_effect, v_label, v_rule.sentence, v_detail,
                CASE WHEN v_effect.object_id IS NULL
                     THEN orderflow._setting_ms(v_settings, 'reconcileDelayMs', 60000) END, p_now);
        WHEN 'dead' THEN
            RETURN orderflow._effect_final(p_effect, 'dead', v_label, v_rule.sentence, v_detail, NULL, p_now);
        WHEN 'delivered' THEN
            RETURN orderflow._effect_final(p_effect, 'succeeded', v_label, v_rule.sentence, NULL, NULL, p_now);
        WHEN 'disable' THEN
            PERFORM orderflow._disable_webhook(p_effect.webhook_id, v_rule.sentence, p_now);
            RETURN orderflow._effect_final(p_effect, 'dead', v_label, v_rule.sentence, v_detail, NULL, p_now);
        WHEN 'declined' THEN
            RETURN orderflow._effect_final(p_effect, 'failed', v_label, v_rule.sentence, v_detail,
                                           v_body -> 'error' -> 'payment_intent', p_now, 'OFD01');
        ELSE
            NULL;  -- 'object': read below
    END CASE;

    v_object := orderflow._outcome_object(p_effect, v_body);
    IF v_object IS NULL AND v_body ->> 'object' IN ('search_result', 'list') THEN
        -- The lookup shows nothing was done under the old key: a new key, sent at once.
        UPDATE orderflow.effects
           SET phase = 'send', key_generation = key_generation + 1,
               idempotency_key = p_effect.key_base || ':' || (p_effect.key_generation + 1),
               next_attempt_at = p_now, updated_at = p_now, last_outcome = v_label,
               last_error = 'the provider has no record of it; sending again with a new key',
               last_detail = v_detail, lease_token = NULL, leased_until = NULL, key_sent_at = NULL
         WHERE order_id = p_effect.order_id AND id = p_effect.id
        RETURNING * INTO v_effect;
        RETURN v_effect;
    END IF;
    SELECT * INTO v_meaning FROM orderflow.provider_object_statuses m
     WHERE m.object = v_object ->> 'object' AND m.status = v_object ->> 'status';
    IF v_meaning.verdict IS NULL THEN
        RETURN orderflow._effect_final(p_effect, 'dead', v_label,
                                       'unexpected object from the provider; an operator must act',
                                       left(concat_ws(': ', v_label, v_object ->> 'object', v_object ->> 'status'), 500),
                                       v_object, p_now);
    END IF;
    CASE v_meaning.verdict
        WHEN 'succeeded' THEN
            RETURN orderflow._effect_final(p_effect, 'succeeded', v_label, v_meaning.sentence, NULL,
                                           v_object, p_now);
        WHEN 'follow_up' THEN
            UPDATE orderflow.effects
               SET phase = 'lookup', object_id = v_object ->> 'id', object_status = v_object ->> 'status'
             WHERE order_id = p_effect.order_id AND id = p_effect.id
            RETURNING * INTO v_effect;
            RETURN orderflow._effect_retry(v_effect, v_label, v_meaning.sentence, NULL, NULL, p_now);
        ELSE
            -- declined (the charge did not happen) or failed (the refund did not)
            RETURN orderflow._effect_final(p_effect, 'failed', v_label, v_meaning.sentence,
                                           v_detail, v_object, p_now, v_meaning.sqlstate);
    END CASE;
END
$$;
COMMENT ON FUNCTION orderflow._apply_outcome(orderflow.effects, jsonb, timestamptz) IS
    'Internal: classifies a provider outcome (provider_outcomes, provider_object_statuses) and writes '
    'the effect''s next state: retry with the same key, lookup, new key after a lookup found nothing, or final.';

-- _after_effect(workflow, effect, now) → workflow: moves the locked workflow on from what its
-- effect became: a charge that succeeded completes the step and runs the rest (or, when the
-- order is cancelling, compensates); a declined charge fails the step (or ends the cancel); a
-- dead charge suspends the workflow for an operator; a refund that succeeded marks the charge
-- compensated (and ends a cancel). An effect still open changes nothing.
CREATE OR REPLACE FUNCTION orderflow._after_effect(p_wf orderflow.workflows, p_effect orderflow.effects,
                                                   p_now timestamptz)
RETURNS orderflow.workflows
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_sqlstate text;
BEGIN
    IF p_effect.state = 'open' THEN
        RETURN p_wf;
    END IF;
    IF p_effect.kind = 'charge' THEN
        IF p_effect.state = 'succeeded' THEN
            INSERT INTO orderflow.workflow_steps AS s (order_id, step, attempts, completed_at, total_ms)
            VALUES (p_wf.order_id, 'charge', p_effect.attempts, p_now,
                    1000 * extract(epoch FROM p_now - p_effect.created_at))
            ON CONFLICT (order_id, step) DO UPDATE
                SET attempts = s.attempts + EXCLUDED.attempts, completed_at = EXCLUDED.completed_at,
                    last_error = NULL, total_ms = s.total_ms + EXCLUDED.total_ms;
            PERFORM orderflow._record(p_wf.order_id, p_now, 'step', 'charge', 'succeeded', NULL,
                                      p_effect.attempts, 1000 * extract(epoch FROM p_now - p_effect.created_at),
                                      p_object_id => p_effect.object_id, p_provider => p_effect.provider);
            IF p_wf.status = 'cancelling' THEN
                IF orderflow._compensate(p_wf, p_now) THEN
                    RETURN orderflow._transition(p_wf, 'cancelled', p_now);
                END IF;
                RETURN p_wf;
            END IF;
            IF p_wf.finished_at IS NOT NULL OR p_wf.next_retry_at IS NULL THEN
                RETURN p_wf;  -- suspended meanwhile: an operator resumes it
            END IF;
            RETURN orderflow._run_steps(p_wf, p_now);
        ELSIF p_effect.state = 'failed' THEN
            IF p_wf.status = 'cancelling' THEN
                RETURN orderflow._transition(p_wf, 'cancelled', p_now);
            END IF;
            v_sqlstate := COALESCE(p_effect.failure_sqlstate, 'OFD01');
            RETURN orderflow._step_failed(p_wf, 'charge', v_sqlstate,
                                          concat_ws(': ', p_effect.last_outcome, p_effect.last_error),
                                          0, p_now);
        ELSIF p_effect.state = 'dead' AND p_wf.status = 'charging' THEN
            UPDATE orderflow.workflow_steps SET last_error = p_effect.last_error,
                   last_detail = p_effect.last_detail, attempts = p_effect.attempts
             WHERE order_id = p_wf.order_id AND step = 'charge';
            RETURN orderflow._transition(p_wf, 'suspended', p_now, NULL,
                                         'charge: ' || p_effect.last_error, p_effect.last_detail);
        END IF;
        RETURN p_wf;
    END IF;
    -- refund
    IF p_effect.state = 'succeeded' THEN
        UPDATE orderflow.workflow_steps SET compensated_at = p_now
         WHERE order_id = p_wf.order_id AND step = 'charge' AND compensated_at IS NULL;
        IF FOUND THEN
            PERFORM orderflow._record(p_wf.order_id, p_now, 'step', 'charge', 'compensated',
                                      p_object_id => p_effect.object_id, p_provider => p_effect.provider);
        END IF;
        IF p_wf.status = 'cancelling' THEN
            RETURN orderflow._transition(p_wf, 'cancelled', p_now);
        END IF;
    END IF;
    RETURN p_wf;  -- a failed or dead refund stays for an operator (provider_effects)
END
$$;
COMMENT ON FUNCTION orderflow._after_effect(orderflow.workflows, orderflow.effects, timestamptz) IS
    'Internal: advances the locked workflow from its effect''s new state (charge done → next steps or '
    'compensation; declined → failed; dead → suspended; refund done → compensated, cancel ends).';

-- report_effect(order_id, effect_id, lease_token, outcome) → (state, effect): the front's report of one
-- attempt: {status, body, retryAfter} for an answer, {transport: connect|timeout|reset|other,
-- error} when none came. Takes the workflow's row lock, then the effect's; a report whose
-- token is not the effect's current lease (a stale or duplicate worker) changes nothing.
-- Returns the workflow's state and the next request to send inline (leased to p_owner), if any;
-- for a webhook delivery {"delivery": its state} and no next request. OF404 unknown effect,
-- 22023 bad outcome.
-- The order id comes first so that on Citus the call is delegated to the order's node.
CREATE OR REPLACE FUNCTION orderflow.report_effect(p_order_id text, p_effect_id bigint, p_lease_token uuid,
                                                   p_outcome jsonb, p_owner text DEFAULT NULL)
RETURNS TABLE (state jsonb, effect jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_order_id text;
    v_kind     text;
    v_wf       orderflow.workflows;
    v_effect   orderflow.effects;
    v_now      timestamptz;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'janitor', true);
    IF p_outcome IS NULL OR jsonb_typeof(p_outcome) <> 'object' THEN
        RAISE EXCEPTION 'outcome must be a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT e.order_id, e.kind INTO v_order_id, v_kind FROM orderflow.effects e
     WHERE e.order_id = p_order_id AND e.id = p_effect_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'effect % not found', p_effect_id USING ERRCODE = 'OF404';
    END IF;
    -- The lock order: the workflow first, then its effect. A webhook delivery changes no
    -- workflow: it takes its own row only.
    IF v_kind <> 'webhook' THEN
        SELECT * INTO v_wf FROM orderflow.workflows w WHERE w.order_id = v_order_id FOR UPDATE;
    END IF;
    SELECT * INTO v_effect FROM orderflow.effects e
     WHERE e.order_id = v_order_id AND e.id = p_effect_id FOR UPDATE;
    v_now := orderflow.clock_now();
    IF p_lease_token IS NULL OR v_effect.state <> 'open'
       OR v_effect.lease_token IS DISTINCT FROM p_lease_token THEN
        RAISE LOG 'orderflow: stale report for effect % of order % ignored', p_effect_id, v_order_id;
    ELSE
        -- What follows was caused by whoever leased the call.
        PERFORM set_config('orderflow.actor', COALESCE(v_effect.lease_actor, 'janitor'), true);
        v_effect := orderflow._apply_outcome(v_effect, p_outcome, v_now);
        PERFORM orderflow._record(
            v_order_id, v_now, 'call', v_effect.kind,
            CASE WHEN v_effect.state <> 'open' THEN v_effect.state
                 WHEN v_effect.phase = 'lookup' THEN 'lookup' ELSE 'retry' END,
            NULL, v_effect.attempts,
            CASE WHEN (p_outcome ->> 'elapsedMs') ~ '^[0-9]+(\.[0-9]+)?$' THEN (p_outcome ->> 'elapsedMs')::double precision END,
            CASE WHEN v_effect.state <> 'succeeded' THEN v_effect.last_error END, v_effect.failure_sqlstate,
            CASE WHEN (p_outcome ->> 'status') ~ '^[0-9]{3}$' THEN (p_outcome ->> 'status')::integer END,
            v_effect.object_id, v_effect.provider, v_effect.last_detail);
        IF v_wf.order_id IS NOT NULL THEN
            v_wf := orderflow._after_effect(v_wf, v_effect, v_now);
        END IF;
    END IF;
    IF v_kind = 'webhook' THEN
        SELECT * INTO v_effect FROM orderflow.effects e WHERE e.order_id = v_order_id AND e.id = p_effect_id;
        state := jsonb_build_object('delivery', orderflow._effect_state(v_effect));
        RETURN NEXT;
        RETURN;
    END IF;
    state := CASE WHEN v_wf.order_id IS NOT NULL THEN orderflow._workflow_state(v_wf) END;
    effect := orderflow._lease_for_order(v_order_id, p_owner, v_now);
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION orderflow.report_effect(text, bigint, uuid, jsonb, text) IS
    'The front''s report of a provider call: classifies it, retries or records it, advances the '
    'workflow (row lock first); a stale lease token changes nothing. Returns the state and the next '
    'request to send inline (leased to p_owner). OF404 unknown effect (or not of that order), 22023 bad outcome.';

-- report_effect(effect_id, lease_token, outcome) → (state, effect): the same report by effect id
-- alone, for operators and tests in psql (it finds the order id first; on Citus that lookup
-- asks every shard, so the front uses the form above).
CREATE OR REPLACE FUNCTION orderflow.report_effect(p_effect_id bigint, p_lease_token uuid,
                                                   p_outcome jsonb, p_owner text DEFAULT NULL)
RETURNS TABLE (state jsonb, effect jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_order_id text;
BEGIN
    SELECT e.order_id INTO v_order_id FROM orderflow.effects e WHERE e.id = p_effect_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'effect % not found', p_effect_id USING ERRCODE = 'OF404';
    END IF;
    RETURN QUERY SELECT r.state, r.effect
                   FROM orderflow.report_effect(v_order_id, p_effect_id, p_lease_token, p_outcome, p_owner) r;
END
$$;
COMMENT ON FUNCTION orderflow.report_effect(bigint, uuid, jsonb, text) IS
    'report_effect by effect id alone (psql, tests): finds the effect''s order, then reports as '
    'report_effect(order_id, ...). OF404 unknown effect.';

-- process_order_http(order_id, request, owner, key_mode) → (state, effect): POST
-- /api/orders/process as the HTTP front calls it: process_order_request, then the provider
-- request the workflow now waits on, leased to p_owner for the front to send inline (null when
-- there is none, it is not due, or another caller holds it: a second attempt never starts
-- while one is in flight). p_key_mode 'test' or 'live' (the kind of the server's key; no key:
-- p_owner null) decides the default payment method.
CREATE OR REPLACE FUNCTION orderflow.process_order_http(p_order_id text, p_request jsonb,
                                                        p_owner text, p_key_mode text)
RETURNS TABLE (state jsonb, effect jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
BEGIN
    -- A client's call (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'client', true);
    PERFORM set_config('orderflow.key_mode', COALESCE(p_key_mode, ''), true);
    state := orderflow.process_order_request(p_order_id, p_request);
    IF p_owner IS NOT NULL AND state ->> 'status' IN ('charging', 'cancelling') THEN
        effect := orderflow._lease_for_order(p_order_id, p_owner, orderflow.clock_now());
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION orderflow.process_order_http(text, jsonb, text, text) IS
    'POST /api/orders/process from the HTTP front: process_order_request, plus the provider request '
    'the workflow waits on, leased to p_owner to send inline (null if none is due or one is in flight).';

-- cancel_order_http(order_id, request, owner) → (state, effect): POST /api/orders/{id}/cancel
-- from the HTTP front: cancel_order_request, plus the refund to send inline (leased to p_owner).
CREATE OR REPLACE FUNCTION orderflow.cancel_order_http(p_order_id text, p_request jsonb, p_owner text)
RETURNS TABLE (state jsonb, effect jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'cancel', true);
    state := orderflow.cancel_order_request(p_order_id, p_request);
    IF p_owner IS NOT NULL AND state ->> 'status' = 'cancelling' THEN
        effect := orderflow._lease_for_order(p_order_id, p_owner, orderflow.clock_now());
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION orderflow.cancel_order_http(text, jsonb, text) IS
    'POST /api/orders/{orderId}/cancel from the HTTP front: cancel_order_request, plus the refund '
    'request to send inline (leased to p_owner), if one is due.';

-- _reopen_effect(order_id, effect_id, due_at, now) → boolean: puts one dead effect back: open, due at
-- p_due_at, attempts and give-up time fresh, the same key — except a payment call whose key
-- may have expired (_key_may_expire), which is only looked up (reconciliation), never re-sent.
-- The caller holds the workflow's lock for a charge or refund.
CREATE OR REPLACE FUNCTION orderflow._reopen_effect(p_order_id text, p_effect_id bigint,
                                                    p_due_at timestamptz, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_effect orderflow.effects;
BEGIN
    -- The phase is decided on the row as read (the caller holds its lock), then written as a
    -- value: Citus runs no function of the row's columns inside an UPDATE of a distributed table.
    SELECT * INTO v_effect FROM orderflow.effects e
     WHERE e.order_id = p_order_id AND e.id = p_effect_id AND e.state = 'dead';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE orderflow.effects e
       SET state = 'open',
           phase = CASE WHEN v_effect.kind <> 'webhook'
                             AND (v_effect.key_sent_at IS NULL OR orderflow._key_may_expire(v_effect, p_now))
                        THEN 'lookup' ELSE v_effect.phase END,
           attempts = 0, next_attempt_at = p_due_at, finished_at = NULL, created_at = p_now,
           updated_at = p_now, circuit_probe = false, last_error = 'put back by an operator'
     WHERE e.order_id = p_order_id AND e.id = p_effect_id AND e.state = 'dead';
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION orderflow._reopen_effect(text, bigint, timestamptz, timestamptz) IS
    'Internal (resume_now, redrive): a dead effect open again with fresh attempts and its key; a '
    'payment call whose key may have expired goes to reconciliation (lookup) instead.';

-- _reopen_effects(order_id, now) → integer: an operator's retry of the order's dead charge or
-- refund (resume_now): open again, due now (_reopen_effect).
CREATE OR REPLACE FUNCTION orderflow._reopen_effects(p_order_id text, p_now timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_id    bigint;
    v_count integer := 0;
BEGIN
    FOR v_id IN SELECT e.id FROM orderflow.effects e
                 WHERE e.order_id = p_order_id AND e.kind <> 'webhook' AND e.state = 'dead'
                   AND e.run = (SELECT w.run FROM orderflow.workflows w WHERE w.order_id = p_order_id)
                 ORDER BY e.id FOR UPDATE LOOP
        IF orderflow._reopen_effect(p_order_id, v_id, p_now, p_now) THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow._reopen_effects(text, timestamptz) IS
    'Internal (resume_now): reopens the order''s dead charge and refund, due now, attempts reset.';

-- _read_provider_effects() → the rows of provider_effects: every payment call not succeeded or
-- abandoned, with its phase in words (in_flight while its lease runs on the clock read once
-- here, so a pinned clock counts on Citus too) and its workflow's status. The view selects from
-- it, as the owner, for the reason given in 47_webhooks.sql above webhook_subscriptions
-- (operators are not granted effects; on Citus a view reads the shards with its reader's rights).
DROP VIEW IF EXISTS orderflow.provider_effects;
CREATE OR REPLACE FUNCTION orderflow._read_provider_effects()
RETURNS TABLE (id bigint, order_id text, kind text, phase text, idempotency_key text,
               attempts integer, next_attempt_at timestamptz, lease_owner text, object_id text,
               object_status text, last_outcome text, last_error text, last_detail text,
               workflow_status text, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := orderflow.clock_now();
BEGIN
    RETURN QUERY
    SELECT e.id,
           e.order_id,
           e.kind,
           CASE WHEN e.state <> 'open' THEN e.state
                WHEN e.leased_until > v_now THEN 'in_flight'
                WHEN e.phase = 'lookup' THEN 'reconciling'
                ELSE 'waiting' END,
           e.idempotency_key,
           e.attempts,
           e.next_attempt_at,
           e.lease_owner,
           e.object_id,
           e.object_status,
           e.last_outcome,
           e.last_error,
           e.last_detail,
           w.status,
           e.created_at,
           e.updated_at
      FROM orderflow.effects e
      LEFT JOIN orderflow.workflows w ON w.order_id = e.order_id
     WHERE e.kind <> 'webhook' AND e.state <> 'succeeded' AND e.state <> 'abandoned';
END
$$;
COMMENT ON FUNCTION orderflow._read_provider_effects() IS
    'Internal (the view provider_effects, as its owner): payment calls not done, with their phase '
    'in words and their workflow''s status.';

-- provider_effects: what operators watch: every effect not succeeded, with its phase in words.
CREATE VIEW orderflow.provider_effects AS
SELECT * FROM orderflow._read_provider_effects();
COMMENT ON VIEW orderflow.provider_effects IS
    'Provider calls that are not done: in_flight (leased), waiting (retry scheduled), reconciling '
    '(next attempt is a lookup), failed (a refund the provider refused) and dead (an operator acts: '
    'resume_now reopens them).';
