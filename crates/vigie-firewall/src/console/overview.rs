//! Console page: the overview (interactions per day by action, top platforms, top
//! classification types) over a chosen range. The figures are aggregated by the store
//! ([`crate::interactions::stats`]); this module draws them.
use super::{Console, PageResult};
use crate::interactions::stats::{self, Bucket, Span};
use crate::platforms::{Platform, merged, tenant_rows};
use crate::state::FirewallState;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Deserialize;
use std::fmt::Write;
use vigie_core::auth::Permission;
use vigie_core::http::ApiError;
use vigie_web::{Html, Shell, Time, escape};

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/", get(overview))
}

/// How many platforms and types the overview lists.
const TOP: usize = 8;

/// The ranges the overview offers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Range {
    Day,
    Week,
    Month,
}

impl Range {
    const ALL: [Range; 3] = [Range::Day, Range::Week, Range::Month];

    /// The `?range=` value; anything else is the default, 7 days.
    fn parse(s: Option<&str>) -> Range {
        match s {
            Some("24h") => Range::Day,
            Some("30d") => Range::Month,
            _ => Range::Week,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Range::Day => "Last 24 hours",
            Range::Week => "Last 7 days",
            Range::Month => "Last 30 days",
        }
    }

    /// What a bucket is: an hour over a day, a (UTC) day otherwise.
    fn per(self) -> &'static str {
        match self {
            Range::Day => "hour",
            Range::Week | Range::Month => "day",
        }
    }

    /// Whole buckets ending with the current one: the last 24 hours, or the last 7 or 30 UTC
    /// days, today included.
    fn span(self, now: DateTime<Utc>) -> Span {
        let (bucket, n) = match self {
            Range::Day => (TimeDelta::hours(1), 24),
            Range::Week => (TimeDelta::days(1), 7),
            Range::Month => (TimeDelta::days(1), 30),
        };
        let current = now.duration_trunc(bucket).unwrap_or(now);
        Span { from: current - bucket * (n - 1), to: current + bucket, bucket }
    }
}

#[derive(Deserialize)]
struct OverviewParams {
    range: Option<String>,
}

/// A choice of the range selector.
struct RangeChoice {
    key: &'static str,
    label: &'static str,
    selected: bool,
}

/// A row of the platform table.
struct PlatformRow {
    id: String,
    name: String,
    interactions: u64,
    blocked: u64,
    vetted: bool,
    href: String,
}

/// A row of the type table.
struct TypeRow {
    kind: String,
    interactions: u64,
    href: String,
}

/// A row of the per-bucket numbers.
struct BucketRow {
    start: Time,
    block: u64,
    coach: u64,
    log: u64,
    total: u64,
    href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    shell: Shell,
    ranges: Vec<RangeChoice>,
    range_label: &'static str,
    per: &'static str,
    from: Time,
    to: Time,
    total: u64,
    block: u64,
    coach: u64,
    log: u64,
    block_rate: String,
    chart: Html,
    scale: u64,
    buckets: Vec<BucketRow>,
    platforms: Vec<PlatformRow>,
    types: Vec<TypeRow>,
    all_href: String,
}

async fn overview(State(st): State<FirewallState>, console: Console, Query(q): Query<OverviewParams>) -> PageResult {
    console.require(Permission::ReadData)?;
    let tenant = console.principal.tenant_id;
    let range = Range::parse(q.range.as_deref());
    let span = range.span(st.clock.now());
    let o = st.store.read(move |c| stats::overview(c, tenant, &span, TOP)).await.map_err(ApiError::from)?;
    let catalogue: Vec<Platform> = merged(st.store.read(move |c| tenant_rows(c, tenant)).await.map_err(ApiError::from)?);
    let totals = o.totals(&span);
    let list = |extra: &str, from: DateTime<Utc>, to: DateTime<Utc>| {
        format!("/interactions?{extra}from={}&to={}", vigie_web::form::encode(&rfc3339(from)), vigie_web::form::encode(&rfc3339(to)))
    };
    let platforms = o
        .platforms
        .iter()
        .map(|p| {
            let known = catalogue.iter().find(|c| c.id == p.platform_id);
            PlatformRow {
                id: p.platform_id.clone(),
                name: known.map_or_else(|| p.platform_id.clone(), |c| c.name.clone()),
                interactions: p.interactions,
                blocked: p.blocked,
                vetted: known.is_some_and(|c| c.vetted),
                href: list(&format!("platform_id={}&", vigie_web::form::encode(&p.platform_id)), span.from, span.to),
            }
        })
        .collect();
    let types = o
        .types
        .iter()
        .map(|t| TypeRow {
            kind: t.kind.clone(),
            interactions: t.interactions,
            href: list(&format!("type={}&", vigie_web::form::encode(&t.kind)), span.from, span.to),
        })
        .collect();
    let bucket_href = |b: &Bucket| list("", b.start, (b.start + span.bucket).min(span.to));
    let scale = nice_ceiling(o.buckets.iter().map(Bucket::total).max().unwrap_or(0));
    let page = OverviewPage {
        shell: console.shell("Overview", "/"),
        ranges: Range::ALL.iter().map(|r| RangeChoice { key: r.key(), label: r.label(), selected: *r == range }).collect(),
        range_label: range.label(),
        per: range.per(),
        from: Time(span.from),
        to: Time(span.to),
        total: totals.total(),
        block: totals.block,
        coach: totals.coach,
        log: totals.log,
        block_rate: percent(totals.block, totals.total()),
        chart: stacked_bars(&o.buckets, scale, range, &bucket_href),
        scale,
        buckets: o
            .buckets
            .iter()
            .rev()
            .map(|b| BucketRow { start: Time(b.start), block: b.block, coach: b.coach, log: b.log, total: b.total(), href: bucket_href(b) })
            .collect(),
        platforms,
        types,
        all_href: list("", span.from, span.to),
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `part` of `whole` as a percentage with one decimal (`0.0%` of nothing).
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".to_owned();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `n` (at least 1): the top of the chart's scale.
fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= n || v == u64::MAX {
                return v;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The palette colours of the legend's `.k4`, `.k2` and `.k8`: block, coach, log.
const BLOCK: &str = "#b42318";
const COACH: &str = "#d9822b";
const LOG: &str = "#5b6676";
const W: f64 = 600.0;
const H: f64 = 160.0;

/// The buckets as stacked bars (log at the bottom, then coach, then block), each bar a link to
/// its interactions with a tooltip of its numbers. Shapes only: the labels are HTML around it,
/// as in `vigie_web::chart` (text in a scaled drawing would shrink on a phone).
fn stacked_bars(buckets: &[Bucket], scale: u64, range: Range, href: &dyn Fn(&Bucket) -> String) -> Html {
    let n = buckets.len().max(1) as f64;
    let slot = W / n;
    let bar = (slot * 0.72).max(1.0);
    let y_of = |v: u64| v as f64 / scale.max(1) as f64 * (H - 4.0);
    let total: u64 = buckets.iter().map(Bucket::total).sum();
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{label}\"><title>{label}</title>",
        label = escape(&format!("Interactions per {} by action, {}: {total} in all", range.per(), range.label().to_lowercase())),
    );
    for frac in [0.5, 1.0] {
        let y = H - frac * (H - 4.0);
        let _ =
            write!(out, "<line x1=\"0\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\" stroke=\"#dde2e8\" vector-effect=\"non-scaling-stroke\"/>");
    }
    let _ = write!(out, "<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#c4ccd6\" vector-effect=\"non-scaling-stroke\"/>");
    for (i, b) in buckets.iter().enumerate() {
        let when = match range {
            Range::Day => b.start.format("%Y-%m-%d %H:00 UTC").to_string(),
            Range::Week | Range::Month => b.start.format("%Y-%m-%d (UTC)").to_string(),
        };
        let tip = format!("{when}: {} interactions, {} blocked, {} coached, {} logged", b.total(), b.block, b.coach, b.log);
        let _ = write!(out, "<a href=\"{}\"><title>{}</title>", escape(&href(b)), escape(&tip));
        let x = i as f64 * slot + (slot - bar) / 2.0;
        // A transparent full-height target, so an empty or small bar can still be pointed at.
        let _ = write!(out, "<rect x=\"{x:.2}\" y=\"0\" width=\"{bar:.2}\" height=\"{H}\" fill=\"transparent\"/>");
        let mut base = H;
        for (v, colour) in [(b.log, LOG), (b.coach, COACH), (b.block, BLOCK)] {
            if v == 0 {
                continue;
            }
            let h = y_of(v);
            base -= h;
            let _ = write!(out, "<rect x=\"{x:.2}\" y=\"{base:.2}\" width=\"{bar:.2}\" height=\"{h:.2}\" fill=\"{colour}\"/>");
        }
        out.push_str("</a>");
    }
    out.push_str("</svg>");
    Html(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ranges_are_whole_buckets_ending_with_the_current_one() {
        let now = Utc.with_ymd_and_hms(2026, 3, 14, 15, 42, 7).single().expect("time");
        let day = |d, h| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).single().expect("time");
        let s = Range::Week.span(now);
        assert_eq!((s.from, s.to, s.buckets()), (day(8, 0), day(15, 0), 7));
        let s = Range::Day.span(now);
        assert_eq!((s.from, s.to, s.buckets()), (day(13, 16), day(14, 16), 24));
        assert_eq!(Range::Month.span(now).buckets(), 30);
        assert_eq!(Range::parse(Some("nonsense")), Range::Week);
    }

    #[test]
    fn the_scale_is_a_round_number_and_the_rate_a_percentage() {
        assert_eq!([0, 1, 3, 7, 10, 11, 420].map(nice_ceiling), [1, 1, 5, 10, 10, 20, 500]);
        assert_eq!((percent(3, 5), percent(0, 0), percent(1, 3)), ("60.0%".to_owned(), "0.0%".to_owned(), "33.3%".to_owned()));
    }

    #[test]
    fn bars_stack_block_on_coach_on_log_and_escape_their_links() {
        let start = Utc.with_ymd_and_hms(2026, 3, 14, 0, 0, 0).single().expect("time");
        let buckets =
            [Bucket { start, block: 3, coach: 0, log: 2 }, Bucket { start: start + TimeDelta::days(1), block: 0, coach: 0, log: 0 }];
        let svg = stacked_bars(&buckets, 5, Range::Week, &|_| "/interactions?a=1&b=\"2\"".to_owned()).0;
        assert!(svg.contains("href=\"/interactions?a=1&amp;b=&quot;2&quot;\""), "{svg}");
        assert!(svg.contains("2026-03-14 (UTC): 5 interactions, 3 blocked, 0 coached, 2 logged"), "{svg}");
        assert_eq!(svg.matches(BLOCK).count(), 1);
        assert_eq!(svg.matches(LOG).count(), 1);
        assert_eq!(svg.matches(COACH).count(), 0, "an empty segment is not drawn");
        let log_at = svg.find(LOG).expect("log");
        assert!(log_at < svg.find(BLOCK).expect("block"), "log is drawn first, at the bottom");
    }
}
