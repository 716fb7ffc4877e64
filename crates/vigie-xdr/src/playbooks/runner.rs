//! The playbook runner: claims queued runs, carries each out with `vigie_playbook::run` over the
//! XDR's [`Actions`] (the store, cases, notifications, an HTTP client), records every step as it
//! finishes and the run's outcome. Runs found `running` at start were cut by a stop: they are
//! marked `interrupted` (replay them to run again — their steps may have had effects).
use crate::keys::{Caller, Scope};
use crate::state::XdrState;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;
use vigie_playbook::{
    ActionError, Actions, AddIoc, CreateCase, CreateTask, HttpRequest, Notify, QueryEvents, RunOptions, RunReport, StepRecord, UpdateAlert,
};

/// Runs carried out at once.
pub const CONCURRENT_RUNS: usize = 8;
/// Compiled playbook versions kept (the cache is emptied when full).
pub const COMPILED_KEPT: usize = 256;
/// Runs of one space carried out at once.
pub const RUNS_PER_SPACE: usize = 4;
/// How long a stop waits for the runs in flight before cutting them (they are then marked
/// `interrupted` at the next start).
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// The largest output or input a step record keeps (bytes of JSON); past it, a note says so.
pub const MAX_RECORDED: usize = 64 * 1024;
/// The events a `query_events` step's output lists (its `count` says how many were found).
pub const LISTED_EVENTS: usize = 100;
/// The largest HTTP response body an `http_request` step reads.
pub const MAX_HTTP_BODY: usize = 256 * 1024;

/// A run to carry out.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Run id.
    pub id: String,
    /// Its space.
    pub space_no: i64,
    /// The playbook.
    pub playbook_id: String,
    /// The YAML it runs.
    pub source: String,
    /// What its templates see as `trigger`.
    pub trigger: Value,
    /// The playbook's version `source` is.
    pub version: i64,
}

/// Runs the runner until `shutdown` (runs in flight are finished first).
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    if let Err(e) = interrupt_leftovers(&st).await {
        tracing::warn!(error = %e, "could not mark the runs cut by the last stop as interrupted");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_RUNS));
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        let claimed = if free > 0 {
            match claim(&st, free).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "the playbook runner could not claim runs; retrying in a second");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
        } else {
            Vec::new()
        };
        let idle = claimed.is_empty();
        for run in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else { break };
            let st = st.clone();
            running.spawn(async move {
                execute(&st, run).await;
                drop(permit);
            });
        }
        if !idle && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = st.response.runs_queued.notified() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    let drained = tokio::time::timeout(STOP_GRACE, async { while running.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(runs = running.len(), "playbook runs still going at the stop were cut; they show as interrupted");
        running.abort_all();
    }
}

async fn interrupt_leftovers(st: &XdrState) -> Result<usize, StoreError> {
    let now = to_micros(st.clock.now());
    st.store
        .write(move |c| {
            Ok(c.execute(
                "UPDATE playbook_runs SET status = 'interrupted', finished_at = ?1, \
                 error = 'the server stopped during the run; replay it to run it again' WHERE status = 'running'",
                [now],
            )?)
        })
        .await
}

/// Moves up to `n` queued runs to `running`, oldest first, at most [`RUNS_PER_SPACE`] running
/// per space (one space's flood does not hold every other's response back). Runs whose playbook
/// was deleted — or, for runs a trigger queued, disabled — are cancelled instead: disabling a
/// playbook stops what it had queued.
async fn claim(st: &XdrState, n: usize) -> Result<Vec<Claimed>, StoreError> {
    let now = to_micros(st.clock.now());
    // A read first: with nothing queued (the usual case) nothing is written.
    let queued = st
        .store
        .read(|c| {
            Ok::<_, StoreError>(
                c.query_row("SELECT EXISTS(SELECT 1 FROM playbook_runs WHERE status = 'queued')", [], |r| r.get::<_, bool>(0))?,
            )
        })
        .await?;
    if !queued {
        return Ok(Vec::new());
    }
    st.store
        .write(move |c| {
            c.prepare_cached(
                "UPDATE playbook_runs SET status = 'cancelled', finished_at = ?1, \
                 error = 'the playbook was disabled or deleted before the run started' \
                 WHERE status = 'queued' AND (playbook_id NOT IN (SELECT id FROM playbooks) \
                 OR (origin IS NOT NULL AND playbook_id IN (SELECT id FROM playbooks WHERE enabled = 0)))",
            )?
            .execute([now])?;
            // Spaces take turns (the first queued run of each, then the second…), so two
            // flooding spaces cannot fill every slot ahead of a third.
            let mut stmt = c.prepare_cached(
                "UPDATE playbook_runs SET status = 'running', started_at = ?1 WHERE id IN \
                 (SELECT id FROM (SELECT id, space_no, ROW_NUMBER() OVER (PARTITION BY space_no ORDER BY id) AS k \
                   FROM playbook_runs WHERE status = 'queued') q \
                  WHERE q.k + (SELECT COUNT(*) FROM playbook_runs r WHERE r.status = 'running' AND r.space_no = q.space_no) <= ?3 \
                  ORDER BY q.k, q.id LIMIT ?2) \
                 RETURNING id, space_no, playbook_id, source, trigger, version",
            )?;
            let rows = stmt.query_map(params![now, n as i64, RUNS_PER_SPACE as i64], |r| {
                let trigger: String = r.get(4)?;
                Ok(Claimed {
                    id: r.get(0)?,
                    space_no: r.get(1)?,
                    playbook_id: r.get(2)?,
                    source: r.get(3)?,
                    trigger: serde_json::from_str(&trigger).unwrap_or(Value::Null),
                    version: r.get(5)?,
                })
            })?;
            let mut out: Vec<Claimed> = rows.collect::<Result<_, _>>()?;
            out.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(out)
        })
        .await
}

/// Carries out one claimed run and records its outcome.
pub async fn execute(st: &XdrState, run: Claimed) {
    let outcome = match compiled(st, &run) {
        Ok(pb) => match XdrActions::new(st, run.space_no, Some(run.id.clone())).await {
            Ok(mut actions) => {
                let opts = RunOptions { run_id: run.id.clone(), dry_run: false, now: st.clock.now() };
                let report = vigie_playbook::run(&pb, run.trigger.clone(), &mut actions, opts).await;
                Ok(report)
            }
            Err(e) => Err(format!("the run could not start: {e}")),
        },
        Err(errors) => {
            Err(format!("the playbook does not compile: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        }
    };
    let (status, error) = match &outcome {
        Ok(report) => status_of(report),
        Err(e) => ("failed", Some(e.clone())),
    };
    let (id, now) = (run.id.clone(), to_micros(st.clock.now()));
    let written = st
        .store
        .write(move |c| {
            Ok::<_, StoreError>(c.execute(
                "UPDATE playbook_runs SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, status, error, now],
            )?)
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(run_id = %run.id, error = %e, "could not record a playbook run's outcome");
    }
    st.response.run_finished(status);
}

/// The run's playbook compiled, from the cache of compiled versions when it is there (a run
/// queued per alert would otherwise compile the same YAML each time).
fn compiled(st: &XdrState, run: &Claimed) -> Result<vigie_playbook::Playbook, Vec<vigie_playbook::PlaybookError>> {
    let key = (run.playbook_id.clone(), run.version);
    if let Some(pb) = st.response.compiled.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(pb);
    }
    let pb = vigie_playbook::compile(&run.source)?;
    if let Ok(mut cache) = st.response.compiled.lock() {
        if cache.len() >= COMPILED_KEPT {
            cache.clear();
        }
        cache.insert(key, pb.clone());
    }
    Ok(pb)
}

/// The stored status and error of a report.
pub fn status_of(report: &RunReport) -> (&'static str, Option<String>) {
    match report.status {
        vigie_playbook::RunStatus::Succeeded => ("succeeded", None),
        vigie_playbook::RunStatus::Failed => ("failed", report.error.clone()),
    }
}

/// The XDR as a playbook run sees it.
pub struct XdrActions {
    st: XdrState,
    space_no: i64,
    caller: Caller,
    /// Where step records go: a run's id (persisted), or nowhere (a dry run keeps them).
    run_id: Option<String>,
    next_idx: i64,
    /// The records of a dry run.
    pub records: Vec<Value>,
}

impl XdrActions {
    /// Actions for a run of `space_no` (`run_id`: its records are persisted; `None`: a dry run,
    /// kept in `records`).
    pub async fn new(st: &XdrState, space_no: i64, run_id: Option<String>) -> Result<XdrActions, StoreError> {
        let space_id: String = st
            .store
            .read(move |c| Ok::<_, StoreError>(c.query_row("SELECT id FROM spaces WHERE no = ?1", [space_no], |r| r.get::<_, String>(0))?))
            .await?;
        let space_id = uuid::Uuid::parse_str(&space_id).map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(XdrActions {
            st: st.clone(),
            space_no,
            caller: Caller::internal(space_id, space_no, vec![Scope::EventsRead]),
            run_id,
            next_idx: 0,
            records: Vec::new(),
        })
    }

    /// `on-duty` is the space's analyst on duty (none named: unassigned); anyone else as given.
    async fn assignee(&self, who: Option<String>) -> Result<Option<String>, ActionError> {
        if who.as_deref() != Some("on-duty") {
            return Ok(who);
        }
        let space_no = self.space_no;
        self.st
            .store
            .read(move |c| Ok::<_, StoreError>(c.query_row("SELECT on_duty FROM spaces WHERE no = ?1", [space_no], |r| r.get(0))?))
            .await
            .map_err(store_err)
    }

    fn by(&self) -> String {
        match &self.run_id {
            Some(id) => format!("playbook:{id}"),
            None => "playbook:dry-run".to_owned(),
        }
    }
}

fn store_err(e: impl std::fmt::Display) -> ActionError {
    ActionError::retryable(format!("the store failed: {e}"))
}

fn api_err(e: vigie_core::http::ApiError) -> ActionError {
    if e.status.is_server_error() { ActionError::retryable(e.message) } else { ActionError::permanent(e.message) }
}

/// A JSON value cut to [`MAX_RECORDED`] bytes for a record.
fn bounded(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= MAX_RECORDED {
        return s;
    }
    json!({"truncated": true, "bytes": s.len(), "note": "too large to record in full"}).to_string()
}

impl Actions for XdrActions {
    async fn query_events(&mut self, req: QueryEvents) -> Result<Value, ActionError> {
        let limit = req.limit.clamp(1, 1000) as u32;
        let p = crate::search::SearchParams {
            q: req.query,
            from: Some(req.from),
            to: Some(req.to),
            limit: Some(limit),
            cursor: None,
            format: None,
        };
        let answer = crate::search::search(&self.st, &self.caller, p).await.map_err(api_err)?;
        let count = answer.items.len();
        let listed: Vec<Value> = answer.items.into_iter().take(LISTED_EVENTS).map(Value::Object).collect();
        Ok(json!({"count": count, "events": listed, "kind": answer.kind, "columns": answer.columns, "partial": answer.partial}))
    }

    async fn lookup_person(&mut self, user_id: &str) -> Result<Option<Value>, ActionError> {
        let (space_no, user, now) = (self.space_no, user_id.to_owned(), to_micros(self.st.clock.now()));
        let p = self.st.store.read(move |c| crate::response::person(c, space_no, &user, now)).await.map_err(store_err)?;
        Ok((!p.is_null()).then_some(p))
    }

    async fn create_case(&mut self, req: CreateCase) -> Result<Value, ActionError> {
        let (ids, space_no, by, now) = (self.st.ids.clone(), self.space_no, self.by(), to_micros(self.st.clock.now()));
        // The step's alerts (vigie-playbook gives the trigger's alert unless the step names others).
        let alerts = req.alerts.clone();
        let assignee = self.assignee(req.assignee).await?;
        let spec = crate::cases::NewCaseSpec {
            title: req.title,
            description: req.description,
            severity: req.severity,
            priority: req.priority,
            assignee,
            tags: (!req.tags.is_empty()).then_some(req.tags),
            template: req.template,
            context: Some(req.context),
            alerts,
            events: req.events,
        };
        let case = self
            .st
            .store
            .write(move |c| crate::cases::create(c, &ids, space_no, spec, &by, now).map_err(vigie_core::http::ApiError::from))
            .await
            .map_err(api_err)?;
        self.st.response.queued();
        serde_json::to_value(&case).map_err(|e| ActionError::permanent(e.to_string()))
    }

    async fn update_alert(&mut self, req: UpdateAlert) -> Result<Value, ActionError> {
        let (space_no, by, now) = (self.space_no, self.by(), self.st.clock.now());
        let alert = self
            .st
            .store
            .write(move |c| {
                crate::alerts::update_by(c, space_no, &req.alert, req.status.as_deref(), req.comment.as_deref(), req.assignee, &by, now)
            })
            .await
            .map_err(api_err)?;
        self.st.response.queued();
        serde_json::to_value(&alert).map_err(|e| ActionError::permanent(e.to_string()))
    }

    async fn notify(&mut self, req: Notify) -> Result<Value, ActionError> {
        let msg = crate::notify::Direct {
            channel: req.channel,
            to: req.to,
            subject: req.subject,
            body: req.message,
            context: req.context,
            ical: None,
        };
        crate::notify::send_now(&self.st, self.space_no, msg)
            .await
            .map_err(|e| ActionError { retryable: e.retryable(), message: e.to_string() })
    }

    async fn create_task(&mut self, req: CreateTask) -> Result<Value, ActionError> {
        let (ids, space_no, by, now) = (self.st.ids.clone(), self.space_no, self.by(), to_micros(self.st.clock.now()));
        let new = crate::cases::NewTask {
            title: req.title.clone(),
            description: req.description.clone().unwrap_or_default(),
            assignee: self.assignee(req.assignee.clone()).await?,
            due_at_us: req.due.map(to_micros),
        };
        let case = req.case.clone();
        let task = self
            .st
            .store
            .write(move |c| crate::cases::add_task(c, &ids, space_no, &case, new, &by, now).map_err(vigie_core::http::ApiError::from))
            .await
            .map_err(api_err)?;
        let mut out = serde_json::to_value(&task).map_err(|e| ActionError::permanent(e.to_string()))?;
        if !req.invite.is_empty() {
            let ics = ical_invitation(&task_uid(&out), &req.title, req.description.as_deref(), req.due, &req.invite, self.st.clock.now());
            let msg = crate::notify::Direct {
                channel: None,
                to: req.invite.clone(),
                subject: Some(format!("Invitation: {}", req.title)),
                body: Some(format!(
                    "{}\n\n{}Due: {}\n",
                    req.title,
                    req.description.as_deref().map(|d| format!("{d}\n\n")).unwrap_or_default(),
                    req.due.map(|d| d.to_rfc3339()).unwrap_or_else(|| "no date".into())
                )),
                context: Value::Null,
                ical: Some(ics),
            };
            let sent = crate::notify::send_now(&self.st, self.space_no, msg).await;
            out["invitation"] = match sent {
                Ok(v) => v,
                Err(e) => json!({"error": e.to_string()}),
            };
        }
        Ok(out)
    }

    async fn http_request(&mut self, req: HttpRequest) -> Result<Value, ActionError> {
        let client = self
            .st
            .response
            .http
            .get_or_init(|| {
                vigie_webhook::client::Client::new(&vigie_webhook::client::ClientOptions {
                    timeout: Duration::from_secs(600),
                    allow_private: self.st.notify.allow_private,
                    user_agent: format!("Vigie-Playbooks/{}", env!("CARGO_PKG_VERSION")),
                    trusted: Vec::new(),
                })
            })
            .as_ref()
            .map_err(|e| ActionError::permanent(e.clone()))?;
        // The URL's literal address is checked here; a name is checked when it resolves (the
        // client's resolver), so DNS cannot point a public name at a private address.
        let url = client.check_url(&req.url).map_err(|e| ActionError::permanent(e.to_string()))?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| ActionError::permanent(e.to_string()))?;
        let mut call = client.guarded().request(method, url);
        for (k, v) in &req.headers {
            call = call.header(k, v);
        }
        call = match req.body {
            Some(Value::String(s)) => call.body(s),
            Some(v) => call.json(&v),
            None => call,
        };
        // The error's text, not the URL (a URL may carry a token).
        // The error's causes, not the URL (a URL may carry a token); a refused destination or a
        // request that cannot be built will not get better by trying again.
        let mut resp = call.send().await.map_err(|e| {
            let why = format!("the request failed: {}", vigie_webhook::client::describe(&e));
            if vigie_webhook::client::refused_destination(&e) || e.is_builder() {
                ActionError::permanent(why)
            } else {
                ActionError::retryable(why)
            }
        })?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ActionError::retryable(format!("reading the answer failed: {}", vigie_webhook::client::describe(&e))))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_HTTP_BODY {
                body.truncate(MAX_HTTP_BODY);
                break;
            }
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let parsed = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ActionError::retryable(format!("the server answered {status}")));
        }
        if !status.is_success() {
            return Err(ActionError::permanent(format!("the server answered {status}")));
        }
        Ok(json!({"status": status.as_u16(), "body": parsed}))
    }

    async fn add_ioc(&mut self, req: AddIoc) -> Result<Value, ActionError> {
        let (space_no, source, now) = (self.space_no, self.by(), to_micros(self.st.clock.now()));
        let id = self.st.ids.at(self.st.clock.now()).to_string();
        let valid_until = req.valid_until.map(to_micros);
        let description = req.description.clone().unwrap_or_default();
        let (t, v) = (req.ioc_type.clone(), req.value.clone());
        let id = self
            .st
            .store
            .write(move |c| {
                c.execute(
                    "INSERT INTO iocs (id, space_no, type, value, description, valid_until, source, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (space_no, type, value) DO UPDATE SET valid_until = excluded.valid_until, description = excluded.description",
                    params![id, space_no, t, v, description, valid_until, source, now],
                )?;
                Ok::<_, StoreError>(c.query_row("SELECT id FROM iocs WHERE space_no = ?1 AND type = ?2 AND value = ?3", params![space_no, t, v], |r| {
                    r.get::<_, String>(0)
                })?)
            })
            .await
            .map_err(store_err)?;
        Ok(json!({"id": id, "type": req.ioc_type, "value": req.value, "valid_until": req.valid_until}))
    }

    async fn step_finished(&mut self, record: &StepRecord) {
        let rec = serde_json::to_value(record).unwrap_or(Value::Null);
        let Some(run_id) = self.run_id.clone() else {
            self.records.push(rec);
            return;
        };
        let idx = self.next_idx;
        self.next_idx += 1;
        let s = |k: &str| rec.get(k).and_then(Value::as_str).map(str::to_owned);
        let (step_id, kind, status) = (s("id").unwrap_or_default(), s("type").unwrap_or_default(), s("status").unwrap_or_default());
        let (inputs, output) = (bounded(&rec["inputs"]), bounded(&rec["output"]));
        let (error, branch) = (s("error"), s("branch"));
        let attempts = rec.get("attempts").and_then(Value::as_i64).unwrap_or(1);
        let started = rec
            .get("started_at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| to_micros(t.with_timezone(&Utc)))
            .unwrap_or_else(|| to_micros(self.st.clock.now()));
        let duration_us = rec.get("duration_ms").and_then(Value::as_f64).map(|ms| (ms * 1000.0) as i64).unwrap_or(0);
        let written = self
            .st
            .store
            .write(move |c| {
                Ok::<_, StoreError>(c.execute(
                    "INSERT OR REPLACE INTO playbook_steps (run_id, idx, step_id, type, status, inputs, output, error, attempts, branch, started_at, duration_us) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![run_id, idx, step_id, kind, status, inputs, output, error, attempts, branch, started, duration_us],
                )?)
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record a playbook step");
        }
    }
}

fn task_uid(task: &Value) -> String {
    task.get("id").and_then(Value::as_str).unwrap_or("task").to_owned()
}

/// An iCalendar (RFC 5545) invitation for a task: one VEVENT of 30 minutes at its due time (or
/// at `now` plus a day), METHOD:REQUEST, each address an attendee.
pub fn ical_invitation(
    uid: &str,
    title: &str,
    description: Option<&str>,
    due: Option<DateTime<Utc>>,
    attendees: &[String],
    now: DateTime<Utc>,
) -> String {
    let start = due.unwrap_or(now + chrono::Duration::days(1));
    let end = start + chrono::Duration::minutes(30);
    let t = |d: DateTime<Utc>| d.format("%Y%m%dT%H%M%SZ").to_string();
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "PRODID:-//Vigie//Playbooks//EN".to_owned(),
        "VERSION:2.0".to_owned(),
        "METHOD:REQUEST".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@vigie", ical_text(uid)),
        format!("DTSTAMP:{}", t(now)),
        format!("DTSTART:{}", t(start)),
        format!("DTEND:{}", t(end)),
        format!("SUMMARY:{}", ical_text(title)),
    ];
    if let Some(d) = description {
        lines.push(format!("DESCRIPTION:{}", ical_text(d)));
    }
    for a in attendees {
        lines.push(format!("ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:{}", ical_text(a)));
    }
    lines.extend(["STATUS:CONFIRMED".to_owned(), "END:VEVENT".to_owned(), "END:VCALENDAR".to_owned()]);
    lines.iter().map(|l| fold(l)).collect::<Vec<_>>().join("\r\n") + "\r\n"
}

/// RFC 5545 TEXT escaping (backslash, semicolon, comma, newline).
fn ical_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace("\r\n", "\\n").replace('\n', "\\n")
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a character.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for ch in line.chars() {
        let n = ch.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += n;
    }
    out
}

/// The newest runs' ids of a playbook (for tests and the API), newest first.
pub async fn latest_runs(st: &XdrState, playbook_id: String, n: i64) -> Result<Vec<String>, StoreError> {
    st.store
        .read(move |c| {
            let ids = c
                .prepare_cached("SELECT id FROM playbook_runs WHERE playbook_id = ?1 ORDER BY id DESC LIMIT ?2")?
                .query_map(params![playbook_id, n], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(ids)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_is_icalendar_with_escaped_text_and_folded_lines() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").expect("t").with_timezone(&Utc);
        let due = now + chrono::Duration::days(7);
        let title = "Security review, Ana; ".to_owned() + &"x".repeat(100);
        let ics = ical_invitation("t1", &title, Some("line1\nline2"), Some(due), &["m@example.org".into()], now);
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"), "{ics}");
        assert!(ics.contains("METHOD:REQUEST\r\n"));
        assert!(ics.contains("DTSTART:20261205T100000Z\r\n"), "{ics}");
        assert!(ics.contains("SUMMARY:Security review\\, Ana\\; "), "{ics}");
        assert!(ics.contains("DESCRIPTION:line1\\nline2"), "{ics}");
        assert!(ics.contains("ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:m@example.org"));
        assert!(ics.split("\r\n").all(|l| l.len() <= 75), "folded at 75 octets: {ics}");
    }
}
