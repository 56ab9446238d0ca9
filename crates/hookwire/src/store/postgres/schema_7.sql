-- Version 7 (PostgreSQL; mirrors store/sqlite/schema_9.sql): the web app's
-- sign-in sessions and portal links, stored as hashes, shared by every node.
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash     TEXT PRIMARY KEY,
    operator    BOOLEAN NOT NULL,
    license_id  TEXT,
    csrf        TEXT NOT NULL,
    framed      BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at);
CREATE TABLE IF NOT EXISTS portal_links (
    token_hash  TEXT PRIMARY KEY,
    license_id  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_links_expiry ON portal_links (expires_at);
