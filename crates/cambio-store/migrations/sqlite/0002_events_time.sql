-- Audit events are purged by age across all realms (the events retention setting); without
-- an index on time alone every purge would scan the whole table.
CREATE INDEX IF NOT EXISTS events_time ON events (time);
