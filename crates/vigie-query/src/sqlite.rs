//! The SQLite dialect of the SQL back end: the functions its SQL calls (the same Rust code as
//! the streaming back end, so both read values alike) and the runner, which aggregates a range
//! in slices (newest first) and stops at the budget with what it has.
use crate::ast::{AggFn, Key};
use crate::sql::{Plan, Shape};
use crate::table::{Row, RunError, Table, json_number, rfc3339, rfc3339_micros, run_stages, stats_columns, time_micros};
use crate::value::{Cidr, Needle, number};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, params_from_iter};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

fn text_arg(ctx: &rusqlite::functions::Context<'_>, i: usize) -> Option<String> {
    match ctx.get_raw(i) {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_owned),
        _ => None,
    }
}

/// Registers the `vq_*` functions on `c` (each connection that runs plans needs them).
pub fn register(c: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    c.create_scalar_function("vq_num", 1, flags, |ctx| Ok(text_arg(ctx, 0).and_then(|s| number(&Value::String(s)))))?;
    c.create_scalar_function("vq_time", 1, flags, |ctx| Ok(ctx.get::<Option<i64>>(0)?.map(rfc3339_micros)))?;
    c.create_scalar_function("vq_micros", 1, flags, |ctx| Ok(text_arg(ctx, 0).and_then(|s| time_micros(&Value::String(s)))))?;
    for (name, f) in
        [("vq_contains", Needle::in_text as fn(&Needle, &str) -> bool), ("vq_starts", Needle::starts), ("vq_ends", Needle::ends)]
    {
        c.create_scalar_function(name, 2, flags, move |ctx| {
            let (Some(hay), Some(needle)) = (text_arg(ctx, 0), text_arg(ctx, 1)) else { return Ok(false) };
            Ok(f(&Needle::new(&needle), &hay))
        })?;
    }
    // The distinct string values of a member of an array's objects, in order of first
    // appearance, as a JSON array (`[{"type": "IBAN"}, {"type": "IBAN"}, "x"]` → `["IBAN"]`).
    c.create_scalar_function("vq_distinct_member", 2, flags, |ctx| {
        let (Some(array), Some(member)) = (text_arg(ctx, 0), text_arg(ctx, 1)) else { return Ok(None) };
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&array) else { return Ok(None) };
        let mut out: Vec<Value> = Vec::new();
        for item in items {
            if let Some(v) = item.get(&member).filter(|v| v.is_string())
                && !out.contains(v)
            {
                out.push(v.clone());
            }
        }
        Ok(Some(json_text(&Value::Array(out))))
    })?;
    c.create_scalar_function("vq_matches", 2, flags, |ctx| {
        let re = ctx.get_or_create_aux(0, |v| -> Result<regex::Regex, Box<dyn std::error::Error + Send + Sync>> {
            let pattern = v.as_str()?;
            Ok(regex::RegexBuilder::new(pattern).size_limit(crate::parse::MAX_REGEX_BYTES).build()?)
        })?;
        Ok(text_arg(ctx, 1).is_some_and(|s| re.is_match(&s)))
    })?;
    c.create_scalar_function("vq_cidr", 2, flags, |ctx| {
        let net = ctx
            .get_or_create_aux(0, |v| -> Result<Option<Cidr>, Box<dyn std::error::Error + Send + Sync>> { Ok(Cidr::parse(v.as_str()?)) })?;
        Ok(match (net.as_ref(), text_arg(ctx, 1)) {
            (Some(n), Some(s)) => n.holds(&Value::String(s)),
            _ => false,
        })
    })?;
    Ok(())
}

/// How much a query may do.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The most events returned (an events query stops after them).
    pub max_rows: usize,
    /// When to stop.
    pub deadline: Instant,
}

/// An answer, maybe cut short by the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial<T> {
    /// What was found.
    pub value: T,
    /// True when the budget stopped the query before it covered the whole range.
    pub partial: bool,
    /// The start of the range covered (µs): the requested start when complete.
    pub covered_from: i64,
}

/// A failure without the SQL text (which rusqlite's errors quote).
fn failed(e: &rusqlite::Error) -> RunError {
    let what = match e {
        rusqlite::Error::SqliteFailure(f, msg) => msg.clone().unwrap_or_else(|| f.to_string()),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    RunError(format!("the search failed: {what}"))
}

/// Whether `e` is SQLite stopping at the deadline.
pub fn interrupted(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted)
}

/// Runs `f` with SQLite interrupted at `deadline`.
pub fn with_deadline<T>(c: &Connection, deadline: Instant, f: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    c.progress_handler(10_000, Some(move || Instant::now() >= deadline));
    let out = f();
    c.progress_handler(10_000, None::<fn() -> bool>);
    out
}

/// The matching events of an events plan in `[from, to)`: `(seq, time)`, newest first, at most
/// `budget.max_rows`; `partial` when more matched or the deadline came first.
pub fn events(c: &Connection, plan: &Plan, from: i64, to: i64, budget: Budget) -> Result<Partial<Vec<(i64, i64)>>, RunError> {
    if plan.shape != Shape::Events {
        return Err(RunError("not an events plan".into()));
    }
    let sql = format!("{} LIMIT {}", plan.sql, budget.max_rows.saturating_add(1));
    let mut params = vec![SqlValue::Integer(from), SqlValue::Integer(to)];
    params.extend(plan.params.iter().cloned());
    let mut out = Vec::new();
    let run = with_deadline(c, budget.deadline, || {
        let mut stmt = c.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            out.push((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?));
        }
        Ok(())
    });
    let mut partial = match run {
        Ok(()) => false,
        Err(e) if interrupted(&e) => true,
        Err(e) => return Err(failed(&e)),
    };
    if out.len() > budget.max_rows {
        out.truncate(budget.max_rows);
        partial = true;
    }
    let covered_from = if partial { out.last().map_or(to, |(_, t)| *t) } else { from };
    Ok(Partial { value: out, partial, covered_from })
}

/// An aggregation's partial state, merged across slices (and with other sources of rows).
#[derive(Debug, Clone)]
pub enum State {
    /// `count`, `count(field)`.
    Count(u64),
    /// `dc(field)`: the distinct values' JSON texts.
    Distinct(BTreeSet<String>),
    /// `sum(field)`: the sum and how many values.
    Sum(f64, u64),
    /// `avg(field)`: the sum and how many values.
    Avg(f64, u64),
    /// `min(field)`.
    Min(Option<f64>),
    /// `max(field)`.
    Max(Option<f64>),
}

impl State {
    /// The final value.
    pub fn value(&self) -> Value {
        match self {
            State::Count(n) => Value::from(*n),
            State::Distinct(s) => Value::from(s.len() as u64),
            State::Sum(s, n) => {
                if *n == 0 {
                    Value::Null
                } else {
                    json_number(*s)
                }
            }
            State::Avg(s, n) => {
                if *n == 0 {
                    Value::Null
                } else {
                    json_number(*s / *n as f64)
                }
            }
            State::Min(m) | State::Max(m) => m.map_or(Value::Null, json_number),
        }
    }
}

/// Groups of a `stats` being aggregated: each group's key values and its aggregations' states.
#[derive(Debug, Clone, Default)]
pub struct Groups(BTreeMap<String, (Vec<Value>, Vec<State>)>);

impl Groups {
    /// Adds one group's states (merged into the group if it is there already).
    pub fn merge(&mut self, keys: Vec<Value>, states: Vec<State>) {
        let id = serde_json::to_string(&keys).unwrap_or_default();
        match self.0.get_mut(&id) {
            None => {
                self.0.insert(id, (keys, states));
            }
            Some((_, have)) => {
                for (h, s) in have.iter_mut().zip(states) {
                    merge(h, s);
                }
            }
        }
    }

    /// Adds every group of `other`.
    pub fn extend(&mut self, other: Groups) {
        for (_, (keys, states)) in other.0 {
            self.merge(keys, states);
        }
    }

    /// The table: one row per group (one row of zeros for a `stats` without `by` over no
    /// events, unless `partial`), then the stages after the `stats`.
    pub fn finish(mut self, plan: &Plan, partial: bool) -> Result<Table, RunError> {
        let Shape::Stats { by, aggs } = &plan.shape else { return Err(RunError("not a stats plan".into())) };
        if self.0.is_empty() && by.is_empty() && !partial {
            self.0.insert(String::new(), (Vec::new(), aggs.iter().map(|a| empty(a.func)).collect()));
        }
        let rows: Vec<Row> = self
            .0
            .into_values()
            .map(|(keys, states)| {
                let mut r = Row::new();
                for (k, v) in by.iter().zip(keys) {
                    r.insert(k.column().to_owned(), v);
                }
                for (a, s) in aggs.iter().zip(states) {
                    r.insert(a.column(), s.value());
                }
                r
            })
            .collect();
        run_stages(&plan.rest, rows, stats_columns(aggs, by))
    }
}

/// The rows of a stats plan over `[from, to)`, aggregated in slices of `slice_us` from the
/// newest; at the deadline, the slices done so far (`partial`, `covered_from`). The stages
/// after the `stats` then run in memory.
pub fn stats(c: &Connection, plan: &Plan, from: i64, to: i64, slice_us: i64, budget: Budget) -> Result<Partial<Table>, RunError> {
    let out = stats_groups(c, plan, from, to, slice_us, budget)?;
    Ok(Partial { value: out.value.finish(plan, out.partial)?, partial: out.partial, covered_from: out.covered_from })
}

/// The groups of a stats plan over `[from, to)`, not yet finished (see [`stats`]).
pub fn stats_groups(c: &Connection, plan: &Plan, from: i64, to: i64, slice_us: i64, budget: Budget) -> Result<Partial<Groups>, RunError> {
    let Shape::Stats { by, aggs } = &plan.shape else { return Err(RunError("not a stats plan".into())) };
    let mut groups = Groups::default();
    let (mut end, mut partial) = (to, false);
    let slice_us = slice_us.max(1);
    while end > from {
        let start = end.saturating_sub(slice_us).max(from);
        let mut params = vec![SqlValue::Integer(start), SqlValue::Integer(end)];
        params.extend(plan.params.iter().cloned());
        let mut slice: Vec<(Vec<Value>, Vec<State>)> = Vec::new();
        let run = with_deadline(c, budget.deadline, || {
            let mut stmt = c.prepare_cached(&plan.sql)?;
            let mut rows = stmt.query(params_from_iter(params.iter()))?;
            while let Some(r) = rows.next()? {
                let mut keys = Vec::with_capacity(by.len());
                for (i, k) in by.iter().enumerate() {
                    keys.push(match k {
                        Key::Field(_) => r.get::<_, Option<String>>(i)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or(Value::Null),
                        Key::Bin { .. } => r.get::<_, Option<i64>>(i)?.map_or(Value::Null, |us| Value::String(rfc3339(us))),
                    });
                }
                let mut col = by.len();
                let mut states = Vec::with_capacity(aggs.len());
                for a in aggs {
                    states.push(match a.func {
                        AggFn::Count => State::Count(r.get::<_, Option<i64>>(col)?.unwrap_or(0).max(0) as u64),
                        AggFn::Dc => State::Distinct(r.get::<_, Option<String>>(col)?.map(|s| distinct(&s)).unwrap_or_default()),
                        AggFn::Sum | AggFn::Avg => {
                            let (s, n) = (r.get::<_, Option<f64>>(col)?.unwrap_or(0.0), r.get::<_, i64>(col + 1)?.max(0) as u64);
                            col += 1;
                            if a.func == AggFn::Sum { State::Sum(s, n) } else { State::Avg(s, n) }
                        }
                        AggFn::Min => State::Min(r.get(col)?),
                        AggFn::Max => State::Max(r.get(col)?),
                    });
                    col += 1;
                }
                slice.push((keys, states));
            }
            Ok(())
        });
        match run {
            Ok(()) => {}
            Err(e) if interrupted(&e) => {
                partial = true;
                break;
            }
            Err(e) => return Err(failed(&e)),
        }
        for (keys, states) in slice {
            groups.merge(keys, states);
        }
        end = start;
        if Instant::now() >= budget.deadline && end > from {
            partial = true;
            break;
        }
    }
    Ok(Partial { value: groups, partial, covered_from: if partial { end } else { from } })
}

/// The JSON texts of `group_concat(DISTINCT char(31) || j)`: "\x1fa,\x1fb" → {a, b} (a JSON
/// text never ends with a comma, so the one before each separator is the default separator).
fn distinct(s: &str) -> BTreeSet<String> {
    let pieces: Vec<&str> = s.split('\u{1f}').skip(1).collect();
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let text = if i < last { p.strip_suffix(',').unwrap_or(p) } else { p };
            // As sent, a value may be spelt several ways (`"a"`, `"\u0061"`; `0.9`, `0.90`):
            // counted once, as the in-memory back end counts values.
            serde_json::from_str::<Value>(text).map_or_else(|_| text.to_owned(), |v| json_text(&v))
        })
        .collect()
}

/// A JSON text as `dc` states keep it.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The state of an aggregation over nothing.
pub fn empty(f: AggFn) -> State {
    match f {
        AggFn::Count => State::Count(0),
        AggFn::Dc => State::Distinct(BTreeSet::new()),
        AggFn::Sum => State::Sum(0.0, 0),
        AggFn::Avg => State::Avg(0.0, 0),
        AggFn::Min => State::Min(None),
        AggFn::Max => State::Max(None),
    }
}

fn merge(into: &mut State, s: State) {
    match (into, s) {
        (State::Count(a), State::Count(b)) => *a += b,
        (State::Distinct(a), State::Distinct(b)) => a.extend(b),
        (State::Sum(a, n), State::Sum(b, m)) | (State::Avg(a, n), State::Avg(b, m)) => {
            *a += b;
            *n += m;
        }
        (State::Min(a), State::Min(b)) => {
            *a = match (*a, b) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            }
        }
        (State::Max(a), State::Max(b)) => {
            *a = match (*a, b) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            }
        }
        _ => {}
    }
}
