-- Grants, re-applied after every function file at start-up. orderflow_api (the HTTP front's
-- role) may execute exactly the functions the front calls; PUBLIC may execute none; the operator
-- functions (set_stock, inject_fault, prune, pin_clock, ...) stay with the owner.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA orderflow FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA orderflow FROM orderflow_api;
REVOKE ALL ON ALL TABLES IN SCHEMA orderflow FROM orderflow_api;
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
    orderflow.read_events(text, integer),
    orderflow.provider_health()
TO orderflow_api;
