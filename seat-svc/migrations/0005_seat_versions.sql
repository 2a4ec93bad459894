-- Every change of a seat counts up its version, in the transaction that makes it; the events
-- carry it, so the availability view orders a seat's events by it (not by stream position).
ALTER TABLE seats ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
