-- GET /api/orders/{orderId} of a workflow completed before the run (of_get_workflow).
SELECT orderflow.get_workflow(:completed_id)::text;
