//! What an alert is: the response and request types of the alerts API (the workflow's statuses
//! and Sekoia's actions among them), the severity words, and how a stored alert row reads.
use super::MAX_COMMENT;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vigie_core::clock::from_micros;
use vigie_core::http::{ApiError, FieldError};

/// The severity word of a rule's 0–100 severity: 0–39 low, 40–59 medium, 60–79 high, 80–100
/// critical.
pub fn severity_word(severity: u8) -> &'static str {
    match severity {
        0..=39 => "low",
        40..=59 => "medium",
        60..=79 => "high",
        _ => "critical",
    }
}

/// The severity a word stands for (any case): low 25, medium 50, high 70, critical 90 — each
/// within its [`severity_word`] band.
pub fn severity_number(word: &str) -> Option<u8> {
    ["low", "medium", "high", "critical"]
        .into_iter()
        .zip([25, 50, 70, 90])
        .find(|(w, _)| w.eq_ignore_ascii_case(word.trim()))
        .map(|(_, n)| n)
}

/// Where an alert is in its workflow (Sekoia's default statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised, nobody has looked yet.
    Pending,
    /// Someone is looking at it.
    Acknowledged,
    /// A true positive being handled.
    Ongoing,
    /// Handled (final).
    Closed,
    /// A false positive (final).
    Rejected,
}

impl AlertStatus {
    /// Every status.
    pub const ALL: [AlertStatus; 5] =
        [AlertStatus::Pending, AlertStatus::Acknowledged, AlertStatus::Ongoing, AlertStatus::Closed, AlertStatus::Rejected];

    /// The name, as stored and shown (`pending`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Ongoing => "ongoing",
            AlertStatus::Closed => "closed",
            AlertStatus::Rejected => "rejected",
        }
    }

    /// The status of a name, in any case.
    pub fn parse(s: &str) -> Option<AlertStatus> {
        AlertStatus::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Sekoia's UUID of this status (accepted as an `action_uuid`, as Sekoia's own client sends).
    pub fn sekoia_uuid(self) -> &'static str {
        match self {
            AlertStatus::Pending => "2efc4930-1442-4abb-acf2-58ba219a4fd0",
            AlertStatus::Acknowledged => "8f206505-af6d-433e-93f4-775d46dc7d0f",
            AlertStatus::Ongoing => "1f2f88d5-ff5b-48bf-bbbc-00c2fff82d9f",
            AlertStatus::Closed => "1738b1c1-767d-489e-bada-19176621a007",
            AlertStatus::Rejected => "4f68da89-38e0-4703-a6ab-652f02bdf24e",
        }
    }

    /// Whether the alert still absorbs occurrences (not closed or rejected).
    pub fn is_open(self) -> bool {
        !self.next().is_empty()
    }

    /// The statuses the workflow allows next: pending → acknowledged, ongoing (Sekoia's
    /// Validate) or rejected; acknowledged → ongoing or rejected; ongoing → closed or rejected.
    pub fn next(self) -> &'static [AlertStatus] {
        use AlertStatus::*;
        match self {
            Pending => &[Acknowledged, Ongoing, Rejected],
            Acknowledged => &[Ongoing, Rejected],
            Ongoing => &[Closed, Rejected],
            Closed | Rejected => &[],
        }
    }

    /// The workflow actions available from this status.
    pub fn actions(self) -> Vec<WorkflowAction> {
        self.next().iter().filter_map(|s| WORKFLOW_ACTIONS.iter().find(|a| a.status == *s)).copied().collect()
    }
}

/// A workflow action, as Sekoia names it (its `action_uuid` is accepted by the workflow endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct WorkflowAction {
    /// Sekoia's action UUID.
    pub id: &'static str,
    /// `Acknowledge`, `Validate`, `Reject` or `Close`.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
    /// The status it leads to.
    pub status: AlertStatus,
}

/// Sekoia's four workflow actions, one per status they lead to.
pub const WORKFLOW_ACTIONS: [WorkflowAction; 4] = [
    WorkflowAction {
        id: "937bdabf-6a08-434b-b6d3-d7447e4e452a",
        name: "Acknowledge",
        description: "Someone is looking at the alert",
        status: AlertStatus::Acknowledged,
    },
    WorkflowAction {
        id: "c39a0a95-aa2c-4d0d-8d2e-d3decf426eea",
        name: "Validate",
        description: "The alert is a true positive; it is being handled",
        status: AlertStatus::Ongoing,
    },
    WorkflowAction {
        id: "ade85d7b-7507-4026-bfc6-cc006d10ddac",
        name: "Reject",
        description: "The alert is a false positive",
        status: AlertStatus::Rejected,
    },
    WorkflowAction {
        id: "1390be4e-ced8-4dd6-9bed-573471b235ab",
        name: "Close",
        description: "The alert has been handled",
        status: AlertStatus::Closed,
    },
];

/// The rule that raised an alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertRule {
    /// Rule id.
    pub id: String,
    /// Its name when it raised the alert.
    pub name: String,
}

/// An alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alert {
    /// Alert id (UUIDv7).
    pub id: String,
    /// `AL` and 8 characters, for people; accepted wherever the id is.
    pub short_id: String,
    /// Title.
    pub title: String,
    /// The rule that raised it.
    pub rule: AlertRule,
    /// `low`, `medium`, `high` or `critical` (from the rule's severity).
    pub severity: String,
    /// 0–100; starts at the rule's severity.
    pub urgency: i64,
    /// Where it is in its workflow.
    pub status: AlertStatus,
    /// Matches of the rule with this key fold into the alert while it is open.
    pub similarity_key: String,
    /// Matches folded into it, the first included.
    pub occurrences: i64,
    /// The first matching event's time.
    pub first_seen: DateTime<Utc>,
    /// The last matching event's time.
    pub last_seen: DateTime<Utc>,
    /// The person involved.
    pub user_id: Option<String>,
    /// Their name in the people directory, when it has one.
    pub user_name: Option<String>,
    /// The AI platform involved.
    pub platform_id: Option<String>,
    /// Who handles it.
    pub assignee: Option<String>,
    /// What matched (the window's row, the event's fields).
    pub details: Value,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// Its last change (an occurrence, a status, an assignment…).
    pub updated_at: DateTime<Utc>,
}

/// The columns [`alert_from_row`] reads.
pub(super) const ALERT_COLS: &str = "id, short_id, title, rule_id, rule_name, severity, urgency, status, similarity_key, occurrences, \
     first_seen, last_seen, user_id, platform_id, assignee, details, created_at, updated_at, \
     (SELECT display_name FROM people WHERE people.space_no = alerts.space_no AND people.user_id = alerts.user_id)";

fn conversion(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

/// A stored status that is not one: only a hand edit of the database makes one.
#[derive(Debug)]
struct UnknownStatus(String);

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not an alert status", self.0)
    }
}

impl std::error::Error for UnknownStatus {}

pub(super) fn alert_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let status: String = r.get(7)?;
    let details: String = r.get(15)?;
    Ok(Alert {
        id: r.get(0)?,
        short_id: r.get(1)?,
        title: r.get(2)?,
        rule: AlertRule { id: r.get(3)?, name: r.get(4)? },
        severity: r.get(5)?,
        urgency: r.get(6)?,
        status: AlertStatus::parse(&status).ok_or_else(|| conversion(7, UnknownStatus(status.clone())))?,
        similarity_key: r.get(8)?,
        occurrences: r.get(9)?,
        first_seen: from_micros(r.get(10)?),
        last_seen: from_micros(r.get(11)?),
        user_id: r.get(12)?,
        platform_id: r.get(13)?,
        assignee: r.get(14)?,
        details: serde_json::from_str(&details).map_err(|e| conversion(15, e))?,
        created_at: from_micros(r.get(16)?),
        updated_at: from_micros(r.get(17)?),
        user_name: r.get(18)?,
    })
}

/// A comment on an alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    /// Comment id (UUIDv7).
    pub id: String,
    /// Who wrote it (`key:<id>` unless the request named someone).
    pub author: String,
    /// The text.
    pub content: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An entry of an alert's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// `key:<id>` for a change through the API, `detection` for what detection did.
    pub by: Option<String>,
    /// `created`, `status`, `assignee`, `urgency` or `comment`.
    pub kind: String,
    /// The value before (a status, an assignee, an urgency).
    pub from: Option<String>,
    /// The value after (for `comment`, the comment's id).
    pub to: Option<String>,
    /// The comment given with a status change.
    pub comment: Option<String>,
}

/// An alert with its events, comments and history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertDetail {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// The ids of its events, in log order (at most 1,000: the first that matched).
    pub event_ids: Vec<String>,
    /// Its comments, oldest first.
    pub comments: Vec<Comment>,
    /// Its history, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// An alert after a status change, with the actions now available.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowAnswer {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// The workflow actions allowed from its new status (none once closed or rejected).
    pub actions: Vec<WorkflowAction>,
}

/// Filters of the alert listing (all optional; given together, all must hold).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertListParams {
    /// Only these statuses, comma-separated (`pending,acknowledged`).
    pub status: Option<String>,
    /// Only these severities, comma-separated (`high,critical`).
    pub severity: Option<String>,
    /// Only alerts of this rule.
    pub rule_id: Option<String>,
    /// Only alerts about this person.
    pub user_id: Option<String>,
    /// Only alerts about this AI platform.
    pub platform_id: Option<String>,
    /// Only alerts assigned to this assignee.
    pub assignee: Option<String>,
    /// Raised at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Raised before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Paging of an alert's comments.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CommentListParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A status change: `status`, or Sekoia's `action_uuid` (an action's or a status's UUID).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowChange {
    /// The new status.
    pub status: Option<AlertStatus>,
    /// Sekoia's form: the UUID of an action (Acknowledge, Validate, Reject, Close) or of a status.
    pub action_uuid: Option<String>,
    /// Why, kept in the alert's history (up to 10,000 characters).
    pub comment: Option<String>,
}

impl WorkflowChange {
    /// The status asked for, and the comment.
    pub(super) fn read(self) -> Result<(AlertStatus, Option<String>), ApiError> {
        let mut errors = Vec::new();
        let to = match (self.status, self.action_uuid.as_deref().map(str::trim)) {
            (Some(s), None) => Some(s),
            (None, Some(uuid)) => {
                let by_action = WORKFLOW_ACTIONS.iter().find(|a| a.id.eq_ignore_ascii_case(uuid)).map(|a| a.status);
                let found = by_action.or_else(|| AlertStatus::ALL.into_iter().find(|s| s.sekoia_uuid().eq_ignore_ascii_case(uuid)));
                if found.is_none() {
                    let names: Vec<_> = WORKFLOW_ACTIONS.iter().map(|a| format!("{} {}", a.name, a.id)).collect();
                    errors.push(FieldError::new("action_uuid", format!("is not a workflow action; use one of {}", names.join(", "))));
                }
                found
            }
            (Some(_), Some(_)) => {
                errors.push(FieldError::new("action_uuid", "give status or action_uuid, not both"));
                None
            }
            (None, None) => {
                errors.push(FieldError::new("status", "give the new status (acknowledged, ongoing, closed, rejected) or an action_uuid"));
                None
            }
        };
        let comment = self.comment.filter(|c| !c.trim().is_empty());
        if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
            errors.push(FieldError::new("comment", "at most 10,000 characters"));
        }
        match to {
            Some(to) if errors.is_empty() => Ok((to, comment)),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

use vigie_core::http::present;

/// A change to an alert; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertPatch {
    /// Who handles it (1–100 characters), or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<Option<String>>,
    /// 0–100.
    pub urgency: Option<i64>,
}

/// A new comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The text, 1–10,000 characters.
    pub content: String,
    /// Who wrote it, up to 100 characters; default `key:<id>` of the caller's key.
    pub author: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_and_numbers_agree() {
        for (n, w) in
            [(0, "low"), (39, "low"), (40, "medium"), (59, "medium"), (60, "high"), (79, "high"), (80, "critical"), (100, "critical")]
        {
            assert_eq!(severity_word(n), w, "{n}");
        }
        for w in ["low", "medium", "high", "critical"] {
            assert_eq!(severity_number(w).map(severity_word), Some(w));
        }
        assert_eq!((severity_number(" HIGH "), severity_number("major")), (Some(70), None));
    }

    #[test]
    fn the_workflow_allows_what_sekoia_allows() {
        use AlertStatus::*;
        let allowed: Vec<(AlertStatus, AlertStatus)> =
            AlertStatus::ALL.into_iter().flat_map(|f| f.next().iter().map(move |t| (f, *t))).collect();
        assert_eq!(
            allowed,
            [
                (Pending, Acknowledged),
                (Pending, Ongoing),
                (Pending, Rejected),
                (Acknowledged, Ongoing),
                (Acknowledged, Rejected),
                (Ongoing, Closed),
                (Ongoing, Rejected)
            ]
        );
        let names = |s: AlertStatus| s.actions().iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(
            (names(Pending), names(Acknowledged), names(Ongoing)),
            (vec!["Acknowledge", "Validate", "Reject"], vec!["Validate", "Reject"], vec!["Close", "Reject"])
        );
        assert!(names(Closed).is_empty() && !Rejected.is_open() && Ongoing.is_open());
    }
}
