-- Why a hold was released (payment_failed | expired | cancelled), so a late payment is refused
-- with the right reason.
ALTER TABLE holds ADD COLUMN release_reason TEXT;
