//! Test data (`GET` / `DELETE /api/v1/test-data`): what `vigie verify` left in a space, found
//! by its test people — user ids in the reserved range of [`vigie_core::testdata`] — and
//! removed without touching anyone real. Scope `admin`, within the caller's space.
//!
//! What counts as test data:
//! - events whose `user_id` (top level, or a firewall event's `data.interaction.user_id`) is a
//!   test person, with their facts;
//! - alerts whose `user_id` is a test person, with everything hanging off them: their event
//!   links, comments, history, response-queue entries, notifications (`alert_id`), and the
//!   playbook runs they (or their cases) triggered, with the runs' steps and the notifications
//!   the runs sent (a task's invitation names no alert: the step's output gives its id);
//! - cases all of whose alerts are such alerts and that hold no other event, with their tasks,
//!   comments, timeline and links (a case that also holds a real alert stays; only its link to
//!   the removed alert goes);
//! - the directory's entries of test people.
//!
//! Cost: events keep `user_id` inside their JSON body (no column, no index), so finding them is
//! a scan of the whole log in windows of [`WINDOW`] rows on a reader, with a `LIKE` on the body
//! for the range's prefix doing the first cut (a substring search of each body; about as long as
//! reading the log once) and the user id of the few rows that pass checked exactly. Alerts,
//! notifications and runs are scanned per space (their indexes start with the space); people
//! by the directory's key. Removal runs in bounded transactions: [`ALERTS_PER_TX`] alerts (with
//! their cases) or up to [`WINDOW`] events at a time, so intake is never held up for long; a
//! second `DELETE` finds and removes nothing.
use crate::keys::{AdminScope, Authorized};
use crate::state::XdrState;
use axum::Json;
use axum::extract::State;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::StoreError;
use vigie_core::http::{ApiError, ApiQuery, FieldError};
use vigie_core::testdata::{PREFIX, is_test_person};

/// Log rows read per scan window (and the most events deleted in one transaction).
pub const WINDOW: i64 = 5_000;
/// Alerts (with their cases, runs and notifications) removed in one transaction.
pub const ALERTS_PER_TX: usize = 200;

/// The routes of this module.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(test_data_get, test_data_delete))
}

/// Which test data: one test person, or all of them.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TestDataParams {
    /// Only this test person's data (a user id in the reserved test range); default: every
    /// test person's.
    pub user_id: Option<String>,
}

/// How much test data there is, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestDataCounts {
    /// Events of test people.
    pub events: u64,
    /// Alerts about test people.
    pub alerts: u64,
    /// Cases holding only test alerts (and no other event).
    pub cases: u64,
    /// Directory entries of test people.
    pub people: u64,
    /// Playbook runs the test alerts or cases triggered.
    pub playbook_runs: u64,
    /// Notifications about the test alerts.
    pub notifications: u64,
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
    fn from_params(q: TestDataParams) -> Result<Who, ApiError> {
        match q.user_id {
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

/// Counts of the test data in the caller's space (of every test person, or of `user_id`):
/// what a `DELETE` would remove now.
#[utoipa::path(get, path = "/api/v1/test-data", tag = "operations", security(("bearer" = [])), params(TestDataParams),
    responses((status = 200, body = TestDataFound), (status = 403), (status = 422)))]
pub async fn test_data_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiQuery(q): ApiQuery<TestDataParams>,
) -> Result<Json<TestDataFound>, ApiError> {
    let who = Who::from_params(q)?;
    let space = caller.space_no;
    let w = who.clone();
    let mut found = st
        .store
        .read(move |c| {
            let alerts = test_alerts(c, space, &w, None, usize::MAX)?;
            let cases = test_cases(c, space, &w, &alerts)?;
            let attached = attached(c, space, &alerts, &cases)?;
            let people = test_people(c, space, &w)?;
            Ok::<_, StoreError>(TestDataCounts {
                alerts: alerts.len() as u64,
                cases: cases.len() as u64,
                playbook_runs: attached.runs.len() as u64,
                notifications: attached.notifications.len() as u64,
                people: people.len() as u64,
                events: 0,
            })
        })
        .await?;
    found.events = for_each_event_window(&st, space, &who, |_| async { Ok(()) }).await?;
    Ok(Json(TestDataFound { found }))
}

/// Removes the test data of the caller's space (of every test person, or of `user_id`), in
/// bounded transactions; what was removed. A second call removes nothing.
#[utoipa::path(delete, path = "/api/v1/test-data", tag = "operations", security(("bearer" = [])), params(TestDataParams),
    responses((status = 200, body = TestDataRemoved), (status = 403), (status = 422)))]
pub async fn test_data_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiQuery(q): ApiQuery<TestDataParams>,
) -> Result<Json<TestDataRemoved>, ApiError> {
    let who = Who::from_params(q)?;
    let space = caller.space_no;
    let mut removed = TestDataCounts::default();
    // Alerts and their cases first: whether a case holds only test events is read from the log.
    let mut after: Option<String> = None;
    loop {
        let (w, from) = (who.clone(), after.clone());
        let (n, last) = st
            .store
            .write(move |c| {
                let alerts = test_alerts(c, space, &w, from.as_deref(), ALERTS_PER_TX)?;
                let last = alerts.last().cloned();
                let cases = test_cases(c, space, &w, &alerts)?;
                let a = attached(c, space, &alerts, &cases)?;
                remove(c, &alerts, &cases, &a)?;
                let n = TestDataCounts {
                    alerts: alerts.len() as u64,
                    cases: cases.len() as u64,
                    playbook_runs: a.runs.len() as u64,
                    notifications: a.notifications.len() as u64,
                    ..TestDataCounts::default()
                };
                Ok::<_, StoreError>((n, last))
            })
            .await?;
        removed.alerts += n.alerts;
        removed.cases += n.cases;
        removed.playbook_runs += n.playbook_runs;
        removed.notifications += n.notifications;
        match last {
            Some(l) if n.alerts as usize == ALERTS_PER_TX => after = Some(l),
            _ => break,
        }
    }
    let deletions = st.deletions.clone();
    removed.events = for_each_event_window(&st, space, &who, |seqs| {
        let (st, deletions) = (st.clone(), deletions.clone());
        async move {
            st.store
                .write(move |c| {
                    // The facts builder checks this on the writer thread: events it read may be gone.
                    deletions.fetch_add(1, std::sync::atomic::Ordering::Release);
                    let gone: Vec<i64> = c
                        .prepare_cached(
                            "DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?1)) AND space_no = ?2 RETURNING seq",
                        )?
                        .query_map(params![json_list(&seqs), space], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    crate::facts::forget(c, space, &gone)?;
                    Ok::<_, StoreError>(())
                })
                .await
        }
    })
    .await?;
    let w = who.clone();
    removed.people = st
        .store
        .write(move |c| {
            let people = test_people(c, space, &w)?;
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

/// The test alerts of `space` (ids in id order, after `after`), at most `limit`.
fn test_alerts(c: &Connection, space: i64, who: &Who, after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT id, user_id FROM alerts WHERE space_no = ?1 AND user_id LIKE ?2 AND (?3 IS NULL OR id > ?3) ORDER BY id")?;
    let mut rows = stmt.query(params![space, who.like(), after])?;
    let mut out = Vec::new();
    while out.len() < limit
        && let Some(r) = rows.next()?
    {
        let (id, user): (String, String) = (r.get(0)?, r.get(1)?);
        if who.takes(&user) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The cases holding some of `alerts` that hold only alerts of the people meant and no event
/// but theirs.
fn test_cases(c: &Connection, space: i64, who: &Who, alerts: &[String]) -> Result<Vec<String>, StoreError> {
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
    let mut out = Vec::new();
    for case in candidates {
        let users: Vec<Option<String>> = c
            .prepare_cached(
                "SELECT a.user_id FROM case_alerts ca LEFT JOIN alerts a ON a.id = ca.alert_id AND a.space_no = ?2 WHERE ca.case_id = ?1",
            )?
            .query_map(params![case, space], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !users.iter().all(|u| u.as_deref().is_some_and(|u| who.takes(u))) {
            continue;
        }
        let events: Vec<String> = c
            .prepare_cached(
                "SELECT event_id FROM case_events WHERE case_id = ?1 AND event_id NOT IN \
                 (SELECT ae.event_id FROM alert_events ae JOIN case_alerts ca ON ca.alert_id = ae.alert_id WHERE ca.case_id = ?1)",
            )?
            .query_map([&case], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut only_theirs = true;
        for e in events {
            let stored = crate::log::by_ids(c, space, std::slice::from_ref(&e))?;
            // An event the log no longer holds (retention) is nobody's.
            if stored.iter().any(|s| !event_user(s).is_some_and(|u| who.takes(&u))) {
                only_theirs = false;
                break;
            }
        }
        if only_theirs {
            out.push(case);
        }
    }
    Ok(out)
}

/// What hangs off alerts and cases elsewhere: response-queue entries, playbook runs,
/// notifications.
struct Attached {
    responses: Vec<i64>,
    runs: Vec<String>,
    notifications: Vec<String>,
}

fn attached(c: &Connection, space: i64, alerts: &[String], cases: &[String]) -> Result<Attached, StoreError> {
    if alerts.is_empty() && cases.is_empty() {
        return Ok(Attached { responses: Vec::new(), runs: Vec::new(), notifications: Vec::new() });
    }
    let subjects: Vec<&String> = alerts.iter().chain(cases).collect();
    let subjects = json_list(&subjects);
    let responses: Vec<i64> = c
        .prepare_cached(
            "SELECT seq FROM response_events WHERE space_no = ?1 AND subject IN (SELECT value FROM json_each(?2)) ORDER BY seq",
        )?
        .query_map(params![space, subjects], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let origins: Vec<String> = responses.iter().map(|s| format!("response:{s}")).collect();
    // Runs a test alert or case started, and replays and manual runs over one (their trigger
    // names the alert or the case).
    let runs: Vec<String> = c
        .prepare_cached(
            "SELECT id FROM playbook_runs WHERE space_no = ?1 AND (origin IN (SELECT value FROM json_each(?2)) \
             OR json_extract(trigger, '$.alert.id') IN (SELECT value FROM json_each(?3)) \
             OR json_extract(trigger, '$.case.id') IN (SELECT value FROM json_each(?3))) ORDER BY id",
        )?
        .query_map(params![space, json_list(&origins), subjects], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // Notifications about the alerts, and those the runs sent without naming one (a task's
    // invitation): their steps' outputs give the ids.
    let notifications: Vec<String> = c
        .prepare_cached(
            "SELECT id FROM notifications WHERE space_no = ?1 AND (alert_id IN (SELECT value FROM json_each(?2)) OR id IN \
             (SELECT t.value FROM playbook_steps s, json_tree(s.output) t WHERE s.run_id IN (SELECT value FROM json_each(?3)) \
             AND t.key = 'notification_id' AND t.type = 'text')) ORDER BY id",
        )?
        .query_map(params![space, json_list(alerts), json_list(&runs)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Attached { responses, runs, notifications })
}

/// Deletes `alerts`, `cases` and what is attached to them (inside the caller's transaction).
fn remove(c: &Connection, alerts: &[String], cases: &[String], a: &Attached) -> Result<(), StoreError> {
    let (alerts, cases) = (json_list(alerts), json_list(cases));
    let (runs, notes, responses) = (json_list(&a.runs), json_list(&a.notifications), json_list(&a.responses));
    let statements: [(&str, &String); 16] = [
        ("DELETE FROM playbook_steps WHERE run_id IN (SELECT value FROM json_each(?1))", &runs),
        ("DELETE FROM playbook_runs WHERE id IN (SELECT value FROM json_each(?1))", &runs),
        ("DELETE FROM notification_attempts WHERE notification_id IN (SELECT value FROM json_each(?1))", &notes),
        ("DELETE FROM notifications WHERE id IN (SELECT value FROM json_each(?1))", &notes),
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

/// Scans the log of `space` in windows of [`WINDOW`] rows (each a short read) for the events of
/// the people meant, calls `each` with each window's seqs found, and returns how many.
async fn for_each_event_window<F, Fut>(st: &XdrState, space: i64, who: &Who, mut each: F) -> Result<u64, StoreError>
where
    F: FnMut(Vec<i64>) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let (lo, hi): (Option<i64>, Option<i64>) = st
        .store
        .read(|c| c.query_row("SELECT MIN(seq), MAX(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?))).map_err(StoreError::from))
        .await?;
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(0) };
    let mut total = 0u64;
    let mut from = lo;
    while from <= hi {
        let (w, to) = (who.clone(), from.saturating_add(WINDOW));
        let seqs: Vec<i64> = st
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
                        out.push(seq);
                    }
                }
                Ok::<_, StoreError>(out)
            })
            .await?;
        total += seqs.len() as u64;
        if !seqs.is_empty() {
            each(seqs).await?;
        }
        from = to;
    }
    Ok(total)
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
        let one = Who::from_params(TestDataParams { user_id: Some(b.to_owned()) }).expect("a test person");
        assert!(one.takes(b) && one.takes(&b.to_lowercase()) && !one.takes(a));
        let e = Who::from_params(TestDataParams { user_id: Some("dave".to_owned()) }).expect_err("not a test person");
        assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.fields[0].field, "user_id");
    }
}
