-- Version 12 (PostgreSQL; mirrors store/sqlite/schema_13.sql): LiveChat v3.x
-- webhooks beside v2. A v3 webhook is a `webhooks` row with `v3_version`
-- set, its action in `event_type` and its additional data in `data_types`;
-- a v3 event is an `events` row with its action in `event_type`, its
-- payload in `v3_payload` and what its deliveries add in `v3_extra`.
-- Written to be run again.

ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_version TEXT;
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_kind TEXT;
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_owner_client_id TEXT;
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_secret_key TEXT;
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_filters TEXT;
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS v3_description TEXT;
ALTER TABLE events ADD COLUMN IF NOT EXISTS v3_payload TEXT;
ALTER TABLE events ADD COLUMN IF NOT EXISTS v3_extra TEXT;

CREATE INDEX IF NOT EXISTS webhooks_v3_by_owner
    ON webhooks (license_id, v3_owner_client_id, event_type) WHERE deleted_at IS NULL AND v3_version IS NOT NULL;

CREATE TABLE IF NOT EXISTS v3_license_webhooks (
    license_id      TEXT NOT NULL,
    owner_client_id TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (license_id, owner_client_id)
);

CREATE TABLE IF NOT EXISTS license_organizations (
    license_id      TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL
);
