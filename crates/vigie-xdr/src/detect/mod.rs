//! The detection consumer: reads the event log from its checkpoint, evaluates every enabled
//! rule of the event's space, and in ONE transaction writes the alerts, the windows' changed
//! groups and the new checkpoint — so a restart (or a crash) neither misses nor double-counts.
//!
//! Events are read as [`View`]s: the stored event parsed once, the firewall's flat fields
//! derived, and every other field looked up by name on demand — what `log::shown` would show,
//! without building the flattened map (which costs ~16 µs per event, 120× the matching).
mod backtest;
mod load;
pub(crate) mod view;

pub use backtest::{
    Backtest, BacktestRange, DayCount, Simulation, UnsavedBacktest, WouldAlert, backtest, backtest_saved, backtest_unsaved,
};
pub use load::{Loaded, RuleInfo, SpaceRules, group_by, load, load_spaces, to_match};
pub use view::View;

// utoipa's route macros name the handlers' generated path types by module.
pub use backtest::{__path_backtest_saved, __path_backtest_unsaved};

use crate::log::Stored;
use crate::state::XdrState;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;

/// The consumer's checkpoint name.
pub const CONSUMER: &str = "detection";
/// Events per transaction.
pub const BATCH: usize = 2_000;

// ---------------------------------------------------------------------------------------------
// The consumer

/// The detection consumer's memory between batches.
#[derive(Default)]
pub struct Detector {
    loaded: Loaded,
    /// The rules generation loaded.
    generation: Option<u64>,
    /// The first commit after a load also deletes saved windows of rules no longer enabled at
    /// that version.
    clean: bool,
    /// Per space, the arrival time at which quiet windows were last expired (µs).
    swept_at: HashMap<i64, i64>,
    /// The next batch, being read while this one is evaluated: the log position it reads after.
    next: Option<(i64, Reading)>,
}

/// A batch being read.
type Reading = tokio::task::JoinHandle<Result<Batch, StoreError>>;

/// A stretch of the log: how many events it covers and where it ends, and the events of the
/// spaces that have rules (the others are not read).
#[derive(Default)]
pub struct Batch {
    /// Events of the log it covers.
    pub covered: usize,
    /// Its last log position.
    pub end: Option<i64>,
    /// The events of spaces with enabled rules.
    pub rows: Vec<Row>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Events read.
    pub events: usize,
    /// Hits (matches).
    pub hits: usize,
    /// Time reading the batch, evaluating it, and committing what it gave.
    pub took: [std::time::Duration; 3],
}

/// How late an event may arrive and still join its group's window: a group whose newest event
/// is older than its window's span plus this, by the time events of its space arrive, is
/// dropped (memory and its saved row). An event later than that starts a new window.
pub const LATENESS_US: i64 = 3_600_000_000;

/// A stored event read for detection: its log position and space.
pub struct Row {
    seq: i64,
    space_no: i64,
    space_id: String,
    stored: Stored,
}

/// A group's window to save (or delete): rule, version, window, group, state.
type WindowChange = (String, i64, usize, u64, Option<vigie_query::window::Saved>);

/// What evaluating a batch gives the commit.
struct Evaluated {
    matches: Vec<crate::alerts::Match>,
    changes: Vec<WindowChange>,
    hits: usize,
}

/// Evaluates a batch in log order, one event at a time (its view dropped before the next is
/// read, so the memory touched stays small; on one thread: a second one made it slower here —
/// BENCHMARKS.md): the matches and the windows' changes for the commit.
fn evaluate(d: &mut Detector, rows: Vec<Row>) -> Evaluated {
    let mut out = Evaluated { matches: Vec::new(), changes: Vec::new(), hits: 0 };
    let mut hits = Vec::new();
    // Per space, when its newest event arrived: the clock windows expire by (a sender's clock
    // running ahead, or a backlog arriving late, moves nothing).
    let mut newest: HashMap<i64, i64> = HashMap::new();
    for row in rows {
        let Some(space) = d.loaded.spaces.get_mut(&row.space_no) else { continue };
        let view = View::new(row.stored, row.space_id);
        let t = view.stored().timestamp;
        let at = newest.entry(row.space_no).or_insert(i64::MIN);
        *at = (*at).max(view.stored().received_at);
        hits.clear();
        space.engine.evaluate(&mut space.states, &view, row.seq, t, &mut hits);
        out.hits += hits.len();
        for hit in &hits {
            let Some(info) = space.info.get(hit.rule) else { continue };
            // The event at hand is named here; a window's earlier events when committing.
            let ids = hit.seqs.iter().map(|s| (*s, if *s == row.seq { view.stored().id.clone() } else { String::new() })).collect();
            out.matches.push(to_match(row.space_no, info, hit, &view, ids));
        }
    }
    // Windows quiet for longer than their span and the lateness allowed go, now and then (a
    // minute of arrivals).
    for (space_no, t) in newest {
        let swept = d.swept_at.entry(space_no).or_insert(i64::MIN);
        if t.saturating_sub(*swept) > 60_000_000
            && let Some(s) = d.loaded.spaces.get_mut(&space_no)
        {
            *swept = t;
            s.engine.expire(&mut s.states, t - LATENESS_US);
        }
    }
    for s in d.loaded.spaces.values_mut() {
        for (r, w, (h, saved)) in s.states.take_changes() {
            if let Some(info) = s.info.get(r) {
                out.changes.push((info.id.clone(), info.version, w, h, saved));
            }
        }
    }
    out
}

/// Reads a batch after the checkpoint, evaluates it (off the async threads), and commits
/// alerts, windows and the checkpoint together — only if the rules evaluated are still the
/// enabled ones at the same versions. On a failed commit the memory is reloaded from the
/// database (it ran ahead of what was stored).
pub async fn detect_once(st: &XdrState, d: &mut Detector) -> Result<Round, StoreError> {
    let generation = st.rules_changed.generation();
    if d.generation.is_none() {
        st.rules_changed.take();
        d.loaded = st.store.read(load).await?;
        d.generation = Some(generation);
        d.clean = true;
    } else if d.generation != Some(generation) {
        // Only the spaces whose rules changed: their rules compiled and windows restored again
        // (memory holds what the last commit stored, so nothing is lost).
        let spaces: Vec<i64> = st.rules_changed.take().into_iter().collect();
        let list = spaces.clone();
        let fresh = st.store.read(move |c| load_spaces(c, Some(&list))).await?;
        for s in &spaces {
            d.loaded.spaces.remove(s);
            d.swept_at.remove(s);
        }
        d.loaded.spaces.extend(fresh.spaces);
        d.generation = Some(generation);
        d.clean = true;
        // A batch read ahead read the bodies of the spaces that had rules then.
        if let Some((_, task)) = d.next.take() {
            task.abort();
        }
    }
    let started = std::time::Instant::now();
    let after = st.store.read(|c| crate::log::checkpoint(c, CONSUMER)).await?;
    // The batch read ahead during the last round, if it starts where the log says and has
    // events; else read now.
    let ahead = match d.next.take() {
        Some((from, task)) if from == after => task.await.ok().and_then(Result::ok).filter(|b| b.covered > 0),
        Some((_, task)) => {
            task.abort();
            None
        }
        None => None,
    };
    let spaces: Vec<i64> = d.loaded.spaces.keys().copied().collect();
    let batch = match ahead {
        Some(b) => b,
        None => {
            let spaces = spaces.clone();
            st.store.read(move |c| read_for(c, after, BATCH, &spaces)).await?
        }
    };
    let read = started.elapsed();
    let Some(last_seq) = batch.end else { return Ok(Round::default()) };
    let (events, rows) = (batch.covered, batch.rows);
    // Read the next batch while this one is evaluated and committed (a full batch says more
    // is waiting).
    if events == BATCH {
        let store = st.store.clone();
        d.next = Some((last_seq, tokio::spawn(async move { store.read(move |c| read_for(c, last_seq, BATCH, &spaces)).await })));
    }
    let started = std::time::Instant::now();
    let mut taken = std::mem::take(d);
    let (back, evaluated) = tokio::task::spawn_blocking(move || {
        let e = evaluate(&mut taken, rows);
        (taken, e)
    })
    .await
    .map_err(|e| StoreError::Commit(format!("detection failed: {e}")))?;
    *d = back;
    let evaluating = started.elapsed();
    let started = std::time::Instant::now();
    let Evaluated { matches, changes, hits } = evaluated;
    let versions: Vec<(String, i64)> = d.loaded.spaces.values().flat_map(|s| s.info.iter().map(|i| (i.id.clone(), i.version))).collect();
    let clean = d.clean;
    let ids = st.ids.clone();
    let now = vigie_core::clock::to_micros(st.clock.now());
    let committed = st
        .store
        .write(move |c| {
            if crate::log::checkpoint(c, CONSUMER)? != after {
                return Err(StoreError::Commit("another detection round advanced the checkpoint".into()));
            }
            if !same_rules(c, &versions)? {
                return Err(StoreError::Commit("rules changed during the round; evaluating the batch again".into()));
            }
            for mut m in merged(matches) {
                fill_event_ids(c, &mut m)?;
                crate::alerts::apply(c, &ids, &m, now)?;
            }
            save_windows(c, &changes)?;
            if clean {
                c.execute(
                    "DELETE FROM rule_windows WHERE NOT EXISTS \
                     (SELECT 1 FROM rules r WHERE r.id = rule_windows.rule_id AND r.version = rule_windows.version AND r.enabled = 1)",
                    [],
                )?;
            }
            crate::log::advance(c, CONSUMER, last_seq, now)
        })
        .await;
    if let Err(e) = committed {
        // Memory ran ahead of the database: start again from what is stored.
        d.generation = None;
        if let Some((_, task)) = d.next.take() {
            task.abort();
        }
        return Err(e);
    }
    d.clean = false;
    st.detected.send_replace(last_seq);
    Ok(Round { events, hits, took: [read, evaluating, started.elapsed()] })
}

/// The matches of a batch with those of one rule and similarity key made one (in the order of
/// their first): `alerts::apply` then writes once what applying them in turn would have (the
/// first raises or folds, the others are occurrences of the same alert or suppressed with it).
fn merged(matches: Vec<crate::alerts::Match>) -> Vec<crate::alerts::Match> {
    let mut at: HashMap<(i64, String, String), usize> = HashMap::new();
    let mut out: Vec<crate::alerts::Match> = Vec::with_capacity(matches.len());
    for m in matches {
        let key = (m.space_no, m.rule_id.clone(), m.similarity_key.clone());
        match at.get(&key) {
            Some(&i) => {
                let first = &mut out[i];
                first.count += m.count.max(1);
                first.first_seen = first.first_seen.min(m.first_seen);
                first.last_seen = first.last_seen.max(m.last_seen);
                if first.events.len() < crate::alerts::MAX_ALERT_EVENTS as usize {
                    first.events.extend(m.events);
                }
            }
            None => {
                at.insert(key, out.len());
                out.push(m);
            }
        }
    }
    out
}

/// Whether the enabled rules are exactly `versions` (ids and versions).
fn same_rules(c: &Connection, versions: &[(String, i64)]) -> Result<bool, StoreError> {
    let mut now: Vec<(String, i64)> = c
        .prepare_cached("SELECT id, version FROM rules WHERE enabled = 1")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut then = versions.to_vec();
    now.sort();
    then.sort();
    Ok(now == then)
}

/// The event ids of a match's log positions.
fn fill_event_ids(c: &Connection, m: &mut crate::alerts::Match) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached("SELECT id FROM events WHERE seq = ?1")?;
    for (seq, id) in &mut m.events {
        if id.is_empty() {
            // An event retention deleted meanwhile has no id to give; a failed read fails the round.
            *id = stmt.query_row([*seq], |r| r.get(0)).optional()?.unwrap_or_default();
        }
    }
    m.events.retain(|(_, id)| !id.is_empty());
    Ok(())
}

fn save_windows(c: &Connection, changes: &[WindowChange]) -> Result<(), StoreError> {
    let mut put = c.prepare_cached(
        "INSERT INTO rule_windows (rule_id, version, window, h, state) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (rule_id, window, h) DO UPDATE SET version = excluded.version, state = excluded.state",
    )?;
    let mut del = c.prepare_cached("DELETE FROM rule_windows WHERE rule_id = ?1 AND window = ?2 AND h = ?3")?;
    for (rule, version, w, h, saved) in changes {
        // SQLite integers are signed: the id's bits as an i64.
        let h = *h as i64;
        match saved {
            Some(s) => put.execute(params![rule, version, *w as i64, h, s.state])?,
            None => del.execute(params![rule, *w as i64, h])?,
        };
    }
    Ok(())
}

/// The next `limit` events of the log after `after`, of which only those of `spaces` are read
/// (a space without enabled rules costs its events nothing but being counted).
pub fn read_for(c: &Connection, after: i64, limit: usize, spaces: &[i64]) -> Result<Batch, StoreError> {
    let (covered, end): (i64, Option<i64>) = c
        .prepare_cached("SELECT COUNT(*), MAX(seq) FROM (SELECT seq FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2)")?
        .query_row(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let Some(end) = end else { return Ok(Batch::default()) };
    if spaces.is_empty() {
        return Ok(Batch { covered: covered as usize, end: Some(end), rows: Vec::new() });
    }
    // A range of the log by its key, the spaces filtered here: asking SQLite for `space_no IN
    // (…)` let it walk the space's index over its whole log each round (a fifth of the CPU
    // beside intake).
    let mut stmt = c.prepare_cached(
        "SELECT e.seq, e.space_no, s.id, e.id, e.received_at, e.timestamp, e.event_type, e.source, e.body \
         FROM events e JOIN spaces s ON s.no = e.space_no WHERE e.seq > ?1 AND e.seq <= ?2 ORDER BY e.seq",
    )?;
    let rows = stmt.query_map(params![after, end], |r| {
        let space_no: i64 = r.get(1)?;
        if !spaces.contains(&space_no) {
            // Its body is not read.
            return Ok(None);
        }
        Ok(Some(Row { seq: r.get(0)?, space_no, space_id: r.get(2)?, stored: Stored::from_row_at(r, 3)? }))
    })?;
    let rows: Vec<Option<Row>> = rows.collect::<Result<_, _>>()?;
    Ok(Batch { covered: covered as usize, end: Some(end), rows: rows.into_iter().flatten().collect() })
}

/// Up to `limit` events after `seq`, in log order, across spaces.
pub fn read_rows(c: &Connection, after: i64, limit: usize) -> Result<Vec<Row>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT e.seq, e.space_no, s.id, e.id, e.received_at, e.timestamp, e.event_type, e.source, e.body \
         FROM events e JOIN spaces s ON s.no = e.space_no WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        Ok(Row { seq: r.get(0)?, space_no: r.get(1)?, space_id: r.get(2)?, stored: Stored::from_row_at(r, 3)? })
    })?;
    rows.collect::<Result<_, _>>().map_err(StoreError::from)
}

/// Up to `limit` events after `seq`, in log order, as rules read them.
pub fn read_batch(c: &Connection, after: i64, limit: usize) -> Result<Vec<(i64, i64, View)>, StoreError> {
    Ok(read_rows(c, after, limit)?.into_iter().map(|r| (r.seq, r.space_no, View::new(r.stored, r.space_id))).collect())
}

/// Runs the consumer until `shutdown`: a round whenever events were appended or rules changed.
/// A round that panics (a bug) is logged and the consumer starts again from the database a
/// second later: detection never stops silently.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    loop {
        let task = tokio::spawn(consume(st.clone(), shutdown.clone()));
        match task.await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "the detection consumer failed; restarting it from its checkpoint in a second");
                if !crate::state::rest(&shutdown, std::time::Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    }
}

async fn consume(st: XdrState, shutdown: CancellationToken) {
    let rules = Some(st.rules_changed.subscribe());
    crate::state::follow_log(&st, shutdown, "a detection round", rules, Detector::default(), |mut d| {
        let st = st.clone();
        async move {
            let step = detect_once(&st, &mut d).await.map(|r| match r.events {
                0 => crate::state::Step::CaughtUp,
                _ => crate::state::Step::More(std::time::Duration::ZERO),
            });
            (d, step)
        }
    })
    .await;
}
