-- Version 4 (the web app): attempts by time, for the overview's charts and
-- per-webhook success rates; pending deliveries by license, for queue depth.
-- schema_3.sql belongs to another branch; this file is the next entry of
-- SCHEMA here. It only adds indexes, with IF NOT EXISTS, so it can run again
-- harmlessly once both are merged in order.

CREATE INDEX IF NOT EXISTS attempts_by_at ON attempts (at);
CREATE INDEX IF NOT EXISTS deliveries_pending_by_license ON deliveries (license_id, created_at) WHERE state = 'pending';
