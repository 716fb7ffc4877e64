//! Console pages: the alerts — the list with its filters and pages, and an alert's page (the
//! rule, the person, its events, history and comments, assignment, the workflow buttons its
//! status allows, and the cases that hold it). Reads go through the alerts API's handlers;
//! changes are forms and buttons that call the JSON API, shown only to a key that may make them.
use super::cases::{Author, markdown};
use super::{Console, PageResult};
use crate::alerts::{self, Alert, AlertListParams, AlertStatus, HistoryEntry};
use crate::keys::{AlertsRead, CasesRead, RulesRead, Scope};
use crate::people::Person;
use crate::rules::RuleListParams;
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::http::ApiQuery;
use vigie_web::{Html, Shell, Time, form::encode};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/alerts", get(list)).route("/alerts/{id}", get(detail))
}

/// The alerts one page of the list shows.
const PAGE_SIZE: u32 = 50;
/// The events an alert's page lists (the rest are in the events explorer).
const SHOWN_EVENTS: usize = 100;

/// An option of a filter's `<select>`.
pub(super) struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The options of a select: `(value, label)`, the one equal to `current` selected, and
/// `current` added when it is none of them (a filter from a link).
pub(super) fn options(choices: &[(&str, &str)], current: Option<&str>) -> Vec<Opt> {
    let mut out: Vec<Opt> =
        choices.iter().map(|(v, l)| Opt { value: (*v).to_owned(), label: (*l).to_owned(), selected: current == Some(*v) }).collect();
    if let Some(c) = current
        && !choices.iter().any(|(v, _)| *v == c)
    {
        out.push(Opt { value: c.to_owned(), label: c.to_owned(), selected: true });
    }
    out
}

/// A query parameter that says something (a GET form sends its empty fields too).
pub(super) fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `?a=1&b=2` of the pairs with a value (empty when none has).
pub(super) fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v)))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    severity: Option<String>,
    rule_id: Option<String>,
    user_id: Option<String>,
    platform_id: Option<String>,
    assignee: Option<String>,
    cursor: Option<String>,
}

impl ListQuery {
    fn filters(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("status", given(&self.status)),
            ("severity", given(&self.severity)),
            ("rule_id", given(&self.rule_id)),
            ("user_id", given(&self.user_id)),
            ("platform_id", given(&self.platform_id)),
            ("assignee", given(&self.assignee)),
        ]
    }
}

/// An alert as a row of the list.
struct AlertRow {
    short_id: String,
    title: String,
    severity: String,
    status: &'static str,
    rule_id: String,
    rule_name: String,
    user_id: Option<String>,
    person: String,
    platform: String,
    occurrences: i64,
    created: Time,
    assignee: String,
}

impl AlertRow {
    fn of(a: Alert) -> AlertRow {
        AlertRow {
            person: a.user_name.clone().or_else(|| a.user_id.clone()).unwrap_or_default(),
            user_id: a.user_id,
            short_id: a.short_id,
            title: a.title,
            severity: a.severity,
            status: a.status.as_str(),
            rule_id: a.rule.id,
            rule_name: a.rule.name,
            platform: a.platform_id.unwrap_or_default(),
            occurrences: a.occurrences,
            created: Time(a.created_at),
            assignee: a.assignee.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<AlertRow>,
    statuses: Vec<Opt>,
    severities: Vec<Opt>,
    /// The rules to filter by (None: the key cannot read rules; a text field instead).
    rules: Option<Vec<Opt>>,
    rule_id: String,
    user_id: String,
    platform_id: String,
    assignee: String,
    filtered: bool,
    older: Option<String>,
    /// The first page with the same filters.
    newest: String,
    first_page: bool,
    can_read_rules: bool,
}

async fn list(State(st): State<XdrState>, console: Console, Query(q): Query<ListQuery>) -> PageResult {
    let auth = console.authorized::<AlertsRead>()?;
    let filters = q.filters();
    let params = AlertListParams {
        status: given(&q.status),
        severity: given(&q.severity),
        rule_id: given(&q.rule_id),
        user_id: given(&q.user_id),
        platform_id: given(&q.platform_id),
        assignee: given(&q.assignee),
        from: None,
        to: None,
        limit: Some(PAGE_SIZE),
        cursor: given(&q.cursor),
    };
    let page = alerts::alerts_list(State(st.clone()), auth, ApiQuery(params)).await?.0;
    let rules = if console.can(Scope::RulesRead) {
        let p = RuleListParams { enabled: None, kind: None, tag: None, q: None, sort: None, limit: Some(500), cursor: None };
        let rules = crate::rules::rules_list(State(st.clone()), console.authorized::<RulesRead>()?, ApiQuery(p)).await?.0;
        let choices: Vec<(String, String)> = rules.items.into_iter().map(|r| (r.id.to_string(), r.name)).collect();
        let mut refs: Vec<(&str, &str)> = vec![("", "Any rule")];
        refs.extend(choices.iter().map(|(v, l)| (v.as_str(), l.as_str())));
        Some(options(&refs, given(&q.rule_id).as_deref()))
    } else {
        None
    };
    let older = page.next_cursor.map(|c| {
        let mut pairs = filters.clone();
        pairs.push(("cursor", Some(c)));
        format!("/alerts{}", query_string(&pairs))
    });
    let status_choices = [
        ("", "Any status"),
        ("pending,acknowledged,ongoing", "Open (pending, acknowledged, ongoing)"),
        ("pending", "Pending"),
        ("acknowledged", "Acknowledged"),
        ("ongoing", "Ongoing"),
        ("closed", "Closed"),
        ("rejected", "Rejected"),
    ];
    let severity_choices = [
        ("", "Any severity"),
        ("critical", "Critical"),
        ("high", "High"),
        ("high,critical", "High or critical"),
        ("medium", "Medium"),
        ("low", "Low"),
    ];
    let text = |v: &Option<String>| given(v).unwrap_or_default();
    let body = ListPage {
        shell: console.shell("Alerts", "/alerts"),
        rows: page.items.into_iter().map(AlertRow::of).collect(),
        statuses: options(&status_choices, given(&q.status).as_deref()),
        severities: options(&severity_choices, given(&q.severity).as_deref()),
        can_read_rules: rules.is_some(),
        rules,
        rule_id: text(&q.rule_id),
        user_id: text(&q.user_id),
        platform_id: text(&q.platform_id),
        assignee: text(&q.assignee),
        filtered: filters.iter().any(|(_, v)| v.is_some()),
        older,
        newest: format!("/alerts{}", query_string(&filters)),
        first_page: given(&q.cursor).is_none(),
    };
    Ok(vigie_web::page(StatusCode::OK, &body))
}

/// An event of an alert or a case, as a row: its time, type and a one-line summary when the key
/// may read events (else its id only).
pub(super) struct EventRow {
    pub id: String,
    pub time: Option<Time>,
    pub event_type: String,
    pub summary: String,
}

/// A one-line summary of an event: who, where, the risk, the data and the action for a firewall
/// event; else the start of the event as sent.
fn summary(e: &crate::log::Stored, space_id: &str) -> String {
    let m = crate::log::normalized(e, space_id);
    let text = |k: &str| match m.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Array(a)) if !a.is_empty() => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(u) = text("user_id") {
        parts.push(u);
    }
    if let Some(p) = text("platform_id") {
        parts.push(format!("on {p}"));
    }
    if let Some(r) = text("risk_score") {
        parts.push(format!("risk {r}"));
    }
    if let Some(c) = text("classification_type") {
        parts.push(c);
    }
    if let Some(a) = text("policy_action") {
        parts.push(format!("action {a}"));
    }
    if parts.is_empty() {
        let mut s: String = e.body.chars().take(160).collect();
        if e.body.chars().count() > 160 {
            s.push('…');
        }
        return s;
    }
    parts.join(" · ")
}

/// The rows of `ids` (the first [`SHOWN_EVENTS`]): with their time, type and summary when the
/// key may read events.
pub(super) async fn event_rows(st: &XdrState, console: &Console, ids: &[String]) -> Result<Vec<EventRow>, StoreError> {
    let ids: Vec<String> = ids.iter().take(SHOWN_EVENTS).cloned().collect();
    if !console.can(Scope::EventsRead) {
        return Ok(ids.into_iter().map(|id| EventRow { id, time: None, event_type: String::new(), summary: String::new() }).collect());
    }
    let (space_no, space_id) = (console.caller.space_no, console.caller.space_id.to_string());
    let wanted = ids.clone();
    let found = st.store.read(move |c| crate::log::by_ids(c, space_no, &wanted)).await?;
    Ok(ids
        .into_iter()
        .map(|id| match found.iter().find(|e| e.id == id) {
            Some(e) => EventRow {
                time: Some(Time(from_micros(e.timestamp))),
                event_type: e.event_type.clone().unwrap_or_default(),
                summary: summary(e, &space_id),
                id,
            },
            // Deleted by retention since.
            None => EventRow { id, time: None, event_type: String::new(), summary: "no longer in the log".to_owned() },
        })
        .collect())
}

/// An entry of an alert's history, as a sentence.
struct HistoryRow {
    at: Time,
    who: String,
    text: String,
    comment: Option<String>,
}

fn history_row(h: HistoryEntry, author: &Author) -> HistoryRow {
    let from = h.from.clone().unwrap_or_default();
    let to = h.to.clone().unwrap_or_default();
    let text = match h.kind.as_str() {
        "created" => "Raised by detection".to_owned(),
        "status" => format!("Status {from} → {to}"),
        "assignee" if to.is_empty() => format!("Unassigned (was {from})"),
        "assignee" => format!("Assigned to {to}"),
        "urgency" => format!("Urgency {from} → {to}"),
        "comment" => "Commented".to_owned(),
        "response" => "Response".to_owned(),
        other => match (h.from.as_deref(), h.to.as_deref()) {
            (Some(f), Some(t)) => format!("{other}: {f} → {t}"),
            (None, Some(t)) => format!("{other}: {t}"),
            _ => other.to_owned(),
        },
    };
    HistoryRow { at: Time(h.at), who: author.name(h.by.as_deref().unwrap_or("")), text, comment: h.comment }
}

/// A comment, its text rendered (line breaks kept, escaped).
pub(super) struct CommentRow {
    pub author: String,
    pub at: Time,
    pub body: Html,
}

/// A workflow button.
struct ActionButton {
    label: &'static str,
    hint: &'static str,
    body: String,
    danger: bool,
    confirm: String,
}

fn action_button(a: &alerts::WorkflowAction) -> ActionButton {
    let (label, danger, confirm) = match a.status {
        AlertStatus::Acknowledged => ("Acknowledge", false, ""),
        AlertStatus::Ongoing => ("Validate (true positive)", false, ""),
        AlertStatus::Closed => ("Close", false, "Close this alert? A closed alert is final."),
        AlertStatus::Rejected => ("Reject as false positive", true, "Reject this alert as a false positive? This is final."),
        AlertStatus::Pending => (a.name, false, ""),
    };
    ActionButton {
        label,
        hint: a.description,
        body: serde_json::json!({"status": a.status.as_str()}).to_string(),
        danger,
        confirm: confirm.to_owned(),
    }
}

/// A case holding the alert.
struct CaseLink {
    short_id: String,
    title: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "alerts_detail.html")]
struct DetailPage {
    shell: Shell,
    a: Alert,
    status: &'static str,
    first_seen: Time,
    last_seen: Time,
    created: Time,
    updated: Time,
    person: Option<Person>,
    events: Vec<EventRow>,
    events_total: usize,
    events_readable: bool,
    history: Vec<HistoryRow>,
    comments: Vec<CommentRow>,
    actions: Vec<ActionButton>,
    can_write: bool,
    can_read_rules: bool,
    /// None: the key cannot read cases.
    cases: Option<Vec<CaseLink>>,
    can_open_case: bool,
    templates: Vec<String>,
    details: String,
}

async fn detail(State(st): State<XdrState>, console: Console, Path(id): Path<String>) -> PageResult {
    let auth = console.authorized::<AlertsRead>()?;
    let d = alerts::alerts_get(State(st.clone()), auth, Path(id)).await?.0;
    let (space_no, now) = (console.caller.space_no, st.clock.now());
    let person = match d.alert.user_id.clone() {
        Some(user) => {
            st.store
                .read(move |c| {
                    let p = crate::people::find(c, space_no, &user)?;
                    Ok::<_, StoreError>(p.map(|mut p| {
                        p.training_days_ago = crate::people::days_ago(p.training_date.as_deref(), now);
                        p
                    }))
                })
                .await?
        }
        None => None,
    };
    let events = event_rows(&st, &console, &d.event_ids).await?;
    let author = Author::of(&console);
    let can_write = console.can(Scope::AlertsWrite);
    let cases = if console.can(Scope::CasesRead) {
        let alert_id = d.alert.id.clone();
        let found = st.store.read(move |c| crate::cases::cases_of_alert(c, space_no, &alert_id)).await?;
        Some(found.into_iter().map(|k| CaseLink { short_id: k.short_id, title: k.title, status: k.status.as_str() }).collect::<Vec<_>>())
    } else {
        None
    };
    let can_open_case = console.can(Scope::CasesWrite) && cases.as_ref().is_some_and(Vec::is_empty);
    let templates = if can_open_case {
        crate::cases::case_templates_list(State(st.clone()), console.authorized::<CasesRead>()?)
            .await?
            .0
            .into_iter()
            .map(|t| t.name)
            .collect()
    } else {
        Vec::new()
    };
    let body = DetailPage {
        shell: console.shell(format!("{} {}", d.alert.short_id, d.alert.title), "/alerts"),
        status: d.alert.status.as_str(),
        first_seen: Time(d.alert.first_seen),
        last_seen: Time(d.alert.last_seen),
        created: Time(d.alert.created_at),
        updated: Time(d.alert.updated_at),
        person,
        events_total: d.event_ids.len(),
        events_readable: console.can(Scope::EventsRead),
        events,
        history: d.history.into_iter().map(|h| history_row(h, &author)).collect(),
        comments: d
            .comments
            .into_iter()
            .map(|c| CommentRow { author: author.name(&c.author), at: Time(c.created_at), body: markdown(&c.content) })
            .collect(),
        actions: if can_write { d.alert.status.actions().iter().map(action_button).collect() } else { Vec::new() },
        can_write,
        can_read_rules: console.can(Scope::RulesRead),
        cases,
        can_open_case,
        templates,
        details: serde_json::to_string_pretty(&d.alert.details).unwrap_or_default(),
        a: d.alert,
    };
    Ok(vigie_web::page(StatusCode::OK, &body))
}
