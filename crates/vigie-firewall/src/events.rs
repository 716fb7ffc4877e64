//! The events the firewall emits, and the outbox they wait in. Every event is written in the
//! same transaction as the change it describes, so an event exists if and only if that change
//! was committed. The webhook dispatcher drains the outbox by `seq`.
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;
use uuid::Uuid;
use vigie_core::StoreError;

/// Every interaction recorded.
pub const INTERACTION_CREATED: &str = "interaction.created";
/// An interaction matched a policy (block, coach or log).
pub const INTERACTION_POLICY_VIOLATED: &str = "interaction.policy_violated";
/// An interaction's risk is in the high band or above (≥ 0.7).
pub const INTERACTION_HIGH_RISK: &str = "interaction.high_risk";
/// A policy was created.
pub const POLICY_CREATED: &str = "policy.created";
/// A policy was changed (including enabled or disabled).
pub const POLICY_UPDATED: &str = "policy.updated";
/// A policy was deleted.
pub const POLICY_DELETED: &str = "policy.deleted";
/// A test delivery.
pub const WEBHOOK_TEST: &str = "webhook.test";

/// Every event type a webhook can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    INTERACTION_CREATED,
    INTERACTION_POLICY_VIOLATED,
    INTERACTION_HIGH_RISK,
    "alert.severity_critical",
    "alert.severity_high",
    "alert.severity_medium",
    "alert.severity_low",
    POLICY_CREATED,
    POLICY_UPDATED,
    POLICY_DELETED,
    WEBHOOK_TEST,
];

/// The event type of an alert of `severity` (`alert.severity_high`…).
pub fn alert_event_type(severity: crate::model::Severity) -> &'static str {
    match severity {
        crate::model::Severity::Critical => "alert.severity_critical",
        crate::model::Severity::High => "alert.severity_high",
        crate::model::Severity::Medium => "alert.severity_medium",
        crate::model::Severity::Low => "alert.severity_low",
    }
}

/// The envelope every event is delivered in.
#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: DateTime<Utc>,
    source: &'a str,
    tenant_id: Uuid,
    data: &'a D,
}

/// Writes one event into the outbox on `conn` (inside the caller's transaction) and returns its
/// id (`evt_…`).
pub fn emit<D: Serialize>(
    conn: &Connection,
    id: Uuid,
    source: &str,
    tenant_id: Uuid,
    kind: &str,
    at: DateTime<Utc>,
    data: &D,
) -> Result<String, StoreError> {
    let mut buf = Uuid::encode_buffer();
    let id = format!("evt_{}", id.hyphenated().encode_lower(&mut buf));
    let payload = serde_json::to_string(&Envelope { id: &id, kind, timestamp: at, source, tenant_id, data })?;
    conn.prepare_cached("INSERT INTO outbox (id, tenant_id, event_type, created_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![id, tenant_id.hyphenated().encode_lower(&mut buf) as &str, kind, at.timestamp_micros(), payload])?;
    Ok(id)
}
