-- Version 13 (PostgreSQL; mirrors store/sqlite/schema_14.sql): ordered
-- delivery. `webhooks.ordered_since` is when a webhook was made ordered
-- (NULL: it is not); `deliveries.order_key` is a keyed delivery's ordering
-- key. Two partial indexes hold the keyed deliveries that are unfinished,
-- and those that failed (see the SQLite file). Written to be run again.

ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS ordered_since BIGINT;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS order_key TEXT;
-- A v3 webhook's filters' exclusions logged (state 'filtered', the
-- exclusion in `filtered_by`) when it asks: see the SQLite file.
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_log_filtered BOOLEAN;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS filtered_by TEXT;
CREATE INDEX IF NOT EXISTS deliveries_line ON deliveries (webhook_id, order_key, id)
    WHERE order_key IS NOT NULL AND state IN ('pending', 'held');
CREATE INDEX IF NOT EXISTS deliveries_line_failed ON deliveries (webhook_id, order_key, id)
    WHERE order_key IS NOT NULL AND state = 'failed';
