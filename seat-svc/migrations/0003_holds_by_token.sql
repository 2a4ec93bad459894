-- A hold checks its queue token has no live hold yet: look holds up by token.
CREATE INDEX holds_token ON holds (token, status);
