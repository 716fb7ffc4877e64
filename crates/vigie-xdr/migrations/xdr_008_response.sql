-- Response (issue 8): the response queue the responder follows (rule actions, playbook triggers).
CREATE TABLE response_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    space_no INTEGER NOT NULL,
    kind     TEXT NOT NULL,                       -- alert.created | alert.status_changed | case.created
    subject  TEXT NOT NULL,                       -- the alert's or the case's id
    detail   TEXT NOT NULL DEFAULT '{}',          -- JSON
    at       INTEGER NOT NULL                     -- µs
);
