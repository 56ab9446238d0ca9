-- Version 14: ordered delivery (store/rules/ordering.rs), and v3 filters'
-- exclusions logged for a webhook that asks.
--
-- `webhooks.v3_log_filtered` set: an event the v3 webhook's filters
-- exclude still makes a delivery row, in the final state 'filtered', with
-- the exclusion in `deliveries.filtered_by`; never attempted.
--
-- `webhooks.ordered_since` is when a webhook was made ordered (NULL: it is
-- not); deliveries made since carry their event's ordering key in
-- `deliveries.order_key` (a chat, visitor or ticket id; NULL for an
-- unordered webhook's, and for an event without one). A delivery waiting
-- behind an earlier unfinished one of its key is parked: due at the largest
-- integer, never claimed until that one finishes.
--
-- Two indexes, each holding only keyed deliveries in some states, so every
-- probe reads a few rows whatever a key's history: `deliveries_line` the
-- unfinished ones (the claim's "nothing earlier unfinished", ingest's
-- "anything unfinished", the wake-up's "first in line"), and
-- `deliveries_line_failed` the failed ones (the log's "went on past"). An
-- unordered webhook's deliveries never enter either; a keyed delivery
-- leaves the first when it finishes. (One index of all keyed deliveries
-- made each probe walk the key's history: a chat of 200 events cost a
-- claim 200 rows.)
--
-- ALTER TABLE ADD COLUMN cannot say IF NOT EXISTS: see schema_13.sql.
-- Mirrored by store/postgres/schema_13.sql.

ALTER TABLE webhooks ADD COLUMN ordered_since INTEGER;
ALTER TABLE deliveries ADD COLUMN order_key TEXT;
ALTER TABLE webhooks ADD COLUMN v3_log_filtered INTEGER;
ALTER TABLE deliveries ADD COLUMN filtered_by TEXT;
CREATE INDEX IF NOT EXISTS deliveries_line ON deliveries (webhook_id, order_key, id)
    WHERE order_key IS NOT NULL AND state IN ('pending', 'held');
CREATE INDEX IF NOT EXISTS deliveries_line_failed ON deliveries (webhook_id, order_key, id)
    WHERE order_key IS NOT NULL AND state = 'failed';
