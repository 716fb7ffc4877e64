//! The triggers that do not come from the response queue: an event matching a pipe query (a
//! consumer of the log with its own checkpoint) and a cron schedule.
use super::queue_run;
use crate::detect::view::View;
use crate::state::{Step, XdrState};
use rusqlite::{Connection, params};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_query::matcher::{Fields, Matcher};

/// The event trigger's checkpoint in `consumer_checkpoints`.
pub const EVENTS_CHECKPOINT: &str = "playbook_events";
/// Events read per round.
const EVENTS_BATCH: usize = 1_000;
/// The most runs one event-triggered playbook queues per minute (a query matching a flood would
/// otherwise queue a run per event); past it, matches are counted and logged, not run.
pub const EVENT_RUNS_PER_MINUTE: u32 = 60;

/// An event-triggered playbook, its query compiled.
struct Watch {
    id: String,
    space_no: i64,
    spec: String,
    fields: Fields,
    matcher: Matcher,
}

/// What the event trigger keeps between rounds.
#[derive(Default)]
pub struct EventTriggers {
    watches: Vec<Watch>,
    spaces: HashMap<i64, String>,
    /// Runs queued per playbook in the current minute.
    budget: HashMap<String, (i64, u32)>,
    /// When the checkpoint was last moved while nothing watched.
    idle_advanced: Option<std::time::Instant>,
}

/// Follows the log and queues a run of every enabled event-triggered playbook whose query an
/// event matches (once per event and playbook, committed with the checkpoint).
pub async fn run_events(st: XdrState, shutdown: CancellationToken) {
    crate::state::follow_log(&st.clone(), shutdown, "the playbook event trigger", None, EventTriggers::default(), move |mut t| {
        let st = st.clone();
        async move {
            let r = events_once(&st, &mut t).await;
            (t, r)
        }
    })
    .await;
}

/// One round of the event trigger.
pub(crate) async fn events_once(st: &XdrState, t: &mut EventTriggers) -> Result<Step, StoreError> {
    let rows: Vec<(String, i64, String)> = st
        .store
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, space_no, trigger_spec FROM playbooks WHERE enabled = 1 AND trigger_type = 'event' ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok::<_, StoreError>(rows.collect::<Result<_, _>>()?)
        })
        .await?;
    reload(t, rows);
    let now = to_micros(st.clock.now());
    if t.watches.is_empty() {
        // Nothing watches the log: move the checkpoint to its end, at most once a minute (a
        // write per append would cost the intake), so a playbook enabled later starts from about
        // then, not from the log's beginning.
        if t.idle_advanced.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
            return Ok(Step::CaughtUp);
        }
        t.idle_advanced = Some(std::time::Instant::now());
        st.store
            .write(move |c| {
                let head: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
                if head > crate::log::checkpoint(c, EVENTS_CHECKPOINT)? {
                    crate::log::advance(c, EVENTS_CHECKPOINT, head, now)?;
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        return Ok(Step::CaughtUp);
    }
    if t.watches.iter().any(|w| !t.spaces.contains_key(&w.space_no)) {
        space_ids(st, t).await?;
    }
    let from = st.store.read(|c| crate::log::checkpoint(c, EVENTS_CHECKPOINT)).await?;
    let batch: Vec<(i64, i64, crate::log::Stored)> = st
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT seq, space_no, {} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                crate::log::STORED
            ))?;
            let rows =
                stmt.query_map(params![from, EVENTS_BATCH as i64], |r| Ok((r.get(0)?, r.get(1)?, crate::log::Stored::from_row_at(r, 2)?)))?;
            Ok::<_, StoreError>(rows.collect::<Result<_, _>>()?)
        })
        .await?;
    let Some(last) = batch.last().map(|b| b.0) else { return Ok(Step::CaughtUp) };
    let full = batch.len() == EVENTS_BATCH;
    let mut matched: Vec<(String, i64, i64, serde_json::Value)> = Vec::new();
    let minute = now / 60_000_000;
    for (seq, space_no, stored) in batch {
        if !t.watches.iter().any(|w| w.space_no == space_no) {
            continue;
        }
        let space_id = t.spaces.get(&space_no).cloned().unwrap_or_default();
        let view = View::new(stored, space_id.clone());
        let mut shown = None;
        for w in t.watches.iter().filter(|w| w.space_no == space_no) {
            if !w.matcher.matches(&w.fields.record(&view)) {
                continue;
            }
            let used = t.budget.entry(w.id.clone()).or_insert((minute, 0));
            if used.0 != minute {
                *used = (minute, 0);
            }
            if used.1 >= EVENT_RUNS_PER_MINUTE {
                if used.1 == EVENT_RUNS_PER_MINUTE {
                    // Said once a minute, not once per event of a flood.
                    tracing::warn!(playbook_id = %w.id, "an event-triggered playbook matched more than {EVENT_RUNS_PER_MINUTE} events in a minute; the rest of the minute's are not run");
                    used.1 += 1;
                }
                continue;
            }
            used.1 += 1;
            let event = shown.get_or_insert_with(|| crate::log::shown(view.stored(), &space_id)).clone();
            matched.push((w.id.clone(), space_no, seq, event));
        }
    }
    let ids = st.ids.clone();
    let queued = st
        .store
        .write(move |c| {
            let mut queued = 0;
            for (playbook_id, space_no, seq, event) in matched {
                let person = match event.get("user_id").and_then(|u| u.as_str()) {
                    Some(u) => crate::response::person(c, space_no, u, now)?,
                    None => serde_json::Value::Null,
                };
                let trigger = json!({"event": event, "person": person});
                let origin = format!("event:{seq}");
                if queue_run(c, &ids, space_no, &playbook_id, "event", &trigger, Some(&origin), None, "trigger", now)?.is_some() {
                    queued += 1;
                }
            }
            crate::log::advance(c, EVENTS_CHECKPOINT, last, now)?;
            Ok::<_, StoreError>(queued)
        })
        .await?;
    if queued > 0 {
        st.response.runs_queued.notify_one();
    }
    Ok(if full { Step::More(Duration::ZERO) } else { Step::CaughtUp })
}

/// Compiles the queries of the event-triggered playbooks that changed.
fn reload(t: &mut EventTriggers, rows: Vec<(String, i64, String)>) {
    let same = rows.len() == t.watches.len() && rows.iter().zip(&t.watches).all(|((id, _, spec), w)| *id == w.id && *spec == w.spec);
    if same {
        return;
    }
    t.watches.clear();
    for (id, space_no, spec) in rows {
        let query = serde_json::from_str::<super::TriggerSpec>(&spec).ok().and_then(|s| s.query).unwrap_or_default();
        let compiled = vigie_query::parse(&query).map_err(|e| e.to_string()).and_then(|q| {
            let mut fields = Fields::new();
            Matcher::compile(q.filter.as_ref(), &mut fields).map(|m| (fields, m))
        });
        match compiled {
            Ok((fields, matcher)) => t.watches.push(Watch { id, space_no, spec, fields, matcher }),
            Err(e) => tracing::warn!(playbook_id = %id, error = %e, "an event-triggered playbook's query does not compile; it is skipped"),
        }
    }
}

/// Loads the space ids the views need.
async fn space_ids(st: &XdrState, t: &mut EventTriggers) -> Result<(), StoreError> {
    let rows: Vec<(i64, String)> = st
        .store
        .read(|c| {
            let mut stmt = c.prepare_cached("SELECT no, id FROM spaces")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok::<_, StoreError>(rows.collect::<Result<_, _>>()?)
        })
        .await?;
    t.spaces = rows.into_iter().collect();
    Ok(())
}

/// Runs the scheduler until `shutdown`: each enabled schedule-triggered playbook whose time
/// came is queued once (origin `schedule:<time>`; fires missed while stopped make one run), and
/// its next time set.
pub async fn run_schedules(st: XdrState, shutdown: CancellationToken) {
    loop {
        let wait = match schedules_once(&st).await {
            Ok(Some(next)) => Duration::from_micros((next - to_micros(st.clock.now())).clamp(0, 30_000_000) as u64),
            Ok(None) => Duration::from_secs(30),
            Err(e) => {
                tracing::warn!(error = %e, "the playbook scheduler failed; retrying in a second");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
    }
}

/// Queues the schedules that are due; the next time one is.
pub async fn schedules_once(st: &XdrState) -> Result<Option<i64>, StoreError> {
    let (ids, now) = (st.ids.clone(), to_micros(st.clock.now()));
    // A read first: nothing due (the usual case) writes nothing.
    let (due_now, soonest): (bool, Option<i64>) = st
        .store
        .read(move |c| {
            Ok::<_, StoreError>(c.query_row(
                "SELECT COALESCE(MAX(next_fire_at IS NULL OR next_fire_at <= ?1), 0), MIN(next_fire_at) FROM playbooks \
                 WHERE enabled = 1 AND trigger_type = 'schedule'",
                [now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await?;
    if !due_now {
        return Ok(soonest);
    }
    let (queued, next) = st.store.write(move |c| due(c, &ids, now)).await?;
    if queued > 0 {
        st.response.runs_queued.notify_one();
    }
    Ok(next)
}

fn due(c: &Connection, ids: &vigie_core::ids::IdGen, now: i64) -> Result<(usize, Option<i64>), StoreError> {
    let rows: Vec<(String, i64, String, Option<i64>)> = c
        .prepare_cached("SELECT id, space_no, source, next_fire_at FROM playbooks WHERE enabled = 1 AND trigger_type = 'schedule'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let (mut queued, mut soonest) = (0, None::<i64>);
    for (id, space_no, source, next) in rows {
        let Ok(pb) = vigie_playbook::compile(&source) else {
            tracing::warn!(playbook_id = %id, "a scheduled playbook no longer compiles; it does not run");
            continue;
        };
        let vigie_playbook::Trigger::Schedule(s) = &pb.trigger else { continue };
        let upcoming = |after: i64| s.next_after(from_micros(after)).map(to_micros);
        let mut next = match next {
            Some(n) => Some(n),
            None => upcoming(now),
        };
        if let Some(at) = next.filter(|at| *at <= now) {
            let trigger = json!({"scheduled_at": from_micros(at).to_rfc3339()});
            if queue_run(c, ids, space_no, &id, "schedule", &trigger, Some(&format!("schedule:{at}")), None, "schedule", now)?.is_some() {
                queued += 1;
            }
            next = upcoming(now);
        }
        c.execute("UPDATE playbooks SET next_fire_at = ?2 WHERE id = ?1", params![id, next])?;
        if let Some(n) = next {
            soonest = Some(soonest.map_or(n, |s| s.min(n)));
        }
    }
    Ok((queued, soonest))
}
