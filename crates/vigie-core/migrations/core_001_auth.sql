-- Tenants, users and API tokens. Times are microseconds since the Unix epoch.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    email             TEXT NOT NULL,                 -- lower-cased; unique within the tenant
    display_name      TEXT NOT NULL DEFAULT '',
    role              TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'active', 'inactive')),
    password_hash     TEXT,                          -- argon2id PHC string
    invite_hash       BLOB,                          -- SHA-256 of the invitation token
    invite_expires_at INTEGER,
    invited_by        TEXT,
    session_version   INTEGER NOT NULL DEFAULT 1,    -- bumped to revoke every login token
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_login_at     INTEGER,
    UNIQUE (tenant_id, email)
);
CREATE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id, id);
CREATE UNIQUE INDEX users_invite ON users (invite_hash) WHERE invite_hash IS NOT NULL;

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer', 'ingest')),
    token_hash    BLOB NOT NULL UNIQUE,              -- SHA-256 of the token; the token is never stored
    prefix        TEXT NOT NULL,                     -- the first characters, to recognise a token in a list
    created_by    TEXT,                              -- label of the creator, for display
    created_by_user TEXT REFERENCES users(id),       -- the creating user: their tokens go when they do
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, id);
CREATE INDEX api_tokens_creator ON api_tokens (created_by_user) WHERE created_by_user IS NOT NULL;
