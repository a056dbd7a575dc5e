-- Circuit breakers and rate limits, one of each per provider: 'payments' (charges and refunds)
-- and 'webhook:<id>' (deliveries to one subscription). 011_webhooks.sql has the tables.
--
--            failures ≥ failure_rate % of ≥ minimum_calls in window_ms
--   closed ───────────────────────────────────────────────────────────▶ open
--     ▲                                                                  │ open_until passed:
--     │ `probes` probes succeeded               a probe failed           │ the next lease is
--     └──────────────────────── half_open ◀──────────────────────────────┘ a probe
--                                   │   ──────────────────────────────▶ open (open time doubled,
--                                                                         at most max_open_ms)
--
-- While open (or paused by a 429's Retry-After, or out of tokens) _admit refuses the lease:
-- the effect is not touched, so it keeps its attempts and is due at once when the circuit
-- closes (claim_effects only visits providers that may send). An open circuit is never the
-- effect's failure.
--
-- Shared rows, and why nobody queues on them: the circuit row is read without a lock on every
-- lease and written only on a transition (trip, probe, close) or a pause, always after
-- FOR UPDATE SKIP LOCKED or NOWAIT-like checks except for the single probe's own report. Calls
-- are counted in circuit_calls stripes (pid % 16 per second) and tokens live in up to 8
-- rate_buckets stripes, each taken with SKIP LOCKED. Lock order: workflow, effects, circuit,
-- circuit_calls stripe, rate_buckets stripe.

-- _circuit_move(circuit, to, now) → circuits: the one writer of a circuit's state; the
-- transition must be a row of circuit_transitions. The caller holds the circuit row's lock.
CREATE OR REPLACE FUNCTION orderflow._circuit_move(p_circuit orderflow.circuits, p_to text,
                                                   p_now timestamptz)
RETURNS orderflow.circuits
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_circuit orderflow.circuits;
    v_open_ms double precision;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orderflow.circuit_transitions t
                    WHERE t.from_state = p_circuit.state AND t.to_state = p_to) THEN
        RAISE EXCEPTION 'circuit % cannot go from % to %', p_circuit.provider, p_circuit.state, p_to
            USING ERRCODE = 'XX000';
    END IF;
    IF p_to = 'open' THEN
        v_open_ms := least(p_circuit.max_open_ms::double precision,
                           p_circuit.open_ms * power(2::double precision, p_circuit.trips));
        UPDATE orderflow.circuits
           SET state = 'open', opened_at = COALESCE(opened_at, p_now),
               open_until = p_now + v_open_ms * interval '1 millisecond', trips = trips + 1,
               probes_granted = 0, probes_succeeded = 0, probe_until = NULL, updated_at = p_now
         WHERE provider = p_circuit.provider
        RETURNING * INTO v_circuit;
        RAISE LOG 'orderflow: circuit % opened for % ms (trip %)', p_circuit.provider, v_open_ms,
            v_circuit.trips;
    ELSIF p_to = 'half_open' THEN
        UPDATE orderflow.circuits
           SET state = 'half_open', open_until = NULL, probes_granted = 0, probes_succeeded = 0,
               probe_until = NULL, updated_at = p_now
         WHERE provider = p_circuit.provider
        RETURNING * INTO v_circuit;
    ELSE
        UPDATE orderflow.circuits
           SET state = 'closed', opened_at = NULL, open_until = NULL, trips = 0, probes_granted = 0,
               probes_succeeded = 0, probe_until = NULL, window_started_at = p_now, updated_at = p_now
         WHERE provider = p_circuit.provider
        RETURNING * INTO v_circuit;
        RAISE LOG 'orderflow: circuit % closed', p_circuit.provider;
    END IF;
    RETURN v_circuit;
END
$$;
COMMENT ON FUNCTION orderflow._circuit_move(orderflow.circuits, text, timestamptz) IS
    'Internal: moves a locked circuit (closed/open/half_open) along circuit_transitions; opening '
    'lasts open_ms doubled per repeated trip, at most max_open_ms.';

-- _stripes(rate) → integer: how many bucket stripes a rate gets (1..8, each at least 1 token/s).
CREATE OR REPLACE FUNCTION orderflow._stripes(p_rate numeric)
RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$
    SELECT greatest(1, least(8, floor(p_rate)::integer))
$$;
COMMENT ON FUNCTION orderflow._stripes(numeric) IS
    'Internal: token-bucket stripes for a rate: floor(rate) clamped to 1..8.';

-- _refilled(tokens, refilled_at, rate, now) → double precision: a stripe's tokens at p_now.
-- It takes the stripe's columns, not its row: on Citus a query over rate_buckets runs on a
-- shard, whose rows have the shard's own row type.
CREATE OR REPLACE FUNCTION orderflow._refilled(p_tokens double precision, p_refilled_at timestamptz,
                                               p_rate numeric, p_now timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
    SELECT least(greatest(1, p_rate / orderflow._stripes(p_rate))::double precision,
                 p_tokens + greatest(0, extract(epoch FROM p_now - p_refilled_at))::double precision
                            * (p_rate / orderflow._stripes(p_rate))::double precision)
$$;
COMMENT ON FUNCTION orderflow._refilled(double precision, timestamptz, numeric, timestamptz) IS
    'Internal: a bucket stripe''s tokens at p_now (refilled at rate/stripes per second, capped).';

-- _tokens(provider, now) → double precision: tokens left across the provider's stripes, null
-- when it has no rate limit. PL/pgSQL, not SQL: Citus cannot plan a SQL function's statement on
-- a distributed table (rate_buckets is one, by provider) with its parameters.
CREATE OR REPLACE FUNCTION orderflow._tokens(p_provider text, p_now timestamptz)
RETURNS double precision
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_rate   numeric;
    v_tokens double precision;
BEGIN
    SELECT c.rate_per_second INTO v_rate FROM orderflow.circuits c WHERE c.provider = p_provider;
    IF v_rate IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT sum(orderflow._refilled(b.tokens, b.refilled_at, v_rate, p_now)) INTO v_tokens
      FROM orderflow.rate_buckets b
     WHERE b.provider = p_provider;
    RETURN v_tokens;
END
$$;
COMMENT ON FUNCTION orderflow._tokens(text, timestamptz) IS
    'Internal: the provider''s tokens now (sum of its stripes), null without a rate limit.';

-- _take_token(provider, rate, now) → boolean: takes one token from a stripe nobody else holds
-- (SKIP LOCKED, starting at a random stripe); false when none has a whole token.
CREATE OR REPLACE FUNCTION orderflow._take_token(p_provider text, p_rate numeric, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_stripes integer := orderflow._stripes(p_rate);
    v_start   integer := floor(random() * v_stripes)::integer;
    v_bucket  orderflow.rate_buckets;
    v_tokens  double precision;
BEGIN
    FOR v_i IN 0 .. v_stripes - 1 LOOP
        SELECT * INTO v_bucket FROM orderflow.rate_buckets
         WHERE provider = p_provider AND stripe = (v_start + v_i) % v_stripes
           FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        v_tokens := orderflow._refilled(v_bucket.tokens, v_bucket.refilled_at, p_rate, p_now);
        IF v_tokens >= 1 THEN
            UPDATE orderflow.rate_buckets SET tokens = v_tokens - 1, refilled_at = p_now
             WHERE provider = p_provider AND stripe = v_bucket.stripe;
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
COMMENT ON FUNCTION orderflow._take_token(text, numeric, timestamptz) IS
    'Internal: takes one token of the provider''s bucket (a free stripe, SKIP LOCKED); false when empty.';

-- _admit(provider, lease_until, now) → text: whether a call of the provider may be sent now:
-- 'closed' (yes), 'probe' (yes, as the half-open circuit's probe), or why not: 'circuit_open',
-- 'paused' (a 429's Retry-After), 'rate_limited', 'removed' (a webhook subscription gone).
CREATE OR REPLACE FUNCTION orderflow._admit(p_provider text, p_lease_until timestamptz,
                                            p_now timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_circuit orderflow.circuits;
BEGIN
    SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_provider;
    IF NOT FOUND THEN
        RETURN 'removed';
    END IF;
    IF v_circuit.paused_until > p_now THEN
        RETURN 'paused';
    END IF;
    IF v_circuit.state = 'open' AND v_circuit.open_until > p_now THEN
        RETURN 'circuit_open';
    END IF;
    IF v_circuit.state <> 'closed' THEN
        -- Probing: taken under the circuit's lock, by one leaser at a time (the others skip).
        SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_provider
           FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN 'circuit_open';
        END IF;
        IF v_circuit.state = 'open' THEN
            IF v_circuit.open_until > p_now THEN
                RETURN 'circuit_open';
            END IF;
            v_circuit := orderflow._circuit_move(v_circuit, 'half_open', p_now);
        END IF;
        IF v_circuit.state = 'half_open' THEN
            IF v_circuit.probe_until <= p_now THEN
                v_circuit.probes_granted := v_circuit.probes_succeeded;  -- a probe's lease expired
            END IF;
            IF v_circuit.probes_granted >= v_circuit.probes THEN
                RETURN 'circuit_open';
            END IF;
        END IF;
    END IF;
    IF v_circuit.rate_per_second IS NOT NULL
       AND NOT orderflow._take_token(p_provider, v_circuit.rate_per_second, p_now) THEN
        RETURN 'rate_limited';
    END IF;
    IF v_circuit.state = 'half_open' THEN
        UPDATE orderflow.circuits
           SET probes_granted = v_circuit.probes_granted + 1,
               probe_until = greatest(probe_until, p_lease_until), updated_at = p_now
         WHERE provider = p_provider;
        RETURN 'probe';
    END IF;
    RETURN 'closed';
END
$$;
COMMENT ON FUNCTION orderflow._admit(text, timestamptz, timestamptz) IS
    'Internal: may a call of this provider go now? closed / probe (half-open) or the reason not: '
    'circuit_open, paused, rate_limited, removed. Takes a token when rate limited.';

-- _circuit_record(effect, rule, retry_after_ms, now) → void: what a reported call means to
-- its provider's circuit: a 429's Retry-After pauses the provider; a probe's outcome closes or
-- reopens the circuit; while closed, successes and failures are counted and a failure that
-- brings the window to the threshold trips it. Lookups and 'ignore' outcomes do not count.
CREATE OR REPLACE FUNCTION orderflow._circuit_record(p_effect orderflow.effects,
                                                     p_rule orderflow.provider_outcomes,
                                                     p_status integer, p_retry_ms double precision,
                                                     p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_class    text := CASE WHEN p_rule.rule IS NULL OR p_effect.phase = 'lookup' THEN 'ignore'
                            ELSE p_rule.breaker END;
    v_circuit  orderflow.circuits;
    v_second   bigint := floor(extract(epoch FROM p_now))::bigint;
    v_from     bigint;
    v_calls    bigint;
    v_failures bigint;
BEGIN
    IF p_status = 429 AND p_retry_ms > 0 THEN
        -- The whole provider backs off. Skipped when another report is writing the row (it
        -- carries the same news).
        UPDATE orderflow.circuits c
           SET paused_until = p_now + p_retry_ms * interval '1 millisecond', updated_at = p_now
         WHERE c.provider = (SELECT x.provider FROM orderflow.circuits x
                              WHERE x.provider = p_effect.provider
                                AND (x.paused_until IS NULL
                                     OR x.paused_until < p_now + p_retry_ms * interval '1 millisecond')
                                FOR UPDATE SKIP LOCKED);
    END IF;
    IF p_effect.circuit_probe THEN
        -- The probe's own report: it alone decides, so it waits for the row.
        SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_effect.provider FOR UPDATE;
        IF NOT FOUND OR v_circuit.state <> 'half_open' THEN
            RETURN;
        END IF;
        IF v_class = 'failure' THEN
            PERFORM orderflow._circuit_move(v_circuit, 'open', p_now);
        ELSIF v_class = 'success' AND v_circuit.probes_succeeded + 1 >= v_circuit.probes THEN
            PERFORM orderflow._circuit_move(v_circuit, 'closed', p_now);
        ELSE
            UPDATE orderflow.circuits
               SET probes_succeeded = probes_succeeded + CASE WHEN v_class = 'success' THEN 1 ELSE 0 END,
                   probes_granted = greatest(0, probes_granted - CASE WHEN v_class = 'ignore' THEN 1 ELSE 0 END),
                   updated_at = p_now
             WHERE provider = p_effect.provider;
        END IF;
        RETURN;
    END IF;
    IF v_class = 'ignore' THEN
        RETURN;
    END IF;
    SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_effect.provider;
    IF NOT FOUND OR v_circuit.state <> 'closed' THEN
        RETURN;  -- a call sent before the circuit opened: its outcome is not counted
    END IF;
    INSERT INTO orderflow.circuit_calls AS k (provider, second, stripe, successes, failures)
    VALUES (p_effect.provider, v_second, pg_backend_pid() % 16,
            CASE WHEN v_class = 'success' THEN 1 ELSE 0 END,
            CASE WHEN v_class = 'failure' THEN 1 ELSE 0 END)
    ON CONFLICT (provider, second, stripe) DO UPDATE
        SET successes = k.successes + EXCLUDED.successes, failures = k.failures + EXCLUDED.failures;
    IF v_class <> 'failure' THEN
        RETURN;
    END IF;
    v_from := greatest(floor(extract(epoch FROM p_now - v_circuit.window_ms * interval '1 millisecond')),
                       ceil(extract(epoch FROM v_circuit.window_started_at)))::bigint;
    SELECT COALESCE(sum(k.successes + k.failures), 0), COALESCE(sum(k.failures), 0)
      INTO v_calls, v_failures
      FROM orderflow.circuit_calls k
     WHERE k.provider = p_effect.provider AND k.second >= v_from AND k.second <= v_second;
    IF v_calls >= v_circuit.minimum_calls AND v_failures * 100 >= v_circuit.failure_rate * v_calls THEN
        SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_effect.provider
           FOR UPDATE SKIP LOCKED;
        IF FOUND AND v_circuit.state = 'closed' THEN
            PERFORM orderflow._circuit_move(v_circuit, 'open', p_now);
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._circuit_record(orderflow.effects, orderflow.provider_outcomes, integer, double precision, timestamptz) IS
    'Internal: counts a reported call in its provider''s circuit (trips it at the threshold, closes '
    'or reopens it on a probe''s outcome) and pauses the provider on a 429 with Retry-After.';

-- _set_limits(provider, settings, now) → void: the circuit and rate-limit settings of a provider
-- from set_provider / set_webhook settings (ratePerSecond, circuitMinimumCalls, circuitWindowMs,
-- circuitFailureRate, circuitOpenMs, circuitMaxOpenMs, circuitProbes); missing keys take the
-- defaults. 22023 for a bad value.
CREATE OR REPLACE FUNCTION orderflow._set_limits(p_provider text, p_settings jsonb, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_key   text;
    v_value numeric;
    v_rate  numeric;
    v_old   numeric;
BEGIN
    FOR v_key IN SELECT k FROM jsonb_object_keys(p_settings) AS k
                  WHERE k IN ('ratePerSecond', 'circuitMinimumCalls', 'circuitWindowMs',
                              'circuitFailureRate', 'circuitOpenMs', 'circuitMaxOpenMs', 'circuitProbes') LOOP
        IF v_key = 'ratePerSecond' AND jsonb_typeof(p_settings -> v_key) = 'null' THEN
            CONTINUE;
        END IF;
        IF jsonb_typeof(p_settings -> v_key) <> 'number' THEN
            RAISE EXCEPTION '% must be a number', v_key USING ERRCODE = '22023';
        END IF;
        v_value := (p_settings ->> v_key)::numeric;
        IF (v_key <> 'ratePerSecond' AND v_key <> 'circuitFailureRate' AND v_value <> trunc(v_value))
           OR (v_key = 'ratePerSecond' AND NOT (v_value > 0 AND v_value <= 100000))
           OR (v_key = 'circuitMinimumCalls' AND v_value NOT BETWEEN 1 AND 100000)
           OR (v_key = 'circuitWindowMs' AND v_value NOT BETWEEN 1000 AND 3600000)
           OR (v_key = 'circuitFailureRate' AND NOT (v_value > 0 AND v_value <= 100))
           OR (v_key IN ('circuitOpenMs', 'circuitMaxOpenMs') AND v_value NOT BETWEEN 100 AND 86400000)
           OR (v_key = 'circuitProbes' AND v_value NOT BETWEEN 1 AND 100) THEN
            RAISE EXCEPTION '% is out of range', v_key
                USING ERRCODE = '22023',
                      HINT = 'ratePerSecond 0..100000 (exclusive of 0), circuitMinimumCalls 1..100000, '
                             'circuitWindowMs 1000..3600000, circuitFailureRate 0..100 (percent), '
                             'circuitOpenMs and circuitMaxOpenMs 100..86400000, circuitProbes 1..100.';
        END IF;
    END LOOP;
    IF COALESCE((p_settings ->> 'circuitMaxOpenMs')::integer, 300000)
       < COALESCE((p_settings ->> 'circuitOpenMs')::integer, 5000) THEN
        RAISE EXCEPTION 'circuitMaxOpenMs must not be below circuitOpenMs' USING ERRCODE = '22023';
    END IF;
    v_rate := (p_settings ->> 'ratePerSecond')::numeric;
    SELECT rate_per_second INTO v_old FROM orderflow.circuits WHERE provider = p_provider;
    INSERT INTO orderflow.circuits AS c (provider, minimum_calls, window_ms, failure_rate, open_ms,
                                         max_open_ms, probes, rate_per_second, window_started_at, updated_at)
    VALUES (p_provider,
            COALESCE((p_settings ->> 'circuitMinimumCalls')::integer, 10),
            COALESCE((p_settings ->> 'circuitWindowMs')::integer, 30000),
            COALESCE((p_settings ->> 'circuitFailureRate')::numeric, 50),
            COALESCE((p_settings ->> 'circuitOpenMs')::integer, 5000),
            COALESCE((p_settings ->> 'circuitMaxOpenMs')::integer, 300000),
            COALESCE((p_settings ->> 'circuitProbes')::integer, 1),
            v_rate, p_now, p_now)
    ON CONFLICT (provider) DO UPDATE
        SET minimum_calls = EXCLUDED.minimum_calls, window_ms = EXCLUDED.window_ms,
            failure_rate = EXCLUDED.failure_rate, open_ms = EXCLUDED.open_ms,
            max_open_ms = EXCLUDED.max_open_ms, probes = EXCLUDED.probes,
            rate_per_second = EXCLUDED.rate_per_second, updated_at = EXCLUDED.updated_at;
    IF v_rate IS DISTINCT FROM v_old THEN
        DELETE FROM orderflow.rate_buckets WHERE provider = p_provider;
        IF v_rate IS NOT NULL THEN
            INSERT INTO orderflow.rate_buckets (provider, stripe, tokens, refilled_at)
            SELECT p_provider, s, greatest(1, v_rate / orderflow._stripes(v_rate)), p_now
              FROM generate_series(0, orderflow._stripes(v_rate) - 1) AS s;
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._set_limits(text, jsonb, timestamptz) IS
    'Internal: writes a provider''s circuit settings and rate limit (full buckets) from settings '
    'keys ratePerSecond and circuit*; missing keys take the defaults. 22023 bad value.';

-- _waiting_for(provider, now) → jsonb: why an open call of the provider is not being sent,
-- {reason: circuit_open|half_open|paused|rate_limited, until}, or null when nothing holds it.
CREATE OR REPLACE FUNCTION orderflow._waiting_for(p_provider text, p_now timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_circuit orderflow.circuits;
BEGIN
    SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_provider;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF v_circuit.paused_until > p_now THEN
        RETURN jsonb_build_object('reason', 'paused', 'until', orderflow._iso(v_circuit.paused_until),
                                  'sentence', 'the provider asked us to wait (429 Retry-After)');
    ELSIF v_circuit.state = 'open' THEN
        RETURN jsonb_build_object('reason', 'circuit_open', 'until', orderflow._iso(v_circuit.open_until),
                                  'sentence', 'the provider is failing: its circuit breaker is open');
    ELSIF v_circuit.state = 'half_open' THEN
        RETURN jsonb_build_object('reason', 'half_open', 'until', NULL,
                                  'sentence', 'the circuit breaker is probing the provider');
    ELSIF v_circuit.rate_per_second IS NOT NULL AND orderflow._tokens(p_provider, p_now) < 1 THEN
        RETURN jsonb_build_object('reason', 'rate_limited', 'until', NULL,
                                  'sentence', 'waiting for the provider''s rate limit');
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION orderflow._waiting_for(text, timestamptz) IS
    'Internal: why calls of a provider wait (circuit_open, half_open, paused, rate_limited), or null.';

-- provider_health() → jsonb: per provider, for /metrics: circuit state, paused, tokens, pending
-- and dead calls, and the age of the oldest call not yet done.
CREATE OR REPLACE FUNCTION orderflow.provider_health()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_now timestamptz := orderflow.clock_now();
BEGIN
    RETURN COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
                   'provider', c.provider,
                   'circuit', c.state,
                   'paused', COALESCE(c.paused_until > v_now, false),
                   'tokens', round(orderflow._tokens(c.provider, v_now)::numeric, 3),
                   'pending', COALESCE(o.n, 0),
                   'dead', COALESCE(d.n, 0),
                   'oldestUndeliveredSeconds', round(extract(epoch FROM v_now - o.oldest), 3))
                 ORDER BY c.provider)
          -- Open and dead calls counted per provider, then joined to the circuits (each count
          -- from its partial index; on Citus one query over the shards each, not one per provider).
          FROM orderflow.circuits c
          LEFT JOIN (SELECT e.provider, count(*) AS n, min(e.created_at) AS oldest
                       FROM orderflow.effects e WHERE e.state = 'open' GROUP BY e.provider) o
                 ON o.provider = c.provider
          LEFT JOIN (SELECT e.provider, count(*) AS n
                       FROM orderflow.effects e WHERE e.state = 'dead' GROUP BY e.provider) d
                 ON d.provider = c.provider), '[]');
END
$$;
COMMENT ON FUNCTION orderflow.provider_health() IS
    '/metrics: per provider (payments, webhook:<id>) its circuit, pause, tokens, pending and dead '
    'calls and the oldest pending call''s age in seconds.';

-- reset_circuit(provider) → text: an operator's override: the provider's circuit closed, its
-- window, probes and pause cleared (what was held back is due at once). Returns the state it
-- had. OF404 unknown provider.
CREATE OR REPLACE FUNCTION orderflow.reset_circuit(p_provider text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_now     timestamptz := orderflow.clock_now();
    v_circuit orderflow.circuits;
    v_was     text;
BEGIN
    -- Who causes what follows (75_history.sql); lasts to the end of the transaction.
    PERFORM set_config('orderflow.actor', 'operator', true);
    SELECT * INTO v_circuit FROM orderflow.circuits WHERE provider = p_provider FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'provider % not found', p_provider USING ERRCODE = 'OF404';
    END IF;
    v_was := v_circuit.state;
    IF v_circuit.state <> 'closed' THEN
        v_circuit := orderflow._circuit_move(v_circuit, 'closed', v_now);
    END IF;
    UPDATE orderflow.circuits SET window_started_at = v_now, paused_until = NULL, updated_at = v_now
     WHERE provider = p_provider;
    DELETE FROM orderflow.circuit_calls WHERE provider = p_provider;
    RETURN v_was;
END
$$;
COMMENT ON FUNCTION orderflow.reset_circuit(text) IS
    'Operators: closes a provider''s circuit and clears its window and pause; returns the state it '
    'had. OF404 unknown provider.';
