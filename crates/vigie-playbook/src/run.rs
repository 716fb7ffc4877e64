//! The runner: walks a compiled playbook from its first step, rendering each step's inputs over
//! the trigger and earlier outputs, calling the [`Actions`] with a timeout and retries, and
//! recording every step. A dry run carries out only the read-only steps.
use crate::MAX_QUERY_LIMIT;
use crate::actions::{ActionError, Actions, AddIoc, CreateCase, CreateTask, HttpRequest, Notify, QueryEvents, UpdateAlert};
use crate::checks::{ALERT_STATUSES, IOC_TYPES, METHODS};
use crate::compile::{Playbook, Step};
use crate::graph::Next;
use crate::model::{OnError, StepKind};
use crate::template::{self};
use crate::time::{add, parse_due, parse_duration, parse_time, rfc3339};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How to run: the run's id, whether it is a dry run, and the time it starts (templates see it
/// as `now`; durations like `14d` count from it).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id (`run.id`).
    pub run_id: String,
    /// Only read-only steps are carried out; the others are recorded with what they would do.
    pub dry_run: bool,
    /// The run's start.
    pub now: DateTime<Utc>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and its action succeeded.
    Succeeded,
    /// It failed (see the record's `error`).
    Failed,
    /// A dry run: the action was not called; `inputs` say what it would have done.
    DryRun,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// It reached the end.
    Succeeded,
    /// A step failed with `on_error: fail`.
    Failed,
}

/// The record of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// The step's id.
    pub id: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: StepKind,
    /// How it ended.
    pub status: StepStatus,
    /// The rendered arguments (HTTP header values other than a few harmless ones redacted).
    pub inputs: Value,
    /// What later steps read as `steps.<id>` (`{"error": …}` after a failure with
    /// `on_error: continue`; null after a failure that stopped the run).
    pub output: Value,
    /// Why it failed.
    pub error: Option<String>,
    /// Calls made to the action (0 when rendering failed, for a dry run, or with no action).
    pub attempts: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// For a condition: `then` or `else`.
    pub branch: Option<String>,
}

/// The record of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// The playbook's name.
    pub playbook: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// How it ended.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// The steps run, in order.
    pub steps: Vec<StepRecord>,
}

/// Header names whose values are recorded as they are; all others may carry secrets.
const HARMLESS_HEADERS: &[&str] = &["accept", "content-type", "content-language", "user-agent"];
const DEFAULT_QUERY_RANGE: Duration = Duration::from_secs(86_400);
const DEFAULT_QUERY_LIMIT: u64 = 100;

/// What one step asks for, converted from its rendered inputs.
enum Request {
    /// `person`: None when the step has no `person` key, Some(None) when it rendered empty.
    Extract {
        set: Value,
        person: Option<Option<String>>,
    },
    QueryEvents(QueryEvents),
    CreateCase(CreateCase),
    UpdateAlert(UpdateAlert),
    Notify(Notify),
    CreateTask(CreateTask),
    HttpRequest(HttpRequest),
    AddIoc(AddIoc),
}

/// The outcome of one step before it is recorded.
struct Outcome {
    status: StepStatus,
    inputs: Value,
    result: Result<Value, String>,
    attempts: u32,
    branch: Option<bool>,
}

/// Runs a playbook over a trigger object (the shape its trigger type gives, e.g. the alert
/// context). Never panics on data; a step failure is recorded, not returned.
pub async fn run<A: Actions>(pb: &Playbook, trigger: Value, actions: &mut A, opts: RunOptions) -> RunReport {
    let start = Instant::now();
    let now = rfc3339(opts.now);
    let base = [
        ("trigger", minijinja::Value::from_serialize(&trigger)),
        ("vars", minijinja::Value::from_serialize(&pb.vars)),
        (
            "run",
            minijinja::Value::from_serialize(json!({"id": opts.run_id, "playbook": pb.name, "dry_run": opts.dry_run, "started_at": now})),
        ),
        ("now", minijinja::Value::from(now.clone())),
    ];
    let mut outputs: BTreeMap<String, minijinja::Value> = BTreeMap::new();
    let mut report = RunReport {
        run_id: opts.run_id.clone(),
        playbook: pb.name.clone(),
        dry_run: opts.dry_run,
        status: RunStatus::Succeeded,
        error: None,
        started_at: opts.now,
        duration_ms: 0,
        steps: Vec::new(),
    };
    let mut at = if pb.steps.is_empty() { Next::End } else { Next::Step(0) };
    // The graph is acyclic, so a run executes each step at most once.
    let mut budget = pb.steps.len();
    while let Next::Step(i) = at {
        let Some(step) = pb.steps.get(i).filter(|_| budget > 0) else {
            report.status = RunStatus::Failed;
            report.error = Some("the run went past its step budget".into());
            break;
        };
        budget -= 1;
        let steps_value = minijinja::Value::from_iter(outputs.iter().map(|(k, v)| (k.clone(), v.clone())));
        let ctx = minijinja::Value::from_iter(base.iter().cloned().chain([("steps", steps_value)]));
        let started_at = elapsed_since(opts.now, start);
        let t0 = Instant::now();
        let outcome = execute(pb, step, &ctx, &trigger, actions, &opts).await;
        let mut record = StepRecord {
            id: step.id.clone(),
            kind: step.kind,
            status: outcome.status,
            inputs: outcome.inputs,
            output: Value::Null,
            error: None,
            attempts: outcome.attempts,
            started_at,
            duration_ms: t0.elapsed().as_millis() as u64,
            branch: outcome.branch.map(|b| if b { "then" } else { "else" }.to_owned()),
        };
        at = match (outcome.branch, step.then) {
            (Some(true), Some(then)) => then,
            _ => step.next,
        };
        match outcome.result {
            Ok(output) => record.output = output,
            Err(msg) => {
                record.status = StepStatus::Failed;
                record.error = Some(msg.clone());
                if step.on_error == OnError::Continue {
                    record.output = json!({"error": msg});
                } else {
                    report.status = RunStatus::Failed;
                    report.error = Some(format!("step `{}` failed: {msg}", step.id));
                    at = Next::End;
                }
            }
        }
        outputs.insert(step.id.clone(), minijinja::Value::from_serialize(&record.output));
        actions.step_finished(&record).await;
        report.steps.push(record);
    }
    report.duration_ms = start.elapsed().as_millis() as u64;
    report
}

fn elapsed_since(now: DateTime<Utc>, start: Instant) -> DateTime<Utc> {
    chrono::Duration::from_std(start.elapsed()).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(now)
}

async fn execute<A: Actions>(
    pb: &Playbook,
    step: &Step,
    ctx: &minijinja::Value,
    trigger: &Value,
    actions: &mut A,
    opts: &RunOptions,
) -> Outcome {
    let failed = |inputs: Value, msg: String| Outcome { status: StepStatus::Failed, inputs, result: Err(msg), attempts: 0, branch: None };
    if let Some(expr) = &step.condition {
        let inputs = json!({"if": expr});
        return match template::eval(&pb.env, expr, ctx) {
            Ok(v) => {
                let b = v.is_true();
                Outcome { status: StepStatus::Succeeded, inputs, result: Ok(json!({"result": b})), attempts: 0, branch: Some(b) }
            }
            Err(msg) => failed(inputs, format!("steps.{}.if: {msg}", step.id)),
        };
    }
    let rendered = match template::render(&pb.env, &step.inputs, ctx) {
        Ok(Value::Object(m)) => m,
        Ok(_) => Map::new(),
        Err(msg) => return failed(Value::Null, msg),
    };
    let req = match request(step.kind, &rendered, trigger, opts) {
        Ok(r) => r,
        Err(msg) => return failed(Value::Object(rendered), msg),
    };
    let inputs = recorded_inputs(&req, &rendered);
    if opts.dry_run && !step.kind.is_read_only() {
        return Outcome { status: StepStatus::DryRun, inputs, result: Ok(placeholder(&req)), attempts: 0, branch: None };
    }
    if let Request::Extract { person: person @ (None | Some(None)), set } = &req {
        // A `person` that rendered empty is no one: null, without asking the directory.
        let mut output = set.clone();
        if let (Some(None), Value::Object(map)) = (person, &mut output) {
            map.insert("person".into(), Value::Null);
        }
        return Outcome { status: StepStatus::Succeeded, inputs, result: Ok(output), attempts: 0, branch: None };
    }
    let mut attempts = 0;
    let result = loop {
        attempts += 1;
        let result = match tokio::time::timeout(step.timeout, call(actions, &req)).await {
            Ok(r) => r,
            // A timed-out action may still have happened (its write queued, its mail sent): it
            // is tried again only when a repeat changes nothing more (reads, an IOC's upsert)
            // or is the author's call (an HTTP request).
            Err(_) if retry_safe_after_timeout(step.kind) => Err(ActionError::retryable(format!("timed out after {}", show(step.timeout)))),
            Err(_) => Err(ActionError::permanent(format!(
                "timed out after {}; not tried again, as it may have happened: check before replaying the run",
                show(step.timeout)
            ))),
        };
        match result {
            Ok(v) => break Ok(v),
            Err(e) if e.retryable && attempts <= step.retries => tokio::time::sleep(step.retry_delay).await,
            Err(e) => break Err(e.message),
        }
    };
    let status = if result.is_ok() { StepStatus::Succeeded } else { StepStatus::Failed };
    Outcome { status, inputs, result, attempts, branch: None }
}

/// Whether a step whose action timed out may be tried again without doing it twice.
fn retry_safe_after_timeout(kind: StepKind) -> bool {
    kind.is_read_only() || matches!(kind, StepKind::AddIoc | StepKind::HttpRequest)
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

async fn call<A: Actions>(actions: &mut A, req: &Request) -> Result<Value, ActionError> {
    match req {
        Request::Extract { set, person } => {
            let mut out = set.clone();
            if let (Some(Some(user)), Value::Object(map)) = (person, &mut out) {
                let found = actions.lookup_person(user).await?;
                map.insert("person".into(), found.unwrap_or(Value::Null));
            }
            Ok(out)
        }
        Request::QueryEvents(r) => actions.query_events(r.clone()).await,
        Request::CreateCase(r) => actions.create_case(r.clone()).await,
        Request::UpdateAlert(r) => actions.update_alert(r.clone()).await,
        Request::Notify(r) => actions.notify(r.clone()).await,
        Request::CreateTask(r) => actions.create_task(r.clone()).await,
        Request::HttpRequest(r) => actions.http_request(r.clone()).await,
        Request::AddIoc(r) => actions.add_ioc(r.clone()).await,
    }
}

/// What a dry run gives later steps instead of the action's output.
fn placeholder(req: &Request) -> Value {
    match req {
        Request::CreateCase(_) => json!({"id": "dry-run:case", "short_id": "CA-DRYRUN", "dry_run": true}),
        Request::CreateTask(_) => json!({"id": "dry-run:task", "dry_run": true}),
        Request::UpdateAlert(r) => json!({"id": r.alert, "dry_run": true}),
        Request::Notify(_) => json!({"sent": 0, "dry_run": true}),
        Request::HttpRequest(_) => json!({"status": null, "body": null, "dry_run": true}),
        Request::AddIoc(_) => json!({"id": "dry-run:ioc", "dry_run": true}),
        Request::Extract { .. } | Request::QueryEvents(_) => json!({"dry_run": true}),
    }
}

fn recorded_inputs(req: &Request, rendered: &Map<String, Value>) -> Value {
    let value = match req {
        Request::Extract { .. } => return Value::Object(rendered.clone()),
        Request::QueryEvents(r) => serde_json::to_value(r),
        Request::CreateCase(r) => serde_json::to_value(r),
        Request::UpdateAlert(r) => serde_json::to_value(r),
        Request::Notify(r) => serde_json::to_value(r),
        Request::CreateTask(r) => serde_json::to_value(r),
        Request::AddIoc(r) => serde_json::to_value(r),
        Request::HttpRequest(r) => {
            let headers: Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| {
                    let shown = if HARMLESS_HEADERS.contains(&k.to_ascii_lowercase().as_str()) { v.as_str() } else { "[redacted]" };
                    (k.clone(), Value::String(shown.to_owned()))
                })
                .collect();
            Ok(json!({"method": r.method, "url": r.url, "headers": headers, "body": r.body}))
        }
    };
    value.unwrap_or(Value::Null)
}

/// An optional text input: absent, null or empty → None; numbers and booleans as text.
fn opt_text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(format!("`{key}` rendered to a list or a map; it should be text")),
    }
}

fn text(m: &Map<String, Value>, key: &str) -> Result<String, String> {
    opt_text(m, key)?.ok_or_else(|| format!("`{key}` rendered empty; it is required"))
}

/// A list of texts: one string is a list of one; nulls and empty strings are dropped.
fn texts(m: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    let items = match m.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.clone(),
        Some(v) => vec![v.clone()],
    };
    let mut out = Vec::new();
    for v in items {
        match v {
            Value::Null => {}
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => out.push(s),
            Value::Number(_) | Value::Bool(_) => out.push(v.to_string()),
            _ => return Err(format!("`{key}` holds a list or a map; it should hold texts")),
        }
    }
    Ok(out)
}

fn trigger_alert(trigger: &Value) -> Option<String> {
    trigger.pointer("/alert/id").and_then(Value::as_str).map(str::to_owned)
}

/// Converts a step's rendered inputs into its request, checking what only a run can check.
fn request(kind: StepKind, m: &Map<String, Value>, trigger: &Value, opts: &RunOptions) -> Result<Request, String> {
    let context = || trigger.clone();
    Ok(match kind {
        StepKind::Extract => {
            let person = if m.contains_key("person") { Some(opt_text(m, "person")?) } else { None };
            Request::Extract { set: m.get("set").cloned().unwrap_or_else(|| json!({})), person }
        }
        StepKind::QueryEvents => {
            let query = text(m, "query")?;
            vigie_query::parse(&query).map_err(|e| format!("the rendered query does not parse: {e}; the query was: {query}"))?;
            let to = match opt_text(m, "to")? {
                Some(t) => parse_time(&t).ok_or_else(|| format!("`to` rendered to \"{t}\", not an RFC 3339 time"))?,
                None => opts.now,
            };
            let from = match (opt_text(m, "from")?, opt_text(m, "range")?) {
                (Some(f), _) => parse_time(&f).ok_or_else(|| format!("`from` rendered to \"{f}\", not an RFC 3339 time"))?,
                (None, range) => {
                    let d = range.as_deref().map(parse_duration).transpose()?.unwrap_or(DEFAULT_QUERY_RANGE);
                    chrono::Duration::from_std(d).ok().and_then(|d| to.checked_sub_signed(d)).ok_or("the range is out of bounds")?
                }
            };
            let limit = match m.get("limit") {
                None | Some(Value::Null) => DEFAULT_QUERY_LIMIT,
                Some(v) => v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).unwrap_or(0),
            };
            if !(1..=MAX_QUERY_LIMIT).contains(&limit) {
                return Err(format!("`limit` is a whole number from 1 to {MAX_QUERY_LIMIT}"));
            }
            Request::QueryEvents(QueryEvents { query, from, to, limit })
        }
        StepKind::Condition => return Err("a condition has no action".into()),
        StepKind::CreateCase => {
            let mut alerts = texts(m, "alerts")?;
            if !m.contains_key("alerts") {
                alerts.extend(trigger_alert(trigger));
            }
            Request::CreateCase(CreateCase {
                template: opt_text(m, "template")?,
                title: opt_text(m, "title")?,
                description: opt_text(m, "description")?,
                severity: opt_text(m, "severity")?,
                priority: opt_text(m, "priority")?,
                assignee: opt_text(m, "assignee")?,
                tags: texts(m, "tags")?,
                alerts,
                events: texts(m, "events")?,
                context: context(),
            })
        }
        StepKind::UpdateAlert => {
            let alert =
                opt_text(m, "alert")?.or_else(|| trigger_alert(trigger)).ok_or("no alert to update: the trigger has none; set `alert`")?;
            let status = opt_text(m, "status")?;
            if let Some(s) = &status
                && !ALERT_STATUSES.contains(&s.as_str())
            {
                return Err(format!("`status` rendered to \"{s}\"; an alert status is one of {}", ALERT_STATUSES.join(", ")));
            }
            Request::UpdateAlert(UpdateAlert { alert, status, comment: opt_text(m, "comment")?, assignee: opt_text(m, "assignee")? })
        }
        StepKind::Notify => {
            let (channel, to) = (opt_text(m, "channel")?, texts(m, "to")?);
            if channel.is_none() && to.is_empty() {
                return Err("nobody to notify: `to` rendered empty and there is no `channel`".into());
            }
            Request::Notify(Notify { channel, to, subject: opt_text(m, "subject")?, message: opt_text(m, "message")?, context: context() })
        }
        StepKind::CreateTask => Request::CreateTask(CreateTask {
            case: text(m, "case")?,
            title: text(m, "title")?,
            description: opt_text(m, "description")?,
            assignee: opt_text(m, "assignee")?,
            due: opt_text(m, "due")?.map(|d| parse_due(&d, opts.now)).transpose()?,
            invite: texts(m, "invite")?,
        }),
        StepKind::HttpRequest => {
            let method = opt_text(m, "method")?.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(format!("`method` rendered to \"{method}\"; use one of {}", METHODS.join(", ")));
            }
            let url = text(m, "url")?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("`url` rendered to \"{url}\", not an http:// or https:// URL"));
            }
            let mut headers = Vec::new();
            if let Some(Value::Object(h)) = m.get("headers") {
                for k in h.keys() {
                    headers.push((k.clone(), opt_text(h, k)?.unwrap_or_default()));
                }
            }
            Request::HttpRequest(HttpRequest { method, url, headers, body: m.get("body").cloned() })
        }
        StepKind::AddIoc => {
            let ioc_type = text(m, "ioc_type")?;
            if !IOC_TYPES.contains(&ioc_type.as_str()) {
                return Err(format!("`ioc_type` rendered to \"{ioc_type}\"; use one of {}", IOC_TYPES.join(", ")));
            }
            let valid_until = opt_text(m, "valid_for")?.map(|d| parse_duration(&d).and_then(|d| add(opts.now, d))).transpose()?;
            Request::AddIoc(AddIoc { ioc_type, value: text(m, "value")?, valid_until, description: opt_text(m, "description")? })
        }
    })
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
