-- A charge sent again with the same Idempotency-Key (a client retrying after a lost answer)
-- charges once: the key, what it charged and the balance it answered are kept per user.
CREATE TABLE charge_requests (
    user_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
