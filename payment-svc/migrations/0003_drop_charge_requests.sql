-- A charge's Idempotency-Key is kept with every other command's now, by the platform
-- (idempotency_keys, with the answer given): the wallet's own table goes.
DROP TABLE charge_requests;
