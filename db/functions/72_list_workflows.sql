-- list_workflows: the operator's list of workflows, newest first, filtered and paged by an
-- opaque cursor (issue 12).
--
-- Order: created_at DESC, order_id DESC. created_at never changes, so a row keeps its place
-- while others arrive; the cursor is the last row's (created_at, order_id) and the next page is
-- the rows strictly below it (keyset paging, no OFFSET): orders created after the first page
-- sort above it and never shift a later page, so paging neither skips nor repeats a row. (A row
-- committed only after the page that would have held it was read is not shown: page again from
-- the start to see it. Its created_at is when its transaction began, not when it committed.)
--
-- Plan: one walk of workflows_by_status (status, created_at, order_id) per status asked for —
-- every status when none is, the unfinished ones only for a step filter (only they wait on a
-- step) — each stopping after limit + 1 rows, merged. The time range and the cursor are index
-- conditions; the prefix and the step are checked on the rows walked (the prefix is not
-- indexed: with a rare prefix on a long history, add a time range). The statement is built for
-- the filters given and planned at each call, with the statistics of the day, so it does not
-- pin enable_seqscan off as the request path does (a cached plan is what that setting guards).

-- _list_cursor(created_at, order_id) → text: the opaque cursor of a list position (base64url of
-- "<microseconds since 1970>:<orderId>").
CREATE OR REPLACE FUNCTION orderflow._list_cursor(p_created_at timestamptz, p_order_id text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT rtrim(translate(encode(convert_to(
               (extract(epoch FROM p_created_at) * 1000000)::bigint || ':' || p_order_id, 'UTF8'),
               'base64'), E'+/\n', '-_'), '=')
$$;
COMMENT ON FUNCTION orderflow._list_cursor(timestamptz, text) IS
    'Internal: the opaque cursor of a list_workflows position (created_at, order_id).';

-- _list_position(cursor) → (created_at, order_id): the position a _list_cursor names; 22023 for
-- anything that is not one.
CREATE OR REPLACE FUNCTION orderflow._list_position(p_cursor text, OUT created_at timestamptz,
                                                    OUT order_id text)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v_text   text;
    v_micros bigint;
BEGIN
    IF char_length(p_cursor) BETWEEN 4 AND 1100 AND p_cursor ~ '^[A-Za-z0-9_-]+$' THEN
        BEGIN
            v_text := convert_from(decode(rpad(translate(p_cursor, '-_', '+/'),
                                               (char_length(p_cursor) + 3) / 4 * 4, '='), 'base64'),
                                   'UTF8');
            IF v_text ~ '^-?[0-9]{1,18}:' THEN
                v_micros := split_part(v_text, ':', 1)::bigint;
                order_id := substr(v_text, position(':' IN v_text) + 1);
                created_at := timestamptz 'epoch' + (v_micros / 1000000) * interval '1 second'
                              + (v_micros % 1000000) * interval '1 microsecond';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            order_id := NULL;  -- not base64, not UTF-8, out of range: not a cursor of ours
        END;
    END IF;
    IF order_id IS NULL OR char_length(order_id) NOT BETWEEN 1 AND 200 OR NOT isfinite(created_at) THEN
        RAISE EXCEPTION 'after must be a cursor returned as "next" by list_workflows' USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._list_position(text) IS
    'Internal: decodes a list_workflows cursor into (created_at, order_id); 22023 when malformed.';

-- list_workflows(status, step, from, to, prefix, after, limit) → jsonb: {"workflows": [...],
-- "next": cursor or null}, newest first. Each entry: orderId, status, amount, item, step (the
-- first unfinished step; null once finished), attempts (of that step; at the provider, the
-- call's), lastError (the workflow's error, else that step's last error), createdAt, updatedAt,
-- nextRetryAt. Every filter is optional and they combine: status (a workflow_statuses row),
-- step (workflows waiting on it), created in [from, to), order id starting with prefix; after
-- is the "next" of the previous page; limit 1..500. next is null on the last page. 22023 for an
-- unknown status or step, from later than to, a bad prefix, a malformed cursor, a bad limit.
CREATE OR REPLACE FUNCTION orderflow.list_workflows(p_status text DEFAULT NULL, p_step text DEFAULT NULL,
                                                    p_from timestamptz DEFAULT NULL,
                                                    p_to timestamptz DEFAULT NULL,
                                                    p_prefix text DEFAULT NULL,
                                                    p_after text DEFAULT NULL,
                                                    p_limit integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_after_at timestamptz;
    v_after_id text;
    v_statuses text[];
    v_upto     text[];
    v_where    text := '';
    v_sql      text;
    v_ids      text[];
    v_page     jsonb;
    v_next     text;
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'limit must be from 1 to 500' USING ERRCODE = '22023';
    END IF;
    IF p_status IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orderflow.workflow_statuses s WHERE s.status = p_status) THEN
        RAISE EXCEPTION 'status must be one of %',
            (SELECT string_agg(s.status, ', ' ORDER BY s.status) FROM orderflow.workflow_statuses s)
            USING ERRCODE = '22023';
    END IF;
    IF p_step IS NOT NULL AND NOT p_step = ANY (orderflow._steps()) THEN
        RAISE EXCEPTION 'step must be one of %', array_to_string(orderflow._steps(), ', ')
            USING ERRCODE = '22023';
    END IF;
    IF p_from > p_to THEN
        RAISE EXCEPTION 'from must not be later than to' USING ERRCODE = '22023';
    END IF;
    IF p_prefix IS NOT NULL THEN
        PERFORM orderflow._check_text('prefix', p_prefix, 200);
    END IF;
    IF p_after IS NOT NULL THEN
        SELECT c.created_at, c.order_id INTO v_after_at, v_after_id FROM orderflow._list_position(p_after) c;
    END IF;

    -- One walk per status; only unfinished workflows wait on a step.
    SELECT array_agg(s.status ORDER BY s.status) INTO v_statuses
      FROM orderflow.workflow_statuses s
     WHERE (p_status IS NULL OR s.status = p_status) AND (p_step IS NULL OR NOT s.finished);
    IF v_statuses IS NULL THEN
        RETURN jsonb_build_object('workflows', '[]'::jsonb, 'next', NULL);
    END IF;
    -- Only the filters given go into the statement (its values are parameters, never text).
    IF p_from IS NOT NULL THEN
        v_where := v_where || ' AND w.created_at >= $1';
    END IF;
    IF p_to IS NOT NULL THEN
        v_where := v_where || ' AND w.created_at < $2';
    END IF;
    IF p_prefix IS NOT NULL THEN
        v_where := v_where || ' AND starts_with(w.order_id, $3)';
    END IF;
    IF p_after IS NOT NULL THEN
        v_where := v_where || ' AND (w.created_at, w.order_id) < ($4, $5)';
    END IF;
    IF p_step IS NOT NULL THEN
        -- Waiting on p_step: it is the first step not completed, that is, of the steps up to it
        -- ($8), the completed ones are all but p_step. One probe of the order's own steps, and
        -- no set-returning function beside it (Citus plans a correlated subquery only without).
        v_upto := (orderflow._steps())[1:array_position(orderflow._steps(), p_step)];
        v_where := v_where || ' AND w.finished_at IS NULL AND (
            SELECT count(*) = cardinality($8) - 1 AND count(*) FILTER (WHERE s.step = $6) = 0
              FROM orderflow.workflow_steps s
             WHERE s.order_id = w.order_id AND s.step = ANY ($8) AND s.completed_at IS NOT NULL)';
    END IF;
    SELECT string_agg(format(
               '(SELECT w.created_at, w.order_id FROM orderflow.workflows w WHERE w.status = %L%s '
               'ORDER BY w.created_at DESC, w.order_id DESC LIMIT $7 + 1)', st, v_where),
               ' UNION ALL ')
      INTO v_sql FROM unnest(v_statuses) AS st;
    EXECUTE 'SELECT array_agg(u.order_id ORDER BY u.created_at DESC, u.order_id DESC) FROM ('
            'SELECT * FROM (' || v_sql || ') b ORDER BY b.created_at DESC, b.order_id DESC LIMIT $7 + 1) u'
       INTO v_ids
      USING p_from, p_to, p_prefix, v_after_at, v_after_id, p_step, p_limit, v_upto;

    SELECT jsonb_agg(jsonb_build_object(
               'orderId', w.order_id,
               'status', w.status,
               'amount', trim_scale(w.amount),
               'item', w.item,
               'step', cur.step,
               'attempts', CASE WHEN cur.step = 'charge' AND e.state = 'open' THEN e.attempts
                                ELSE cur.attempts END,
               'lastError', COALESCE(w.error,
                                     CASE WHEN cur.step = 'charge' AND e.state = 'open'
                                          THEN COALESCE(e.last_error, cur.last_error)
                                          ELSE cur.last_error END),
               'createdAt', orderflow._iso(w.created_at),
               'updatedAt', orderflow._iso(w.updated_at),
               'nextRetryAt', orderflow._iso(CASE WHEN w.next_retry_at = 'infinity'
                                                  THEN e.next_attempt_at ELSE w.next_retry_at END))
             ORDER BY k.n),
           orderflow._list_cursor((array_agg(w.created_at ORDER BY k.n DESC))[1],
                                  (array_agg(w.order_id ORDER BY k.n DESC))[1])
      INTO v_page, v_next
      FROM unnest(v_ids[1:p_limit]) WITH ORDINALITY AS k (order_id, n)
      JOIN orderflow.workflows w ON w.order_id = k.order_id
      LEFT JOIN orderflow.effects e ON e.order_id = w.order_id AND e.kind = 'charge'
      LEFT JOIN LATERAL (
            SELECT st.step, COALESCE(r.attempts, 0) AS attempts, r.last_error
              FROM unnest(orderflow._steps()) WITH ORDINALITY AS st (step, n)
              LEFT JOIN orderflow.workflow_steps r ON r.order_id = w.order_id AND r.step = st.step
             WHERE r.completed_at IS NULL
             ORDER BY st.n LIMIT 1) cur ON w.finished_at IS NULL;
    RETURN jsonb_build_object('workflows', COALESCE(v_page, '[]'::jsonb),
                              'next', CASE WHEN cardinality(v_ids) > p_limit THEN v_next END);
END
$$;
COMMENT ON FUNCTION orderflow.list_workflows(text, text, timestamptz, timestamptz, text, text, integer) IS
    'Operators: workflows newest first (created_at, order_id), filtered by status, the step they wait '
    'on, created in [from, to) and order-id prefix (all optional), paged by the opaque cursor "next" '
    '(passed as after); {workflows, next}. 22023 unknown status or step, from > to, bad prefix, '
    'malformed cursor, limit outside 1..500.';
