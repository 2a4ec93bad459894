-- Point wallets, the append-only ledger, and one payment row per reservation.
CREATE TABLE wallets (
    user_id TEXT PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0),
    charged_total BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- kind: charge | debit | refund. Entries are only ever inserted.
CREATE TABLE ledger (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    reservation_id TEXT,
    balance_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_user ON ledger (user_id, created_at);
-- At most one debit and one refund per reservation, whatever arrives twice.
CREATE UNIQUE INDEX ledger_once_per_reservation ON ledger (reservation_id, kind)
    WHERE reservation_id IS NOT NULL;

-- status: debited | failed | refunded.
CREATE TABLE payments (
    reservation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
