-- 007_cheaper_key_check: the same rule for idempotency keys (1..255 printable ASCII characters),
-- checked without a bounded repetition in a regex, which PostgreSQL's regex engine expands: the
-- old check cost 28 µs per inserted key, this one 0.5 µs (20 000 keys, psql \timing).
ALTER TABLE orderflow.idempotency_keys DROP CONSTRAINT idempotency_keys_key_check;
ALTER TABLE orderflow.idempotency_keys ADD CONSTRAINT idempotency_keys_key_check
    CHECK (octet_length(key) BETWEEN 1 AND 255 AND key !~ '[^\x20-\x7e]');
