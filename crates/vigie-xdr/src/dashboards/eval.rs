//! Evaluation: every widget's query over the dashboard's range, through the search path of
//! `GET /api/v1/events/search` (facts serve the stats), so a widget shows exactly what that
//! search answers for its query. The widgets' stats share one pass over the facts (most of the
//! cost is reading and decoding them); one widget's failure is that widget's error, never the
//! dashboard's.
use super::model::{Dashboard, Range, Render, Widget, is_time_bin, last_stats};
use crate::keys::Caller;
use crate::search::{SearchAnswer, SearchParams};
use crate::state::XdrState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_query::ast::{Duration, Key, Query, Stage};

/// The most time bins a chart draws over a range: a query's bins are widened (along
/// [`BIN_LADDER`]) until the range holds at most this many.
pub const MAX_POINTS: u64 = 180;

/// The bin widths (seconds) a chart's bins are widened to over a long range.
const BIN_LADDER: [u64; 14] = [60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 2_592_000];

/// One widget's answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WidgetResult {
    /// The widget's title.
    pub title: String,
    /// How it is drawn.
    pub render: Render,
    /// The query as run: the widget's, with a chart's time bins widened over a long range (at
    /// most 180 points; `bin(timestamp, 1h)` runs as `bin(timestamp, 6h)` over 30 days).
    pub query: String,
    /// The width of its time bins, in seconds, when it has some.
    pub bin_seconds: Option<u64>,
    /// The answer's columns (the search's `columns`).
    pub columns: Vec<String>,
    /// The answer's rows (the search's `items`).
    pub rows: Vec<Map<String, Value>>,
    /// True when the search's budget stopped it: the rows are what it found.
    pub partial: bool,
    /// Why the widget has no answer (the search's error), if it has none.
    pub error: Option<String>,
}

/// A dashboard's answers over a range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DashboardData {
    /// The dashboard.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The range.
    pub range: Range,
    /// Its start (inclusive).
    pub from: DateTime<Utc>,
    /// Its end (exclusive): when it was evaluated.
    pub to: DateTime<Utc>,
    /// Each widget's answer, in the dashboard's order.
    pub widgets: Vec<WidgetResult>,
}

/// The widest time bin of `span` seconds that keeps `range` within [`MAX_POINTS`] bins: `span`
/// itself when it does, else the first width of the ladder that does.
pub fn widened(span: u64, range: Range) -> u64 {
    let secs = range.duration().num_seconds().max(1) as u64;
    if span == 0 || secs / span <= MAX_POINTS {
        return span;
    }
    BIN_LADDER.into_iter().find(|w| *w >= span && secs / w <= MAX_POINTS).unwrap_or(span.max(secs / MAX_POINTS))
}

/// The query a widget runs over `range` and its bin width: a chart's time bins widened (see
/// [`widened`]); other queries as written.
pub fn query_for(w: &Widget, range: Range) -> Result<(String, Option<u64>), String> {
    let mut q: Query = vigie_query::parse(&w.query).map_err(|e| format!("the query does not parse at {e}"))?;
    let chart = matches!(w.render, Render::Number | Render::Sparkline | Render::Timeseries);
    let mut bin = None;
    if let Some(Stage::Stats { by, .. }) = q.stages.iter_mut().rev().find(|s| matches!(s, Stage::Stats { .. })) {
        for k in by.iter_mut() {
            if is_time_bin(k)
                && let Key::Bin { span, .. } = k
            {
                if chart {
                    *span = Duration(widened(span.0, range));
                }
                bin = Some(span.0);
            }
        }
    }
    debug_assert!(last_stats(&q).is_some() || bin.is_none());
    Ok((q.to_string(), bin))
}

/// The search a widget runs over `[from, to)`.
pub fn search_params(w: &Widget, query: String, from: DateTime<Utc>, to: DateTime<Utc>) -> SearchParams {
    SearchParams { q: query, from: Some(from), to: Some(to), limit: Some(w.limit()), cursor: None, format: None }
}

fn result(w: &Widget, query: String, bin: Option<u64>, answer: Result<SearchAnswer, String>) -> WidgetResult {
    let mut r = WidgetResult {
        title: w.title.clone(),
        render: w.render,
        query,
        bin_seconds: bin,
        columns: Vec::new(),
        rows: Vec::new(),
        partial: false,
        error: None,
    };
    match answer {
        Ok(a) => {
            r.columns = a.columns;
            r.rows = a.items;
            r.partial = a.partial;
        }
        Err(e) => r.error = Some(e),
    }
    r
}

/// Evaluates every widget of `d` over the `range` ending now, for `caller`.
pub async fn evaluate(st: &XdrState, caller: &Caller, d: &Dashboard, range: Range) -> DashboardData {
    let to = st.clock.now();
    evaluate_at(st, caller, d, range, to).await
}

/// Evaluates every widget of `d` over the `range` ending at `to`: the widgets' searches together
/// (`search::search_many`: the stats that facts answer share one pass over the facts).
pub async fn evaluate_at(st: &XdrState, caller: &Caller, d: &Dashboard, range: Range, to: DateTime<Utc>) -> DashboardData {
    let from = to - range.duration();
    let mut out: Vec<Option<WidgetResult>> = vec![None; d.widgets.len()];
    let mut asked = Vec::new();
    for (i, w) in d.widgets.iter().enumerate() {
        match query_for(w, range) {
            Err(e) => out[i] = Some(result(w, w.query.clone(), None, Err(e))),
            Ok((q, bin)) => asked.push((i, q, bin)),
        }
    }
    let params = asked.iter().map(|(i, q, _)| search_params(&d.widgets[*i], q.clone(), from, to)).collect();
    let answers = crate::search::search_many(st, caller, params).await;
    for ((i, q, bin), answer) in asked.into_iter().zip(answers) {
        out[i] = Some(result(&d.widgets[i], q, bin, answer.map_err(|e| e.message)));
    }
    let widgets = d
        .widgets
        .iter()
        .zip(out)
        .map(|(w, r)| r.unwrap_or_else(|| result(w, w.query.clone(), None, Err("the widget could not be evaluated".into()))))
        .collect();
    DashboardData { id: d.id, name: d.name.clone(), range, from, to, widgets }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboards::model::Size;

    #[test]
    fn the_log_after_the_facts_is_found_by_its_seq_not_by_reading_the_whole_space() {
        let c = rusqlite::Connection::open_in_memory().expect("db");
        c.execute_batch(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, space_no INTEGER NOT NULL, id TEXT NOT NULL, \
             received_at INTEGER NOT NULL, timestamp INTEGER NOT NULL, event_type TEXT, source TEXT NOT NULL, body TEXT NOT NULL); \
             CREATE INDEX events_time ON events (space_no, timestamp);",
        )
        .expect("schema");
        let plan: String =
            c.query_row(&format!("EXPLAIN QUERY PLAN {}", crate::search::TAIL_SPAN), rusqlite::params![1, 1], |r| r.get(3)).expect("plan");
        assert!(plan.contains("INTEGER PRIMARY KEY (rowid>?)"), "{plan}");
    }

    #[test]
    fn bins_are_widened_to_at_most_180_points_over_the_range() {
        assert_eq!(widened(3600, Range::Day), 3600);
        assert_eq!(widened(3600, Range::Week), 3600);
        assert_eq!(widened(3600, Range::Month), 21_600);
        assert_eq!(widened(60, Range::Day), 600);
        assert_eq!(widened(86_400, Range::Month), 86_400);
        let w = Widget {
            title: "t".into(),
            description: String::new(),
            query: "source == \"noxys\" | stats count by platform_id, bin(timestamp, 1h)".into(),
            render: Render::Timeseries,
            size: Size::Large,
            options: Default::default(),
        };
        let (q, bin) = query_for(&w, Range::Month).expect("parses");
        assert_eq!(bin, Some(21_600));
        assert!(q.contains("bin(timestamp, 6h)"), "{q}");
        // A table keeps its bins as written.
        let t = Widget { render: Render::Table, ..w };
        assert!(query_for(&t, Range::Month).expect("parses").0.contains("bin(timestamp, 1h)"));
    }
}
