-- POST /api/orders/process with a new orderId per request: the statement of src/sql_calls.cc
-- (of_process_order: process_order_request(orderId, body)). pgbench cannot build strings, so the
-- JSON body the HTTP client sends is assembled from three parameters (wf_head, the numeric id,
-- wf_tail) and its orderId read back from it; that is the only difference from the front's
-- statement and costs well under a microsecond.
\set i :i + 1
\set id :run * 1000000000000 + :client_id * 100000000 + :i
SELECT orderflow.process_order_request(b->>'orderId', b)::text FROM (SELECT (:wf_head::text || :id || :wf_tail)::jsonb AS b) AS request;
