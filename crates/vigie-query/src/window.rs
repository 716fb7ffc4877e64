//! A detection rule's sliding window: `filter | stats aggs by keys | where cond in last D`.
//! Each matching event joins its group's window (the events of the last D, by event time); when
//! the group's row satisfies `cond`, the rule fires once with the window's events, and the
//! group starts again empty (one alert per group per window, as QUERY.md says).
//!
//! The state is bounded — at most [`MAX_GROUPS`] groups (the stalest dropped first) and
//! [`MAX_EVENTS_PER_GROUP`] events per group (the oldest dropped first) — and serialisable, so
//! the detection consumer saves it with its checkpoint.
use crate::ast::AggFn;
use crate::ast::{Agg, Expr, Key, Query, Stage};
use crate::matcher::{Fields, Matcher};
use crate::table::{Row, json_number, key_values};
use crate::value::number;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The most groups a rule keeps.
pub const MAX_GROUPS: usize = 100_000;
/// The most events one group's window keeps.
pub const MAX_EVENTS_PER_GROUP: usize = 10_000;

/// A compiled windowed rule.
#[derive(Debug, Clone)]
pub struct WindowRule {
    fields: Fields,
    filter: Matcher,
    aggs: Vec<Agg>,
    by: Vec<Key>,
    cond_fields: Fields,
    cond: Matcher,
    span_us: i64,
}

/// One event of a window: its time, id, and the values the aggregations read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    t: i64,
    id: String,
    values: Vec<Option<Value>>,
}

/// One group's window, and its aggregations kept up to date as events join and leave it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Group {
    keys: Vec<Value>,
    entries: VecDeque<Entry>,
    running: Vec<Running>,
}

/// An aggregation over a window, updated per event that joins or leaves it (not recomputed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Running {
    /// `count`, `count(field)`.
    Count(u64),
    /// `dc(field)`: how many times each value (its JSON text) is in the window.
    Distinct(HashMap<String, u32>),
    /// `sum`, `avg`, `min`, `max`: the sum and count of the numbers, and each number's
    /// multiplicity, ordered (for min and max).
    Num { sum: f64, n: u64, values: BTreeMap<u64, u32> },
}

/// `x` as a key whose order is `f64::total_cmp`'s.
fn ordered(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn unordered(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

impl Running {
    fn new(f: AggFn) -> Running {
        match f {
            AggFn::Count => Running::Count(0),
            AggFn::Dc => Running::Distinct(HashMap::new()),
            _ => Running::Num { sum: 0.0, n: 0, values: BTreeMap::new() },
        }
    }

    /// Adds (`sign` 1) or removes (-1) one event's value, as `table::Acc::add` counts it.
    fn apply(&mut self, bare: bool, v: Option<&Value>, sign: i8) {
        let present = v.filter(|v| !v.is_null());
        match self {
            Running::Count(n) => {
                if bare || present.is_some() {
                    *n = if sign > 0 { *n + 1 } else { n.saturating_sub(1) };
                }
            }
            Running::Distinct(m) => {
                if let Some(v) = present {
                    let text = serde_json::to_string(v).unwrap_or_default();
                    if sign > 0 {
                        *m.entry(text).or_default() += 1;
                    } else if let Some(c) = m.get_mut(&text) {
                        *c -= 1;
                        if *c == 0 {
                            m.remove(&text);
                        }
                    }
                }
            }
            Running::Num { sum, n, values } => {
                if let Some(x) = present.and_then(number) {
                    let k = ordered(x);
                    if sign > 0 {
                        *sum += x;
                        *n += 1;
                        *values.entry(k).or_default() += 1;
                    } else if let Some(c) = values.get_mut(&k) {
                        *sum -= x;
                        *n -= 1;
                        *c -= 1;
                        if *c == 0 {
                            values.remove(&k);
                        }
                        if *n == 0 {
                            *sum = 0.0;
                        }
                    }
                }
            }
        }
    }

    fn value(&self, f: AggFn) -> Value {
        match (self, f) {
            (Running::Count(n), _) => Value::from(*n),
            (Running::Distinct(m), _) => Value::from(m.len() as u64),
            (Running::Num { n: 0, .. }, _) => Value::Null,
            (Running::Num { sum, .. }, AggFn::Sum) => json_number(*sum),
            (Running::Num { sum, n, .. }, AggFn::Avg) => json_number(*sum / *n as f64),
            (Running::Num { values, .. }, AggFn::Min) => values.keys().next().map_or(Value::Null, |k| json_number(unordered(*k))),
            (Running::Num { values, .. }, _) => values.keys().next_back().map_or(Value::Null, |k| json_number(unordered(*k))),
        }
    }
}

/// The state of a windowed rule: every group's window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    groups: HashMap<String, Group>,
}

impl WindowState {
    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

/// A window that satisfied the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The group's row: its keys and aggregations.
    pub row: Row,
    /// The ids of the window's events, oldest first.
    pub event_ids: Vec<String>,
}

impl WindowRule {
    /// The windowed rule of `q`, if `q` is one (`… | stats … | where … in last D`, nothing after).
    pub fn compile(q: &Query) -> Result<Option<WindowRule>, String> {
        let [Stage::Stats { aggs, by }, Stage::Where { cond, window: Some(span) }] = q.stages.as_slice() else {
            if q.stages.iter().any(|s| matches!(s, Stage::Where { window: Some(_), .. })) {
                return Err("a sliding window is written `filter | stats … by … | where … in last D`, with nothing else".into());
            }
            return Ok(None);
        };
        let mut fields = Fields::new();
        let filter = Matcher::compile(q.filter.as_ref(), &mut fields)?;
        let mut cond_fields = Fields::new();
        let cond = Matcher::compile(Some::<&Expr>(cond), &mut cond_fields)?;
        Ok(Some(WindowRule { fields, filter, aggs: aggs.clone(), by: by.clone(), cond_fields, cond, span_us: span.micros() }))
    }

    /// Feeds one event (as the log shows it) with its id and time (µs); returns a firing when
    /// its group's window satisfies the rule.
    pub fn observe(&self, state: &mut WindowState, event: &Row, id: &str, t: i64) -> Option<Firing> {
        if !self.filter.matches(&self.fields.record(event)) {
            return None;
        }
        let keys = key_values(&self.by, event);
        let gid = serde_json::to_string(&keys).unwrap_or_default();
        if !state.groups.contains_key(&gid) && state.groups.len() >= MAX_GROUPS {
            self.evict(state, t);
        }
        let group = state.groups.entry(gid.clone()).or_insert_with(|| Group {
            keys,
            entries: VecDeque::new(),
            running: self.aggs.iter().map(|a| Running::new(a.func)).collect(),
        });
        let values: Vec<Option<Value>> = self.aggs.iter().map(|a| a.field.as_ref().and_then(|f| event.get(f)).cloned()).collect();
        for ((r, a), v) in group.running.iter_mut().zip(&self.aggs).zip(&values) {
            r.apply(a.field.is_none(), v.as_ref(), 1);
        }
        // Kept in time order, so late events fall into the right place.
        let at = group.entries.partition_point(|e| e.t <= t);
        group.entries.insert(at, Entry { t, id: id.to_owned(), values });
        let newest = group.entries.back().map_or(t, |e| e.t);
        while group.entries.front().is_some_and(|e| e.t <= newest - self.span_us) || group.entries.len() > MAX_EVENTS_PER_GROUP {
            if let Some(gone) = group.entries.pop_front() {
                for ((r, a), v) in group.running.iter_mut().zip(&self.aggs).zip(&gone.values) {
                    r.apply(a.field.is_none(), v.as_ref(), -1);
                }
            }
        }
        let row = self.row(group);
        if !self.cond.matches(&self.cond_fields.record(&row)) {
            return None;
        }
        let fired = state.groups.remove(&gid)?;
        Some(Firing { row, event_ids: fired.entries.into_iter().map(|e| e.id).collect() })
    }

    /// Every group's current row (its keys and aggregations over its window), for a view of
    /// what a rule holds.
    pub fn current(&self, state: &WindowState) -> Vec<Row> {
        let mut rows: Vec<(String, Row)> = state.groups.iter().map(|(k, g)| (k.clone(), self.row(g))).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().map(|(_, r)| r).collect()
    }

    fn row(&self, g: &Group) -> Row {
        let mut row = Row::new();
        for (k, v) in self.by.iter().zip(&g.keys) {
            row.insert(k.column().to_owned(), v.clone());
        }
        for (a, r) in self.aggs.iter().zip(&g.running) {
            row.insert(a.column(), r.value(a.func));
        }
        row
    }

    /// Makes room for a group: drops every window wholly older than the span before `t`, and if
    /// that frees nothing, the stalest hundredth of the groups at once (so a flood of new groups
    /// costs one sort per thousand of them, not a scan each).
    fn evict(&self, state: &mut WindowState, t: i64) {
        let before = state.groups.len();
        state.groups.retain(|_, g| g.entries.back().is_some_and(|e| e.t > t - self.span_us));
        if state.groups.len() == before {
            let mut ages: Vec<(i64, String)> =
                state.groups.iter().map(|(k, g)| (g.entries.back().map_or(i64::MIN, |e| e.t), k.clone())).collect();
            let n = (ages.len() / 100).max(1);
            ages.select_nth_unstable(n - 1);
            for (_, k) in ages.into_iter().take(n) {
                state.groups.remove(&k);
            }
        }
    }
}
