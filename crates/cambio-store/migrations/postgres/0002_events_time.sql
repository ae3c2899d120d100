-- Audit events are purged by age across all realms (the events retention setting); without
-- an index on time alone every purge would scan the whole table. On a large events table,
-- building it blocks event inserts for a while: create it by hand beforehand with
-- `CREATE INDEX CONCURRENTLY events_time ON events (time)` and this step finds it in place.
-- (It cannot be built concurrently here: that waits for the other nodes' sessions, which wait
-- for the migration lock, and PostgreSQL reports a deadlock.)
CREATE INDEX IF NOT EXISTS events_time ON events (time);
