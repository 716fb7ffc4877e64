//! The outbox: events written in the same transaction as the change they describe, so an event
//! exists if and only if that change was committed. The dispatcher fans them out by `seq`.
//!
//! The table belongs to the half that emits (the firewall's migration creates it):
//! `outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, tenant_id, event_type,
//! created_at, payload)`, `seq` assigned by the single writer in commit order.
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;
use uuid::Uuid;
use vigie_core::StoreError;

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

/// The id an event gets on the wire (`evt_` and the UUID).
pub fn event_id(id: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    format!("evt_{}", id.hyphenated().encode_lower(&mut buf))
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
    let id = event_id(id);
    let payload = serde_json::to_string(&Envelope { id: &id, kind, timestamp: at, source, tenant_id, data })?;
    let mut buf = Uuid::encode_buffer();
    conn.prepare_cached("INSERT INTO outbox (id, tenant_id, event_type, created_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![id, tenant_id.hyphenated().encode_lower(&mut buf) as &str, kind, at.timestamp_micros(), payload])?;
    Ok(id)
}
