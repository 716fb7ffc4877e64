-- The firewall's tables. Times are microseconds since the Unix epoch; ids are UUIDv7 text.
CREATE TABLE policies (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    rules       TEXT NOT NULL,                 -- JSON {action, conditions} as written
    enabled     INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    created_by  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX policies_order ON policies (tenant_id, priority, id);

-- Per-tenant changes to the built-in catalogue, and custom platforms.
CREATE TABLE platforms (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    hosts       TEXT NOT NULL,                 -- JSON array of host names
    vetted      INTEGER NOT NULL,
    builtin     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- No raw text: the hash, lengths, masked classifications and metadata without text or paths.
CREATE TABLE interactions (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    platform_id          TEXT NOT NULL,
    platform_vetted      INTEGER NOT NULL,
    interaction_type     TEXT NOT NULL,
    direction            TEXT NOT NULL,
    source               TEXT NOT NULL,
    user_id              TEXT,
    content_hash         TEXT NOT NULL,
    content_length       INTEGER,
    content_metadata     TEXT,                 -- JSON object
    classifications      TEXT NOT NULL,        -- JSON array, values masked
    classification_count INTEGER NOT NULL,
    risk_score           REAL NOT NULL,
    risk_level           TEXT NOT NULL,
    action               TEXT NOT NULL,
    policy_id            TEXT,
    policy_name          TEXT,
    alert_severity       TEXT
);
CREATE INDEX interactions_tenant ON interactions (tenant_id, id);
CREATE INDEX interactions_user ON interactions (tenant_id, user_id, id);
CREATE INDEX interactions_platform ON interactions (tenant_id, platform_id, id);

-- Events waiting for delivery, written in the same transaction as what they describe.
-- seq is assigned by the single writer in commit order: consumers read by seq.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    tenant_id   TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    payload     TEXT NOT NULL                  -- the JSON envelope {id, type, timestamp, source, tenant_id, data}
);
