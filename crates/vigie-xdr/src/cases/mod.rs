//! Cases: title, description, severity, priority, status (open → in_progress → closed, or open
//! → closed; a closed case is read-only), assignee, tags, attached alerts and events, tasks,
//! comments and a timeline of every change; case templates (data) and the HTTP API
//! (`/api/v1/cases…` and `/api/v1/case-templates…`, scopes `cases_read` and `cases_write`).
//!
//! The write side (`cases/store.rs`) is synchronous on a `Connection` inside the caller's
//! transaction, so the responder and the playbook runner call [`create`], [`attach_alert`],
//! [`open_case_of_alert`] and [`add_task`] as the API does. The types are `cases/model.rs`;
//! templates and their rendering `cases/templates.rs`. Another space's case, alert, event or
//! template is 404 (or 422 inside a list), never 403, and never listed.
use crate::keys::{Authorized, CasesRead, CasesWrite};
use crate::people::Person;
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError, Page, bad_query, page_limit};
use vigie_core::ids::IdGen;

mod model;
mod store;
mod templates;

pub use model::{
    AlertRefs, Attached, Case, CaseAlert, CaseComment, CaseDetail, CaseListParams, CasePatch, CaseStatus, CaseTemplate, EventRefs, NewCase,
    NewCaseComment, NewTaskBody, PRIORITIES, PageParams, SEVERITIES, Task, TaskPatch, TemplateSpec, TemplateTask, TimelineEntry,
};
use model::{CASE_COLS, TASK_COLS, case_from_row, one_of, task_from_row};
pub use store::{
    CaseChanges, CaseError, MAX_CASE_ALERTS, MAX_CASE_COMMENTS, MAX_CASE_EVENTS, MAX_CASE_TASKS, MAX_COMMENT, MAX_REFS, MAX_TITLE,
    NewCaseSpec, NewTask, TaskChanges, add_comment, add_task, attach_alert, attach_alerts, attach_events, create, detach_alert,
    detach_event, find, open_case_of_alert, update, update_task,
};
pub use templates::{DEFAULT_TEMPLATES, check as check_template, render};

/// The alerts one case shows (in the order attached).
pub const SHOWN_ALERTS: i64 = 500;
/// The event ids one case shows.
pub const SHOWN_EVENTS: i64 = 1_000;
/// The comments one case shows, oldest first (the rest through `GET …/comments`).
pub const SHOWN_COMMENTS: i64 = 200;
/// The timeline entries one case shows, the newest (all through `GET …/timeline`).
pub const SHOWN_TIMELINE: i64 = 500;

/// Installs the default case templates missing from a space (`content/case_templates.json`).
pub fn install_default_templates(c: &Connection, space_no: i64, now_us: i64, ids: &IdGen) -> Result<usize, StoreError> {
    templates::install_defaults(c, space_no, now_us, ids)
}

/// Who a change through the API is recorded as.
fn by(caller: &crate::keys::Caller) -> String {
    format!("key:{}", caller.key_id)
}

fn found(c: &Connection, space_no: i64, key: &str) -> Result<Case, ApiError> {
    find(c, space_no, key)?.ok_or_else(|| ApiError::not_found("case"))
}

/// The cases of `space_no` that hold the alert `alert_id` (its id), newest first (at most 50):
/// where an alert's page links to.
pub fn cases_of_alert(c: &Connection, space_no: i64, alert_id: &str) -> Result<Vec<Case>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {CASE_COLS} FROM cases WHERE space_no = ?1 AND id IN (SELECT case_id FROM case_alerts WHERE alert_id = ?2) \
         ORDER BY created_at DESC, id DESC LIMIT 50"
    ))?;
    let rows = stmt.query_map(params![space_no, alert_id], case_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What a case (by id) holds, for a listing: (alerts attached, tasks done, tasks in all).
pub fn counts(c: &Connection, space_no: i64, case_id: &str) -> Result<(i64, i64, i64), StoreError> {
    Ok(c.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM case_alerts WHERE case_id = ?1), \
         (SELECT COUNT(*) FROM case_tasks WHERE case_id = ?1 AND done), (SELECT COUNT(*) FROM case_tasks WHERE case_id = ?1) \
         WHERE EXISTS (SELECT 1 FROM cases WHERE id = ?1 AND space_no = ?2)",
    )?
    .query_row(rusqlite::params![case_id, space_no], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()?
    .unwrap_or((0, 0, 0)))
}

/// Comments of a case (by id), oldest first, after comment `after`.
fn comments(c: &Connection, case_id: &str, after: Option<&str>, limit: i64) -> Result<Vec<CaseComment>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, author, content, created_at FROM case_comments WHERE case_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![case_id, after, limit], |r| {
        Ok(CaseComment { id: r.get(0)?, author: r.get(1)?, content: r.get(2)?, created_at: from_micros(r.get(3)?) })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Tasks of a case (by id), in the order added, after task `after`.
fn tasks(c: &Connection, case_id: &str, after: Option<&str>, limit: i64) -> Result<Vec<Task>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {TASK_COLS} FROM case_tasks WHERE case_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![case_id, after, limit], task_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TimelineEntry> {
    let detail: Option<String> = r.get(6)?;
    Ok(TimelineEntry {
        id: r.get(0)?,
        at: from_micros(r.get(1)?),
        by: r.get(2)?,
        kind: r.get(3)?,
        from: r.get(4)?,
        to: r.get(5)?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

const ENTRY_COLS: &str = "id, at, by, kind, from_value, to_value, detail";

/// A case with its alerts (and their people), events, tasks, first comments and newest timeline.
fn detail(c: &Connection, space_no: i64, case: Case, now: chrono::DateTime<chrono::Utc>) -> Result<CaseDetail, StoreError> {
    let alerts: Vec<CaseAlert> = c
        .prepare_cached(
            "SELECT a.id, a.short_id, a.title, a.severity, a.status, a.user_id, p.display_name, a.platform_id, ca.added_at \
             FROM case_alerts ca JOIN alerts a ON a.id = ca.alert_id AND a.space_no = ?2 \
             LEFT JOIN people p ON p.space_no = a.space_no AND p.user_id = a.user_id \
             WHERE ca.case_id = ?1 ORDER BY ca.added_at, a.id LIMIT ?3",
        )?
        .query_map(params![case.id, space_no, SHOWN_ALERTS], |r| {
            Ok(CaseAlert {
                id: r.get(0)?,
                short_id: r.get(1)?,
                title: r.get(2)?,
                severity: r.get(3)?,
                status: r.get(4)?,
                user_id: r.get(5)?,
                user_name: r.get(6)?,
                platform_id: r.get(7)?,
                attached_at: from_micros(r.get(8)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    let event_ids = c
        .prepare_cached("SELECT event_id FROM case_events WHERE case_id = ?1 ORDER BY added_at, event_id LIMIT ?2")?
        .query_map(params![case.id, SHOWN_EVENTS], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let timeline = c
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLS} FROM (SELECT {ENTRY_COLS} FROM case_timeline WHERE case_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id"
        ))?
        .query_map(params![case.id, SHOWN_TIMELINE], entry_from_row)?
        .collect::<Result<_, _>>()?;
    let mut people: Vec<Person> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for user in alerts.iter().filter_map(|a| a.user_id.as_deref()) {
        if seen.insert(user)
            && let Some(mut p) = crate::people::find(c, space_no, user)?
        {
            p.training_days_ago = crate::people::days_ago(p.training_date.as_deref(), now);
            people.push(p);
        }
    }
    Ok(CaseDetail {
        tasks: tasks(c, &case.id, None, MAX_CASE_TASKS)?,
        comments: comments(c, &case.id, None, SHOWN_COMMENTS)?,
        case,
        alerts,
        event_ids,
        timeline,
        people,
    })
}

/// The values of a comma-separated filter, each one of `allowed` (any case).
fn list_of(param: &str, raw: Option<&str>, allowed: &[&'static str]) -> Result<Vec<String>, ApiError> {
    crate::listing::list_of(param, raw, |v| one_of(v, allowed).map(str::to_owned), &allowed.join(", "))
}

/// Open a case: from a template (by name, rendered over `context`, or over the first alert's
/// context), or from a title; alerts and events attached at once.
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", security(("bearer" = [])), request_body = NewCase,
    responses((status = 201, body = CaseDetail), (status = 403), (status = 422)))]
pub async fn cases_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    ApiJson(new): ApiJson<NewCase>,
) -> Result<(StatusCode, Json<CaseDetail>), ApiError> {
    let (space_no, by, now, ids) = (caller.space_no, by(&caller), st.clock.now(), st.ids.clone());
    let d = st
        .store
        .write(move |c| {
            let case = create(c, &ids, space_no, new, &by, to_micros(now))?;
            Ok::<_, ApiError>(detail(c, space_no, case, now)?)
        })
        .await?;
    st.response.queued();
    Ok((StatusCode::CREATED, Json(d)))
}

/// The space's cases, newest first.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", security(("bearer" = [])), params(CaseListParams),
    responses((status = 200, body = Page<Case>), (status = 400), (status = 403)))]
pub async fn cases_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
    ApiQuery(q): ApiQuery<CaseListParams>,
) -> Result<Json<Page<Case>>, ApiError> {
    let statuses = list_of("status", q.status.as_deref(), &["open", "in_progress", "closed"])?;
    let severities = list_of("severity", q.severity.as_deref(), &SEVERITIES)?;
    let priorities = list_of("priority", q.priority.as_deref(), &PRIORITIES)?;
    let alert =
        match q.alert_id.as_deref() {
            Some(raw) => Some(crate::short_id::parse("AL", raw).ok_or_else(|| {
                vigie_core::http::bad_query("alert_id", "give an alert's id (a UUID) or its short id (AL and 8 characters)")
            })?),
            None => None,
        };
    // The alert's id first (a short id too), then the cases by case_alerts' index on alert_id.
    let alert = match alert {
        Some(key) => {
            let space_no = caller.space_no;
            let id: Option<String> = st
                .store
                .read(move |c| {
                    Ok::<_, StoreError>(
                        c.prepare_cached("SELECT id FROM alerts WHERE space_no = ?1 AND (id = ?2 OR short_id = ?2)")?
                            .query_row(params![space_no, key], |r| r.get(0))
                            .optional()?,
                    )
                })
                .await?;
            // No such alert in the space: no case holds it (an empty id matches no link).
            Some(id.unwrap_or_default())
        }
        None => None,
    };
    let page = crate::listing::Listing::of(CASE_COLS, "cases", caller.space_no)
        .any_of("status", statuses)
        .any_of("severity", severities)
        .any_of("priority", priorities)
        .when("assignee = ?", q.assignee)
        .when("EXISTS (SELECT 1 FROM json_each(cases.tags) WHERE json_each.value = ?)", q.tag)
        .when("cases.id IN (SELECT case_id FROM case_alerts WHERE alert_id = ?)", alert)
        .newest_first(&st, q.from, q.to, q.cursor.as_deref(), q.limit, case_from_row, |k| (k.created_at, &k.id))
        .await?;
    Ok(Json(page))
}

/// One case (by id or short id) with its alerts, events, tasks, comments and timeline.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id")),
    responses((status = 200, body = CaseDetail), (status = 404)))]
pub async fn cases_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
    Path(id): Path<String>,
) -> Result<Json<CaseDetail>, ApiError> {
    let (space_no, now) = (caller.space_no, st.clock.now());
    let d = st
        .store
        .read(move |c| {
            // One read transaction: the case and its parts as of one moment.
            let tx = c.unchecked_transaction().map_err(StoreError::from)?;
            let case = found(&tx, space_no, &id)?;
            let d = detail(&tx, space_no, case, now)?;
            tx.commit().map_err(StoreError::from)?;
            Ok::<_, ApiError>(d)
        })
        .await?;
    Ok(Json(d))
}

/// Change a case: title, description, severity, priority, assignee, tags, and its status along
/// the workflow (open → in_progress → closed, open → closed). A closed case is read-only: 409.
#[utoipa::path(patch, path = "/api/v1/cases/{id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id")), request_body = CasePatch,
    responses((status = 200, body = Case), (status = 404), (status = 409, description = "closed, or a status the workflow does not allow"),
        (status = 422)))]
pub async fn cases_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<CasePatch>,
) -> Result<Json<Case>, ApiError> {
    let mut errors = Vec::new();
    let mut ch = CaseChanges {
        title: patch.title.as_deref().map(|t| store::check_title("title", t, &mut errors)),
        description: patch.description.map(|d| store::check_description("description", d, &mut errors)),
        status: patch.status,
        assignee: patch.assignee.map(|a| a.map(|a| store::check_assignee("assignee", &a, &mut errors))),
        tags: patch.tags.as_deref().map(|t| store::check_tags("tags", t, &mut errors)),
        ..Default::default()
    };
    if let Some(s) = patch.severity.as_deref() {
        ch.severity = one_of(s, &SEVERITIES).or_else(|| {
            errors.push(FieldError::new("severity", "low, medium, high or critical"));
            None
        });
    }
    if let Some(p) = patch.priority.as_deref() {
        ch.priority = one_of(p, &PRIORITIES).or_else(|| {
            errors.push(FieldError::new("priority", "low, medium or high"));
            None
        });
    }
    let nothing = ch.title.is_none()
        && ch.description.is_none()
        && ch.status.is_none()
        && ch.assignee.is_none()
        && ch.tags.is_none()
        && patch.severity.is_none()
        && patch.priority.is_none();
    if nothing {
        errors.push(FieldError::new("body", "give at least one of title, description, severity, priority, status, assignee, tags"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    let case = st.store.write(move |c| Ok::<_, ApiError>(update(c, space_no, &id, ch, &by, now)?)).await?;
    Ok(Json(case))
}

fn check_refs(field: &str, refs: &[String]) -> Result<(), ApiError> {
    if refs.is_empty() || refs.len() > MAX_REFS {
        return Err(ApiError::validation(vec![FieldError::new(field, format!("1 to {MAX_REFS} ids"))]));
    }
    Ok(())
}

/// Attach alerts (ids or short ids) to a case. One already attached changes nothing; an alert
/// the space does not have refuses the request (422 naming it) and nothing is attached.
#[utoipa::path(post, path = "/api/v1/cases/{id}/alerts", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id")), request_body = AlertRefs,
    responses((status = 200, body = Attached), (status = 404), (status = 409, description = "the case is closed"), (status = 422)))]
pub async fn case_alerts_attach(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AlertRefs>,
) -> Result<Json<Attached>, ApiError> {
    check_refs("alerts", &body.alerts)?;
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    let (attached, unchanged) =
        st.store.write(move |c| Ok::<_, ApiError>(attach_alerts(c, space_no, &id, &body.alerts, &by, now)?)).await?;
    Ok(Json(Attached { attached, unchanged }))
}

/// Detach an alert from a case.
#[utoipa::path(delete, path = "/api/v1/cases/{id}/alerts/{alert_id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id"), ("alert_id" = String, Path, description = "the alert's id or short id")),
    responses((status = 204, description = "detached"), (status = 404), (status = 409, description = "the case is closed")))]
pub async fn case_alerts_detach(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path((id, alert)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    st.store.write(move |c| Ok::<_, ApiError>(detach_alert(c, space_no, &id, &alert, &by, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attach events (by event id) to a case; all or none, as for alerts.
#[utoipa::path(post, path = "/api/v1/cases/{id}/events", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id")), request_body = EventRefs,
    responses((status = 200, body = Attached), (status = 404), (status = 409, description = "the case is closed"), (status = 422)))]
pub async fn case_events_attach(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EventRefs>,
) -> Result<Json<Attached>, ApiError> {
    check_refs("events", &body.events)?;
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    let (attached, unchanged) =
        st.store.write(move |c| Ok::<_, ApiError>(attach_events(c, space_no, &id, &body.events, &by, now)?)).await?;
    Ok(Json(Attached { attached, unchanged }))
}

/// Detach an event from a case.
#[utoipa::path(delete, path = "/api/v1/cases/{id}/events/{event_id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id"), ("event_id" = String, Path, description = "the event's id")),
    responses((status = 204, description = "detached"), (status = 404), (status = 409, description = "the case is closed")))]
pub async fn case_events_detach(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path((id, event)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    st.store.write(move |c| Ok::<_, ApiError>(detach_event(c, space_no, &id, &event, &by, now)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A case's tasks, in the order added.
#[utoipa::path(get, path = "/api/v1/cases/{id}/tasks", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id"), PageParams),
    responses((status = 200, body = Page<Task>), (status = 404)))]
pub async fn case_tasks_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<Task>>, ApiError> {
    let (space_no, limit, after) = (caller.space_no, page_limit(q.limit), q.cursor);
    let rows = st
        .store
        .read(move |c| {
            let case = found(c, space_no, &id)?;
            Ok::<_, ApiError>(tasks(c, &case.id, after.as_deref(), limit as i64 + 1)?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id.clone())))
}

/// Add a task to a case.
#[utoipa::path(post, path = "/api/v1/cases/{id}/tasks", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id")), request_body = NewTaskBody,
    responses((status = 201, body = Task), (status = 404), (status = 409, description = "the case is closed"), (status = 422)))]
pub async fn case_tasks_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTaskBody>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let (space_no, by, now, ids) = (caller.space_no, by(&caller), to_micros(st.clock.now()), st.ids.clone());
    let t = NewTask { title: body.title, description: body.description, assignee: body.assignee, due_at_us: body.due_at.map(to_micros) };
    let task = st.store.write(move |c| Ok::<_, ApiError>(add_task(c, &ids, space_no, &id, t, &by, now)?)).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// Change a task: title, description, assignee, due date, done.
#[utoipa::path(patch, path = "/api/v1/cases/{id}/tasks/{task_id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id"), ("task_id" = String, Path, description = "the task's id")),
    request_body = TaskPatch,
    responses((status = 200, body = Task), (status = 404), (status = 409, description = "the case is closed"), (status = 422)))]
pub async fn case_tasks_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path((id, task_id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<TaskPatch>,
) -> Result<Json<Task>, ApiError> {
    let mut errors = Vec::new();
    let ch = TaskChanges {
        title: patch.title.as_deref().map(|t| store::check_title("title", t, &mut errors)),
        description: patch.description.map(|d| store::check_description("description", d, &mut errors)),
        assignee: patch.assignee.map(|a| a.map(|a| store::check_assignee("assignee", &a, &mut errors))),
        due_at_us: patch.due_at.map(|d| d.map(to_micros)),
        done: patch.done,
    };
    if ch.title.is_none() && ch.description.is_none() && ch.assignee.is_none() && ch.due_at_us.is_none() && ch.done.is_none() {
        errors.push(FieldError::new("body", "give at least one of title, description, assignee, due_at, done"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    let task = st.store.write(move |c| Ok::<_, ApiError>(update_task(c, space_no, &id, &task_id, ch, &by, now)?)).await?;
    Ok(Json(task))
}

/// A case's comments, oldest first.
#[utoipa::path(get, path = "/api/v1/cases/{id}/comments", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id"), PageParams),
    responses((status = 200, body = Page<CaseComment>), (status = 404)))]
pub async fn case_comments_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<CaseComment>>, ApiError> {
    let (space_no, limit, after) = (caller.space_no, page_limit(q.limit), q.cursor);
    let rows = st
        .store
        .read(move |c| {
            let case = found(c, space_no, &id)?;
            Ok::<_, ApiError>(comments(c, &case.id, after.as_deref(), limit as i64 + 1)?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |c| c.id.clone())))
}

/// Comment on a case.
#[utoipa::path(post, path = "/api/v1/cases/{id}/comments", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id")), request_body = NewCaseComment,
    responses((status = 201, body = CaseComment), (status = 404), (status = 409, description = "the case is closed"), (status = 422)))]
pub async fn case_comments_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewCaseComment>,
) -> Result<(StatusCode, Json<CaseComment>), ApiError> {
    let by = by(&caller);
    let mut errors = Vec::new();
    if new.content.trim().is_empty() || new.content.chars().count() > MAX_COMMENT {
        errors.push(FieldError::new("content", "1 to 10,000 characters"));
    }
    let author = new.author.map(|a| a.trim().to_owned());
    if author.as_ref().is_some_and(|a| a.is_empty() || a.chars().count() > 100) {
        errors.push(FieldError::new("author", "1 to 100 characters; leave it out to be named by your key"));
    } else if author.as_ref().is_some_and(|a| a.starts_with("key:") || a.eq_ignore_ascii_case("system") || a.starts_with("playbook:")) {
        errors.push(FieldError::new("author", "a display name; \"key:…\", \"playbook:…\" and \"system\" are reserved"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let author = author.unwrap_or_else(|| by.clone());
    let (space_no, now, ids) = (caller.space_no, to_micros(st.clock.now()), st.ids.clone());
    let comment = st.store.write(move |c| Ok::<_, ApiError>(add_comment(c, &ids, space_no, &id, &author, &new.content, &by, now)?)).await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// A case's timeline, oldest first: every change, who made it and when.
#[utoipa::path(get, path = "/api/v1/cases/{id}/timeline", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the case's id or short id"), PageParams),
    responses((status = 200, body = Page<TimelineEntry>), (status = 400), (status = 404)))]
pub async fn case_timeline(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<TimelineEntry>>, ApiError> {
    let after = match q.cursor.as_deref() {
        Some(c) => c.parse::<i64>().map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?,
        None => 0,
    };
    let (space_no, limit) = (caller.space_no, page_limit(q.limit));
    let rows = st
        .store
        .read(move |c| {
            let case = found(c, space_no, &id)?;
            let rows = c
                .prepare_cached(&format!("SELECT {ENTRY_COLS} FROM case_timeline WHERE case_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"))
                .and_then(|mut s| s.query_map(params![case.id, after, limit as i64 + 1], entry_from_row)?.collect::<Result<Vec<_>, _>>())
                .map_err(StoreError::from)?;
            Ok::<_, ApiError>(rows)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id.to_string())))
}

/// The space's case templates, by name.
#[utoipa::path(get, path = "/api/v1/case-templates", tag = "cases", security(("bearer" = [])),
    responses((status = 200, body = Vec<CaseTemplate>), (status = 403)))]
pub async fn case_templates_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
) -> Result<Json<Vec<CaseTemplate>>, ApiError> {
    let space_no = caller.space_no;
    Ok(Json(st.store.read(move |c| templates::list(c, space_no)).await?))
}

/// One case template, by id or name.
#[utoipa::path(get, path = "/api/v1/case-templates/{id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the template's id or name")),
    responses((status = 200, body = CaseTemplate), (status = 404)))]
pub async fn case_templates_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesRead>,
    Path(id): Path<String>,
) -> Result<Json<CaseTemplate>, ApiError> {
    let space_no = caller.space_no;
    let t = st.store.read(move |c| templates::find(c, space_no, &id)).await?;
    Ok(Json(t.ok_or_else(|| ApiError::not_found("case template"))?))
}

/// Add a case template. Its templates are checked: a syntax error is refused with its line and
/// column.
#[utoipa::path(post, path = "/api/v1/case-templates", tag = "cases", security(("bearer" = [])), request_body = TemplateSpec,
    responses((status = 201, body = CaseTemplate), (status = 409, description = "a template of that name exists"), (status = 422)))]
pub async fn case_templates_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> Result<(StatusCode, Json<CaseTemplate>), ApiError> {
    let t = templates::check_spec(&spec).map_err(ApiError::validation)?;
    let (space_no, by, now) = (caller.space_no, by(&caller), st.clock.now());
    let id = st.ids.at(now).to_string();
    let t = st
        .store
        .write(move |c| {
            templates::insert(c, space_no, &id, &t, None, &by, to_micros(now))?;
            templates::find(c, space_no, &id)?.ok_or(StoreError::NotFound)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Replace a case template (by id or name). Cases already made from it do not change.
#[utoipa::path(put, path = "/api/v1/case-templates/{id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the template's id or name")), request_body = TemplateSpec,
    responses((status = 200, body = CaseTemplate), (status = 404), (status = 409), (status = 422)))]
pub async fn case_templates_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> Result<Json<CaseTemplate>, ApiError> {
    let t = templates::check_spec(&spec).map_err(ApiError::validation)?;
    let (space_no, by, now) = (caller.space_no, by(&caller), to_micros(st.clock.now()));
    let t = st
        .store
        .write(move |c| {
            let old = templates::find(c, space_no, &id)?.ok_or_else(|| ApiError::not_found("case template"))?;
            templates::update(c, space_no, &old.id, &t, &by, now)?;
            Ok::<_, ApiError>(templates::find(c, space_no, &old.id)?.ok_or(StoreError::NotFound)?)
        })
        .await?;
    Ok(Json(t))
}

/// Delete a case template (by id or name). Cases made from it keep what it rendered.
#[utoipa::path(delete, path = "/api/v1/case-templates/{id}", tag = "cases", security(("bearer" = [])),
    params(("id" = String, Path, description = "the template's id or name")),
    responses((status = 204, description = "deleted"), (status = 404)))]
pub async fn case_templates_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<CasesWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let space_no = caller.space_no;
    let n = st
        .store
        .write(move |c| {
            // The id first, then the name: one template at most, even when one is named like
            // another's id.
            let Some(t) = templates::find(c, space_no, &id)? else { return Ok::<_, StoreError>(0) };
            Ok(c.execute("DELETE FROM case_templates WHERE space_no = ?1 AND id = ?2", params![space_no, t.id])?)
        })
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("case template"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The case routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(cases_create, cases_list))
        .routes(routes!(cases_get, cases_update))
        .routes(routes!(case_alerts_attach))
        .routes(routes!(case_alerts_detach))
        .routes(routes!(case_events_attach))
        .routes(routes!(case_events_detach))
        .routes(routes!(case_tasks_list, case_tasks_create))
        .routes(routes!(case_tasks_update))
        .routes(routes!(case_comments_list, case_comments_create))
        .routes(routes!(case_timeline))
        .routes(routes!(case_templates_list, case_templates_create))
        .routes(routes!(case_templates_get, case_templates_update, case_templates_delete))
}
