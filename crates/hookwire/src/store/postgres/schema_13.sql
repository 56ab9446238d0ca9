-- Version 13 (PostgreSQL; mirrors store/sqlite/schema_14.sql): ordered
-- delivery. `webhooks.ordered_since` is when a webhook was made ordered
-- (NULL: it is not); `deliveries.order_key` is a keyed delivery's ordering
-- key. Only keyed deliveries enter the index. Written to be run again.

ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS ordered_since BIGINT;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS order_key TEXT;
CREATE INDEX IF NOT EXISTS deliveries_ordered ON deliveries (webhook_id, order_key, id) WHERE order_key IS NOT NULL;
