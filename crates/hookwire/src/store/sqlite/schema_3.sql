-- Version 3: safety. Signing secrets (sealed by the engine's cipher, never
-- plaintext), the previous secret during rotation, and endpoint health.

ALTER TABLE webhooks ADD COLUMN signing_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_signing_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_until INTEGER;
-- When the current run of failed attempts began; NULL after a success.
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
