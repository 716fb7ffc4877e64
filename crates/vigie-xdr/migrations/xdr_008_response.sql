-- Response (issue 8): the response queue the responder follows (rule actions, playbook triggers).
CREATE TABLE response_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    space_no INTEGER NOT NULL,
    kind     TEXT NOT NULL,                       -- alert.created | alert.status_changed | case.created
    subject  TEXT NOT NULL,                       -- the alert's or the case's id
    detail   TEXT NOT NULL DEFAULT '{}',          -- JSON
    at       INTEGER NOT NULL                     -- µs
);

-- Playbooks: the YAML as written, compiled when saved and when loaded.
CREATE TABLE playbooks (
    id           TEXT PRIMARY KEY,                -- UUIDv7
    space_no     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL,                   -- the YAML
    trigger_type TEXT NOT NULL,                   -- alert_created | alert_status_changed | case_created | event | schedule | manual
    trigger_spec TEXT NOT NULL DEFAULT '{}',      -- JSON: the trigger's filters (rules, severities, to, query, cron)
    enabled      INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,      -- bumped by every change of the source
    origin       TEXT NOT NULL DEFAULT 'api',     -- api | default | file:<path>
    builtin      TEXT,                            -- the default content's key, else null
    next_fire_at INTEGER,                         -- schedule triggers: the next time it runs (µs)
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    created_by   TEXT,
    updated_by   TEXT
);
CREATE UNIQUE INDEX playbooks_space_name ON playbooks (space_no, name);

-- One run of a playbook: queued by the responder (or by hand, a schedule, an event), run by the
-- runner, each step recorded in playbook_steps as it finishes.
CREATE TABLE playbook_runs (
    id           TEXT PRIMARY KEY,                -- UUIDv7
    space_no     INTEGER NOT NULL,
    playbook_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,                -- the playbook's version it ran
    source       TEXT NOT NULL,                   -- the YAML it ran (a replay runs it again)
    trigger_type TEXT NOT NULL,
    trigger      TEXT NOT NULL,                   -- JSON: what the templates see as `trigger`
    origin       TEXT,                            -- what queued it once ('response:<seq>', 'event:<seq>', 'schedule:<µs>'); null for manual and replays
    replay_of    TEXT,                            -- the run this one replays
    status       TEXT NOT NULL,                   -- queued | running | succeeded | failed | interrupted | cancelled
    error        TEXT,
    queued_at    INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    by           TEXT                             -- 'key:<id>' for manual runs and replays, else the trigger
);
CREATE UNIQUE INDEX playbook_runs_once ON playbook_runs (playbook_id, origin) WHERE origin IS NOT NULL;
CREATE INDEX playbook_runs_playbook ON playbook_runs (playbook_id, id);
CREATE INDEX playbook_runs_space ON playbook_runs (space_no, id);
CREATE INDEX playbook_runs_pending ON playbook_runs (status, id) WHERE status IN ('queued', 'running');

CREATE TABLE playbook_steps (
    run_id      TEXT NOT NULL,
    idx         INTEGER NOT NULL,                 -- order of execution
    step_id     TEXT NOT NULL,
    type        TEXT NOT NULL,
    status      TEXT NOT NULL,                    -- succeeded | failed | dry_run
    inputs      TEXT NOT NULL DEFAULT 'null',     -- JSON: the rendered arguments
    output      TEXT NOT NULL DEFAULT 'null',     -- JSON
    error       TEXT,
    attempts    INTEGER NOT NULL,
    branch      TEXT,                             -- a condition's branch
    started_at  INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

-- Indicators of compromise recorded by playbooks (add_ioc), for the threat-intelligence work.
CREATE TABLE iocs (
    id          TEXT PRIMARY KEY,                 -- UUIDv7
    space_no    INTEGER NOT NULL,
    type        TEXT NOT NULL,                    -- platform | domain | url | ip | hash
    value       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    valid_until INTEGER,
    source      TEXT NOT NULL,                    -- 'playbook:<run id>'
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX iocs_space_value ON iocs (space_no, type, value);

-- The analyst on duty: a rule's case assigned to `on-duty` goes to them.
ALTER TABLE spaces ADD COLUMN on_duty TEXT;
