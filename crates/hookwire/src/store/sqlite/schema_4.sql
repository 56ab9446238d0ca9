-- Version 4 (the web app): attempts by time, for the overview's charts and
-- per-webhook success rates; pending deliveries by license, for queue depth.
-- (Version 3 is reserved for a migration on another branch.)

CREATE INDEX attempts_by_at ON attempts (at);
CREATE INDEX deliveries_pending_by_license ON deliveries (license_id, created_at) WHERE state = 'pending';
