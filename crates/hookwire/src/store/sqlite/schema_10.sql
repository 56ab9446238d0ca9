-- Version 10: operator alerts (store/alerts.rs), hookwire's own events for
-- the operator's endpoint, kept until it acknowledges them. Written only when
-- something changes state, never per delivered attempt.
--
-- `subject` is the webhook an alert is about (for the once-an-hour rules);
-- `open_key` is set while a license's `delivery.failed` batch still takes
-- deliveries, and unique, so at most one batch per license is open.
-- Mirrored by store/postgres/schema_7.sql.
-- Written to be run again (IF NOT EXISTS): a database rolled back to an
-- older version number still holds the table.

CREATE TABLE IF NOT EXISTS alerts (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    license_id      TEXT,
    subject         TEXT,
    data            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    open_key        TEXT UNIQUE,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS alerts_by_license ON alerts (license_id, created_at);
CREATE INDEX IF NOT EXISTS alerts_by_subject ON alerts (kind, subject, created_at);
