-- Version 2: custom visitor details posted back by receivers (the REST call-back).

CREATE TABLE visitor_details (
    license_id TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    set_id     TEXT NOT NULL,
    icon       TEXT,
    fields     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (license_id, visitor_id, set_id)
) WITHOUT ROWID;

CREATE INDEX visitors_by_last_seen ON visitors (license_id, last_seen_at);
