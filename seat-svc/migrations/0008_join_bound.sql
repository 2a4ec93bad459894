-- A join used to count every live token of its schedule to learn whether the new token is
-- admitted: in a rush, with thousands in line, that count was the largest part of seat-svc's
-- one writer. A token now keeps an upper bound of the live tokens ahead of it when it joined
-- (tokens only leave the line ahead of it, so it stays a bound); the next token's is that plus
-- one, read from the last token in line. Only a bound that reaches the active limit is counted.
-- NULL: not known (tokens from before): the next join counts.
ALTER TABLE queue_tokens ADD COLUMN ahead_bound BIGINT;
