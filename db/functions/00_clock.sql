-- The clock. Every timestamp orderflow writes comes from clock_now(), so pgTAP tests and drills
-- can pin time inside their transaction and test backoff and expiry without sleeping.
--
-- One reading per decision: a function that decides reads clock_now() once into v_now and
-- writes that value everywhere the decision writes (updated_at, finished_at, next_retry_at,
-- completed_at agree to the microsecond). Queries compare with v_now, a parameter, so
-- `next_retry_at <= v_now` uses its index. Step durations measure real elapsed time with
-- clock_timestamp(), pinned or not.
--
-- Only the schema owner (or a superuser) may pin: the pin is the setting orderflow.pinned_now,
-- which any role can SET, so clock_now() honours it only when the session's login is a member
-- of the schema's owner. The API role setting it (SET, or PGOPTIONS) changes nothing.


-- _may_pin() → boolean: true when the session user is a member of the orderflow schema's owner.
CREATE OR REPLACE FUNCTION orderflow._may_pin()
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT pg_has_role(session_user, n.nspowner, 'MEMBER')
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'orderflow'
$$;
COMMENT ON FUNCTION orderflow._may_pin() IS
    'Internal: true when the session''s login may pin the clock (a member of the schema owner).';

-- clock_now() → timestamptz: the time pinned by pin_clock in this transaction, else the wall clock.
-- VOLATILE, because the wall clock moves during a statement: callers read it once per decision.
CREATE OR REPLACE FUNCTION orderflow.clock_now()
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $$
DECLARE
    v_pin text := current_setting('orderflow.pinned_now', true);
BEGIN
    IF v_pin IS NULL OR v_pin = '' OR NOT orderflow._may_pin() THEN
        RETURN clock_timestamp();
    END IF;
    RETURN v_pin::timestamptz;
END
$$;
COMMENT ON FUNCTION orderflow.clock_now() IS
    'The one clock orderflow reads: the time pinned by pin_clock() in this transaction (honoured for '
    'the schema owner only), else clock_timestamp(). Read once per decision.';

-- pin_clock(at) → timestamptz: clock_now() returns p_at until the end of the current transaction.
-- 22023 for null or infinite times.
CREATE OR REPLACE FUNCTION orderflow.pin_clock(p_at timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF p_at IS NULL OR NOT isfinite(p_at) THEN
        RAISE EXCEPTION 'pin_clock needs a finite time' USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('orderflow.pinned_now', p_at::text, true);
    RETURN p_at;
END
$$;
COMMENT ON FUNCTION orderflow.pin_clock(timestamptz) IS
    'Pins clock_now() to p_at until the end of the current transaction (tests and drills; owner only). '
    '22023 for null or infinite times.';

-- advance_clock(by) → timestamptz: pins the clock p_by later than clock_now() and returns it.
-- 22023 when p_by is null or moves the clock out of the range of timestamps.
CREATE OR REPLACE FUNCTION orderflow.advance_clock(p_by interval)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_at timestamptz;
BEGIN
    IF p_by IS NULL THEN
        RAISE EXCEPTION 'advance_clock needs an interval' USING ERRCODE = '22023';
    END IF;
    BEGIN
        v_at := orderflow.clock_now() + p_by;
    EXCEPTION WHEN datetime_field_overflow THEN
        RAISE EXCEPTION 'advance_clock: % moves the clock out of range', p_by USING ERRCODE = '22023';
    END;
    RETURN orderflow.pin_clock(v_at);
END
$$;
COMMENT ON FUNCTION orderflow.advance_clock(interval) IS
    'Pins clock_now() p_by later than it reads now, until the end of the transaction. 22023 when '
    'p_by is null or out of range.';

-- unpin_clock() → void: clock_now() follows the wall clock again.
CREATE OR REPLACE FUNCTION orderflow.unpin_clock()
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT set_config('orderflow.pinned_now', '', true)::void
$$;
COMMENT ON FUNCTION orderflow.unpin_clock() IS 'Undoes pin_clock(): clock_now() follows the wall clock again.';

-- _iso(ts) → text: ISO 8601 in UTC with milliseconds, the format of every timestamp in the API.
CREATE OR REPLACE FUNCTION orderflow._iso(p_ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT to_char(p_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
COMMENT ON FUNCTION orderflow._iso(timestamptz) IS
    'Internal: formats a timestamp as ISO 8601 UTC with milliseconds (null stays null).';
