-- Version 3 (PostgreSQL; mirrors store/sqlite/schema_4.sql): attempts by
-- time, for the web app's charts and success rates; pending deliveries by
-- license, for queue depth.

CREATE INDEX IF NOT EXISTS attempts_by_at ON attempts (at);
CREATE INDEX IF NOT EXISTS deliveries_pending_by_license ON deliveries (license_id, created_at) WHERE state = 'pending';
