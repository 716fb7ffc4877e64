//! Console pages: playbooks — the list (trigger, enabled, runs), a playbook's YAML editor with
//! its runs and the dry-run button, a new playbook, and a run with each step's result.
//!
//! Reads go through the playbook API's handlers (same scopes, same space); the editor, the
//! enable switch, Run now, Replay and Cancel send their changes to the JSON API. The dry run and
//! Validate post JSON to small page routes that call the same handlers and answer HTML.
use super::{Console, PageError, PageResult};
use crate::keys::{AlertsRead, Authorized, PlaybooksRead, PlaybooksWrite, Scope};
use crate::playbooks::{self as api, PlaybookListParams, RunRequest, RunView, StepView, TestRequest, TriggerSpec};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError};
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/playbooks", get(list))
        .route("/playbooks/new", get(new_page))
        .route("/playbooks/validate", post(validate))
        .route("/playbooks/{id}", get(detail))
        .route("/playbooks/{id}/dry-run", post(dry_run))
        .route("/playbooks/{id}/runs/{run}", get(run_page))
}

/// Runs counted per playbook on the list (more shows as "1000+").
const RUNS_COUNTED: i64 = 1_000;
/// Runs per page of a playbook's run list.
const RUNS_PER_PAGE: u32 = 20;

/// The API error a page route answers a script with (JSON, so the form shows it by its fields).
fn api_error(e: PageError) -> ApiError {
    let PageError::Api(e) = e;
    e
}

/// A scope check for a fragment route: the `Authorized` value, or the API's 403.
fn authorized<S: crate::keys::NeedsScope>(console: &Console) -> Result<Authorized<S>, ApiError> {
    console.authorized::<S>().map_err(api_error)
}

/// A trigger's filters in a sentence.
fn trigger_summary(kind: &str, spec: &Value) -> String {
    let spec: TriggerSpec = serde_json::from_value(spec.clone()).unwrap_or_default();
    let list = |v: &[String]| v.join(", ");
    match kind {
        "alert_created" => {
            let mut s = "An alert is raised".to_owned();
            if !spec.rules.is_empty() {
                s.push_str(&format!(" by {}", list(&spec.rules)));
            }
            if !spec.severities.is_empty() {
                s.push_str(&format!(" (severity {})", list(&spec.severities)));
            }
            s
        }
        "alert_status_changed" => {
            let mut s = "An alert's status changes".to_owned();
            if !spec.to.is_empty() {
                s.push_str(&format!(" to {}", list(&spec.to)));
            }
            if !spec.rules.is_empty() {
                s.push_str(&format!(" (rules {})", list(&spec.rules)));
            }
            s
        }
        "case_created" => "A case is opened".to_owned(),
        "event" => format!("An event matches {}", spec.query.unwrap_or_default()),
        "schedule" => format!("On schedule {} (UTC)", spec.cron.unwrap_or_default()),
        "manual" => "By hand (Run now, or the API)".to_owned(),
        other => other.to_owned(),
    }
}

/// Where a playbook comes from, for people.
fn origin_label(origin: &str) -> String {
    match origin.strip_prefix("file:") {
        Some(f) => format!("file {f}"),
        None if origin == "default" => "default content".to_owned(),
        None => "API".to_owned(),
    }
}

/// A duration for people: `850 ms`, `4.2 s`, `3 min 5 s`.
fn duration_text(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", ms.round() as i64)
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as i64;
        format!("{} min {} s", s / 60, s % 60)
    }
}

fn between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<String> {
    Some(duration_text((to? - from?).num_milliseconds().max(0) as f64))
}

/// JSON as people read it (indented); empty for null.
fn pretty(v: &Value) -> String {
    if v.is_null() { String::new() } else { serde_json::to_string_pretty(v).unwrap_or_default() }
}

/// What a step type does when it is carried out (a dry run says it would).
fn effect(kind: &str) -> &'static str {
    match kind {
        "create_case" => "open a case",
        "update_alert" => "change the alert (status, comment or assignee)",
        "notify" => "send a notification",
        "create_task" => "add a task to the case (and send its invitation)",
        "http_request" => "send the HTTP request",
        "add_ioc" => "record an indicator of compromise",
        _ => "run",
    }
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Deserialize, Default)]
struct ListQuery {
    enabled: Option<String>,
    cursor: Option<String>,
}

struct PlaybookRow {
    id: String,
    name: String,
    description: String,
    trigger: String,
    enabled: bool,
    origin: String,
    file: bool,
    runs: String,
    last_status: Option<String>,
    last_at: Option<Time>,
    last_id: Option<String>,
}

#[derive(Template)]
#[template(path = "playbooks.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<PlaybookRow>,
    can_write: bool,
    enabled: String,
    filtered: bool,
    next: Option<String>,
}

async fn list(State(st): State<XdrState>, console: Console, Query(q): Query<ListQuery>) -> PageResult {
    let auth = console.authorized::<PlaybooksRead>()?;
    let enabled = match q.enabled.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let params = PlaybookListParams { enabled, trigger_type: None, limit: Some(50), cursor: q.cursor.clone().filter(|c| !c.is_empty()) };
    let page = api::playbooks_list(State(st.clone()), auth, ApiQuery(params)).await?.0;
    let ids = page.items.iter().map(|p| p.id.clone()).collect();
    let mut runs = api::run_summaries(&st, console.caller.space_no, ids, RUNS_COUNTED).await?;
    let rows = page
        .items
        .into_iter()
        .map(|p| {
            let (n, last) = runs.remove(&p.id).unwrap_or((0, None));
            PlaybookRow {
                trigger: trigger_summary(&p.trigger_type, &p.trigger),
                file: p.origin.starts_with("file:"),
                origin: origin_label(&p.origin),
                runs: if n >= RUNS_COUNTED { format!("{RUNS_COUNTED}+") } else { n.to_string() },
                last_status: last.as_ref().map(|r| r.status.clone()),
                last_at: last.as_ref().map(|r| Time(r.started_at.unwrap_or(r.queued_at))),
                last_id: last.map(|r| r.id),
                id: p.id,
                name: p.name,
                description: p.description,
                enabled: p.enabled,
            }
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        let mut url = format!("/playbooks?cursor={}", vigie_web::form::encode(&c));
        if let Some(e) = enabled {
            url.push_str(&format!("&enabled={e}"));
        }
        url
    });
    let shell = console.shell("Playbooks", "/playbooks");
    Ok(vigie_web::page(
        StatusCode::OK,
        &ListPage {
            shell,
            rows,
            can_write: console.can(Scope::PlaybooksWrite),
            enabled: q.enabled.unwrap_or_default(),
            filtered: enabled.is_some() || q.cursor.is_some(),
            next,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// A new playbook

/// What the editor of a new playbook starts with: a manual playbook that compiles.
const STARTER: &str = r#"name: My playbook
description: What it is for.
trigger:
  type: manual
steps:
  - id: facts
    type: extract
    set:
      note: "started by hand"
"#;

#[derive(Template)]
#[template(path = "playbooks_new.html")]
struct NewPage {
    shell: Shell,
    starter: &'static str,
}

async fn new_page(console: Console) -> PageResult {
    console.authorized::<PlaybooksWrite>()?;
    let shell = console.shell("New playbook", "/playbooks");
    Ok(vigie_web::page(StatusCode::OK, &NewPage { shell, starter: STARTER }))
}

// ---------------------------------------------------------------------------------------------
// Validate (a fragment)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceForm {
    source: String,
    /// The editor's other fields, ignored here.
    #[serde(default)]
    #[allow(dead_code)]
    enabled: Option<Value>,
}

struct StepLine {
    id: String,
    kind: String,
}

#[derive(Template)]
#[template(path = "playbooks_validated.html")]
struct Validated {
    name: String,
    trigger: String,
    steps: Vec<StepLine>,
}

/// Compiles the editor's YAML (nothing saved): a summary, or the API's 422 with each problem's
/// path, line and column.
async fn validate(console: Console, ApiJson(form): ApiJson<SourceForm>) -> Result<Response, ApiError> {
    let auth = authorized::<PlaybooksRead>(&console)?;
    let compiled = api::playbooks_validate(auth, ApiJson(api::NewPlaybook { source: form.source, enabled: false })).await?.0;
    let trigger = &compiled["trigger"];
    let kind = trigger["type"].as_str().unwrap_or_default();
    let steps = compiled["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| StepLine {
                    id: s["id"].as_str().unwrap_or_default().to_owned(),
                    kind: s["type"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let spec = serde_json::to_value(compiled_spec(trigger)).unwrap_or(Value::Null);
    Ok(vigie_web::fragment(&Validated {
        name: compiled["name"].as_str().unwrap_or_default().to_owned(),
        trigger: trigger_summary(kind, &spec),
        steps,
    }))
}

/// The filters of a compiled trigger (as `definition.trigger` shows them), as stored.
fn compiled_spec(t: &Value) -> TriggerSpec {
    let strings = |k: &str| -> Vec<String> {
        match &t[k] {
            Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    TriggerSpec {
        rules: strings("rules"),
        severities: strings("severities"),
        to: strings("to"),
        query: t["query"].as_str().map(str::to_owned),
        cron: t["cron"].as_str().map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------------------------
// A playbook: editor, runs, dry run

#[derive(Deserialize, Default)]
struct DetailQuery {
    cursor: Option<String>,
}

struct RunRow {
    id: String,
    status: String,
    trigger_type: String,
    started: Option<Time>,
    finished: Option<Time>,
    queued: Time,
    duration: Option<String>,
    steps: i64,
    error: Option<String>,
}

struct AlertChoice {
    id: String,
    label: String,
}

#[derive(Template)]
#[template(path = "playbooks_detail.html")]
struct DetailPage {
    shell: Shell,
    id: String,
    name: String,
    description: String,
    trigger: String,
    manual: bool,
    enabled: bool,
    version: i64,
    origin: String,
    file: Option<String>,
    source: String,
    updated: Option<Time>,
    updated_by: String,
    can_write: bool,
    editable: bool,
    can_dry_run: bool,
    alerts: Vec<AlertChoice>,
    runs: Vec<RunRow>,
    next: Option<String>,
    older: bool,
}

async fn detail(State(st): State<XdrState>, console: Console, Path(id): Path<String>, Query(q): Query<DetailQuery>) -> PageResult {
    let auth = console.authorized::<PlaybooksRead>()?;
    let pb = api::playbooks_get(State(st.clone()), auth.clone(), Path(id.clone())).await?.0;
    let s = |k: &str| pb[k].as_str().unwrap_or_default().to_owned();
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let params = PlaybookListParams { enabled: None, trigger_type: None, limit: Some(RUNS_PER_PAGE), cursor: cursor.clone() };
    let page = api::playbook_runs_list(State(st.clone()), auth, Path(id.clone()), ApiQuery(params)).await?.0;
    let steps = api::step_counts(&st, console.caller.space_no, page.items.iter().map(|r| r.id.clone()).collect()).await?;
    let runs = page.items.into_iter().map(|r| run_row(r, &steps)).collect();
    let next = page.next_cursor.map(|c| format!("/playbooks/{}?cursor={}#runs", vigie_web::form::encode(&id), vigie_web::form::encode(&c)));
    let can_write = console.can(Scope::PlaybooksWrite);
    let can_dry_run = can_write && console.can(Scope::EventsRead);
    let alerts = if can_dry_run && console.can(Scope::AlertsRead) { recent_alerts(&st, &console).await? } else { Vec::new() };
    let origin = s("origin");
    let file = origin.strip_prefix("file:").map(str::to_owned);
    let trigger_type = s("trigger_type");
    let updated = pb["updated_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| Time(t.with_timezone(&Utc)));
    let shell = console.shell(s("name"), "/playbooks");
    Ok(vigie_web::page(
        StatusCode::OK,
        &DetailPage {
            shell,
            name: s("name"),
            description: s("description"),
            trigger: trigger_summary(&trigger_type, &pb["trigger"]),
            manual: trigger_type == "manual",
            enabled: pb["enabled"].as_bool().unwrap_or(false),
            version: pb["version"].as_i64().unwrap_or(1),
            origin: origin_label(&origin),
            editable: can_write && file.is_none(),
            file,
            source: s("source"),
            updated,
            updated_by: s("updated_by"),
            can_write,
            can_dry_run,
            alerts,
            runs,
            next,
            older: cursor.is_some(),
            id,
        },
    ))
}

fn run_row(r: RunView, steps: &std::collections::HashMap<String, i64>) -> RunRow {
    RunRow {
        steps: steps.get(&r.id).copied().unwrap_or(0),
        duration: between(r.started_at, r.finished_at),
        started: r.started_at.map(Time),
        finished: r.finished_at.map(Time),
        queued: Time(r.queued_at),
        status: r.status,
        trigger_type: r.trigger_type,
        error: r.error,
        id: r.id,
    }
}

/// The space's latest alerts, to dry-run a playbook on one.
async fn recent_alerts(st: &XdrState, console: &Console) -> Result<Vec<AlertChoice>, PageError> {
    // Built from JSON, so filters the alert list gains later keep their defaults.
    let params: crate::alerts::AlertListParams =
        serde_json::from_value(serde_json::json!({"limit": 20})).map_err(|e| PageError::Api(ApiError::internal(e)))?;
    let page = crate::alerts::alerts_list(State(st.clone()), console.authorized::<AlertsRead>()?, ApiQuery(params)).await?.0;
    Ok(page
        .items
        .into_iter()
        .map(|a| {
            let who = a.user_name.clone().or(a.user_id.clone()).map(|u| format!(" · {u}")).unwrap_or_default();
            AlertChoice { label: format!("{} — {} ({}){who}", a.short_id, a.title, a.severity), id: a.id }
        })
        .collect())
}

/// The dry-run form: an alert (chosen or typed) or a sample event.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunForm {
    alert_id: Option<String>,
    alert_ref: Option<String>,
    event: Option<Value>,
}

struct DryStep {
    id: String,
    kind: String,
    status: String,
    branch: Option<String>,
    inputs: String,
    output: String,
    error: Option<String>,
    effect: Option<String>,
    duration: String,
}

#[derive(Template)]
#[template(path = "playbooks_dryrun.html")]
struct DryRunResult {
    status: String,
    error: Option<String>,
    on: String,
    steps: Vec<DryStep>,
}

/// Dry-runs the saved playbook on what the form names, through the API's handler (scopes
/// `playbooks_write` and `events_read`): each step's result as HTML. Nothing is changed.
async fn dry_run(
    State(st): State<XdrState>,
    console: Console,
    Path(id): Path<String>,
    ApiJson(form): ApiJson<DryRunForm>,
) -> Result<Response, ApiError> {
    let auth = authorized::<PlaybooksWrite>(&console)?;
    let typed = form.alert_ref.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let chosen = form.alert_id.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let event = form.event.filter(|e| !e.is_null());
    let given = [typed.is_some(), chosen.is_some(), event.is_some()].into_iter().filter(|g| *g).count();
    if given == 0 {
        return Err(ApiError::validation(vec![FieldError::new(
            "alert_id",
            "choose an alert, type an alert's id, or paste a sample event to run the playbook on",
        )]));
    }
    if given > 1 {
        return Err(ApiError::validation(vec![FieldError::new("alert_id", "give one thing to run on: an alert or a sample event")]));
    }
    if event.as_ref().is_some_and(|e| !e.is_object()) {
        return Err(ApiError::validation(vec![FieldError::new("event", "a sample event is a JSON object, as sent to intake")]));
    }
    let alert = typed.or(chosen);
    let on = match (&alert, &event) {
        (Some(a), _) => format!("alert {a}"),
        _ => "the sample event".to_owned(),
    };
    let req = TestRequest { run: RunRequest { alert_id: alert, event, ..Default::default() }, trigger: None, source: None };
    let answer = api::playbooks_test(State(st), auth, Path(id), ApiJson(req)).await?.0;
    let steps = answer["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                    let (kind, status) = (text("type"), text("status"));
                    DryStep {
                        effect: (status == "dry_run").then(|| format!("Not carried out: it would {} with these inputs.", effect(&kind))),
                        id: text("id"),
                        branch: s["branch"].as_str().map(str::to_owned),
                        inputs: pretty(&s["inputs"]),
                        output: pretty(&s["output"]),
                        error: s["error"].as_str().map(str::to_owned),
                        duration: duration_text(s["duration_ms"].as_f64().unwrap_or(0.0)),
                        kind,
                        status,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(vigie_web::fragment(&DryRunResult {
        status: answer["status"].as_str().unwrap_or_default().to_owned(),
        error: answer["error"].as_str().map(str::to_owned),
        on,
        steps,
    }))
}

// ---------------------------------------------------------------------------------------------
// A run

struct StepRow {
    step: String,
    kind: String,
    status: String,
    branch: Option<String>,
    inputs: String,
    output: String,
    error: Option<String>,
    attempts: i64,
    started: Time,
    duration: String,
}

impl From<StepView> for StepRow {
    fn from(s: StepView) -> StepRow {
        StepRow {
            inputs: pretty(&s.inputs),
            output: pretty(&s.output),
            started: Time(s.started_at),
            duration: duration_text(s.duration_ms),
            step: s.step,
            kind: s.kind,
            status: s.status,
            branch: s.branch,
            error: s.error,
            attempts: s.attempts,
        }
    }
}

#[derive(Template)]
#[template(path = "playbooks_run.html")]
struct RunPage {
    shell: Shell,
    playbook_id: String,
    playbook_name: String,
    run: RunRow,
    version: i64,
    by: String,
    replay_of: Option<String>,
    trigger: String,
    steps: Vec<StepRow>,
    can_write: bool,
    cancellable: bool,
}

async fn run_page(State(st): State<XdrState>, console: Console, Path((id, run_id)): Path<(String, String)>) -> PageResult {
    let auth = console.authorized::<PlaybooksRead>()?;
    let detail = api::playbook_runs_get(State(st.clone()), auth.clone(), Path(run_id)).await?.0;
    if detail.run.playbook_id != id {
        return Err(ApiError::not_found("run").into());
    }
    // The playbook may have been deleted since; its runs stay on record.
    let name = match api::playbooks_get(State(st), auth, Path(id.clone())).await {
        Ok(pb) => pb.0["name"].as_str().unwrap_or_default().to_owned(),
        Err(e) if e.status == StatusCode::NOT_FOUND => format!("deleted playbook {id}"),
        Err(e) => return Err(e.into()),
    };
    let steps: Vec<StepRow> = detail.steps.into_iter().map(StepRow::from).collect();
    let (version, by, replay_of) = (detail.run.version, detail.run.by.clone().unwrap_or_default(), detail.run.replay_of.clone());
    let cancellable = detail.run.status == "queued";
    let count = std::collections::HashMap::from([(detail.run.id.clone(), steps.len() as i64)]);
    let run = run_row(detail.run, &count);
    let shell = console.shell(format!("Run of {name}"), "/playbooks");
    Ok(vigie_web::page(
        StatusCode::OK,
        &RunPage {
            shell,
            playbook_id: id,
            playbook_name: name,
            run,
            version,
            by,
            replay_of,
            trigger: pretty(&detail.trigger),
            steps,
            can_write: console.can(Scope::PlaybooksWrite),
            cancellable,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn triggers_read_as_sentences() {
        assert_eq!(
            trigger_summary("alert_created", &json!({"rules": ["Rule 1"], "severities": ["high"]})),
            "An alert is raised by Rule 1 (severity high)"
        );
        assert_eq!(trigger_summary("schedule", &json!({"cron": "0 8 * * 1"})), "On schedule 0 8 * * 1 (UTC)");
        assert_eq!(trigger_summary("manual", &json!({})), "By hand (Run now, or the API)");
    }

    #[test]
    fn durations_read_in_the_right_unit() {
        assert_eq!(duration_text(12.4), "12 ms");
        assert_eq!(duration_text(4200.0), "4.2 s");
        assert_eq!(duration_text(185_000.0), "3 min 5 s");
    }
}
