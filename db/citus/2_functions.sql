-- Citus, part 2 of 2 (opt-in): applied by `orderflow --migrate` after db/functions, only where
-- the citus extension exists. Idempotent.
--
-- Delegated functions: a bare call `SELECT f($1, ...)` or `SELECT ... FROM f($1, ...)` through
-- the coordinator, outside an explicit transaction, runs as a whole on the worker that holds
-- the shard of its distribution argument, against that worker's local shards: one round trip
-- and one single-node transaction. The front's statements (src/sql_calls.cc) have that shape.
-- Inside an explicit transaction (pgTAP, psql with BEGIN) the same functions run on the
-- coordinator, each statement routed to its shard.
DO $$
DECLARE
    v_fn record;
BEGIN
    FOR v_fn IN
        SELECT * FROM (VALUES
            ('orderflow.process_order(text,numeric,text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.process_order_request(text,jsonb)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.process_order_http(text,jsonb,text,text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.get_workflow(text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.cancel_order(text,text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.cancel_order_request(text,jsonb)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.cancel_order_http(text,jsonb,text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.report_effect(text,bigint,uuid,jsonb,text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.resume_now(text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.retry_workflow(text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.order_history(text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.console_order(text)', 'p_order_id', 'orderflow.workflows'),
            ('orderflow.create_order_idempotent(text,jsonb)', 'p_key', 'orderflow.idempotency_keys')
        ) AS f (signature, argument, colocate_with)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_dist_object o
                        WHERE o.classid = 'pg_proc'::regclass
                          AND o.objid = v_fn.signature::regprocedure
                          AND o.distribution_argument_index IS NOT NULL) THEN
            PERFORM create_distributed_function(v_fn.signature::regprocedure, v_fn.argument,
                                                colocate_with => v_fn.colocate_with);
        END IF;
    END LOOP;
END
$$;
