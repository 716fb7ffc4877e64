//! The playbook definition as written in YAML: serde types that refuse unknown keys. Strings
//! here are templates until [`crate::compile`] has checked and compiled them.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A playbook as written: a name, a trigger, optional constants and the steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// 1–100 characters.
    pub name: String,
    /// What the playbook is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What starts a run.
    pub trigger: TriggerDef,
    /// Constants the templates read as `vars.<name>`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
    /// 1–100 steps; a run starts at the first.
    pub steps: Vec<StepDef>,
}

/// The kinds of trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A new alert (filters: `rules`, `severities`).
    AlertCreated,
    /// An alert moved to another status (filters: `rules`, `to`).
    AlertStatusChanged,
    /// A new case.
    CaseCreated,
    /// An event matching a pipe query (`query`).
    Event,
    /// A cron schedule in UTC (`cron`).
    Schedule,
    /// Started by hand, through the API.
    Manual,
}

impl TriggerKind {
    /// The name written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::AlertCreated => "alert_created",
            TriggerKind::AlertStatusChanged => "alert_status_changed",
            TriggerKind::CaseCreated => "case_created",
            TriggerKind::Event => "event",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
        }
    }
}

/// The trigger as written; which keys apply depends on `type` (checked by the compiler).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    /// The kind of trigger.
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    /// `alert_*`: rule names or ids; empty or absent = any rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
    /// `alert_created`: severities; empty or absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severities: Option<Vec<String>>,
    /// `alert_status_changed`: the statuses moved to; empty or absent = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    /// `event`: a pipe-language filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `schedule`: a cron expression (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
}

/// The kinds of step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Templates → variables, and optionally a person from the directory.
    Extract,
    /// A pipe query over a time range.
    QueryEvents,
    /// An `if` expression choosing between two next steps.
    Condition,
    /// Open a case, optionally from a template.
    CreateCase,
    /// Change an alert's status, comment on it or assign it.
    UpdateAlert,
    /// Send a message through a channel or to e-mail addresses.
    Notify,
    /// Add a task to a case, optionally with a calendar invitation.
    CreateTask,
    /// Call an HTTP endpoint.
    HttpRequest,
    /// Record an indicator of compromise.
    AddIoc,
}

impl StepKind {
    /// The name written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Extract => "extract",
            StepKind::QueryEvents => "query_events",
            StepKind::Condition => "condition",
            StepKind::CreateCase => "create_case",
            StepKind::UpdateAlert => "update_alert",
            StepKind::Notify => "notify",
            StepKind::CreateTask => "create_task",
            StepKind::HttpRequest => "http_request",
            StepKind::AddIoc => "add_ioc",
        }
    }

    /// Whether the step only reads (so a dry run carries it out for real).
    pub fn is_read_only(self) -> bool {
        matches!(self, StepKind::Extract | StepKind::QueryEvents | StepKind::Condition)
    }
}

/// What a failed step does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The run stops and is failed (the default).
    #[default]
    Fail,
    /// The step's output becomes `{"error": …}` and the run goes on.
    Continue,
}

/// A step as written: the keys every step has, and the ones of its kind in `fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDef {
    /// `[a-z][a-z0-9_]{0,39}`, unique in the playbook.
    pub id: String,
    /// The kind of step.
    #[serde(rename = "type")]
    pub kind: StepKind,
    /// The step after this one (`end` to stop); default: the next in the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Like `30s` (the default), at most `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Extra attempts after a retryable failure, at most 5 (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The wait between attempts, like `1s` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<String>,
    /// What a failure does to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
    /// The keys of the step's kind (see [`StepSpec`]).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// `extract`: each `set` entry becomes an output field; `person` looks up a directory entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractDef {
    /// Output name → template or value.
    #[serde(default)]
    pub set: Map<String, Value>,
    /// A user id whose directory entry becomes `output.person` (null when unknown).
    pub person: Option<String>,
}

/// `query_events`: a pipe query over `range` (default `24h`) or `from`/`to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryEventsDef {
    /// The pipe query (a template).
    pub query: String,
    /// A duration back from now, like `7d`.
    pub range: Option<String>,
    /// The start, RFC 3339 (a template).
    pub from: Option<String>,
    /// The end, RFC 3339 (a template); default now.
    pub to: Option<String>,
    /// The most events returned (default 100, at most 10 000).
    pub limit: Option<Value>,
}

/// `condition`: `if` is a Jinja expression; `then`/`else` name the next step or `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    /// The expression (without `{{ }}`).
    #[serde(rename = "if")]
    pub condition: String,
    /// Where to go when it is true.
    pub then: String,
    /// Where to go when it is false; default: the next step in the list.
    #[serde(rename = "else")]
    pub otherwise: Option<String>,
}

/// `create_case`: every field is a template; absent ones come from the case template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCaseDef {
    /// A case template's name.
    pub template: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// low | medium | high | critical.
    pub severity: Option<String>,
    /// The priority.
    pub priority: Option<String>,
    /// Who handles the case.
    pub assignee: Option<String>,
    /// Tags: a list, or one expression giving a list.
    pub tags: Option<Value>,
    /// Alert ids to attach (default: the trigger's alert).
    pub alerts: Option<Value>,
    /// Event ids to attach.
    pub events: Option<Value>,
}

/// `update_alert`: at least one of `status`, `comment`, `assignee`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlertDef {
    /// The alert id (default: the trigger's alert).
    pub alert: Option<String>,
    /// The new status.
    pub status: Option<String>,
    /// A comment to add.
    pub comment: Option<String>,
    /// Who to assign.
    pub assignee: Option<String>,
}

/// `notify`: a channel, or e-mail addresses, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyDef {
    /// A channel name.
    pub channel: Option<String>,
    /// E-mail addresses: a list, or one expression giving a list.
    pub to: Option<Value>,
    /// The subject (default: the channel's).
    pub subject: Option<String>,
    /// The message (default: the channel's).
    pub message: Option<String>,
}

/// `create_task`: a task on a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskDef {
    /// The case id.
    pub case: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: Option<String>,
    /// Who does it.
    pub assignee: Option<String>,
    /// A duration from now (`14d`) or an RFC 3339 time or a date.
    pub due: Option<String>,
    /// E-mail addresses invited with an iCalendar attachment.
    pub invite: Option<Value>,
}

/// `http_request`: one HTTP call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestDef {
    /// GET (default), POST, PUT, PATCH, DELETE or HEAD.
    pub method: Option<String>,
    /// An http(s) URL.
    pub url: String,
    /// Header name → template.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// A JSON value whose strings are templates, or a template string.
    pub body: Option<Value>,
}

/// `add_ioc`: an indicator of compromise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddIocDef {
    /// platform | domain | url | ip | hash.
    pub ioc_type: String,
    /// The indicator.
    pub value: String,
    /// How long it stays valid, like `30d`; absent = no end.
    pub valid_for: Option<String>,
    /// Why it was recorded.
    pub description: Option<String>,
}

/// A step's own keys, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum StepSpec {
    /// See [`ExtractDef`].
    Extract(ExtractDef),
    /// See [`QueryEventsDef`].
    QueryEvents(QueryEventsDef),
    /// See [`ConditionDef`].
    Condition(ConditionDef),
    /// See [`CreateCaseDef`].
    CreateCase(CreateCaseDef),
    /// See [`UpdateAlertDef`].
    UpdateAlert(UpdateAlertDef),
    /// See [`NotifyDef`].
    Notify(NotifyDef),
    /// See [`CreateTaskDef`].
    CreateTask(CreateTaskDef),
    /// See [`HttpRequestDef`].
    HttpRequest(HttpRequestDef),
    /// See [`AddIocDef`].
    AddIoc(AddIocDef),
}

impl StepSpec {
    /// Reads the keys of a step of `kind`, refusing keys the kind does not have.
    pub fn parse(kind: StepKind, fields: &Map<String, Value>) -> Result<StepSpec, serde_json::Error> {
        let v = Value::Object(fields.clone());
        Ok(match kind {
            StepKind::Extract => StepSpec::Extract(serde_json::from_value(v)?),
            StepKind::QueryEvents => StepSpec::QueryEvents(serde_json::from_value(v)?),
            StepKind::Condition => StepSpec::Condition(serde_json::from_value(v)?),
            StepKind::CreateCase => StepSpec::CreateCase(serde_json::from_value(v)?),
            StepKind::UpdateAlert => StepSpec::UpdateAlert(serde_json::from_value(v)?),
            StepKind::Notify => StepSpec::Notify(serde_json::from_value(v)?),
            StepKind::CreateTask => StepSpec::CreateTask(serde_json::from_value(v)?),
            StepKind::HttpRequest => StepSpec::HttpRequest(serde_json::from_value(v)?),
            StepKind::AddIoc => StepSpec::AddIoc(serde_json::from_value(v)?),
        })
    }
}
