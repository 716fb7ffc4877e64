//! What a dashboard is: its widgets (a pipe query, a render, a size, options), the ranges it is
//! shown over, and the checks a dashboard passes before it is stored — every query parses, can
//! run as a search, and gives what its render draws.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::http::{ApiError, FieldError};
use vigie_query::ast::{AggFn, Key, Query, Stage};

/// The most widgets of a dashboard.
pub const MAX_WIDGETS: usize = 24;
/// The longest name of a dashboard or title of a widget, in characters.
pub const MAX_NAME: usize = 100;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 2000;
/// The longest widget query, in bytes.
pub const MAX_QUERY: usize = 8 * 1024;
/// The most rows a bars or table widget shows.
pub const MAX_LIMIT: u32 = 100;
/// The rows a bars or table widget shows when its options do not say.
pub const DEFAULT_LIMIT: u32 = 10;
/// The shortest auto-refresh period, in seconds (0 turns it off).
pub const MIN_REFRESH: u32 = 10;
/// The longest auto-refresh period, in seconds.
pub const MAX_REFRESH: u32 = 86_400;

/// The time range a dashboard is shown over, ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub enum Range {
    /// The last 24 hours.
    #[default]
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days.
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days.
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    /// Every range, shortest first.
    pub const ALL: [Range; 3] = [Range::Day, Range::Week, Range::Month];

    /// As written in the API and URLs (`24h`).
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    /// As shown to people (`24 h`).
    pub fn label(self) -> &'static str {
        match self {
            Range::Day => "24 h",
            Range::Week => "7 d",
            Range::Month => "30 d",
        }
    }

    /// Its length.
    pub fn duration(self) -> chrono::Duration {
        match self {
            Range::Day => chrono::Duration::hours(24),
            Range::Week => chrono::Duration::days(7),
            Range::Month => chrono::Duration::days(30),
        }
    }

    /// The range written `s` (`24h`, `7d`, `30d`).
    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// How a widget draws its query's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Render {
    /// One big value: a `stats` without `by`, or `by bin(timestamp, …)` alone (the total, with
    /// its trend as a sparkline).
    Number,
    /// A trend: `stats … by bin(timestamp, …)`.
    Sparkline,
    /// Lines (or stacked areas) over time: `stats … by bin(timestamp, …)` and at most one field,
    /// one series per value.
    Timeseries,
    /// Horizontal bars: `stats … by` one or more fields (no time bin), one bar per group.
    Bars,
    /// The rows of any query (the top N).
    Table,
}

impl Render {
    /// As written (`timeseries`).
    pub fn as_str(self) -> &'static str {
        match self {
            Render::Number => "number",
            Render::Sparkline => "sparkline",
            Render::Timeseries => "timeseries",
            Render::Bars => "bars",
            Render::Table => "table",
        }
    }
}

/// How much of the dashboard's width a widget takes (on a phone, every widget is full width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// A third.
    Small,
    /// A half.
    #[default]
    Medium,
    /// Two thirds.
    Large,
    /// The whole width.
    Full,
}

impl Size {
    /// Its columns of the console's 12-column grid.
    pub fn span(self) -> u8 {
        match self {
            Size::Small => 4,
            Size::Medium => 6,
            Size::Large => 8,
            Size::Full => 12,
        }
    }
}

/// A widget's options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetOptions {
    /// The most rows (bars, table) shown, 1–100 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A time series drawn as stacked areas (the top is the total) rather than lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacked: Option<bool>,
}

/// One widget: a query of the pipe language over the dashboard's range, and how it is drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    /// Its title, 1–100 characters.
    pub title: String,
    /// A sentence under the title saying what it counts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The query (`../shared/QUERY.md`), run over the dashboard's range like a search.
    pub query: String,
    /// How the answer is drawn.
    pub render: Render,
    /// Its width (default `medium`).
    #[serde(default)]
    pub size: Size,
    /// Its options.
    #[serde(default, skip_serializing_if = "is_default_options")]
    pub options: WidgetOptions,
}

fn is_default_options(o: &WidgetOptions) -> bool {
    *o == WidgetOptions::default()
}

impl Widget {
    /// The rows a bars or table widget shows.
    pub fn limit(&self) -> u32 {
        self.options.limit.unwrap_or(DEFAULT_LIMIT)
    }
}

/// A dashboard as it is written (`POST`, `PUT`): the GET's body minus its read-only fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    /// Its name, unique in the space, 1–100 characters.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The range it opens on (default `24h`).
    #[serde(default)]
    pub default_range: Range,
    /// Seconds between automatic refreshes of an open page: 0 (off) or 10–86,400 (default 60).
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u32,
    /// The space's home page. Making a dashboard the default makes the previous one a plain
    /// dashboard.
    #[serde(default)]
    pub is_default: bool,
    /// Its widgets, in order (at most 24).
    #[serde(default)]
    pub widgets: Vec<Widget>,
    /// Ignored (the GET's `builtin`, so its body can be sent back as is).
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub builtin: Option<serde_json::Value>,
}

fn default_refresh() -> u32 {
    60
}

/// A dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Dashboard {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The range it opens on.
    pub default_range: Range,
    /// Seconds between automatic refreshes (0: off).
    pub refresh_seconds: u32,
    /// The space's home page.
    pub is_default: bool,
    /// Its widgets.
    pub widgets: Vec<Widget>,
    /// The default content it was installed from (`ai-usage`), if any.
    pub builtin: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
}

/// The `stats` whose table a query answers (its last one), if any.
pub fn last_stats(q: &Query) -> Option<(&[vigie_query::ast::Agg], &[Key])> {
    q.stages.iter().rev().find_map(|s| match s {
        Stage::Stats { aggs, by } => Some((aggs.as_slice(), by.as_slice())),
        _ => None,
    })
}

/// Whether a key is `bin(timestamp, …)`.
pub fn is_time_bin(k: &Key) -> bool {
    matches!(k, Key::Bin { field, .. } if field == "timestamp")
}

/// Why `q` does not give what `render` draws, if it does not.
pub fn unfit(q: &Query, render: Render) -> Option<String> {
    let stats = last_stats(q);
    let bins = stats.map_or(0, |(_, by)| by.iter().filter(|k| is_time_bin(k)).count());
    let other_bins = stats.is_some_and(|(_, by)| by.iter().any(|k| matches!(k, Key::Bin { .. }) && !is_time_bin(k)));
    if other_bins && render != Render::Table {
        return Some("a chart's time axis is bin(timestamp, …); bin another field only in a table".into());
    }
    match render {
        Render::Table => None,
        Render::Number => match stats {
            None => Some("a number shows one value: end the query with a stats (`| stats count`)".into()),
            Some((_, [])) => None,
            Some((aggs, by)) if by.len() == 1 && bins == 1 => match aggs[0].func {
                AggFn::Count | AggFn::Sum | AggFn::Min | AggFn::Max => None,
                f => Some(format!(
                    "a number over bins adds them up, which {}() cannot do; use a stats without by (`| stats {}(…)`)",
                    f.as_str(),
                    f.as_str()
                )),
            },
            Some(_) => Some(
                "a number shows one value: use a stats without by (`| stats count`), or by bin(timestamp, 1h) alone for the \
                 total with its trend"
                    .into(),
            ),
        },
        Render::Sparkline => match stats {
            Some((_, by)) if by.len() == 1 && bins == 1 => None,
            _ => Some("a sparkline needs a value per time bin: end the query with `| stats count by bin(timestamp, 1h)`".into()),
        },
        Render::Timeseries => match stats {
            Some((_, by)) if bins == 1 && by.len() <= 2 => None,
            Some((_, by)) if bins == 1 && by.len() > 2 => {
                Some("a time series groups by bin(timestamp, …) and at most one field (one series per value)".into())
            }
            _ => Some(
                "a time series needs a time key: end the query with `| stats count by bin(timestamp, 1h)` (and one field for \
                 a series per value)"
                    .into(),
            ),
        },
        Render::Bars => match stats {
            Some((_, by)) if !by.is_empty() && bins == 0 => None,
            Some((_, by)) if bins > 0 && !by.is_empty() => {
                Some("bars compare groups, not times: group by a field without bin(timestamp, …), or use a time series".into())
            }
            _ => Some("bars need a value per group: end the query with `| stats count by <field>`".into()),
        },
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Checks a dashboard (every problem at once, with its field path: `widgets.2.query`), and
/// returns it trimmed.
pub fn check(mut d: DashboardSpec) -> Result<DashboardSpec, ApiError> {
    let mut errors = Vec::new();
    d.name = d.name.trim().to_owned();
    d.description = d.description.trim().to_owned();
    if d.name.is_empty() || chars(&d.name) > MAX_NAME {
        errors.push(FieldError::new("name", format!("a name is 1–{MAX_NAME} characters")));
    }
    if chars(&d.description) > MAX_DESCRIPTION {
        errors.push(FieldError::new("description", format!("a description is at most {MAX_DESCRIPTION} characters")));
    }
    if d.refresh_seconds != 0 && !(MIN_REFRESH..=MAX_REFRESH).contains(&d.refresh_seconds) {
        errors.push(FieldError::new(
            "refresh_seconds",
            format!("refresh every {MIN_REFRESH}–{MAX_REFRESH} seconds, or 0 for no automatic refresh"),
        ));
    }
    if d.widgets.len() > MAX_WIDGETS {
        errors.push(FieldError::new(
            "widgets",
            format!("a dashboard has at most {MAX_WIDGETS} widgets ({} given); split it in two", d.widgets.len()),
        ));
    }
    let schema = crate::search::LogSchema { space_id: String::new() };
    for (i, w) in d.widgets.iter_mut().enumerate() {
        let at = |f: &str| format!("widgets.{i}.{f}");
        w.title = w.title.trim().to_owned();
        w.description = w.description.trim().to_owned();
        if w.title.is_empty() || chars(&w.title) > MAX_NAME {
            errors.push(FieldError::new(at("title"), format!("a title is 1–{MAX_NAME} characters")));
        }
        if chars(&w.description) > MAX_DESCRIPTION {
            errors.push(FieldError::new(at("description"), format!("a description is at most {MAX_DESCRIPTION} characters")));
        }
        if w.options.limit.is_some_and(|l| !(1..=MAX_LIMIT).contains(&l)) {
            errors.push(FieldError::new(at("options.limit"), format!("a limit is 1–{MAX_LIMIT} rows")));
        }
        if w.options.stacked == Some(true) && w.render != Render::Timeseries {
            errors.push(FieldError::new(at("options.stacked"), "only a time series is stacked"));
        }
        if w.query.len() > MAX_QUERY {
            errors.push(FieldError::new(at("query"), format!("a query is at most {} KiB", MAX_QUERY / 1024)));
            continue;
        }
        match vigie_query::parse(&w.query) {
            Err(e) => errors.push(FieldError::new(at("query"), format!("the query does not parse at {e}"))),
            Ok(q) => {
                if let Err(e) = vigie_query::sql::plan(&q, &schema, "1") {
                    errors.push(FieldError::new(at("query"), format!("this query cannot run over a range: {e}")));
                } else if let Some(why) = unfit(&q, w.render) {
                    errors.push(FieldError::new(at("query"), why));
                }
            }
        }
    }
    if errors.is_empty() { Ok(d) } else { Err(ApiError::validation(errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(query: &str, render: Render) -> Widget {
        Widget {
            title: "W".into(),
            description: String::new(),
            query: query.into(),
            render,
            size: Size::Medium,
            options: Default::default(),
        }
    }

    fn spec(widgets: Vec<Widget>) -> DashboardSpec {
        serde_json::from_value(serde_json::json!({"name": "D", "widgets": widgets})).expect("spec")
    }

    fn fields(e: ApiError) -> Vec<(String, String)> {
        e.fields.into_iter().map(|f| (f.field, f.message)).collect()
    }

    #[test]
    fn each_render_takes_the_queries_that_give_what_it_draws() {
        let fits = [
            ("x == 1 | stats count", Render::Number),
            ("x == 1 | stats count by bin(timestamp, 1h)", Render::Number),
            ("| stats count by bin(timestamp, 1h)", Render::Sparkline),
            ("source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)", Render::Timeseries),
            ("| stats count by bin(timestamp, 1d)", Render::Timeseries),
            ("| stats count by policy_name | sort -count | head 10", Render::Bars),
            ("x == 1", Render::Table),
            ("| stats count by user_id | sort -count | head 10", Render::Table),
        ];
        for (q, r) in fits {
            assert_eq!(unfit(&vigie_query::parse(q).expect("parses"), r), None, "{q} as {r:?}");
        }
        let unfits = [
            ("x == 1", Render::Number),
            ("| stats count by user_id", Render::Number),
            ("| stats avg(risk_score) by bin(timestamp, 1h)", Render::Number),
            ("| stats count", Render::Sparkline),
            ("| stats count by user_id", Render::Timeseries),
            ("| stats count by a, b, bin(timestamp, 1h)", Render::Timeseries),
            ("| stats count by bin(timestamp, 1h)", Render::Bars),
            ("x == 1", Render::Bars),
            ("| stats count by bin(received_at, 1h)", Render::Sparkline),
        ];
        for (q, r) in unfits {
            assert!(unfit(&vigie_query::parse(q).expect("parses"), r).is_some(), "{q} as {r:?}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field_path_and_a_parse_error_with_its_position() {
        let mut w = vec![
            widget("| stats count", Render::Number),
            widget("| stats count by user_id", Render::Timeseries),
            widget("event_type == AND x", Render::Table),
            widget("x == 1 | stats count by bin(timestamp, 1h) | where count > 5 in last 1 hour", Render::Sparkline),
        ];
        w[0].title = "  ".into();
        w[0].options.limit = Some(0);
        let mut d = spec(w);
        d.refresh_seconds = 5;
        let got = fields(check(d).expect_err("refused"));
        let paths: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            paths,
            ["refresh_seconds", "widgets.0.title", "widgets.0.options.limit", "widgets.1.query", "widgets.2.query", "widgets.3.query"]
        );
        assert!(got[4].1.starts_with("the query does not parse at 1:15: "), "{}", got[4].1);
        assert!(got[5].1.contains("in last"), "{}", got[5].1);
    }

    #[test]
    fn a_dashboard_has_at_most_24_widgets_and_its_names_are_trimmed() {
        let many = spec((0..25).map(|_| widget("x == 1", Render::Table)).collect());
        assert_eq!(fields(check(many).expect_err("too many"))[0].0, "widgets");
        let mut ok = spec(vec![widget("x == 1", Render::Table)]);
        ok.name = "  Mine ".into();
        ok.widgets[0].title = " T ".into();
        let ok = check(ok).expect("valid");
        assert_eq!((ok.name.as_str(), ok.widgets[0].title.as_str(), ok.refresh_seconds), ("Mine", "T", 60));
    }

    #[test]
    fn the_default_dashboard_is_valid() {
        let v: serde_json::Value = serde_json::from_str(super::super::DEFAULT_DASHBOARD).expect("json");
        let mut m = v.as_object().cloned().expect("object");
        m.remove("key");
        let d: DashboardSpec = serde_json::from_value(serde_json::Value::Object(m)).expect("a dashboard");
        let d = check(d).expect("valid");
        assert_eq!(d.widgets.len(), 4);
        let renders: Vec<Render> = d.widgets.iter().map(|w| w.render).collect();
        assert_eq!(renders, [Render::Timeseries, Render::Number, Render::Bars, Render::Table]);
    }
}
