-- hookwire schema, version 1 (SQLite). Times are milliseconds since the epoch.

CREATE TABLE licenses (
    license_id   TEXT PRIMARY KEY,
    api_key_hash TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    license_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    data_types      INTEGER NOT NULL,
    url             TEXT NOT NULL,
    token           TEXT NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
CREATE INDEX webhooks_by_license_event ON webhooks (license_id, event_type) WHERE deleted_at IS NULL;

CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,
    unique_id        TEXT NOT NULL UNIQUE,
    license_id       TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    chat             TEXT,
    visitor          TEXT,
    pre_chat_survey  TEXT,
    ticket           TEXT,
    token_hash       TEXT NOT NULL,
    token_expires_at INTEGER NOT NULL,
    received_at      INTEGER NOT NULL
);
CREATE INDEX events_by_token ON events (token_hash);

CREATE TABLE deliveries (
    id                INTEGER PRIMARY KEY,
    event_seq         INTEGER NOT NULL,
    webhook_id        TEXT NOT NULL,
    license_id        TEXT NOT NULL,
    data_types        INTEGER NOT NULL,
    state             TEXT NOT NULL,
    attempts_in_round INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    lease_until       INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_by_license ON deliveries (license_id, id);

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY,
    delivery_id      INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    status           INTEGER,
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    response_excerpt TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);

-- The last tag set seen per chat, for the chat_changed rule.
CREATE TABLE chat_tags (
    license_id TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    tags       TEXT NOT NULL,
    PRIMARY KEY (license_id, chat_id)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    body_hash  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    deliveries INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE visitors (
    license_id      TEXT NOT NULL,
    visitor_id      TEXT NOT NULL,
    name            TEXT,
    email           TEXT,
    last_event_type TEXT NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    PRIMARY KEY (license_id, visitor_id)
) WITHOUT ROWID;
