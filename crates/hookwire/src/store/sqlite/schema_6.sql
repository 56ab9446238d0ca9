-- Version 6: per-event tokens name their event (`secret::event_token`), so
-- the REST call-back finds the event by its unique id, and new events store
-- no token hash ('': the column is NOT NULL, and SQLite cannot drop that
-- without rebuilding the table). The index on the random hash, which dirtied
-- a random page per ingested event, goes; tokens issued before this version
-- are still found by their hash through an index of only the rows that have one.

CREATE INDEX IF NOT EXISTS events_by_legacy_token ON events (token_hash) WHERE token_hash <> '';
DROP INDEX IF EXISTS events_by_token;
