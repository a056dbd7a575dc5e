-- Webhooks: subscriptions, deliveries as effects, dead letters and redrive
-- (011_webhooks.sql has the tables).
--
-- Each outbox event fans out, in the transaction that writes it (_emit → _fan_out), into one
-- delivery per enabled subscription that wants its type: an effects row of kind 'webhook',
-- provider 'webhook:<id>', with the body stored once. From there it is a provider call like a
-- charge: claimed by the janitor (claim_effects), admitted by the subscription's circuit and
-- rate limit, leased with a fencing token, sent by the front, reported to report_effect and
-- classified by provider_outcomes rows of target 'webhook', retried on effect_policies'
-- 'webhook' schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), then dead.
--
-- The request follows the Standard Webhooks specification: POST of {"type", "timestamp",
-- "data"} with webhook-id (evt_<event id>: the same for every attempt and every subscription,
-- the consumer's deduplication key), webhook-timestamp (this attempt, unix seconds) and
-- webhook-signature ("v1," + base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the
-- base64-decoded secret after "whsec_"; after a rotation the previous secret signs too, for
-- 24 h, space-separated).
--
-- Locks: a delivery's report takes its effects row only (no workflow). remove_webhook takes the
-- subscription's row, then its open deliveries. redrive takes, per dead call, the workflow
-- first (charge, refund) and then the effect, as everywhere.

-- _hmac_sha256(data, key) → bytea: pgcrypto's hmac, wherever the extension's schema is.
DO $do$
DECLARE
    v_schema text;
BEGIN
    SELECT n.nspname INTO STRICT v_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pgcrypto';
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION orderflow._hmac_sha256(p_data bytea, p_key bytea)
        RETURNS bytea
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS 'SELECT %I.hmac(p_data, p_key, ''sha256'')'$f$, v_schema);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION orderflow._random_bytes(p_count integer)
        RETURNS bytea
        LANGUAGE sql VOLATILE STRICT
        AS 'SELECT %I.gen_random_bytes(p_count)'$f$, v_schema);
END
$do$;
COMMENT ON FUNCTION orderflow._hmac_sha256(bytea, bytea) IS 'Internal: HMAC-SHA256 (pgcrypto).';
COMMENT ON FUNCTION orderflow._random_bytes(integer) IS 'Internal: cryptographically random bytes (pgcrypto).';

-- webhook_signature(secret, msg_id, timestamp, body) → text: the Standard Webhooks signature
-- "v1,<base64>" of one secret ("whsec_<base64 key>"). Public so consumers and tests can check it.
CREATE OR REPLACE FUNCTION orderflow.webhook_signature(p_secret text, p_msg_id text,
                                                       p_timestamp bigint, p_body text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT 'v1,' || encode(orderflow._hmac_sha256(
                               convert_to(p_msg_id || '.' || p_timestamp || '.' || p_body, 'UTF8'),
                               decode(substr(p_secret, 7), 'base64')), 'base64')
$$;
COMMENT ON FUNCTION orderflow.webhook_signature(text, text, bigint, text) IS
    'The Standard Webhooks v1 signature: base64 HMAC-SHA256 of "<msg_id>.<timestamp>.<body>" keyed '
    'with the secret''s base64 part (after whsec_).';

-- _new_secret() → text: whsec_ + base64 of 24 random bytes.
CREATE OR REPLACE FUNCTION orderflow._new_secret()
RETURNS text
LANGUAGE sql VOLATILE
AS $$
    SELECT 'whsec_' || encode(orderflow._random_bytes(24), 'base64')
$$;
COMMENT ON FUNCTION orderflow._new_secret() IS 'Internal: a new webhook secret, whsec_ + base64 of 24 random bytes.';

-- _url_host(url) → text: the host of an http(s) URL, lower case, IPv6 without brackets.
CREATE OR REPLACE FUNCTION orderflow._url_host(p_url text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT lower(trim(BOTH '[]' FROM substring(p_url FROM '^https?://(\[[0-9A-Fa-f:.]+\]|[^/:?#\[\]]+)')))
$$;
COMMENT ON FUNCTION orderflow._url_host(text) IS 'Internal: the host part of an http(s) URL.';

-- _is_private_host(host) → boolean: loopback, private, link-local, CGNAT, multicast or
-- unspecified addresses, and names that mean this machine or a local network (localhost,
-- *.localhost, *.local, *.internal, *.localdomain, bare numbers such as 2130706433). The front
-- checks again after DNS resolution (src/effects/http_client.cc), which names cannot dodge.
CREATE OR REPLACE FUNCTION orderflow._is_private_host(p_host text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_address inet;
BEGIN
    IF p_host IS NULL OR p_host = '' THEN
        RETURN true;
    END IF;
    IF p_host ~ '^[0-9.]+$' AND p_host !~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' THEN
        RETURN true;  -- 2130706433, 127.1: numbers a resolver reads as addresses
    END IF;
    IF p_host ~ '^0x' OR p_host ~ '\.0x' THEN
        RETURN true;
    END IF;
    BEGIN
        v_address := p_host::inet;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN p_host = 'localhost' OR p_host ~ '\.(localhost|local|internal|localdomain|home\.arpa)\.?$'
               OR p_host !~ '\.';
    END;
    IF family(v_address) = 6 AND v_address << '::ffff:0:0/96'::inet THEN
        v_address := host(v_address - ('::ffff:0:0'::inet - '0.0.0.0'::inet))::inet;
    END IF;
    RETURN v_address <<= ANY (ARRAY['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8',
                                    '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16',
                                    '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4', '::/128', '::1/128',
                                    'fc00::/7', 'fe80::/10', 'ff00::/8']::inet[]);
END
$$;
COMMENT ON FUNCTION orderflow._is_private_host(text) IS
    'Internal: true for loopback, private, link-local, CGNAT, multicast and unspecified addresses and '
    'local names (refused for webhooks unless allow_private).';

-- add_webhook(url, events, allow_private) → (id, secret): subscribes url to the events (null:
-- all of event_types). The secret is shown here once. URLs on loopback or private addresses are
-- refused unless p_allow_private. 22023 for a bad URL or an unknown event type.
CREATE OR REPLACE FUNCTION orderflow.add_webhook(p_url text, p_events text[] DEFAULT NULL,
                                                 p_allow_private boolean DEFAULT false)
RETURNS TABLE (id bigint, secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now     timestamptz := orderflow.clock_now();
    v_unknown text;
    v_events  text[];
    v_row     orderflow.webhooks;
BEGIN
    IF p_url IS NULL OR char_length(p_url) > 2000 OR p_url !~ '^https?://[^\s/?#@]+(/[^\s#]*)?$'
       OR orderflow._url_host(p_url) IS NULL THEN
        RAISE EXCEPTION 'url must be an http(s) URL without credentials or fragment, at most 2000 characters'
            USING ERRCODE = '22023';
    END IF;
    IF NOT COALESCE(p_allow_private, false) AND orderflow._is_private_host(orderflow._url_host(p_url)) THEN
        RAISE EXCEPTION 'url % is on a loopback or private address', p_url
            USING ERRCODE = '22023', HINT = 'Pass allow_private => true for an endpoint on a private network.';
    END IF;
    IF p_events IS NOT NULL THEN
        SELECT e INTO v_unknown FROM unnest(p_events) AS e
         WHERE e IS NULL OR NOT EXISTS (SELECT 1 FROM orderflow.event_types t WHERE t.type = e) LIMIT 1;
        IF FOUND OR cardinality(p_events) = 0 THEN
            RAISE EXCEPTION 'events must be null (all) or event types of orderflow.event_types; % is not one',
                COALESCE(v_unknown, 'an empty list') USING ERRCODE = '22023';
        END IF;
        SELECT array_agg(DISTINCT e ORDER BY e) INTO v_events FROM unnest(p_events) AS e;
    END IF;
    INSERT INTO orderflow.webhooks (url, events, allow_private, secret, created_at, updated_at)
    VALUES (p_url, v_events, COALESCE(p_allow_private, false), orderflow._new_secret(), v_now, v_now)
    RETURNING * INTO v_row;
    PERFORM orderflow._set_limits('webhook:' || v_row.id, '{}', v_now);
    id := v_row.id;
    secret := v_row.secret;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION orderflow.add_webhook(text, text[], boolean) IS
    'Operators: subscribes a URL to events (null = all); returns its id and secret (whsec_..., shown '
    'once). Loopback/private URLs need allow_private. 22023 bad URL or event type.';

-- _webhook(id) → webhooks: the subscription, locked; OF404 when unknown or removed.
CREATE OR REPLACE FUNCTION orderflow._webhook(p_id bigint)
RETURNS orderflow.webhooks
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_row orderflow.webhooks;
BEGIN
    SELECT * INTO v_row FROM orderflow.webhooks w WHERE w.id = p_id AND w.removed_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook % not found', p_id USING ERRCODE = 'OF404';
    END IF;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION orderflow._webhook(bigint) IS 'Internal: a live subscription, locked; OF404 otherwise.';

-- remove_webhook(id) → integer: removes the subscription; its deliveries not yet made are
-- abandoned (none is sent after this commits; one already in flight may still arrive).
-- Returns how many were abandoned. OF404 unknown.
CREATE OR REPLACE FUNCTION orderflow.remove_webhook(p_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now   timestamptz := orderflow.clock_now();
    v_count integer;
BEGIN
    PERFORM orderflow._webhook(p_id);
    UPDATE orderflow.webhooks
       SET removed_at = v_now, enabled = false, disabled_at = COALESCE(disabled_at, v_now),
           disabled_reason = 'removed', updated_at = v_now
     WHERE id = p_id;
    UPDATE orderflow.effects
       SET state = 'abandoned', next_attempt_at = NULL, finished_at = v_now, updated_at = v_now,
           lease_token = NULL, leased_until = NULL, last_error = 'the subscription was removed'
     WHERE provider = 'webhook:' || p_id AND state IN ('open', 'dead');
    GET DIAGNOSTICS v_count = ROW_COUNT;
    DELETE FROM orderflow.circuits WHERE provider = 'webhook:' || p_id;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow.remove_webhook(bigint) IS
    'Operators: removes a subscription and abandons its undelivered and dead deliveries; returns how '
    'many. OF404 unknown.';

-- rotate_webhook_secret(id) → text: a new secret; the old one keeps signing beside it for 24 h.
CREATE OR REPLACE FUNCTION orderflow.rotate_webhook_secret(p_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := orderflow.clock_now();
    v_old orderflow.webhooks := orderflow._webhook(p_id);
    v_new text := orderflow._new_secret();
BEGIN
    UPDATE orderflow.webhooks
       SET previous_secret = v_old.secret, previous_secret_until = v_now + interval '24 hours',
           secret = v_new, updated_at = v_now
     WHERE id = p_id;
    RETURN v_new;
END
$$;
COMMENT ON FUNCTION orderflow.rotate_webhook_secret(bigint) IS
    'Operators: gives the subscription a new secret (returned); deliveries are signed with both the '
    'new and the old one for 24 h. OF404 unknown.';

-- _disable_webhook(id, reason, now) → void: stops sending to the subscription (410 Gone); its
-- waiting deliveries stay and flow again after enable_webhook.
CREATE OR REPLACE FUNCTION orderflow._disable_webhook(p_id bigint, p_reason text, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    UPDATE orderflow.webhooks
       SET enabled = false, disabled_at = p_now, disabled_reason = p_reason, updated_at = p_now
     WHERE id = p_id AND enabled;
    IF FOUND THEN
        RAISE LOG 'orderflow: webhook % disabled: %', p_id, p_reason;
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._disable_webhook(bigint, text, timestamptz) IS
    'Internal: disables a subscription (its deliveries wait for enable_webhook).';

-- enable_webhook(id) → boolean: sends to a disabled subscription again (its waiting deliveries
-- first). OF404 unknown.
CREATE OR REPLACE FUNCTION orderflow.enable_webhook(p_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now timestamptz := orderflow.clock_now();  -- a value: Citus takes no VOLATILE call in an UPDATE
BEGIN
    PERFORM orderflow._webhook(p_id);
    UPDATE orderflow.webhooks
       SET enabled = true, disabled_at = NULL, disabled_reason = NULL, updated_at = v_now
     WHERE id = p_id AND NOT enabled;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION orderflow.enable_webhook(bigint) IS
    'Operators: re-enables a disabled subscription; true when it was disabled. OF404 unknown.';

-- set_webhook(id, settings) → jsonb: a subscription's timeoutMs (100..60000, default 10000),
-- rate limit and circuit breaker (ratePerSecond, circuit*: _set_limits); missing keys take the
-- defaults. Returns the settings. 22023 bad settings, OF404 unknown.
CREATE OR REPLACE FUNCTION orderflow.set_webhook(p_id bigint, p_settings jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now     timestamptz := orderflow.clock_now();
    v_key     text;
    v_timeout numeric;
BEGIN
    PERFORM orderflow._webhook(p_id);
    p_settings := COALESCE(p_settings, '{}');
    IF jsonb_typeof(p_settings) <> 'object' THEN
        RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(p_settings) LOOP
        IF v_key NOT IN ('timeoutMs', 'ratePerSecond', 'circuitMinimumCalls', 'circuitWindowMs',
                         'circuitFailureRate', 'circuitOpenMs', 'circuitMaxOpenMs', 'circuitProbes') THEN
            RAISE EXCEPTION 'unknown webhook setting %', v_key
                USING ERRCODE = '22023',
                      HINT = 'Known: timeoutMs, ratePerSecond, circuitMinimumCalls, circuitWindowMs, '
                             'circuitFailureRate, circuitOpenMs, circuitMaxOpenMs, circuitProbes.';
        END IF;
    END LOOP;
    IF p_settings ? 'timeoutMs' THEN
        IF jsonb_typeof(p_settings -> 'timeoutMs') <> 'number' THEN
            RAISE EXCEPTION 'timeoutMs must be an integer from 100 to 60000' USING ERRCODE = '22023';
        END IF;
        v_timeout := (p_settings ->> 'timeoutMs')::numeric;
        IF v_timeout <> trunc(v_timeout) OR v_timeout NOT BETWEEN 100 AND 60000 THEN
            RAISE EXCEPTION 'timeoutMs must be an integer from 100 to 60000' USING ERRCODE = '22023';
        END IF;
    END IF;
    PERFORM orderflow._set_limits('webhook:' || p_id, p_settings, v_now);
    UPDATE orderflow.webhooks SET timeout_ms = COALESCE(v_timeout, 10000)::integer, updated_at = v_now
     WHERE id = p_id;
    RETURN p_settings;
END
$$;
COMMENT ON FUNCTION orderflow.set_webhook(bigint, jsonb) IS
    'Operators: a subscription''s timeoutMs, ratePerSecond and circuit settings (missing keys: '
    'defaults). 22023 bad settings, OF404 unknown.';

-- _fan_out(event_id, order_id, type, payload, now) → integer: one delivery per enabled
-- subscription that wants the event, in the caller's transaction; returns how many.
CREATE OR REPLACE FUNCTION orderflow._fan_out(p_event_id bigint, p_order_id text, p_type text,
                                              p_payload jsonb, p_now timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_body  text;
    v_count integer;
BEGIN
    -- Most systems have no subscription: one probe, and the body is not even built.
    IF NOT EXISTS (SELECT 1 FROM orderflow.webhooks w WHERE w.enabled) THEN
        RETURN 0;
    END IF;
    v_body := jsonb_build_object('type', p_type, 'timestamp', orderflow._iso(p_now),
                                 'data', p_payload)::text;
    INSERT INTO orderflow.effects (order_id, kind, provider, webhook_id, event_id, state, phase,
                                   method, path, body, key_base, idempotency_key, next_attempt_at,
                                   created_at, updated_at)
    SELECT p_order_id, 'webhook', 'webhook:' || w.id, w.id, p_event_id, 'open', 'send', 'POST',
           w.url, v_body, 'evt_' || p_event_id || ':wh_' || w.id, 'evt_' || p_event_id || ':wh_' || w.id,
           p_now, p_now, p_now
      FROM orderflow.webhooks w
     WHERE w.enabled AND (w.events IS NULL OR p_type = ANY (w.events));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow._fan_out(bigint, text, text, jsonb, timestamptz) IS
    'Internal (_emit): writes one webhook delivery per enabled subscription to the event''s type.';

-- _webhook_request(effect) → jsonb: the signed request of a leased delivery (attempt time =
-- the lease's updated_at), in the shape of _effect_request.
CREATE OR REPLACE FUNCTION orderflow._webhook_request(p_effect orderflow.effects)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_hook      orderflow.webhooks;
    v_msg_id    text := 'evt_' || p_effect.event_id;
    v_timestamp bigint := floor(extract(epoch FROM p_effect.updated_at))::bigint;
    v_signature text;
BEGIN
    SELECT * INTO STRICT v_hook FROM orderflow.webhooks WHERE id = p_effect.webhook_id;
    v_signature := orderflow.webhook_signature(v_hook.secret, v_msg_id, v_timestamp, p_effect.body);
    IF v_hook.previous_secret_until > p_effect.updated_at THEN
        v_signature := v_signature || ' '
                       || orderflow.webhook_signature(v_hook.previous_secret, v_msg_id, v_timestamp, p_effect.body);
    END IF;
    RETURN jsonb_build_object(
        'id', p_effect.id, 'token', p_effect.lease_token, 'orderId', p_effect.order_id,
        'kind', 'webhook', 'provider', p_effect.provider, 'phase', 'send', 'method', 'POST',
        'url', p_effect.path, 'body', p_effect.body, 'allowPrivate', v_hook.allow_private,
        'headers', jsonb_build_array(
            jsonb_build_array('Content-Type', 'application/json'),
            jsonb_build_array('webhook-id', v_msg_id),
            jsonb_build_array('webhook-timestamp', v_timestamp::text),
            jsonb_build_array('webhook-signature', v_signature),
            jsonb_build_array('User-Agent', 'orderflow-webhooks/1')),
        'timeoutMs', v_hook.timeout_ms);
END
$$;
COMMENT ON FUNCTION orderflow._webhook_request(orderflow.effects) IS
    'Internal: a leased delivery''s request: POST with webhook-id, webhook-timestamp and '
    'webhook-signature (Standard Webhooks; both secrets during a rotation).';

-- The operators' views over tables they are not granted (webhook_subscriptions and dead_letters
-- here, ledger in 70_operator.sql, provider_effects in 45_effects.sql) select from a SECURITY
-- DEFINER function that returns exactly the view's rows: on plain PostgreSQL a view reads its
-- tables with its owner's rights, but on Citus its query is planned on the coordinator and sent
-- to the shards with the reader's, so a view alone cannot show a table its reader may not read.
-- The function runs as the owner on every node alike. The reader is granted EXECUTE on it
-- (99_grants.sql) and sees nothing through it that the view does not show: never a secret.
-- A filter on such a view is applied to the function's rows, not pushed into its scan.

-- _read_webhook_subscriptions() → the rows of webhook_subscriptions: each live subscription with
-- its circuit and its deliveries grouped by provider (pending, dead, the last delivered, the last
-- error: of the open or dead delivery updated last, the newest of a tie), never a secret.
-- Grouped scans joined by provider (no subquery per subscription), which Citus runs on the shards
-- and joins on the coordinator.
DROP VIEW IF EXISTS orderflow.webhook_subscriptions;
CREATE OR REPLACE FUNCTION orderflow._read_webhook_subscriptions()
RETURNS TABLE (id bigint, url text, events text[], enabled boolean, disabled_reason text,
               circuit text, open_until timestamptz, paused_until timestamptz,
               rate_per_second numeric, timeout_ms integer, pending bigint, dead bigint,
               last_delivered_at timestamptz, last_error text, last_error_at timestamptz,
               old_secret_signs_until timestamptz, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH deliveries AS (
        SELECT e.provider,
               count(*) FILTER (WHERE e.state = 'open') AS pending,
               count(*) FILTER (WHERE e.state = 'dead') AS dead,
               max(e.finished_at) FILTER (WHERE e.state = 'succeeded') AS last_delivered_at
          FROM orderflow.effects e
         WHERE e.kind = 'webhook'
         GROUP BY e.provider),
    last_errors AS (
        SELECT DISTINCT ON (e.provider) e.provider, e.last_error, e.updated_at
          FROM orderflow.effects e
         WHERE e.kind = 'webhook' AND e.state IN ('open', 'dead') AND e.last_error IS NOT NULL
         ORDER BY e.provider, e.updated_at DESC, e.id DESC)
    SELECT w.id,
           w.url,
           w.events,
           w.enabled,
           w.disabled_reason,
           c.state,
           c.open_until,
           c.paused_until,
           c.rate_per_second,
           w.timeout_ms,
           COALESCE(d.pending, 0),
           COALESCE(d.dead, 0),
           d.last_delivered_at,
           err.last_error,
           err.updated_at,
           w.previous_secret_until,
           w.created_at
      FROM orderflow.webhooks w
      LEFT JOIN orderflow.circuits c ON c.provider = 'webhook:' || w.id
      LEFT JOIN deliveries d ON d.provider = 'webhook:' || w.id
      LEFT JOIN last_errors err ON err.provider = 'webhook:' || w.id
     WHERE w.removed_at IS NULL
$$;
COMMENT ON FUNCTION orderflow._read_webhook_subscriptions() IS
    'Internal (the view webhook_subscriptions, as its owner): live subscriptions with their circuit, '
    'pending and dead deliveries, last delivery and last error; never a secret.';

-- webhook_subscriptions: the subscriptions with their health; never their secrets.
CREATE VIEW orderflow.webhook_subscriptions AS
SELECT * FROM orderflow._read_webhook_subscriptions();
COMMENT ON VIEW orderflow.webhook_subscriptions IS
    'Webhook subscriptions and their health: enabled, circuit, pending and dead deliveries, last '
    'delivery, last error. Secrets are never shown.';

-- _read_dead_letters() → the rows of dead_letters: every dead effect with its event's type (the
-- outbox row of the same order: joined on the order id too, so it stays on one shard).
DROP VIEW IF EXISTS orderflow.dead_letters;
CREATE OR REPLACE FUNCTION orderflow._read_dead_letters()
RETURNS TABLE (id bigint, kind text, provider text, order_id text, event_id text, event_type text,
               webhook_id bigint, url text, idempotency_key text, attempts integer,
               last_outcome text, last_error text, last_detail text,
               first_attempt_due_at timestamptz, died_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.id,
           e.kind,
           e.provider,
           e.order_id,
           CASE WHEN e.kind = 'webhook' THEN 'evt_' || e.event_id END,
           o.event_type,
           e.webhook_id,
           CASE WHEN e.kind = 'webhook' THEN e.path END,
           e.idempotency_key,
           e.attempts,
           e.last_outcome,
           e.last_error,
           e.last_detail,
           e.created_at,
           e.finished_at
      FROM orderflow.effects e
      LEFT JOIN orderflow.outbox o ON o.order_id = e.order_id AND o.id = e.event_id
     WHERE e.state = 'dead'
$$;
COMMENT ON FUNCTION orderflow._read_dead_letters() IS
    'Internal (the view dead_letters, as its owner): dead webhook deliveries and dead payment calls '
    'with their event''s type and last error.';

-- dead_letters: every call that stopped for good and waits for an operator: dead webhook
-- deliveries and dead payment calls, with their last error. redrive() puts them back.
CREATE VIEW orderflow.dead_letters AS
SELECT * FROM orderflow._read_dead_letters();
COMMENT ON VIEW orderflow.dead_letters IS
    'Dead webhook deliveries and dead payment calls with their last error; redrive() puts them back.';

-- redrive(kind, provider, order_id, died_since, limit, per_second, effect_id) → integer: puts
-- dead calls back (dead_letters, filtered by any of the arguments), same keys and webhook-ids, fresh
-- attempts, spread at p_per_second from now so that a redrive of thousands does not land at
-- once. A payment call whose key may have expired is put back as a lookup (reconciliation),
-- never re-sent; a dead charge's suspended workflow waits on it again (charging). Deliveries of
-- a disabled subscription are put back too and flow after enable_webhook. Returns how many.
-- 22023 bad arguments.
CREATE OR REPLACE FUNCTION orderflow.redrive(p_kind text DEFAULT NULL, p_provider text DEFAULT NULL,
                                             p_order_id text DEFAULT NULL,
                                             p_died_since timestamptz DEFAULT NULL,
                                             p_limit integer DEFAULT 1000,
                                             p_per_second numeric DEFAULT 10,
                                             p_effect_id bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_now    timestamptz := orderflow.clock_now();
    v_dead   record;
    v_wf     orderflow.workflows;
    v_count  integer := 0;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'operator', true);
    IF p_kind IS NOT NULL AND p_kind NOT IN ('charge', 'refund', 'webhook') THEN
        RAISE EXCEPTION 'kind must be charge, refund, webhook or null' USING ERRCODE = '22023';
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'limit must be from 1 to 100000' USING ERRCODE = '22023';
    END IF;
    IF p_per_second IS NULL OR NOT (p_per_second > 0 AND p_per_second <= 10000) THEN
        RAISE EXCEPTION 'per_second must be above 0 and at most 10000' USING ERRCODE = '22023';
    END IF;
    FOR v_dead IN
        SELECT e.id, e.kind, e.order_id FROM orderflow.effects e
         WHERE e.state = 'dead'
           AND (p_kind IS NULL OR e.kind = p_kind)
           AND (p_provider IS NULL OR e.provider = p_provider)
           AND (p_order_id IS NULL OR e.order_id = p_order_id)
           AND (p_died_since IS NULL OR e.finished_at >= p_died_since)
           AND (p_effect_id IS NULL OR e.id = p_effect_id)
         ORDER BY e.finished_at, e.id
         LIMIT p_limit
    LOOP
        IF v_dead.kind <> 'webhook' THEN
            -- The lock order: the workflow first, then the effect (re-read under it).
            SELECT * INTO v_wf FROM orderflow.workflows w WHERE w.order_id = v_dead.order_id FOR UPDATE;
        END IF;
        PERFORM 1 FROM orderflow.effects e WHERE e.order_id = v_dead.order_id AND e.id = v_dead.id FOR UPDATE;
        CONTINUE WHEN NOT orderflow._reopen_effect(
            v_dead.order_id, v_dead.id, v_now + (v_count / p_per_second) * interval '1 second', v_now);
        v_count := v_count + 1;
        PERFORM orderflow._record(v_dead.order_id, v_now, 'action', 'redrive', 'done',
                                  p_detail => v_dead.kind || ' call ' || v_dead.id);
        IF v_dead.kind = 'charge' AND v_wf.status = 'suspended' THEN
            PERFORM orderflow._transition(v_wf, 'charging', v_now, 'infinity');
        END IF;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION orderflow.redrive(text, text, text, timestamptz, integer, numeric, bigint) IS
    'Operators: puts dead calls (dead_letters; filter by kind, provider, order, died since, id) back with '
    'their keys and fresh attempts, spread at per_second; payment calls whose key may have expired '
    'are only looked up. Returns how many. 22023 bad arguments.';
