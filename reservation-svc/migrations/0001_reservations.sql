-- Reservations as the user sees them; status follows the saga's events.
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    schedule_id TEXT NOT NULL,
    seat_ids TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX reservations_user ON reservations (user_id, created_at);
