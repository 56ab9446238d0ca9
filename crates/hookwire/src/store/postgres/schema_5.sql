-- Version 5 (PostgreSQL; mirrors store/sqlite/schema_6.sql): per-event
-- tokens name their event (`secret::event_token`), so the REST call-back
-- finds the event by its unique id and new events store no token hash
-- (NULL). The index on the random hash goes; tokens issued before this
-- version are still found by their hash through an index of only the rows
-- that have one.

ALTER TABLE events ALTER COLUMN token_hash DROP NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_legacy_token ON events (token_hash) WHERE token_hash IS NOT NULL;
DROP INDEX IF EXISTS events_by_token;
