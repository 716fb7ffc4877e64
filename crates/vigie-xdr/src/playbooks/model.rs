//! The types the playbook API shows and takes, and how stored runs read.
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vigie_core::StoreError;
use vigie_core::clock::from_micros;

/// A new playbook.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlaybook {
    /// The YAML definition (name, description, trigger, vars, steps), up to 256 KiB.
    pub source: String,
    /// Whether its trigger starts runs (default false).
    #[serde(default)]
    pub enabled: bool,
}

/// A change to a playbook.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookPatch {
    /// A new YAML definition (its version is bumped when it differs).
    pub source: Option<String>,
    /// Switch it on or off.
    pub enabled: Option<bool>,
}

/// Filters of the playbook and run listings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlaybookListParams {
    /// Only enabled (true) or disabled (false) playbooks.
    pub enabled: Option<bool>,
    /// Only this trigger type.
    pub trigger_type: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A playbook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlaybookView {
    /// Playbook id (UUIDv7).
    pub id: String,
    /// Unique in the space.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// alert_created | alert_status_changed | case_created | event | schedule | manual.
    pub trigger_type: String,
    /// The trigger's filters.
    pub trigger: Value,
    /// Whether its trigger starts runs.
    pub enabled: bool,
    /// Bumped by every change of its YAML.
    pub version: i64,
    /// `api`, `default` or `file:<name>` (a file's playbook changes by editing the file).
    pub origin: String,
    /// The default content's key, for the default playbooks.
    pub builtin: Option<String>,
    /// The YAML.
    pub source: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

/// What to run a playbook on (at most one of alert_id, case_id, event; `input` beside any).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// An alert (id or short id): the trigger is its context, as for `alert_created`.
    pub alert_id: Option<String>,
    /// A case (id or short id).
    pub case_id: Option<String>,
    /// A sample event (as sent to intake): the trigger is the alert it would raise.
    pub event: Option<Value>,
    /// Free input, as `trigger.input`.
    pub input: Option<Value>,
}

/// A dry run's request.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// What to run it on.
    #[serde(flatten)]
    pub run: RunRequest,
    /// The trigger object itself, instead.
    pub trigger: Option<Value>,
    /// A YAML to try instead of the saved one (an edit before saving it).
    pub source: Option<String>,
}

/// A run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    /// Run id (UUIDv7).
    pub id: String,
    /// The playbook.
    pub playbook_id: String,
    /// The playbook's version it ran.
    pub version: i64,
    /// What started it: the trigger type, or `manual`.
    pub trigger_type: String,
    /// queued | running | succeeded | failed | interrupted | cancelled.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The run it replays.
    pub replay_of: Option<String>,
    /// Who or what started it.
    pub by: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A step of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    /// The step's id in the playbook.
    pub step: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// succeeded | failed.
    pub status: String,
    /// The rendered arguments.
    pub inputs: Value,
    /// What it produced (`steps.<id>` for the later steps).
    pub output: Value,
    /// Why it failed.
    pub error: Option<String>,
    /// Tries made.
    pub attempts: i64,
    /// A condition's branch.
    pub branch: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took (ms).
    pub duration_ms: f64,
}

/// A run with its trigger and steps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunView,
    /// What its templates saw as `trigger`.
    pub trigger: Value,
    /// Its steps, in the order they ran.
    pub steps: Vec<StepView>,
}

const RUN_COLS: &str = "id, playbook_id, version, trigger_type, status, error, replay_of, by, queued_at, started_at, finished_at";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunView> {
    Ok(RunView {
        id: r.get(0)?,
        playbook_id: r.get(1)?,
        version: r.get(2)?,
        trigger_type: r.get(3)?,
        status: r.get(4)?,
        error: r.get(5)?,
        replay_of: r.get(6)?,
        by: r.get(7)?,
        queued_at: from_micros(r.get(8)?),
        started_at: r.get::<_, Option<i64>>(9)?.map(from_micros),
        finished_at: r.get::<_, Option<i64>>(10)?.map(from_micros),
    })
}

/// A run of `space_no`.
pub fn run_view(c: &Connection, space_no: i64, id: &str) -> Result<Option<RunView>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {RUN_COLS} FROM playbook_runs WHERE id = ?1 AND space_no = ?2"))?
        .query_row(params![id, space_no], run_from_row)
        .optional()?)
}

/// A playbook's runs, newest first, before run `before`.
pub fn runs(c: &Connection, space_no: i64, playbook_id: &str, before: Option<&str>, limit: i64) -> Result<Vec<RunView>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {RUN_COLS} FROM playbook_runs WHERE playbook_id = ?1 AND space_no = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![playbook_id, space_no, before, limit], run_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A run of `space_no` with its trigger and steps.
pub fn run_detail(c: &Connection, space_no: i64, id: &str) -> Result<Option<RunDetail>, StoreError> {
    let Some(run) = run_view(c, space_no, id)? else { return Ok(None) };
    let trigger: String = c.prepare_cached("SELECT trigger FROM playbook_runs WHERE id = ?1")?.query_row([id], |r| r.get(0))?;
    let mut stmt = c.prepare_cached(
        "SELECT step_id, type, status, inputs, output, error, attempts, branch, started_at, duration_us FROM playbook_steps \
         WHERE run_id = ?1 ORDER BY idx",
    )?;
    let steps = stmt
        .query_map([id], |r| {
            let (inputs, output): (String, String) = (r.get(3)?, r.get(4)?);
            Ok(StepView {
                step: r.get(0)?,
                kind: r.get(1)?,
                status: r.get(2)?,
                inputs: serde_json::from_str(&inputs).unwrap_or(Value::Null),
                output: serde_json::from_str(&output).unwrap_or(Value::Null),
                error: r.get(5)?,
                attempts: r.get(6)?,
                branch: r.get(7)?,
                started_at: from_micros(r.get(8)?),
                duration_ms: r.get::<_, i64>(9)? as f64 / 1000.0,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(RunDetail { run, trigger: serde_json::from_str(&trigger).unwrap_or(Value::Null), steps }))
}
