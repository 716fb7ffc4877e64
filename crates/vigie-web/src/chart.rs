//! SVG charts drawn on the server: a number, a sparkline, a time series, bars and a table.
//! Every label is escaped; sizes come from the viewBox, so a chart fills its widget at any width.
//!
//! The SVGs draw shapes only and carry no text: text inside a viewBox-scaled drawing shrinks
//! with it on a phone and grows on a wide screen. Labels are HTML around the drawing instead —
//! the time axis as `<time datetime>` elements (the console's script shows them in the
//! browser's time zone), the legend with the `.legend` / `.k1`…`.k8` colours, the bars' labels
//! and values as a list. Each drawing has `role="img"`, an `aria-label` and a `<title>` that
//! summarise the data. Colours are presentation attributes (the pages' CSP forbids `style`).
use crate::{Html, escape};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// A point of a series: a time and a value.
pub type Point = (DateTime<Utc>, f64);

/// The span of time a chart shows: its start and end.
pub type Domain = (DateTime<Utc>, DateTime<Utc>);

/// The series colours, the same as the stylesheet's `--c1`…`--c8` (and so `.k1`…`.k8`).
pub const PALETTE: [&str; 8] = ["#2454c5", "#d9822b", "#16794c", "#b42318", "#7a4fc9", "#0f8a9d", "#8a6d0f", "#5b6676"];

/// The most series a time series draws; beyond, the smallest are summed into "other".
pub const MAX_SERIES: usize = 8;

/// The width and height of a time series' viewBox.
const TS_W: f64 = 600.0;
const TS_H: f64 = 180.0;
/// The width and height of a sparkline's viewBox.
const SP_W: f64 = 200.0;
const SP_H: f64 = 36.0;

/// One named series of a time series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name (shown in the legend).
    pub name: String,
    /// Its points, in any order.
    pub points: Vec<Point>,
}

impl Series {
    fn total(&self) -> f64 {
        self.points.iter().map(|p| p.1).filter(|v| v.is_finite()).sum()
    }
}

/// A cell of [`table`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cell {
    /// What it shows.
    pub text: String,
    /// A number (aligned right).
    pub numeric: bool,
    /// Where it links to (a local path), if anywhere.
    pub href: Option<String>,
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell { text: s.into(), ..Cell::default() }
    }

    /// A number cell, formatted with [`format_number`].
    pub fn number(v: f64) -> Cell {
        Cell { text: format_number(v), numeric: true, href: None }
    }

    /// The same cell linking to `href`.
    pub fn link(mut self, href: impl Into<String>) -> Cell {
        self.href = Some(href.into());
        self
    }
}

/// A number as people read it: whole numbers with thousands separators (`12,345`), others
/// with up to two decimals (`0.85`, `3.5`); `—` for what is not a number.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    let neg = v < 0.0;
    let a = v.abs();
    let rounded = (a * 100.0).round() / 100.0;
    let whole = rounded.trunc();
    let mut out = String::new();
    if neg && rounded != 0.0 {
        out.push('-');
    }
    let digits = format!("{whole:.0}");
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    let frac = rounded - whole;
    if frac > 0.0 && whole < 1e15 {
        let f = format!("{frac:.2}");
        let f = f.trim_start_matches('0').trim_end_matches('0');
        out.push_str(f);
    }
    out
}

/// A moment as `<time datetime>`, shown by the console's script in the browser's time zone
/// (as a date alone with `date_only`).
fn time_tag(t: DateTime<Utc>, date_only: bool, class: &str) -> String {
    let class = if class.is_empty() { String::new() } else { format!(" class=\"{class}\"") };
    let format = if date_only { " data-format=\"date\"" } else { "" };
    let text = if date_only { t.format("%Y-%m-%d") } else { t.format("%Y-%m-%d %H:%M UTC") };
    format!("<time{class} datetime=\"{}\"{format}>{text}</time>", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A coordinate, short.
fn c(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() { format!("{r:.0}") } else { format!("{r:.1}") }
}

/// The opening of a drawing: viewBox, `role="img"`, the summary as its label and title.
fn svg_open(out: &mut String, class: &str, w: f64, h: f64, summary: &str) {
    let s = escape(summary);
    let _ = write!(
        out,
        "<svg class=\"{class}\" viewBox=\"0 0 {} {}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{s}\" focusable=\"false\"><title>{s}</title>",
        c(w),
        c(h)
    );
}

/// The domain of the x axis: `domain`, else the points' first and last times.
fn x_domain(points: impl Iterator<Item = DateTime<Utc>>, domain: Option<Domain>) -> Option<(i64, i64)> {
    if let Some((a, b)) = domain {
        return Some((a.timestamp_micros(), b.timestamp_micros().max(a.timestamp_micros().saturating_add(1))));
    }
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for t in points {
        lo = lo.min(t.timestamp_micros());
        hi = hi.max(t.timestamp_micros());
    }
    (lo <= hi).then(|| (lo, hi.max(lo.saturating_add(1))))
}

fn x_of(t: DateTime<Utc>, (lo, hi): (i64, i64), w: f64) -> f64 {
    let f = (t.timestamp_micros() - lo) as f64 / (hi - lo) as f64;
    (f.clamp(0.0, 1.0)) * w
}

fn sorted(points: &[Point]) -> Vec<Point> {
    let mut p: Vec<Point> = points.iter().filter(|p| p.1.is_finite()).copied().collect();
    p.sort_by_key(|p| p.0);
    p
}

/// A sparkline: the trend of `points` over `domain` (else their own span), a line over a light
/// area, no axes. Empty data draws a flat line and says so.
pub fn sparkline(points: &[Point], domain: Option<Domain>, label: &str) -> Html {
    let pts = sorted(points);
    let total: f64 = pts.iter().map(|p| p.1).sum();
    let peak = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let summary = match (pts.first(), pts.last()) {
        (Some(a), Some(b)) => format!(
            "{label}: trend of {} points from {} to {}, total {}, peak {}",
            pts.len(),
            utc(a.0),
            utc(b.0),
            format_number(total),
            format_number(peak)
        ),
        _ => format!("{label}: no data"),
    };
    let mut out = String::new();
    svg_open(&mut out, "chart spark", SP_W, SP_H, &summary);
    let max = if peak.is_finite() && peak > 0.0 { peak } else { 1.0 };
    let y = |v: f64| SP_H - 2.0 - (v.max(0.0) / max) * (SP_H - 4.0);
    match x_domain(pts.iter().map(|p| p.0), domain) {
        Some(dom) if !pts.is_empty() => {
            if pts.len() == 1 {
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>",
                    c(x_of(pts[0].0, dom, SP_W)),
                    c(y(pts[0].1)),
                    PALETTE[0]
                );
            } else {
                let line: Vec<String> = pts.iter().map(|p| format!("{},{}", c(x_of(p.0, dom, SP_W)), c(y(p.1)))).collect();
                let (first, last) = (x_of(pts[0].0, dom, SP_W), x_of(pts[pts.len() - 1].0, dom, SP_W));
                let _ = write!(
                    out,
                    "<polygon points=\"{},{} {} {},{}\" fill=\"{}\" fill-opacity=\"0.12\"/>",
                    c(first),
                    c(SP_H),
                    line.join(" "),
                    c(last),
                    c(SP_H),
                    PALETTE[0]
                );
                let _ = write!(
                    out,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\"/>",
                    line.join(" "),
                    PALETTE[0]
                );
            }
        }
        _ => {
            let _ = write!(
                out,
                "<line x1=\"0\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" stroke=\"#dde2e8\" vector-effect=\"non-scaling-stroke\"/>",
                h = c(SP_H - 2.0),
                w = c(SP_W)
            );
        }
    }
    out.push_str("</svg>");
    Html(out)
}

/// A big number, with a sparkline of its trend below when `spark` is given.
pub fn number(value: f64, label: &str, spark: Option<(&[Point], Option<Domain>)>) -> Html {
    let mut out = format!("<div class=\"big\">{}</div>", escape(&format_number(value)));
    if let Some((points, domain)) = spark {
        out.push_str(&sparkline(points, domain, label).0);
    }
    Html(out)
}

/// At most [`MAX_SERIES`] series, as given when they are few enough; past the limit, the
/// largest (by total) first and the smallest summed into one series named "other", last.
pub fn limit_series(mut series: Vec<Series>) -> Vec<Series> {
    if series.len() <= MAX_SERIES {
        return series;
    }
    series.sort_by(|a, b| b.total().partial_cmp(&a.total()).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.name.cmp(&b.name)));
    let rest = series.split_off(MAX_SERIES - 1);
    let mut sums: std::collections::BTreeMap<DateTime<Utc>, f64> = std::collections::BTreeMap::new();
    for s in rest {
        for (t, v) in s.points {
            if v.is_finite() {
                *sums.entry(t).or_default() += v;
            }
        }
    }
    series.push(Series { name: "other".into(), points: sums.into_iter().collect() });
    series
}

/// How a time series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stacking {
    /// One line per series.
    #[default]
    Lines,
    /// Areas stacked on each other (the top is the total).
    Stacked,
}

/// A time series over `domain` (the range shown): lines (or stacked areas) per series, at most
/// [`MAX_SERIES`] (see [`limit_series`]), horizontal guides at 0, half and the top of the
/// scale; below it the time axis (start, middle, end) and the legend. `unit` says what a value
/// counts (`events per 1 h`), for the scale's label.
pub fn time_series(series: Vec<Series>, domain: Domain, stacking: Stacking, label: &str, unit: &str) -> Html {
    let series: Vec<Series> = limit_series(series.into_iter().map(|s| Series { points: sorted(&s.points), ..s }).collect());
    let dom = x_domain(std::iter::empty(), Some(domain)).unwrap_or((0, 1));
    // The times of every point, for stacking.
    let mut times: Vec<DateTime<Utc>> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    times.sort();
    times.dedup();
    let value_at = |s: &Series, t: DateTime<Utc>| s.points.binary_search_by_key(&t, |p| p.0).map_or(0.0, |i| s.points[i].1);
    let top = match stacking {
        Stacking::Stacked => times.iter().map(|t| series.iter().map(|s| value_at(s, *t).max(0.0)).sum::<f64>()).fold(0.0, f64::max),
        Stacking::Lines => series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max),
    };
    let max = if top > 0.0 { top } else { 1.0 };
    let y = |v: f64| TS_H - 1.0 - (v.max(0.0) / max) * (TS_H - 8.0);
    let x = |t: DateTime<Utc>| x_of(t, dom, TS_W);
    let total: f64 = series.iter().map(Series::total).sum();
    let summary = if series.is_empty() || times.is_empty() {
        format!("{label}: no data from {} to {}", utc(domain.0), utc(domain.1))
    } else {
        let parts: Vec<String> = series.iter().map(|s| format!("{} {}", s.name, format_number(s.total()))).collect();
        format!(
            "{label}: {} series from {} to {}, total {} ({}); peak {}",
            series.len(),
            utc(domain.0),
            utc(domain.1),
            format_number(total),
            parts.join(", "),
            format_number(top)
        )
    };
    let mut out = String::from("<div class=\"timeseries\">");
    let _ = write!(out, "<div class=\"scale\">0 – {} {}</div>", escape(&format_number(top)), escape(unit));
    svg_open(&mut out, "chart", TS_W, TS_H, &summary);
    for frac in [0.0, 0.5, 1.0] {
        let gy = y(max * frac);
        let _ = write!(
            out,
            "<line x1=\"0\" y1=\"{gy}\" x2=\"{w}\" y2=\"{gy}\" stroke=\"#dde2e8\" vector-effect=\"non-scaling-stroke\"/>",
            gy = c(gy),
            w = c(TS_W)
        );
    }
    match stacking {
        Stacking::Stacked if !times.is_empty() => {
            let mut below = vec![0.0f64; times.len()];
            for (i, s) in series.iter().enumerate() {
                let above: Vec<f64> = times.iter().zip(&below).map(|(t, b)| b + value_at(s, *t).max(0.0)).collect();
                let color = PALETTE[i % PALETTE.len()];
                if times.len() == 1 {
                    let _ = write!(
                        out,
                        "<line x1=\"{x}\" y1=\"{a}\" x2=\"{x}\" y2=\"{b}\" stroke=\"{color}\" stroke-width=\"6\" vector-effect=\"non-scaling-stroke\"/>",
                        x = c(x(times[0])),
                        a = c(y(above[0])),
                        b = c(y(below[0]))
                    );
                } else {
                    let mut pts: Vec<String> = times.iter().zip(&above).map(|(t, v)| format!("{},{}", c(x(*t)), c(y(*v)))).collect();
                    pts.extend(times.iter().zip(&below).rev().map(|(t, v)| format!("{},{}", c(x(*t)), c(y(*v)))));
                    let _ = write!(out, "<polygon points=\"{}\" fill=\"{color}\" fill-opacity=\"0.75\"/>", pts.join(" "));
                }
                below = above;
            }
        }
        _ => {
            for (i, s) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                if s.points.len() == 1 {
                    let p = s.points[0];
                    let _ = write!(out, "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{color}\"/>", c(x(p.0)), c(y(p.1)));
                } else if !s.points.is_empty() {
                    let pts: Vec<String> = s.points.iter().map(|p| format!("{},{}", c(x(p.0)), c(y(p.1)))).collect();
                    let _ = write!(
                        out,
                        "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-linejoin=\"round\" vector-effect=\"non-scaling-stroke\"/>",
                        pts.join(" ")
                    );
                }
            }
        }
    }
    out.push_str("</svg>");
    // The time axis: start, middle (hidden on phones), end; dates alone over more than two days.
    let date_only = domain.1 - domain.0 > chrono::Duration::days(2);
    let middle = domain.0 + (domain.1 - domain.0) / 2;
    let _ = write!(
        out,
        "<div class=\"axis\">{}{}{}</div>",
        time_tag(domain.0, date_only, ""),
        time_tag(middle, date_only, "hide-narrow"),
        time_tag(domain.1, date_only, "")
    );
    if !series.is_empty() {
        out.push_str("<div class=\"legend\">");
        for (i, s) in series.iter().enumerate() {
            let _ = write!(out, "<span><i class=\"k{}\"></i>{}</span>", i % PALETTE.len() + 1, escape(&s.name));
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
    Html(out)
}

/// Horizontal bars, largest first as given: each a label, its value, and a bar scaled to the
/// largest value. An accessible list (the bars themselves are decoration).
pub fn bars(items: &[(String, f64)], label: &str) -> Html {
    let max = items.iter().map(|i| i.1).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let mut out = String::new();
    if items.is_empty() {
        let _ = write!(out, "<p class=\"hint\">{}: no data.</p>", escape(label));
        return Html(out);
    }
    let _ = write!(out, "<ol class=\"bars\" aria-label=\"{}\">", escape(label));
    for (name, v) in items {
        let width = if max > 0.0 && v.is_finite() { (v.max(0.0) / max * 100.0).clamp(0.0, 100.0) } else { 0.0 };
        let name = escape(name);
        let _ = write!(
            out,
            "<li><span class=\"bar-label\" title=\"{name}\">{name}</span><span class=\"bar-value\">{}</span>\
             <svg class=\"chart bar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" aria-hidden=\"true\" focusable=\"false\">\
             <rect x=\"0\" y=\"0\" width=\"{}\" height=\"8\" fill=\"{}\"/></svg></li>",
            escape(&format_number(*v)),
            c(width),
            PALETTE[0]
        );
    }
    out.push_str("</ol>");
    Html(out)
}

/// A table of the top rows: a header of `columns`, then `rows` (numbers aligned right, cells
/// linking where they have an `href`), inside `.table-wrap` so it scrolls on a phone.
pub fn table(columns: &[String], rows: &[Vec<Cell>], label: &str) -> Html {
    let mut out = String::new();
    if rows.is_empty() {
        let _ = write!(out, "<p class=\"hint\">{}: no rows.</p>", escape(label));
        return Html(out);
    }
    let numeric: Vec<bool> = (0..columns.len()).map(|i| rows.iter().all(|r| r.get(i).is_none_or(|c| c.numeric))).collect();
    let _ = write!(out, "<div class=\"table-wrap\"><table aria-label=\"{}\"><thead><tr>", escape(label));
    for (i, col) in columns.iter().enumerate() {
        let class = if numeric[i] { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape(col));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for i in 0..columns.len() {
            let cell = row.get(i).cloned().unwrap_or_default();
            let class = if cell.numeric { " class=\"num\"" } else { "" };
            let text = escape(&cell.text);
            match cell.href.filter(|h| crate::is_local_path(h)) {
                Some(h) => {
                    let _ = write!(out, "<td{class}><a href=\"{}\">{text}</a></td>", escape(&h));
                }
                None => {
                    let _ = write!(out, "<td{class}>{text}</td>");
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    Html(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_849_200 + h * 3600, 0).unwrap_or_default()
    }

    fn well_formed(svg: &str) {
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count(), "{svg}");
        assert!(!svg.contains("style="), "no style attribute (CSP): {svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        for (v, s) in [
            (0.0, "0"),
            (7.0, "7"),
            (1234.0, "1,234"),
            (1_234_567.0, "1,234,567"),
            (0.85, "0.85"),
            (3.5, "3.5"),
            (-1200.25, "-1,200.25"),
            (f64::NAN, "—"),
        ] {
            assert_eq!(format_number(v), s, "{v}");
        }
    }

    #[test]
    fn labels_and_series_names_are_escaped_everywhere() {
        let evil = "<script>x</script>\"'&";
        let ts = time_series(
            vec![Series { name: evil.into(), points: vec![(t(0), 1.0), (t(1), 2.0)] }],
            (t(0), t(2)),
            Stacking::Lines,
            evil,
            evil,
        )
        .0;
        let sp = sparkline(&[(t(0), 1.0)], None, evil).0;
        let b = bars(&[(evil.into(), 3.0)], evil).0;
        let tb = table(&[evil.into()], &[vec![Cell::text(evil).link("/people?q=<x>")]], evil).0;
        for html in [&ts, &sp, &b, &tb] {
            assert!(!html.contains("<script>"), "{html}");
            assert!(html.contains("&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;"), "{html}");
            well_formed(html);
        }
        // A link elsewhere than this site is dropped, the text kept.
        let off = table(&["a".into()], &[vec![Cell::text("x").link("https://evil.example/")]], "t").0;
        assert!(!off.contains("href") && off.contains(">x<"), "{off}");
    }

    #[test]
    fn charts_are_images_with_a_summary_and_scale_with_their_viewbox() {
        let ts = time_series(
            vec![Series { name: "chatgpt".into(), points: vec![(t(0), 4.0), (t(1), 6.0)] }],
            (t(0), t(24)),
            Stacking::Lines,
            "Volume",
            "events per 1 h",
        )
        .0;
        assert!(ts.contains("class=\"chart\" viewBox=\"0 0 600 180\""), "{ts}");
        assert!(ts.contains("role=\"img\"") && ts.contains("aria-label=\"Volume: 1 series"), "{ts}");
        assert!(ts.contains("<title>Volume: 1 series") && ts.contains("total 10 (chatgpt 10); peak 6"), "{ts}");
        assert!(ts.contains("0 – 6 events per 1 h"), "{ts}");
        // The time axis in the browser's time zone, the legend in the palette's classes.
        assert_eq!(ts.matches("<time").count(), 3, "{ts}");
        assert!(ts.contains("<span><i class=\"k1\"></i>chatgpt</span>"), "{ts}");
        let week = time_series(vec![], (t(0), t(24 * 7)), Stacking::Lines, "V", "").0;
        assert!(week.contains("data-format=\"date\""), "{week}");
        assert!(week.contains("V: no data"), "{week}");
        well_formed(&ts);
        well_formed(&week);
    }

    #[test]
    fn empty_data_and_a_single_point_draw_without_failing() {
        let empty = sparkline(&[], Some((t(0), t(24))), "High risk").0;
        assert!(empty.contains("High risk: no data") && empty.contains("<line"), "{empty}");
        let one = sparkline(&[(t(3), 5.0)], Some((t(0), t(24))), "High risk").0;
        assert!(one.contains("<circle") && one.contains("1 points"), "{one}");
        let ts_one = time_series(vec![Series { name: "a".into(), points: vec![(t(3), 5.0)] }], (t(0), t(24)), Stacking::Lines, "x", "").0;
        assert!(ts_one.contains("<circle"), "{ts_one}");
        let st_one = time_series(vec![Series { name: "a".into(), points: vec![(t(3), 5.0)] }], (t(0), t(24)), Stacking::Stacked, "x", "").0;
        assert!(st_one.contains("<line x1"), "{st_one}");
        assert!(bars(&[], "Violations").0.contains("no data"));
        assert!(table(&["user_id".into()], &[], "Top").0.contains("no rows"));
        let n = number(0.0, "High risk", Some((&[], None))).0;
        assert!(n.starts_with("<div class=\"big\">0</div><svg"), "{n}");
        for html in [empty, one, ts_one, st_one, n] {
            well_formed(&html);
        }
    }

    #[test]
    fn many_series_keep_the_largest_seven_and_sum_the_rest_as_other() {
        let series: Vec<Series> =
            (0..12).map(|i| Series { name: format!("p{i:02}"), points: vec![(t(0), f64::from(i)), (t(1), 1.0)] }).collect();
        let kept = limit_series(series);
        assert_eq!(kept.len(), MAX_SERIES);
        let names: Vec<&str> = kept.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["p11", "p10", "p09", "p08", "p07", "p06", "p05", "other"]);
        // p00…p04: 0+1+2+3+4 at the first time, five ones at the second.
        assert_eq!(kept[7].points, vec![(t(0), 10.0), (t(1), 5.0)]);
        let html = time_series(kept, (t(0), t(2)), Stacking::Stacked, "x", "").0;
        assert_eq!(html.matches("<polygon").count(), 8);
        assert!(html.contains("class=\"k8\"></i>other"), "{html}");
        // Stacked: the top of the scale is the largest total at one time.
        assert!(html.contains("0 – 66 "), "{html}");
        well_formed(&html);
    }

    #[test]
    fn bars_scale_to_the_largest_and_tables_align_numbers() {
        let b = bars(&[("Block IBAN".into(), 40.0), ("Coach".into(), 10.0)], "Violations").0;
        assert!(b.contains("width=\"100\"") && b.contains("width=\"25\""), "{b}");
        assert!(b.contains("<span class=\"bar-value\">40</span>"), "{b}");
        let tb = table(&["user_id".into(), "count".into()], &[vec![Cell::text("alice"), Cell::number(1200.0)]], "Top").0;
        assert!(tb.contains("<th scope=\"col\" class=\"num\">count</th>") && tb.contains("<td class=\"num\">1,200</td>"), "{tb}");
        assert!(tb.starts_with("<div class=\"table-wrap\">"), "{tb}");
    }
}
