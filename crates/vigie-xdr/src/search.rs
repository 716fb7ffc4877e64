//! Search: a query of the pipe language (`vigie-query`) over a space's events in a time range,
//! compiled to SQL over the log. `GET /api/v1/events/search?q=&from=&to=&limit=&cursor=&format=`
//! (and a POST form for long queries), scope `events_read`: matching events newest first with
//! a cursor, or the table of a `stats`; as JSON, CSV or NDJSON. A query past its row or time
//! budget stops and answers what it has, flagged `partial`.
use crate::keys::{Authorized, Caller, EventsRead};
use crate::log::{STORED, Stored, shown};
use crate::normalize::FIREWALL_FIELDS;
use crate::state::XdrState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, bad_query};
use vigie_query::ast::{Query, Stage};
use vigie_query::sql::{Alt, FieldSql, Schema, dotted, json_path, plan};
use vigie_query::sqlite::{Budget, Partial, events, stats, stats_groups};
use vigie_query::table::{Row, run_stages};

/// What a search may do.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// The longest a search runs before it answers what it has.
    pub timeout: Duration,
    /// The most events a search reads to run the stages after its filter (`sort`, `head`,
    /// `fields` on events); beyond, it answers what it has.
    pub max_rows: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits { timeout: Duration::from_secs(10), max_rows: 10_000 }
    }
}

/// The log as the query language sees it: the log's columns, the firewall's flat fields where
/// `normalize::firewall_fields` finds them, and every other field by its dotted path in the
/// event as sent — what `log::shown` shows, field for field.
pub struct LogSchema {
    /// The caller's space (its `space_id` field).
    pub space_id: String,
}

/// SQL: the event is a firewall event (`normalize::firewall_fields`).
const FIREWALL: &str = "(json_type(body, '$.\"type\"') = 'text' AND json_type(body, '$.\"data\"') = 'object' AND \
     (json_type(body, '$.\"data\".\"interaction\"') = 'object' OR substr(json_extract(body, '$.\"type\"'), 1, 6) = 'alert.' \
      OR substr(json_extract(body, '$.\"type\"'), 1, 7) = 'policy.' OR substr(json_extract(body, '$.\"type\"'), 1, 8) = 'webhook.'))";

fn path(labels: &[&str]) -> String {
    json_path(labels.iter().copied()).unwrap_or_else(|| "$".into())
}

/// An alternative in `body` at `labels`, for firewall events (with `interaction` an object when
/// `in_interaction`).
fn fw(labels: &[&str], in_interaction: bool, null_counts: bool) -> Alt {
    let mut when = FIREWALL.to_owned();
    if in_interaction {
        when.push_str(" AND json_type(body, '$.\"data\".\"interaction\"') = 'object'");
    }
    Alt { when: Some(when), null_counts, column: "body".into(), path: path(labels) }
}

impl Schema for LogSchema {
    fn table(&self) -> &str {
        "events"
    }

    fn time_column(&self) -> &str {
        "timestamp"
    }

    fn field(&self, name: &str) -> FieldSql {
        let plain = || dotted("body", name);
        let with = |mut alts: Vec<Alt>| {
            alts.extend(plain());
            FieldSql::Json(alts)
        };
        let i = |k: &'static str| vec![fw(&["data", "interaction", k], true, false)];
        match name {
            "id" => FieldSql::Text("id".into()),
            "source" => FieldSql::Text("source".into()),
            "event_type" => FieldSql::Text("event_type".into()),
            "timestamp" => FieldSql::Time("timestamp".into()),
            "received_at" => FieldSql::Time("received_at".into()),
            "space_id" => FieldSql::Const(self.space_id.clone()),
            "interaction_id" => with(i("id")),
            "platform_id" | "user_id" | "user_email" | "risk_score" | "classification_count" | "direction" | "interaction_type" => {
                with(vec![fw(&["data", "interaction", name], true, false)])
            }
            "risk_level" => with(vec![
                fw(&["data", "interaction", "risk_level"], true, false),
                fw(&["data", "interaction", "decision", "risk_level"], true, true),
            ]),
            "policy_action" => {
                with(vec![fw(&["data", "interaction", "decision", "action"], true, false), fw(&["data", "policy", "action"], false, true)])
            }
            "policy_name" => with(vec![
                fw(&["data", "interaction", "decision", "policy_name"], true, false),
                fw(&["data", "policy", "name"], false, true),
            ]),
            "alert_severity" => with(vec![fw(&["data", "alert", "severity"], false, false)]),
            "model" => {
                let mut a = fw(&["data", "interaction", "content_metadata", "model"], true, false);
                a.when = a
                    .when
                    .map(|w| format!("{w} AND json_type(body, '$.\"data\".\"interaction\".\"content_metadata\".\"model\"') = 'text'"));
                with(vec![a])
            }
            "classification_type" => {
                // The distinct string types of the classifications, in order of first appearance
                // (`normalize::firewall_fields`), computed by the same code in Rust.
                let types = "vq_distinct_member(body -> '$.\"data\".\"interaction\".\"classifications\"', 'type')";
                let mut a = fw(&[], true, true);
                a.when = a.when.map(|w| format!("{w} AND json_type(body, '$.\"data\".\"interaction\".\"classifications\"') = 'array'"));
                a.column = types.into();
                with(vec![a])
            }
            _ => FieldSql::Json(plain()),
        }
    }
}

/// The most events the facts may lag the log by for a search to use them (beyond, it reads
/// the log in slices).
const FACTS_MAX_TAIL: i64 = 200_000;

/// A search request (query string of the GET, or body of the POST).
#[derive(Debug, Clone, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// The query (`../shared/QUERY.md`); empty matches every event.
    #[serde(default)]
    pub q: String,
    /// Start of the range (RFC 3339, inclusive); default 24 hours before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End of the range (RFC 3339, exclusive); default now.
    pub to: Option<DateTime<Utc>>,
    /// Events per page, 1–1,000 (default 50); the rows of a table are not paged.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page of events.
    pub cursor: Option<String>,
    /// `json` (default), `csv` or `ndjson`.
    pub format: Option<String>,
}

/// A search's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchAnswer {
    /// `events` or `table`.
    pub kind: &'static str,
    /// A table's columns, in order (for events: empty, every field is shown).
    pub columns: Vec<String>,
    /// The events (normalised, as `GET /api/v1/events/{id}` shows them) or the table's rows.
    pub items: Vec<Map<String, Value>>,
    /// The next page of events.
    pub next_cursor: Option<String>,
    /// True when the row or time budget stopped the search: `items` are what it found.
    pub partial: bool,
    /// With `partial`, the start of the range actually covered.
    pub covered_from: Option<DateTime<Utc>>,
    /// The query as understood (printed back).
    pub query: String,
}

fn parsed(q: &str) -> Result<Query, ApiError> {
    vigie_query::parse(q).map_err(|e| {
        let mut err = bad_query("q", e.to_string());
        err.message = format!("the query does not parse: {e}");
        err
    })
}

/// Runs a search for `caller`.
pub async fn search(st: &XdrState, caller: &Caller, p: SearchParams) -> Result<SearchAnswer, ApiError> {
    let q = parsed(&p.q)?;
    let to = p.to.unwrap_or_else(|| st.clock.now());
    let from = p.from.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(bad_query("from", "from must be before to"));
    }
    let limit = p.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(bad_query("limit", "limit is 1–1,000"));
    }
    let mut scope = format!("space_no = {}", caller.space_no);
    if let Some(c) = &p.cursor {
        let (t, s) = c
            .split_once(':')
            .and_then(|(t, s)| Some((t.parse::<i64>().ok()?, s.parse::<i64>().ok()?)))
            .ok_or_else(|| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?;
        scope.push_str(&format!(" AND (timestamp < {t} OR (timestamp = {t} AND seq < {s}))"));
    }
    let schema = LogSchema { space_id: caller.space_id.to_string() };
    let plan = plan(&q, &schema, &scope).map_err(|e| bad_query("q", e))?;
    let space_id = schema.space_id.clone();
    let (from_us, to_us) = (to_micros(from), to_micros(to));
    let limits = st.search;
    let deadline = Instant::now() + limits.timeout;
    let printed = q.to_string();
    if let vigie_query::sql::Shape::Stats { .. } = plan.shape {
        if p.cursor.is_some() {
            return Err(bad_query("cursor", "a table is answered whole, not in pages; send no cursor with a stats query"));
        }
        let budget = Budget { max_rows: limits.max_rows, deadline };
        let space_no = caller.space_no;
        let out: Partial<vigie_query::table::Table> = if crate::facts::answers(&q) {
            // Facts up to the builder's checkpoint, the log after it.
            let tail_scope = format!("{scope} AND seq > ?");
            st.store
                .read(move |c| {
                    let mut out = facts_stats(c, &[(&q, &plan)], &schema, &tail_scope, space_no, (from_us, to_us), budget)?;
                    out.pop().ok_or_else(|| StoreError::Invalid("a search had no answer".into()))
                })
                .await
                .map_err(query_failed)?
        } else {
            // Slices of a day (at most 64), newest first, so a slow range answers its recent part.
            let slice = slice_of(from_us, to_us, 64);
            st.store
                .read(move |c| stats(c, &plan, from_us, to_us, slice, budget).map_err(|e| StoreError::Invalid(e.0)))
                .await
                .map_err(query_failed)?
        };
        return Ok(table_answer(out, printed));
    }
    // Events: a page when nothing follows the filter; else every match (up to the row budget)
    // through the stages.
    let paged = plan.rest.is_empty();
    let max_rows = if paged { limit as usize } else { limits.max_rows };
    let rest: Vec<Stage> = plan.rest.clone();
    let (rows, partial, covered_from, next) = st
        .store
        .read(move |c| {
            let found = events(c, &plan, from_us, to_us, Budget { max_rows, deadline }).map_err(|e| StoreError::Invalid(e.0))?;
            let seqs: Vec<i64> = found.value.iter().map(|(s, _)| *s).collect();
            let mut stmt = c.prepare_cached(&format!("SELECT {STORED} FROM events WHERE seq = ?1"))?;
            let mut rows = Vec::with_capacity(seqs.len());
            for s in &seqs {
                rows.push(stmt.query_row([s], Stored::from_row)?);
            }
            let next =
                (paged && found.partial && seqs.len() == max_rows).then(|| found.value.last().map(|(s, t)| format!("{t}:{s}"))).flatten();
            Ok::<_, StoreError>((rows, found.partial && next.is_none(), found.covered_from, next))
        })
        .await
        .map_err(query_failed)?;
    let shown: Vec<Row> = rows
        .iter()
        .map(|r| match shown(r, &space_id) {
            Value::Object(m) => m,
            _ => Map::new(),
        })
        .collect();
    let table = run_stages(&rest, shown, Vec::new()).map_err(|e| bad_query("q", e.0))?;
    let kind = if table.columns.is_empty() && rest.iter().all(|s| !matches!(s, Stage::Stats { .. })) { "events" } else { "table" };
    Ok(SearchAnswer {
        kind,
        columns: table.columns,
        items: table.rows,
        next_cursor: next,
        partial,
        covered_from: partial.then(|| from_micros(covered_from)),
        query: printed,
    })
}

/// The span of time of a space's events after a seq (the log past the facts' checkpoint). The
/// `+` keeps SQLite on the rowid range: by the `(space_no, timestamp)` index it would read every
/// event of the space (~36 ms per million) to find none.
pub(crate) const TAIL_SPAN: &str = "SELECT MIN(timestamp), MAX(timestamp) FROM events WHERE seq > ?1 AND +space_no = ?2";

/// The answer of a stats search.
fn table_answer(out: Partial<vigie_query::table::Table>, printed: String) -> SearchAnswer {
    SearchAnswer {
        kind: "table",
        columns: out.value.columns,
        items: out.value.rows,
        next_cursor: None,
        partial: out.partial,
        covered_from: out.partial.then(|| from_micros(out.covered_from)),
        query: printed,
    }
}

/// Stats queries that facts answer (`facts::answers`), over one range of one space, in one read:
/// the log after the facts' checkpoint (the newest events), then the facts in slices from the
/// newest, every query fed from each block as it is decoded (`facts::stats_groups_many`), so
/// the queries of a dashboard share the reading. Each query's table, as [`search`] answers it
/// alone: at the deadline, partial from where the slices stopped (a query stopped in the log's
/// tail: from the end of the range). `tail_scope` is the caller's scope and `seq > ?`.
fn facts_stats(
    c: &rusqlite::Connection,
    items: &[(&Query, &vigie_query::sql::Plan)],
    schema: &LogSchema,
    tail_scope: &str,
    space_no: i64,
    (from_us, to_us): (i64, i64),
    budget: Budget,
) -> Result<Vec<Partial<vigie_query::table::Table>>, StoreError> {
    let deadline = budget.deadline;
    let upto = crate::log::checkpoint(c, crate::facts::CONSUMER)?;
    // Facts far behind the log (just after an upgrade, or under a long full load): the log in
    // slices answers sooner than one pass over a long tail.
    let newest: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    if newest - upto > FACTS_MAX_TAIL {
        let slice = slice_of(from_us, to_us, 64);
        return items.iter().map(|(_, plan)| stats(c, plan, from_us, to_us, slice, budget).map_err(|e| StoreError::Invalid(e.0))).collect();
    }
    let n = items.len();
    let mut groups: Vec<vigie_query::sqlite::Groups> = vec![vigie_query::sqlite::Groups::default(); n];
    let mut done: Vec<Option<Partial<vigie_query::table::Table>>> = vec![None; n];
    // The log after the builder's checkpoint (the newest events, few): over the span of time
    // they cover.
    let (lo, hi): (Option<i64>, Option<i64>) =
        c.prepare_cached(TAIL_SPAN)?.query_row(rusqlite::params![upto, space_no], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let (a, b) = (lo.max(from_us), (hi + 1).min(to_us));
        if a < b {
            for (i, (q, plan)) in items.iter().enumerate() {
                let tail = plan_with(q, schema, &tail_scope.replace('?', &upto.to_string()))?;
                let t = stats_groups(c, &tail, a, b, b - a, budget).map_err(|e| StoreError::Invalid(e.0))?;
                groups[i].extend(t.value);
                if t.partial {
                    let g = std::mem::take(&mut groups[i]);
                    let value = g.finish(plan, true).map_err(|e| StoreError::Invalid(e.0))?;
                    done[i] = Some(Partial { value, partial: true, covered_from: to_us });
                }
            }
        }
    }
    // Facts, in slices from the newest, so a slow range answers its recent part.
    let live: Vec<usize> = (0..n).filter(|i| done[*i].is_none()).collect();
    let queries: Vec<&Query> = live.iter().map(|i| items[*i].0).collect();
    let slice = slice_of(from_us, to_us, 16);
    let (mut end, mut partial) = (to_us, false);
    while end > from_us && !live.is_empty() {
        let start = end.saturating_sub(slice).max(from_us);
        match vigie_query::sqlite::with_deadline(c, deadline, || {
            crate::facts::stats_groups_many(c, &queries, space_no, start, end, upto, Some(deadline)).map_err(|e| match e {
                StoreError::Sqlite(e) => e,
                other => rusqlite::Error::UserFunctionError(other.to_string().into()),
            })
        }) {
            Ok(gs) => {
                for (i, g) in live.iter().zip(gs) {
                    groups[*i].extend(g);
                }
            }
            Err(e) if vigie_query::sqlite::interrupted(&e) => {
                partial = true;
                break;
            }
            Err(e) => return Err(StoreError::Invalid(e.to_string())),
        }
        end = start;
        if Instant::now() >= deadline && end > from_us {
            partial = true;
            break;
        }
    }
    let covered_from = if partial { end } else { from_us };
    items
        .iter()
        .zip(groups)
        .zip(done)
        .map(|(((_, plan), g), done)| match done {
            Some(p) => Ok(p),
            None => Ok(Partial { value: g.finish(plan, partial).map_err(|e| StoreError::Invalid(e.0))?, partial, covered_from }),
        })
        .collect()
}

/// Several searches of `caller`, each answered as [`search`] answers it alone: the stats that
/// facts answer over the same range share one read and one pass over the facts
/// ([`facts_stats`]; a dashboard's widgets), the others run concurrently.
pub async fn search_many(st: &XdrState, caller: &Caller, ps: Vec<SearchParams>) -> Vec<Result<SearchAnswer, ApiError>> {
    let scope = format!("space_no = {}", caller.space_no);
    let schema = LogSchema { space_id: caller.space_id.to_string() };
    let now = st.clock.now();
    let mut out: Vec<Option<Result<SearchAnswer, ApiError>>> = (0..ps.len()).map(|_| None).collect();
    type Batch = Vec<(usize, Query, vigie_query::sql::Plan, SearchParams)>;
    let mut batches: std::collections::BTreeMap<(i64, i64), Batch> = std::collections::BTreeMap::new();
    let mut others = tokio::task::JoinSet::new();
    for (i, p) in ps.into_iter().enumerate() {
        let to = p.to.unwrap_or(now);
        let from = p.from.unwrap_or(to - chrono::Duration::hours(24));
        // Only what `search` would answer from facts; anything else (errors included) goes
        // through `search` itself.
        let batched = (|| {
            if p.cursor.is_some() || from >= to || !(1..=1000).contains(&p.limit.unwrap_or(50)) {
                return None;
            }
            let q = vigie_query::parse(&p.q).ok()?;
            let plan = plan(&q, &schema, &scope).ok()?;
            (matches!(plan.shape, vigie_query::sql::Shape::Stats { .. }) && crate::facts::answers(&q)).then_some((q, plan))
        })();
        match batched {
            Some((q, plan)) => batches.entry((to_micros(from), to_micros(to))).or_default().push((i, q, plan, p)),
            None => {
                let (st, caller) = (st.clone(), caller.clone());
                others.spawn(async move { (i, search(&st, &caller, p).await) });
            }
        }
    }
    for ((from_us, to_us), items) in batches {
        let budget = Budget { max_rows: st.search.max_rows, deadline: Instant::now() + st.search.timeout };
        let (schema, tail_scope, space_no) =
            (LogSchema { space_id: schema.space_id.clone() }, format!("{scope} AND seq > ?"), caller.space_no);
        let order: Vec<(usize, String)> = items.iter().map(|(i, q, _, _)| (*i, q.to_string())).collect();
        let alone: Vec<(usize, SearchParams)> = items.iter().map(|(i, _, _, p)| (*i, p.clone())).collect();
        let answers = st
            .store
            .read(move |c| {
                let refs: Vec<(&Query, &vigie_query::sql::Plan)> = items.iter().map(|(_, q, p, _)| (q, p)).collect();
                facts_stats(c, &refs, &schema, &tail_scope, space_no, (from_us, to_us), budget)
            })
            .await
            .map_err(query_failed);
        match answers {
            Ok(list) => {
                for ((i, printed), a) in order.into_iter().zip(list) {
                    out[i] = Some(Ok(table_answer(a, printed)));
                }
            }
            // One query's failure must not fail the others read with it: each runs alone.
            Err(e) if alone.len() > 1 => {
                tracing::warn!(code = %e.code, error = %e.message, queries = alone.len(), "a shared search read failed; each query runs alone");
                for (i, p) in alone {
                    let (st, caller) = (st.clone(), caller.clone());
                    others.spawn(async move { (i, search(&st, &caller, p).await) });
                }
            }
            Err(e) => {
                for (i, _) in order {
                    out[i] = Some(Err(ApiError {
                        status: e.status,
                        code: e.code.clone(),
                        message: e.message.clone(),
                        fields: e.fields.clone(),
                        retry_after: e.retry_after,
                    }));
                }
            }
        }
    }
    while let Some(done) = others.join_next().await {
        match done {
            Ok((i, a)) => out[i] = Some(a),
            Err(e) => tracing::error!(error = %e, "a search panicked"),
        }
    }
    out.into_iter().map(|a| a.unwrap_or_else(|| Err(ApiError::internal("a search did not finish")))).collect()
}

/// A search that failed in the store: our fault, not the query's (a query that parses runs);
/// logged, and answered without the SQL.
/// The width of the slices a range is aggregated in, newest first: at most `n` slices, each at
/// least a day.
fn slice_of(from_us: i64, to_us: i64, n: i64) -> i64 {
    ((to_us - from_us) / n).max(86_400_000_000)
}

fn plan_with(q: &Query, schema: &LogSchema, scope: &str) -> Result<vigie_query::sql::Plan, StoreError> {
    plan(q, schema, scope).map_err(StoreError::Invalid)
}

fn query_failed(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(msg) => {
            tracing::error!(error = %msg, "a search failed in the store");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "search_failed", "the search failed in the store; the error is logged")
        }
        other => ApiError::from(other),
    }
}

fn csv_cell(v: Option<&Value>) -> String {
    let s = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    // Cells a spreadsheet would run as a formula are prefixed with a quote (CSV injection).
    let s =
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !s.parse::<f64>().is_ok_and(f64::is_finite) { format!("'{s}") } else { s };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// The answer in the asked format.
fn respond(a: SearchAnswer, format: Option<&str>) -> Result<Response, ApiError> {
    match format.unwrap_or("json") {
        "json" => Ok(axum::Json(a).into_response()),
        "ndjson" => {
            let mut body = String::new();
            for item in &a.items {
                body.push_str(&Value::Object(item.clone()).to_string());
                body.push('\n');
            }
            Ok(with_partial(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response(), &a))
        }
        "csv" => {
            let columns: Vec<String> = if a.columns.is_empty() {
                let first = ["timestamp", "id", "event_type", "source"];
                first.iter().chain(FIREWALL_FIELDS.iter().filter(|f| !first.contains(f))).map(|s| (*s).to_owned()).collect()
            } else {
                a.columns.clone()
            };
            let mut body = columns.iter().map(|c| csv_cell(Some(&Value::String(c.clone())))).collect::<Vec<_>>().join(",");
            body.push_str("\r\n");
            for item in &a.items {
                body.push_str(&columns.iter().map(|c| csv_cell(item.get(c))).collect::<Vec<_>>().join(","));
                body.push_str("\r\n");
            }
            Ok(with_partial(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response(), &a))
        }
        other => Err(bad_query("format", format!("{other:?} is not a format; use json, csv or ndjson"))),
    }
}

/// CSV and NDJSON carry the partial flag and the next cursor as headers.
fn with_partial(mut r: Response, a: &SearchAnswer) -> Response {
    r.headers_mut().insert("x-vigie-partial", HeaderValue::from_static(if a.partial { "true" } else { "false" }));
    if let Some(c) = a.next_cursor.as_ref().and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert("x-vigie-next-cursor", c);
    }
    r
}

/// Search events with the query language (scope `events_read`): matching events newest first
/// with a cursor, or the table of a `stats`; `format=csv` or `ndjson` to export.
#[utoipa::path(get, path = "/api/v1/events/search", tag = "events", security(("bearer" = [])), params(SearchParams),
    responses((status = 200, body = SearchAnswer), (status = 400, description = "the query does not parse (with its line and column)")))]
pub async fn search_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<Response, ApiError> {
    let format = p.format.clone();
    respond(search(&st, &caller, p).await?, format.as_deref())
}

/// The same search with the request in a JSON body, for queries too long for a URL.
#[utoipa::path(post, path = "/api/v1/events/search", tag = "events", security(("bearer" = [])), request_body = SearchParams,
    responses((status = 200, body = SearchAnswer), (status = 400)))]
pub async fn search_post(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    ApiJson(p): ApiJson<SearchParams>,
) -> Result<Response, ApiError> {
    let format = p.format.clone();
    respond(search(&st, &caller, p).await?, format.as_deref())
}
