//! Playbooks: a YAML definition (a trigger, then steps) compiled into a graph, refused with the
//! reason when it names an unknown step or variable or has a cycle; Jinja templating (minijinja)
//! over the trigger and earlier steps' outputs; and the runner, which carries out a run through
//! an [`Actions`] implementation and records each step.
//!
//! Entry points: [`compile`] (YAML → [`Playbook`] or every problem at once) and [`run`].
//!
//! Must not depend on: SQLite, axum, the network — the XDR implements [`Actions`].
#![warn(missing_docs)]

mod actions;
mod checks;
mod compile;
mod graph;
mod locate;
pub mod model;
mod run;
mod template;
mod time;

pub use actions::{ActionError, Actions, AddIoc, CreateCase, CreateTask, HttpRequest, Notify, QueryEvents, UpdateAlert};
pub use compile::{Playbook, Schedule, Step, Trigger, compile};
pub use graph::Next;
pub use model::StepKind;
pub use run::{RunOptions, RunReport, RunStatus, StepRecord, StepStatus, run};
pub use template::{MAX_FILTER_OUTPUT, MAX_RENDER_ALLOCATION, bound_growing_filters, check_template_source, safe_environment};
pub use time::parse_duration;

use std::fmt;

/// The largest playbook definition accepted, in bytes.
pub const MAX_YAML_BYTES: usize = 256 * 1024;
/// The most steps a playbook may have.
pub const MAX_STEPS: usize = 100;
/// The most events one `query_events` step may return.
pub const MAX_QUERY_LIMIT: u64 = 10_000;

/// One problem with a playbook definition: where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlaybookError {
    /// Where in the definition, like `steps[3].to[0]`; empty for the whole document.
    pub path: String,
    /// A sentence saying what is wrong and what to do.
    pub message: String,
    /// 1-based line in the YAML, when known.
    pub line: Option<usize>,
    /// 1-based column in the YAML, when known.
    pub column: Option<usize>,
}

impl PlaybookError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> PlaybookError {
        PlaybookError { path: path.into(), message: message.into(), line: None, column: None }
    }
}

impl fmt::Display for PlaybookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlaybookError {}
