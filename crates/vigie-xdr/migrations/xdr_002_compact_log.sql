-- A smaller event log, for intake speed (issue 5): every event row and its three index entries
-- carried the space's 36-byte id, and the body held the flat fields and the log's own beside the
-- event as sent (a third more bytes). Now a space has a small number that the log carries, and
-- the body is the event exactly as sent; the flat fields are derived when an event is read
-- (`log::shown`). Rows written before this keep their fuller body: reading derives the same view.

ALTER TABLE spaces ADD COLUMN no INTEGER;
UPDATE spaces SET no = rowid;
CREATE UNIQUE INDEX spaces_no ON spaces (no);

CREATE TABLE events_v2 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even once retention empties the log
    space_no    INTEGER NOT NULL,                 -- spaces.no
    id          TEXT NOT NULL,                    -- the event's id (given, or a UUIDv7)
    received_at INTEGER NOT NULL,
    timestamp   INTEGER NOT NULL,                 -- the event's own time, else received_at
    event_type  TEXT,
    source      TEXT NOT NULL,
    body        TEXT NOT NULL                     -- the event exactly as sent (a JSON object)
);
-- The sequence's high-water mark, which DROP TABLE forgets (the log may have been emptied).
CREATE TEMP TABLE xdr_002_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'events';
INSERT INTO events_v2 (seq, space_no, id, received_at, timestamp, event_type, source, body)
    SELECT e.seq, s.no, e.id, e.received_at, e.timestamp, e.event_type, e.source, e.body
    FROM events e JOIN spaces s ON s.id = e.space_id ORDER BY e.seq;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
-- A seq is never given twice, even after retention emptied the log.
DELETE FROM sqlite_sequence WHERE name = 'events';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'events', m FROM (SELECT MAX(s) AS m FROM (SELECT seq AS s FROM temp.xdr_002_seq UNION ALL SELECT MAX(seq) FROM events))
    WHERE m IS NOT NULL;
DROP TABLE temp.xdr_002_seq;
-- Every index ends with the rowid (seq), so (space_no, timestamp) is ordered by seq within a
-- timestamp without naming it.
CREATE UNIQUE INDEX events_id ON events (space_no, id);
CREATE INDEX events_time ON events (space_no, timestamp);
CREATE INDEX events_type_time ON events (space_no, event_type, timestamp);
