-- Where a rebuild of the availability view is written, before it is compared and merged.
CREATE TABLE seat_view_rebuild (
    seat_id TEXT PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reservation_id TEXT,
    last_seq BIGINT NOT NULL
);
