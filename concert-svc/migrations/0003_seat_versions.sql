-- The view orders a seat's events by the version seat-svc gives each change of the seat (carried
-- in the events), no longer by stream position. Existing rows start over from version 0: run a
-- rebuild (POST /admin/view/rebuild?apply=true) after upgrading.
ALTER TABLE seat_view RENAME COLUMN last_seq TO version;
UPDATE seat_view SET version = 0;
ALTER TABLE seat_view_rebuild RENAME COLUMN last_seq TO version;
