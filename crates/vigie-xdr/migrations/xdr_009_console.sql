-- The web console's sessions: a key logged in through the console. The cookie holds a random
-- token; only its SHA-256 is stored. A session ends at its expiry, at log out, or when its key
-- is revoked or expires.
CREATE TABLE console_sessions (
    hash        TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX console_sessions_key ON console_sessions (key_id);
