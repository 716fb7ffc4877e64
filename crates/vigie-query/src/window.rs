//! A detection rule's sliding window: `filter | stats aggs by keys | where cond in last D`.
//! Each matching event joins its group's window (the events of the last D, by event time); when
//! the group's row satisfies `cond`, the rule fires once with the window's events, and the
//! group starts again empty (one alert per group per window, as QUERY.md says).
//!
//! The state is bounded — at most [`MAX_GROUPS`] groups (the stalest dropped first) and
//! [`MAX_EVENTS_PER_GROUP`] events per group (the oldest dropped first) — and serialisable, so
//! the detection consumer saves it with its checkpoint.
use crate::ast::{Agg, Expr, Key, Query, Stage};
use crate::matcher::{Fields, Matcher};
use crate::table::{Acc, Row, key_values};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

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

/// One group's window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Group {
    keys: Vec<Value>,
    entries: VecDeque<Entry>,
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
        let group = state.groups.entry(gid.clone()).or_insert_with(|| Group { keys, entries: VecDeque::new() });
        let values = self.aggs.iter().map(|a| a.field.as_ref().and_then(|f| event.get(f)).cloned()).collect();
        // Kept in time order, so late events fall into the right place.
        let at = group.entries.partition_point(|e| e.t <= t);
        group.entries.insert(at, Entry { t, id: id.to_owned(), values });
        let newest = group.entries.back().map_or(t, |e| e.t);
        while group.entries.front().is_some_and(|e| e.t <= newest - self.span_us) || group.entries.len() > MAX_EVENTS_PER_GROUP {
            group.entries.pop_front();
        }
        let row = self.row(group);
        if !self.cond.matches(&self.cond_fields.record(&row)) {
            return None;
        }
        let fired = state.groups.remove(&gid)?;
        Some(Firing { row, event_ids: fired.entries.into_iter().map(|e| e.id).collect() })
    }

    fn row(&self, g: &Group) -> Row {
        let mut accs: Vec<Acc> = self.aggs.iter().map(|a| Acc::new(a.func)).collect();
        for e in &g.entries {
            for ((acc, a), v) in accs.iter_mut().zip(&self.aggs).zip(&e.values) {
                acc.add(a.field.is_none(), v.as_ref());
            }
        }
        let mut row = Row::new();
        for (k, v) in self.by.iter().zip(&g.keys) {
            row.insert(k.column().to_owned(), v.clone());
        }
        for (a, acc) in self.aggs.iter().zip(accs) {
            row.insert(a.column(), acc.value());
        }
        row
    }

    /// Makes room for a group: drops every window wholly older than the span before `t`, and if
    /// none is, the stalest group.
    fn evict(&self, state: &mut WindowState, t: i64) {
        let before = state.groups.len();
        state.groups.retain(|_, g| g.entries.back().is_some_and(|e| e.t > t - self.span_us));
        if state.groups.len() == before
            && let Some(stalest) =
                state.groups.iter().min_by_key(|(_, g)| g.entries.back().map_or(i64::MIN, |e| e.t)).map(|(k, _)| k.clone())
        {
            state.groups.remove(&stalest);
        }
    }
}
