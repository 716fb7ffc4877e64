-- Facts: a narrow, dictionary-encoded copy of each event's flat fields (`facts.rs`), built in
-- the background from the log, so an aggregation over a long range reads ~60 bytes per event
-- instead of parsing its body. Searches read facts up to the builder's checkpoint ("facts")
-- and the log itself after it, so they never miss an event.

-- Every distinct value a fact holds, as its JSON text ('"chatgpt"', '0.95', '["IBAN"]').
CREATE TABLE fact_values (
    id    INTEGER PRIMARY KEY,
    value TEXT NOT NULL UNIQUE
);

CREATE TABLE event_facts (
    space_no             INTEGER NOT NULL,
    timestamp            INTEGER NOT NULL,
    seq                  INTEGER NOT NULL,
    source               INTEGER,
    event_type           INTEGER,
    tenant_id            INTEGER,
    platform_id          INTEGER,
    user_id              INTEGER,
    user_email           INTEGER,
    risk_score           INTEGER,
    risk_level           INTEGER,
    classification_count INTEGER,
    classification_type  INTEGER,
    policy_name          INTEGER,
    policy_action        INTEGER,
    alert_severity       INTEGER,
    direction            INTEGER,
    interaction_type     INTEGER,
    model                INTEGER,
    PRIMARY KEY (space_no, timestamp, seq)
) WITHOUT ROWID;
