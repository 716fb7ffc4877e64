//! Console pages: the dashboards — the space's home (its default dashboard), any other at
//! `/dashboards/{id}`, each over 24 h, 7 d or 30 d with the list of the space's dashboards to
//! switch, its widgets refreshed in place (`/dashboards/{id}/widgets`, a fragment), and, for
//! an admin key, the editor (`/dashboards/new`, `/dashboards/{id}/edit`) whose form sends the
//! dashboard to the JSON API. Widgets are evaluated by `dashboards::evaluate` (the search path
//! of the API) and drawn with `vigie_web::chart`; one widget's error shows in that widget.
use super::{Console, PageResult};
use crate::dashboards::{self, Dashboard, DashboardData, Range, Render, Widget, WidgetResult};
use crate::keys::{AdminScope, EventsRead, Scope};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use vigie_core::StoreError;
use vigie_core::http::{ApiError, Page};
use vigie_query::ast::AggFn;
use vigie_web::chart::{self, Cell, Point, Series, Stacking};
use vigie_web::{Html, Shell, Time, form::encode};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/", get(home))
        .route("/dashboards/new", get(new_page))
        .route("/dashboards/{id}", get(show))
        .route("/dashboards/{id}/widgets", get(widgets_fragment))
        .route("/dashboards/{id}/edit", get(edit_page))
        .route("/dashboards/{id}/widgets/{index}/remove", axum::routing::post(remove_widget))
}

/// The dashboards listed to switch between.
const LISTED: u32 = 100;

#[derive(Debug, Default, Deserialize)]
struct RangeQuery {
    range: Option<String>,
}

/// A link of the range or dashboard switcher.
struct Link {
    label: String,
    href: String,
    current: bool,
}

/// A widget as drawn.
pub(crate) struct WidgetView {
    title: String,
    description: String,
    /// Its columns of the grid.
    span: u8,
    /// The chart (or table), when it has an answer with data.
    body: Option<Html>,
    /// Why it has no answer.
    error: Option<String>,
    /// Its answer is empty: the empty state is shown instead.
    empty: bool,
    partial: bool,
    /// The query as run.
    query: String,
    /// The query in the events explorer.
    explore: String,
}

/// The widgets of a dashboard over a range (the page's grid, and the refresh fragment).
#[derive(Template)]
#[template(path = "dashboard_widgets.html")]
struct WidgetsFragment {
    widgets: Vec<WidgetView>,
    updated: Time,
    range_label: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    shell: Shell,
    dashboard: Option<Dashboard>,
    dashboards: Vec<Link>,
    ranges: Vec<Link>,
    widgets: Vec<WidgetView>,
    updated: Time,
    range_label: &'static str,
    refresh_url: String,
    can_write: bool,
}

async fn home(State(st): State<XdrState>, console: Console, Query(q): Query<RangeQuery>) -> PageResult {
    if !console.can(Scope::EventsRead) {
        // The dashboard reads events; a key that cannot goes to the first page it may see.
        if let Some((href, _, _)) = super::NAV.iter().find(|(_, _, s)| console.can(*s)) {
            return Ok(vigie_web::redirect(href));
        }
    }
    console.authorized::<EventsRead>()?;
    let d = dashboards::home(&st, &console.caller).await?;
    dashboard_page(&st, &console, d, q.range.as_deref(), true).await
}

async fn show(State(st): State<XdrState>, console: Console, Path(id): Path<String>, Query(q): Query<RangeQuery>) -> PageResult {
    console.authorized::<EventsRead>()?;
    let d = dashboards::get(&st, &console.caller, vigie_core::http::path_id(&id, "dashboard")?).await?;
    dashboard_page(&st, &console, Some(d), q.range.as_deref(), false).await
}

/// The page of `d` (or the empty state when the space has no dashboard).
async fn dashboard_page(st: &XdrState, console: &Console, d: Option<Dashboard>, range: Option<&str>, at_home: bool) -> PageResult {
    let listed = list(st, console).await?;
    let can_write = console.can(Scope::Admin);
    let Some(d) = d else {
        let shell = console.shell("Dashboards", "/");
        let page = DashboardPage {
            shell,
            dashboard: None,
            dashboards: Vec::new(),
            ranges: Vec::new(),
            widgets: Vec::new(),
            updated: Time(st.clock.now()),
            range_label: Range::default().label(),
            refresh_url: String::new(),
            can_write,
        };
        return Ok(vigie_web::page(StatusCode::OK, &page));
    };
    let range = dashboards_range(range, &d)?;
    let data = dashboards::evaluate(st, &console.caller, &d, range).await;
    let widgets = views(st, console, &d, &data).await?;
    let base = if at_home { "/".to_owned() } else { format!("/dashboards/{}", d.id) };
    let ranges = Range::ALL
        .iter()
        .map(|r| Link { label: r.label().to_owned(), href: format!("{base}?range={}", r.as_str()), current: *r == range })
        .collect();
    let dashboards = listed
        .into_iter()
        .map(|(id, name)| Link { label: name, href: format!("/dashboards/{id}?range={}", range.as_str()), current: id == d.id.to_string() })
        .collect();
    let shell = console.shell(d.name.clone(), "/");
    let page = DashboardPage {
        shell,
        refresh_url: format!("/dashboards/{}/widgets?range={}", d.id, range.as_str()),
        dashboard: Some(d),
        dashboards,
        ranges,
        widgets,
        updated: Time(data.to),
        range_label: range.label(),
        can_write,
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

fn dashboards_range(asked: Option<&str>, d: &Dashboard) -> Result<Range, ApiError> {
    dashboards::range_of(asked, d)
}

/// The space's dashboards: (id, name), by name.
async fn list(st: &XdrState, console: &Console) -> Result<Vec<(String, String)>, ApiError> {
    let params = dashboards::DashboardListParams { limit: Some(LISTED), cursor: None };
    let axum::Json(Page { items, .. }) = dashboards::dashboards_list(
        State(st.clone()),
        console.authorized::<EventsRead>().map_err(|super::PageError::Api(e)| e)?,
        vigie_core::http::ApiQuery(params),
    )
    .await?;
    Ok(items.into_iter().map(|d| (d.id.to_string(), d.name)).collect())
}

/// The widgets of a dashboard alone, for the page's automatic refresh.
async fn widgets_fragment(State(st): State<XdrState>, console: Console, Path(id): Path<String>, Query(q): Query<RangeQuery>) -> PageResult {
    console.authorized::<EventsRead>()?;
    let d = dashboards::get(&st, &console.caller, vigie_core::http::path_id(&id, "dashboard")?).await?;
    let range = dashboards_range(q.range.as_deref(), &d)?;
    let data = dashboards::evaluate(&st, &console.caller, &d, range).await;
    let widgets = views(&st, &console, &d, &data).await?;
    Ok(vigie_web::fragment(&WidgetsFragment { widgets, updated: Time(data.to), range_label: range.label() }))
}

/// Renders a dashboard's page the way its handler does (evaluation + template): what `vigie
/// bench dashboard` measures. The HTML.
pub async fn render(st: &XdrState, console: &Console, d: Dashboard, range: Range) -> Result<String, super::PageError> {
    let resp = dashboard_page(st, console, Some(d), Some(range.as_str()), false).await?;
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.map_err(ApiError::internal)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Drawing widgets

/// A value of a row as a number (a count, a sum; null or absent: none).
fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(vigie_query::value::number)
}

fn time_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v?.as_str()?).ok().map(|t| t.with_timezone(&Utc))
}

/// A group key's value as a label.
fn label(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "(empty)".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// What the chart of a widget's answer needs to know of its query.
struct Shape {
    /// The value's column (the first aggregation's).
    value: String,
    /// Its function.
    func: AggFn,
    /// The group columns that are not the time bin.
    groups: Vec<String>,
    /// The time bin's width, µs.
    bin_us: Option<i64>,
}

fn shape_of(r: &WidgetResult) -> Option<Shape> {
    let q = vigie_query::parse(&r.query).ok()?;
    let (aggs, by) = dashboards::last_stats(&q)?;
    let agg = aggs.first()?;
    Some(Shape {
        value: agg.column(),
        func: agg.func,
        groups: by.iter().filter(|k| !dashboards::is_time_bin(k)).map(|k| k.column().to_owned()).collect(),
        bin_us: r.bin_seconds.map(|s| (s as i64).saturating_mul(1_000_000)),
    })
}

/// Whether a missing bin means zero (counts and sums), not "no value" (averages, extremes).
fn zero_when_missing(f: AggFn) -> bool {
    matches!(f, AggFn::Count | AggFn::Dc | AggFn::Sum)
}

/// The points of `rows` (one per bin), with the empty bins of `[from, to)` as zeros when a
/// missing bin means zero.
fn points(rows: &[&Map<String, Value>], s: &Shape, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Point> {
    let mut by_time: std::collections::BTreeMap<DateTime<Utc>, f64> = std::collections::BTreeMap::new();
    for r in rows {
        if let (Some(t), Some(v)) = (time_of(r.get("timestamp")), num(r.get(&s.value))) {
            *by_time.entry(t).or_default() += v;
        }
    }
    if let Some(bin) = s.bin_us.filter(|b| *b > 0 && zero_when_missing(s.func)) {
        let (lo, hi) = (from.timestamp_micros(), to.timestamp_micros());
        let mut t = lo - lo.rem_euclid(bin);
        while t < hi {
            if let Some(at) = DateTime::from_timestamp_micros(t) {
                by_time.entry(at).or_insert(0.0);
            }
            t += bin;
        }
    }
    by_time.into_iter().collect()
}

fn unit(s: &Shape) -> String {
    match s.bin_us {
        Some(b) => format!("{} per {}", s.value, vigie_query::ast::Duration((b / 1_000_000) as u64)),
        None => s.value.clone(),
    }
}

/// The chart of one widget's answer; `None` when it has nothing to draw.
fn draw(w: &Widget, r: &WidgetResult, data: &DashboardData, names: &HashMap<String, String>, people_links: bool) -> Option<Html> {
    let domain = (data.from, data.to);
    if w.render == Render::Table {
        return table(w, r, names, people_links);
    }
    let s = shape_of(r)?;
    let rows: Vec<&Map<String, Value>> = r.rows.iter().collect();
    match w.render {
        Render::Number => {
            if s.bin_us.is_none() {
                let v = rows.first().and_then(|row| num(row.get(&s.value))).unwrap_or(0.0);
                return Some(chart::number(v, &w.title, None));
            }
            let pts = points(&rows, &s, data.from, data.to);
            let values = pts.iter().map(|p| p.1);
            let total = match s.func {
                AggFn::Min => values.fold(f64::INFINITY, f64::min),
                AggFn::Max => values.fold(f64::NEG_INFINITY, f64::max),
                _ => values.sum(),
            };
            let total = if total.is_finite() { total } else { 0.0 };
            Some(chart::number(total, &w.title, Some((&pts, Some(domain)))))
        }
        Render::Sparkline => {
            if rows.is_empty() {
                return None;
            }
            Some(chart::sparkline(&points(&rows, &s, data.from, data.to), Some(domain), &w.title))
        }
        Render::Timeseries => {
            if rows.is_empty() {
                return None;
            }
            let mut groups: std::collections::BTreeMap<String, Vec<&Map<String, Value>>> = std::collections::BTreeMap::new();
            for row in &rows {
                let name = match s.groups.first() {
                    Some(g) => label(row.get(g)),
                    None => s.value.clone(),
                };
                groups.entry(name).or_default().push(row);
            }
            let series: Vec<Series> =
                groups.into_iter().map(|(name, rows)| Series { name, points: points(&rows, &s, data.from, data.to) }).collect();
            let stacking = if w.options.stacked == Some(true) { Stacking::Stacked } else { Stacking::Lines };
            Some(chart::time_series(series, domain, stacking, &w.title, &unit(&s)))
        }
        Render::Bars => {
            if rows.is_empty() {
                return None;
            }
            let items: Vec<(String, f64)> = rows
                .iter()
                .take(w.limit() as usize)
                .map(|row| {
                    let name = s.groups.iter().map(|g| label(row.get(g))).collect::<Vec<_>>().join(" · ");
                    (name, num(row.get(&s.value)).unwrap_or(0.0))
                })
                .collect();
            Some(chart::bars(&items, &w.title))
        }
        Render::Table => None,
    }
}

/// The columns a table of events shows (an events answer has no columns of its own).
const EVENT_COLUMNS: [&str; 6] = ["timestamp", "event_type", "platform_id", "user_id", "policy_name", "risk_score"];

fn table(w: &Widget, r: &WidgetResult, names: &HashMap<String, String>, people_links: bool) -> Option<Html> {
    if r.rows.is_empty() {
        return None;
    }
    let columns: Vec<String> =
        if r.columns.is_empty() { EVENT_COLUMNS.iter().map(|c| (*c).to_owned()).collect() } else { r.columns.clone() };
    let rows: Vec<Vec<Cell>> = r
        .rows
        .iter()
        .take(w.limit() as usize)
        .map(|row| {
            columns
                .iter()
                .map(|c| match row.get(c) {
                    Some(Value::Number(n)) => Cell::number(n.as_f64().unwrap_or(f64::NAN)),
                    Some(Value::String(u)) if c == "user_id" => {
                        let cell = Cell::text(names.get(u).map_or_else(|| u.clone(), |n| format!("{n} ({u})")));
                        if people_links { cell.link(format!("/people/{}", encode(u))) } else { cell }
                    }
                    Some(Value::String(s)) if c == "id" && r.columns.is_empty() => {
                        Cell::text(s.clone()).link(format!("/events/{}", encode(s)))
                    }
                    v => Cell::text(match v {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    }),
                })
                .collect()
        })
        .collect();
    Some(chart::table(&columns, &rows, &w.title))
}

/// The widgets of `d` drawn from their answers.
async fn views(st: &XdrState, console: &Console, d: &Dashboard, data: &DashboardData) -> Result<Vec<WidgetView>, StoreError> {
    // The directory's names of the people the tables list, in one read.
    let users: Vec<String> = d
        .widgets
        .iter()
        .zip(&data.widgets)
        .filter(|(w, _)| w.render == Render::Table)
        .flat_map(|(w, r)| r.rows.iter().take(w.limit() as usize).filter_map(|row| row.get("user_id").and_then(Value::as_str)))
        .map(str::to_owned)
        .collect();
    // Names come from the directory, which only keys that may read alerts may read (as its API).
    let names = if users.is_empty() || !console.can(Scope::AlertsRead) {
        HashMap::new()
    } else {
        let space_no = console.caller.space_no;
        st.store.read(move |c| crate::people::names(c, space_no, users.iter().map(String::as_str))).await?
    };
    let people_links = console.can(Scope::AlertsRead);
    Ok(d.widgets
        .iter()
        .zip(&data.widgets)
        .map(|(w, r)| {
            let body = if r.error.is_none() { draw(w, r, data, &names, people_links) } else { None };
            WidgetView {
                title: w.title.clone(),
                description: w.description.clone(),
                span: w.size.span(),
                empty: r.error.is_none() && body.is_none(),
                body,
                error: r.error.clone(),
                partial: r.partial,
                query: r.query.clone(),
                explore: format!("/events?q={}&range={}", encode(&r.query), data.range.as_str()),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The editor

/// A widget's fields in the editor.
struct WidgetFields {
    index: usize,
    title: String,
    description: String,
    query: String,
    renders: Vec<super::alerts::Opt>,
    sizes: Vec<super::alerts::Opt>,
    limit: String,
    stacked: Vec<super::alerts::Opt>,
    /// The blank fieldset that adds a widget.
    new: bool,
}

#[derive(Template)]
#[template(path = "dashboard_edit.html")]
struct EditPage {
    shell: Shell,
    /// The id of the dashboard edited; empty for a new one.
    edit_id: String,
    /// The body of a Remove button: the version the page was drawn from.
    edit_version: String,
    name: String,
    description: String,
    ranges: Vec<super::alerts::Opt>,
    refresh_seconds: u32,
    is_default: bool,
    widgets: Vec<WidgetFields>,
    max_widgets: usize,
}

const RENDERS: &[(&str, &str)] =
    &[("number", "Number"), ("sparkline", "Sparkline"), ("timeseries", "Time series"), ("bars", "Bars"), ("table", "Table")];
const SIZES: &[(&str, &str)] =
    &[("small", "Small (a third)"), ("medium", "Medium (a half)"), ("large", "Large (two thirds)"), ("full", "Full width")];

fn choices(list: &[(&str, &str)], current: Option<&str>, blank: Option<&str>) -> Vec<super::alerts::Opt> {
    let mut out = Vec::new();
    if let Some(b) = blank {
        out.push(super::alerts::Opt { value: String::new(), label: b.to_owned(), selected: current.is_none() });
    }
    out.extend(super::alerts::options(list, current));
    out
}

fn as_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn fields(i: usize, w: Option<&Widget>) -> WidgetFields {
    let render = w.map(|w| as_str(&w.render));
    let size = w.map(|w| as_str(&w.size));
    let stacked = w.and_then(|w| w.options.stacked).map(|b| if b { "true" } else { "false" });
    WidgetFields {
        index: i,
        title: w.map(|w| w.title.clone()).unwrap_or_default(),
        description: w.map(|w| w.description.clone()).unwrap_or_default(),
        query: w.map(|w| w.query.clone()).unwrap_or_default(),
        renders: choices(RENDERS, render.as_deref(), w.is_none().then_some("Choose…")),
        sizes: choices(SIZES, size.as_deref(), w.is_none().then_some("Choose…")),
        limit: w.and_then(|w| w.options.limit).map(|l| l.to_string()).unwrap_or_default(),
        stacked: choices(&[("true", "Stacked areas"), ("false", "Lines")], stacked, Some("Default (lines)")),
        new: w.is_none(),
    }
}

fn edit_form(shell: Shell, d: Option<&Dashboard>) -> EditPage {
    let mut widgets: Vec<WidgetFields> = Vec::new();
    if let Some(d) = d {
        for (i, w) in d.widgets.iter().enumerate() {
            widgets.push(fields(i, Some(w)));
        }
    }
    if widgets.len() < dashboards::MAX_WIDGETS {
        widgets.push(fields(widgets.len(), None));
    }
    let range = d.map(|d| d.default_range.as_str());
    let ranges: Vec<(&str, &str)> = Range::ALL.iter().map(|r| (r.as_str(), r.label())).collect();
    EditPage {
        shell,
        edit_id: d.map(|d| d.id.to_string()).unwrap_or_default(),
        edit_version: d.map(|d| serde_json::json!({"updated_at": d.updated_at}).to_string()).unwrap_or_default(),
        name: d.map(|d| d.name.clone()).unwrap_or_default(),
        description: d.map(|d| d.description.clone()).unwrap_or_default(),
        ranges: super::alerts::options(&ranges, Some(range.unwrap_or("24h"))),
        refresh_seconds: d.map_or(60, |d| d.refresh_seconds),
        is_default: d.is_some_and(|d| d.is_default),
        widgets,
        max_widgets: dashboards::MAX_WIDGETS,
    }
}

async fn new_page(console: Console) -> PageResult {
    console.authorized::<AdminScope>()?;
    Ok(vigie_web::page(StatusCode::OK, &edit_form(console.shell("New dashboard", "/"), None)))
}

async fn edit_page(State(st): State<XdrState>, console: Console, Path(id): Path<String>) -> PageResult {
    console.authorized::<AdminScope>()?;
    let d = dashboards::get(&st, &console.caller, vigie_core::http::path_id(&id, "dashboard")?).await?;
    let shell = console.shell(format!("Edit {}", d.name), "/");
    Ok(vigie_web::page(StatusCode::OK, &edit_form(shell, Some(&d))))
}

/// The version of the dashboard the editor was drawn from.
#[derive(serde::Deserialize)]
struct DrawnFrom {
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Removes one widget (the editor's Remove button): the dashboard without it, replaced through
/// the API's own handler (scope `admin`, validation); its JSON answer or error.
async fn remove_widget(
    State(st): State<XdrState>,
    console: Console,
    Path((id, index)): Path<(String, usize)>,
    vigie_core::http::ApiJson(drawn): vigie_core::http::ApiJson<DrawnFrom>,
) -> Result<axum::Json<Dashboard>, ApiError> {
    let admin = console.authorized::<AdminScope>().map_err(|super::PageError::Api(e)| e)?;
    let d = dashboards::get(&st, &console.caller, vigie_core::http::path_id(&id, "dashboard")?).await?;
    // A position means something only in the version the page showed.
    if drawn.updated_at.is_some_and(|t| t != d.updated_at) {
        return Err(ApiError::conflict("the dashboard changed since this page was drawn; reload it and remove the widget again"));
    }
    if index >= d.widgets.len() {
        return Err(ApiError::not_found("widget"));
    }
    let mut widgets = d.widgets;
    widgets.remove(index);
    let spec = dashboards::DashboardSpec {
        name: d.name,
        description: d.description,
        default_range: d.default_range,
        refresh_seconds: d.refresh_seconds,
        is_default: d.is_default,
        widgets,
        builtin: None,
    };
    dashboards::dashboards_update(State(st), admin, Path(id), vigie_core::http::ApiJsonWrite(spec)).await
}
