-- Notifications (issue 8): the channels of each space, the queued messages (one row per
-- message and channel, rendered when queued, immutable) and one row per delivery attempt.
-- Times are microseconds since the Unix epoch.

CREATE TABLE notify_channels (
    id            TEXT PRIMARY KEY,                 -- UUIDv7
    space_no      INTEGER NOT NULL,                 -- spaces.no
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,                    -- slack | teams | email | webhook
    enabled       INTEGER NOT NULL,
    min_severity  TEXT NOT NULL,                    -- low | medium | high | critical
    rules         TEXT NOT NULL DEFAULT '[]',       -- JSON array of rule ids or names; empty: every rule
    templates     TEXT NOT NULL DEFAULT '{}',       -- JSON {subject?, body?, html?}: minijinja overrides
    settings      TEXT NOT NULL DEFAULT '{}',       -- JSON of the settings that are not secret
    sealed        TEXT,                             -- the secret settings (JSON), sealed (SecretBox, bound to the id)
    secret_hint   TEXT,                             -- what the API shows of the secret (a masked URL)
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    created_by    TEXT,
    updated_by    TEXT,
    UNIQUE (space_no, name)
);

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,               -- UUIDv7; also the Standard Webhooks message id
    space_no        INTEGER NOT NULL,
    channel_id      TEXT NOT NULL,
    channel_name    TEXT NOT NULL,
    kind            TEXT NOT NULL,                  -- the channel's kind when queued
    source          TEXT NOT NULL,                  -- alert | test | direct
    alert_id        TEXT,
    status          TEXT NOT NULL,                  -- pending | succeeded | failed
    message         TEXT NOT NULL,                  -- JSON: the rendered message (subject, text, html, body, to, ical)
    attempts        INTEGER NOT NULL DEFAULT 0,
    round_start     INTEGER NOT NULL DEFAULT 0,     -- attempts made before the last manual retry
    next_attempt_at INTEGER,                        -- due (or leased until) while pending; NULL once done
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX notifications_space ON notifications (space_no, id);
CREATE INDEX notifications_channel ON notifications (channel_id, id);

CREATE TABLE notification_attempts (
    notification_id TEXT NOT NULL,
    n               INTEGER NOT NULL,               -- 1, 2, …
    at              INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    outcome         TEXT NOT NULL,                  -- succeeded | failed
    http_status     INTEGER,
    smtp_reply      TEXT,
    error           TEXT,
    PRIMARY KEY (notification_id, n)
) WITHOUT ROWID;
