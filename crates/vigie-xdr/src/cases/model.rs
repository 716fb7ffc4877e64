//! What a case is: the types the cases API shows and takes, the statuses and their workflow,
//! severities and priorities, and how a stored case reads.
use crate::people::Person;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vigie_core::clock::from_micros;
use vigie_core::http::present;

/// Where a case is in its workflow: open → in_progress → closed, or open → closed. Closed is
/// final: a closed case is read-only (reopening is not offered; open a new case that refers to
/// it instead, so the record of what was closed stays as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Opened, nobody works on it yet.
    Open,
    /// Someone works on it.
    InProgress,
    /// Done (final, read-only).
    Closed,
}

impl CaseStatus {
    /// Every status.
    pub const ALL: [CaseStatus; 3] = [CaseStatus::Open, CaseStatus::InProgress, CaseStatus::Closed];

    /// The name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Closed => "closed",
        }
    }

    /// The status of a name (any case).
    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The statuses the workflow allows next.
    pub fn next(self) -> &'static [CaseStatus] {
        match self {
            CaseStatus::Open => &[CaseStatus::InProgress, CaseStatus::Closed],
            CaseStatus::InProgress => &[CaseStatus::Closed],
            CaseStatus::Closed => &[],
        }
    }
}

/// The severities of a case, lowest first.
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
/// The priorities of a case, lowest first.
pub const PRIORITIES: [&str; 3] = ["low", "medium", "high"];

/// `s` as one of `allowed` (any case, trimmed).
pub fn one_of(s: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed.iter().copied().find(|a| a.eq_ignore_ascii_case(s.trim()))
}

/// A case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Case {
    /// Case id (UUIDv7).
    pub id: String,
    /// `CA` and 8 characters, for people; accepted wherever the id is.
    pub short_id: String,
    /// Title.
    pub title: String,
    /// Description (Markdown).
    pub description: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// `low`, `medium` or `high`.
    pub priority: String,
    /// Where it is in its workflow.
    pub status: CaseStatus,
    /// Who handles it.
    pub assignee: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The template it was made from.
    pub template: Option<String>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Who opened it (`key:<id>`, `system`, `playbook:<id>`…).
    pub created_by: Option<String>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
}

/// The columns [`case_from_row`] reads.
pub(super) const CASE_COLS: &str =
    "id, short_id, title, description, severity, priority, status, assignee, tags, template, created_at, created_by, updated_at, closed_at";

fn conversion(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

/// A stored status that is not one: only a hand edit of the database makes one.
#[derive(Debug)]
struct UnknownStatus(String);

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a case status", self.0)
    }
}

impl std::error::Error for UnknownStatus {}

pub(super) fn case_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    let status: String = r.get(6)?;
    let tags: String = r.get(8)?;
    Ok(Case {
        id: r.get(0)?,
        short_id: r.get(1)?,
        title: r.get(2)?,
        description: r.get(3)?,
        severity: r.get(4)?,
        priority: r.get(5)?,
        status: CaseStatus::parse(&status).ok_or_else(|| conversion(6, UnknownStatus(status.clone())))?,
        assignee: r.get(7)?,
        tags: serde_json::from_str(&tags).map_err(|e| conversion(8, e))?,
        template: r.get(9)?,
        created_at: from_micros(r.get(10)?),
        created_by: r.get(11)?,
        updated_at: from_micros(r.get(12)?),
        closed_at: r.get::<_, Option<i64>>(13)?.map(from_micros),
    })
}

/// An alert of a case, as the case shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseAlert {
    /// Alert id.
    pub id: String,
    /// Its short id (`AL…`).
    pub short_id: String,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: String,
    /// Its status.
    pub status: String,
    /// The person involved.
    pub user_id: Option<String>,
    /// Their name in the directory.
    pub user_name: Option<String>,
    /// The AI platform involved.
    pub platform_id: Option<String>,
    /// When it was attached to the case.
    pub attached_at: DateTime<Utc>,
}

/// A task of a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    /// Task id (UUIDv7).
    pub id: String,
    /// The case.
    pub case_id: String,
    /// What to do.
    pub title: String,
    /// How (Markdown).
    pub description: String,
    /// Who does it.
    pub assignee: Option<String>,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// Whether it is done.
    pub done: bool,
    /// When it was done.
    pub done_at: Option<DateTime<Utc>>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Who added it.
    pub created_by: Option<String>,
}

/// The columns [`task_from_row`] reads.
pub(super) const TASK_COLS: &str = "id, case_id, title, description, assignee, due_at, done, done_at, created_at, created_by";

pub(super) fn task_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        case_id: r.get(1)?,
        title: r.get(2)?,
        description: r.get(3)?,
        assignee: r.get(4)?,
        due_at: r.get::<_, Option<i64>>(5)?.map(from_micros),
        done: r.get(6)?,
        done_at: r.get::<_, Option<i64>>(7)?.map(from_micros),
        created_at: from_micros(r.get(8)?),
        created_by: r.get(9)?,
    })
}

/// A comment on a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseComment {
    /// Comment id (UUIDv7).
    pub id: String,
    /// Who wrote it (`key:<id>` unless the request named someone).
    pub author: String,
    /// The text.
    pub content: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An entry of a case's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Its number (increasing; the cursor of the timeline's pages).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`key:<id>`, `system`, `playbook:<id>`…).
    pub by: Option<String>,
    /// `created`, `status`, `assignee`, `severity`, `priority`, `title`, `description`, `tags`,
    /// `alert_attached`, `alert_detached`, `event_attached`, `event_detached`, `task_added`,
    /// `task_done`, `task_reopened`, `task_updated` or `comment`.
    pub kind: String,
    /// The value before.
    pub from: Option<String>,
    /// The value after (an alert's, event's, task's or comment's id for those kinds).
    pub to: Option<String>,
    /// More about the change (a task's changed fields…).
    pub detail: Option<Value>,
}

/// A case with its alerts, events, tasks, comments and latest timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseDetail {
    /// The case.
    #[serde(flatten)]
    pub case: Case,
    /// Its alerts, in the order attached (at most 500 shown).
    pub alerts: Vec<CaseAlert>,
    /// The ids of its events, in the order attached (at most 1,000 shown).
    pub event_ids: Vec<String>,
    /// Its tasks, in the order added.
    pub tasks: Vec<Task>,
    /// Its first comments, oldest first (the rest through `GET …/comments`).
    pub comments: Vec<CaseComment>,
    /// Its newest timeline entries, oldest first (all through `GET …/timeline`).
    pub timeline: Vec<TimelineEntry>,
    /// The directory's entries of the people its alerts name.
    pub people: Vec<Person>,
}

/// A task a template adds to the cases made from it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TemplateTask {
    /// What to do (a template over the same context as the case's), 1–200 characters.
    pub title: String,
    /// How (a template, Markdown).
    #[serde(default)]
    pub description: String,
    /// Due this many days after the case is opened (0–3650); none: no due date.
    pub due_in_days: Option<i64>,
    /// Who does it.
    pub assignee: Option<String>,
}

/// A case template: what a case made from it says.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseTemplate {
    /// Template id (UUIDv7).
    pub id: String,
    /// Its name, unique in the space; cases and playbooks name it.
    pub name: String,
    /// The case's title: a minijinja template over the context (e.g. the alert context).
    pub title_pattern: String,
    /// The case's description: a minijinja template (Markdown).
    pub description: String,
    /// The case's severity.
    pub severity: String,
    /// The case's priority.
    pub priority: String,
    /// The case's tags.
    pub tags: Vec<String>,
    /// The tasks added to the case.
    pub tasks: Vec<TemplateTask>,
    /// The default content's key (`default-case-1`), for a template Vigie ships.
    pub builtin: Option<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
}

/// The columns [`template_from_row`] reads.
pub(super) const TEMPLATE_COLS: &str =
    "id, name, title_pattern, description, severity, priority, tags, tasks, builtin, created_at, updated_at";

pub(super) fn template_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseTemplate> {
    let tags: String = r.get(6)?;
    let tasks: String = r.get(7)?;
    Ok(CaseTemplate {
        id: r.get(0)?,
        name: r.get(1)?,
        title_pattern: r.get(2)?,
        description: r.get(3)?,
        severity: r.get(4)?,
        priority: r.get(5)?,
        tags: serde_json::from_str(&tags).map_err(|e| conversion(6, e))?,
        tasks: serde_json::from_str(&tasks).map_err(|e| conversion(7, e))?,
        builtin: r.get(8)?,
        created_at: from_micros(r.get(9)?),
        updated_at: from_micros(r.get(10)?),
    })
}

/// A case template as written (`POST` and `PUT /api/v1/case-templates…`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// 1–100 characters, unique in the space.
    pub name: String,
    /// The case's title (a minijinja template), 1–1,000 characters.
    pub title_pattern: String,
    /// The case's description (a minijinja template, Markdown), up to 64 KiB.
    #[serde(default)]
    pub description: String,
    /// `low`, `medium`, `high` or `critical` (default `medium`).
    pub severity: Option<String>,
    /// `low`, `medium` or `high` (default `medium`).
    pub priority: Option<String>,
    /// Up to 20 tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Up to 50 tasks.
    #[serde(default)]
    pub tasks: Vec<TemplateTask>,
    /// Ignored (read-only; lets a GET's answer be sent back).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub id: Option<Value>,
    /// Ignored (read-only).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub builtin: Option<Value>,
    /// Ignored (read-only).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub created_at: Option<Value>,
    /// Ignored (read-only).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<Value>,
}

/// A new case: from a template (named, rendered over `context`), or from its own title; any
/// field given overrides the template's.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// 1–200 characters; required without a template.
    pub title: Option<String>,
    /// Markdown, up to 64 KiB.
    pub description: Option<String>,
    /// `low`, `medium`, `high` or `critical` (default: the template's, else `medium`).
    pub severity: Option<String>,
    /// `low`, `medium` or `high` (default: the template's, else `medium`).
    pub priority: Option<String>,
    /// Who handles it.
    pub assignee: Option<String>,
    /// Tags (default: the template's).
    pub tags: Option<Vec<String>>,
    /// The name of a case template of the space.
    pub template: Option<String>,
    /// What the template renders over (an object, e.g. the alert context `{alert, rule, event,
    /// person}`); when absent and `alerts` is given, the first alert's context.
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// Alerts to attach (ids or short ids).
    #[serde(default)]
    pub alerts: Vec<String>,
    /// Events to attach (event ids).
    #[serde(default)]
    pub events: Vec<String>,
}

/// A change to a case; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    /// 1–200 characters.
    pub title: Option<String>,
    /// Markdown, up to 64 KiB.
    pub description: Option<String>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: Option<String>,
    /// `low`, `medium` or `high`.
    pub priority: Option<String>,
    /// `in_progress` or `closed` (open → in_progress → closed, open → closed).
    pub status: Option<CaseStatus>,
    /// Who handles it (1–100 characters), or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<Option<String>>,
    /// The tags (replacing them).
    pub tags: Option<Vec<String>>,
}

/// Alerts to attach to a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRefs {
    /// Alert ids or short ids (1–100).
    pub alerts: Vec<String>,
}

/// Events to attach to a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRefs {
    /// Event ids (1–100).
    pub events: Vec<String>,
}

/// What an attachment did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attached {
    /// The ids newly attached.
    pub attached: Vec<String>,
    /// The ids that were already attached (nothing changed for them).
    pub unchanged: Vec<String>,
}

/// A new task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTaskBody {
    /// What to do, 1–200 characters.
    pub title: String,
    /// How (Markdown), up to 64 KiB.
    #[serde(default)]
    pub description: String,
    /// Who does it, 1–100 characters.
    pub assignee: Option<String>,
    /// When it is due (RFC 3339).
    pub due_at: Option<DateTime<Utc>>,
}

/// A change to a task; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// What to do, 1–200 characters.
    pub title: Option<String>,
    /// How (Markdown).
    pub description: Option<String>,
    /// Who does it, or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub assignee: Option<Option<String>>,
    /// When it is due (RFC 3339), or `null` for no due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// Done (true) or not (false: reopened).
    pub done: Option<bool>,
}

/// A new comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCaseComment {
    /// The text, 1–10,000 characters.
    pub content: String,
    /// Who wrote it, up to 100 characters; default `key:<id>` of the caller's key.
    pub author: Option<String>,
}

/// Filters of the case listing (all optional; given together, all must hold).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CaseListParams {
    /// Only these statuses, comma-separated (`open,in_progress`).
    pub status: Option<String>,
    /// Only these severities, comma-separated.
    pub severity: Option<String>,
    /// Only these priorities, comma-separated.
    pub priority: Option<String>,
    /// Only cases assigned to this assignee.
    pub assignee: Option<String>,
    /// Only cases with this tag.
    pub tag: Option<String>,
    /// Only cases holding this alert (its id or short id).
    pub alert_id: Option<String>,
    /// Opened at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Opened before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Paging of a case's comments, tasks or timeline (oldest first).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
