-- Version 2 (PostgreSQL): signing secrets (sealed by the engine's cipher),
-- the previous secret during rotation, and endpoint health. Mirrors
-- store/sqlite/schema_3.sql.

ALTER TABLE webhooks ADD COLUMN signing_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_signing_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_until BIGINT;
-- When the current run of failed attempts began; NULL after a success.
ALTER TABLE webhooks ADD COLUMN failing_since BIGINT;
