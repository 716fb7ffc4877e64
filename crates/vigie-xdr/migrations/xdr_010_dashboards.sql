-- Dashboards: a space's lists of widgets (pipe queries with a render and a size), stored as
-- data. At most one per space is its default (the console's home page).
CREATE TABLE dashboards (
    id              TEXT PRIMARY KEY,                -- UUIDv7
    space_no        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    default_range   TEXT NOT NULL,                   -- 24h | 7d | 30d
    refresh_seconds INTEGER NOT NULL DEFAULT 0,      -- 0: no auto-refresh
    is_default      INTEGER NOT NULL DEFAULT 0,
    widgets         TEXT NOT NULL,                   -- JSON array of widgets, checked when saved
    builtin         TEXT,                            -- the default content's key, else null
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX dashboards_space_name ON dashboards (space_no, name);
CREATE UNIQUE INDEX dashboards_space_default ON dashboards (space_no) WHERE is_default = 1;

-- The spaces created before dashboards existed: they get the default dashboard once, at the
-- next start (`dashboards::install_pending`).
CREATE TABLE dashboards_pending (space_no INTEGER PRIMARY KEY);
INSERT INTO dashboards_pending (space_no) SELECT no FROM spaces;
