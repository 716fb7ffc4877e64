-- Webhooks, their deliveries and the attempt log. Times are microseconds since the Unix epoch.
-- The outbox these deliveries come from belongs to the half that emits the events (its table
-- `outbox`: seq, id, tenant_id, event_type, created_at, payload).
CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY,          -- whk_<32 hex>
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,             -- JSON array of event types
    active               INTEGER NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    format               TEXT NOT NULL,             -- standard | splunk_hec | sekoia | slack
    sourcetype           TEXT,                      -- splunk_hec
    batch_max            INTEGER NOT NULL,
    batch_ms             INTEGER NOT NULL,
    max_in_flight        INTEGER NOT NULL,
    header_names         TEXT NOT NULL,             -- JSON array; the values are sealed
    has_auth_token       INTEGER NOT NULL,
    -- SecretBox-sealed JSON {secret, previous, headers, auth_token, intake_key}, bound to the id.
    sealed               TEXT NOT NULL,
    previous_expires_at  INTEGER,                   -- the rotated-out secret signs until then
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        INTEGER,                   -- first failure since the last success
    last_success_at      INTEGER,
    last_failure_at      INTEGER,
    last_error           TEXT,
    disabled_reason      TEXT,
    created_by           TEXT,
    active_since_seq     INTEGER NOT NULL,          -- outbox seq when it was created or enabled again: later events are delivered
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, id);

-- One row per (webhook, event): the delivery's state and when it is next due.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,               -- outbox.seq
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    state           TEXT NOT NULL,                  -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE state != 'pending';

-- Every HTTP request made to a webhook: automatic deliveries, replays and tests.
CREATE TABLE webhook_attempts (
    id               INTEGER PRIMARY KEY,
    webhook_id       TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    attempted_at     INTEGER NOT NULL,
    trigger          TEXT NOT NULL,                 -- delivery | test
    message_id       TEXT NOT NULL,                 -- the webhook-id header
    event_ids        TEXT NOT NULL,                 -- JSON array
    event_type       TEXT NOT NULL,                 -- of the first event
    attempt          INTEGER NOT NULL,              -- 1 for a first attempt
    status_code      INTEGER,
    error            TEXT,
    latency_us       INTEGER NOT NULL,
    response_excerpt TEXT NOT NULL,
    outcome          TEXT NOT NULL,                 -- delivered | retrying | failed | test
    next_attempt_at  INTEGER
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
CREATE INDEX webhook_attempts_time ON webhook_attempts (attempted_at);

-- How far the dispatcher has fanned the outbox out into deliveries. Starts at the outbox's end:
-- no webhook existed before this table did.
CREATE TABLE webhook_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM outbox;
