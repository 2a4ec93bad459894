-- No query looks seats up by schedule and status any more (claims name their seats). Without
-- statistics PostgreSQL rated this index as selective as the primary key and claimed seats by
-- walking every available seat of the schedule, and every claim added an entry to it.
DROP INDEX seats_schedule;
