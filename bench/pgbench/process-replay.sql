-- POST /api/orders/process replaying a workflow completed before the run (of_process_order,
-- the same body as the HTTP client, so the read path without a lock answers).
SELECT orderflow.process_order_request(:completed_id, :completed_body::jsonb)::text;
