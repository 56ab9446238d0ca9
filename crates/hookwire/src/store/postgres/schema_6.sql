-- Version 6 (PostgreSQL; mirrors store/sqlite/schema_7.sql): claims find
-- free due deliveries without walking the leased ones. Pending deliveries by
-- (lease_until, next_attempt_at, webhook_id: a claim passing over saturated
-- webhooks filters in the index): unleased ones (lease_until = 0) in due
-- order, and ones whose lease ran out, are each one range of this index.

CREATE INDEX IF NOT EXISTS deliveries_claimable ON deliveries (lease_until, next_attempt_at, webhook_id) WHERE state = 'pending';
DROP INDEX IF EXISTS deliveries_due;
