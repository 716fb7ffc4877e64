//! What a run asks of the outside world: the [`Actions`] trait the XDR implements, one request
//! type per action (the rendered step inputs, already checked and converted), and the error an
//! action returns.
use crate::run::StepRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;

/// An action that failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// What went wrong, for the run record.
    pub message: String,
    /// True for passing trouble (a timeout, a 5xx, a busy store): the step's `retries` apply.
    pub retryable: bool,
}

impl ActionError {
    /// An error that will not go away by trying again (bad input, not found, refused).
    pub fn permanent(message: impl Into<String>) -> ActionError {
        ActionError { message: message.into(), retryable: false }
    }

    /// An error that may go away by trying again.
    pub fn retryable(message: impl Into<String>) -> ActionError {
        ActionError { message: message.into(), retryable: true }
    }
}

/// `query_events`: the events matching a pipe query in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryEvents {
    /// The rendered pipe query (it parses: the runner checked).
    pub query: String,
    /// The start of the range.
    pub from: DateTime<Utc>,
    /// The end of the range.
    pub to: DateTime<Utc>,
    /// The most events to return (1–10 000).
    pub limit: u64,
}

/// `create_case`: fields left `None` or empty come from the case template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateCase {
    /// A case template's name.
    pub template: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// The severity.
    pub severity: Option<String>,
    /// The priority.
    pub priority: Option<String>,
    /// Who handles the case.
    pub assignee: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Alert ids to attach (the trigger's alert when the step names none).
    pub alerts: Vec<String>,
    /// Event ids to attach.
    pub events: Vec<String>,
    /// The run's trigger object, for rendering the case template.
    #[serde(skip)]
    pub context: Value,
}

/// `update_alert`: at least one of status, comment, assignee is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateAlert {
    /// The alert id.
    pub alert: String,
    /// The new status.
    pub status: Option<String>,
    /// A comment to add.
    pub comment: Option<String>,
    /// Who to assign.
    pub assignee: Option<String>,
}

/// `notify`: through a channel, or by e-mail to addresses, or both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notify {
    /// A channel name.
    pub channel: Option<String>,
    /// E-mail addresses (nulls and empty strings already dropped).
    pub to: Vec<String>,
    /// The subject (None: the channel's default).
    pub subject: Option<String>,
    /// The message (None: the channel's default).
    pub message: Option<String>,
    /// The run's trigger object, for the channel's default templates.
    #[serde(skip)]
    pub context: Value,
}

/// `create_task`: a task on a case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateTask {
    /// The case id.
    pub case: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: Option<String>,
    /// Who does it.
    pub assignee: Option<String>,
    /// When it is due.
    pub due: Option<DateTime<Utc>>,
    /// E-mail addresses to send an iCalendar invitation to.
    pub invite: Vec<String>,
}

/// `http_request`: one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequest {
    /// GET, POST, PUT, PATCH, DELETE or HEAD.
    pub method: String,
    /// An http(s) URL.
    pub url: String,
    /// Header name and value, in the order written.
    pub headers: Vec<(String, String)>,
    /// The body: a string is sent as text, anything else as JSON; None: no body.
    pub body: Option<Value>,
}

/// `add_ioc`: an indicator of compromise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddIoc {
    /// platform, domain, url, ip or hash.
    pub ioc_type: String,
    /// The indicator.
    pub value: String,
    /// When it stops being valid; None: never.
    pub valid_until: Option<DateTime<Utc>>,
    /// Why it was recorded.
    pub description: Option<String>,
}

/// The outside world as a run sees it. The XDR implements it over its store, notifications
/// and HTTP client; tests implement it with fakes. Each method's `Ok` value becomes the step's
/// output (`steps.<id>` in later templates).
pub trait Actions: Send {
    /// Runs a pipe query; the output is typically `{"events": […], "count": n}`.
    fn query_events(&mut self, req: QueryEvents) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// The directory entry of a user, or `None` when there is none.
    fn lookup_person(&mut self, user_id: &str) -> impl Future<Output = Result<Option<Value>, ActionError>> + Send;
    /// Opens a case; the output should carry at least `id`.
    fn create_case(&mut self, req: CreateCase) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// Changes an alert.
    fn update_alert(&mut self, req: UpdateAlert) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// Sends a message.
    fn notify(&mut self, req: Notify) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// Adds a task to a case; the output should carry at least `id`.
    fn create_task(&mut self, req: CreateTask) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// Makes an HTTP call; the output is typically `{"status": 200, "body": …}`.
    fn http_request(&mut self, req: HttpRequest) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// Records an indicator of compromise.
    fn add_ioc(&mut self, req: AddIoc) -> impl Future<Output = Result<Value, ActionError>> + Send;
    /// Called after every step with its record, so progress can be persisted.
    fn step_finished(&mut self, record: &StepRecord) -> impl Future<Output = ()> + Send;
}
