-- Seat inventory per schedule (built from concert.schedule_opened), holds, and the waiting queue.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    concert_id TEXT NOT NULL,
    starts_at BIGINT NOT NULL
);

-- status: available | held | sold; reservation_id set while held or sold.
CREATE TABLE seats (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules (id),
    label TEXT NOT NULL,
    grade TEXT NOT NULL,
    price BIGINT NOT NULL,
    status TEXT NOT NULL,
    reservation_id TEXT
);
CREATE INDEX seats_schedule ON seats (schedule_id, status);
CREATE INDEX seats_reservation ON seats (reservation_id);

-- One hold per reservation; status: held | sold | released.
CREATE TABLE holds (
    reservation_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    schedule_id TEXT NOT NULL,
    token TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX holds_expiry ON holds (status, expires_at);

CREATE TABLE hold_seats (
    reservation_id TEXT NOT NULL REFERENCES holds (reservation_id),
    seat_id TEXT NOT NULL,
    PRIMARY KEY (reservation_id, seat_id)
);

-- status: waiting | active | expired | done. Queue order is (created_at, token).
CREATE TABLE queue_tokens (
    token TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX queue_tokens_schedule ON queue_tokens (schedule_id, status, created_at);
CREATE INDEX queue_tokens_user ON queue_tokens (user_id, schedule_id, status);
