-- The catalog (owned here) and the availability view (a read model fed by seat events).
CREATE TABLE concerts (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    concert_id TEXT NOT NULL REFERENCES concerts (id),
    starts_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX schedules_concert ON schedules (concert_id, starts_at);

CREATE TABLE seats (
    id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules (id),
    position BIGINT NOT NULL,
    label TEXT NOT NULL,
    grade TEXT NOT NULL,
    price BIGINT NOT NULL,
    UNIQUE (schedule_id, label)
);

-- last_seq: the SEAT stream sequence of the event that set the row, so a late or redelivered
-- older event never overwrites a newer status.
CREATE TABLE seat_view (
    seat_id TEXT PRIMARY KEY REFERENCES seats (id),
    schedule_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reservation_id TEXT,
    last_seq BIGINT NOT NULL
);
CREATE INDEX seat_view_schedule ON seat_view (schedule_id, status);
