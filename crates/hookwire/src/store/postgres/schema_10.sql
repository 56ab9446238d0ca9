-- Version 10 (PostgreSQL; mirrors store/sqlite/schema_12.sql): deliveries
-- held while their webhook is disabled (state 'held'), by license and
-- webhook. Enabling a webhook moves its held deliveries (to 'pending', or to
-- 'discarded'), and the webhook views and the backlog count them: each reads
-- this index, which holds only the rows that are held, so a webhook's long
-- history is never walked and ingest for enabled webhooks writes nothing more.

CREATE INDEX IF NOT EXISTS deliveries_held ON deliveries (license_id, webhook_id, id) WHERE state = 'held';
