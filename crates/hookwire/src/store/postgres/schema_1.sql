-- hookwire schema, version 1 (PostgreSQL). Times are milliseconds since the epoch.
-- Mirrors the SQLite schema (store/sqlite/schema*.sql) table for table.

CREATE TABLE licenses (
    license_id   TEXT PRIMARY KEY,
    api_key_hash TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    license_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    data_types      SMALLINT NOT NULL,
    url             TEXT NOT NULL,
    token           TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);
CREATE INDEX webhooks_by_license_event ON webhooks (license_id, event_type) WHERE deleted_at IS NULL;

CREATE TABLE events (
    seq              BIGSERIAL PRIMARY KEY,
    unique_id        TEXT NOT NULL UNIQUE,
    license_id       TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    chat             TEXT,
    visitor          TEXT,
    pre_chat_survey  TEXT,
    ticket           TEXT,
    token_hash       TEXT NOT NULL,
    token_expires_at BIGINT NOT NULL,
    received_at      BIGINT NOT NULL
);
CREATE INDEX events_by_token ON events (token_hash);

CREATE TABLE deliveries (
    id                BIGSERIAL PRIMARY KEY,
    event_seq         BIGINT NOT NULL,
    webhook_id        TEXT NOT NULL,
    license_id        TEXT NOT NULL,
    data_types        SMALLINT NOT NULL,
    state             TEXT NOT NULL,
    attempts_in_round INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    lease_until       BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
CREATE INDEX deliveries_by_license ON deliveries (license_id, id);

CREATE TABLE attempts (
    id               BIGSERIAL PRIMARY KEY,
    delivery_id      BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    status           INTEGER,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    response_excerpt TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);

CREATE TABLE chat_tags (
    license_id TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    tags       TEXT NOT NULL,
    PRIMARY KEY (license_id, chat_id)
);

CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    body_hash  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    deliveries BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE visitors (
    license_id      TEXT NOT NULL,
    visitor_id      TEXT NOT NULL,
    name            TEXT,
    email           TEXT,
    last_event_type TEXT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    PRIMARY KEY (license_id, visitor_id)
);
CREATE INDEX visitors_by_last_seen ON visitors (license_id, last_seen_at);

CREATE TABLE visitor_details (
    license_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    set_id     TEXT NOT NULL,
    icon       TEXT,
    fields     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (license_id, visitor_id, set_id)
);
