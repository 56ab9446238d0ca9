-- Version 8: one attempt of each delivery is kept in the delivery's own row
-- (`first_*`), and only the attempts after it get rows in `attempts`.
--
-- Most deliveries are done in one attempt, and an `attempts` row cost three
-- b-tree writes (the table, `attempts_by_delivery`, `attempts_by_at`) on
-- top of the update every record makes to its delivery anyway (docs/performance-log.md,
-- 5cdf568, has what it measured).
-- The delivery log reads both places and orders a delivery's attempts by
-- time. Deliveries from before this version keep the attempts they have in
-- `attempts`; their next attempt goes into their row, so `first_*` is "the
-- first attempt recorded since version 8", which for every delivery created
-- since is its first attempt. PostgreSQL keeps every attempt in `attempts`
-- (the same change measured no gain there).

ALTER TABLE deliveries ADD COLUMN first_at INTEGER;
ALTER TABLE deliveries ADD COLUMN first_status INTEGER;
ALTER TABLE deliveries ADD COLUMN first_latency_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN first_error TEXT;
ALTER TABLE deliveries ADD COLUMN first_excerpt TEXT;
-- The web app's charts: a license's attempts by time (with `attempts_by_at`).
CREATE INDEX IF NOT EXISTS deliveries_first_attempt_by_license
    ON deliveries (license_id, first_at) WHERE first_at IS NOT NULL;
