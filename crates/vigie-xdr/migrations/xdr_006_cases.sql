-- Cases (issue 8): cases with their alerts, events, tasks, comments and timeline; case
-- templates; the people directory. Times are microseconds since the Unix epoch.

CREATE TABLE cases (
    id          TEXT PRIMARY KEY,                 -- UUIDv7
    short_id    TEXT NOT NULL UNIQUE,             -- 'CA' + 8 characters (Crockford's base32), for people
    space_no    INTEGER NOT NULL,                 -- spaces.no
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',         -- Markdown
    severity    TEXT NOT NULL,                    -- low | medium | high | critical
    priority    TEXT NOT NULL,                    -- low | medium | high
    status      TEXT NOT NULL,                    -- open | in_progress | closed (closed is final: read-only)
    assignee    TEXT,
    tags        TEXT NOT NULL DEFAULT '[]',       -- JSON array of strings
    template    TEXT,                             -- the name of the template it was made from
    created_at  INTEGER NOT NULL,
    created_by  TEXT,                             -- 'key:<id>', 'system', 'playbook:<id>', 'rule:<id>'
    updated_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX cases_space_created ON cases (space_no, created_at, id);

CREATE TABLE case_alerts (
    case_id  TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    added_by TEXT,
    PRIMARY KEY (case_id, alert_id)
) WITHOUT ROWID;
CREATE INDEX case_alerts_alert ON case_alerts (alert_id);

CREATE TABLE case_events (
    case_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    added_by TEXT,
    PRIMARY KEY (case_id, event_id)
) WITHOUT ROWID;

CREATE TABLE case_tasks (
    id          TEXT PRIMARY KEY,                 -- UUIDv7
    case_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    assignee    TEXT,
    due_at      INTEGER,
    done        INTEGER NOT NULL DEFAULT 0,
    done_at     INTEGER,
    created_at  INTEGER NOT NULL,
    created_by  TEXT
);
CREATE INDEX case_tasks_case ON case_tasks (case_id, id);

CREATE TABLE case_comments (
    id         TEXT PRIMARY KEY,                  -- UUIDv7
    case_id    TEXT NOT NULL,
    author     TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX case_comments_case ON case_comments (case_id, id);

-- Every change of a case: created, status, assignee, severity, priority, title, description,
-- tags, alert_attached, alert_detached, event_attached, event_detached, task_added, task_done,
-- task_reopened, task_updated, comment.
CREATE TABLE case_timeline (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    by         TEXT,
    kind       TEXT NOT NULL,
    from_value TEXT,
    to_value   TEXT,
    detail     TEXT                               -- JSON, when the change says more than from → to
);
CREATE INDEX case_timeline_case ON case_timeline (case_id, id);

CREATE TABLE case_templates (
    id            TEXT PRIMARY KEY,               -- UUIDv7
    space_no      INTEGER NOT NULL,
    name          TEXT NOT NULL,
    title_pattern TEXT NOT NULL,                  -- a minijinja template
    description   TEXT NOT NULL DEFAULT '',       -- a minijinja template (Markdown)
    severity      TEXT NOT NULL,
    priority      TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',     -- JSON array of strings
    tasks         TEXT NOT NULL DEFAULT '[]',     -- JSON array of {title, description, due_in_days, assignee}
    builtin       TEXT,                           -- the default content's key, else null
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    created_by    TEXT,
    updated_by    TEXT
);
CREATE UNIQUE INDEX case_templates_space_name ON case_templates (space_no, name);

-- The directory: who the events name.
CREATE TABLE people (
    space_no      INTEGER NOT NULL,
    user_id       TEXT NOT NULL,
    display_name  TEXT,
    email         TEXT,
    manager_email TEXT,
    department    TEXT,
    training_date TEXT,                           -- 'YYYY-MM-DD' or NULL
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (space_no, user_id)
) WITHOUT ROWID;
CREATE INDEX people_department ON people (space_no, department, user_id);
