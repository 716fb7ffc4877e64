//! A detection rule's sliding window: `filter | stats aggs by keys | where cond in last D` (and
//! a Sigma correlation, compiled to the same). Each matching event joins its group's window (the
//! events of the last D, by event time); when the group's row satisfies `cond`, the rule fires
//! once with the window's events, and the group starts again empty (one alert per group per
//! window, as QUERY.md says).
//!
//! The state is bounded — at most [`MAX_GROUPS`] groups (the stalest dropped first) and
//! [`MAX_EVENTS_PER_GROUP`] events per group (the oldest dropped first) — and compact: a group
//! is known in memory by a 64-bit hash of its key values and keeps, per event, its time, its
//! place in the log and the values its aggregations read (one million one-event groups of a
//! counting rule take ~150 MB; BENCHMARKS.md). The groups an event changed are remembered
//! until [`WindowState::take_changes`], so the detection consumer saves only those, with its
//! checkpoint, and [`WindowState::restore`] reloads them after a restart.
use crate::ast::{Agg, AggFn, CmpOp, Expr, Key, Literal, Query, Stage, Test, TestOp};
use crate::matcher::{Fields, Lookup, Matcher};
use crate::table::{Row, json_number, key_values};
use crate::value::number;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The most groups a rule keeps.
pub const MAX_GROUPS: usize = 1 << 20;
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
    /// Every aggregation is a bare `count`: nothing is kept per event but its time and place.
    counts_only: bool,
}

/// A window described directly (a Sigma correlation): aggregations over `by`, fired when the
/// first aggregation satisfies every `(op, n)` of `cond`.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    /// The aggregations (the first is the one `cond` tests).
    pub aggs: Vec<Agg>,
    /// The group-by columns.
    pub by: Vec<String>,
    /// The thresholds, all of which must hold.
    pub cond: Vec<(CmpOp, f64)>,
    /// The window's length.
    pub span_secs: u64,
}

/// One event of a window: its time (µs), its place in the log, and the values the aggregations
/// read (empty when they read none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    t: i64,
    seq: i64,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    v: Box<[Option<Value>]>,
}

/// One group's window, and its aggregations kept up to date as events join and leave it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Group {
    entries: VecDeque<Entry>,
    running: Box<[Running]>,
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

/// The state of a windowed rule: every group's window, and which groups changed since the
/// last [`WindowState::take_changes`].
#[derive(Debug, Clone, Default)]
pub struct WindowState {
    groups: HashMap<u64, Box<Group>>,
    changed: std::collections::HashSet<u64>,
}

/// A group's state to save (`Some`) or to delete (`None`), by the group's id.
pub type Change = (u64, Option<Saved>);

/// A group's window as saved.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// The window's events (JSON), for [`WindowRule::restore`].
    pub state: String,
    /// Its newest event's time (µs): once the window's span has passed since, nothing of it
    /// counts any more and the saved row can go.
    pub last: i64,
}

/// A group's id: a 64-bit hash of its key values, the same in every run (SipHash with fixed
/// keys), so a saved group is found again after a restart. Two groups share an id with
/// probability ~n²/2⁶⁵ (one in 36 million for a million groups); choosing key values that
/// collide with another person's takes ~2⁶⁴ tries. The map holding groups hashes ids again with
/// a per-process random key.
pub fn group_id(keys: &[Value]) -> u64 {
    use std::hash::{Hash, Hasher};
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    serde_json::to_string(keys).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl WindowState {
    /// Groups held.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The groups changed since the last call: each one's window to save, or `None` for a group
    /// that is gone (fired, expired or evicted).
    pub fn take_changes(&mut self) -> Vec<Change> {
        let changed = std::mem::take(&mut self.changed);
        changed
            .into_iter()
            .map(|h| {
                let saved = self.groups.get(&h).map(|g| Saved {
                    state: serde_json::to_string(&g.entries).unwrap_or_default(),
                    last: g.entries.back().map_or(0, |e| e.t),
                });
                (h, saved)
            })
            .collect()
    }

    /// Whether changes are waiting to be saved.
    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// A window that satisfied the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The group's row: its keys and aggregations.
    pub row: Row,
    /// The log positions of the window's events, oldest first.
    pub seqs: Vec<i64>,
    /// The first and last event times (µs).
    pub first: i64,
    /// See `first`.
    pub last: i64,
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
        Ok(Some(WindowRule::build(q.filter.as_ref(), aggs.clone(), by.clone(), cond, span.micros())?))
    }

    /// A window described directly (it has no filter: the caller feeds it what matched).
    pub fn from_spec(spec: WindowSpec) -> WindowRule {
        let column = spec.aggs.first().map(Agg::column).unwrap_or_else(|| "count".into());
        let tests: Vec<Expr> =
            spec.cond.iter().map(|(op, n)| Expr::Test(Test { field: column.clone(), op: TestOp::Cmp(*op, Literal::Num(*n)) })).collect();
        let cond = match tests.len() {
            1 => tests.into_iter().next().unwrap_or(Expr::And(Vec::new())),
            _ => Expr::And(tests),
        };
        let by = spec.by.into_iter().map(Key::Field).collect();
        let span = (spec.span_secs as i64).saturating_mul(1_000_000);
        // Only comparisons on a column: always compiles.
        WindowRule::build(None, spec.aggs, by, &cond, span).unwrap_or_else(|_| WindowRule::never(span))
    }

    fn never(span_us: i64) -> WindowRule {
        let mut f = Fields::new();
        let never = Expr::Test(Test { field: "count".into(), op: TestOp::Exists });
        let cond = Matcher::compile(Some(&Expr::Not(Box::new(never))), &mut f)
            .unwrap_or_else(|_| Matcher::compile(None, &mut Fields::new()).expect("an empty matcher"));
        WindowRule {
            fields: Fields::new(),
            filter: Matcher::compile(None, &mut Fields::new()).expect("an empty matcher"),
            aggs: Vec::new(),
            by: Vec::new(),
            cond_fields: f,
            cond,
            span_us,
            counts_only: true,
        }
    }

    fn build(filter: Option<&Expr>, aggs: Vec<Agg>, by: Vec<Key>, cond: &Expr, span_us: i64) -> Result<WindowRule, String> {
        let mut fields = Fields::new();
        let filter = Matcher::compile(filter, &mut fields)?;
        let mut cond_fields = Fields::new();
        let cond = Matcher::compile(Some(cond), &mut cond_fields)?;
        let counts_only = aggs.iter().all(|a| a.func == AggFn::Count && a.field.is_none());
        Ok(WindowRule { fields, filter, aggs, by, cond_fields, cond, span_us, counts_only })
    }

    /// The group-by columns.
    pub fn group_by(&self) -> Vec<String> {
        self.by.iter().map(|k| k.column().to_owned()).collect()
    }

    /// The window's length in seconds.
    pub fn span_secs(&self) -> u64 {
        (self.span_us / 1_000_000) as u64
    }

    /// Feeds one event (as the log shows it) with its place in the log and its time (µs);
    /// returns a firing when its group's window satisfies the rule.
    pub fn observe(&self, state: &mut WindowState, event: &dyn Lookup, seq: i64, t: i64) -> Option<Firing> {
        if !self.filter.matches(&self.fields.record(event)) {
            return None;
        }
        self.add(state, event, seq, t)
    }

    /// Adds an event that matched to its group's window, without the filter (a Sigma
    /// correlation feeds the matches of the documents it references); `row` holds the group-by
    /// columns and the fields the aggregations read.
    pub fn add(&self, state: &mut WindowState, row: &dyn Lookup, seq: i64, t: i64) -> Option<Firing> {
        let keys = key_values(&self.by, row);
        let h = group_id(&keys);
        if !state.groups.contains_key(&h) && state.groups.len() >= MAX_GROUPS {
            self.evict(state);
        }
        state.changed.insert(h);
        let group =
            state.groups.entry(h).or_insert_with(|| Box::new(Group { entries: VecDeque::with_capacity(1), running: self.fresh_running() }));
        let values: Box<[Option<Value>]> = if self.counts_only {
            Box::default()
        } else {
            self.aggs.iter().map(|a| a.field.as_ref().and_then(|f| row.lookup(f)).cloned()).collect()
        };
        self.join(group, Entry { t, seq, v: values });
        let mut out = self.row_of(group);
        if !self.cond.matches(&self.cond_fields.record(&out)) {
            return None;
        }
        let fired = state.groups.remove(&h)?;
        for (k, v) in self.by.iter().zip(keys) {
            out.insert(k.column().to_owned(), v);
        }
        let (first, last) = (fired.entries.front().map_or(t, |e| e.t), fired.entries.back().map_or(t, |e| e.t));
        Some(Firing { row: out, seqs: fired.entries.into_iter().map(|e| e.seq).collect(), first, last })
    }

    fn fresh_running(&self) -> Box<[Running]> {
        if self.counts_only { Box::default() } else { self.aggs.iter().map(|a| Running::new(a.func)).collect() }
    }

    /// Puts an entry in time order (late events fall into the right place) and drops what the
    /// window no longer holds.
    fn join(&self, group: &mut Group, entry: Entry) {
        for ((r, a), v) in group.running.iter_mut().zip(&self.aggs).zip(entry.v.iter()) {
            r.apply(a.field.is_none(), v.as_ref(), 1);
        }
        let at = group.entries.partition_point(|e| e.t <= entry.t);
        group.entries.insert(at, entry);
        let newest = group.entries.back().map_or(i64::MIN, |e| e.t);
        while group.entries.front().is_some_and(|e| e.t <= newest - self.span_us) || group.entries.len() > MAX_EVENTS_PER_GROUP {
            if let Some(gone) = group.entries.pop_front() {
                for ((r, a), v) in group.running.iter_mut().zip(&self.aggs).zip(gone.v.iter()) {
                    r.apply(a.field.is_none(), v.as_ref(), -1);
                }
            }
        }
    }

    /// Reloads group `h` saved by [`WindowState::take_changes`] (after a restart). Past
    /// [`MAX_GROUPS`], the stalest are evicted as when events arrive.
    pub fn restore(&self, state: &mut WindowState, h: u64, saved: &str) -> Result<(), String> {
        let entries: Vec<Entry> = serde_json::from_str(saved).map_err(|e| format!("a saved window does not read back: {e}"))?;
        let mut group = Group { entries: VecDeque::with_capacity(entries.len().max(1)), running: self.fresh_running() };
        for mut e in entries {
            if self.counts_only {
                e.v = Box::default();
            } else if e.v.len() != self.aggs.len() {
                return Err("a saved window has values for other aggregations".into());
            }
            self.join(&mut group, e);
        }
        if !state.groups.contains_key(&h) && state.groups.len() >= MAX_GROUPS {
            self.evict(state);
        }
        state.groups.insert(h, Box::new(group));
        Ok(())
    }

    /// Drops every group whose newest event is older than the window before `t` (their events
    /// would leave at the group's next event anyway); what the consumer calls now and then so
    /// groups that went quiet do not hold memory. Returns how many were dropped.
    pub fn expire(&self, state: &mut WindowState, t: i64) -> usize {
        let before = state.groups.len();
        let span = self.span_us;
        let mut gone = Vec::new();
        state.groups.retain(|h, g| {
            let keep = g.entries.back().is_some_and(|e| e.t > t - span);
            if !keep {
                gone.push(*h);
            }
            keep
        });
        // Deleted where they were saved with the next changes.
        state.changed.extend(gone);
        before - state.groups.len()
    }

    /// Every group's aggregations over its window (not its keys, which memory does not keep),
    /// for a view of what a rule holds.
    pub fn current(&self, state: &WindowState) -> Vec<Row> {
        let mut rows: Vec<Row> = state.groups.values().map(|g| self.row_of(g)).collect();
        rows.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
        rows
    }

    fn row_of(&self, g: &Group) -> Row {
        let mut row = Row::new();
        for (i, a) in self.aggs.iter().enumerate() {
            let v = match g.running.get(i) {
                Some(r) => r.value(a.func),
                None => Value::from(g.entries.len() as u64),
            };
            row.insert(a.column(), v);
        }
        row
    }

    /// Makes room for a group: drops the stalest hundredth of the groups at once (so a flood
    /// of new groups costs one selection per ten thousand of them, not a scan each). They are
    /// deleted where they were saved with the next changes.
    fn evict(&self, state: &mut WindowState) {
        let mut ages: Vec<(i64, u64)> = state.groups.iter().map(|(k, g)| (g.entries.back().map_or(i64::MIN, |e| e.t), *k)).collect();
        let n = (ages.len() / 100).max(1);
        ages.select_nth_unstable(n - 1);
        for (_, k) in ages.into_iter().take(n) {
            state.groups.remove(&k);
            state.changed.insert(k);
        }
    }
}
