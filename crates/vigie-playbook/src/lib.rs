//! Playbooks: a YAML definition (a trigger, then steps) compiled into a graph, refused with the
//! reason when it names an unknown step or variable or has a cycle; Jinja templating (minijinja)
//! over the trigger and earlier steps' outputs; and the runner, which carries out a run through
//! an [`Actions`] implementation and records each step.
//!
//! Must not depend on: SQLite, axum, the network — the XDR implements [`Actions`].
#![warn(missing_docs)]
