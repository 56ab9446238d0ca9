-- Version 11 (PostgreSQL only: a SQLite database has one node, see
-- store/nodes.rs): node heartbeats and who holds each lease.
--
-- Each serving process registers as a node with a random id and refreshes
-- `beat_at` every second with the database's clock (`now()`), so node clocks
-- play no part in deciding who is dead. A node whose `beat_at` is older than
-- a few seconds is declared dead (`taken_over_at`) by a live node, in the
-- same statement that frees its leases: those are the deliveries and alerts
-- whose `leased_by` is its id. Rows declared dead long ago are deleted.
-- `leased_by` is not indexed: claims and records pay nothing for it, and the
-- rare takeover reads the leased range of `deliveries_claimable`.
-- Written to be run again (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS nodes (
    id            BIGINT PRIMARY KEY,
    label         TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    beat_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    taken_over_at TIMESTAMPTZ
);
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS leased_by BIGINT;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS leased_by BIGINT;
