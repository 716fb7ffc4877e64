//! The stages run in memory over events (maps of field → value, as the log shows them): the
//! reference meaning of a query, which the SQL back end must reproduce (a property test compares
//! them), and what `vigie rules test` and backtests run.
use crate::ast::{AggFn, Expr, Key, Query, SortKey, Stage};
use crate::matcher::{Fields, Matcher};
use crate::value::number;
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A row: an event, or a row of a `stats` table.
pub type Row = Map<String, Value>;

/// A query's answer: the rows and their columns (for `stats` and `fields`, in order; for events,
/// empty: every field of the event).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names, when the query fixes them.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

/// An event's time in microseconds, from an RFC 3339 string.
pub fn time_micros(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    chrono_free_rfc3339(s)
}

/// RFC 3339 → µs since the epoch, without a date library (the crate stays light): `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn chrono_free_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        micros = digits.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// µs since the epoch as RFC 3339 with microseconds (`2026-11-28T09:00:00.000000Z`), as the
/// log shows `timestamp` and `received_at`.
pub fn rfc3339_micros(us: i64) -> String {
    let s = rfc3339(us);
    format!("{}.{:06}Z", &s[..s.len() - 1], us.rem_euclid(1_000_000))
}

/// µs since the epoch as RFC 3339 (UTC, seconds, `Z`).
pub fn rfc3339(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The bucket of `bin(field, span)` for a row: the start of the span holding its time.
pub fn bin(v: Option<&Value>, span_us: i64) -> Value {
    match v.and_then(time_micros) {
        Some(t) => Value::String(rfc3339(t.div_euclid(span_us) * span_us)),
        None => Value::Null,
    }
}

fn num(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// An aggregation's running state.
#[derive(Debug, Clone)]
pub(crate) enum Acc {
    Count(u64),
    Distinct(Vec<Value>),
    Sum(f64, u64),
    Avg(f64, u64),
    Min(Option<f64>),
    Max(Option<f64>),
}

impl Acc {
    pub(crate) fn new(f: AggFn) -> Acc {
        match f {
            AggFn::Count => Acc::Count(0),
            AggFn::Dc => Acc::Distinct(Vec::new()),
            AggFn::Sum => Acc::Sum(0.0, 0),
            AggFn::Avg => Acc::Avg(0.0, 0),
            AggFn::Min => Acc::Min(None),
            AggFn::Max => Acc::Max(None),
        }
    }

    /// Adds one row's value (`None` for a bare `count`, which counts every row).
    pub(crate) fn add(&mut self, bare: bool, v: Option<&Value>) {
        let present = v.filter(|v| !v.is_null());
        match self {
            Acc::Count(n) => {
                if bare || present.is_some() {
                    *n += 1;
                }
            }
            Acc::Distinct(seen) => {
                if let Some(v) = present
                    && !seen.contains(v)
                {
                    seen.push(v.clone());
                }
            }
            Acc::Sum(s, n) | Acc::Avg(s, n) => {
                if let Some(x) = present.and_then(number) {
                    *s += x;
                    *n += 1;
                }
            }
            Acc::Min(m) => {
                if let Some(x) = present.and_then(number) {
                    *m = Some(m.map_or(x, |m| m.min(x)));
                }
            }
            Acc::Max(m) => {
                if let Some(x) = present.and_then(number) {
                    *m = Some(m.map_or(x, |m| m.max(x)));
                }
            }
        }
    }

    pub(crate) fn value(&self) -> Value {
        match self {
            Acc::Count(n) => Value::from(*n),
            Acc::Distinct(seen) => Value::from(seen.len() as u64),
            Acc::Sum(s, n) => {
                if *n == 0 {
                    Value::Null
                } else {
                    num(*s)
                }
            }
            Acc::Avg(s, n) => {
                if *n == 0 {
                    Value::Null
                } else {
                    num(*s / *n as f64)
                }
            }
            Acc::Min(m) | Acc::Max(m) => m.map_or(Value::Null, num),
        }
    }
}

/// The group key values of a row.
pub(crate) fn key_values(by: &[Key], row: &dyn crate::matcher::Lookup) -> Vec<Value> {
    by.iter()
        .map(|k| match k {
            Key::Field(f) => row.lookup(f).cloned().unwrap_or(Value::Null),
            Key::Bin { field, span } => bin(row.lookup(field), span.micros()),
        })
        .collect()
}

/// A total order on values for sorting: null, booleans, numbers, strings, then the rest by text.
pub fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x @ (Value::Array(_) | Value::Object(_))), Some(y @ (Value::Array(_) | Value::Object(_)))) => {
            x.to_string().cmp(&y.to_string())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn stats(aggs: &[crate::ast::Agg], by: &[Key], rows: Vec<Row>) -> (Vec<String>, Vec<Row>) {
    let mut groups: BTreeMap<String, (Vec<Value>, Vec<Acc>)> = BTreeMap::new();
    for row in &rows {
        let keys = key_values(by, row);
        let id = serde_json::to_string(&keys).unwrap_or_default();
        let entry = groups.entry(id).or_insert_with(|| (keys, aggs.iter().map(|a| Acc::new(a.func)).collect()));
        for (acc, a) in entry.1.iter_mut().zip(aggs) {
            acc.add(a.field.is_none(), a.field.as_ref().and_then(|f| row.get(f)));
        }
    }
    // A stats with no group over no events still answers one row (count 0).
    if groups.is_empty() && by.is_empty() {
        groups.insert(String::new(), (Vec::new(), aggs.iter().map(|a| Acc::new(a.func)).collect()));
    }
    let columns = stats_columns(aggs, by);
    let out = groups
        .into_values()
        .map(|(keys, accs)| {
            let mut r = Row::new();
            for (k, v) in by.iter().zip(keys) {
                r.insert(k.column().to_owned(), v);
            }
            for (a, acc) in aggs.iter().zip(accs) {
                r.insert(a.column(), acc.value());
            }
            r
        })
        .collect();
    (columns, out)
}

fn filter_rows(cond: &Expr, rows: Vec<Row>) -> Result<Vec<Row>, RunError> {
    let mut fields = Fields::new();
    let m = Matcher::compile(Some(cond), &mut fields).map_err(RunError)?;
    Ok(rows.into_iter().filter(|r| m.matches(&fields.record(r))).collect())
}

fn sort(keys: &[SortKey], rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        for k in keys {
            let o = compare(a.get(&k.name), b.get(&k.name));
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// Runs `q` over `events` (each as the log shows it). A `where … in last D` stage is a
/// streaming rule's window (see [`crate::window`]); here it is refused.
pub fn run(q: &Query, events: &[Row]) -> Result<Table, RunError> {
    let mut fields = Fields::new();
    let m = Matcher::compile(q.filter.as_ref(), &mut fields).map_err(RunError)?;
    let rows: Vec<Row> = events.iter().filter(|e| m.matches(&fields.record(*e))).cloned().collect();
    run_stages(&q.stages, rows, Vec::new())
}

/// Runs `stages` over `rows` (with `columns`, if they are a table already).
pub fn run_stages(stages: &[Stage], mut rows: Vec<Row>, mut columns: Vec<String>) -> Result<Table, RunError> {
    for s in stages {
        match s {
            Stage::Stats { aggs, by } => (columns, rows) = stats(aggs, by, rows),
            Stage::Where { window: Some(_), .. } => {
                return Err(RunError("\"in last\" is a detection rule's sliding window; a search runs without it".into()));
            }
            Stage::Where { cond, window: None } => rows = filter_rows(cond, rows)?,
            Stage::Sort(keys) => sort(keys, &mut rows),
            Stage::Head(n) => rows.truncate(usize::try_from(*n).unwrap_or(usize::MAX)),
            Stage::Fields(names) => {
                rows = rows
                    .into_iter()
                    .map(|r| names.iter().map(|n| (n.clone(), r.get(n).cloned().unwrap_or(Value::Null))).collect())
                    .collect();
                columns = names.clone();
            }
        }
    }
    Ok(Table { columns, rows })
}

/// The columns of a `stats` table: the keys, then the aggregations.
pub fn stats_columns(aggs: &[crate::ast::Agg], by: &[Key]) -> Vec<String> {
    let mut columns: Vec<String> = by.iter().map(|k| k.column().to_owned()).collect();
    columns.extend(aggs.iter().map(|a| a.column()));
    columns
}

/// A number as JSON (null when not finite).
pub fn json_number(x: f64) -> Value {
    num(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_and_print_as_rfc3339() {
        let t = time_micros(&Value::from("2026-11-28T09:30:15.25+01:00")).expect("time");
        assert_eq!(t, 1_795_854_615_250_000);
        assert_eq!(rfc3339(t), "2026-11-28T08:30:15Z");
        assert_eq!(time_micros(&Value::from("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_micros(1_795_854_615_250_000), "2026-11-28T08:30:15.250000Z");
        assert_eq!(time_micros(&Value::from("2026-02-30")), None);
        assert_eq!(bin(Some(&Value::from("2026-11-28T09:59:59Z")), 3_600_000_000), Value::from("2026-11-28T09:00:00Z"));
    }
}
