-- Version 13: LiveChat v3.x webhooks (store/v3_webhooks.rs) beside v2.
--
-- A v3 webhook is a `webhooks` row like a v2 one (URL, health, signing
-- secret, rate limit and the delivery queue are shared), with `event_type`
-- holding its v3 action, `data_types` the additional data it asked for
-- (bit 1 chat_properties, bit 2 chat_presence_user_ids), and `v3_version`
-- set; v2 rows keep `v3_version` NULL. `v3_secret_key` is sealed like every
-- secret. A v3 event is an `events` row whose `event_type` is its action,
-- with its payload's JSON text in `v3_payload` and what its deliveries add
-- (the organization id and the context's additional data) in `v3_extra`.
--
-- ALTER TABLE ADD COLUMN cannot say IF NOT EXISTS: a test that rolls a
-- database back to an older version drops these columns first. The tables
-- and indexes are written to be run again.
-- Mirrored by store/postgres/schema_12.sql.

ALTER TABLE webhooks ADD COLUMN v3_version TEXT;
ALTER TABLE webhooks ADD COLUMN v3_kind TEXT;
ALTER TABLE webhooks ADD COLUMN v3_owner_client_id TEXT;
ALTER TABLE webhooks ADD COLUMN v3_secret_key TEXT;
ALTER TABLE webhooks ADD COLUMN v3_filters TEXT;
ALTER TABLE webhooks ADD COLUMN v3_description TEXT;
ALTER TABLE events ADD COLUMN v3_payload TEXT;
ALTER TABLE events ADD COLUMN v3_extra TEXT;

CREATE INDEX IF NOT EXISTS webhooks_v3_by_owner
    ON webhooks (license_id, v3_owner_client_id, event_type) WHERE deleted_at IS NULL AND v3_version IS NOT NULL;

-- Whether an application's license webhooks fire on a license: off until
-- enabled (LiveChat enables them when the application is installed).
CREATE TABLE IF NOT EXISTS v3_license_webhooks (
    license_id      TEXT NOT NULL,
    owner_client_id TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (license_id, owner_client_id)
) WITHOUT ROWID;

-- A license's organization id (the v3 envelope's `organization_id`),
-- generated when first needed and settable by the platform.
CREATE TABLE IF NOT EXISTS license_organizations (
    license_id      TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL
) WITHOUT ROWID;
