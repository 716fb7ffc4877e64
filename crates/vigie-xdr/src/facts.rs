//! Facts: each event's flat fields, dictionary-encoded in a narrow table (`event_facts`,
//! `fact_values`), so an aggregation over a long range reads ~60 bytes per event instead of
//! parsing its body.
//!
//! A background builder reads the log after its checkpoint (`facts`), takes each field from
//! the event as the log shows it (`log::normalized`, so facts mean exactly what a search over
//! the body means), and writes the facts and the checkpoint in one transaction. A search whose
//! fields are all facets reads facts up to the checkpoint and the log after it
//! ([`stats_groups`]), so it never misses an event the builder has not reached.
use crate::log::{Stored, normalized};
use crate::state::XdrState;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;
use vigie_query::ast::{AggFn, Expr, Key, Query, Stage};
use vigie_query::matcher::{Fields, Matcher};
use vigie_query::sqlite::{Groups, State, json_text};
use vigie_query::table::rfc3339;

/// The fields kept as facts, in the order of `event_facts`' columns after its key.
pub const FACETS: [&str; 16] = [
    "source",
    "event_type",
    "tenant_id",
    "platform_id",
    "user_id",
    "user_email",
    "risk_score",
    "risk_level",
    "classification_count",
    "classification_type",
    "policy_name",
    "policy_action",
    "alert_severity",
    "direction",
    "interaction_type",
    "model",
];

/// The builder's checkpoint.
pub const CONSUMER: &str = "facts";
/// Events per builder transaction.
const BATCH: usize = 5_000;

/// Values to ids, cached (the table is append-only; the cache is emptied when a transaction
/// that may have added to it fails).
#[derive(Debug, Default)]
pub struct Dict(Mutex<HashMap<String, i64>>);

impl Dict {
    fn id(map: &mut HashMap<String, i64>, c: &Connection, text: &str) -> Result<i64, StoreError> {
        if let Some(&id) = map.get(text) {
            return Ok(id);
        }
        c.prepare_cached("INSERT INTO fact_values (value) VALUES (?1) ON CONFLICT (value) DO NOTHING")?.execute([text])?;
        let id: i64 = c.prepare_cached("SELECT id FROM fact_values WHERE value = ?1")?.query_row([text], |r| r.get(0))?;
        map.insert(text.to_owned(), id);
        Ok(id)
    }
}

/// One event's facts before encoding.
struct FactRow {
    space_no: i64,
    timestamp: i64,
    seq: i64,
    values: Vec<Option<String>>,
}

/// A field as a fact: its JSON text, none when absent or a non-empty object (which the shown
/// event has as dotted paths, not under this name).
fn fact(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(m) if !m.is_empty() => None,
        v => Some(json_text(v)),
    }
}

fn read_batch(c: &Connection, after: i64) -> Result<Vec<FactRow>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT seq, space_no, id, received_at, timestamp, event_type, source, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, BATCH as i64], |r| {
        let stored = Stored {
            id: r.get(2)?,
            received_at: r.get(3)?,
            timestamp: r.get(4)?,
            event_type: r.get(5)?,
            source: r.get(6)?,
            body: r.get(7)?,
        };
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, stored))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, space_no, stored) = row?;
        let m = normalized(&stored, "");
        out.push(FactRow { space_no, timestamp: stored.timestamp, seq, values: FACETS.iter().map(|f| fact(m.get(*f))).collect() });
    }
    Ok(out)
}

fn write_batch(c: &Connection, dict: &Dict, after: i64, rows: &[FactRow], now: i64) -> Result<usize, StoreError> {
    // Another round got there first: nothing to do.
    if crate::log::checkpoint(c, CONSUMER)? != after {
        return Ok(0);
    }
    let mut map = dict.0.lock().map_err(|_| StoreError::Commit("the facts dictionary lock is poisoned".into()))?;
    let result = (|| {
        let mut insert = c.prepare_cached(&format!(
            "INSERT OR IGNORE INTO event_facts (space_no, timestamp, seq, {}) VALUES ({})",
            FACETS.join(", "),
            (1..=FACETS.len() + 3).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
        ))?;
        for r in rows {
            let mut p: Vec<Option<i64>> = vec![Some(r.space_no), Some(r.timestamp), Some(r.seq)];
            for v in &r.values {
                p.push(v.as_deref().map(|t| Dict::id(&mut map, c, t)).transpose()?);
            }
            insert.execute(params_from_iter(p))?;
        }
        if let Some(last) = rows.last() {
            crate::log::advance(c, CONSUMER, last.seq, now)?;
        }
        Ok::<_, StoreError>(rows.len())
    })();
    if result.is_err() {
        map.clear();
    }
    result
}

/// Builds the facts of up to one batch of events after the checkpoint; how many.
pub async fn build_once(st: &XdrState) -> Result<usize, StoreError> {
    let (after, rows) = st
        .store
        .read(|c| {
            let after = crate::log::checkpoint(c, CONSUMER)?;
            Ok::<_, StoreError>((after, read_batch(c, after)?))
        })
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let dict = st.facts.clone();
    let now = to_micros(st.clock.now());
    st.store.write(move |c| write_batch(c, &dict, after, &rows, now)).await
}

/// The builder: catches up with the log, then waits for appends.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    let mut signal = st.log_signal();
    loop {
        loop {
            match build_once(&st).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "building facts failed; retrying in a second");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = signal.changed() => if changed.is_err() { return },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Searching facts

fn facet(name: &str) -> Option<usize> {
    FACETS.iter().position(|f| *f == name)
}

fn expr_fields<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    match e {
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| expr_fields(i, out)),
        Expr::Not(inner) => expr_fields(inner, out),
        Expr::Test(t) => out.push(&t.field),
    }
}

/// Whether facts answer `q`'s filter and first `stats`: every field a facet, group keys facets
/// or `bin(timestamp, …)`, at most four keys.
pub fn answers(q: &Query) -> bool {
    let mut fields = Vec::new();
    if let Some(f) = &q.filter {
        expr_fields(f, &mut fields);
    }
    let mut stages = q.stages.iter();
    let stats = loop {
        match stages.next() {
            Some(Stage::Where { cond, window: None }) => expr_fields(cond, &mut fields),
            Some(Stage::Stats { aggs, by }) => break Some((aggs, by)),
            _ => break None,
        }
    };
    let Some((aggs, by)) = stats else { return false };
    by.len() <= 4
        && by.iter().all(|k| match k {
            Key::Field(f) => facet(f).is_some(),
            Key::Bin { field, .. } => field == "timestamp",
        })
        && aggs.iter().all(|a| a.field.as_deref().is_none_or(|f| facet(f).is_some()))
        && fields.iter().all(|f| facet(f).is_some())
}

/// A filter over fact ids: each test evaluated once per distinct value, by the query's own
/// matcher on that value.
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Test(usize, usize),
}

struct TestCache {
    fields: Fields,
    matcher: Matcher,
    name: String,
    seen: HashMap<i64, bool>,
}

struct Decoder<'c> {
    c: &'c Connection,
    values: HashMap<i64, Value>,
}

impl Decoder<'_> {
    fn value(&mut self, id: i64) -> Result<Value, StoreError> {
        if let Some(v) = self.values.get(&id) {
            return Ok(v.clone());
        }
        let text: Option<String> =
            self.c.prepare_cached("SELECT value FROM fact_values WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
        let v = text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        self.values.insert(id, v.clone());
        Ok(v)
    }
}

fn node(e: &Expr, cols: &mut Vec<usize>, tests: &mut Vec<TestCache>) -> Result<Node, StoreError> {
    Ok(match e {
        Expr::And(items) => Node::And(items.iter().map(|i| node(i, cols, tests)).collect::<Result<_, _>>()?),
        Expr::Or(items) => Node::Or(items.iter().map(|i| node(i, cols, tests)).collect::<Result<_, _>>()?),
        Expr::Not(inner) => Node::Not(Box::new(node(inner, cols, tests)?)),
        Expr::Test(t) => {
            let f = facet(&t.field).ok_or_else(|| StoreError::Invalid(format!("{} is not a fact", t.field)))?;
            let col = match cols.iter().position(|c| *c == f) {
                Some(p) => p,
                None => {
                    cols.push(f);
                    cols.len() - 1
                }
            };
            let mut fields = Fields::new();
            let matcher = Matcher::compile(Some(e), &mut fields).map_err(StoreError::Invalid)?;
            tests.push(TestCache { fields, matcher, name: t.field.clone(), seen: HashMap::new() });
            Node::Test(col, tests.len() - 1)
        }
    })
}

fn eval(n: &Node, ids: &[i64], tests: &mut [TestCache], d: &mut Decoder<'_>) -> Result<bool, StoreError> {
    Ok(match n {
        Node::And(items) => {
            for i in items {
                if !eval(i, ids, tests, d)? {
                    return Ok(false);
                }
            }
            true
        }
        Node::Or(items) => {
            for i in items {
                if eval(i, ids, tests, d)? {
                    return Ok(true);
                }
            }
            false
        }
        Node::Not(inner) => !eval(inner, ids, tests, d)?,
        Node::Test(col, t) => {
            let id = ids[*col];
            let cache = &mut tests[*t];
            if let Some(&b) = cache.seen.get(&id) {
                return Ok(b);
            }
            let mut event = serde_json::Map::new();
            if id != 0 {
                event.insert(cache.name.clone(), d.value(id)?);
            }
            let b = cache.matcher.matches(&cache.fields.record(&event));
            cache.seen.insert(id, b);
            b
        }
    })
}

/// One aggregation's running state over ids.
enum Acc {
    Count(u64),
    Distinct(HashSet<i64>),
    Num { sum: f64, n: u64, min: Option<f64>, max: Option<f64> },
}

/// The groups of `q`'s first `stats` over `space_no`'s facts with `seq <= upto` in `[from, to)`
/// (see [`answers`]); `filter` is the query's filter and leading `where`s.
pub fn stats_groups(c: &Connection, q: &Query, space_no: i64, from: i64, to: i64, upto: i64) -> Result<Groups, StoreError> {
    let mut conds: Vec<&Expr> = q.filter.iter().collect();
    let mut aggs_by = None;
    for s in &q.stages {
        match s {
            Stage::Where { cond, window: None } => conds.push(cond),
            Stage::Stats { aggs, by } => {
                aggs_by = Some((aggs, by));
                break;
            }
            _ => break,
        }
    }
    let (aggs, by) = aggs_by.ok_or_else(|| StoreError::Invalid("facts answer a stats query".into()))?;
    let mut cols: Vec<usize> = Vec::new();
    let mut tests = Vec::new();
    let filter = match conds.len() {
        0 => None,
        _ => Some(Node::And(conds.iter().map(|e| node(e, &mut cols, &mut tests)).collect::<Result<_, _>>()?)),
    };
    let col_of = |cols: &mut Vec<usize>, f: usize| match cols.iter().position(|c| *c == f) {
        Some(p) => p,
        None => {
            cols.push(f);
            cols.len() - 1
        }
    };
    let keys: Vec<Result<usize, i64>> = by
        .iter()
        .map(|k| match k {
            Key::Field(f) => Ok(col_of(&mut cols, facet(f).unwrap_or(0))),
            Key::Bin { span, .. } => Err(span.micros().max(1)),
        })
        .collect();
    let agg_cols: Vec<Option<usize>> = aggs.iter().map(|a| a.field.as_deref().and_then(facet).map(|f| col_of(&mut cols, f))).collect();
    let select =
        if cols.is_empty() { String::new() } else { format!(", {}", cols.iter().map(|f| FACETS[*f]).collect::<Vec<_>>().join(", ")) };
    let sql = format!("SELECT timestamp{select} FROM event_facts WHERE space_no = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND seq <= ?4");
    let mut d = Decoder { c, values: HashMap::new() };
    let mut present: HashMap<i64, (bool, Option<f64>)> = HashMap::new();
    let mut groups: HashMap<[i64; 4], Vec<Acc>> = HashMap::new();
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![space_no, from, to, upto])?;
    let mut ids = vec![0i64; cols.len()];
    while let Some(r) = rows.next()? {
        let t: i64 = r.get(0)?;
        for (i, id) in ids.iter_mut().enumerate() {
            *id = r.get::<_, Option<i64>>(i + 1)?.unwrap_or(0);
        }
        if let Some(f) = &filter
            && !eval(f, &ids, &mut tests, &mut d)?
        {
            continue;
        }
        let mut key = [0i64; 4];
        for (slot, k) in key.iter_mut().zip(&keys) {
            *slot = match k {
                Ok(col) => ids[*col],
                Err(span) => t - t.rem_euclid(*span),
            };
        }
        let accs = groups.entry(key).or_insert_with(|| {
            aggs.iter()
                .map(|a| match a.func {
                    AggFn::Count => Acc::Count(0),
                    AggFn::Dc => Acc::Distinct(HashSet::new()),
                    _ => Acc::Num { sum: 0.0, n: 0, min: None, max: None },
                })
                .collect()
        });
        for (acc, col) in accs.iter_mut().zip(&agg_cols) {
            let Some(col) = col else {
                if let Acc::Count(n) = acc {
                    *n += 1;
                }
                continue;
            };
            let id = ids[*col];
            if id == 0 {
                continue;
            }
            let (is_present, number) = match present.get(&id) {
                Some(p) => *p,
                None => {
                    let v = d.value(id)?;
                    let p = (!v.is_null(), vigie_query::value::number(&v).filter(|_| !v.is_array()));
                    present.insert(id, p);
                    p
                }
            };
            if !is_present {
                continue;
            }
            match acc {
                Acc::Count(n) => *n += 1,
                Acc::Distinct(set) => {
                    set.insert(id);
                }
                Acc::Num { sum, n, min, max } => {
                    if let Some(x) = number {
                        *sum += x;
                        *n += 1;
                        *min = Some(min.map_or(x, |m| m.min(x)));
                        *max = Some(max.map_or(x, |m| m.max(x)));
                    }
                }
            }
        }
    }
    drop(rows);
    let mut out = Groups::default();
    for (key, accs) in groups {
        let mut values = Vec::with_capacity(by.len());
        for (slot, k) in key.iter().zip(&keys) {
            values.push(match k {
                Ok(_) if *slot == 0 => Value::Null,
                Ok(_) => d.value(*slot)?,
                Err(_) => Value::String(rfc3339(*slot)),
            });
        }
        let mut states = Vec::with_capacity(aggs.len());
        for (a, acc) in aggs.iter().zip(accs) {
            states.push(match acc {
                Acc::Count(n) => State::Count(n),
                Acc::Distinct(set) => {
                    let mut texts = std::collections::BTreeSet::new();
                    for id in set {
                        texts.insert(json_text(&d.value(id)?));
                    }
                    State::Distinct(texts)
                }
                Acc::Num { sum, n, min, max } => match a.func {
                    AggFn::Sum => State::Sum(sum, n),
                    AggFn::Avg => State::Avg(sum, n),
                    AggFn::Min => State::Min(min),
                    _ => State::Max(max),
                },
            });
        }
        out.merge(values, states);
    }
    Ok(out)
}
