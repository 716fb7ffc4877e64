//! The response queue: what happened to alerts and cases (an alert created, an alert's status
//! changed, a case created), appended in the same transaction as the change. The responder
//! follows it from a checkpoint: it carries out the rules' actions (open a case, notify) and
//! starts the playbooks whose triggers match, so a crash between the change and the response
//! loses nothing.
use rusqlite::{Connection, params};
use serde_json::Value;
use vigie_core::StoreError;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// Detection raised a new alert (`subject`: the alert's id).
    AlertCreated,
    /// An alert's status changed (`subject`: the alert's id; `detail`: `{"from", "to", "by"}`).
    AlertStatusChanged,
    /// A case was created (`subject`: the case's id).
    CaseCreated,
}

impl ResponseKind {
    /// The name stored and shown (`alert.created`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseKind::AlertCreated => "alert.created",
            ResponseKind::AlertStatusChanged => "alert.status_changed",
            ResponseKind::CaseCreated => "case.created",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<ResponseKind> {
        [ResponseKind::AlertCreated, ResponseKind::AlertStatusChanged, ResponseKind::CaseCreated].into_iter().find(|k| k.as_str() == s)
    }
}

/// Appends to the response queue, inside the caller's transaction (it opens none).
pub fn enqueue(c: &Connection, space_no: i64, kind: ResponseKind, subject: &str, detail: &Value, at_us: i64) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO response_events (space_no, kind, subject, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![space_no, kind.as_str(), subject, detail.to_string(), at_us])?;
    Ok(())
}
