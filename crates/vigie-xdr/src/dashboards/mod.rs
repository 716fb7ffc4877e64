//! Dashboards: a space's lists of widgets — each a pipe query over a time range (24 h, 7 d or
//! 30 d, ending now) with a render (number, sparkline, time series, bars, table) and a size —
//! stored as data, their HTTP API (list, create, read, replace, delete, and each widget's answer
//! over a range), and the default dashboard "AI usage" every new space gets
//! (`content/dashboards/ai-usage.json`).
//!
//! A dashboard is checked before it is stored: every query parses (a refusal names
//! `widgets.N.query` and the line and column), runs over a range, and gives what its render
//! draws. Reading needs `events_read` (a widget is a search); changing needs `admin`.
use crate::keys::{AdminScope, Authorized, Caller, EventsRead};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{Connection, params};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJsonWrite, ApiQuery, Page, bad_query, page_limit, path_id};
use vigie_core::ids::IdGen;

pub mod eval;
mod model;
mod store;

pub use eval::{DashboardData, WidgetResult, evaluate, evaluate_at, query_for};
pub use model::{Dashboard, DashboardSpec, MAX_WIDGETS, Range, Render, Size, Widget, WidgetOptions, check, is_time_bin, last_stats, unfit};

/// The default dashboard (ARCHITECTURE.md, "Default content" 6), as `POST /api/v1/dashboards`
/// takes it, with its `key`.
pub const DEFAULT_DASHBOARD: &str = include_str!("../../../../content/dashboards/ai-usage.json");

/// The default dashboard's key and content.
fn default_dashboard() -> Result<(String, DashboardSpec), StoreError> {
    let mut m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(DEFAULT_DASHBOARD)?;
    let key = m.remove("key").and_then(|k| k.as_str().map(str::to_owned));
    let key = key.ok_or_else(|| StoreError::Invalid("the default dashboard (content/dashboards/ai-usage.json) has no key".into()))?;
    let spec: DashboardSpec = serde_json::from_value(serde_json::Value::Object(m))?;
    let spec = check(spec)
        .map_err(|e| StoreError::Invalid(format!("the default dashboard (content/dashboards/ai-usage.json) is invalid: {}", e.message)))?;
    Ok((key, spec))
}

/// Installs the default dashboard in a space that lacks it (found by its key or its name); the
/// space's default unless it has one already. Idempotent; whether it installed it.
pub fn install_default(c: &Connection, space_no: i64, now_us: i64, ids: &IdGen) -> Result<bool, StoreError> {
    let (key, mut spec) = default_dashboard()?;
    let (present, has_default): (bool, bool) = c
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM dashboards WHERE space_no = ?1 AND (builtin = ?2 OR name = ?3)), \
             EXISTS(SELECT 1 FROM dashboards WHERE space_no = ?1 AND is_default = 1)",
        )?
        .query_row(params![space_no, key, spec.name], |r| Ok((r.get(0)?, r.get(1)?)))?;
    c.prepare_cached("DELETE FROM dashboards_pending WHERE space_no = ?1")?.execute([space_no])?;
    if present {
        return Ok(false);
    }
    spec.is_default = spec.is_default && !has_default;
    store::insert(c, space_no, ids.at(from_micros(now_us)), &spec, Some(&key), now_us)?;
    Ok(true)
}

/// Gives the default dashboard to the spaces created before dashboards existed (listed by the
/// migration); run once at start. The number of spaces given one.
pub async fn install_pending(st: &XdrState) -> Result<usize, StoreError> {
    let now_us = to_micros(st.clock.now());
    let ids = st.ids.clone();
    st.store
        .write(move |c| {
            let spaces: Vec<i64> =
                c.prepare("SELECT space_no FROM dashboards_pending")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            let mut n = 0;
            for s in spaces {
                n += usize::from(install_default(c, s, now_us, &ids)?);
            }
            Ok(n)
        })
        .await
}

/// The space's home dashboard: its default, else the first by name; none when it has none.
pub async fn home(st: &XdrState, caller: &Caller) -> Result<Option<Dashboard>, ApiError> {
    let space_no = caller.space_no;
    st.store.read(move |c| store::home(c, space_no)).await.map_err(ApiError::from_store("dashboard"))
}

/// A dashboard of the caller's space.
pub async fn get(st: &XdrState, caller: &Caller, id: Uuid) -> Result<Dashboard, ApiError> {
    let space_no = caller.space_no;
    st.store.read(move |c| store::fetch(c, space_no, id)).await.map_err(ApiError::from_store("dashboard"))
}

/// Paging of the dashboard list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DashboardListParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The space's dashboards, by name.
#[utoipa::path(get, path = "/api/v1/dashboards", tag = "dashboards", security(("bearer" = [])), params(DashboardListParams),
    responses((status = 200, body = Page<Dashboard>), (status = 403, description = "the key lacks events_read")))]
pub async fn dashboards_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    ApiQuery(p): ApiQuery<DashboardListParams>,
) -> Result<Json<Page<Dashboard>>, ApiError> {
    let (space_no, limit, after) = (caller.space_no, page_limit(p.limit), p.cursor);
    let rows =
        st.store.read(move |c| store::list(c, space_no, after.as_deref(), limit)).await.map_err(ApiError::from_store("dashboard"))?;
    Ok(Json(Page::from_rows(rows, limit, |d| d.name.clone())))
}

/// Create a dashboard in the caller's space (scope `admin`). Every widget's query is checked:
/// one that does not parse, cannot run over a range, or does not give what its render draws is
/// refused (422 naming `widgets.N.query`, with the line and column of a parse error).
#[utoipa::path(post, path = "/api/v1/dashboards", tag = "dashboards", security(("bearer" = [])), request_body = DashboardSpec,
    responses((status = 201, body = Dashboard), (status = 409, description = "a dashboard of this name exists"),
        (status = 422, description = "invalid; every problem is listed with its field path")))]
pub async fn dashboards_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiJsonWrite(spec): ApiJsonWrite<DashboardSpec>,
) -> Result<(StatusCode, Json<Dashboard>), ApiError> {
    let spec = check(spec)?;
    let now_us = to_micros(st.clock.now());
    let (id, space_no) = (st.ids.at(from_micros(now_us)), caller.space_no);
    let d = st
        .store
        .write(move |c| {
            store::insert(c, space_no, id, &spec, None, now_us)?;
            store::fetch(c, space_no, id)
        })
        .await
        .map_err(ApiError::from_store("dashboard"))?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// A dashboard of the caller's space.
#[utoipa::path(get, path = "/api/v1/dashboards/{id}", tag = "dashboards", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Dashboard), (status = 404)))]
pub async fn dashboards_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    Path(id): Path<String>,
) -> Result<Json<Dashboard>, ApiError> {
    Ok(Json(get(&st, &caller, path_id(&id, "dashboard")?).await?))
}

/// Replace a dashboard (scope `admin`): the whole dashboard, as `POST` takes it (a GET's body
/// with its read-only fields is accepted).
#[utoipa::path(put, path = "/api/v1/dashboards/{id}", tag = "dashboards", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = DashboardSpec, responses((status = 200, body = Dashboard), (status = 404), (status = 409), (status = 422)))]
pub async fn dashboards_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
    ApiJsonWrite(spec): ApiJsonWrite<DashboardSpec>,
) -> Result<Json<Dashboard>, ApiError> {
    let id = path_id(&id, "dashboard")?;
    let spec = check(spec)?;
    let (now_us, space_no) = (to_micros(st.clock.now()), caller.space_no);
    let d = st
        .store
        .write(move |c| {
            store::replace(c, space_no, id, &spec, now_us)?;
            store::fetch(c, space_no, id)
        })
        .await
        .map_err(ApiError::from_store("dashboard"))?;
    Ok(Json(d))
}

/// Delete a dashboard (scope `admin`). Deleting the default makes the first by name the home page.
#[utoipa::path(delete, path = "/api/v1/dashboards/{id}", tag = "dashboards", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404)))]
pub async fn dashboards_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, space_no) = (path_id(&id, "dashboard")?, caller.space_no);
    st.store.write(move |c| store::delete(c, space_no, id)).await.map_err(ApiError::from_store("dashboard"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The range of a dashboard's answers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DashboardDataParams {
    /// `24h`, `7d` or `30d`, ending now (default: the dashboard's `default_range`).
    pub range: Option<String>,
}

/// The range a request asks for (`range`), else the dashboard's.
pub fn range_of(asked: Option<&str>, d: &Dashboard) -> Result<Range, ApiError> {
    match asked {
        None | Some("") => Ok(d.default_range),
        Some(r) => Range::parse(r).ok_or_else(|| bad_query("range", "range is 24h, 7d or 30d")),
    }
}

/// Each widget's answer over a range ending now (scope `events_read`): the query as run, the
/// columns and rows the search gives for it, or the widget's error. One widget's error does not
/// fail the others.
#[utoipa::path(get, path = "/api/v1/dashboards/{id}/data", tag = "dashboards", security(("bearer" = [])),
    params(("id" = String, Path), DashboardDataParams),
    responses((status = 200, body = DashboardData), (status = 400, description = "an unknown range"), (status = 404)))]
pub async fn dashboards_data(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<DashboardDataParams>,
) -> Result<Json<DashboardData>, ApiError> {
    let d = get(&st, &caller, path_id(&id, "dashboard")?).await?;
    let range = range_of(p.range.as_deref(), &d)?;
    Ok(Json(evaluate(&st, &caller, &d, range).await))
}

/// The dashboards API.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(dashboards_list, dashboards_create))
        .routes(routes!(dashboards_get, dashboards_update, dashboards_delete))
        .routes(routes!(dashboards_data))
}
