-- Version 7: claims find free due deliveries without walking the leased
-- ones. Pending deliveries by (lease_until, next_attempt_at): unleased ones
-- (lease_until = 0) in due order, and ones whose lease ran out, are each one
-- range of this index; `deliveries_due` (by next_attempt_at alone) made a
-- claim step over every row already leased before it found a free one.
-- webhook_id rides along, so a claim that passes over saturated webhooks
-- filters their rows in the index, without reading the rows themselves.

CREATE INDEX IF NOT EXISTS deliveries_claimable ON deliveries (lease_until, next_attempt_at, webhook_id) WHERE state = 'pending';
DROP INDEX IF EXISTS deliveries_due;
