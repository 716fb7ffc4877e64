//! Console pages: detection rules — the list with each rule's statistics and its Enable /
//! Disable button (`/rules`), and the editor (`/rules/new`, `/rules/{id}`): the rule's fields
//! saved through the rules API, its statistics, history and Sigma export, and a Backtest that
//! sends the editor's current content (not the saved rule) to `POST /rules/backtest`, which
//! answers the would-be alerts as an HTML fragment (the API's unsaved backtest underneath).
use super::events::QueryError;
use super::{Console, PageError, PageResult};
use crate::detect::{Backtest, UnsavedBacktest, backtest_unsaved};
use crate::keys::{EventsRead, RulesRead, RulesWrite, Scope};
use crate::rules::{Rule, RuleAction, RuleHistoryParams, RuleListParams, rules_get, rules_history, rules_list, rules_sigma};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use vigie_core::http::{ApiError, ApiJson, ApiQuery};
use vigie_web::chart::{self, format_number};
use vigie_web::{Html, Shell, Time, form::encode};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/rules", get(rules_page))
        .route("/rules/new", get(new_rule_page))
        .route("/rules/backtest", post(backtest_fragment))
        .route("/rules/{id}", get(rule_page))
}

/// The would-be alerts a backtest lists (the counts cover them all).
const BACKTEST_SHOWN: u32 = 20;
/// The events of a would-be alert linked one by one.
const EVENT_LINKS: usize = 5;
/// Similarity fields and tags a rule may have (for the error slots of their inputs).
const SIMILARITY_SLOTS: usize = crate::rules::MAX_SIMILARITY;
const TAG_SLOTS: usize = 50;

/// The ranges a backtest runs over: (value, button label, days).
const BACKTEST_RANGES: &[(&str, &str, i64)] = &[("24h", "Last 24 hours", 1), ("7d", "Last 7 days", 7), ("30d", "Last 30 days", 30)];

/// An option of a select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choice(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Choice {
    Choice { value: value.into(), label: label.into(), selected }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{} %", format_number((r * 1000.0).round() / 10.0)))
}

// ---------------------------------------------------------------------------------------------
// The list

/// The list's query string.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    enabled: Option<String>,
    kind: Option<String>,
    cursor: Option<String>,
}

/// A rule of the list.
struct RuleItem {
    id: String,
    name: String,
    kind: &'static str,
    severity: &'static str,
    enabled: bool,
    paused: bool,
    broken: bool,
    builtin: bool,
    matches: String,
    alerts: String,
    false_positives: String,
    last_match: Option<Time>,
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    shell: Shell,
    can_write: bool,
    q: String,
    enabled: Vec<Choice>,
    kinds: Vec<Choice>,
    filtered: bool,
    rules: Vec<RuleItem>,
    next: Option<String>,
}

async fn rules_page(State(st): State<XdrState>, console: Console, Query(p): Query<ListQuery>) -> PageResult {
    let auth = console.authorized::<RulesRead>()?;
    let q = p.q.clone().unwrap_or_default();
    let enabled = match p.enabled.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let kind = p.kind.clone().filter(|k| k == "pipe" || k == "sigma");
    let params = RuleListParams {
        enabled,
        kind: kind.clone(),
        tag: None,
        q: Some(q.clone()).filter(|q| !q.trim().is_empty()),
        sort: None,
        limit: Some(100),
        cursor: p.cursor.clone().filter(|c| !c.is_empty()),
    };
    let page = rules_list(State(st), auth, ApiQuery(params)).await?.0;
    let rules = page
        .items
        .into_iter()
        .map(|r| RuleItem {
            id: r.id.to_string(),
            kind: r.kind,
            severity: r.severity_label,
            enabled: r.enabled,
            paused: r.paused,
            broken: r.compile_error.is_some(),
            builtin: r.builtin.is_some(),
            matches: format_number(r.stats.matches as f64),
            alerts: format_number(r.stats.alerts as f64),
            false_positives: percent(r.stats.false_positive_rate),
            last_match: r.stats.last_match_at.map(Time),
            name: r.name,
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        format!(
            "/rules?q={}&enabled={}&kind={}&cursor={}",
            encode(&q),
            encode(p.enabled.as_deref().unwrap_or("")),
            encode(kind.as_deref().unwrap_or("")),
            encode(&c)
        )
    });
    let state = p.enabled.as_deref().unwrap_or("");
    let page = RulesPage {
        shell: console.shell("Rules", "/rules"),
        can_write: console.can(Scope::RulesWrite),
        filtered: enabled.is_some() || kind.is_some() || !q.trim().is_empty(),
        q,
        enabled: vec![
            choice("", "Enabled or not", state.is_empty()),
            choice("true", "Enabled", state == "true"),
            choice("false", "Disabled", state == "false"),
        ],
        kinds: vec![
            choice("", "Any kind", kind.is_none()),
            choice("pipe", "Pipe query", kind.as_deref() == Some("pipe")),
            choice("sigma", "Sigma", kind.as_deref() == Some("sigma")),
        ],
        rules,
        next,
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

// ---------------------------------------------------------------------------------------------
// The editor

/// An action of the editor: one select whose options are the actions' JSON (the form sends
/// it as `actions.N`), or the alert action carried as is.
struct ActionSlot {
    index: usize,
    label: &'static str,
    /// The alert action's JSON (a hidden field), else none: a select of `choices`.
    fixed: Option<String>,
    choices: Vec<Choice>,
}

/// A change in the rule's history.
struct HistoryItem {
    at: Time,
    by: String,
    kind: String,
    text: String,
}

/// What the rule has done.
struct StatsView {
    matches: String,
    alerts: String,
    occurrences: String,
    suppressed: String,
    rejected: String,
    false_positives: String,
    last_match: Option<Time>,
    last_fired: Option<Time>,
    paused_until: Option<Time>,
}

#[derive(Template)]
#[template(path = "rules_edit.html")]
struct RuleEditPage {
    shell: Shell,
    /// Empty for a new rule.
    id: String,
    can_write: bool,
    can_backtest: bool,
    name: String,
    description: String,
    severities: Vec<Choice>,
    severity_label: String,
    kinds: Vec<Choice>,
    kind: String,
    source: String,
    similarity: String,
    tags: String,
    enabled: bool,
    slots: Vec<ActionSlot>,
    actions_text: Vec<String>,
    api: String,
    method: &'static str,
    then: String,
    similarity_slots: usize,
    tag_slots: usize,
    backtest_ranges: Vec<(String, &'static str)>,
    compile_error: Option<Html>,
    builtin: Option<String>,
    version: i64,
    created: Option<Time>,
    updated: Option<Time>,
    stats: Option<StatsView>,
    alerts_href: String,
    history: Vec<HistoryItem>,
    sigma_href: Option<String>,
    sigma_reasons: Vec<String>,
}

/// The severities offered: the four words' numbers, and the rule's own number if it is another.
fn severities(current: u8) -> Vec<Choice> {
    let mut levels: Vec<(u8, String)> = [(25u8, "Low (25)"), (50, "Medium (50)"), (70, "High (70)"), (90, "Critical (90)")]
        .iter()
        .map(|(n, l)| (*n, (*l).to_owned()))
        .collect();
    if !levels.iter().any(|(n, _)| *n == current) {
        levels.push((current, format!("{} ({current})", capitalised(crate::alerts::severity_word(current)))));
        levels.sort_by_key(|(n, _)| *n);
    }
    levels.into_iter().map(|(n, l)| choice(n.to_string(), l, n == current)).collect()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn action_json(a: &RuleAction) -> String {
    serde_json::to_string(a).unwrap_or_default()
}

/// An action as a sentence.
fn action_text(a: &RuleAction) -> String {
    match a {
        RuleAction::Alert => "Raise an alert (or add an occurrence to the open one)".to_owned(),
        RuleAction::Case { template, assignee } => {
            let mut s = match template {
                Some(t) => format!("Open a case from the template “{t}”"),
                None => "Open a case titled as the alert".to_owned(),
            };
            if let Some(a) = assignee {
                s.push_str(&if a == "on-duty" { ", assigned to the analyst on duty".to_owned() } else { format!(", assigned to {a}") });
            }
            s
        }
        RuleAction::Notify { channel: Some(c) } => format!("Notify through the channel “{c}”"),
        RuleAction::Notify { channel: None } => "Notify every channel whose routes take the alert".to_owned(),
    }
}

/// The editor's action slots: the rule's actions in their order (so an unchanged rule saves the
/// same list), then a case slot if it has none and one more notify slot. A select left on its
/// empty option is left out of the list.
fn action_slots(actions: &[RuleAction], templates: &[String], channels: &[String]) -> Vec<ActionSlot> {
    let mut case_options: Vec<RuleAction> = Vec::new();
    for t in std::iter::once(None).chain(templates.iter().map(|t| Some(t.clone()))) {
        case_options.push(RuleAction::Case { template: t.clone(), assignee: None });
        case_options.push(RuleAction::Case { template: t, assignee: Some("on-duty".into()) });
    }
    let notify_options: Vec<RuleAction> = std::iter::once(RuleAction::Notify { channel: None })
        .chain(channels.iter().map(|c| RuleAction::Notify { channel: Some(c.clone()) }))
        .collect();
    let select = |index: usize, label: &'static str, none: &str, options: &[RuleAction], current: Option<&RuleAction>| {
        let mut choices = vec![choice("", none, current.is_none())];
        let mut all: Vec<RuleAction> = options.to_vec();
        if let Some(c) = current.filter(|c| !all.contains(c)) {
            all.push(c.clone());
        }
        choices.extend(all.iter().map(|a| choice(action_json(a), action_text(a), Some(a) == current)));
        ActionSlot { index, label, fixed: None, choices }
    };
    let mut slots = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        slots.push(match a {
            RuleAction::Alert => ActionSlot { index: i, label: "Alert", fixed: Some(action_json(a)), choices: Vec::new() },
            RuleAction::Case { .. } => select(i, "Case", "No case", &case_options, Some(a)),
            RuleAction::Notify { .. } => select(i, "Notification", "No notification", &notify_options, Some(a)),
        });
    }
    let mut next = actions.len();
    if !actions.iter().any(|a| matches!(a, RuleAction::Case { .. })) {
        slots.push(select(next, "Case", "No case", &case_options, None));
        next += 1;
    }
    let label = if actions.iter().any(|a| matches!(a, RuleAction::Notify { .. })) { "Another notification" } else { "Notification" };
    slots.push(select(next, label, "No notification", &notify_options, None));
    slots
}

/// The names of the space's case templates and notification channels, as far as the key may
/// read them (else none: the editor still offers a case titled as the alert, and routing).
async fn templates_and_channels(st: &XdrState, console: &Console) -> (Vec<String>, Vec<String>) {
    let templates = match console.authorized::<crate::keys::CasesRead>() {
        Ok(auth) => crate::cases::case_templates_list(State(st.clone()), auth)
            .await
            .map(|j| j.0.into_iter().map(|t| t.name).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let channels = match console.authorized::<crate::keys::AlertsRead>() {
        Ok(auth) => {
            let params = crate::notify::ChannelListParams { limit: Some(500), cursor: None };
            crate::notify::channels_list(State(st.clone()), auth, ApiQuery(params))
                .await
                .map(|j| j.0.items.into_iter().map(|c| c.name).collect())
                .unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    (templates, channels)
}

/// `line:column: message` → the position and the message.
fn position(message: &str) -> Option<(usize, usize, &str)> {
    let (pos, rest) = message.split_once(": ")?;
    let (l, c) = pos.split_once(':')?;
    Some((l.parse().ok()?, c.parse().ok()?, rest))
}

/// A compile error of `source` as the error block, with a caret where it has a position.
fn compile_error_block(source: &str, message: &str) -> Html {
    match position(message) {
        Some((l, c, rest)) => QueryError::at(source, l, c, rest).html(),
        None => QueryError::without_position(message).html(),
    }
}

fn editor(console: &Console, rule: Option<&Rule>, templates: &[String], channels: &[String]) -> RuleEditPage {
    let can_write = console.can(Scope::RulesWrite);
    let default_actions = [RuleAction::Alert];
    let actions: &[RuleAction] = rule.map_or(&default_actions, |r| r.actions.as_slice());
    let kind = rule.map_or("pipe", |r| r.kind).to_owned();
    let severity = rule.map_or(50, |r| r.severity);
    let id = rule.map(|r| r.id.to_string()).unwrap_or_default();
    let title = rule.map_or_else(|| "New rule".to_owned(), |r| r.name.clone());
    RuleEditPage {
        shell: console.shell(title, "/rules"),
        can_write,
        can_backtest: console.can(Scope::EventsRead),
        name: rule.map(|r| r.name.clone()).unwrap_or_default(),
        description: rule.map(|r| r.description.clone()).unwrap_or_default(),
        severities: severities(severity),
        severity_label: capitalised(crate::alerts::severity_word(severity)),
        kinds: vec![choice("pipe", "Pipe query", kind == "pipe"), choice("sigma", "Sigma YAML", kind == "sigma")],
        kind,
        source: rule.map(|r| r.source.clone()).unwrap_or_default(),
        similarity: rule.map(|r| r.similarity.join(", ")).unwrap_or_default(),
        tags: rule.map(|r| r.tags.join(", ")).unwrap_or_default(),
        enabled: rule.is_some_and(|r| r.enabled),
        slots: action_slots(actions, templates, channels),
        actions_text: actions.iter().map(action_text).collect(),
        api: if rule.is_some() { format!("/api/v1/rules/{id}") } else { "/api/v1/rules".to_owned() },
        method: if rule.is_some() { "PATCH" } else { "POST" },
        then: if rule.is_some() { "reload".to_owned() } else { "redirect:/rules/{id}".to_owned() },
        similarity_slots: SIMILARITY_SLOTS,
        tag_slots: TAG_SLOTS,
        backtest_ranges: BACKTEST_RANGES.iter().map(|(v, l, _)| (format!("/rules/backtest?range={v}"), *l)).collect(),
        compile_error: rule.and_then(|r| r.compile_error.as_deref().map(|e| compile_error_block(&r.source, e))),
        builtin: rule.and_then(|r| r.builtin.clone()),
        version: rule.map_or(0, |r| r.version),
        created: rule.map(|r| Time(r.created_at)),
        updated: rule.map(|r| Time(r.updated_at)),
        stats: rule.map(|r| StatsView {
            matches: format_number(r.stats.matches as f64),
            alerts: format_number(r.stats.alerts as f64),
            occurrences: format_number(r.stats.occurrences as f64),
            suppressed: format_number(r.stats.suppressed as f64),
            rejected: format_number(r.stats.rejected as f64),
            false_positives: percent(r.stats.false_positive_rate),
            last_match: r.stats.last_match_at.map(Time),
            last_fired: r.stats.last_fired_at.map(Time),
            paused_until: r.paused_until.filter(|_| r.paused).map(Time),
        }),
        alerts_href: format!("/alerts?rule_id={}", encode(&id)),
        id,
        history: Vec::new(),
        sigma_href: None,
        sigma_reasons: Vec::new(),
    }
}

/// The editor for a new rule (needs `rules_write`).
async fn new_rule_page(State(st): State<XdrState>, console: Console) -> PageResult {
    console.authorized::<RulesWrite>()?;
    let (templates, channels) = templates_and_channels(&st, &console).await;
    let page = editor(&console, None, &templates, &channels);
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// What a history entry's detail says, in a few words.
fn history_text(kind: &str, detail: &Value) -> String {
    let Value::Object(d) = detail else { return String::new() };
    match kind {
        "updated" => {
            let mut fields: Vec<String> = d.keys().filter(|k| *k != "version").cloned().collect();
            fields.sort();
            let mut s = format!("changed {}", fields.join(", "));
            if let Some(v) = d.get("version") {
                s.push_str(&format!("; version {} → {}", v["from"], v["to"]));
            }
            s
        }
        // The kind says it all.
        "enabled" | "disabled" => String::new(),
        "created" => d.get("builtin").and_then(Value::as_str).map(|b| format!("installed as default rule {b}")).unwrap_or_default(),
        // The rate limit's pause: its end is 30 minutes after the entry's own time, shown beside it.
        "paused" => match d.get("alerts_in_30s").and_then(Value::as_u64) {
            Some(n) => format!("raised {n} alerts within 30 seconds: no new alerts for 30 minutes"),
            None => "no new alerts for 30 minutes".to_owned(),
        },
        _ => {
            let text = detail.to_string();
            if text == "{}" { String::new() } else { text.chars().take(160).collect() }
        }
    }
}

/// A rule: the editor (read-only without `rules_write`), its statistics, history and Sigma form.
async fn rule_page(State(st): State<XdrState>, console: Console, Path(id): Path<String>) -> PageResult {
    let auth = console.authorized::<RulesRead>()?;
    let rule = rules_get(State(st.clone()), auth.clone(), Path(id.clone())).await?.0;
    let history =
        rules_history(State(st.clone()), auth.clone(), Path(id.clone()), ApiQuery(RuleHistoryParams { limit: Some(50), cursor: None }))
            .await?
            .0
            .items;
    let sigma = rules_sigma(State(st.clone()), auth, Path(id)).await;
    let (templates, channels) = templates_and_channels(&st, &console).await;
    let mut page = editor(&console, Some(&rule), &templates, &channels);
    page.history = history
        .into_iter()
        .map(|h| HistoryItem { at: Time(h.at), by: h.by.unwrap_or_default(), text: history_text(&h.kind, &h.detail), kind: h.kind })
        .collect();
    match sigma {
        Ok(_) => page.sigma_href = Some(format!("/api/v1/rules/{}/sigma", rule.id)),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            page.sigma_reasons = if e.fields.is_empty() { vec![e.message] } else { e.fields.into_iter().map(|f| f.message).collect() }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(vigie_web::page(StatusCode::OK, &page))
}

// ---------------------------------------------------------------------------------------------
// The backtest fragment

/// The range of a backtest.
#[derive(Debug, Deserialize)]
struct BacktestQuery {
    range: Option<String>,
}

/// The editor's fields a backtest uses (the others are what Save sends, ignored here).
#[derive(Debug, Deserialize)]
struct EditorRule {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    similarity: Vec<String>,
}

/// A would-be alert.
struct WouldAlertRow {
    title: String,
    user: String,
    user_href: Option<String>,
    platform: String,
    occurrences: String,
    first_seen: Option<Time>,
    last_seen: Option<Time>,
    events: Vec<(usize, String)>,
    events_href: Option<String>,
    more_events: usize,
}

#[derive(Template)]
#[template(path = "rules_backtest.html")]
struct BacktestFragment {
    range: &'static str,
    error: Option<Html>,
    events: String,
    matches: String,
    alerts: String,
    suppressed: String,
    partial: Option<Time>,
    days: Vec<(String, String, String)>,
    chart: Option<Html>,
    would: Vec<WouldAlertRow>,
    shown: u64,
    total: u64,
}

fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// The events explorer over `[from, to)` with query `q`.
fn explorer(q: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let t = |t: DateTime<Utc>| encode(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    format!("/events?q={}&range=custom&from={}&to={}", encode(q), t(from), t(to))
}

fn fragment_of(b: &Backtest, range: &'static str, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> BacktestFragment {
    let would = b
        .would_alert
        .iter()
        .map(|a| {
            let user = a.user_id.clone().unwrap_or_default();
            let ids: Vec<String> = a.event_ids.iter().map(|id| json_string(id)).collect();
            WouldAlertRow {
                title: a.title.clone(),
                user_href: a.user_id.as_ref().map(|u| explorer(&format!("user_id == {}", json_string(u)), from, to)),
                user,
                platform: a.platform_id.clone().unwrap_or_default(),
                occurrences: format_number(a.occurrences as f64),
                first_seen: parse_rfc3339(&a.first_seen).map(Time),
                last_seen: parse_rfc3339(&a.last_seen).map(Time),
                events: a
                    .event_ids
                    .iter()
                    .take(EVENT_LINKS)
                    .enumerate()
                    .map(|(i, id)| (i + 1, format!("/events/{}", encode(id))))
                    .collect(),
                events_href: (!ids.is_empty()).then(|| explorer(&format!("id IN [{}]", ids.join(", ")), from, to)),
                more_events: a.event_ids.len().saturating_sub(EVENT_LINKS),
            }
        })
        .collect();
    let with_alerts: Vec<(String, f64)> = b.per_day.iter().map(|d| (d.day.clone(), d.alerts as f64)).collect();
    BacktestFragment {
        range,
        error: None,
        events: format_number(b.events as f64),
        matches: format_number(b.matches as f64),
        alerts: format_number(b.alerts as f64),
        suppressed: format_number(b.suppressed as f64),
        partial: b.partial.then(|| b.covered_to.as_deref().and_then(parse_rfc3339).map(Time)).flatten(),
        days: b.per_day.iter().map(|d| (d.day.clone(), format_number(d.matches as f64), format_number(d.alerts as f64))).collect(),
        chart: (!with_alerts.is_empty() && b.alerts > 0).then(|| chart::bars(&with_alerts, "Would-be alerts per day")),
        shown: b.would_alert.len() as u64,
        total: b.alerts,
        would,
    }
}

/// `POST /rules/backtest?range=7d` with the editor's fields (JSON): the would-be alerts of the
/// rule as written, as HTML. A source that does not compile answers its error with a caret
/// (HTML); a missing scope or a bad request answers the API's JSON error (shown on the form).
async fn backtest_fragment(
    State(st): State<XdrState>,
    console: Console,
    Query(q): Query<BacktestQuery>,
    ApiJson(rule): ApiJson<EditorRule>,
) -> Result<Response, ApiError> {
    let unwrap = |e: PageError| {
        let PageError::Api(e) = e;
        e
    };
    let auth = console.authorized::<RulesRead>().map_err(unwrap)?;
    console.authorized::<EventsRead>().map_err(unwrap)?;
    let (_, label, days) = BACKTEST_RANGES.iter().find(|(v, _, _)| Some(*v) == q.range.as_deref()).copied().unwrap_or(BACKTEST_RANGES[1]);
    let to = st.clock.now();
    let from = to - chrono::Duration::days(days);
    let kind_text = rule.kind.clone().unwrap_or_else(|| "pipe".to_owned());
    let empty = || BacktestFragment {
        range: label,
        error: None,
        events: String::new(),
        matches: String::new(),
        alerts: String::new(),
        suppressed: String::new(),
        partial: None,
        days: Vec::new(),
        chart: None,
        would: Vec::new(),
        shown: 0,
        total: 0,
    };
    // Compiled here first for the error's position (the backtest compiles it again).
    if let Some(kind) = vigie_detect::Kind::parse(&kind_text) {
        if rule.source.trim().is_empty() {
            let mut f = empty();
            f.error = Some(QueryError::without_position("Write the rule first: a query, or Sigma YAML.").html());
            return Ok(vigie_web::fragment(&f));
        }
        if let Err(e) = vigie_detect::compile(kind, &rule.source) {
            let mut f = empty();
            f.error = Some(match (e.line, e.column) {
                (Some(l), Some(c)) => QueryError::at(&rule.source, l, c, &e.message).html(),
                _ => QueryError::without_position(e.to_string()).html(),
            });
            return Ok(vigie_web::fragment(&f));
        }
    }
    let request = UnsavedBacktest {
        kind: kind_text,
        source: rule.source,
        name: rule.name.filter(|n| !n.trim().is_empty()),
        similarity: rule.similarity,
        from: Some(from),
        to: Some(to),
        limit: Some(BACKTEST_SHOWN),
    };
    let out = backtest_unsaved(State(st), auth, ApiJson(request)).await?.0;
    Ok(vigie_web::fragment(&fragment_of(&out, label, (from, to))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_slots_keep_the_rules_order_and_offer_what_it_lacks() {
        let actions = [RuleAction::Alert, RuleAction::Notify { channel: Some("soc".into()) }];
        let slots = action_slots(&actions, &["AI Platform Violation".into()], &["soc".into(), "mail".into()]);
        assert_eq!(
            slots.iter().map(|s| (s.index, s.label)).collect::<Vec<_>>(),
            vec![(0, "Alert"), (1, "Notification"), (2, "Case"), (3, "Another notification")]
        );
        assert_eq!(slots[0].fixed.as_deref(), Some("{\"type\":\"alert\"}"));
        let chosen: Vec<&str> = slots[1].choices.iter().filter(|c| c.selected).map(|c| c.value.as_str()).collect();
        assert_eq!(chosen, vec!["{\"type\":\"notify\",\"channel\":\"soc\"}"]);
        // A case from the template, or titled as the alert; on duty or not; or none.
        assert_eq!(slots[2].choices.len(), 5);
        assert!(slots[2].choices[0].selected && slots[2].choices[0].value.is_empty());
    }

    #[test]
    fn compile_errors_read_their_position() {
        assert_eq!(position("1:27: expected a value"), Some((1, 27, "expected a value")));
        assert_eq!(position("line 3: bad"), None);
    }
}
