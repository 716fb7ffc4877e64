-- The XDR's tables. Times are microseconds since the Unix epoch.
CREATE TABLE spaces (
    id             TEXT PRIMARY KEY,              -- UUIDv7
    name           TEXT NOT NULL UNIQUE,
    retention_days INTEGER NOT NULL DEFAULT 1095,
    created_at     INTEGER NOT NULL
);

-- API keys: space-level, scoped, stored as SHA-256 of the key (shown once).
CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,              -- UUIDv7
    space_id       TEXT NOT NULL REFERENCES spaces(id),
    name           TEXT NOT NULL,
    hash           TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the key
    prefix         TEXT NOT NULL,                 -- the first characters, to recognise a key
    scopes         TEXT NOT NULL,                 -- JSON array
    default_source TEXT,
    sealed_secret  TEXT,                          -- SecretBox of a whsec_ signing secret, bound to the key id
    expires_at     INTEGER,
    revoked_at     INTEGER,
    last_used_at   INTEGER,
    created_by     TEXT,
    created_at     INTEGER NOT NULL
);
CREATE INDEX api_keys_space ON api_keys (space_id, id);

-- The event log: append-only, ordered by seq (assigned by the single writer in commit order).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id    TEXT NOT NULL,
    id          TEXT NOT NULL,                    -- the event's id (given, or a UUIDv7)
    received_at INTEGER NOT NULL,
    timestamp   INTEGER NOT NULL,                 -- the event's own time, else received_at
    event_type  TEXT,
    source      TEXT NOT NULL,
    body        TEXT NOT NULL                     -- the normalised event: flat fields and dotted paths
);
CREATE UNIQUE INDEX events_id ON events (space_id, id);
CREATE INDEX events_time ON events (space_id, timestamp, seq);
CREATE INDEX events_type_time ON events (space_id, event_type, timestamp, seq);

-- Webhook deliveries already taken (their webhook-id), so a redelivery is acknowledged with the
-- same answer and stored once.
CREATE TABLE intake_messages (
    space_id    TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    event_ids   TEXT NOT NULL,                    -- JSON array: the answer given
    received_at INTEGER NOT NULL,
    PRIMARY KEY (space_id, message_id)
) WITHOUT ROWID;

-- Where each consumer of the log (detection, intel matching) has got to.
CREATE TABLE consumer_checkpoints (
    name       TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
