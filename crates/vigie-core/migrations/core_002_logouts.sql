-- Login tokens ended by logging out of the console before their expiry: the SHA-256 of the
-- token, kept until the token would have expired anyway.
CREATE TABLE ended_sessions (
    hash        TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);
