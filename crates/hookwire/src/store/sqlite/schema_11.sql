-- Version 11: retention (store/retention.rs). Finished deliveries, their
-- attempts and events, idle visitors, deleted webhooks and expired
-- idempotency keys are pruned in small batches; these indexes let each
-- batch find its rows without scanning what is kept.
--
-- `license_retention` holds a license's own retention (NULL: the configured
-- default) and the highest delivery id pruned of it, so a request for a
-- pruned delivery is answered "pruned" rather than "no such delivery".
-- A table of its own rather than columns of `licenses`: written to be run
-- again (IF NOT EXISTS), as every migration since version 9.
-- Mirrored by store/postgres/schema_9.sql.

CREATE TABLE IF NOT EXISTS license_retention (
    license_id        TEXT PRIMARY KEY,
    retention_ms      INTEGER,
    pruned_through_id INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Whether an event still has deliveries (an append at the index's end).
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_seq);
-- A license's events in ingest order, for its retention.
CREATE INDEX IF NOT EXISTS events_by_license ON events (license_id, seq);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
CREATE INDEX IF NOT EXISTS visitor_details_by_age ON visitor_details (license_id, updated_at);
CREATE INDEX IF NOT EXISTS webhooks_deleted ON webhooks (license_id, deleted_at) WHERE deleted_at IS NOT NULL;
