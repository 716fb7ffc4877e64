//! Console pages: the events explorer (`/events`: the query bar, a range, the results as a
//! table of events or as a stats table with its chart, exports) and one event (`/events/{id}`).
//! The search is the API's own (`search::search`, with the key's space and scopes); a query
//! that does not parse is shown with a caret under the position the parser names.
use super::{Console, PageError, PageResult};
use crate::keys::{EventsRead, Scope};
use crate::search::{SearchAnswer, SearchParams, search};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Map, Value};
use vigie_core::StoreError;
use vigie_core::http::ApiError;
use vigie_query::ast::{CmpOp, Expr, Key, Literal, Stage, Test, TestOp};
use vigie_web::chart::{self, Cell, Series, Stacking};
use vigie_web::{Html, Shell, Time, escape, form::encode};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/events", get(explorer)).route("/events/{id}", get(event_page))
}

/// Events per page of the explorer.
const PAGE_EVENTS: u32 = 50;
/// Events an export link asks for (the API's largest page).
const EXPORT_EVENTS: u32 = 1000;
/// Groups drawn in a bar chart (the table lists them all).
const CHART_BARS: usize = 20;

/// The ranges of the range select: (value, label, length in seconds; 0 for custom).
const RANGES: &[(&str, &str, i64)] = &[
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
    ("custom", "Custom (from – to)", 0),
];

/// Queries offered when the bar is empty (QUERY.md's examples).
const EXAMPLES: &[(&str, &str)] = &[
    ("Policy violations", "event_type == \"interaction.policy_violated\""),
    ("High-risk card numbers and IBANs", "event_type == \"interaction.high_risk\" AND classification_type IN [\"CREDIT_CARD\", \"IBAN\"]"),
    ("Violations per policy", "event_type == \"interaction.policy_violated\" | stats count by policy_name"),
    ("Top 10 people by violations", "event_type == \"interaction.policy_violated\" | stats count by user_id | sort -count | head 10"),
    ("Events per platform and hour", "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)"),
    ("Risky events per day", "risk_score > 0.8 | stats count by bin(timestamp, 1d)"),
];

/// The explorer's query string.
#[derive(Debug, Default, Deserialize)]
struct ExplorerQuery {
    #[serde(default)]
    q: String,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// An option of a select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A link offered as an example.
struct Example {
    label: &'static str,
    query: &'static str,
    href: String,
}

/// A query that does not parse, drawn as the line in question with a caret under the column.
pub(crate) struct QueryError {
    /// The line of the query the parser stopped on (absent for an error without a position).
    line_text: Option<String>,
    /// Spaces (tabs where the line has tabs) and a `^` under the column.
    caret: String,
    /// `line:column: what was expected`, or the error's sentence.
    message: String,
}

impl QueryError {
    /// An error at `line`:`column` (1-based, in characters) of `source`.
    pub(crate) fn at(source: &str, line: usize, column: usize, message: &str) -> QueryError {
        let text = source.split('\n').nth(line.saturating_sub(1)).unwrap_or("").trim_end_matches('\r');
        let mut caret: String = text.chars().take(column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        // A column past the end of the line (the end of the query) is one past its last character.
        for _ in text.chars().count()..column.saturating_sub(1) {
            caret.push(' ');
        }
        caret.push('^');
        QueryError { line_text: Some(text.to_owned()), caret, message: format!("{line}:{column}: {message}") }
    }

    /// An error without a position.
    pub(crate) fn without_position(message: impl Into<String>) -> QueryError {
        QueryError { line_text: None, caret: String::new(), message: message.into() }
    }

    /// The error block (`.query-error`) as markup, for fragments built in Rust.
    pub(crate) fn html(&self) -> Html {
        let mut out = String::from("<div class=\"query-error\" role=\"alert\">");
        if let Some(line) = &self.line_text {
            out.push_str(&escape(line));
            out.push('\n');
            out.push_str(&self.caret);
            out.push('\n');
        }
        out.push_str(&escape(&self.message));
        out.push_str("</div>");
        Html(out)
    }
}

/// One event of the results.
struct EventRow {
    href: String,
    time: Option<Time>,
    source: String,
    event_type: String,
    user: String,
    platform: String,
    risk: String,
    risk_level: String,
    summary: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct ExplorerPage {
    shell: Shell,
    q: String,
    ranges: Vec<Choice>,
    from_input: String,
    to_input: String,
    examples: Vec<Example>,
    error: Option<Html>,
    /// `events` or `table`, once a search ran.
    kind: &'static str,
    events: Vec<EventRow>,
    older: Option<String>,
    first_page: Option<String>,
    /// A stats table (or a `fields` table) as markup.
    table: Option<Html>,
    rows: usize,
    chart: Option<Html>,
    partial: Option<Time>,
    partial_whole: bool,
    exports: Option<(String, String)>,
    from: Time,
    to: Time,
}

/// A time from a form: RFC 3339, or a `datetime-local` value read as UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// A `datetime-local` input's value (UTC, to the minute).
fn input_value(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The range asked for: its name and its bounds, or why it cannot be read.
/// A range of time: its start (inclusive) and end (exclusive).
type Bounds = (DateTime<Utc>, DateTime<Utc>);

fn resolve_range(p: &ExplorerQuery, now: DateTime<Utc>) -> (String, Result<Bounds, String>) {
    let name = p.range.clone().filter(|r| RANGES.iter().any(|(v, _, _)| v == r)).unwrap_or_else(|| "24h".to_owned());
    if name == "custom" {
        let read = |v: &Option<String>, what: &str| match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => parse_time(s).map(Some).ok_or_else(|| format!("the {what} time {s:?} is not a date and time (2026-11-28T09:00)")),
        };
        let bounds = read(&p.from, "from").and_then(|from| {
            let to = read(&p.to, "to")?.unwrap_or(now);
            let from = from.unwrap_or(to - chrono::Duration::hours(24));
            if from >= to { Err("the range's start must be before its end".to_owned()) } else { Ok((from, to)) }
        });
        return (name, bounds);
    }
    let secs = RANGES.iter().find(|(v, _, _)| *v == name).map_or(86_400, |r| r.2);
    (name, Ok((now - chrono::Duration::seconds(secs), now)))
}

/// `/events?…` with these parameters.
fn explorer_href(q: &str, range: &str, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, cursor: Option<&str>) -> String {
    let mut href = format!("/events?q={}&range={}", encode(q), encode(range));
    if let (Some(from), Some(to)) = (from, to) {
        href.push_str(&format!("&from={}&to={}", encode(&rfc3339(from)), encode(&rfc3339(to))));
    }
    if let Some(c) = cursor {
        href.push_str(&format!("&cursor={}", encode(c)));
    }
    href
}

/// The events explorer.
async fn explorer(State(st): State<XdrState>, console: Console, Query(p): Query<ExplorerQuery>) -> PageResult {
    let auth = console.authorized::<EventsRead>()?;
    let now = st.clock.now();
    let (range, bounds) = resolve_range(&p, now);
    let shown_bounds = bounds.clone().unwrap_or((now - chrono::Duration::hours(24), now));
    let mut page = ExplorerPage {
        shell: console.shell("Events", "/events"),
        q: p.q.clone(),
        ranges: RANGES.iter().map(|(v, l, _)| Choice { value: (*v).to_owned(), label: (*l).to_owned(), selected: *v == range }).collect(),
        from_input: input_value(shown_bounds.0),
        to_input: input_value(shown_bounds.1),
        examples: Vec::new(),
        error: None,
        kind: "",
        events: Vec::new(),
        older: None,
        first_page: None,
        table: None,
        rows: 0,
        chart: None,
        partial: None,
        partial_whole: false,
        exports: None,
        from: Time(shown_bounds.0),
        to: Time(shown_bounds.1),
    };
    if p.q.trim().is_empty() {
        page.examples =
            EXAMPLES.iter().map(|(label, query)| Example { label, query, href: explorer_href(query, &range, None, None, None) }).collect();
    }
    let (from, to) = match bounds {
        Ok(b) => b,
        Err(e) => {
            page.error = Some(QueryError::without_position(e).html());
            return Ok(vigie_web::page(StatusCode::BAD_REQUEST, &page));
        }
    };
    // Parsed here too, for the position of an error (the search parses it again).
    let parsed = match vigie_query::parse(&p.q) {
        Ok(q) => q,
        Err(e) => {
            page.error = Some(QueryError::at(&p.q, e.line, e.column, &e.message).html());
            return Ok(vigie_web::page(StatusCode::BAD_REQUEST, &page));
        }
    };
    let params = SearchParams {
        q: p.q.clone(),
        from: Some(from),
        to: Some(to),
        limit: Some(PAGE_EVENTS),
        cursor: p.cursor.clone().filter(|c| !c.is_empty()),
        format: None,
    };
    let answer = match search(&st, &auth.0, params).await {
        Ok(a) => a,
        Err(e) if e.status.is_client_error() => {
            page.error = Some(QueryError::without_position(e.message).html());
            return Ok(vigie_web::page(e.status, &page));
        }
        Err(e) => return Err(e.into()),
    };
    let export = |format: &str| {
        let mut href =
            format!("/api/v1/events/search?q={}&from={}&to={}&format={format}", encode(&p.q), encode(&rfc3339(from)), encode(&rfc3339(to)));
        if answer.kind == "events" {
            href.push_str(&format!("&limit={EXPORT_EVENTS}"));
        }
        href
    };
    page.exports = Some((export("csv"), export("ndjson")));
    page.partial = answer.partial.then(|| answer.covered_from.map(Time)).flatten();
    page.partial_whole = answer.partial && answer.covered_from.is_none();
    page.kind = answer.kind;
    page.rows = answer.items.len();
    if answer.kind == "events" {
        page.events = answer.items.iter().map(event_row).collect();
        page.older = answer.next_cursor.as_deref().map(|c| explorer_href(&p.q, "custom", Some(from), Some(to), Some(c)));
        if p.cursor.as_deref().is_some_and(|c| !c.is_empty()) {
            page.first_page = Some(explorer_href(&p.q, "custom", Some(from), Some(to), None));
        }
    } else {
        let (table, chart) = stats_view(&parsed, &answer, (from, to), &range);
        page.table = Some(table);
        page.chart = chart;
    }
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// A field of an event as text (lists joined by commas).
fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().map(|i| text_of(Some(i))).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
    }
}

/// The log's time of an event.
fn time_of(e: &Map<String, Value>, field: &str) -> Option<Time> {
    e.get(field).and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| Time(t.with_timezone(&Utc)))
}

/// Fields a summary leaves out: those the table shows in columns, and the envelope's.
const SHOWN_ELSEWHERE: &[&str] = &[
    "id",
    "timestamp",
    "received_at",
    "space_id",
    "source",
    "event_type",
    "type",
    "user_id",
    "user_name",
    "user_email",
    "platform_id",
    "risk_score",
    "risk_level",
    "tenant_id",
    "interaction_id",
];

fn shorten(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// One line saying what an event is about: the policy's decision and the data types for a
/// firewall event, else its first few other fields.
fn summary(e: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    let action = text_of(e.get("policy_action"));
    let policy = text_of(e.get("policy_name"));
    match (action.is_empty(), policy.is_empty()) {
        (false, false) => parts.push(format!("{action} by {policy}")),
        (false, true) => parts.push(action),
        (true, false) => parts.push(policy),
        _ => {}
    }
    let types = text_of(e.get("classification_type"));
    if !types.is_empty() {
        parts.push(types);
    }
    let severity = text_of(e.get("alert_severity"));
    if !severity.is_empty() {
        parts.push(format!("alert {severity}"));
    }
    if parts.is_empty() {
        for (k, v) in e.iter().filter(|(k, _)| !SHOWN_ELSEWHERE.contains(&k.as_str())) {
            if matches!(v, Value::Object(_) | Value::Null) {
                continue;
            }
            parts.push(format!("{k}={}", shorten(&text_of(Some(v)), 40)));
            if parts.len() == 3 {
                break;
            }
        }
    }
    shorten(&parts.join(" · "), 140)
}

fn event_href(id: &str) -> String {
    format!("/events/{}", encode(id))
}

fn event_row(e: &Map<String, Value>) -> EventRow {
    let risk = match e.get("risk_score") {
        Some(Value::Number(n)) => n.as_f64().map(|v| format!("{v:.2}")).unwrap_or_default(),
        other => text_of(other),
    };
    let user = [text_of(e.get("user_id")), text_of(e.get("user_email"))].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
    EventRow {
        href: event_href(&text_of(e.get("id"))),
        time: time_of(e, "timestamp"),
        source: text_of(e.get("source")),
        event_type: text_of(e.get("event_type")),
        user,
        platform: text_of(e.get("platform_id")),
        risk,
        risk_level: text_of(e.get("risk_level")),
        summary: summary(e),
    }
}

/// A value of a row as a number.
fn number_of(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

/// A literal of the query language equal to a group's value (strings, numbers, booleans).
fn literal_of(v: &Value) -> Option<Literal> {
    match v {
        Value::String(s) => Some(Literal::Str(s.clone())),
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Literal::Num),
        Value::Bool(b) => Some(Literal::Bool(*b)),
        _ => None,
    }
}

/// The events of one group of a stats table: the query's filter and the group's values (a
/// `bin` key becomes the bucket's time range). None when the table is not one `stats` over the
/// filter, or the row lacks a key.
fn group_href(q: &vigie_query::Query, row: &Map<String, Value>, range: &str, (from, to): Bounds) -> Option<String> {
    let [Stage::Stats { by, .. }, rest @ ..] = q.stages.as_slice() else { return None };
    if by.is_empty() || rest.iter().any(|s| matches!(s, Stage::Stats { .. })) {
        return None;
    }
    let mut tests: Vec<Expr> = q.filter.iter().cloned().collect();
    let mut bucket = None;
    for key in by {
        let v = row.get(key.column())?;
        match key {
            Key::Field(f) => {
                tests.push(Expr::Test(Test { field: f.clone(), op: TestOp::Cmp(CmpOp::Eq, literal_of(v)?) }));
            }
            Key::Bin { span, .. } => {
                let start = v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok())?.with_timezone(&Utc);
                bucket = Some((start, start + chrono::Duration::seconds(i64::try_from(span.0).ok()?)));
            }
        }
    }
    let filter = match tests.len() {
        0 => None,
        1 => tests.pop(),
        _ => Some(Expr::And(tests)),
    };
    let text = vigie_query::Query { filter, stages: Vec::new() }.to_string();
    Some(match bucket {
        Some((a, b)) => explorer_href(&text, "custom", Some(a), Some(b), None),
        None if range == "custom" => explorer_href(&text, range, Some(from), Some(to), None),
        None => explorer_href(&text, range, None, None, None),
    })
}

/// A table answer as a table (group values linking to their events) and, for a stats table, a
/// chart: a time series when a key is `bin(timestamp, …)`, else bars of the first value column.
fn stats_view(q: &vigie_query::Query, a: &SearchAnswer, domain: (DateTime<Utc>, DateTime<Utc>), range: &str) -> (Html, Option<Html>) {
    let stats = q.stages.iter().find_map(|s| match s {
        Stage::Stats { by, .. } => Some(by.clone()),
        _ => None,
    });
    let keys: Vec<String> = stats.iter().flatten().map(|k| k.column().to_owned()).collect();
    let rows: Vec<Vec<Cell>> = a
        .items
        .iter()
        .map(|row| {
            let link = group_href(q, row, range, domain);
            a.columns
                .iter()
                .enumerate()
                .map(|(i, col)| {
                    let v = row.get(col);
                    let cell = match (v, number_of(v)) {
                        (Some(Value::Number(_)), Some(n)) => Cell::number(n),
                        (None | Some(Value::Null), _) => Cell::text("(none)"),
                        _ => Cell::text(text_of(v)),
                    };
                    match (&link, i == 0) {
                        (Some(href), true) => cell.link(href.clone()),
                        _ if col == "id" && stats.is_none() => {
                            let id = text_of(v);
                            cell.link(event_href(&id))
                        }
                        _ => cell,
                    }
                })
                .collect()
        })
        .collect();
    let table = chart::table(&a.columns, &rows, "Results");
    let Some(by) = stats else { return (table, None) };
    // The value drawn: the first column that is not a key and holds numbers.
    let Some(value) = a.columns.iter().find(|c| !keys.contains(c) && a.items.iter().any(|r| number_of(r.get(*c)).is_some())) else {
        return (table, None);
    };
    let bin = by.iter().find_map(|k| match k {
        Key::Bin { field, span } => Some((field.clone(), span.0)),
        Key::Field(_) => None,
    });
    let others: Vec<&String> = keys.iter().filter(|k| bin.as_ref().is_none_or(|(f, _)| f != *k)).collect();
    let name_of = |row: &Map<String, Value>| {
        let names: Vec<String> = others
            .iter()
            .map(|k| row.get(*k).map(|v| text_of(Some(v))).filter(|s| !s.is_empty()).unwrap_or_else(|| "(none)".into()))
            .collect();
        if names.is_empty() { value.clone() } else { names.join(" · ") }
    };
    let chart = if let Some((field, span)) = bin {
        let mut series: Vec<Series> = Vec::new();
        for row in &a.items {
            let (Some(t), Some(v)) =
                (row.get(&field).and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()), number_of(row.get(value)))
            else {
                continue;
            };
            let name = name_of(row);
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((t.with_timezone(&Utc), v)),
                None => series.push(Series { name, points: vec![(t.with_timezone(&Utc), v)] }),
            }
        }
        let unit = format!("{value} per {}", span_text(span));
        chart::time_series(series, domain, Stacking::Lines, &format!("{value} over time ({range})"), &unit)
    } else if others.is_empty() {
        // One number: the table says it.
        return (table, None);
    } else {
        let mut items: Vec<(String, f64)> = a.items.iter().filter_map(|r| number_of(r.get(value)).map(|v| (name_of(r), v))).collect();
        items.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap_or(std::cmp::Ordering::Equal));
        items.truncate(CHART_BARS);
        chart::bars(&items, &format!("{value} by {}", others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
    };
    (table, Some(chart))
}

/// A bucket's width as people write it (`1 h`, `1 d`).
fn span_text(secs: u64) -> String {
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("min", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{} {unit}", secs / n);
        }
    }
    format!("{secs} s")
}

// ---------------------------------------------------------------------------------------------
// One event

/// An alert holding the event.
struct HoldingAlert {
    href: String,
    short_id: String,
    title: String,
    severity: String,
    status: String,
}

/// A fact of the event's `dl.facts`.
struct Fact {
    label: &'static str,
    text: String,
    time: Option<Time>,
    href: Option<String>,
}

#[derive(Template)]
#[template(path = "events_detail.html")]
struct EventPage {
    shell: Shell,
    id: String,
    facts: Vec<Fact>,
    json: String,
    links: Vec<(String, String)>,
    can_alerts: bool,
    alerts: Vec<HoldingAlert>,
}

/// The alerts of `space_no` whose events include the event `id` (at most 20, newest first),
/// found from the event's log position (`alert_events_seq`).
fn alerts_holding(c: &rusqlite::Connection, space_no: i64, id: &str) -> Result<Vec<HoldingAlert>, StoreError> {
    let Some(seq) = c
        .prepare_cached("SELECT seq FROM events WHERE space_no = ?1 AND id = ?2")?
        .query_row(params![space_no, id], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(Vec::new());
    };
    let mut stmt = c.prepare_cached(
        "SELECT a.id, a.short_id, a.title, a.severity, a.status FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id \
         WHERE ae.seq = ?2 AND a.space_no = ?1 ORDER BY a.created_at DESC LIMIT 20",
    )?;
    let rows = stmt.query_map(params![space_no, seq], |r| {
        let id: String = r.get(0)?;
        Ok(HoldingAlert {
            href: format!("/alerts/{}", encode(&id)),
            short_id: r.get(1)?,
            title: r.get(2)?,
            severity: r.get(3)?,
            status: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A query-language string literal.
fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// One event: its main fields, the whole event as the API shows it, and links to related events
/// and to the alerts that hold it.
async fn event_page(State(st): State<XdrState>, console: Console, Path(id): Path<String>) -> PageResult {
    let auth = console.authorized::<EventsRead>()?;
    let event = crate::log::events_get(State(st.clone()), auth, Path(id.clone())).await?.0;
    let e = event.as_object().cloned().unwrap_or_default();
    let mut facts = Vec::new();
    for (label, field) in [("Time", "timestamp"), ("Received", "received_at")] {
        if let Some(t) = time_of(&e, field) {
            facts.push(Fact { label, text: String::new(), time: Some(t), href: None });
        }
    }
    for (label, field) in [("Type", "event_type"), ("Source", "source")] {
        let text = text_of(e.get(field));
        if !text.is_empty() {
            facts.push(Fact { label, text, time: None, href: None });
        }
    }
    let user_id = text_of(e.get("user_id"));
    if !user_id.is_empty() {
        let name = text_of(e.get("user_name"));
        let text = if name.is_empty() { user_id.clone() } else { format!("{name} ({user_id})") };
        let href = explorer_href(&format!("user_id == {}", quoted(&user_id)), "7d", None, None, None);
        facts.push(Fact { label: "User", text, time: None, href: Some(href) });
    }
    for (label, field) in [
        ("E-mail", "user_email"),
        ("Platform", "platform_id"),
        ("Risk score", "risk_score"),
        ("Risk level", "risk_level"),
        ("Policy action", "policy_action"),
        ("Policy", "policy_name"),
        ("Data types", "classification_type"),
        ("Direction", "direction"),
        ("Model", "model"),
        ("Alert severity", "alert_severity"),
    ] {
        let text = text_of(e.get(field));
        if !text.is_empty() {
            facts.push(Fact { label, text, time: None, href: None });
        }
    }
    let time = time_of(&e, "timestamp").map(|t| t.0);
    let mut links = Vec::new();
    if !user_id.is_empty() {
        links.push((
            format!("Other events of {user_id} (7 days)"),
            explorer_href(&format!("user_id == {}", quoted(&user_id)), "7d", None, None, None),
        ));
    }
    let platform = text_of(e.get("platform_id"));
    if !platform.is_empty() {
        links.push((
            format!("Events on {platform} (24 hours)"),
            explorer_href(&format!("platform_id == {}", quoted(&platform)), "24h", None, None, None),
        ));
    }
    if let Some(t) = time {
        let around = chrono::Duration::minutes(10);
        links.push(("Everything within 10 minutes".to_owned(), explorer_href("", "custom", Some(t - around), Some(t + around), None)));
    }
    let can_alerts = console.can(Scope::AlertsRead);
    let alerts = if can_alerts {
        let (space_no, id) = (console.caller.space_no, id.clone());
        st.store.read(move |c| alerts_holding(c, space_no, &id)).await.map_err(|e| PageError::Api(ApiError::internal(e)))?
    } else {
        Vec::new()
    };
    let json = serde_json::to_string_pretty(&event).unwrap_or_default();
    let page = EventPage { shell: console.shell("Event", "/events"), id, facts, json, links, can_alerts, alerts };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caret_sits_under_the_column_of_the_error() {
        let e = QueryError::at("a == 1\nb ==  AND c", 2, 7, "expected a value");
        assert_eq!(e.line_text.as_deref(), Some("b ==  AND c"));
        assert_eq!(e.caret, "      ^");
        assert_eq!(e.message, "2:7: expected a value");
        // Tabs stay tabs so the caret lines up; past the end of the line, one past its end.
        assert_eq!(QueryError::at("\tx ==", 1, 3, "m").caret, "\t ^");
        assert_eq!(QueryError::at("x ==", 1, 5, "m").caret, "    ^");
    }

    #[test]
    fn custom_ranges_read_rfc3339_and_form_values_as_utc() {
        let now = parse_time("2026-11-28T12:00:00Z").expect("now");
        let p = ExplorerQuery { range: Some("custom".into()), from: Some("2026-11-28T09:30".into()), ..Default::default() };
        let (name, b) = resolve_range(&p, now);
        assert_eq!(name, "custom");
        assert_eq!(b, Ok((parse_time("2026-11-28T09:30:00Z").expect("t"), now)));
        let p = ExplorerQuery { range: Some("custom".into()), from: Some("2026-11-29T00:00".into()), ..Default::default() };
        assert!(resolve_range(&p, now).1.is_err());
        let p = ExplorerQuery { range: Some("bogus".into()), ..Default::default() };
        assert_eq!(resolve_range(&p, now).0, "24h");
    }

    #[test]
    fn a_group_links_to_its_events() {
        let q = vigie_query::parse("risk_score > 0.8 OR x == 1 | stats count by user_id, bin(timestamp, 1h)").expect("parse");
        let row: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"user_id": "bob", "timestamp": "2026-11-28T09:00:00Z", "count": 3})).expect("row");
        let t = |s: &str| parse_time(s).expect("time");
        let href = group_href(&q, &row, "24h", (t("2026-11-28T00:00:00Z"), t("2026-11-29T00:00:00Z"))).expect("href");
        assert!(href.starts_with("/events?q="), "{href}");
        let q_text = href.split("&range=").next().and_then(|s| s.strip_prefix("/events?q=")).expect("q");
        assert_eq!(q_text, encode("(risk_score > 0.8 OR x == 1) AND user_id == \"bob\""));
        assert!(href.contains("&range=custom&from=2026-11-28T09%3A00%3A00.000000Z&to=2026-11-28T10%3A00%3A00.000000Z"), "{href}");
    }
}
