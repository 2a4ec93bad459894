-- When the show starts (from seat.held): a confirmed reservation cannot be cancelled after it.
ALTER TABLE reservations ADD COLUMN starts_at BIGINT;
