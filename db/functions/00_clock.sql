-- The clock. Every timestamp orderflow writes comes from clock_now(), so pgTAP tests can pin
-- time inside their transaction and test backoff and expiry without sleeping.


-- clock_now() → timestamptz: the time pinned by pin_clock in this transaction, else the wall clock.
-- Declared STABLE so that a comparison with it can use an index: a statement sees one time.
-- PL/pgSQL, not SQL: it cannot be inlined (it reads clock_timestamp()), and a SQL function that
-- is not inlined is planned again in every transaction, while PL/pgSQL keeps its plan.
CREATE OR REPLACE FUNCTION orderflow.clock_now()
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN COALESCE(NULLIF(current_setting('orderflow.pinned_now', true), '')::timestamptz,
                    clock_timestamp());
END
$$;
COMMENT ON FUNCTION orderflow.clock_now() IS
    'The one clock orderflow reads: the time pinned by pin_clock() in this transaction, else clock_timestamp().';

-- pin_clock(at) → timestamptz: clock_now() returns p_at until the end of the current transaction.
CREATE OR REPLACE FUNCTION orderflow.pin_clock(p_at timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF p_at IS NULL THEN
        RAISE EXCEPTION 'pin_clock needs a time' USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('orderflow.pinned_now', p_at::text, true);
    RETURN p_at;
END
$$;
COMMENT ON FUNCTION orderflow.pin_clock(timestamptz) IS
    'Pins clock_now() to p_at until the end of the current transaction (tests and drills).';

-- advance_clock(by) → timestamptz: pins the clock p_by later than clock_now() and returns it.
CREATE OR REPLACE FUNCTION orderflow.advance_clock(p_by interval)
RETURNS timestamptz
LANGUAGE sql VOLATILE
AS $$
    SELECT orderflow.pin_clock(orderflow.clock_now() + p_by)
$$;
COMMENT ON FUNCTION orderflow.advance_clock(interval) IS
    'Pins clock_now() p_by later than it reads now, until the end of the transaction.';

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
