-- One live (waiting or active) queue token per user and schedule, as a constraint: parallel
-- joins on PostgreSQL made several. Older duplicates are expired first, keeping the first taken.
UPDATE queue_tokens SET status = 'expired'
WHERE status IN ('waiting', 'active') AND EXISTS (
    SELECT 1 FROM queue_tokens o
    WHERE o.user_id = queue_tokens.user_id AND o.schedule_id = queue_tokens.schedule_id
      AND o.status IN ('waiting', 'active')
      AND (o.created_at < queue_tokens.created_at
           OR (o.created_at = queue_tokens.created_at AND o.token < queue_tokens.token))
);
CREATE UNIQUE INDEX queue_tokens_one_live ON queue_tokens (user_id, schedule_id)
    WHERE status IN ('waiting', 'active');
