//! Console pages: the cases — the list with its filters, pages and the "New case" form, and a
//! case's page (its description rendered from Markdown, the workflow buttons, assignment and
//! details, the alerts, events and people it holds, tasks, comments and the timeline). A closed
//! case is read-only: its page has no form. Reads go through the cases API's handlers; changes
//! are forms and buttons that call the JSON API.
use super::alerts::{CommentRow, EventRow, Opt, event_rows, given, options, query_string};
use super::{Console, PageResult};
use crate::cases::{self, Case, CaseListParams, CaseStatus, TimelineEntry};
use crate::keys::{CasesRead, Scope};
use crate::people::Person;
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use vigie_core::http::ApiQuery;
use vigie_web::{Html, Shell, Time};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/cases", get(list)).route("/cases/{id}", get(detail))
}

/// The cases one page of the list shows.
const PAGE_SIZE: u32 = 50;

/// Who did something, as a page names them: the logged-in key by its name, anyone else
/// (`key:<id>`, `system`, `playbook:<id>`, `detection`, an author's name) as recorded.
pub(super) struct Author {
    own: String,
    key_name: String,
}

impl Author {
    /// The names as `console`'s key reads them.
    pub(super) fn of(console: &Console) -> Author {
        Author { own: format!("key:{}", console.caller.key_id), key_name: console.key_name.clone() }
    }

    /// How `by` is shown.
    pub(super) fn name(&self, by: &str) -> String {
        if by == self.own { format!("{} (this key)", self.key_name) } else { by.to_owned() }
    }
}

pub(super) use vigie_web::markdown::markdown;

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    priority: Option<String>,
    assignee: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    fn filters(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("status", given(&self.status)),
            ("severity", given(&self.severity)),
            ("priority", given(&self.priority)),
            ("assignee", given(&self.assignee)),
            ("tag", given(&self.tag)),
        ]
    }
}

/// A case as a row of the list.
struct CaseRow {
    short_id: String,
    title: String,
    status: &'static str,
    severity: String,
    priority: String,
    assignee: String,
    tags: Vec<String>,
    alerts: i64,
    tasks_done: i64,
    tasks: i64,
    created: Time,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<CaseRow>,
    statuses: Vec<Opt>,
    severities: Vec<Opt>,
    priorities: Vec<Opt>,
    assignee: String,
    tag: String,
    filtered: bool,
    first_page: bool,
    older: Option<String>,
    newest: String,
    can_write: bool,
    templates: Vec<String>,
}

const SEVERITY_CHOICES: [(&str, &str); 4] = [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical")];
const PRIORITY_CHOICES: [(&str, &str); 3] = [("low", "Low"), ("medium", "Medium"), ("high", "High")];

async fn list(State(st): State<XdrState>, console: Console, Query(q): Query<ListQuery>) -> PageResult {
    let auth = console.authorized::<CasesRead>()?;
    let filters = q.filters();
    let params = CaseListParams {
        status: given(&q.status),
        severity: given(&q.severity),
        priority: given(&q.priority),
        assignee: given(&q.assignee),
        tag: given(&q.tag),
        alert_id: None,
        from: None,
        to: None,
        limit: Some(PAGE_SIZE),
        cursor: given(&q.cursor),
    };
    let page = cases::cases_list(State(st.clone()), auth, ApiQuery(params)).await?.0;
    let ids: Vec<String> = page.items.iter().map(|k| k.id.clone()).collect();
    let space_no = console.caller.space_no;
    let counts = st.store.read(move |c| ids.iter().map(|id| cases::counts(c, space_no, id)).collect::<Result<Vec<_>, _>>()).await?;
    let rows = page
        .items
        .into_iter()
        .zip(counts)
        .map(|(k, (alerts, tasks_done, tasks))| CaseRow {
            short_id: k.short_id,
            title: k.title,
            status: k.status.as_str(),
            severity: k.severity,
            priority: k.priority,
            assignee: k.assignee.unwrap_or_default(),
            tags: k.tags,
            alerts,
            tasks_done,
            tasks,
            created: Time(k.created_at),
        })
        .collect();
    let can_write = console.can(Scope::CasesWrite);
    let templates = if can_write {
        cases::case_templates_list(State(st.clone()), console.authorized::<CasesRead>()?).await?.0.into_iter().map(|t| t.name).collect()
    } else {
        Vec::new()
    };
    let older = page.next_cursor.map(|c| {
        let mut pairs = filters.clone();
        pairs.push(("cursor", Some(c)));
        format!("/cases{}", query_string(&pairs))
    });
    let with_any = |any: &'static str, choices: &[(&'static str, &'static str)]| {
        let mut v = vec![("", any)];
        v.extend_from_slice(choices);
        v
    };
    let status_choices = [
        ("", "Any status"),
        ("open,in_progress", "Not closed (open, in progress)"),
        ("open", "Open"),
        ("in_progress", "In progress"),
        ("closed", "Closed"),
    ];
    let body = ListPage {
        shell: console.shell("Cases", "/cases"),
        rows,
        statuses: options(&status_choices, given(&q.status).as_deref()),
        severities: options(&with_any("Any severity", &SEVERITY_CHOICES), given(&q.severity).as_deref()),
        priorities: options(&with_any("Any priority", &PRIORITY_CHOICES), given(&q.priority).as_deref()),
        assignee: given(&q.assignee).unwrap_or_default(),
        tag: given(&q.tag).unwrap_or_default(),
        filtered: filters.iter().any(|(_, v)| v.is_some()),
        first_page: given(&q.cursor).is_none(),
        older,
        newest: format!("/cases{}", query_string(&filters)),
        can_write,
        templates,
    };
    Ok(vigie_web::page(StatusCode::OK, &body))
}

/// A workflow button of a case.
struct StatusButton {
    label: &'static str,
    body: String,
    confirm: &'static str,
}

/// An alert of a case, as a row.
struct AlertRow {
    short_id: String,
    title: String,
    severity: String,
    status: String,
    person: String,
    platform: String,
    attached: Time,
}

/// A task of a case, as a row.
struct TaskRow {
    id: String,
    title: String,
    description: Html,
    has_description: bool,
    assignee: String,
    due: Option<Time>,
    overdue: bool,
    done: bool,
    done_at: Option<Time>,
}

/// An entry of a case's timeline, as a sentence (and a link to what it names).
struct EntryRow {
    at: Time,
    who: String,
    text: String,
    link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "cases_detail.html")]
struct DetailPage {
    shell: Shell,
    k: Case,
    status: &'static str,
    created: Time,
    updated: Time,
    closed_at: Option<Time>,
    description: Html,
    /// The key may change cases and this one is not closed: the forms show.
    writable: bool,
    can_write: bool,
    buttons: Vec<StatusButton>,
    severities: Vec<Opt>,
    priorities: Vec<Opt>,
    alerts: Vec<AlertRow>,
    events: Vec<EventRow>,
    events_total: usize,
    events_readable: bool,
    people: Vec<Person>,
    tasks: Vec<TaskRow>,
    tasks_done: usize,
    comments: Vec<CommentRow>,
    timeline: Vec<EntryRow>,
}

fn status_button(to: CaseStatus) -> StatusButton {
    let (label, confirm) = match to {
        CaseStatus::InProgress => ("Start work (in progress)", ""),
        CaseStatus::Closed => ("Close the case", "Close this case? A closed case is read-only: no change, task or comment afterwards."),
        CaseStatus::Open => ("Reopen", ""),
    };
    StatusButton { label, body: serde_json::json!({"status": to.as_str()}).to_string(), confirm }
}

/// A timeline entry as a sentence; `alerts` and `tasks` name what it points at.
fn entry_row(e: TimelineEntry, author: &Author, alerts: &[cases::CaseAlert], tasks: &[cases::Task]) -> EntryRow {
    let from = e.from.clone().unwrap_or_default();
    let to = e.to.clone().unwrap_or_default();
    let detail = |k: &str| e.detail.as_ref().and_then(|d| d.get(k)).and_then(Value::as_str).map(str::to_owned);
    let task_title = |id: &str| tasks.iter().find(|t| t.id == id).map(|t| t.title.clone()).unwrap_or_else(|| id.to_owned());
    let tags = |json: &str| serde_json::from_str::<Vec<String>>(json).map(|t| t.join(", ")).unwrap_or_default();
    let alert_link = |id: &str| match alerts.iter().find(|a| a.id == id) {
        Some(a) => (format!("/alerts/{}", a.short_id), format!("{} {}", a.short_id, a.title)),
        None => (format!("/alerts/{id}"), id.to_owned()),
    };
    let event_link = |id: &str| (format!("/events/{}", vigie_web::form::encode(id)), id.to_owned());
    let (text, link) = match e.kind.as_str() {
        "created" => match detail("template") {
            Some(t) => (format!("Opened from the template “{t}”"), None),
            None => ("Opened".to_owned(), None),
        },
        "status" => (format!("Status {from} → {to}"), None),
        "assignee" if to.is_empty() => (format!("Unassigned (was {from})"), None),
        "assignee" => (format!("Assigned to {to}"), None),
        "severity" => (format!("Severity {from} → {to}"), None),
        "priority" => (format!("Priority {from} → {to}"), None),
        "title" => (format!("Title changed to “{to}”"), None),
        "description" => ("Description changed".to_owned(), None),
        "tags" => (format!("Tags: {}", tags(&to)), None),
        "alert_attached" => ("Alert attached:".to_owned(), Some(alert_link(&to))),
        "alert_detached" => ("Alert detached:".to_owned(), Some(alert_link(&from))),
        "event_attached" => ("Event attached:".to_owned(), Some(event_link(&to))),
        "event_detached" => ("Event detached:".to_owned(), Some(event_link(&from))),
        "task_added" => (format!("Task added: {}", detail("title").unwrap_or_else(|| task_title(&to))), None),
        "task_done" => (format!("Task done: {}", task_title(&to)), None),
        "task_reopened" => (format!("Task reopened: {}", task_title(&to)), None),
        "task_updated" => {
            let fields: Vec<String> = e.detail.as_ref().and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            (format!("Task updated: {} ({})", task_title(&to), fields.join(", ")), None)
        }
        "comment" => ("Commented".to_owned(), None),
        other => (other.to_owned(), None),
    };
    EntryRow { at: Time(e.at), who: author.name(e.by.as_deref().unwrap_or("")), text, link }
}

async fn detail(State(st): State<XdrState>, console: Console, Path(id): Path<String>) -> PageResult {
    let auth = console.authorized::<CasesRead>()?;
    let d = cases::cases_get(State(st.clone()), auth, Path(id)).await?.0;
    let now = st.clock.now();
    let author = Author::of(&console);
    let can_write = console.can(Scope::CasesWrite);
    let closed = d.case.status == CaseStatus::Closed;
    let writable = can_write && !closed;
    let events = event_rows(&st, &console, &d.event_ids).await?;
    let timeline = d.timeline.into_iter().map(|e| entry_row(e, &author, &d.alerts, &d.tasks)).collect();
    let tasks: Vec<TaskRow> = d
        .tasks
        .into_iter()
        .map(|t| TaskRow {
            overdue: !t.done && t.due_at.is_some_and(|due| due < now),
            has_description: !t.description.trim().is_empty(),
            description: markdown(&t.description),
            id: t.id,
            title: t.title,
            assignee: t.assignee.unwrap_or_default(),
            due: t.due_at.map(Time),
            done: t.done,
            done_at: t.done_at.map(Time),
        })
        .collect();
    let k = d.case;
    let body = DetailPage {
        shell: console.shell(format!("{} {}", k.short_id, k.title), "/cases"),
        status: k.status.as_str(),
        created: Time(k.created_at),
        updated: Time(k.updated_at),
        closed_at: k.closed_at.map(Time),
        description: markdown(&k.description),
        writable,
        can_write,
        buttons: if writable { k.status.next().iter().copied().map(status_button).collect() } else { Vec::new() },
        severities: options(&SEVERITY_CHOICES, Some(&k.severity)),
        priorities: options(&PRIORITY_CHOICES, Some(&k.priority)),
        alerts: d
            .alerts
            .into_iter()
            .map(|a| AlertRow {
                person: a.user_name.or(a.user_id).unwrap_or_default(),
                platform: a.platform_id.unwrap_or_default(),
                short_id: a.short_id,
                title: a.title,
                severity: a.severity,
                status: a.status,
                attached: Time(a.attached_at),
            })
            .collect(),
        events_total: d.event_ids.len(),
        events_readable: console.can(Scope::EventsRead),
        events,
        people: d.people,
        tasks_done: tasks.iter().filter(|t| t.done).count(),
        tasks,
        comments: d
            .comments
            .into_iter()
            .map(|c| CommentRow { author: author.name(&c.author), at: Time(c.created_at), body: markdown(&c.content) })
            .collect(),
        timeline,
        k,
    };
    Ok(vigie_web::page(StatusCode::OK, &body))
}
