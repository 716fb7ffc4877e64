//! Test data (`GET` / `DELETE /api/v1/test-data`): what `vigie verify` left in a space, found
//! by its test people — user ids in the reserved range of [`vigie_core::testdata`] — and
//! removed without touching anyone real. Scope `admin`, within the caller's space.
//!
//! What counts as test data:
//! - events whose `user_id` (top level, or a firewall event's `data.interaction.user_id`) is a
//!   test person, with their facts, the cases' links to them, and the runs of `event`-triggered
//!   playbooks they started;
//! - alerts all of whose events belong to the people meant, with everything hanging off them:
//!   their event links, comments, history, response-queue entries, notifications (`alert_id`),
//!   and the playbook runs they (or their cases) triggered, with the runs' steps and the
//!   notifications the runs sent (a `notify` step's `notification_id`, a `create_task` step's
//!   `invitation.notification_id`). An alert's user is its first event's, and a rule whose
//!   similarity leaves `user_id` out folds several people's events into one alert: an alert
//!   that also holds someone else's event stays, and loses only its links to the removed events;
//! - cases all of whose alerts are such alerts and that hold no other event, with their tasks,
//!   comments, timeline and links (a case that also holds a real alert stays; only its link to
//!   the removed alert goes). The writer's transaction checks each case again: one that gained
//!   a real alert since it was read stays too (kept, counted neither in `cases` nor in
//!   `deferred`); one that gained a test alert or an event is `deferred`;
//! - the directory's entries of test people.
//!
//! Order: events first, then alerts: detection running behind the log would otherwise raise
//! the removed alerts again from events still there.
//!
//! Playbook runs: a run still queued about test data is cancelled (removed before it starts).
//! An alert, case or event with a run in progress is left alone for now and counted in
//! `deferred` — the run's next steps would otherwise write about, open cases for and mail about
//! data that is gone. Repeat the `DELETE` once the runs have finished, until `deferred` is 0.
//!
//! Cost: events keep `user_id` inside their JSON body (no column, no index), so finding them is
//! a scan of the log in windows of [`WINDOW`] rows on a reader, with a `LIKE` on the body for
//! the range's prefix doing the first cut and the user id of the few rows that pass checked
//! exactly. Without `from` that is the whole log of every space (about as long as reading the
//! log once); with `from` it starts at the first event received at or after it (found by binary
//! search over the log's order). Everything is found on a reader; the writer's transactions
//! delete by primary key after re-checking by indexed lookups (no table scan while intake
//! waits): up to [`WINDOW`] events, or [`ALERTS_PER_TX`] alerts with their cases, at a time.
//! A second `DELETE` finds and removes nothing.
use crate::keys::{AdminScope, Authorized};
use crate::state::XdrState;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::StoreError;
use vigie_core::http::{ApiError, ApiQuery, ErrorBody, FieldError};
use vigie_core::testdata::{PREFIX, is_test_person};

/// Log rows read per scan window (and the most events deleted in one transaction).
pub const WINDOW: i64 = 5_000;
/// Alerts (with their cases, runs and notifications) removed in one transaction.
pub const ALERTS_PER_TX: usize = 200;

/// The bounds of an index range holding every spelling (any case) of the test range's user ids
/// (and a few other ids, filtered out after): they all start `00000000-7e` or `00000000-7E`.
const USER_RANGE: (&str, &str) = ("00000000-7E", "00000000-7f");

/// The routes of this module.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(test_data_get, test_data_delete))
}

/// Which test data: one test person, or all of them; and from when in the log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TestDataParams {
    /// Only this test person's data (a user id in the reserved test range); default: every
    /// test person's.
    pub user_id: Option<String>,
    /// Only events received at or after this time (RFC 3339; `vigie verify` passes its test
    /// interaction's time minus a margin). Without it the whole event log is read, which on a
    /// large log takes about as long as reading it once. Alerts, cases and runs are found by
    /// their own indexes either way.
    pub from: Option<DateTime<Utc>>,
}

/// How much test data there is, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestDataCounts {
    /// Events of test people.
    pub events: u64,
    /// Alerts about test people (all of whose events are theirs).
    pub alerts: u64,
    /// Cases holding only test alerts (and no other event).
    pub cases: u64,
    /// Directory entries of test people.
    pub people: u64,
    /// Playbook runs the test alerts, cases or events triggered (queued ones are cancelled).
    pub playbook_runs: u64,
    /// Notifications about the test alerts, and those their runs sent.
    pub notifications: u64,
    /// Alerts, cases and events left for now because a playbook run about them is in progress
    /// (or changed while being removed): repeat the `DELETE` once the runs have finished, until
    /// this is 0.
    #[serde(default)]
    pub deferred: u64,
}

impl TestDataCounts {
    fn add(&mut self, o: TestDataCounts) {
        self.events += o.events;
        self.alerts += o.alerts;
        self.cases += o.cases;
        self.people += o.people;
        self.playbook_runs += o.playbook_runs;
        self.notifications += o.notifications;
        self.deferred += o.deferred;
    }
}

/// `GET`'s answer: what `DELETE` would remove now.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDataFound {
    /// The counts.
    pub found: TestDataCounts,
}

/// `DELETE`'s answer: what was removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDataRemoved {
    /// The counts.
    pub removed: TestDataCounts,
}

/// The test people a request is about.
#[derive(Debug, Clone)]
enum Who {
    /// Every test person.
    All,
    /// One (lower case).
    One(String),
}

impl Who {
    fn from_param(user_id: Option<String>) -> Result<Who, ApiError> {
        match user_id {
            None => Ok(Who::All),
            Some(u) if is_test_person(u.trim()) => Ok(Who::One(u.trim().to_ascii_lowercase())),
            Some(u) => Err(ApiError::validation(vec![FieldError::new(
                "user_id",
                format!(
                    "{:?} is not a test person: test data belongs to user ids that start with {PREFIX} (leave user_id out for all of them)",
                    u.chars().take(60).collect::<String>()
                ),
            )])),
        }
    }

    /// Whether `user_id` is one of the people meant.
    fn takes(&self, user_id: &str) -> bool {
        is_test_person(user_id)
            && match self {
                Who::All => true,
                Who::One(u) => user_id.eq_ignore_ascii_case(u),
            }
    }

    /// A `LIKE` pattern a matching user id passes (ASCII `LIKE` ignores case; neither the
    /// prefix nor a UUID holds `%` or `_`).
    fn like(&self) -> String {
        match self {
            Who::All => format!("{PREFIX}%"),
            Who::One(u) => u.clone(),
        }
    }

    /// A `LIKE` pattern an event body naming a matching user passes.
    fn body_like(&self) -> String {
        match self {
            Who::All => format!("%{PREFIX}%"),
            Who::One(u) => format!("%{u}%"),
        }
    }
}

/// What a request is about: whose data, and from when in the log (µs).
#[derive(Debug, Clone)]
struct Scope {
    who: Who,
    from_us: Option<i64>,
}

impl Scope {
    fn from_params(q: TestDataParams) -> Result<Scope, ApiError> {
        Ok(Scope { who: Who::from_param(q.user_id)?, from_us: q.from.map(vigie_core::clock::to_micros) })
    }
}

/// Counts of the test data in the caller's space (of every test person, or of `user_id`):
/// what a `DELETE` would remove now, and what it would leave for later (`deferred`).
#[utoipa::path(get, path = "/api/v1/test-data", tag = "operations", security(("bearer" = [])), params(TestDataParams),
    responses((status = 200, body = TestDataFound), (status = 403, description = "the key lacks scope admin", body = ErrorBody),
        (status = 422, description = "user_id is not a test person", body = ErrorBody)))]
pub async fn test_data_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiQuery(q): ApiQuery<TestDataParams>,
) -> Result<Json<TestDataFound>, ApiError> {
    let scope = Scope::from_params(q)?;
    let space = caller.space_no;
    let mut found = TestDataCounts::default();
    let windows = for_each_event_window(&st, space, &scope, |window| {
        let st = st.clone();
        async move {
            st.store
                .read(move |c| {
                    let w = WindowRuns::of(&window, &event_runs(c, space, &window)?);
                    let notes = run_notifications(c, space, &w.done)?;
                    let n = TestDataCounts {
                        events: w.events.len() as u64,
                        playbook_runs: w.done.len() as u64,
                        notifications: notes.len() as u64,
                        deferred: w.held.len() as u64,
                        ..TestDataCounts::default()
                    };
                    Ok::<_, StoreError>((n, w.events))
                })
                .await
        }
    })
    .await?;
    let mut seqs: Vec<i64> = Vec::new();
    for (n, window) in windows {
        found.add(n);
        seqs.extend(window);
    }
    let gone: HashSet<i64> = seqs.iter().copied().collect();
    let who = scope.who.clone();
    let candidates = st.store.read(move |c| alert_candidates(c, space, &who, &seqs)).await?;
    for batch in candidates.chunks(ALERTS_PER_TX) {
        let (who, batch, gone) = (scope.who.clone(), batch.to_vec(), gone.clone());
        let n = st
            .store
            .read(move |c| {
                let plan = plan(c, space, &who, &batch, &gone)?;
                let s = settle(c, space, &who, &plan)?;
                Ok::<_, StoreError>(s.counts())
            })
            .await?;
        found.add(n);
    }
    let who = scope.who.clone();
    found.people = st.store.read(move |c| test_people(c, space, &who)).await?.len() as u64;
    Ok(Json(TestDataFound { found }))
}

/// Removes the test data of the caller's space (of every test person, or of `user_id`), in
/// bounded transactions; what was removed, and what was left for later because a playbook run
/// about it is in progress (`deferred`: call again once it is done). A second call removes
/// nothing.
#[utoipa::path(delete, path = "/api/v1/test-data", tag = "operations", security(("bearer" = [])), params(TestDataParams),
    responses((status = 200, body = TestDataRemoved), (status = 403, description = "the key lacks scope admin", body = ErrorBody),
        (status = 422, description = "user_id is not a test person", body = ErrorBody)))]
pub async fn test_data_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiQuery(q): ApiQuery<TestDataParams>,
) -> Result<Json<TestDataRemoved>, ApiError> {
    let scope = Scope::from_params(q)?;
    let space = caller.space_no;
    let mut removed = TestDataCounts::default();
    // Events first: detection behind the log must find nothing to raise the alerts again from.
    let deletions = st.deletions.clone();
    let windows = for_each_event_window(&st, space, &scope, |window| {
        let (st, deletions) = (st.clone(), deletions.clone());
        async move { st.store.write(move |c| remove_events(c, space, &window, &deletions)).await }
    })
    .await?;
    let mut gone: HashSet<i64> = HashSet::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for out in windows {
        removed.add(out.counts);
        gone.extend(out.seqs);
        touched.extend(out.alerts);
    }
    // Then the alerts: those of the people meant, and those that held the removed events.
    let (who, touched) = (scope.who.clone(), touched.into_iter().collect::<Vec<_>>());
    let mut candidates = st.store.read(move |c| alert_candidates(c, space, &who, &[])).await?;
    candidates.extend(touched);
    candidates.sort();
    candidates.dedup();
    for batch in candidates.chunks(ALERTS_PER_TX) {
        let (who, batch, seen) = (scope.who.clone(), batch.to_vec(), gone.clone());
        // Found on a reader (the runs naming an alert in their trigger need a scan of the
        // space's runs), removed by key in the write after a re-check.
        let plan = st
            .store
            .read({
                let who = who.clone();
                move |c| plan(c, space, &who, &batch, &seen)
            })
            .await?;
        let n = st
            .store
            .write(move |c| {
                let s = settle(c, space, &who, &plan)?;
                remove(c, space, &plan, &s)?;
                Ok::<_, StoreError>(s.counts())
            })
            .await?;
        removed.add(n);
    }
    let who = scope.who.clone();
    removed.people = st
        .store
        .write(move |c| {
            let people = test_people(c, space, &who)?;
            let mut stmt = c.prepare_cached("DELETE FROM people WHERE space_no = ?1 AND user_id = ?2")?;
            for p in &people {
                stmt.execute(params![space, p])?;
            }
            Ok::<_, StoreError>(people.len() as u64)
        })
        .await?;
    tracing::info!(space_no = space, ?removed, "test data removed");
    Ok(Json(TestDataRemoved { removed }))
}

fn json_list<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// A test event found on a reader.
#[derive(Debug, Clone)]
struct FoundEvent {
    seq: i64,
}

/// A run of an `event`-triggered playbook started by a test event.
struct EventRun {
    id: String,
    status: String,
    seq: i64,
}

/// The runs the events `window` started (`origin` `event:<seq>`), by the runs' unique index.
fn event_runs(c: &Connection, space: i64, window: &[FoundEvent]) -> Result<Vec<EventRun>, StoreError> {
    let origins: Vec<String> = window.iter().map(|e| format!("event:{}", e.seq)).collect();
    let runs = c
        .prepare_cached(
            "SELECT id, status, origin FROM playbook_runs WHERE space_no = ?1 \
             AND playbook_id IN (SELECT id FROM playbooks WHERE space_no = ?1 AND trigger_type = 'event') \
             AND origin IN (SELECT value FROM json_each(?2))",
        )?
        .query_map(params![space, json_list(&origins)], |r| {
            let origin: String = r.get(2)?;
            let seq = origin.strip_prefix("event:").and_then(|s| s.parse().ok()).unwrap_or(-1);
            Ok(EventRun { id: r.get(0)?, status: r.get(1)?, seq })
        })?
        .collect::<Result<_, _>>()?;
    Ok(runs)
}

/// A window of test events with the runs they started: the events that can go, the finished
/// (or queued) runs that go with them, and the events a run in progress holds back.
#[derive(Debug, PartialEq, Eq)]
struct WindowRuns {
    /// The seqs of the events that can go.
    events: Vec<i64>,
    /// The runs that go with them.
    done: Vec<String>,
    /// The seqs of the events a run in progress is about (left for a later call): one each,
    /// however many runs hold it.
    held: BTreeSet<i64>,
}

impl WindowRuns {
    fn of(window: &[FoundEvent], runs: &[EventRun]) -> WindowRuns {
        let seqs: HashSet<i64> = window.iter().map(|e| e.seq).collect();
        let held: BTreeSet<i64> = runs.iter().filter(|r| r.status == "running" && seqs.contains(&r.seq)).map(|r| r.seq).collect();
        let done = runs.iter().filter(|r| r.status != "running").map(|r| r.id.clone()).collect();
        let events = window.iter().map(|e| e.seq).filter(|s| !held.contains(s)).collect();
        WindowRuns { events, done, held }
    }
}

/// What removing a window of events did.
struct EventsRemoved {
    counts: TestDataCounts,
    /// The seqs removed.
    seqs: Vec<i64>,
    /// The alerts that held some of them.
    alerts: Vec<String>,
}

/// Removes the events `window` (in the caller's transaction), except those a playbook run in
/// progress is about, with their facts, the cases' links to them and the runs they started.
fn remove_events(
    c: &Connection,
    space: i64,
    window: &[FoundEvent],
    deletions: &std::sync::atomic::AtomicU64,
) -> Result<EventsRemoved, StoreError> {
    let WindowRuns { events: seqs, done, held } = WindowRuns::of(window, &event_runs(c, space, window)?);
    let notes = run_notifications(c, space, &done)?;
    remove_runs(c, &done, &notes)?;
    // The facts builder checks this on the writer thread: events it read may be gone.
    deletions.fetch_add(1, std::sync::atomic::Ordering::Release);
    let gone: Vec<(i64, String)> = c
        .prepare_cached("DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?1)) AND space_no = ?2 RETURNING seq, id")?
        .query_map(params![json_list(&seqs), space], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let (seqs, ids): (Vec<i64>, Vec<String>) = gone.into_iter().unzip();
    crate::facts::forget(c, space, &seqs)?;
    c.prepare_cached(
        "DELETE FROM case_events WHERE event_id IN (SELECT value FROM json_each(?1)) \
         AND case_id IN (SELECT id FROM cases WHERE space_no = ?2)",
    )?
    .execute(params![json_list(&ids), space])?;
    let alerts: Vec<String> = c
        .prepare_cached("SELECT DISTINCT alert_id FROM alert_events WHERE seq IN (SELECT value FROM json_each(?1))")?
        .query_map([json_list(&seqs)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let counts = TestDataCounts {
        events: seqs.len() as u64,
        playbook_runs: done.len() as u64,
        notifications: notes.len() as u64,
        deferred: held.len() as u64,
        ..TestDataCounts::default()
    };
    Ok(EventsRemoved { counts, seqs, alerts })
}

/// The alerts to look at: those whose user is one of the people meant (by the index on
/// `user_id`), and those holding one of the events `seqs`.
fn alert_candidates(c: &Connection, space: i64, who: &Who, seqs: &[i64]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    let mut stmt =
        c.prepare_cached("SELECT id, user_id FROM alerts WHERE space_no = ?1 AND user_id >= ?2 AND user_id < ?3 AND user_id LIKE ?4")?;
    let mut rows = stmt.query(params![space, USER_RANGE.0, USER_RANGE.1, who.like()])?;
    while let Some(r) = rows.next()? {
        let (id, user): (String, String) = (r.get(0)?, r.get(1)?);
        if who.takes(&user) {
            out.push(id);
        }
    }
    if !seqs.is_empty() {
        let held: Vec<String> = c
            .prepare_cached(
                "SELECT DISTINCT ae.alert_id FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id \
                 WHERE ae.seq IN (SELECT value FROM json_each(?1)) AND a.space_no = ?2",
            )?
            .query_map(params![json_list(seqs), space], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.extend(held);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whose an alert's events are.
#[derive(Debug, Default)]
struct Holding {
    /// The alert's user is one of the people meant.
    theirs: bool,
    /// Links to events of the people meant (or removed by this request).
    test: Vec<i64>,
    /// Links to events of anyone else still in the log.
    real: usize,
    /// How many links it has, and the last one's seq (re-checked before removal).
    links: i64,
    last: i64,
}

impl Holding {
    /// The alert is test data: its user and every event it still holds are theirs (an event
    /// the log no longer holds, by retention, is nobody's).
    fn whole(&self) -> bool {
        self.theirs && self.real == 0
    }
}

/// Whose the events of `alert` are; `None` when the space has no such alert.
fn holding(c: &Connection, space: i64, who: &Who, alert: &str, gone: &HashSet<i64>) -> Result<Option<Holding>, StoreError> {
    let Some(user) = c
        .prepare_cached("SELECT user_id FROM alerts WHERE id = ?1 AND space_no = ?2")?
        .query_row(params![alert, space], |r| r.get::<_, Option<String>>(0))
        .optional()?
    else {
        return Ok(None);
    };
    let mut h = Holding { theirs: user.as_deref().is_some_and(|u| who.takes(u)), ..Holding::default() };
    let seqs: Vec<i64> = c
        .prepare_cached("SELECT seq FROM alert_events WHERE alert_id = ?1 ORDER BY seq")?
        .query_map([alert], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut event = c.prepare_cached(&format!("SELECT {} FROM events WHERE seq = ?1 AND space_no = ?2", crate::log::STORED))?;
    for seq in seqs {
        h.links += 1;
        h.last = seq;
        if gone.contains(&seq) {
            h.test.push(seq);
            continue;
        }
        match event.query_row(params![seq, space], crate::log::Stored::from_row).optional()? {
            Some(e) if event_user(&e).is_some_and(|u| who.takes(&u)) => h.test.push(seq),
            Some(_) => h.real += 1,
            None => {}
        }
    }
    Ok(Some(h))
}

/// What to do with a batch of candidate alerts, as read.
#[derive(Debug, Default)]
struct Plan {
    /// Alerts to remove, with their link count and last seq when read.
    alerts: Vec<(String, i64, i64)>,
    /// Alerts that stay, and the seqs of their links to the removed events.
    unlink: Vec<(String, Vec<i64>)>,
    /// Cases to remove, as read.
    cases: Vec<PlannedCase>,
    /// Runs naming one of the alerts or cases in their trigger (replays, manual runs and
    /// those the responder queued).
    trigger_runs: Vec<String>,
}

/// Reads what to do with the candidate alerts `batch` (`gone`: the events this request removed).
fn plan(c: &Connection, space: i64, who: &Who, batch: &[String], gone: &HashSet<i64>) -> Result<Plan, StoreError> {
    let mut p = Plan::default();
    for alert in batch {
        let Some(h) = holding(c, space, who, alert, gone)? else { continue };
        if h.whole() {
            p.alerts.push((alert.clone(), h.links, h.last));
        } else if !h.test.is_empty() {
            p.unlink.push((alert.clone(), h.test));
        }
    }
    let ids: Vec<String> = p.alerts.iter().map(|a| a.0.clone()).collect();
    p.cases = test_cases(c, space, who, &ids, gone)?;
    let subjects: Vec<&String> = ids.iter().chain(p.cases.iter().map(|k| &k.id)).collect();
    if !subjects.is_empty() {
        let subjects = json_list(&subjects);
        p.trigger_runs = c
            .prepare_cached(
                "SELECT id FROM playbook_runs WHERE space_no = ?1 AND (json_extract(trigger, '$.alert.id') IN (SELECT value FROM json_each(?2)) \
                 OR json_extract(trigger, '$.case.id') IN (SELECT value FROM json_each(?2))) ORDER BY id",
            )?
            .query_map(params![space, subjects], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
    }
    Ok(p)
}

/// A case to remove as it was read: the alerts it held (all wholly test data) and how many
/// events were linked to it, which the writer's transaction checks again.
#[derive(Debug, Clone)]
struct PlannedCase {
    id: String,
    alerts: Vec<String>,
    events: i64,
}

/// The number of events linked to `case`.
fn case_event_count(c: &Connection, case: &str) -> Result<i64, StoreError> {
    Ok(c.prepare_cached("SELECT COUNT(*) FROM case_events WHERE case_id = ?1")?.query_row([case], |r| r.get(0))?)
}

/// The cases holding some of `alerts` that hold only alerts that are wholly test data and no
/// other event.
fn test_cases(c: &Connection, space: i64, who: &Who, alerts: &[String], gone: &HashSet<i64>) -> Result<Vec<PlannedCase>, StoreError> {
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    let candidates: Vec<String> = c
        .prepare_cached(
            "SELECT DISTINCT ca.case_id FROM case_alerts ca JOIN cases k ON k.id = ca.case_id \
             WHERE ca.alert_id IN (SELECT value FROM json_each(?1)) AND k.space_no = ?2 ORDER BY ca.case_id",
        )?
        .query_map(params![json_list(alerts), space], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let taken: HashSet<&String> = alerts.iter().collect();
    let mut out = Vec::new();
    'cases: for case in candidates {
        let held: Vec<String> = c
            .prepare_cached("SELECT alert_id FROM case_alerts WHERE case_id = ?1")?
            .query_map([&case], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for a in &held {
            if !taken.contains(a) && !holding(c, space, who, a, gone)?.is_some_and(|h| h.whole()) {
                continue 'cases;
            }
        }
        let events: Vec<String> = c
            .prepare_cached(
                "SELECT event_id FROM case_events WHERE case_id = ?1 AND event_id NOT IN \
                 (SELECT ae.event_id FROM alert_events ae JOIN case_alerts ca ON ca.alert_id = ae.alert_id WHERE ca.case_id = ?1)",
            )?
            .query_map([&case], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for e in events {
            let stored = crate::log::by_ids(c, space, std::slice::from_ref(&e))?;
            // An event the log no longer holds (retention, or this request) is nobody's.
            if stored.iter().any(|s| !event_user(s).is_some_and(|u| who.takes(&u))) {
                continue 'cases;
            }
        }
        let events = case_event_count(c, &case)?;
        out.push(PlannedCase { id: case, alerts: held, events });
    }
    Ok(out)
}

/// A plan checked against the database as it is now (by indexed lookups only: it runs in the
/// writer's transaction): what goes, and what waits for a run in progress.
#[derive(Debug, Default)]
struct Settled {
    alerts: Vec<String>,
    cases: Vec<String>,
    responses: Vec<i64>,
    runs: Vec<String>,
    notifications: Vec<String>,
    deferred: u64,
}

impl Settled {
    fn counts(&self) -> TestDataCounts {
        TestDataCounts {
            alerts: self.alerts.len() as u64,
            cases: self.cases.len() as u64,
            playbook_runs: self.runs.len() as u64,
            notifications: self.notifications.len() as u64,
            deferred: self.deferred,
            ..TestDataCounts::default()
        }
    }
}

fn settle(c: &Connection, space: i64, who: &Who, p: &Plan) -> Result<Settled, StoreError> {
    let mut deferred: HashSet<String> = HashSet::new();
    // Re-check: an alert that gained (or lost) events since it was read waits for the next call.
    let mut links = c.prepare_cached("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM alert_events WHERE alert_id = ?1")?;
    let mut exists = c.prepare_cached("SELECT EXISTS(SELECT 1 FROM alerts WHERE id = ?1 AND space_no = ?2)")?;
    let mut alerts: Vec<String> = Vec::new();
    for (id, n, last) in &p.alerts {
        if !exists.query_row(params![id, space], |r| r.get::<_, bool>(0))? {
            continue;
        }
        let now: (i64, i64) = links.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if now != (*n, *last) {
            deferred.insert(id.clone());
        }
        alerts.push(id.clone());
    }
    let cases = recheck_cases(c, space, who, &p.cases, &mut deferred)?;
    let subjects: Vec<&String> = alerts.iter().chain(&cases).collect();
    if subjects.is_empty() {
        return Ok(Settled::default());
    }
    let responses: Vec<(i64, String)> = c
        .prepare_cached(
            "SELECT seq, subject FROM response_events WHERE subject IN (SELECT value FROM json_each(?1)) AND space_no = ?2 ORDER BY seq",
        )?
        .query_map(params![json_list(&subjects), space], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let by_response: HashMap<String, String> = responses.iter().map(|(s, subject)| (format!("response:{s}"), subject.clone())).collect();
    // The runs the responder queued from those entries (also those queued since the read),
    // by the runs' unique (playbook, origin) index.
    let origins: Vec<&String> = by_response.keys().collect();
    let mut runs: BTreeSet<String> = p.trigger_runs.iter().cloned().collect();
    if !origins.is_empty() {
        let queued: Vec<String> = c
            .prepare_cached(
                "SELECT id FROM playbook_runs WHERE playbook_id IN (SELECT id FROM playbooks WHERE space_no = ?1) \
                 AND origin IN (SELECT value FROM json_each(?2))",
            )?
            .query_map(params![space, json_list(&origins)], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        runs.extend(queued);
    }
    let wanted: HashSet<&String> = subjects.iter().copied().collect();
    let mut about: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut run = c.prepare_cached(
        "SELECT status, origin, json_extract(trigger, '$.alert.id'), json_extract(trigger, '$.case.id') FROM playbook_runs \
         WHERE id = ?1 AND space_no = ?2",
    )?;
    for id in runs {
        let Some((status, origin, alert, case)) = run
            .query_row(params![id, space], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?))
            })
            .optional()?
        else {
            continue;
        };
        let from_response = origin.and_then(|o| by_response.get(&o).cloned());
        let subjects: Vec<String> = [alert, case, from_response].into_iter().flatten().filter(|s| wanted.contains(s)).collect();
        if status == "running" {
            deferred.extend(subjects.iter().cloned());
        }
        about.push((id, status, subjects));
    }
    // A case waits with its alerts, and an alert with its cases: removing either alone would
    // lose the link the next call finds the other by.
    loop {
        let before = deferred.len();
        for (case, alert) in case_alert_pairs(c, &cases)? {
            if deferred.contains(&case) || deferred.contains(&alert) {
                deferred.insert(case);
                if wanted.contains(&alert) {
                    deferred.insert(alert);
                }
            }
        }
        if deferred.len() == before {
            break;
        }
    }
    let alerts: Vec<String> = alerts.into_iter().filter(|a| !deferred.contains(a)).collect();
    let cases: Vec<String> = cases.into_iter().filter(|k| !deferred.contains(k)).collect();
    let going: HashSet<&String> = alerts.iter().chain(&cases).collect();
    // A queued run is cancelled whatever it is about; a finished one goes with its subject.
    let runs: Vec<String> = about
        .into_iter()
        .filter(|(_, status, subjects)| status == "queued" || (status != "running" && subjects.iter().any(|s| going.contains(s))))
        .map(|(id, _, _)| id)
        .collect();
    let responses: Vec<i64> = responses.into_iter().filter(|(_, s)| going.contains(s)).map(|(seq, _)| seq).collect();
    let mut notifications: BTreeSet<String> = run_notifications(c, space, &runs)?.into_iter().collect();
    if !alerts.is_empty() {
        let about_alerts: Vec<String> = c
            .prepare_cached("SELECT id FROM notifications WHERE alert_id IN (SELECT value FROM json_each(?1)) AND space_no = ?2")?
            .query_map(params![json_list(&alerts), space], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        notifications.extend(about_alerts);
    }
    let deferred = deferred.len() as u64;
    Ok(Settled { alerts, cases, responses, runs, notifications: notifications.into_iter().collect(), deferred })
}

/// The cases of `planned` that still hold only what they held when read. A case that has since
/// gained an alert that is not wholly test data (an analyst added a real one) is kept: it is
/// left out, so only its links to the removed alerts go, and counted nowhere (kept, as if it
/// had held that alert when read). One that gained only test alerts, or whose linked events
/// changed, is added to `deferred` (the next call judges it again). A case gone since is
/// dropped.
fn recheck_cases(
    c: &Connection,
    space: i64,
    who: &Who,
    planned: &[PlannedCase],
    deferred: &mut HashSet<String>,
) -> Result<Vec<String>, StoreError> {
    let mut exists = c.prepare_cached("SELECT EXISTS(SELECT 1 FROM cases WHERE id = ?1 AND space_no = ?2)")?;
    let mut out = Vec::new();
    'cases: for k in planned {
        if !exists.query_row(params![k.id, space], |r| r.get::<_, bool>(0))? {
            continue;
        }
        let read: HashSet<&String> = k.alerts.iter().collect();
        let mut changed = false;
        for (_, alert) in case_alert_pairs(c, std::slice::from_ref(&k.id))? {
            if read.contains(&alert) {
                continue;
            }
            // The events this request removed are no longer in the log, which `holding` counts
            // as nobody's: no `gone` needed.
            if !holding(c, space, who, &alert, &HashSet::new())?.is_some_and(|h| h.whole()) {
                continue 'cases;
            }
            changed = true;
        }
        if changed || case_event_count(c, &k.id)? != k.events {
            deferred.insert(k.id.clone());
        }
        out.push(k.id.clone());
    }
    Ok(out)
}

/// The (case, alert) links of `cases`.
fn case_alert_pairs(c: &Connection, cases: &[String]) -> Result<Vec<(String, String)>, StoreError> {
    Ok(c.prepare_cached("SELECT case_id, alert_id FROM case_alerts WHERE case_id IN (SELECT value FROM json_each(?1))")?
        .query_map([json_list(cases)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// The notifications `runs` sent that name no alert: a `notify` step's `notification_id`, a
/// `create_task` step's `invitation.notification_id` (the top of the output only: an other
/// step's output, a `query_events` result say, may hold anyone's ids).
fn run_notifications(c: &Connection, space: i64, runs: &[String]) -> Result<Vec<String>, StoreError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    Ok(c.prepare_cached(
        "SELECT n.id FROM playbook_steps s JOIN notifications n ON n.id = CASE s.type \
           WHEN 'notify' THEN json_extract(s.output, '$.notification_id') \
           WHEN 'create_task' THEN json_extract(s.output, '$.invitation.notification_id') END \
         WHERE s.run_id IN (SELECT value FROM json_each(?1)) AND s.type IN ('notify', 'create_task') AND json_valid(s.output) \
         AND n.space_no = ?2 ORDER BY n.id",
    )?
    .query_map(params![json_list(runs), space], |r| r.get(0))?
    .collect::<Result<_, _>>()?)
}

/// Deletes `runs` with their steps, and the notifications `notes` with their attempts.
fn remove_runs(c: &Connection, runs: &[String], notes: &[String]) -> Result<(), StoreError> {
    let (runs, notes) = (json_list(runs), json_list(notes));
    let statements: [(&str, &String); 4] = [
        ("DELETE FROM playbook_steps WHERE run_id IN (SELECT value FROM json_each(?1))", &runs),
        ("DELETE FROM playbook_runs WHERE id IN (SELECT value FROM json_each(?1))", &runs),
        ("DELETE FROM notification_attempts WHERE notification_id IN (SELECT value FROM json_each(?1))", &notes),
        ("DELETE FROM notifications WHERE id IN (SELECT value FROM json_each(?1))", &notes),
    ];
    for (sql, list) in statements {
        if list.as_str() != "[]" {
            c.prepare_cached(sql)?.execute([list])?;
        }
    }
    Ok(())
}

/// Deletes what `s` settled on, and the links of the alerts that stay to the removed events
/// (inside the caller's transaction).
fn remove(c: &Connection, space: i64, p: &Plan, s: &Settled) -> Result<(), StoreError> {
    remove_runs(c, &s.runs, &s.notifications)?;
    let (alerts, cases, responses) = (json_list(&s.alerts), json_list(&s.cases), json_list(&s.responses));
    let statements: [(&str, &String); 12] = [
        ("DELETE FROM response_events WHERE seq IN (SELECT value FROM json_each(?1))", &responses),
        ("DELETE FROM case_tasks WHERE case_id IN (SELECT value FROM json_each(?1))", &cases),
        ("DELETE FROM case_comments WHERE case_id IN (SELECT value FROM json_each(?1))", &cases),
        ("DELETE FROM case_timeline WHERE case_id IN (SELECT value FROM json_each(?1))", &cases),
        ("DELETE FROM case_events WHERE case_id IN (SELECT value FROM json_each(?1))", &cases),
        ("DELETE FROM case_alerts WHERE case_id IN (SELECT value FROM json_each(?1))", &cases),
        ("DELETE FROM cases WHERE id IN (SELECT value FROM json_each(?1))", &cases),
        // A kept case (it also holds real alerts) loses only its link to the removed alert.
        ("DELETE FROM case_alerts WHERE alert_id IN (SELECT value FROM json_each(?1))", &alerts),
        ("DELETE FROM alert_events WHERE alert_id IN (SELECT value FROM json_each(?1))", &alerts),
        ("DELETE FROM alert_comments WHERE alert_id IN (SELECT value FROM json_each(?1))", &alerts),
        ("DELETE FROM alert_history WHERE alert_id IN (SELECT value FROM json_each(?1))", &alerts),
        ("DELETE FROM alerts WHERE id IN (SELECT value FROM json_each(?1))", &alerts),
    ];
    for (sql, list) in statements {
        if list.as_str() != "[]" {
            c.prepare_cached(sql)?.execute([list])?;
        }
    }
    let mut unlink = c.prepare_cached(
        "DELETE FROM alert_events WHERE alert_id = ?1 AND seq IN (SELECT value FROM json_each(?2)) \
         AND EXISTS (SELECT 1 FROM alerts WHERE id = ?1 AND space_no = ?3)",
    )?;
    for (alert, seqs) in &p.unlink {
        unlink.execute(params![alert, json_list(seqs), space])?;
    }
    Ok(())
}

/// The directory's test people of `space`.
fn test_people(c: &Connection, space: i64, who: &Who) -> Result<Vec<String>, StoreError> {
    let users: Vec<String> = c
        .prepare_cached("SELECT user_id FROM people WHERE space_no = ?1 AND user_id LIKE ?2")?
        .query_map(params![space, who.like()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(users.into_iter().filter(|u| who.takes(u)).collect())
}

/// The user an event names, as the rules see it (`user_id` of the event or of a firewall
/// event's interaction).
fn event_user(e: &crate::log::Stored) -> Option<String> {
    match crate::log::normalized(e, "").remove("user_id") {
        Some(Value::String(u)) => Some(u),
        _ => None,
    }
}

/// Scans the log of `space` in windows of [`WINDOW`] rows (each a short read) from the first
/// event received at or after `scope.from_us` (the whole log without it) for the events of the
/// people meant, calls `each` with each window's events found, and returns what it answered.
async fn for_each_event_window<T, F, Fut>(st: &XdrState, space: i64, scope: &Scope, mut each: F) -> Result<Vec<T>, StoreError>
where
    F: FnMut(Vec<FoundEvent>) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let from_us = scope.from_us;
    let (lo, hi): (Option<i64>, Option<i64>) = st
        .store
        .read(move |c| {
            let (lo, hi): (Option<i64>, Option<i64>) =
                c.query_row("SELECT MIN(seq), MAX(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let lo = match (from_us, lo) {
                (Some(t), Some(lo)) => Some(crate::retention::last_received_before(c, t)?.map_or(lo, |s| s + 1)),
                (_, lo) => lo,
            };
            Ok::<_, StoreError>((lo, hi))
        })
        .await?;
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut from = lo;
    while from <= hi {
        let (w, to) = (scope.who.clone(), from.saturating_add(WINDOW));
        let found: Vec<FoundEvent> = st
            .store
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT seq, {} FROM events WHERE seq >= ?1 AND seq < ?2 AND space_no = ?3 AND body LIKE ?4",
                    crate::log::STORED
                ))?;
                let rows = stmt.query_map(params![from, to, space, w.body_like()], |r| {
                    Ok((r.get::<_, i64>(0)?, crate::log::Stored::from_row_at(r, 1)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (seq, e) = row?;
                    if event_user(&e).is_some_and(|u| w.takes(&u)) {
                        out.push(FoundEvent { seq });
                    }
                }
                Ok::<_, StoreError>(out)
            })
            .await?;
        if !found.is_empty() {
            out.push(each(found).await?);
        }
        from = to;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_ids_in_the_range_are_taken_and_one_person_only_when_named() {
        let a = "00000000-7e57-4da7-a000-0000000000aa";
        let b = "00000000-7E57-4DA7-A000-0000000000BB";
        assert!(Who::All.takes(a) && Who::All.takes(b));
        assert!(!Who::All.takes("dave") && !Who::All.takes("00000000-7e57-4da7-a000-zzzzzzzzzzzz"));
        let one = Who::from_param(Some(b.to_owned())).expect("a test person");
        assert!(one.takes(b) && one.takes(&b.to_lowercase()) && !one.takes(a));
        let e = Who::from_param(Some("dave".to_owned())).expect_err("not a test person");
        assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.fields[0].field, "user_id");
    }

    /// Regression (review 2, item 1): events were counted as the window's size minus the
    /// running runs, so two runs in progress on one event made 1 - 2 (a panic in debug, a
    /// wrapped count in release).
    #[test]
    fn two_runs_in_progress_on_one_event_hold_back_that_event_once() {
        let window: Vec<FoundEvent> = [7, 8, 9].into_iter().map(|seq| FoundEvent { seq }).collect();
        let run = |id: &str, status: &str, seq: i64| EventRun { id: id.to_owned(), status: status.to_owned(), seq };
        let runs = [run("r1", "running", 8), run("r2", "running", 8), run("r3", "succeeded", 9), run("r4", "queued", 7)];
        let w = WindowRuns::of(&window, &runs);
        assert_eq!(w, WindowRuns { events: vec![7, 9], done: vec!["r3".to_owned(), "r4".to_owned()], held: BTreeSet::from([8]) });
        // One event, two runs in progress: nothing goes, the event is held back once.
        let one = WindowRuns::of(&window[1..2], &runs[..2]);
        assert_eq!((one.events.len(), one.held.len()), (0, 1));
    }

    const TESTER: &str = "00000000-7e57-4da7-a000-0000000000aa";

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Connection::open(dir.path().join("xdr.db")).expect("open");
        for m in crate::server::MIGRATIONS {
            c.execute_batch(m.sql).expect(m.name);
        }
        (dir, c)
    }

    fn alert(c: &Connection, id: &str, user: &str) {
        c.execute(
            "INSERT INTO alerts (id, short_id, space_no, rule_id, rule_name, title, severity, urgency, status, similarity_key, \
             occurrences, first_seen, last_seen, user_id, raised_at, created_at, updated_at) \
             VALUES (?1, ?1, 1, 'r1', 'Rule', 'An alert', 'high', 70, 'pending', ?1, 1, 0, 0, ?2, 0, 0, 0)",
            params![id, user],
        )
        .expect("alert");
    }

    fn link(c: &Connection, case: &str, alert: &str) {
        c.execute("INSERT INTO case_alerts (case_id, alert_id, added_at) VALUES (?1, ?2, 0)", params![case, alert]).expect("link");
    }

    fn count(c: &Connection, sql: &str) -> i64 {
        c.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    /// A test alert in a case, planned for removal on a reader; then `join` changes the case
    /// before the writer settles and removes. What was removed, and the counts.
    fn plan_then_settle(join: impl FnOnce(&Connection)) -> (tempfile::TempDir, Connection, TestDataCounts) {
        let (dir, c) = db();
        alert(&c, "a-test", TESTER);
        c.execute(
            "INSERT INTO cases (id, short_id, space_no, title, severity, priority, status, created_at, updated_at) \
             VALUES ('k1', 'k1', 1, 'A case', 'high', 'high', 'open', 0, 0)",
            [],
        )
        .expect("case");
        link(&c, "k1", "a-test");
        let p = plan(&c, 1, &Who::All, &["a-test".to_owned()], &HashSet::new()).expect("plan");
        assert_eq!((p.alerts.len(), p.cases.len()), (1, 1), "read: the alert and its case are test data");
        join(&c);
        let tx = c.unchecked_transaction().expect("tx");
        let s = settle(&tx, 1, &Who::All, &p).expect("settle");
        remove(&tx, 1, &p, &s).expect("remove");
        tx.commit().expect("commit");
        let counts = s.counts();
        (dir, c, counts)
    }

    #[test]
    fn a_case_planned_for_removal_goes_when_nothing_joined_it() {
        let (_d, c, n) = plan_then_settle(|_| {});
        assert_eq!((n.alerts, n.cases, n.deferred), (1, 1, 0));
        assert_eq!(count(&c, "SELECT COUNT(*) FROM cases") + count(&c, "SELECT COUNT(*) FROM alerts"), 0);
    }

    /// Regression (review 2, item 10): the case was removed with its link to the real alert an
    /// analyst added between the read and the write.
    #[test]
    fn a_case_that_gains_a_real_alert_between_plan_and_settle_is_kept_with_that_alert() {
        let (_d, c, n) = plan_then_settle(|c| {
            alert(c, "a-real", "dave");
            link(c, "k1", "a-real");
        });
        assert_eq!((n.alerts, n.cases, n.deferred), (1, 0, 0), "the test alert goes; the case is kept, not deferred");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM cases WHERE id = 'k1'"), 1, "the case stays");
        let links: Vec<String> = c
            .prepare("SELECT alert_id FROM case_alerts WHERE case_id = 'k1'")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(links, ["a-real"], "only its link to the removed test alert went");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM alerts WHERE id = 'a-test'"), 0);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM alerts WHERE id = 'a-real'"), 1);
    }

    #[test]
    fn a_case_that_gains_another_test_alert_between_plan_and_settle_waits_for_the_next_call() {
        let (_d, c, n) = plan_then_settle(|c| {
            alert(c, "a-test-2", TESTER);
            link(c, "k1", "a-test-2");
        });
        assert_eq!((n.alerts, n.cases, n.deferred), (0, 0, 2), "the case and its planned alert wait");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM case_alerts WHERE case_id = 'k1'"), 2, "nothing removed yet");
    }

    #[test]
    fn the_index_range_holds_every_spelling_of_a_test_id() {
        for id in ["00000000-7e57-4da7-a000-0000000000aa", "00000000-7E57-4DA7-A000-0000000000BB", "00000000-7E57-4da7-a000-ffffffffffff"] {
            assert!(is_test_person(id) && USER_RANGE.0 <= id && id < USER_RANGE.1, "{id}");
        }
    }
}
