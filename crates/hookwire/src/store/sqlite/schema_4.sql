-- Version 4 (the web app): attempts by time, for the overview's charts and
-- per-webhook success rates; pending deliveries by license, for queue depth.

CREATE INDEX IF NOT EXISTS attempts_by_at ON attempts (at);
CREATE INDEX IF NOT EXISTS deliveries_pending_by_license ON deliveries (license_id, created_at) WHERE state = 'pending';
