-- Version 9: the web app's sign-in sessions and portal links live in the
-- database, so any node serves any signed-in browser and signing out ends
-- the session everywhere. Ids and tokens are stored as hashes only.
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash     TEXT PRIMARY KEY,
    operator    INTEGER NOT NULL,
    license_id  TEXT,
    csrf        TEXT NOT NULL,
    framed      INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at);
CREATE TABLE IF NOT EXISTS portal_links (
    token_hash  TEXT PRIMARY KEY,
    license_id  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_links_expiry ON portal_links (expires_at);
