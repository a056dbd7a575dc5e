-- POST /orders replaying one key created before the run (of_create_order, same body).
SELECT status, body::text, replayed FROM orderflow.create_order_idempotent(:replay_key, :order_body::jsonb);
