//! Playbooks: YAML definitions compiled into graphs (`vigie-playbook`), their triggers, the
//! runner that records every run and step, replays and dry runs, and the HTTP API
//! (`/api/v1/playbooks…`, scopes `playbooks_read` and `playbooks_write`).
//!
//! A playbook is saved only when it compiles; its trigger's filters are kept beside the YAML
//! (`trigger_spec`) so the responder matches alerts and cases without compiling. A run keeps the
//! YAML it ran and its trigger, so it can be replayed (with the playbook as it is now).
use crate::keys::{Authorized, PlaybooksRead, PlaybooksWrite};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError, Page, page_limit};
use vigie_core::ids::IdGen;

mod model;
pub mod runner;
mod store;
pub mod triggers;

pub use model::{NewPlaybook, PlaybookListParams, PlaybookPatch, PlaybookView, RunDetail, RunRequest, RunView, StepView, TestRequest};
pub use store::{TriggerSpec, queue_run};

/// The default playbooks (ARCHITECTURE.md, default content 5): `(key, YAML)`.
pub const DEFAULT_PLAYBOOKS: &[(&str, &str)] = &[("default-5", include_str!("../../../../content/playbooks/ai-platform-violation.yaml"))];

/// A compiled playbook's trigger filters, as stored.
pub fn trigger_spec(t: &vigie_playbook::Trigger) -> TriggerSpec {
    use vigie_playbook::Trigger as T;
    match t {
        T::AlertCreated { rules, severities } => TriggerSpec { rules: rules.clone(), severities: severities.clone(), ..Default::default() },
        T::AlertStatusChanged { rules, to } => TriggerSpec { rules: rules.clone(), to: to.clone(), ..Default::default() },
        T::Event { query } => TriggerSpec { query: Some(query.clone()), ..Default::default() },
        T::Schedule(s) => TriggerSpec { cron: Some(s.cron.clone()), ..Default::default() },
        T::CaseCreated | T::Manual => TriggerSpec::default(),
    }
}

/// Compiles a playbook for saving: 422 listing every problem (path, line:column and sentence).
fn compiled(source: &str) -> Result<vigie_playbook::Playbook, ApiError> {
    vigie_playbook::compile(source).map_err(|errors| {
        ApiError::validation(
            errors
                .iter()
                .map(|e| {
                    let at = match (e.line, e.column) {
                        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                        _ => String::new(),
                    };
                    let path = if e.path.is_empty() { "source".to_owned() } else { format!("source.{}", e.path) };
                    FieldError::new(path, format!("{}{at}", e.message))
                })
                .collect(),
        )
    })
}

/// The next time a schedule fires after `now` (µs), for a schedule trigger.
fn next_fire(pb: &vigie_playbook::Playbook, now_us: i64) -> Option<i64> {
    match &pb.trigger {
        vigie_playbook::Trigger::Schedule(s) => s.next_after(from_micros(now_us)).map(to_micros),
        _ => None,
    }
}

/// Inserts or replaces (by name) a playbook of `space_no`; its id.
#[allow(clippy::too_many_arguments)]
fn upsert(
    c: &Connection,
    ids: &IdGen,
    space_no: i64,
    pb: &vigie_playbook::Playbook,
    source: &str,
    enabled: bool,
    origin: &str,
    builtin: Option<&str>,
    by: &str,
    now: i64,
) -> Result<String, StoreError> {
    let existing: Option<(String, String)> = c
        .prepare_cached("SELECT id, source FROM playbooks WHERE space_no = ?1 AND name = ?2")?
        .query_row(params![space_no, pb.name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let spec = serde_json::to_string(&trigger_spec(&pb.trigger))?;
    let kind = pb.trigger.kind().as_str();
    let next = next_fire(pb, now);
    let description = pb.description.clone().unwrap_or_default();
    match existing {
        Some((id, old)) => {
            c.prepare_cached(
                "UPDATE playbooks SET description = ?2, source = ?3, trigger_type = ?4, trigger_spec = ?5, enabled = ?6, \
                 version = version + (?3 != ?7), origin = ?8, next_fire_at = ?9, updated_at = ?10, updated_by = ?11 WHERE id = ?1",
            )?
            .execute(params![id, description, source, kind, spec, enabled, old, origin, next, now, by])?;
            Ok(id)
        }
        None => {
            let id = ids.at(from_micros(now)).to_string();
            c.prepare_cached(
                "INSERT INTO playbooks (id, space_no, name, description, source, trigger_type, trigger_spec, enabled, origin, builtin, \
                 next_fire_at, created_at, updated_at, created_by, updated_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?13)",
            )?
            .execute(params![id, space_no, pb.name, description, source, kind, spec, enabled, origin, builtin, next, now, by])?;
            Ok(id)
        }
    }
}

/// Installs the default playbooks missing from a space (found by their key or name), enabled
/// or not; the number installed. A default that does not compile is a bug, reported as an error.
pub fn install_defaults(c: &Connection, space_no: i64, enabled: bool, now_us: i64, ids: &IdGen) -> Result<usize, StoreError> {
    let mut installed = 0;
    for (key, yaml) in DEFAULT_PLAYBOOKS {
        let pb = vigie_playbook::compile(yaml).map_err(|e| {
            StoreError::Invalid(format!(
                "default playbook {key} does not compile: {}",
                e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ))
        })?;
        let present: bool = c
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM playbooks WHERE space_no = ?1 AND (builtin = ?2 OR name = ?3))")?
            .query_row(params![space_no, key, pb.name], |r| r.get(0))?;
        if present {
            continue;
        }
        upsert(c, ids, space_no, &pb, yaml, enabled, "default", Some(key), "system", now_us)?;
        installed += 1;
    }
    Ok(installed)
}

/// Enables (or disables) a space's default playbooks, as the demo does; the number changed.
pub async fn set_defaults_enabled(st: &XdrState, space_no: i64, enabled: bool) -> Result<usize, StoreError> {
    let now = to_micros(st.clock.now());
    st.store
        .write(move |c| {
            Ok(c.execute(
                "UPDATE playbooks SET enabled = ?2, updated_at = ?3, updated_by = 'system', next_fire_at = NULL \
                 WHERE space_no = ?1 AND builtin IS NOT NULL AND enabled != ?2",
                params![space_no, enabled, now],
            )?)
        })
        .await
}

/// Loads the playbook files of every space: `<dir>/<space name>/*.yaml` (or `.yml`), saved
/// with origin `file:<name>` and enabled (a file is there to run; the API cannot change it).
/// A file that does not compile is reported and skipped; the others load. The files loaded.
pub async fn load_files(st: &XdrState, dir: &std::path::Path) -> Result<usize, StoreError> {
    let Ok(spaces) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut loaded = 0;
    for space_dir in spaces.flatten() {
        let Ok(space_name) = space_dir.file_name().into_string() else { continue };
        if !space_dir.path().is_dir() {
            continue;
        }
        let mut files: Vec<_> = std::fs::read_dir(space_dir.path())
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml")).collect())
            .unwrap_or_default();
        files.sort();
        if files.is_empty() {
            continue;
        }
        let space = st.keys.ensure_space(&space_name).await?;
        let space_no = space_no_of(st, space.id).await?;
        for path in files {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let source = match std::fs::read_to_string(&path) {
                Ok(s) if s.len() <= vigie_playbook::MAX_YAML_BYTES => s,
                Ok(_) => {
                    tracing::warn!(file = %path.display(), "a playbook file is larger than 256 KiB; skipped");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "a playbook file could not be read; skipped");
                    continue;
                }
            };
            let pb = match vigie_playbook::compile(&source) {
                Ok(pb) => pb,
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(file = %path.display(), problem = %e, "a playbook file does not compile; skipped");
                    }
                    continue;
                }
            };
            let (ids, now, origin) = (st.ids.clone(), to_micros(st.clock.now()), format!("file:{name}"));
            st.store.write(move |c| upsert(c, &ids, space_no, &pb, &source, true, &origin, None, "file", now)).await?;
            loaded += 1;
        }
    }
    Ok(loaded)
}

async fn space_no_of(st: &XdrState, space_id: uuid::Uuid) -> Result<i64, StoreError> {
    st.store.read(move |c| Ok(c.query_row("SELECT no FROM spaces WHERE id = ?1", [space_id.to_string()], |r| r.get(0))?)).await
}

const PLAYBOOK_COLS: &str = "id, name, description, trigger_type, trigger_spec, enabled, version, origin, builtin, source, created_at, updated_at, created_by, updated_by";

fn playbook_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PlaybookView> {
    let spec: String = r.get(4)?;
    Ok(PlaybookView {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        trigger_type: r.get(3)?,
        trigger: serde_json::from_str(&spec).unwrap_or(Value::Null),
        enabled: r.get(5)?,
        version: r.get(6)?,
        origin: r.get(7)?,
        builtin: r.get(8)?,
        source: r.get(9)?,
        created_at: from_micros(r.get(10)?),
        updated_at: from_micros(r.get(11)?),
        created_by: r.get(12)?,
        updated_by: r.get(13)?,
    })
}

fn find(c: &Connection, space_no: i64, id: &str) -> Result<Option<PlaybookView>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {PLAYBOOK_COLS} FROM playbooks WHERE space_no = ?1 AND id = ?2"))?
        .query_row(params![space_no, id], playbook_from_row)
        .optional()?)
}

fn found(c: &Connection, space_no: i64, id: &str) -> Result<PlaybookView, ApiError> {
    find(c, space_no, id)?.ok_or_else(|| ApiError::not_found("playbook"))
}

/// Create a playbook from its YAML (compiled first: 422 with every problem).
#[utoipa::path(post, path = "/api/v1/playbooks", tag = "playbooks", security(("bearer" = [])), request_body = NewPlaybook,
    responses((status = 201, body = PlaybookView), (status = 409, description = "a playbook of that name exists"), (status = 422)))]
pub async fn playbooks_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    ApiJson(new): ApiJson<NewPlaybook>,
) -> Result<(StatusCode, Json<PlaybookView>), ApiError> {
    let pb = compiled(&new.source)?;
    let (ids, space_no, by, now) = (st.ids.clone(), caller.space_no, format!("key:{}", caller.key_id), to_micros(st.clock.now()));
    let view = st
        .store
        .write(move |c| {
            let taken: bool = c
                .prepare_cached("SELECT EXISTS(SELECT 1 FROM playbooks WHERE space_no = ?1 AND name = ?2)")
                .map_err(StoreError::from)?
                .query_row(params![space_no, pb.name], |r| r.get(0))
                .map_err(StoreError::from)?;
            if taken {
                return Err(ApiError::conflict(format!(
                    "a playbook named {:?} exists; change it with PATCH or choose another name",
                    pb.name
                )));
            }
            let id = upsert(c, &ids, space_no, &pb, &new.source, new.enabled, "api", None, &by, now)?;
            found(c, space_no, &id)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The space's playbooks, by name.
#[utoipa::path(get, path = "/api/v1/playbooks", tag = "playbooks", security(("bearer" = [])), params(PlaybookListParams),
    responses((status = 200, body = Page<PlaybookView>)))]
pub async fn playbooks_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksRead>,
    ApiQuery(q): ApiQuery<PlaybookListParams>,
) -> Result<Json<Page<PlaybookView>>, ApiError> {
    let (space_no, limit) = (caller.space_no, page_limit(q.limit));
    let rows = st
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PLAYBOOK_COLS} FROM playbooks WHERE space_no = ?1 AND (?2 IS NULL OR enabled = ?2) \
                 AND (?3 IS NULL OR trigger_type = ?3) AND (?4 IS NULL OR name > ?4) ORDER BY name LIMIT ?5"
            ))?;
            let rows = stmt.query_map(params![space_no, q.enabled, q.trigger_type, q.cursor, limit as i64 + 1], playbook_from_row)?;
            Ok::<_, StoreError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |p| p.name.clone())))
}

/// One playbook, with its YAML and its compiled form.
#[utoipa::path(get, path = "/api/v1/playbooks/{id}", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PlaybookView), (status = 404)))]
pub async fn playbooks_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let space_no = caller.space_no;
    let view = st.store.read(move |c| found(c, space_no, &id)).await?;
    let mut out = serde_json::to_value(&view).map_err(StoreError::from)?;
    if let Ok(pb) = vigie_playbook::compile(&view.source) {
        out["definition"] = pb.to_json();
    }
    Ok(Json(out))
}

/// Change a playbook's YAML (compiled first) or switch it on or off. Playbooks loaded from
/// files change by editing their file.
#[utoipa::path(patch, path = "/api/v1/playbooks/{id}", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = PlaybookPatch, responses((status = 200, body = PlaybookView), (status = 404), (status = 409), (status = 422)))]
pub async fn playbooks_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<PlaybookPatch>,
) -> Result<Json<PlaybookView>, ApiError> {
    if patch.source.is_none() && patch.enabled.is_none() {
        return Err(ApiError::validation(vec![FieldError::new("body", "give source or enabled")]));
    }
    let pb = patch.source.as_deref().map(compiled).transpose()?;
    let (space_no, by, now) = (caller.space_no, format!("key:{}", caller.key_id), to_micros(st.clock.now()));
    let view = st
        .store
        .write(move |c| {
            let cur = found(c, space_no, &id)?;
            if cur.origin.starts_with("file:") {
                return Err(ApiError::conflict(format!(
                    "playbook {:?} comes from the file {}; edit the file (it loads at start)",
                    cur.name,
                    &cur.origin[5..]
                )));
            }
            if let (Some(pb), Some(source)) = (&pb, &patch.source) {
                if pb.name != cur.name {
                    let taken: bool = c
                        .prepare_cached("SELECT EXISTS(SELECT 1 FROM playbooks WHERE space_no = ?1 AND name = ?2)")
                        .map_err(StoreError::from)?
                        .query_row(params![space_no, pb.name], |r| r.get(0))
                        .map_err(StoreError::from)?;
                    if taken {
                        return Err(ApiError::conflict(format!("a playbook named {:?} exists", pb.name)));
                    }
                    c.execute("UPDATE playbooks SET name = ?2 WHERE id = ?1", params![cur.id, pb.name]).map_err(StoreError::from)?;
                }
                upsert(
                    c,
                    &IdGen::default(),
                    space_no,
                    pb,
                    source,
                    patch.enabled.unwrap_or(cur.enabled),
                    &cur.origin,
                    cur.builtin.as_deref(),
                    &by,
                    now,
                )?;
            } else if let Some(on) = patch.enabled {
                // Switched on, a schedule counts from now (not from a time passed while off).
                c.execute(
                    "UPDATE playbooks SET enabled = ?2, updated_at = ?3, updated_by = ?4, \
                     next_fire_at = CASE WHEN ?2 AND NOT enabled THEN NULL ELSE next_fire_at END WHERE id = ?1",
                    params![cur.id, on, now, by],
                )
                .map_err(StoreError::from)?;
            }
            found(c, space_no, &cur.id)
        })
        .await?;
    Ok(Json(view))
}

/// Delete a playbook (its runs stay on record).
#[utoipa::path(delete, path = "/api/v1/playbooks/{id}", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn playbooks_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let space_no = caller.space_no;
    st.store
        .write(move |c| {
            let cur = found(c, space_no, &id)?;
            if let Some(file) = cur.origin.strip_prefix("file:") {
                return Err(ApiError::conflict(format!(
                    "playbook {:?} comes from the file {file}; remove the file (it would load again at the next start)",
                    cur.name
                )));
            }
            c.execute("DELETE FROM playbooks WHERE id = ?1 AND space_no = ?2", params![cur.id, space_no]).map_err(StoreError::from)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a playbook's YAML without saving it: its compiled form, or 422 with every problem.
#[utoipa::path(post, path = "/api/v1/playbooks/validate", tag = "playbooks", security(("bearer" = [])), request_body = NewPlaybook,
    responses((status = 200, description = "the compiled playbook"), (status = 422)))]
pub async fn playbooks_validate(
    Authorized(_caller, _): Authorized<PlaybooksRead>,
    ApiJson(new): ApiJson<NewPlaybook>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(compiled(&new.source)?.to_json()))
}

/// What a run's templates see as `trigger`, from a request: an alert's context, a case's, a
/// sample event (as an alert of it would show), or `input` as given.
async fn trigger_of(st: &XdrState, space_no: i64, req: &RunRequest, dry_run: bool) -> Result<Value, ApiError> {
    let now = to_micros(st.clock.now());
    let (alert_id, case_id, event, input) = (req.alert_id.clone(), req.case_id.clone(), req.event.clone(), req.input.clone());
    let mut trigger = st
        .store
        .read(move |c| {
            if let Some(a) = alert_id {
                let ctx = crate::response::alert_context(c, space_no, &a, now)?;
                if ctx.is_null() {
                    return Err(ApiError::not_found("alert"));
                }
                return Ok(ctx);
            }
            if let Some(k) = case_id {
                return crate::response::case_context(c, space_no, &k, now)?.ok_or_else(|| ApiError::not_found("case"));
            }
            if let Some(e) = event {
                return Ok(sample_context(c, space_no, e, now, dry_run)?);
            }
            Ok(json!({}))
        })
        .await?;
    if let Some(input) = input {
        trigger["input"] = input;
    }
    Ok(trigger)
}

/// The context of an alert a sample event would raise: the event normalised as the log shows
/// it, an alert made of its person and platform, and the person.
fn sample_context(c: &Connection, space_no: i64, event: Value, now: i64, dry_run: bool) -> Result<Value, StoreError> {
    let body = serde_json::to_string(&event)?;
    let stored = crate::log::Stored {
        id: "sample".into(),
        received_at: now,
        timestamp: now,
        event_type: event.get("event_type").or_else(|| event.get("type")).and_then(Value::as_str).map(str::to_owned),
        source: event.get("source").and_then(Value::as_str).unwrap_or("noxys").to_owned(),
        body,
    };
    let shown = crate::log::shown(&stored, "sample");
    let s = |k: &str| shown.get(k).and_then(Value::as_str).map(str::to_owned);
    let person = match s("user_id") {
        Some(u) => crate::response::person(c, space_no, &u, now)?,
        None => Value::Null,
    };
    // A real run on a sample has no alert to attach or change: its id is null.
    let alert = json!({
        "id": if dry_run { json!("sample") } else { Value::Null }, "short_id": "ALSAMPLE0", "title": "Sample alert", "severity": "high", "urgency": 70, "status": "pending",
        "rule_id": "sample", "rule_name": "Sample", "user_id": s("user_id"), "user_name": person.get("display_name"),
        "platform_id": s("platform_id"), "occurrences": 1, "event_ids": ["sample"], "details": {},
    });
    Ok(json!({"alert": alert, "rule": {"id": "sample", "name": "Sample", "severity": "high"}, "event": shown, "person": person}))
}

/// Dry-run a playbook on a sample: what each step would do. Read-only steps (extract,
/// query_events, condition) run for real; the others are shown with their rendered inputs and
/// not carried out. Nothing is changed or recorded.
#[utoipa::path(post, path = "/api/v1/playbooks/{id}/test", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = TestRequest, responses((status = 200, description = "the dry run's steps"), (status = 404), (status = 422)))]
pub async fn playbooks_test(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TestRequest>,
) -> Result<Json<Value>, ApiError> {
    // A dry run answers with what its read-only steps found (events, people): the key must be
    // allowed to read events itself.
    caller.require(crate::keys::Scope::EventsRead)?;
    let space_no = caller.space_no;
    let view = st.store.read(move |c| found(c, space_no, &id)).await?;
    let source = req.source.clone().unwrap_or(view.source);
    let pb = compiled(&source)?;
    let trigger = match &req.trigger {
        Some(t) => t.clone(),
        None => trigger_of(&st, space_no, &req.run, true).await?,
    };
    let mut actions = runner::XdrActions::new(&st, space_no, None).await?;
    let opts = vigie_playbook::RunOptions { run_id: "dry-run".into(), dry_run: true, now: st.clock.now() };
    let report = vigie_playbook::run(&pb, trigger.clone(), &mut actions, opts).await;
    let (status, error) = runner::status_of(&report);
    Ok(Json(json!({"dry_run": true, "status": status, "error": error, "trigger": trigger, "steps": actions.records})))
}

/// Run a playbook now (any trigger type), on an alert, a case, a sample event or an input.
#[utoipa::path(post, path = "/api/v1/playbooks/{id}/run", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = RunRequest, responses((status = 202, body = RunView), (status = 404)))]
pub async fn playbooks_run(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let space_no = caller.space_no;
    let trigger = trigger_of(&st, space_no, &req, false).await?;
    let (ids, by, now) = (st.ids.clone(), format!("key:{}", caller.key_id), to_micros(st.clock.now()));
    let run = st
        .store
        .write(move |c| {
            let pb = found(c, space_no, &id)?;
            let run_id = queue_run(c, &ids, space_no, &pb.id, "manual", &trigger, None, None, &by, now)?
                .ok_or_else(|| ApiError::not_found("playbook"))?;
            model::run_view(c, space_no, &run_id)?.ok_or_else(|| ApiError::not_found("run"))
        })
        .await?;
    st.response.runs_queued.notify_one();
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// A playbook's runs, newest first.
#[utoipa::path(get, path = "/api/v1/playbooks/{id}/runs", tag = "playbooks", security(("bearer" = [])),
    params(("id" = String, Path), PlaybookListParams), responses((status = 200, body = Page<RunView>), (status = 404)))]
pub async fn playbook_runs_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PlaybookListParams>,
) -> Result<Json<Page<RunView>>, ApiError> {
    let (space_no, limit) = (caller.space_no, page_limit(q.limit));
    let rows = st
        .store
        .read(move |c| {
            found(c, space_no, &id)?;
            Ok::<_, ApiError>(model::runs(c, space_no, &id, q.cursor.as_deref(), limit as i64 + 1)?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| r.id.clone())))
}

/// One run with every step: status, inputs, outputs, error, attempts, duration.
#[utoipa::path(get, path = "/api/v1/playbook-runs/{id}", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RunDetail), (status = 404)))]
pub async fn playbook_runs_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksRead>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let space_no = caller.space_no;
    let detail = st.store.read(move |c| model::run_detail(c, space_no, &id)?.ok_or_else(|| ApiError::not_found("run"))).await?;
    Ok(Json(detail))
}

/// Run again what a run ran on (its trigger), with the playbook as it is now.
#[utoipa::path(post, path = "/api/v1/playbook-runs/{id}/replay", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, body = RunView), (status = 404), (status = 409, description = "the playbook was deleted")))]
pub async fn playbook_runs_replay(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let (ids, space_no, by, now) = (st.ids.clone(), caller.space_no, format!("key:{}", caller.key_id), to_micros(st.clock.now()));
    let run = st
        .store
        .write(move |c| {
            let old = model::run_detail(c, space_no, &id)?.ok_or_else(|| ApiError::not_found("run"))?;
            let new_id =
                queue_run(c, &ids, space_no, &old.run.playbook_id, &old.run.trigger_type, &old.trigger, None, Some(&old.run.id), &by, now)?
                    .ok_or_else(|| ApiError::conflict("the run's playbook was deleted; there is nothing to replay it with"))?;
            model::run_view(c, space_no, &new_id)?.ok_or_else(|| ApiError::not_found("run"))
        })
        .await?;
    st.response.runs_queued.notify_one();
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Cancel a run that has not started (a running one finishes its step list; disable the
/// playbook to stop what it has queued).
#[utoipa::path(post, path = "/api/v1/playbook-runs/{id}/cancel", tag = "playbooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404), (status = 409, description = "the run has started")))]
pub async fn playbook_runs_cancel(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<PlaybooksWrite>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let (space_no, by, now) = (caller.space_no, format!("key:{}", caller.key_id), to_micros(st.clock.now()));
    let run = st
        .store
        .write(move |c| {
            let run = model::run_view(c, space_no, &id)?.ok_or_else(|| ApiError::not_found("run"))?;
            if run.status != "queued" {
                return Err(ApiError::conflict(format!("run {} is {}: only a queued run can be cancelled", run.id, run.status)));
            }
            c.execute(
                "UPDATE playbook_runs SET status = 'cancelled', finished_at = ?2, error = ?3 WHERE id = ?1 AND status = 'queued'",
                params![run.id, now, format!("cancelled by {by}")],
            )
            .map_err(StoreError::from)?;
            model::run_view(c, space_no, &run.id)?.ok_or_else(|| ApiError::not_found("run"))
        })
        .await?;
    Ok(Json(run))
}

/// For the console's list: per playbook of `space_no`, how many runs it has (counted up to
/// `cap`, so a long history costs no more than that) and its latest run.
pub(crate) async fn run_summaries(
    st: &XdrState,
    space_no: i64,
    playbook_ids: Vec<String>,
    cap: i64,
) -> Result<std::collections::HashMap<String, (i64, Option<RunView>)>, StoreError> {
    st.store
        .read(move |c| {
            let mut out = std::collections::HashMap::new();
            for id in playbook_ids {
                // Counted on the (playbook_id, id) index alone, for a playbook of the space.
                let n: i64 = c
                    .prepare_cached(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM playbook_runs WHERE playbook_id = ?1 LIMIT ?3) \
                         WHERE EXISTS (SELECT 1 FROM playbooks WHERE id = ?1 AND space_no = ?2)",
                    )?
                    .query_row(params![id, space_no, cap], |r| r.get(0))?;
                let last = model::runs(c, space_no, &id, None, 1)?.into_iter().next();
                out.insert(id, (n, last));
            }
            Ok(out)
        })
        .await
}

/// For the console's run list: how many steps each run of `space_no` recorded.
pub(crate) async fn step_counts(
    st: &XdrState,
    space_no: i64,
    run_ids: Vec<String>,
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    st.store
        .read(move |c| {
            let mut out = std::collections::HashMap::new();
            for id in run_ids {
                let n: i64 = c
                    .prepare_cached(
                        "SELECT COUNT(*) FROM playbook_steps s JOIN playbook_runs r ON r.id = s.run_id WHERE s.run_id = ?1 AND r.space_no = ?2",
                    )?
                    .query_row(params![id, space_no], |r| r.get(0))?;
                out.insert(id, n);
            }
            Ok(out)
        })
        .await
}

/// The playbook routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(playbooks_create, playbooks_list))
        .routes(routes!(playbooks_validate))
        .routes(routes!(playbooks_get, playbooks_update, playbooks_delete))
        .routes(routes!(playbooks_test))
        .routes(routes!(playbooks_run))
        .routes(routes!(playbook_runs_list))
        .routes(routes!(playbook_runs_get))
        .routes(routes!(playbook_runs_replay))
        .routes(routes!(playbook_runs_cancel))
}
