//! The rules of one space, evaluated together over each event.
//!
//! Pipe filters share one field registry (an event's field is looked up by name once per test
//! that needs it); Sigma documents go through one [`SigmaBackend`] for the whole space; windows
//! (pipe `stats … | where … in last D`, Sigma correlations) keep their state in [`States`],
//! which the caller owns, saves and restores.
use crate::event::EventSource;
use crate::rule::{Body, DOC_COLUMN, Program, RuleError, VALUE_COLUMN};
use crate::sigma::{Rsigma, SigmaBackend};
use serde_json::{Map, Value};
use vigie_query::matcher::{Fields, Matcher};
use vigie_query::table::Row;
use vigie_query::window::{Change, WindowRule, WindowState};

/// A rule as the engine runs it.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    /// The caller's id for it (reported with its hits and its window state).
    pub id: String,
    /// Its compiled form.
    pub program: Program,
}

/// A match: one event, or a window that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Index of the rule in the engine.
    pub rule: usize,
    /// What matched: the Sigma document or correlation title (empty for a pipe rule).
    pub part: String,
    /// Log positions of the events, oldest first.
    pub seqs: Vec<i64>,
    /// The first and last event times (µs).
    pub first: i64,
    /// See `first`.
    pub last: i64,
    /// A window's row (its group keys and aggregations); none for a single event.
    pub row: Option<Row>,
}

/// What [`Engine::first_pass`] found for one event.
#[derive(Debug, Default)]
pub struct FirstPass {
    hits: Vec<Hit>,
    docs: Vec<(usize, usize)>,
}

/// The windows of one rule: one for a pipe window, one per correlation for Sigma.
#[derive(Debug, Default)]
pub struct States {
    windows: Vec<Vec<WindowState>>,
}

impl States {
    /// The changed groups of every window since the last call: `(rule index, window, (group id,
    /// saved or None))`.
    pub fn take_changes(&mut self) -> Vec<(usize, usize, Change)> {
        let mut out = Vec::new();
        for (r, ws) in self.windows.iter_mut().enumerate() {
            for (w, s) in ws.iter_mut().enumerate() {
                out.extend(s.take_changes().into_iter().map(|c| (r, w, c)));
            }
        }
        out
    }

    /// Groups held, over every window.
    pub fn groups(&self) -> usize {
        self.windows.iter().flatten().map(WindowState::groups).sum()
    }
}

/// The rules of one space, compiled.
pub struct Engine {
    rules: Vec<RuleEntry>,
    fields: Fields,
    /// Per rule, its filter when it is a pipe filter.
    filters: Vec<Option<Matcher>>,
    sigma: Option<Box<dyn SigmaBackend>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("rules", &self.rules.len()).finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine over `rules`, with `rsigma-eval` for Sigma documents.
    pub fn new(rules: Vec<RuleEntry>) -> Result<Engine, RuleError> {
        let sigma: Vec<(usize, &crate::rule::SigmaProgram)> = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.program.body {
                Body::Sigma(s) => Some((i, &**s)),
                _ => None,
            })
            .collect();
        let backend: Option<Box<dyn SigmaBackend>> = if sigma.is_empty() { None } else { Some(Box::new(Rsigma::new(&sigma)?)) };
        Engine::with_backend(rules, backend)
    }

    /// Builds the engine with another Sigma back end.
    pub fn with_backend(rules: Vec<RuleEntry>, sigma: Option<Box<dyn SigmaBackend>>) -> Result<Engine, RuleError> {
        let mut fields = Fields::new();
        let mut filters = Vec::with_capacity(rules.len());
        for r in &rules {
            filters.push(match &r.program.body {
                Body::Filter(q) => Some(Matcher::compile(q.filter.as_ref(), &mut fields).map_err(RuleError::new)?),
                _ => None,
            });
        }
        Ok(Engine { rules, fields, filters, sigma })
    }

    /// The rules, in the order hits name them.
    pub fn rules(&self) -> &[RuleEntry] {
        &self.rules
    }

    /// Empty state for every window of every rule.
    pub fn states(&self) -> States {
        States {
            windows: self
                .rules
                .iter()
                .map(|r| match &r.program.body {
                    Body::Filter(_) => Vec::new(),
                    Body::Window(..) => vec![WindowState::default()],
                    Body::Sigma(s) => s.correlations.iter().map(|_| WindowState::default()).collect(),
                })
                .collect(),
        }
    }

    /// The window `w` of rule `r`.
    fn window(&self, r: usize, w: usize) -> Option<&WindowRule> {
        match &self.rules.get(r)?.program.body {
            Body::Window(_, win) if w == 0 => Some(win),
            Body::Sigma(s) => s.correlations.get(w).map(|c| &c.window),
            _ => None,
        }
    }

    /// Reloads saved group `h` of window `w` of rule `r`.
    pub fn restore(&self, states: &mut States, r: usize, w: usize, h: u64, saved: &str) -> Result<(), String> {
        let win = self.window(r, w).ok_or("no such window")?;
        let state = states.windows.get_mut(r).and_then(|ws| ws.get_mut(w)).ok_or("no such window")?;
        win.restore(state, h, saved)
    }

    /// Drops groups that went quiet for longer than their window before `t` (µs).
    pub fn expire(&self, states: &mut States, t: i64) -> usize {
        let mut n = 0;
        for (r, ws) in states.windows.iter_mut().enumerate() {
            for (w, s) in ws.iter_mut().enumerate() {
                if let Some(win) = self.window(r, w) {
                    n += win.expire(s, t);
                }
            }
        }
        n
    }

    /// Evaluates every rule over one event (its log position `seq` and time `t` in µs),
    /// pushing the hits to `out`.
    pub fn evaluate(&self, states: &mut States, event: &dyn EventSource, seq: i64, t: i64, out: &mut Vec<Hit>) {
        let first = self.first_pass(event, seq, t);
        self.second_pass(states, event, first, seq, t, out);
    }

    /// The part of [`Engine::evaluate`] that reads no state (pipe filters, Sigma documents):
    /// events can go through it on several threads, then through [`Engine::second_pass`] in
    /// log order.
    pub fn first_pass(&self, event: &dyn EventSource, seq: i64, t: i64) -> FirstPass {
        let mut hits = Vec::new();
        self.evaluate_stateless(event, seq, t, &mut hits);
        // Empty (no allocation) unless a document matched.
        let mut docs = Vec::new();
        if let Some(s) = &self.sigma {
            s.matches(event, &mut docs);
        }
        FirstPass { hits, docs }
    }

    /// Windows and correlations over an event's [`FirstPass`]; pushes every hit to `out`.
    pub fn second_pass(&self, states: &mut States, event: &dyn EventSource, first: FirstPass, seq: i64, t: i64, out: &mut Vec<Hit>) {
        out.extend(first.hits);
        self.evaluate_stateful(states, event, &first.docs, seq, t, out);
    }

    /// The rules that need no state: pipe filters.
    fn evaluate_stateless(&self, event: &dyn EventSource, seq: i64, t: i64, out: &mut Vec<Hit>) {
        let record = self.fields.record(event);
        for (i, f) in self.filters.iter().enumerate() {
            if let Some(m) = f
                && m.matches(&record)
            {
                out.push(Hit { rule: i, part: String::new(), seqs: vec![seq], first: t, last: t, row: None });
            }
        }
    }

    /// Windows, and Sigma documents (whose matches `docs` holds) with their correlations.
    fn evaluate_stateful(
        &self,
        states: &mut States,
        event: &dyn EventSource,
        docs: &[(usize, usize)],
        seq: i64,
        t: i64,
        out: &mut Vec<Hit>,
    ) {
        for (i, r) in self.rules.iter().enumerate() {
            if let Body::Window(_, w) = &r.program.body
                && let Some(state) = states.windows.get_mut(i).and_then(|ws| ws.first_mut())
                && let Some(f) = w.observe(state, event, seq, t)
            {
                out.push(Hit { rule: i, part: String::new(), seqs: f.seqs, first: f.first, last: f.last, row: Some(f.row) });
            }
        }
        for &(i, d) in docs {
            let Some(Body::Sigma(s)) = self.rules.get(i).map(|r| &r.program.body) else { continue };
            let Some(doc) = s.docs.get(d) else { continue };
            if s.generates.get(d).copied().unwrap_or(true) {
                out.push(Hit { rule: i, part: doc.title.clone(), seqs: vec![seq], first: t, last: t, row: None });
            }
            for (w, c) in s.correlations.iter().enumerate() {
                let Some(p) = c.refs.iter().position(|&x| x == d) else { continue };
                let mut row = Map::new();
                for (name, field) in c.group_by.iter().zip(&c.fields[p]) {
                    row.insert(name.clone(), event.lookup(field).cloned().unwrap_or(Value::Null));
                }
                row.insert(
                    DOC_COLUMN.into(),
                    Value::String(doc.name.clone().or_else(|| doc.id.clone()).unwrap_or_else(|| doc.title.clone())),
                );
                if let Some(v) = c.value.as_ref().and_then(|v| v.get(p)).and_then(|f| event.lookup(f)) {
                    row.insert(VALUE_COLUMN.into(), v.clone());
                }
                let Some(state) = states.windows.get_mut(i).and_then(|ws| ws.get_mut(w)) else { continue };
                if let Some(f) = c.window.add(state, &row, seq, t) {
                    out.push(Hit { rule: i, part: c.title.clone(), seqs: f.seqs, first: f.first, last: f.last, row: Some(f.row) });
                }
            }
        }
    }
}
