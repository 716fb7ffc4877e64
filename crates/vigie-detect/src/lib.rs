//! Vigie's detection engine (issue 7): rules written in the pipe language (`../shared/QUERY.md`)
//! or as Sigma YAML (detection documents, and correlation documents that reference them),
//! compiled once and evaluated per event as it is read from the log.
//!
//! - [`compile`] checks a rule and says why it is refused (never drops part of it);
//! - [`engine::Engine`] evaluates every rule of a space over one event and reports the hits;
//!   windows (a pipe `stats … | where … in last D`, a Sigma correlation) keep bounded state
//!   whose changed groups the caller saves with its checkpoint;
//! - Sigma goes through `rsigma-parser` / `rsigma-eval` behind [`sigma::SigmaBackend`].
//!
//! No I/O: the XDR's detection consumer reads the log, calls the engine and writes alerts.
#![warn(missing_docs)]

pub mod engine;
pub mod event;
pub mod rule;
pub mod sigma;

pub use engine::{Engine, FirstPass, Hit, RuleEntry, States};
pub use event::{EventSource, MapEvent};
pub use rule::{Kind, Program, RuleError, Shape, compile, export_sigma};
