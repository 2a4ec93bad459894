-- Admission is derived from a token's rank among the live tokens of its schedule (the first
-- QUEUE_ACTIVE_LIMIT are active) instead of being stored: waiting and active tokens are both
-- live, and no admission locks the schedule's row (every join and every ended hold of a
-- schedule queued behind that lock on PostgreSQL).
-- `admitted` remembers that a token was once among the first: tokens only ever leave the line
-- ahead of it, so it stays active while live, and its place is not counted again.
ALTER TABLE queue_tokens ADD COLUMN admitted BIGINT NOT NULL DEFAULT 0;
UPDATE queue_tokens SET admitted = 1 WHERE status = 'active';
DROP INDEX queue_tokens_one_live;
UPDATE queue_tokens SET status = 'live' WHERE status IN ('waiting', 'active');
CREATE UNIQUE INDEX queue_tokens_one_live ON queue_tokens (user_id, schedule_id)
    WHERE status = 'live';
-- The line's order, (created_at, token), in the index that counts who is ahead.
DROP INDEX queue_tokens_schedule;
CREATE INDEX queue_tokens_line ON queue_tokens (schedule_id, status, created_at, token);
-- A user's live token is found through the unique index above.
DROP INDEX queue_tokens_user;
