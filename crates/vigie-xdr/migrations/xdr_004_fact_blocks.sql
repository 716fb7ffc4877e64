-- Facts in blocks: one row per batch of events of a space (up to 5,000), its facts encoded in
-- one BLOB (`facts.rs`), so the builder adds a few rows per batch instead of one per event and
-- a search decodes blocks instead of stepping rows. The per-event table of xdr_003 is dropped
-- and the facts are built again from the log.
DROP TABLE event_facts;
DELETE FROM consumer_checkpoints WHERE name = 'facts';

-- The dictionary again, with ids never reused (AUTOINCREMENT): an id a rolled-back
-- transaction handed out must not come back as another value's.
DROP TABLE fact_values;
CREATE TABLE fact_values (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    value TEXT NOT NULL UNIQUE
);

CREATE TABLE fact_blocks (
    space_no  INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    min_ts    INTEGER NOT NULL,
    max_ts    INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (space_no, first_seq)
) WITHOUT ROWID;
