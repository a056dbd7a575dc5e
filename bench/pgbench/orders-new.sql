-- POST /orders with a new Idempotency-Key per request: the statement of src/sql_calls.cc
-- (of_create_order) with the same body as the HTTP client. Variables from bench/run.sh (-D):
-- run (this run's number), i (0 at start; per client, kept across transactions), order_body.
-- The key <run><client 4 digits><counter 8 digits> has the shape of the wrk client's keys.
\set i :i + 1
\set key :run * 1000000000000 + :client_id * 100000000 + :i
SELECT status, body::text, replayed FROM orderflow.create_order_idempotent(:key, :order_body::jsonb);
