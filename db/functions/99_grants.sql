-- Grants, re-applied after every function file at start-up. orderflow_api (the HTTP front's
-- role) may execute exactly the functions the front calls; orderflow_operator (people) may read
-- the operator views and the tables below and execute the operator functions; PUBLIC may
-- execute none; the clock's pin and everything else stay with the owner. Both lists are exact:
-- everything is revoked first, so a function or table added later is nobody's until named here.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA orderflow FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA orderflow FROM orderflow_api;
REVOKE ALL ON ALL TABLES IN SCHEMA orderflow FROM orderflow_api;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA orderflow FROM orderflow_operator;
REVOKE ALL ON ALL TABLES IN SCHEMA orderflow FROM orderflow_operator;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA orderflow FROM orderflow_operator;
GRANT EXECUTE ON FUNCTION
    orderflow.process_order(text, numeric, text),
    orderflow.process_order_request(text, jsonb),
    orderflow.create_order_idempotent(text, jsonb),
    orderflow.get_workflow(text),
    orderflow.get_order(text),
    orderflow.cancel_order(text, text),
    orderflow.cancel_order_request(text, jsonb),
    orderflow.resume_due(integer),
    orderflow.janitor_tick(integer),
    orderflow.janitor_tick_report(integer),
    orderflow.publish_outbox(integer),
    orderflow.workflow_counts(),
    orderflow.process_order_http(text, jsonb, text, text),
    orderflow.cancel_order_http(text, jsonb, text),
    orderflow.claim_effects(integer, text, boolean),
    orderflow.report_effect(bigint, uuid, jsonb, text),
    orderflow.report_effect(text, bigint, uuid, jsonb, text),
    orderflow.read_events(text, integer),
    orderflow.provider_health(),
    orderflow.step_health()
TO orderflow_api;

-- orderflow_operator: what a person on call needs, decided function by function (every function
-- without a leading underscore in db/functions):
--   granted, they steer: set_stock, inject_fault (every form: the scoped ones, fail and custom,
--     are the drills for a live system), resume_now, cancel_order, prune, set_provider, reset_circuit, redrive,
--     add_webhook, set_webhook, enable_webhook, remove_webhook, rotate_webhook_secret (add and
--     rotate show the new secret once, to whoever makes it; an existing secret is never shown);
--   granted, they read: get_workflow, get_order, list_workflows, workflow_counts,
--     provider_health, read_events (the same answers the front and /metrics give);
--   granted, because the views call them and a view's functions run with the reader's rights:
--     clock_now and _may_pin (stuck_workflows; the pin stays the owner's: _may_pin asks about
--     the session's login) and _steps (step_stats, stuck_workflows), each read-only; and the
--     SECURITY DEFINER functions that ledger, provider_effects, webhook_subscriptions and
--     dead_letters select from (_read_ledger, _read_provider_effects,
--     _read_webhook_subscriptions, _read_dead_letters), each returning exactly its view's rows:
--     those views read tables the operator is not granted, and on Citus a view reads the shards
--     with its reader's rights, not its owner's (47_webhooks.sql), where a function runs as its
--     owner on every node. Column grants on those tables would do on both too, but would let an
--     operator read them beyond what the views show;
--   not granted, the client's requests: process_order, process_order_request,
--     process_order_http, create_order_idempotent, cancel_order_request, cancel_order_http
--     (an operator cancels with cancel_order);
--   not granted, the server's own machinery: claim_effects and report_effect (a lease taken by a
--     person is a call nobody sends), resume_due, janitor_tick, publish_outbox (resume_now is the
--     operator's form of the janitor, for one order);
--   not granted: pin_clock, advance_clock, unpin_clock (owner only: tests and drills on a test
--     system), webhook_signature (a building block of deliveries), every other _helper.
--   granted, the history and the console (75_history.sql, 76_retry.sql, 78_console.sql):
--     order_history, step_report, retry_workflow, console_overview, console_order,
--     console_action, console_redrive (the console runs as orderflow_operator); and the
--     history table itself, read-only (what happened, no secret in it).
GRANT EXECUTE ON FUNCTION
    orderflow.set_stock(text, integer),
    orderflow.inject_fault(text, integer, boolean),
    orderflow.inject_fault(text, integer, boolean, text),
    orderflow.inject_fault(text, integer, text, integer, text, text),
    orderflow.resume_now(text),
    orderflow.cancel_order(text, text),
    orderflow.prune(interval),
    orderflow.set_provider(text, text, jsonb),
    orderflow.reset_circuit(text),
    orderflow.redrive(text, text, text, timestamptz, integer, numeric, bigint),
    orderflow.add_webhook(text, text[], boolean),
    orderflow.set_webhook(bigint, jsonb),
    orderflow.enable_webhook(bigint),
    orderflow.remove_webhook(bigint),
    orderflow.rotate_webhook_secret(bigint),
    orderflow.get_workflow(text),
    orderflow.get_order(text),
    orderflow.list_workflows(text, text, timestamptz, timestamptz, text, text, integer),
    orderflow.workflow_counts(),
    orderflow.provider_health(),
    orderflow.read_events(text, integer),
    orderflow.order_history(text),
    orderflow.step_report(interval),
    orderflow.step_health(),
    orderflow.retry_workflow(text),
    orderflow.console_overview(),
    orderflow.console_order(text),
    orderflow.console_action(text, text, text, text),
    orderflow.console_redrive(bigint, text),
    orderflow.clock_now(),
    orderflow._may_pin(),
    orderflow._steps(),
    orderflow._read_ledger(),
    orderflow._read_provider_effects(),
    orderflow._read_webhook_subscriptions(),
    orderflow._read_dead_letters()
TO orderflow_operator;
-- Reading: the operator views, and the tables that are state or rules an operator looks at.
-- Not orderflow.webhooks (its secret and previous_secret columns: webhook_subscriptions shows
-- the rest), nor idempotency_keys (clients' keys and stored answers: get_order), payments (the
-- ledger view), effects (provider_effects, dead_letters), outbox (read_events), each read only
-- through its views' functions above, and not the
-- internal counters and stripes (finished_counts, finished_count_deltas, circuit_calls,
-- rate_buckets: workflow_counts and provider_health read them). No table is writable: every
-- change goes through a function (retry_policies and effect_policies are tuned by the owner).
GRANT SELECT ON
    orderflow.ledger,
    orderflow.step_stats,
    orderflow.stuck_workflows,
    orderflow.provider_effects,
    orderflow.webhook_subscriptions,
    orderflow.dead_letters,
    orderflow.settings,
    orderflow.orders,
    orderflow.workflows,
    orderflow.workflow_steps,
    orderflow.inventory,
    orderflow.reservations,
    orderflow.faults,
    orderflow.retry_policies,
    orderflow.workflow_statuses,
    orderflow.workflow_transitions,
    orderflow.step_errors,
    orderflow.providers,
    orderflow.currencies,
    orderflow.effect_policies,
    orderflow.provider_outcomes,
    orderflow.provider_object_statuses,
    orderflow.event_types,
    orderflow.circuits,
    orderflow.circuit_transitions,
    orderflow.history
TO orderflow_operator;
