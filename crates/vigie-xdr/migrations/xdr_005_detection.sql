-- Detection (issue 7): rules, their statistics, history and correlation windows; alerts with
-- their events, history and comments. Times are microseconds since the Unix epoch.

CREATE TABLE rules (
    id           TEXT PRIMARY KEY,                -- UUIDv7
    space_no     INTEGER NOT NULL,                -- spaces.no
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    severity     INTEGER NOT NULL,                -- 0–100: low 0–39, medium 40–59, high 60–79, critical 80–100
    kind         TEXT NOT NULL,                   -- 'pipe' | 'sigma'
    source       TEXT NOT NULL,                   -- the pipe query, or the Sigma YAML (several documents)
    enabled      INTEGER NOT NULL,
    similarity   TEXT NOT NULL DEFAULT '[]',      -- JSON array of field names
    tags         TEXT NOT NULL DEFAULT '[]',      -- JSON array (MITRE ATT&CK ids)
    actions      TEXT NOT NULL DEFAULT '[]',      -- JSON array of {"type": "alert"|"notify"|"case", …}
    builtin      TEXT,                            -- the default content's key ('default-1' …), else null
    version      INTEGER NOT NULL DEFAULT 1,      -- bumped by every change of what the rule matches
    paused_until INTEGER,                         -- rate limited: no new alert for matches before this (event time)
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    created_by   TEXT,
    updated_by   TEXT
);
CREATE UNIQUE INDEX rules_space_name ON rules (space_no, name);

-- What each rule has done, kept up to date by the detection consumer in its transactions.
CREATE TABLE rule_stats (
    rule_id       TEXT PRIMARY KEY,
    matches       INTEGER NOT NULL DEFAULT 0,     -- events (or windows) that matched
    alerts        INTEGER NOT NULL DEFAULT 0,     -- alerts raised
    occurrences   INTEGER NOT NULL DEFAULT 0,     -- matches folded into an open alert
    suppressed    INTEGER NOT NULL DEFAULT 0,     -- matches while paused by the rate limit
    last_match_at INTEGER,
    last_fired_at INTEGER                         -- last alert raised or occurrence added
) WITHOUT ROWID;

-- A rule's history: created, updated, enabled, disabled, paused, resumed.
CREATE TABLE rule_history (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL,
    at      INTEGER NOT NULL,
    by      TEXT,                                 -- 'key:<id>', 'detection', 'system'
    kind    TEXT NOT NULL,
    detail  TEXT                                  -- JSON
);
CREATE INDEX rule_history_rule ON rule_history (rule_id, id);

-- Correlation state: one row per group of a window of a rule, written in the detection
-- consumer's transaction with its checkpoint (a group fired, expired or evicted is deleted there).
CREATE TABLE rule_windows (
    rule_id TEXT NOT NULL,
    version INTEGER NOT NULL,                     -- the rule's version the state belongs to
    window  INTEGER NOT NULL,                     -- the window of the rule (a Sigma rule may have several)
    h       INTEGER NOT NULL,                     -- the group's id (a fixed hash of its key values)
    state   TEXT NOT NULL,                        -- the group's window (JSON)
    PRIMARY KEY (rule_id, window, h)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,              -- UUIDv7
    short_id       TEXT NOT NULL UNIQUE,          -- 'AL' + 8 characters, for people
    space_no       INTEGER NOT NULL,
    rule_id        TEXT NOT NULL,
    rule_name      TEXT NOT NULL,
    title          TEXT NOT NULL,
    severity       TEXT NOT NULL,                 -- low | medium | high | critical
    urgency        INTEGER NOT NULL,              -- 0–100
    status         TEXT NOT NULL,                 -- pending | acknowledged | ongoing | closed | rejected
    similarity_key TEXT NOT NULL,
    occurrences    INTEGER NOT NULL,
    first_seen     INTEGER NOT NULL,              -- the first matching event's time
    last_seen      INTEGER NOT NULL,
    user_id        TEXT,                          -- the person involved
    platform_id    TEXT,                          -- the AI platform involved
    assignee       TEXT,
    details        TEXT NOT NULL DEFAULT '{}',    -- JSON: the match (the window's row, the event's fields)
    raised_at      INTEGER NOT NULL,              -- the rate limit's clock when raised (processing time)
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX alerts_space_created ON alerts (space_no, created_at, id);
CREATE INDEX alerts_rule_raised ON alerts (rule_id, raised_at);
CREATE INDEX alerts_open_key ON alerts (rule_id, similarity_key) WHERE status IN ('pending', 'acknowledged', 'ongoing');

CREATE TABLE alert_events (
    alert_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,                    -- the event's place in the log
    event_id TEXT NOT NULL,
    PRIMARY KEY (alert_id, seq)
) WITHOUT ROWID;

CREATE TABLE alert_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    at       INTEGER NOT NULL,
    by       TEXT,                                -- 'key:<id>', 'detection'
    kind     TEXT NOT NULL,                       -- created | occurrence | status | assignee | comment | urgency
    from_value TEXT,
    to_value   TEXT,
    comment  TEXT
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, id);

CREATE TABLE alert_comments (
    id         TEXT PRIMARY KEY,                  -- UUIDv7
    alert_id   TEXT NOT NULL,
    author     TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX alert_comments_alert ON alert_comments (alert_id, id);
