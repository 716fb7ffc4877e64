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
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use serde_json::value::RawValue;
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
    /// The id of `text`: cached, else found or added in the table. Ids added here reach the
    /// cache only once their transaction has committed (`fresh`, published by `build_once`):
    /// a transaction rolled back with them must not leave ids the table does not hold.
    fn id(map: &HashMap<String, i64>, fresh: &mut HashMap<String, i64>, c: &Connection, text: &str) -> Result<i64, StoreError> {
        if let Some(&id) = map.get(text).or_else(|| fresh.get(text)) {
            return Ok(id);
        }
        c.prepare_cached("INSERT INTO fact_values (value) VALUES (?1) ON CONFLICT (value) DO NOTHING")?.execute([text])?;
        let id: i64 = c.prepare_cached("SELECT id FROM fact_values WHERE value = ?1")?.query_row([text], |r| r.get(0))?;
        fresh.insert(text.to_owned(), id);
        Ok(id)
    }

    fn publish(&self, fresh: HashMap<String, i64>) {
        if let Ok(mut map) = self.0.lock() {
            // Bounded: a dictionary grown past a million values is dropped and refilled.
            if map.len() + fresh.len() > 1_000_000 {
                map.clear();
            }
            map.extend(fresh);
        }
    }

    fn forget(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
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

/// The facet values of one stored event, read from its body in a few skipping passes (nothing
/// built but the values): what `log::normalized` gives for these fields, which a test checks.
pub fn facts_of(e: &Stored) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None; FACETS.len()];
    out[0] = Some(json_text(&Value::String(e.source.clone())));
    out[1] = e.event_type.as_ref().map(|t| json_text(&Value::String(t.clone())));
    let Ok(top) = members(&e.body, &TOP) else { return out };
    // The event's own fields of these names (`tenant_id` … `model`; `type` and `data` last).
    for (i, raw) in top[..FACETS.len() - 2].iter().enumerate() {
        out[i + 2] = raw.and_then(|r| canonical(r, false));
    }
    let (kind, data) = (top[FACETS.len() - 2], top[FACETS.len() - 1]);
    let Some(kind) = kind.and_then(|k| serde_json::from_str::<String>(k.get()).ok()) else { return out };
    let Some(data) = data.filter(|d| d.get().starts_with('{')) else { return out };
    let Ok(d) = members(data.get(), &["interaction", "policy", "alert"]) else { return out };
    let interaction = d[0].filter(|i| i.get().starts_with('{'));
    if interaction.is_none() && !["alert.", "policy.", "webhook."].iter().any(|p| kind.starts_with(p)) {
        return out;
    }
    // A firewall event: its flat fields (`normalize::firewall_fields`) over its own.
    fn slot(name: &str) -> usize {
        FACETS.iter().position(|f| *f == name).unwrap_or(0)
    }
    fn put(out: &mut [Option<String>], set: &mut [bool], name: &str, v: Option<String>) {
        let i = slot(name);
        out[i] = v;
        set[i] = true;
    }
    let mut set: Vec<bool> = vec![false; FACETS.len()];
    if let Some(i) = interaction
        && let Ok(f) = members(i.get(), &INTERACTION)
    {
        // The first eight are flat fields of the same name.
        for (k, name) in INTERACTION[..8].iter().enumerate() {
            if let Some(v) = f[k].and_then(|r| derived(r, true)) {
                put(&mut out, &mut set, name, v);
            }
        }
        if let Some(cs) = f[8].filter(|c| c.get().starts_with('['))
            && let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(cs.get())
        {
            let mut types: Vec<String> = Vec::new();
            for c in items {
                if let Ok([Some(t)]) = members(c.get(), &["type"])
                    && let Ok(t) = serde_json::from_str::<String>(t.get())
                    && !types.contains(&t)
                {
                    types.push(t);
                }
            }
            put(&mut out, &mut set, "classification_type", Some(json_text(&Value::from(types))));
        }
        if let Some(dec) = f[9]
            && let Ok(dm) = members(dec.get(), &["action", "policy_name", "risk_level"])
        {
            if let Some(v) = dm[0].and_then(|r| derived(r, true)) {
                put(&mut out, &mut set, "policy_action", v);
            }
            if let Some(v) = dm[1].and_then(|r| derived(r, true)) {
                put(&mut out, &mut set, "policy_name", v);
            }
            let level = slot("risk_level");
            if !set[level]
                && let Some(v) = dm[2].and_then(|r| derived(r, false))
            {
                put(&mut out, &mut set, "risk_level", v);
            }
        }
        if let Some(cm) = f[10]
            && let Ok([Some(m)]) = members(cm.get(), &["model"])
            && m.get().starts_with('"')
        {
            put(&mut out, &mut set, "model", canonical(m, true));
        }
    }
    if let Some(p) = d[1].filter(|p| p.get().starts_with('{'))
        && let Ok(pm) = members(p.get(), &["name", "action"])
    {
        for (k, name) in [(0, "policy_name"), (1, "policy_action")] {
            if !set[slot(name)]
                && let Some(v) = pm[k].and_then(|r| derived(r, false))
            {
                put(&mut out, &mut set, name, v);
            }
        }
    }
    if let Some(a) = d[2]
        && let Ok([Some(sev)]) = members(a.get(), &["severity"])
        && let Some(v) = derived(sev, true)
    {
        put(&mut out, &mut set, "alert_severity", v);
    }
    out
}

/// The top-level members `facts_of` reads: the facets after `source` and `event_type`, then
/// `type` and `data`.
/// The members `facts_of` reads from `data.interaction`: eight flat fields of the same name,
/// then what the others derive from.
const INTERACTION: [&str; 11] = [
    "platform_id",
    "user_id",
    "user_email",
    "risk_score",
    "risk_level",
    "classification_count",
    "direction",
    "interaction_type",
    "classifications",
    "decision",
    "content_metadata",
];

const TOP: [&str; 16] = {
    let mut top = [""; 16];
    let mut i = 2;
    while i < FACETS.len() {
        top[i - 2] = FACETS[i];
        i += 1;
    }
    top[14] = "type";
    top[15] = "data";
    top
};

/// A raw value as one of the firewall's flat fields would hold it: `None` to look further (a
/// null, with `skip_null`), `Some(None)` for a non-empty object (it replaces the event's own
/// field, and the shown event has its leaves as dotted paths), else its canonical text.
fn derived(raw: &RawValue, skip_null: bool) -> Option<Option<String>> {
    let v: Value = serde_json::from_str(raw.get()).ok()?;
    match &v {
        Value::Null if skip_null => None,
        Value::Object(m) if !m.is_empty() => Some(None),
        _ => Some(Some(json_text(&v))),
    }
}

/// A raw value as a fact's JSON text: none for a non-empty object (or, with `skip_null`, a
/// null); canonical otherwise (as `serde_json` writes it).
fn canonical(raw: &RawValue, skip_null: bool) -> Option<String> {
    let v: Value = serde_json::from_str(raw.get()).ok()?;
    match &v {
        Value::Null if skip_null => None,
        Value::Object(m) if !m.is_empty() => None,
        _ => Some(json_text(&v)),
    }
}

/// The members `names` of a JSON object text, in one pass that skips the rest (the last of a
/// repeated name wins, as a full parse keeps it); an error when it is not an object.
pub fn members<'a, const N: usize>(text: &'a str, names: &[&str; N]) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
    struct Seed<'n, const N: usize>(&'n [&'n str; N]);
    impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for Seed<'_, N> {
        type Value = [Option<&'de RawValue>; N];
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de, const N: usize> serde::de::Visitor<'de> for Seed<'_, N> {
        type Value = [Option<&'de RawValue>; N];
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
            let mut out = [None; N];
            while let Some(k) = m.next_key_seed(Key(self.0))? {
                match k {
                    Some(i) => out[i] = Some(m.next_value::<&'de RawValue>()?),
                    None => {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }
    /// A member name as its position in `names`, compared without copying it.
    struct Key<'n, const N: usize>(&'n [&'n str; N]);
    impl<'de, const N: usize> serde::de::DeserializeSeed<'de> for Key<'_, N> {
        type Value = Option<usize>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<const N: usize> serde::de::Visitor<'_> for Key<'_, N> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Option<usize>, E> {
            Ok(self.0.iter().position(|n| *n == k))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Seed(names), &mut de)
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
        out.push(FactRow { space_no, timestamp: stored.timestamp, seq, values: facts_of(&stored) });
    }
    Ok(out)
}

/// The facet values of an event as `log::normalized` shows it (the reference `facts_of` must
/// equal).
pub fn facts_of_normalized(e: &Stored) -> Vec<Option<String>> {
    let m = normalized(e, "");
    FACETS.iter().map(|f| fact(m.get(*f))).collect()
}

fn write_batch(
    c: &Connection,
    dict: &Dict,
    (deletions, seen_deletions): (&std::sync::atomic::AtomicU64, u64),
    after: i64,
    rows: &[FactRow],
    now: i64,
) -> Result<(usize, HashMap<String, i64>), StoreError> {
    // Another round got there first: nothing to do.
    if crate::log::checkpoint(c, CONSUMER)? != after {
        return Ok((0, HashMap::new()));
    }
    let map = dict.0.lock().map_err(|_| StoreError::Commit("the facts dictionary lock is poisoned".into()))?;
    let mut fresh = HashMap::new();
    // Events retention deleted since they were read get no facts. Retention bumps `deletions`
    // inside its own transactions, on this same writer thread, so an unchanged count means
    // nothing was deleted in between and the (costly) check is skipped.
    let present: Option<HashSet<i64>> = if deletions.load(std::sync::atomic::Ordering::Acquire) == seen_deletions {
        None
    } else {
        let mut stmt = c.prepare_cached("SELECT seq FROM events WHERE seq = ?1")?;
        let mut kept = HashSet::new();
        for r in rows {
            if stmt.query_row([r.seq], |_| Ok(())).optional()?.is_some() {
                kept.insert(r.seq);
            }
        }
        Some(kept)
    };
    // One block per space in the batch.
    let mut spaces: Vec<i64> = rows.iter().map(|r| r.space_no).collect();
    spaces.sort_unstable();
    spaces.dedup();
    for space in spaces {
        let mut block = Block::default();
        for r in rows.iter().filter(|r| r.space_no == space && present.as_ref().is_none_or(|p| p.contains(&r.seq))) {
            let mut ids = [0i64; FACETS.len()];
            for (id, v) in ids.iter_mut().zip(&r.values) {
                if let Some(t) = v {
                    *id = Dict::id(&map, &mut fresh, c, t)?;
                }
            }
            block.push(r.timestamp, r.seq, &ids);
        }
        block.store(c, space)?;
    }
    if let Some(last) = rows.last() {
        crate::log::advance(c, CONSUMER, last.seq, now)?;
    }
    Ok((rows.len(), fresh))
}

/// A block of facts being written: per event, its time (zigzag delta), its seq (delta) and
/// its facet ids (0 for none), as LEB128 varints.
#[derive(Default)]
struct Block {
    data: Vec<u8>,
    events: i64,
    first_seq: i64,
    last_seq: i64,
    min_ts: i64,
    max_ts: i64,
    prev_ts: i64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

impl Block {
    fn push(&mut self, ts: i64, seq: i64, ids: &[i64; FACETS.len()]) {
        if self.events == 0 {
            (self.first_seq, self.last_seq, self.min_ts, self.max_ts, self.prev_ts) = (seq, seq, ts, ts, 0);
        }
        let dt = ts.wrapping_sub(self.prev_ts);
        put_varint(&mut self.data, ((dt << 1) ^ (dt >> 63)) as u64);
        put_varint(&mut self.data, seq.wrapping_sub(self.last_seq) as u64);
        for id in ids {
            put_varint(&mut self.data, *id as u64);
        }
        self.prev_ts = ts;
        self.last_seq = seq;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        self.events += 1;
    }

    fn store(&self, c: &Connection, space: i64) -> Result<(), StoreError> {
        if self.events > 0 {
            c.prepare_cached(
                "INSERT OR REPLACE INTO fact_blocks (space_no, first_seq, last_seq, min_ts, max_ts, events, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![space, self.first_seq, self.last_seq, self.min_ts, self.max_ts, self.events, self.data])?;
        }
        Ok(())
    }
}

/// One event of a decoded block.
struct Fact {
    ts: i64,
    seq: i64,
    ids: [i64; FACETS.len()],
}

/// Decodes a block; `None` if it is damaged.
fn decode(data: &[u8], events: i64, first_seq: i64) -> Option<Vec<Fact>> {
    let mut out = Vec::with_capacity(usize::try_from(events).ok()?);
    let (mut at, mut ts, mut seq) = (0usize, 0i64, first_seq);
    for _ in 0..events {
        let z = get_varint(data, &mut at)?;
        ts = ts.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
        seq = seq.wrapping_add(get_varint(data, &mut at)? as i64);
        let mut ids = [0i64; FACETS.len()];
        for id in &mut ids {
            *id = get_varint(data, &mut at)? as i64;
        }
        out.push(Fact { ts, seq, ids });
    }
    Some(out)
}

/// Drops from `space`'s blocks the facts of the events `seqs` (retention deleted them): each
/// block holding some is rewritten without them, or deleted when none is left.
pub fn forget(c: &Connection, space: i64, seqs: &[i64]) -> Result<(), StoreError> {
    let (Some(&lo), Some(&hi)) = (seqs.iter().min(), seqs.iter().max()) else { return Ok(()) };
    let gone: HashSet<i64> = seqs.iter().copied().collect();
    let blocks: Vec<(i64, i64, Vec<u8>)> = c
        .prepare_cached("SELECT first_seq, events, data FROM fact_blocks WHERE space_no = ?1 AND first_seq <= ?2 AND last_seq >= ?3")?
        .query_map(params![space, hi, lo], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (first, events, data) in blocks {
        let facts = decode(&data, events, first).ok_or_else(|| StoreError::Commit(format!("fact block {space}/{first} is damaged")))?;
        if !facts.iter().any(|f| gone.contains(&f.seq)) {
            continue;
        }
        c.prepare_cached("DELETE FROM fact_blocks WHERE space_no = ?1 AND first_seq = ?2")?.execute(params![space, first])?;
        let mut block = Block::default();
        for f in facts.iter().filter(|f| !gone.contains(&f.seq)) {
            block.push(f.ts, f.seq, &f.ids);
        }
        block.store(c, space)?;
    }
    Ok(())
}

/// Builds the facts of up to one batch of events after the checkpoint; how many.
pub async fn build_once(st: &XdrState) -> Result<usize, StoreError> {
    let seen_deletions = st.deletions.load(std::sync::atomic::Ordering::Acquire);
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
    let (dict, deletions) = (st.facts.clone(), st.deletions.clone());
    let now = to_micros(st.clock.now());
    match st.store.write(move |c| write_batch(c, &dict, (&deletions, seen_deletions), after, &rows, now)).await {
        Ok((n, fresh)) => {
            st.facts.publish(fresh);
            Ok(n)
        }
        Err(e) => {
            st.facts.forget();
            Err(e)
        }
    }
}

/// The share of a core the builder takes while it is behind and events keep arriving: intake
/// comes first (facts only speed searches up; a search reads the log past the facts), so under
/// a sustained load the facts lag, and they catch up at full speed once appends pause.
const DUTY: f64 = 0.10;

/// The builder: catches up with the log, then waits for appends.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    crate::state::follow_log(&st, shutdown, "building facts", None, (), |()| {
        let st = st.clone();
        async move {
            let appends = *st.appended.borrow();
            let started = std::time::Instant::now();
            let step = build_once(&st).await.map(|n| match n {
                0 => crate::state::Step::CaughtUp,
                // Behind while events are still arriving: rest in proportion to the work.
                n if n == BATCH && *st.appended.borrow() != appends => {
                    crate::state::Step::More(started.elapsed().mul_f64((1.0 - DUTY) / DUTY))
                }
                _ => crate::state::Step::More(std::time::Duration::ZERO),
            });
            ((), step)
        }
    })
    .await;
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

/// Ids below this are remembered in a vector (the dictionary's ids are dense from 1, and the
/// common values — sources, event types, platforms, policies — come first), others in a map: a
/// lookup per event and test must cost next to nothing, and a cache must stay small (one per
/// test of every query of a pass: 32 Ki entries, not the dictionary's size).
const DENSE_IDS: i64 = 1 << 15;

/// What is known of each id, once computed.
struct IdCache<T: Copy> {
    dense: Vec<Option<T>>,
    sparse: HashMap<i64, T>,
}

impl<T: Copy> IdCache<T> {
    fn new() -> Self {
        IdCache { dense: Vec::new(), sparse: HashMap::new() }
    }

    fn get(&self, id: i64) -> Option<T> {
        if (0..DENSE_IDS).contains(&id) { self.dense.get(id as usize).copied().flatten() } else { self.sparse.get(&id).copied() }
    }

    fn put(&mut self, id: i64, v: T) {
        if (0..DENSE_IDS).contains(&id) {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(v);
        } else {
            self.sparse.insert(id, v);
        }
    }
}

/// A hasher for group keys: fact ids and bin starts, which the dictionary and the clock give
/// (no one chooses them to collide), so the multiply-rotate of rustc's FxHash is enough and
/// far cheaper than SipHash per event.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits to the last word (a time bin, often a multiple of a
        // power of two): rotate the well-mixed high bits down, as rustc-hash does.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        for b in chunks.remainder() {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

type GroupMap = HashMap<[i64; 4], Vec<Acc>, std::hash::BuildHasherDefault<IdHasher>>;

struct TestCache {
    fields: Fields,
    matcher: Matcher,
    name: String,
    seen: IdCache<bool>,
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
            tests.push(TestCache { fields, matcher, name: t.field.clone(), seen: IdCache::new() });
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
            if let Some(b) = cache.seen.get(id) {
                return Ok(b);
            }
            let mut event = serde_json::Map::new();
            if id != 0 {
                event.insert(cache.name.clone(), d.value(id)?);
            }
            let b = cache.matcher.matches(&cache.fields.record(&event));
            cache.seen.put(id, b);
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

/// One query's first `stats` being aggregated over facts: its filter (the query's filter and
/// leading `where`s), the facets it reads, and its groups so far.
struct Pass<'q> {
    aggs: &'q [vigie_query::ast::Agg],
    by: &'q [Key],
    /// The facets read, in the order of `ids`.
    cols: Vec<usize>,
    tests: Vec<TestCache>,
    filter: Option<Node>,
    /// Per group key: the column of its facet, or the width of its time bin.
    keys: Vec<Result<usize, i64>>,
    /// Per aggregation: the column of its field.
    agg_cols: Vec<Option<usize>>,
    /// Per id of an aggregated field: whether it is present, and its number.
    present: IdCache<(bool, Option<f64>)>,
    groups: GroupMap,
    /// The current fact's ids of `cols`.
    ids: Vec<i64>,
}

impl<'q> Pass<'q> {
    fn new(q: &'q Query) -> Result<Pass<'q>, StoreError> {
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
        let ids = vec![0i64; cols.len()];
        Ok(Pass { aggs, by, cols, tests, filter, keys, agg_cols, present: IdCache::new(), groups: GroupMap::default(), ids })
    }

    /// Adds one fact (in the range) to its group, if it passes the filter.
    fn feed(&mut self, fact: &Fact, d: &mut Decoder<'_>) -> Result<(), StoreError> {
        let t = fact.ts;
        for (id, col) in self.ids.iter_mut().zip(&self.cols) {
            *id = fact.ids[*col];
        }
        if let Some(f) = &self.filter
            && !eval(f, &self.ids, &mut self.tests, d)?
        {
            return Ok(());
        }
        let mut key = [0i64; 4];
        for (slot, k) in key.iter_mut().zip(&self.keys) {
            *slot = match k {
                Ok(col) => self.ids[*col],
                Err(span) => t - t.rem_euclid(*span),
            };
        }
        let aggs = self.aggs;
        let accs = self.groups.entry(key).or_insert_with(|| {
            aggs.iter()
                .map(|a| match a.func {
                    AggFn::Count => Acc::Count(0),
                    AggFn::Dc => Acc::Distinct(HashSet::new()),
                    _ => Acc::Num { sum: 0.0, n: 0, min: None, max: None },
                })
                .collect()
        });
        for (acc, col) in accs.iter_mut().zip(&self.agg_cols) {
            let Some(col) = col else {
                if let Acc::Count(n) = acc {
                    *n += 1;
                }
                continue;
            };
            let id = self.ids[*col];
            if id == 0 {
                continue;
            }
            let (is_present, number) = match self.present.get(id) {
                Some(p) => p,
                None => {
                    let v = d.value(id)?;
                    let p = (!v.is_null(), vigie_query::value::number(&v).filter(|_| !v.is_array()));
                    self.present.put(id, p);
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
        Ok(())
    }

    /// The groups, their ids decoded.
    fn finish(self, d: &mut Decoder<'_>) -> Result<Groups, StoreError> {
        let mut out = Groups::default();
        for (key, accs) in self.groups {
            let mut values = Vec::with_capacity(self.by.len());
            for (slot, k) in key.iter().zip(&self.keys) {
                values.push(match k {
                    Ok(_) if *slot == 0 => Value::Null,
                    Ok(_) => d.value(*slot)?,
                    Err(_) => Value::String(rfc3339(*slot)),
                });
            }
            let mut states = Vec::with_capacity(self.aggs.len());
            for (a, acc) in self.aggs.iter().zip(accs) {
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
}

/// The groups of `q`'s first `stats` over `space_no`'s facts with `seq <= upto` in `[from, to)`
/// (see [`answers`]); `filter` is the query's filter and leading `where`s.
pub fn stats_groups(c: &Connection, q: &Query, space_no: i64, from: i64, to: i64, upto: i64) -> Result<Groups, StoreError> {
    stats_groups_many(c, &[q], space_no, from, to, upto, None)?.pop().ok_or_else(|| StoreError::Invalid("no groups".into()))
}

/// The groups of several queries (each as [`stats_groups`] gives them) in one pass over the
/// facts: each block is read and decoded once and every query fed from it — a dashboard's
/// widgets share the reading, which is most of the cost.
///
/// The decoding and aggregation are Rust, out of SQLite's progress handler's reach: `deadline`
/// is checked between blocks, and passing it stops with SQLite's "interrupted" error (what the
/// search's slices treat as a partial answer).
pub fn stats_groups_many(
    c: &Connection,
    qs: &[&Query],
    space_no: i64,
    from: i64,
    to: i64,
    upto: i64,
    deadline: Option<std::time::Instant>,
) -> Result<Vec<Groups>, StoreError> {
    let mut passes: Vec<Pass<'_>> = qs.iter().map(|q| Pass::new(q)).collect::<Result<_, _>>()?;
    let mut d = Decoder { c, values: HashMap::new() };
    let blocks: Vec<(i64, i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT first_seq, events, data FROM fact_blocks WHERE space_no = ?1 AND max_ts >= ?2 AND min_ts < ?3 AND first_seq <= ?4",
        )?
        .query_map(params![space_no, from, to, upto], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (first, events, data) in blocks {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                Some("the search's time ran out".into()),
            )));
        }
        let facts = decode(&data, events, first).ok_or_else(|| StoreError::Commit(format!("fact block {space_no}/{first} is damaged")))?;
        for fact in &facts {
            if fact.ts < from || fact.ts >= to || fact.seq > upto {
                continue;
            }
            for p in &mut passes {
                p.feed(fact, &mut d)?;
            }
        }
    }
    passes.into_iter().map(|p| p.finish(&mut d)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn stored(body: &Value) -> Stored {
        let text = body.to_string();
        let f = crate::intake::log_fields(&text).unwrap_or_default();
        Stored {
            id: "e".into(),
            received_at: 0,
            timestamp: 0,
            event_type: f.event_type,
            source: f.source.unwrap_or_else(|| "api".into()),
            body: text,
        }
    }

    /// Bodies that take every branch of `normalize::firewall_fields`, and their mixtures.
    pub(crate) fn bodies() -> Vec<Value> {
        let interactions = [
            json!({"id": "i", "platform_id": "deepseek", "user_id": "u", "user_email": "u@x", "risk_score": 0.95, "risk_level": "critical",
                "classification_count": 2, "classifications": [{"type": "IBAN"}, {"type": "EMAIL"}, {"type": "IBAN"}, {"type": 3}, "x"],
                "direction": "outbound", "interaction_type": "prompt", "content_metadata": {"model": "m"},
                "decision": {"action": "block", "policy_name": "P", "risk_level": "high"}}),
            json!({"platform_id": null, "risk_level": null, "decision": {"risk_level": null, "action": null}, "content_metadata": {"model": 5}}),
            json!({"classifications": [], "decision": "odd", "content_metadata": "odd"}),
            json!({"platform_id": {"n": 1}, "user_id": {}, "risk_level": {"x": 1}, "decision": {"action": {"x": 1}, "policy_name": {}, "risk_level": {"y": 2}}}),
            json!({"decision": {"risk_level": {}}, "classification_count": {"c": 1}}),
            json!({"risk_score": "0.91", "classifications": {"type": "IBAN"}, "decision": {"policy_name": {"a": 1}}}),
            json!("not an object"),
            json!({}),
        ];
        let mut out = Vec::new();
        for (k, i) in interactions.iter().enumerate() {
            for kind in [json!("interaction.high_risk"), json!("policy.updated"), json!("alert.severity_critical"), json!(3), Value::Null] {
                let mut data = json!({"interaction": i});
                if k % 2 == 0 {
                    data["policy"] = json!({"name": "Block", "action": null});
                }
                if k % 3 == 0 {
                    data["alert"] = json!({"severity": "high"});
                }
                let mut e = json!({"type": kind, "source": "noxys", "data": data, "tenant_id": "t", "platform_id": "top", "model": {"deep": 1},
                    "policy_action": "top-action", "risk_level": "top-level", "user_id": {}});
                if k == 4 {
                    e["event_type"] = json!("other");
                }
                out.push(e);
            }
        }
        out.push(json!({"type": "policy.created", "data": {"policy": {"name": "N", "action": "coach"}}}));
        out.push(json!({"type": "policy.created", "data": {"policy": {"name": {"x": 1}, "action": {}}}, "policy_name": "top"}));
        out.push(json!({"type": "alert.x", "data": {"alert": {"severity": {"s": 1}}}, "alert_severity": "top"}));
        out.push(json!({"type": "alert.x", "data": {"alert": "flat"}}));
        out.push(json!({"type": "alert.x", "data": []}));
        out.push(
            json!({"event_type": "login", "user_id": "dave", "risk_score": "0.95", "classification_type": ["IBAN"], "platform_id": [1, 2]}),
        );
        out.push(json!({"type": "interaction.created", "data": {"interaction": {"user_id": "a"}}, "data2": 1, "user_id": "top"}));
        out
    }

    #[test]
    fn facts_read_from_the_body_equal_the_normalised_event() {
        let all = bodies();
        assert!(all.len() > 30);
        for b in all {
            let e = stored(&b);
            assert_eq!(facts_of(&e), facts_of_normalized(&e), "{b}");
        }
    }

    #[test]
    fn blocks_decode_to_what_was_pushed_whatever_the_order_of_times() {
        let mut b = Block::default();
        let entries: Vec<(i64, i64, [i64; FACETS.len()])> = (0..500i64)
            .map(|i| {
                let ts = 1_795_849_200_000_000 + ((i * 7919) % 500 - 250) * 1_000_003;
                let mut ids = [0i64; FACETS.len()];
                for (k, id) in ids.iter_mut().enumerate() {
                    *id = if (i + k as i64) % 3 == 0 { 0 } else { i * 1000 + k as i64 * 977 };
                }
                (ts, 40 + i * 3, ids)
            })
            .collect();
        for (ts, seq, ids) in &entries {
            b.push(*ts, *seq, ids);
        }
        let back = decode(&b.data, b.events, b.first_seq).expect("decodes");
        let got: Vec<(i64, i64, [i64; FACETS.len()])> = back.into_iter().map(|f| (f.ts, f.seq, f.ids)).collect();
        assert_eq!(got, entries);
        assert_eq!((b.min_ts, b.max_ts), (entries.iter().map(|e| e.0).min().unwrap_or(0), entries.iter().map(|e| e.0).max().unwrap_or(0)));
        assert!(decode(&b.data[..b.data.len() - 1], b.events, b.first_seq).is_none(), "a cut block is refused");
        assert!(b.data.len() < 500 * 60, "{} bytes for 500 events", b.data.len());
    }

    #[test]
    fn facets_are_log_or_firewall_fields() {
        // `FACETS` is the order of the stored blocks' columns (never reorder it); each is one
        // of the fields normalisation gives.
        for f in FACETS {
            assert!(crate::normalize::FIREWALL_FIELDS.contains(&f), "{f}");
        }
        assert_eq!(&TOP[..14], &FACETS[2..]);
    }

    #[test]
    fn members_keep_the_last_of_a_repeated_name_and_skip_the_rest() {
        let m = members(r#"{"a": 1, "b": {"c": [1, 2]}, "a": "two", "z": null}"#, &["a", "b", "y"]).expect("object");
        assert_eq!((m[0].map(RawValue::get), m[1].map(RawValue::get), m[2].is_none()), (Some("\"two\""), Some("{\"c\": [1, 2]}"), true));
        assert!(members("[1]", &["a"]).is_err());
    }
}
