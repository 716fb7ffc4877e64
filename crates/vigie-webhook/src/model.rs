//! Webhooks as the API shows and takes them, their validation, and their rows.
use crate::format::Format;
use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use vigie_core::clock::from_micros;
use vigie_core::http::FieldError;

/// What the API shows in place of a secret value (a header's, the auth token's, the intake
/// key's). Sent back unchanged in an update, it keeps the stored value.
pub const HIDDEN: &str = "********";
/// The most webhooks a tenant may have.
pub const MAX_WEBHOOKS: i64 = 100;
/// The most custom headers on one webhook.
pub const MAX_HEADERS: usize = 20;
/// Headers Vigie sets itself; a webhook cannot override them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "expect",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

/// Default batch size of the SIEM formats.
pub const DEFAULT_BATCH_MAX: u32 = 100;
/// Default time a partial SIEM batch waits for more events.
pub const DEFAULT_BATCH_MS: u32 = 1000;
/// Default requests in flight to one webhook.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 16;

/// A webhook's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Active, and the last delivery succeeded (or none was made yet).
    Healthy,
    /// Active, and the last deliveries failed: they are being retried.
    Failing,
    /// Not delivering: turned off, or disabled by the receiver (410) or five days of failure.
    Disabled,
}

/// A webhook as the API shows it. Secret values are never shown: header values, the auth token
/// and the intake key read `********`; the signing secret only in the answers that create it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    /// `whk_…`.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The event types delivered.
    pub events: Vec<String>,
    /// Whether events are delivered.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// Custom headers added to every delivery (values hidden).
    pub headers: BTreeMap<String, String>,
    /// `********` when a bearer token is set, else absent.
    pub auth_token: Option<String>,
    /// `standard`, `splunk_hec`, `sekoia` or `slack`.
    pub format: String,
    /// Splunk `sourcetype` (splunk_hec).
    pub sourcetype: Option<String>,
    /// `********` when a Sekoia.io intake key is set (sekoia).
    pub intake_key: Option<String>,
    /// SIEM formats: the most events in one request.
    pub batch_max: u32,
    /// SIEM formats: how long a partial batch waits for more events, in milliseconds.
    pub batch_ms: u32,
    /// Requests in flight to this webhook at most.
    pub max_in_flight: u32,
    /// healthy, failing or disabled.
    pub status: Health,
    /// Why the webhook was disabled, when it was by the receiver or by failures.
    pub disabled_reason: Option<String>,
    /// Failed requests since the last success.
    pub consecutive_failures: i64,
    /// Failing continuously since.
    pub failing_since: Option<DateTime<Utc>>,
    /// The last successful delivery.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last failed delivery.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// What the last failure was.
    pub last_error: Option<String>,
    /// Deliveries waiting (due now or scheduled for a retry).
    pub pending_deliveries: i64,
    /// After a rotation, the old secret signs beside the new one until then.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A webhook with its signing secret: the answer of create and rotate-secret, the only times
/// the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    pub signing_secret: String,
}

/// A new webhook. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://…` (plain http and private addresses only with `--allow-private-webhooks`).
    pub url: String,
    /// Event types to deliver (at least one).
    pub events: Vec<String>,
    /// Default true.
    pub active: Option<bool>,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// Headers added to every delivery (a SIEM's credential goes here).
    pub headers: Option<BTreeMap<String, String>>,
    /// Sent as `Authorization: Bearer <auth_token>`.
    pub auth_token: Option<String>,
    /// `standard` (default), `splunk_hec`, `sekoia` or `slack`.
    pub format: Option<String>,
    /// Splunk `sourcetype` (default `vigie:event`).
    pub sourcetype: Option<String>,
    /// Sekoia.io intake key (required by the sekoia format).
    pub intake_key: Option<String>,
    /// SIEM formats: 1–1000 events per request (default 100).
    pub batch_max: Option<u32>,
    /// SIEM formats: 0–60000 ms a partial batch waits (default 1000).
    pub batch_ms: Option<u32>,
    /// 1–64 requests in flight (default 16).
    pub max_in_flight: Option<u32>,
}

/// A change to a webhook; absent fields stay. `headers` is replaced whole (a value of
/// `********` keeps that header's stored value); an empty `auth_token` or `intake_key` removes
/// it. Setting `active` to true clears a disablement and the failure count.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Deliver or not.
    pub active: Option<bool>,
    /// New description.
    pub description: Option<String>,
    /// New headers (replaced whole).
    pub headers: Option<BTreeMap<String, String>>,
    /// New bearer token; empty removes it.
    pub auth_token: Option<String>,
    /// New format.
    pub format: Option<String>,
    /// New sourcetype.
    pub sourcetype: Option<String>,
    /// New intake key; empty removes it.
    pub intake_key: Option<String>,
    /// New batch size.
    pub batch_max: Option<u32>,
    /// New batch wait.
    pub batch_ms: Option<u32>,
    /// New concurrency.
    pub max_in_flight: Option<u32>,
}

/// Fields a GET returns that an update ignores (so a client can send back what it read).
pub const READ_ONLY: &[&str] = &[
    "status",
    "disabled_reason",
    "consecutive_failures",
    "failing_since",
    "last_success_at",
    "last_failure_at",
    "last_error",
    "pending_deliveries",
    "previous_secret_expires_at",
    "signing_secret",
];

/// The secrets of a webhook, stored sealed as one JSON document bound to the webhook's id.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    /// The current signing secret (`whsec_…`).
    pub secret: String,
    /// The rotated-out secret, while it still signs.
    #[serde(default)]
    pub previous: Option<String>,
    /// Custom headers with their values.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Bearer token.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Sekoia.io intake key.
    #[serde(default)]
    pub intake_key: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(redacted)")
    }
}

/// A webhook's settings after validation: what a row holds apart from health.
#[derive(Debug, Clone)]
pub struct Spec {
    /// URL.
    pub url: String,
    /// Event types, deduplicated, in the order given.
    pub events: Vec<String>,
    /// Active.
    pub active: bool,
    /// Description.
    pub description: String,
    /// Format.
    pub format: Format,
    /// Splunk sourcetype.
    pub sourcetype: Option<String>,
    /// Batch size (1 for `standard`).
    pub batch_max: u32,
    /// Batch wait.
    pub batch_ms: u32,
    /// Concurrency.
    pub max_in_flight: u32,
}

/// Whether `name` is an HTTP header name (an RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks event types against the known ones; returns them deduplicated.
pub fn check_events(events: &[String], known: &[&str], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if events.is_empty() {
        errors.push(FieldError::new("events", format!("name at least one event type: {}", known.join(", "))));
    }
    for (i, e) in events.iter().enumerate() {
        let e = e.trim().to_ascii_lowercase();
        if !known.contains(&e.as_str()) {
            let shown: String = e.chars().take(60).collect();
            errors
                .push(FieldError::new(format!("events[{i}]"), format!("{shown:?} is not an event type; use one of {}", known.join(", "))));
        } else if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Checks custom headers; `auth_token_set` forbids an `Authorization` header beside the token.
pub fn check_headers(headers: &[(String, String)], auth_token_set: bool, errors: &mut Vec<FieldError>) {
    if headers.len() > MAX_HEADERS {
        errors.push(FieldError::new("headers", format!("at most {MAX_HEADERS} headers")));
    }
    for (i, (name, value)) in headers.iter().enumerate() {
        let field = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if headers[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            errors.push(FieldError::new(field, "the same header twice (names are case-insensitive)"));
        } else if !is_token(name) || name.len() > 100 {
            errors.push(FieldError::new(field, "not a valid header name (letters, digits and !#$%&'*+-.^_`|~, up to 100)"));
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            errors.push(FieldError::new(field, "set by Vigie itself; it cannot be overridden"));
        } else if lower == "authorization" && auth_token_set {
            errors.push(FieldError::new(field, "auth_token already sends Authorization: Bearer; use one or the other"));
        } else if value.len() > 4096 || value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            errors.push(FieldError::new(field, "a header value has at most 4096 characters and no control characters"));
        }
    }
}

/// Checks a secret sent in a header (a bearer token, an intake key): at most 4096 characters,
/// no control characters (a line break would break every request).
pub fn check_secret_value(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    if value.len() > 4096 || value.bytes().any(|b| b < 0x20 || b == 0x7f) {
        errors.push(FieldError::new(field, "at most 4096 characters, no control characters"));
    }
}

/// Checks the scalar settings, filling defaults; pushes one error per problem.
#[allow(clippy::too_many_arguments)]
pub fn check_settings(
    description: &str,
    format: &str,
    sourcetype: Option<&str>,
    batch_max: u32,
    batch_ms: u32,
    max_in_flight: u32,
    intake_key_set: bool,
    errors: &mut Vec<FieldError>,
) -> Format {
    if description.chars().count() > 500 {
        errors.push(FieldError::new("description", "at most 500 characters"));
    }
    let f = Format::parse(format).unwrap_or_else(|| {
        let names: Vec<_> = Format::ALL.iter().map(|f| f.as_str()).collect();
        errors.push(FieldError::new("format", format!("not a format; use one of {}", names.join(", "))));
        Format::Standard
    });
    if sourcetype.is_some_and(|s| s.is_empty() || s.len() > 100) {
        errors.push(FieldError::new("sourcetype", "1 to 100 characters"));
    }
    if !(1..=1000).contains(&batch_max) {
        errors.push(FieldError::new("batch_max", format!("{batch_max} is outside 1..1000")));
    }
    if batch_ms > 60_000 {
        errors.push(FieldError::new("batch_ms", format!("{batch_ms} is outside 0..60000 (milliseconds)")));
    }
    if !(1..=64).contains(&max_in_flight) {
        errors.push(FieldError::new("max_in_flight", format!("{max_in_flight} is outside 1..64")));
    }
    if f == Format::Sekoia && !intake_key_set {
        errors.push(FieldError::new("intake_key", "the sekoia format needs the intake key of the Sekoia.io intake"));
    }
    f
}

/// The columns [`from_row`] reads, in order; `pending_deliveries` counted (from the partial
/// index of pending rows) only when the API shows it.
pub fn cols(count_pending: bool) -> String {
    let pending = if count_pending {
        "(SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = webhooks.id AND d.state = 'pending')"
    } else {
        "0"
    };
    format!(
        "id, url, events, active, description, format, sourcetype, batch_max, batch_ms, max_in_flight, header_names, \
         has_auth_token, sealed, previous_expires_at, consecutive_failures, failing_since, last_success_at, last_failure_at, \
         last_error, disabled_reason, created_by, created_at, updated_at, {pending}, tenant_id"
    )
}

/// A webhook row: what the API shows, and the sealed secrets.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The API view.
    pub webhook: Webhook,
    /// The sealed secrets.
    pub sealed: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// Continuous failure start, in microseconds.
    pub failing_since_us: Option<i64>,
    /// Rotation overlap end, in microseconds.
    pub previous_expires_us: Option<i64>,
    /// Creation, in microseconds.
    pub created_us: i64,
}

fn json_col<T: serde::de::DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

/// Reads a row selected with [`cols`].
pub fn from_row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    let names: Vec<String> = json_col(r, 10)?;
    let active: bool = r.get(3)?;
    let failures: i64 = r.get(14)?;
    let has_token: bool = r.get(11)?;
    let format: String = r.get(5)?;
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> { Ok(r.get::<_, Option<i64>>(i)?.map(from_micros)) };
    let webhook = Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        events: json_col(r, 2)?,
        active,
        description: r.get(4)?,
        headers: names.into_iter().map(|n| (n, HIDDEN.to_owned())).collect(),
        auth_token: has_token.then(|| HIDDEN.to_owned()),
        intake_key: (format == Format::Sekoia.as_str()).then(|| HIDDEN.to_owned()),
        format,
        sourcetype: r.get(6)?,
        batch_max: r.get(7)?,
        batch_ms: r.get(8)?,
        max_in_flight: r.get(9)?,
        status: if !active {
            Health::Disabled
        } else if failures > 0 {
            Health::Failing
        } else {
            Health::Healthy
        },
        disabled_reason: r.get(19)?,
        consecutive_failures: failures,
        failing_since: time(15)?,
        last_success_at: time(16)?,
        last_failure_at: time(17)?,
        last_error: r.get(18)?,
        pending_deliveries: r.get(23)?,
        previous_secret_expires_at: time(13)?,
        created_by: r.get(20)?,
        created_at: from_micros(r.get(21)?),
        updated_at: from_micros(r.get(22)?),
    };
    Ok(Stored {
        sealed: r.get(12)?,
        tenant_id: r.get(24)?,
        failing_since_us: r.get(15)?,
        previous_expires_us: r.get(13)?,
        created_us: r.get(21)?,
        webhook,
    })
}

/// One request made to a webhook, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    /// Attempt id (the log's cursor).
    pub id: i64,
    /// When the request was sent.
    pub attempted_at: DateTime<Utc>,
    /// `delivery` (automatic or replayed) or `test`.
    pub trigger: String,
    /// The `webhook-id` header: the event's id for one event, the same on every retry.
    pub message_id: String,
    /// The events the request carried.
    pub event_ids: Vec<String>,
    /// The type of the first event.
    pub event_type: String,
    /// 1 for a first attempt (counted again from 1 after a replay).
    pub attempt: i64,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// The network error, if it did not.
    pub error: Option<String>,
    /// Milliseconds from sending to the end of the answer.
    pub latency_ms: f64,
    /// The first KiB of the answer's body.
    pub response_excerpt: String,
    /// `delivered`, `retrying`, `failed` (the schedule is spent), `disabled` (the webhook was
    /// disabled by this answer) or `test`.
    pub outcome: String,
    /// When a retry is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The columns [`attempt_from_row`] reads.
pub const ATTEMPT_COLS: &str = "id, attempted_at, trigger, message_id, event_ids, event_type, attempt, status_code, error, latency_us, \
     response_excerpt, outcome, next_attempt_at";

/// Reads an attempt row selected with [`ATTEMPT_COLS`].
pub fn attempt_from_row(r: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: r.get(0)?,
        attempted_at: from_micros(r.get(1)?),
        trigger: r.get(2)?,
        message_id: r.get(3)?,
        event_ids: json_col(r, 4)?,
        event_type: r.get(5)?,
        attempt: r.get(6)?,
        status_code: r.get(7)?,
        error: r.get(8)?,
        latency_ms: r.get::<_, i64>(9)? as f64 / 1000.0,
        response_excerpt: r.get(10)?,
        outcome: r.get(11)?,
        next_attempt_at: r.get::<_, Option<i64>>(12)?.map(from_micros),
    })
}

/// The answer of the test endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestResult {
    /// Whether the receiver answered 2xx.
    pub success: bool,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// The network error, if it did not.
    pub error: Option<String>,
    /// Milliseconds from sending to the end of the answer.
    pub latency_ms: f64,
    /// The first KiB of the answer's body.
    pub response_body: String,
    /// The test event's id (also its `webhook-id`).
    pub event_id: String,
}

/// What to deliver again: one event, or every subscribed event of a time range.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// One event (`evt_…`).
    pub event_id: Option<String>,
    /// Range start (RFC 3339), with `to`.
    pub from: Option<DateTime<Utc>>,
    /// Range end (RFC 3339, exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Only events whose delivery failed for good (default false: every event in the range).
    #[serde(default)]
    pub failed_only: bool,
}

/// The answer of a replay.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayResult {
    /// Deliveries queued (new or reset to their first attempt).
    pub queued: u64,
}
