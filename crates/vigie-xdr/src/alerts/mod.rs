//! Alerts: raised from rule matches (similarity folds repeats into occurrences of an open alert;
//! a rule raising too many is paused), the workflow, comments, assignment, and their HTTP API.
//!
//! The detection consumer calls [`apply`] for every match, inside its own write transaction (the
//! write path — folding, the rate limit, short ids — is `alerts/raise.rs`; the types the API
//! shows and takes, and how a stored alert reads, are `alerts/model.rs`).
//! The API (`/api/v1/alerts…`, scopes `alerts_read` and `alerts_write`) reads and changes the
//! alerts of the caller's space only: another space's alert is 404, never 403, and never listed.
use crate::keys::{AlertsRead, AlertsWrite, Authorized};
use crate::listing::{Listing, list_of};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError, Page, page_limit};

mod model;
mod raise;

use model::{ALERT_COLS, alert_from_row};
pub use model::{
    Alert, AlertDetail, AlertListParams, AlertPatch, AlertRule, AlertStatus, Comment, CommentListParams, HistoryEntry, NewComment,
    WORKFLOW_ACTIONS, WorkflowAction, WorkflowAnswer, WorkflowChange, severity_number, severity_word,
};
pub use raise::{MAX_ALERT_EVENTS, Match, Outcome, PAUSE_MICROS, RATE_LIMIT_ALERTS, RATE_WINDOW_MICROS, apply};

/// The longest comment (characters), as a comment or a workflow change carries it.
pub const MAX_COMMENT: usize = 10_000;
/// The comments one alert shows, oldest first (the rest are paged through `GET …/comments`).
pub const SHOWN_COMMENTS: i64 = 200;
/// The history entries one alert shows, the newest (all are kept).
pub const SHOWN_HISTORY: i64 = 500;
/// The most comments an alert takes (a key cannot make one alert a gigabyte to read).
pub const MAX_COMMENTS_PER_ALERT: i64 = 10_000;

/// Records an entry of an alert's history.
#[allow(clippy::too_many_arguments)]
fn history(
    c: &Connection,
    alert_id: &str,
    at: i64,
    by: &str,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
    comment: Option<&str>,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO alert_history (alert_id, at, by, kind, from_value, to_value, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![alert_id, at, by, kind, from, to, comment])?;
    Ok(())
}

/// Sets one column of an alert of `space_no` (a name from this module, never from input) and
/// its `updated_at`.
fn set(
    c: &Connection,
    space_no: i64,
    alert_id: &str,
    column: &'static str,
    value: impl rusqlite::ToSql,
    at: i64,
) -> Result<(), StoreError> {
    c.prepare_cached(&format!("UPDATE alerts SET {column} = ?3, updated_at = ?4 WHERE id = ?1 AND space_no = ?2"))?
        .execute(params![alert_id, space_no, value, at])?;
    Ok(())
}

/// An alert of a path: its UUID or its short id (any case; Crockford's look-alikes O, I and L
/// read as 0, 1 and 1). Anything else cannot be an alert: 404.
fn alert_ref(raw: &str) -> Result<String, ApiError> {
    crate::short_id::parse("AL", raw).ok_or_else(|| ApiError::not_found("alert"))
}

/// The alert of `space_no` whose id or short id is `key`.
fn find(c: &Connection, space_no: i64, key: &str) -> Result<Option<Alert>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {ALERT_COLS} FROM alerts WHERE space_no = ?1 AND (id = ?2 OR short_id = ?2)"))?
        .query_row(params![space_no, key], alert_from_row)
        .optional()?)
}

/// The alert of `space_no` whose id or short id is `key` (as a path gives it), for the other
/// modules (the responder, playbooks, cases).
pub fn get(c: &Connection, space_no: i64, key: &str) -> Result<Option<Alert>, StoreError> {
    match alert_ref(key) {
        Ok(k) => find(c, space_no, &k),
        Err(_) => Ok(None),
    }
}

fn found(c: &Connection, space_no: i64, key: &str) -> Result<Alert, ApiError> {
    find(c, space_no, key)?.ok_or_else(|| ApiError::not_found("alert"))
}

/// Comments of an alert of `space_no`, oldest first, after comment `after`.
fn comments(c: &Connection, space_no: i64, alert_id: &str, after: Option<&str>, limit: i64) -> Result<Vec<Comment>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, author, content, created_at FROM alert_comments \
         WHERE alert_id = (SELECT id FROM alerts WHERE id = ?1 AND space_no = ?2) AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![alert_id, space_no, after, limit], |r| {
        Ok(Comment { id: r.get(0)?, author: r.get(1)?, content: r.get(2)?, created_at: from_micros(r.get(3)?) })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn detail(c: &Connection, space_no: i64, alert: Alert) -> Result<AlertDetail, StoreError> {
    const OF_ALERT: &str = "alert_id = (SELECT id FROM alerts WHERE id = ?1 AND space_no = ?2)";
    let event_ids = c
        .prepare_cached(&format!("SELECT event_id FROM alert_events WHERE {OF_ALERT} ORDER BY seq"))?
        .query_map(params![alert.id, space_no], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let history = c
        .prepare_cached(&format!(
            "SELECT at, by, kind, from_value, to_value, comment FROM \
             (SELECT id, at, by, kind, from_value, to_value, comment FROM alert_history WHERE {OF_ALERT} ORDER BY id DESC LIMIT ?3) \
             ORDER BY id"
        ))?
        .query_map(params![alert.id, space_no, SHOWN_HISTORY], |r| {
            Ok(HistoryEntry {
                at: from_micros(r.get(0)?),
                by: r.get(1)?,
                kind: r.get(2)?,
                from: r.get(3)?,
                to: r.get(4)?,
                comment: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let comments = comments(c, space_no, &alert.id, None, SHOWN_COMMENTS)?;
    Ok(AlertDetail { alert, event_ids, comments, history })
}

/// The space's alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])), params(AlertListParams),
    responses((status = 200, body = Page<Alert>), (status = 400)))]
pub async fn alerts_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    ApiQuery(q): ApiQuery<AlertListParams>,
) -> Result<Json<Page<Alert>>, ApiError> {
    let statuses = list_of(
        "status",
        q.status.as_deref(),
        |v| AlertStatus::parse(v).map(|s| s.as_str().to_owned()),
        "pending, acknowledged, ongoing, closed, rejected",
    )?;
    let severities = list_of(
        "severity",
        q.severity.as_deref(),
        |v| severity_number(v).map(|n| severity_word(n).to_owned()),
        "low, medium, high, critical",
    )?;
    let page = Listing::of(ALERT_COLS, "alerts", caller.space_no)
        .any_of("status", statuses)
        .any_of("severity", severities)
        .when("rule_id = ?", q.rule_id)
        .when("user_id = ?", q.user_id)
        .when("platform_id = ?", q.platform_id)
        .when("assignee = ?", q.assignee)
        .newest_first(&st, q.from, q.to, q.cursor.as_deref(), q.limit, alert_from_row, |a| (a.created_at, &a.id))
        .await?;
    Ok(Json(page))
}

/// One alert (by id or short id) with its events, comments and history.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "the alert's id or short id")),
    responses((status = 200, body = AlertDetail), (status = 404)))]
pub async fn alerts_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    Path(id): Path<String>,
) -> Result<Json<AlertDetail>, ApiError> {
    let (key, space_no) = (alert_ref(&id)?, caller.space_no);
    let detail = st
        .store
        .read(move |c| {
            // One read transaction: the alert, its events, comments and history as of one moment.
            let tx = c.unchecked_transaction().map_err(StoreError::from)?;
            let alert = found(&tx, space_no, &key)?;
            let d = detail(&tx, space_no, alert)?;
            tx.commit().map_err(StoreError::from)?;
            Ok::<_, ApiError>(d)
        })
        .await?;
    Ok(Json(detail))
}

/// 409 for a transition the workflow does not allow, naming the current status and the next ones.
fn refused(a: &Alert, to: AlertStatus) -> ApiError {
    let next: Vec<&str> = a.status.next().iter().map(|s| s.as_str()).collect();
    let message = match next.as_slice() {
        [] => format!("alert {} is {}, a final status: it cannot become {}", a.short_id, a.status.as_str(), to.as_str()),
        [one] => format!("alert {} is {}: it can become {one}, not {}", a.short_id, a.status.as_str(), to.as_str()),
        [init @ .., last] => {
            format!("alert {} is {}: it can become {} or {last}, not {}", a.short_id, a.status.as_str(), init.join(", "), to.as_str())
        }
    };
    ApiError::new(StatusCode::CONFLICT, "invalid_transition", message)
}

/// Move an alert along its workflow: pending → acknowledged → ongoing → closed, pending →
/// ongoing (Validate), and any open status → rejected.
#[utoipa::path(patch, path = "/api/v1/alerts/{id}/workflow", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "the alert's id or short id")), request_body = WorkflowChange,
    responses((status = 200, body = WorkflowAnswer), (status = 404), (status = 409, description = "the workflow does not allow it"),
        (status = 422)))]
pub async fn alerts_workflow(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsWrite>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<WorkflowChange>,
) -> Result<Json<WorkflowAnswer>, ApiError> {
    let key = alert_ref(&id)?;
    let (to, comment) = change.read()?;
    let (space_no, by, now) = (caller.space_no, format!("key:{}", caller.key_id), st.clock.now());
    let alert = st.store.write(move |c| change_status(c, space_no, &key, to, comment.as_deref(), &by, now)).await?;
    st.response.queued();
    Ok(Json(WorkflowAnswer { actions: alert.status.actions(), alert }))
}

/// Moves the alert of `space_no` whose id or short id is `key` to `to`, inside the caller's
/// transaction: recorded in its history, and queued for the responder (playbooks triggered by
/// status changes). 404 for no such alert, 409 for a move the workflow does not allow.
pub fn change_status(
    c: &Connection,
    space_no: i64,
    key: &str,
    to: AlertStatus,
    comment: Option<&str>,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Alert, ApiError> {
    let mut a = found(c, space_no, key)?;
    if !a.status.next().contains(&to) {
        return Err(refused(&a, to));
    }
    set(c, space_no, &a.id, "status", to.as_str(), to_micros(now))?;
    history(c, &a.id, to_micros(now), by, "status", Some(a.status.as_str()), Some(to.as_str()), comment)?;
    let change = serde_json::json!({"from": a.status.as_str(), "to": to.as_str(), "by": by, "rule_id": a.rule.id});
    crate::response::enqueue(c, space_no, crate::response::ResponseKind::AlertStatusChanged, &a.id, &change, to_micros(now))?;
    (a.status, a.updated_at) = (to, now);
    Ok(a)
}

/// Changes an alert as a playbook's `update_alert` step does, inside the caller's transaction:
/// its status (along the workflow), a comment (signed `by`), its assignee (empty: unassigned).
#[allow(clippy::too_many_arguments)]
pub fn update_by(
    c: &Connection,
    space_no: i64,
    key: &str,
    status: Option<&str>,
    comment: Option<&str>,
    assignee: Option<String>,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Alert, ApiError> {
    let key = alert_ref(key)?;
    let mut a = found(c, space_no, &key)?;
    let at = to_micros(now);
    if let Some(s) = status {
        let to = AlertStatus::parse(s).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "status",
                format!("{s:?} is not one of pending, acknowledged, ongoing, closed, rejected"),
            )])
        })?;
        if to != a.status {
            a = change_status(c, space_no, &a.id, to, comment, by, now)?;
        }
    }
    if let Some(text) = comment.filter(|t| !t.trim().is_empty()) {
        let text: String = text.chars().take(MAX_COMMENT).collect();
        let id = uuid::Uuid::now_v7().to_string();
        c.prepare_cached("INSERT INTO alert_comments (id, alert_id, author, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![id, a.id, by, text, at]))
            .map_err(StoreError::from)?;
        history(c, &a.id, at, by, "comment", None, Some(&id), None)?;
    }
    if let Some(to) = assignee.map(|s| s.trim().to_owned()) {
        let to = (!to.is_empty()).then_some(to);
        if to != a.assignee {
            set(c, space_no, &a.id, "assignee", &to, at)?;
            history(c, &a.id, at, by, "assignee", a.assignee.as_deref(), to.as_deref(), None)?;
            (a.assignee, a.updated_at) = (to, now);
        }
    }
    Ok(a)
}

/// Change an alert's assignee or urgency.
#[utoipa::path(patch, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "the alert's id or short id")), request_body = AlertPatch,
    responses((status = 200, body = Alert), (status = 404), (status = 422)))]
pub async fn alerts_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsWrite>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<AlertPatch>,
) -> Result<Json<Alert>, ApiError> {
    let key = alert_ref(&id)?;
    let mut errors = Vec::new();
    let assignee = patch.assignee.map(|a| a.map(|s| s.trim().to_owned()));
    if let Some(Some(a)) = &assignee
        && (a.is_empty() || a.chars().count() > 100)
    {
        errors.push(FieldError::new("assignee", "1 to 100 characters; send null to unassign"));
    }
    if let Some(u) = patch.urgency
        && !(0..=100).contains(&u)
    {
        errors.push(FieldError::new("urgency", format!("{u} is outside 0..100")));
    }
    if assignee.is_none() && patch.urgency.is_none() {
        errors.push(FieldError::new("body", "give assignee or urgency"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (space_no, by, now) = (caller.space_no, format!("key:{}", caller.key_id), st.clock.now());
    let alert = st
        .store
        .write(move |c| {
            let mut a = found(c, space_no, &key)?;
            let at = to_micros(now);
            if let Some(to) = assignee
                && to != a.assignee
            {
                set(c, space_no, &a.id, "assignee", &to, at)?;
                history(c, &a.id, at, &by, "assignee", a.assignee.as_deref(), to.as_deref(), None)?;
                (a.assignee, a.updated_at) = (to, now);
            }
            if let Some(to) = patch.urgency
                && to != a.urgency
            {
                set(c, space_no, &a.id, "urgency", to, at)?;
                history(c, &a.id, at, &by, "urgency", Some(&a.urgency.to_string()), Some(&to.to_string()), None)?;
                (a.urgency, a.updated_at) = (to, now);
            }
            Ok::<_, ApiError>(a)
        })
        .await?;
    Ok(Json(alert))
}

/// An alert's comments, oldest first.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/comments", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "the alert's id or short id"), CommentListParams),
    responses((status = 200, body = Page<Comment>), (status = 404)))]
pub async fn alert_comments_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CommentListParams>,
) -> Result<Json<Page<Comment>>, ApiError> {
    let (key, space_no, limit) = (alert_ref(&id)?, caller.space_no, page_limit(q.limit));
    let after = q.cursor;
    let rows = st
        .store
        .read(move |c| {
            let alert = found(c, space_no, &key)?;
            Ok::<_, ApiError>(comments(c, space_no, &alert.id, after.as_deref(), limit as i64 + 1)?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |c| c.id.clone())))
}

/// Comment on an alert.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/comments", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "the alert's id or short id")), request_body = NewComment,
    responses((status = 201, body = Comment), (status = 404), (status = 422)))]
pub async fn alert_comments_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsWrite>,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    let key = alert_ref(&id)?;
    let by = format!("key:{}", caller.key_id);
    let mut errors = Vec::new();
    if new.content.trim().is_empty() || new.content.chars().count() > MAX_COMMENT {
        errors.push(FieldError::new("content", "1 to 10,000 characters"));
    }
    let author = new.author.map(|a| a.trim().to_owned());
    if author.as_ref().is_some_and(|a| a.is_empty() || a.chars().count() > 100) {
        errors.push(FieldError::new("author", "1 to 100 characters; leave it out to be named by your key"));
    } else if author.as_ref().is_some_and(|a| a.starts_with("key:") || a.eq_ignore_ascii_case(raise::DETECTION)) {
        // The names the history gives keys and detection are not for anyone to sign with (the
        // history records the key that wrote the comment whatever the author says).
        errors.push(FieldError::new("author", "a display name; \"key:…\" and \"detection\" are reserved"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let now = st.clock.now();
    let comment =
        Comment { id: st.ids.at(now).to_string(), author: author.unwrap_or_else(|| by.clone()), content: new.content, created_at: now };
    let space_no = caller.space_no;
    let comment = st
        .store
        .write(move |c| {
            let a = found(c, space_no, &key)?;
            let count: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM alert_comments WHERE alert_id = ?1")
                .and_then(|mut s| s.query_row([&a.id], |r| r.get(0)))
                .map_err(StoreError::from)?;
            if count >= MAX_COMMENTS_PER_ALERT {
                return Err(ApiError::conflict(format!("alert {} has {count} comments, the most one alert takes", a.short_id)));
            }
            let at = to_micros(now);
            c.prepare_cached("INSERT INTO alert_comments (id, alert_id, author, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut s| s.execute(params![comment.id, a.id, comment.author, comment.content, at]))
                .map_err(StoreError::from)?;
            history(c, &a.id, at, &by, "comment", None, Some(&comment.id), None)?;
            Ok::<_, ApiError>(comment)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_an_id_or_a_short_id() {
        assert_eq!(alert_ref("al0o1il2zz").expect("short"), "AL001112ZZ", "any case; O, I and L read as 0, 1 and 1");
        assert_eq!(alert_ref("0190A3C1-0000-7000-8000-000000000099").expect("uuid"), "0190a3c1-0000-7000-8000-000000000099");
        for bad in ["AL123", "ALUUUUUUUU", "nothing", "ÀL12345678"] {
            assert_eq!(alert_ref(bad).expect_err(bad).status, StatusCode::NOT_FOUND);
        }
    }
}
