//! The write side of cases, synchronous on a `Connection` inside the caller's transaction (it
//! opens none), so the API, the responder and the playbook runner share it: create a case
//! (from a template), attach and detach alerts and events, change a case, tasks and comments.
//! Every change is recorded in the case's timeline; a closed case refuses every change.
use super::model::{
    CASE_COLS, Case, CaseComment, CaseStatus, NewCase, PRIORITIES, SEVERITIES, TASK_COLS, Task, case_from_row, one_of, task_from_row,
};
use super::templates;
use crate::response::{ResponseKind, enqueue};
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::http::{ApiError, FieldError};
use vigie_core::ids::IdGen;

/// The longest title of a case or task (characters).
pub const MAX_TITLE: usize = 200;
/// The longest description of a case or task (bytes).
pub const MAX_DESCRIPTION: usize = templates::MAX_DESCRIPTION;
/// The longest assignee or comment author (characters).
pub const MAX_ASSIGNEE: usize = 100;
/// The most tags of a case or template.
pub const MAX_TAGS: usize = 20;
/// The longest tag (characters).
pub const MAX_TAG: usize = 50;
/// The most alerts one case holds.
pub const MAX_CASE_ALERTS: i64 = 1_000;
/// The most events one case holds.
pub const MAX_CASE_EVENTS: i64 = 1_000;
/// The most tasks one case holds.
pub const MAX_CASE_TASKS: i64 = 200;
/// The most comments one case holds.
pub const MAX_CASE_COMMENTS: i64 = 10_000;
/// The longest comment (characters).
pub const MAX_COMMENT: usize = 10_000;
/// The most alerts or events one request attaches.
pub const MAX_REFS: usize = 100;
/// How many short ids are drawn before a creation gives up (a clash is one in 2⁴⁰ per case).
const SHORT_ID_TRIES: usize = 8;

/// Why a change to a case was refused.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such case, alert, event, task or template in the space.
    #[error("no {0} with this id in your space")]
    NotFound(&'static str),
    /// The case is closed: it is read-only.
    #[error("{0}")]
    Closed(String),
    /// The workflow does not allow the status asked for.
    #[error("{0}")]
    Transition(String),
    /// A limit of the case is reached.
    #[error("{0}")]
    Full(String),
    /// The request is invalid (each offending field).
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

impl From<rusqlite::Error> for CaseError {
    fn from(e: rusqlite::Error) -> CaseError {
        CaseError::Store(e.into())
    }
}

impl From<serde_json::Error> for CaseError {
    fn from(e: serde_json::Error) -> CaseError {
        CaseError::Store(e.into())
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> ApiError {
        match e {
            CaseError::Store(s) => s.into(),
            CaseError::NotFound(what) => ApiError::not_found(what),
            CaseError::Closed(m) => ApiError::new(StatusCode::CONFLICT, "case_closed", m),
            CaseError::Transition(m) => ApiError::new(StatusCode::CONFLICT, "invalid_transition", m),
            CaseError::Full(m) => ApiError::conflict(m),
            CaseError::Invalid(fields) => ApiError::validation(fields),
        }
    }
}

/// What the responder and playbooks give [`create`]: the API's body (a template by name and a
/// context, overrides, alerts and events to attach).
pub type NewCaseSpec = NewCase;

/// A new task (`due_at_us`: µs since the epoch).
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    /// What to do, 1–200 characters.
    pub title: String,
    /// How (Markdown).
    pub description: String,
    /// Who does it.
    pub assignee: Option<String>,
    /// When it is due (µs).
    pub due_at_us: Option<i64>,
}

fn random_short_id() -> String {
    crate::short_id::random("CA")
}

/// The stored form of a reference (a UUID, or a short id with `prefix`): [`crate::short_id::parse`].
pub fn short_ref(prefix: &str, raw: &str) -> Option<String> {
    crate::short_id::parse(prefix, raw)
}

/// The case of `space_no` whose id or short id is `key`.
pub fn find(c: &Connection, space_no: i64, key: &str) -> Result<Option<Case>, StoreError> {
    let Some(key) = short_ref("CA", key) else { return Ok(None) };
    Ok(c.prepare_cached(&format!("SELECT {CASE_COLS} FROM cases WHERE space_no = ?1 AND (id = ?2 OR short_id = ?2)"))?
        .query_row(params![space_no, key], case_from_row)
        .optional()?)
}

/// The case, which must exist and be open to change.
fn open_case(c: &Connection, space_no: i64, key: &str) -> Result<Case, CaseError> {
    let case = find(c, space_no, key)?.ok_or(CaseError::NotFound("case"))?;
    if case.status == CaseStatus::Closed {
        return Err(CaseError::Closed(format!(
            "case {} is closed: it is read-only (no change, comment, task or attachment); open a new case to go on",
            case.short_id
        )));
    }
    Ok(case)
}

/// The id of the alert of `space_no` whose id or short id is `key`.
fn alert_id(c: &Connection, space_no: i64, key: &str) -> Result<Option<String>, StoreError> {
    let Some(key) = short_ref("AL", key) else { return Ok(None) };
    Ok(c.prepare_cached("SELECT id FROM alerts WHERE space_no = ?1 AND (id = ?2 OR short_id = ?2)")?
        .query_row(params![space_no, key], |r| r.get(0))
        .optional()?)
}

/// Whether the space's log holds this event.
fn event_exists(c: &Connection, space_no: i64, event_id: &str) -> Result<bool, StoreError> {
    Ok(c.prepare_cached("SELECT EXISTS(SELECT 1 FROM events WHERE space_no = ?1 AND id = ?2)")?
        .query_row(params![space_no, event_id], |r| r.get(0))?)
}

/// Records an entry of a case's timeline and marks the case changed.
#[allow(clippy::too_many_arguments)]
fn timeline(
    c: &Connection,
    case_id: &str,
    at: i64,
    by: &str,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    detail: Option<&Value>,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO case_timeline (case_id, at, by, kind, from_value, to_value, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![case_id, at, by, kind, from, to, detail.map(Value::to_string)])?;
    c.prepare_cached("UPDATE cases SET updated_at = MAX(updated_at, ?2) WHERE id = ?1")?.execute(params![case_id, at])?;
    Ok(())
}

/// Checks tags: at most [`MAX_TAGS`], each 1–[`MAX_TAG`] characters; duplicates dropped.
pub(super) fn check_tags(field: &str, tags: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if tags.len() > MAX_TAGS {
        errors.push(FieldError::new(field, format!("at most {MAX_TAGS} tags")));
        return out;
    }
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG || t.chars().any(char::is_control) {
            errors.push(FieldError::new(format!("{field}[{i}]"), format!("1 to {MAX_TAG} characters")));
        } else if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// A title: trimmed, one line, 1–[`MAX_TITLE`] characters.
pub(super) fn check_title(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE || t.chars().any(char::is_control) {
        errors.push(FieldError::new(field, format!("1 to {MAX_TITLE} characters on one line")));
    }
    t.to_owned()
}

/// An assignee: trimmed, 1–[`MAX_ASSIGNEE`] characters.
pub(super) fn check_assignee(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let a = raw.trim();
    if a.is_empty() || a.chars().count() > MAX_ASSIGNEE || a.chars().any(char::is_control) {
        errors.push(FieldError::new(field, format!("1 to {MAX_ASSIGNEE} characters; send null to unassign")));
    }
    a.to_owned()
}

/// A description: at most [`MAX_DESCRIPTION`] bytes.
pub(super) fn check_description(field: &str, raw: String, errors: &mut Vec<FieldError>) -> String {
    if raw.len() > MAX_DESCRIPTION {
        errors.push(FieldError::new(field, format!("at most {} KiB", MAX_DESCRIPTION / 1024)));
    }
    raw
}

/// A rendered title made fit: one line (whitespace runs become one space), cut to [`MAX_TITLE`].
fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= MAX_TITLE {
        return s;
    }
    let mut out: String = s.chars().take(MAX_TITLE - 1).collect();
    out.push('…');
    out
}

/// Opens a case in `space_no`, inside the caller's transaction: from the template `spec.template`
/// names (rendered over `spec.context`, or over the first alert's context when no context is
/// given) with `spec`'s fields overriding the template's, or from `spec.title`; attaches
/// `spec.alerts` and `spec.events`, adds the template's tasks (due `due_in_days` after `now_us`),
/// records it all in the timeline and appends `case.created` to the response queue.
pub fn create(c: &Connection, ids: &IdGen, space_no: i64, spec: NewCaseSpec, by: &str, now_us: i64) -> Result<Case, CaseError> {
    let mut errors = Vec::new();
    let template = match spec.template.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(name) => {
            let t = templates::find(c, space_no, name)?;
            if t.is_none() {
                errors.push(FieldError::new("template", format!("no case template named {name:?} in your space")));
            }
            t
        }
        None => None,
    };
    if spec.alerts.len() > MAX_REFS {
        errors.push(FieldError::new("alerts", format!("at most {MAX_REFS} alerts at once")));
    }
    if spec.events.len() > MAX_REFS {
        errors.push(FieldError::new("events", format!("at most {MAX_REFS} events at once")));
    }
    let mut alerts: Vec<String> = Vec::new();
    for (i, a) in spec.alerts.iter().enumerate().take(MAX_REFS) {
        match alert_id(c, space_no, a)? {
            Some(id) if !alerts.contains(&id) => alerts.push(id),
            Some(_) => {}
            None => errors.push(FieldError::new(format!("alerts[{i}]"), "no alert with this id or short id in your space")),
        }
    }
    let mut events: Vec<String> = Vec::new();
    for (i, e) in spec.events.iter().enumerate().take(MAX_REFS) {
        let e = e.trim();
        if !event_exists(c, space_no, e)? {
            errors.push(FieldError::new(format!("events[{i}]"), "no event with this id in your space"));
        } else if !events.iter().any(|x| x == e) {
            events.push(e.to_owned());
        }
    }
    if spec.context.as_ref().is_some_and(|v| !v.is_object() && !v.is_null()) {
        errors.push(FieldError::new("context", "an object (the values the template names: alert, rule, event, person…)"));
    }
    let context = match (&spec.context, alerts.first()) {
        (Some(v), _) if v.is_object() => v.clone(),
        (_, Some(first)) if template.is_some() => crate::response::alert_context(c, space_no, first, now_us)?,
        _ => json!({}),
    };
    let render = |field: &str, source: &str, cap: usize, errors: &mut Vec<FieldError>| -> String {
        templates::render(source, &context, cap).unwrap_or_else(|m| {
            errors.push(FieldError::new(format!("template.{field}"), m));
            String::new()
        })
    };
    let title = match (&spec.title, &template) {
        (Some(t), _) => check_title("title", t, &mut errors),
        (None, Some(t)) => {
            let rendered = one_line(&render("title_pattern", &t.title_pattern, 4 * MAX_TITLE, &mut errors));
            if rendered.is_empty() { t.name.clone() } else { rendered }
        }
        (None, None) => {
            errors.push(FieldError::new("title", "give a title, or a template to make it from"));
            String::new()
        }
    };
    let description = match (spec.description, &template) {
        (Some(d), _) => check_description("description", d, &mut errors),
        (None, Some(t)) => render("description", &t.description, MAX_DESCRIPTION, &mut errors),
        (None, None) => String::new(),
    };
    let severity = match (spec.severity.as_deref(), &template) {
        (Some(s), _) => one_of(s, &SEVERITIES).unwrap_or_else(|| {
            errors.push(FieldError::new("severity", "low, medium, high or critical"));
            "medium"
        }),
        (None, Some(t)) => one_of(&t.severity, &SEVERITIES).unwrap_or("medium"),
        (None, None) => "medium",
    };
    let priority = match (spec.priority.as_deref(), &template) {
        (Some(s), _) => one_of(s, &PRIORITIES).unwrap_or_else(|| {
            errors.push(FieldError::new("priority", "low, medium or high"));
            "medium"
        }),
        (None, Some(t)) => one_of(&t.priority, &PRIORITIES).unwrap_or("medium"),
        (None, None) => "medium",
    };
    let assignee = spec.assignee.as_deref().map(|a| check_assignee("assignee", a, &mut errors));
    let tags = match (&spec.tags, &template) {
        (Some(tags), _) => check_tags("tags", tags, &mut errors),
        (None, Some(t)) => t.tags.clone(),
        (None, None) => Vec::new(),
    };
    let mut tasks = Vec::new();
    if let Some(t) = &template {
        for (i, task) in t.tasks.iter().enumerate() {
            let title = one_line(&render(&format!("tasks[{i}].title"), &task.title, 4 * MAX_TITLE, &mut errors));
            let description = render(&format!("tasks[{i}].description"), &task.description, MAX_DESCRIPTION, &mut errors);
            tasks.push(NewTask {
                title: if title.is_empty() { format!("Task {}", i + 1) } else { title },
                description,
                assignee: task.assignee.clone(),
                due_at_us: task.due_in_days.map(|d| now_us + d * 86_400_000_000),
            });
        }
    }
    if !errors.is_empty() {
        return Err(CaseError::Invalid(errors));
    }

    let id = ids.at(from_micros(now_us)).to_string();
    let mut insert = c.prepare_cached(
        "INSERT INTO cases (id, short_id, space_no, title, description, severity, priority, status, assignee, tags, template, \
         created_at, created_by, updated_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9, ?10, ?11, ?12, ?11, NULL)",
    )?;
    let tags_json = serde_json::to_string(&tags)?;
    let template_name = template.as_ref().map(|t| t.name.clone());
    let mut tries = 0;
    let short_id = loop {
        let short = random_short_id();
        let inserted = insert.execute(params![
            id,
            short,
            space_no,
            title,
            description,
            severity,
            priority,
            assignee,
            tags_json,
            template_name,
            now_us,
            by
        ]);
        match inserted {
            Ok(_) => break short,
            Err(e) if StoreError::is_unique_violation(&e) && tries + 1 < SHORT_ID_TRIES => tries += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let detail = template_name.as_ref().map(|t| json!({"template": t}));
    timeline(c, &id, now_us, by, "created", None, Some(CaseStatus::Open.as_str()), detail.as_ref())?;
    for a in &alerts {
        link_alert(c, &id, a, by, now_us)?;
    }
    for e in &events {
        link_event(c, &id, e, by, now_us)?;
    }
    for t in tasks {
        insert_task(c, ids, &id, t, by, now_us)?;
    }
    let detail = json!({"short_id": short_id, "title": title, "severity": severity, "priority": priority, "template": template_name, "alerts": alerts});
    enqueue(c, space_no, ResponseKind::CaseCreated, &id, &detail, now_us)?;
    find(c, space_no, &id)?.ok_or(CaseError::NotFound("case"))
}

/// Attaches an alert; false when it was already attached (nothing changes then).
fn link_alert(c: &Connection, case_id: &str, alert_id: &str, by: &str, now_us: i64) -> Result<bool, CaseError> {
    link(c, case_id, Link::ALERT, alert_id, by, now_us)
}

/// Attaches an event; false when it was already attached.
fn link_event(c: &Connection, case_id: &str, event_id: &str, by: &str, now_us: i64) -> Result<bool, CaseError> {
    link(c, case_id, Link::EVENT, event_id, by, now_us)
}

/// What a case holds by reference: its table, column, limit and timeline entry (names from
/// this module, never from input).
#[derive(Clone, Copy)]
struct Link {
    table: &'static str,
    column: &'static str,
    max: i64,
    what: &'static str,
    kind: &'static str,
}

impl Link {
    const ALERT: Link = Link { table: "case_alerts", column: "alert_id", max: MAX_CASE_ALERTS, what: "alerts", kind: "alert_attached" };
    const EVENT: Link = Link { table: "case_events", column: "event_id", max: MAX_CASE_EVENTS, what: "events", kind: "event_attached" };
}

/// Attaches each of `values` once as `l` says: (attached now, already there).
fn link_all(
    c: &Connection,
    case_id: &str,
    l: Link,
    values: impl IntoIterator<Item = String>,
    by: &str,
    now_us: i64,
) -> Result<(Vec<String>, Vec<String>), CaseError> {
    let (mut attached, mut unchanged) = (Vec::new(), Vec::new());
    for v in values {
        if attached.contains(&v) || unchanged.contains(&v) {
            continue;
        }
        if link(c, case_id, l, &v, by, now_us)? { attached.push(v) } else { unchanged.push(v) }
    }
    Ok((attached, unchanged))
}

/// Attaches `value` as `l` says; false when it was already attached (nothing changes then).
fn link(c: &Connection, case_id: &str, l: Link, value: &str, by: &str, now_us: i64) -> Result<bool, CaseError> {
    let (table, column) = (l.table, l.column);
    let present: bool = c
        .prepare_cached(&format!("SELECT EXISTS(SELECT 1 FROM {table} WHERE case_id = ?1 AND {column} = ?2)"))?
        .query_row(params![case_id, value], |r| r.get(0))?;
    if present {
        return Ok(false);
    }
    let count: i64 = c.prepare_cached(&format!("SELECT COUNT(*) FROM {table} WHERE case_id = ?1"))?.query_row([case_id], |r| r.get(0))?;
    if count >= l.max {
        return Err(CaseError::Full(format!("a case holds at most {} {}", l.max, l.what)));
    }
    c.prepare_cached(&format!("INSERT INTO {table} (case_id, {column}, added_at, added_by) VALUES (?1, ?2, ?3, ?4)"))?
        .execute(params![case_id, value, now_us, by])?;
    timeline(c, case_id, now_us, by, l.kind, None, Some(value), None)?;
    Ok(true)
}

/// Attaches an alert (id or short id) of `space_no` to a case (id or short id), inside the
/// caller's transaction; false when it was already attached (nothing changes, no timeline
/// entry). `NotFound` for a case or alert the space does not have; `Closed` for a closed case.
pub fn attach_alert(c: &Connection, space_no: i64, case_id: &str, alert: &str, by: &str, now_us: i64) -> Result<bool, CaseError> {
    let case = open_case(c, space_no, case_id)?;
    let alert = alert_id(c, space_no, alert)?.ok_or(CaseError::NotFound("alert"))?;
    link_alert(c, &case.id, &alert, by, now_us)
}

/// Attaches several alerts, all or none: each unknown one is named (`alerts[i]`). The ids
/// attached and those already attached.
pub fn attach_alerts(
    c: &Connection,
    space_no: i64,
    key: &str,
    refs: &[String],
    by: &str,
    now_us: i64,
) -> Result<(Vec<String>, Vec<String>), CaseError> {
    let case = open_case(c, space_no, key)?;
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        match alert_id(c, space_no, r)? {
            Some(id) => ids.push(id),
            None => errors.push(FieldError::new(format!("alerts[{i}]"), "no alert with this id or short id in your space")),
        }
    }
    if !errors.is_empty() {
        return Err(CaseError::Invalid(errors));
    }
    link_all(c, &case.id, Link::ALERT, ids, by, now_us)
}

/// Detaches an alert (id or short id) from a case.
pub fn detach_alert(c: &Connection, space_no: i64, key: &str, alert: &str, by: &str, now_us: i64) -> Result<(), CaseError> {
    let case = open_case(c, space_no, key)?;
    let alert = alert_id(c, space_no, alert)?.ok_or(CaseError::NotFound("alert"))?;
    let n = c.prepare_cached("DELETE FROM case_alerts WHERE case_id = ?1 AND alert_id = ?2")?.execute(params![case.id, alert])?;
    if n == 0 {
        return Err(CaseError::NotFound("alert attached to this case"));
    }
    timeline(c, &case.id, now_us, by, "alert_detached", Some(&alert), None, None)?;
    Ok(())
}

/// Attaches several events of the space's log, all or none.
pub fn attach_events(
    c: &Connection,
    space_no: i64,
    key: &str,
    refs: &[String],
    by: &str,
    now_us: i64,
) -> Result<(Vec<String>, Vec<String>), CaseError> {
    let case = open_case(c, space_no, key)?;
    let mut errors = Vec::new();
    for (i, e) in refs.iter().enumerate() {
        if !event_exists(c, space_no, e.trim())? {
            errors.push(FieldError::new(format!("events[{i}]"), "no event with this id in your space"));
        }
    }
    if !errors.is_empty() {
        return Err(CaseError::Invalid(errors));
    }
    link_all(c, &case.id, Link::EVENT, refs.iter().map(|e| e.trim().to_owned()), by, now_us)
}

/// Detaches an event from a case.
pub fn detach_event(c: &Connection, space_no: i64, key: &str, event_id: &str, by: &str, now_us: i64) -> Result<(), CaseError> {
    let case = open_case(c, space_no, key)?;
    let n = c.prepare_cached("DELETE FROM case_events WHERE case_id = ?1 AND event_id = ?2")?.execute(params![case.id, event_id])?;
    if n == 0 {
        return Err(CaseError::NotFound("event attached to this case"));
    }
    timeline(c, &case.id, now_us, by, "event_detached", Some(event_id), None, None)?;
    Ok(())
}

/// The id of the newest case of `space_no` that is not closed and holds this alert (id or
/// short id): where a rule's or a playbook's "create case" adds a repeat instead of opening
/// another.
pub fn open_case_of_alert(c: &Connection, space_no: i64, alert: &str) -> Result<Option<String>, StoreError> {
    let Some(alert) = alert_id(c, space_no, alert)? else { return Ok(None) };
    Ok(c.prepare_cached(
        "SELECT k.id FROM case_alerts ca JOIN cases k ON k.id = ca.case_id \
         WHERE ca.alert_id = ?2 AND k.space_no = ?1 AND k.status != 'closed' ORDER BY k.created_at DESC, k.id DESC LIMIT 1",
    )?
    .query_row(params![space_no, alert], |r| r.get(0))
    .optional()?)
}

fn insert_task(c: &Connection, ids: &IdGen, case_id: &str, t: NewTask, by: &str, now_us: i64) -> Result<Task, CaseError> {
    let count: i64 = c.prepare_cached("SELECT COUNT(*) FROM case_tasks WHERE case_id = ?1")?.query_row([case_id], |r| r.get(0))?;
    if count >= MAX_CASE_TASKS {
        return Err(CaseError::Full(format!("a case holds at most {MAX_CASE_TASKS} tasks")));
    }
    let id = ids.at(from_micros(now_us)).to_string();
    c.prepare_cached(
        "INSERT INTO case_tasks (id, case_id, title, description, assignee, due_at, done, done_at, created_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7, ?8)",
    )?
    .execute(params![id, case_id, t.title, t.description, t.assignee, t.due_at_us, now_us, by])?;
    timeline(c, case_id, now_us, by, "task_added", None, Some(&id), Some(&json!({"title": t.title})))?;
    task(c, case_id, &id)?.ok_or(CaseError::NotFound("task"))
}

/// A task of a case (by the case's id).
pub(super) fn task(c: &Connection, case_id: &str, task_id: &str) -> Result<Option<Task>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {TASK_COLS} FROM case_tasks WHERE case_id = ?1 AND id = ?2"))?
        .query_row(params![case_id, task_id.trim()], task_from_row)
        .optional()?)
}

/// Adds a task to a case (id or short id) of `space_no`, inside the caller's transaction.
pub fn add_task(c: &Connection, ids: &IdGen, space_no: i64, case_id: &str, t: NewTask, by: &str, now_us: i64) -> Result<Task, CaseError> {
    let mut errors = Vec::new();
    let title = check_title("title", &t.title, &mut errors);
    let description = check_description("description", t.description, &mut errors);
    let assignee = t.assignee.as_deref().map(|a| check_assignee("assignee", a, &mut errors));
    if !errors.is_empty() {
        return Err(CaseError::Invalid(errors));
    }
    let case = open_case(c, space_no, case_id)?;
    insert_task(c, ids, &case.id, NewTask { title, description, assignee, due_at_us: t.due_at_us }, by, now_us)
}

/// A change to a task, checked.
#[derive(Debug, Default)]
pub struct TaskChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New assignee (`Some(None)`: unassign).
    pub assignee: Option<Option<String>>,
    /// New due time in µs (`Some(None)`: no due date).
    pub due_at_us: Option<Option<i64>>,
    /// Done or not.
    pub done: Option<bool>,
}

/// Changes a task of a case; each change in the timeline (`task_done`, `task_reopened`,
/// `task_updated` with the fields changed).
pub fn update_task(
    c: &Connection,
    space_no: i64,
    key: &str,
    task_id: &str,
    ch: TaskChanges,
    by: &str,
    now_us: i64,
) -> Result<Task, CaseError> {
    let case = open_case(c, space_no, key)?;
    let old = task(c, &case.id, task_id)?.ok_or(CaseError::NotFound("task"))?;
    let mut changed = serde_json::Map::new();
    let fmt_time = |t: Option<i64>| t.map(|t| from_micros(t).to_rfc3339());
    if let Some(t) = ch.title.filter(|t| *t != old.title) {
        c.execute("UPDATE case_tasks SET title = ?2 WHERE id = ?1", params![old.id, t])?;
        changed.insert("title".into(), json!({"from": old.title, "to": t}));
    }
    if let Some(d) = ch.description.filter(|d| *d != old.description) {
        c.execute("UPDATE case_tasks SET description = ?2 WHERE id = ?1", params![old.id, d])?;
        changed.insert("description".into(), json!({"from": old.description, "to": d}));
    }
    if let Some(a) = ch.assignee.filter(|a| *a != old.assignee) {
        c.execute("UPDATE case_tasks SET assignee = ?2 WHERE id = ?1", params![old.id, a])?;
        changed.insert("assignee".into(), json!({"from": old.assignee, "to": a}));
    }
    let old_due = old.due_at.map(vigie_core::clock::to_micros);
    if let Some(d) = ch.due_at_us.filter(|d| *d != old_due) {
        c.execute("UPDATE case_tasks SET due_at = ?2 WHERE id = ?1", params![old.id, d])?;
        changed.insert("due_at".into(), json!({"from": fmt_time(old_due), "to": fmt_time(d)}));
    }
    if !changed.is_empty() {
        timeline(c, &case.id, now_us, by, "task_updated", None, Some(&old.id), Some(&Value::Object(changed)))?;
    }
    match ch.done {
        Some(true) if !old.done => {
            c.execute("UPDATE case_tasks SET done = 1, done_at = ?2 WHERE id = ?1", params![old.id, now_us])?;
            timeline(c, &case.id, now_us, by, "task_done", None, Some(&old.id), None)?;
        }
        Some(false) if old.done => {
            c.execute("UPDATE case_tasks SET done = 0, done_at = NULL WHERE id = ?1", params![old.id])?;
            timeline(c, &case.id, now_us, by, "task_reopened", None, Some(&old.id), None)?;
        }
        _ => {}
    }
    task(c, &case.id, &old.id)?.ok_or(CaseError::NotFound("task"))
}

/// A change to a case, checked.
#[derive(Debug, Default)]
pub struct CaseChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New severity.
    pub severity: Option<&'static str>,
    /// New priority.
    pub priority: Option<&'static str>,
    /// New status (along the workflow).
    pub status: Option<CaseStatus>,
    /// New assignee (`Some(None)`: unassign).
    pub assignee: Option<Option<String>>,
    /// New tags.
    pub tags: Option<Vec<String>>,
}

/// Changes a case; each field that changes is one timeline entry. A closed case refuses (409
/// `case_closed`), and so does a status the workflow does not allow next (409
/// `invalid_transition`).
pub fn update(c: &Connection, space_no: i64, key: &str, ch: CaseChanges, by: &str, now_us: i64) -> Result<Case, CaseError> {
    let case = open_case(c, space_no, key)?;
    if let Some(to) = ch.status
        && to != case.status
        && !case.status.next().contains(&to)
    {
        let next: Vec<&str> = case.status.next().iter().map(|s| s.as_str()).collect();
        return Err(CaseError::Transition(format!(
            "case {} is {}: it can become {}, not {}",
            case.short_id,
            case.status.as_str(),
            next.join(" or "),
            to.as_str()
        )));
    }
    let set = |column: &'static str, value: &dyn rusqlite::ToSql| -> Result<(), StoreError> {
        c.prepare_cached(&format!("UPDATE cases SET {column} = ?2 WHERE id = ?1"))?.execute(params![case.id, value])?;
        Ok(())
    };
    if let Some(t) = ch.title.filter(|t| *t != case.title) {
        set("title", &t)?;
        timeline(c, &case.id, now_us, by, "title", Some(&case.title), Some(&t), None)?;
    }
    if let Some(d) = ch.description.filter(|d| *d != case.description) {
        set("description", &d)?;
        timeline(c, &case.id, now_us, by, "description", Some(&case.description), Some(&d), None)?;
    }
    if let Some(s) = ch.severity.filter(|s| *s != case.severity) {
        set("severity", &s)?;
        timeline(c, &case.id, now_us, by, "severity", Some(&case.severity), Some(s), None)?;
    }
    if let Some(p) = ch.priority.filter(|p| *p != case.priority) {
        set("priority", &p)?;
        timeline(c, &case.id, now_us, by, "priority", Some(&case.priority), Some(p), None)?;
    }
    if let Some(a) = ch.assignee.filter(|a| *a != case.assignee) {
        set("assignee", &a)?;
        timeline(c, &case.id, now_us, by, "assignee", case.assignee.as_deref(), a.as_deref(), None)?;
    }
    if let Some(t) = ch.tags.filter(|t| *t != case.tags) {
        let (from, to) = (serde_json::to_string(&case.tags)?, serde_json::to_string(&t)?);
        set("tags", &to)?;
        timeline(c, &case.id, now_us, by, "tags", Some(&from), Some(&to), None)?;
    }
    // The status last: closing is the final change of the request.
    if let Some(to) = ch.status.filter(|s| *s != case.status) {
        set("status", &to.as_str())?;
        if to == CaseStatus::Closed {
            set("closed_at", &now_us)?;
        }
        timeline(c, &case.id, now_us, by, "status", Some(case.status.as_str()), Some(to.as_str()), None)?;
    }
    find(c, space_no, &case.id)?.ok_or(CaseError::NotFound("case"))
}

/// Adds a comment to a case.
#[allow(clippy::too_many_arguments)]
pub fn add_comment(
    c: &Connection,
    ids: &IdGen,
    space_no: i64,
    key: &str,
    author: &str,
    content: &str,
    by: &str,
    now_us: i64,
) -> Result<CaseComment, CaseError> {
    let case = open_case(c, space_no, key)?;
    let count: i64 = c.prepare_cached("SELECT COUNT(*) FROM case_comments WHERE case_id = ?1")?.query_row([&case.id], |r| r.get(0))?;
    if count >= MAX_CASE_COMMENTS {
        return Err(CaseError::Full(format!("case {} has {count} comments, the most one case takes", case.short_id)));
    }
    let id = ids.at(from_micros(now_us)).to_string();
    c.prepare_cached("INSERT INTO case_comments (id, case_id, author, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![id, case.id, author, content, now_us])?;
    timeline(c, &case.id, now_us, by, "comment", None, Some(&id), None)?;
    Ok(CaseComment { id, author: author.to_owned(), content: content.to_owned(), created_at: from_micros(now_us) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_as_ids_or_short_ids() {
        assert_eq!(short_ref("CA", "ca0o1il2zz").as_deref(), Some("CA001112ZZ"));
        assert_eq!(short_ref("AL", " al00000001 ").as_deref(), Some("AL00000001"));
        assert_eq!(short_ref("CA", "0190A3C1-0000-7000-8000-000000000099").as_deref(), Some("0190a3c1-0000-7000-8000-000000000099"));
        for bad in ["CA123", "AL00000001", "CAUUUUUUUU", "ÀL12345678", ""] {
            assert_eq!(short_ref("CA", bad), None, "{bad}");
        }
        let s = random_short_id();
        assert!(s.len() == 10 && s.starts_with("CA") && short_ref("CA", &s) == Some(s.clone()), "{s}");
    }

    #[test]
    fn the_workflow_goes_forward_only() {
        use CaseStatus::*;
        assert_eq!(Open.next(), [InProgress, Closed]);
        assert_eq!(InProgress.next(), [Closed]);
        assert!(Closed.next().is_empty());
    }

    #[test]
    fn a_long_rendered_title_is_one_line_and_cut() {
        assert_eq!(one_line("  a\n b\t c "), "a b c");
        let long = one_line(&"x".repeat(500));
        assert_eq!(long.chars().count(), MAX_TITLE);
        assert!(long.ends_with('…'));
    }
}
