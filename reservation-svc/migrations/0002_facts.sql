-- The facts learned about each saga (JSON); status and reason are derived from them.
ALTER TABLE reservations ADD COLUMN facts TEXT NOT NULL DEFAULT '{}';
