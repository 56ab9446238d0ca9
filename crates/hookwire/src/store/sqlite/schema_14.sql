-- Version 14: ordered delivery (store/rules/ordering.rs).
--
-- `webhooks.ordered_since` is when a webhook was made ordered (NULL: it is
-- not); deliveries made since carry their event's ordering key in
-- `deliveries.order_key` (a chat, visitor or ticket id; NULL for an
-- unordered webhook's, and for an event without one). A delivery waiting
-- behind an earlier unfinished one of its key is parked: due at the largest
-- integer, never claimed until that one finishes.
--
-- The index holds only keyed deliveries, whatever their state, so the
-- claim's "nothing earlier unfinished" probe, ingest's "anything
-- unfinished" probe and the log's "went after failed" read one key's short
-- history; an unordered webhook's deliveries never enter it, and a state
-- change does not touch it.
--
-- ALTER TABLE ADD COLUMN cannot say IF NOT EXISTS: see schema_13.sql.
-- Mirrored by store/postgres/schema_13.sql.

ALTER TABLE webhooks ADD COLUMN ordered_since INTEGER;
ALTER TABLE deliveries ADD COLUMN order_key TEXT;
CREATE INDEX IF NOT EXISTS deliveries_ordered ON deliveries (webhook_id, order_key, id) WHERE order_key IS NOT NULL;
