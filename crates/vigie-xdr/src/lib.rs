//! The XDR half of Vigie (modelled on Sekoia.io's operations center): spaces and their scoped
//! API keys, event intake acknowledged only after a durable commit, normalisation of the
//! firewall's events into flat fields, and the append-only event log with consumer checkpoints.
//! Detection, alerts, cases and the rest build on the log in their own issues.
//!
//! Must not depend on: the firewall crate (the halves talk only over HTTP), or anything that
//! prints or reads the environment.
#![warn(missing_docs)]

pub mod alerts;
pub mod cases;
pub mod compat;
pub mod console;
pub mod content;
pub mod dashboards;
pub mod detect;
pub mod facts;
pub mod intake;
pub mod keys;
pub mod listing;
pub mod log;
pub mod mailsink;
pub mod normalize;
pub mod notify;
pub mod people;
pub mod playbooks;
pub mod response;
pub mod retention;
pub mod routes;
pub mod rules;
pub mod search;
pub mod server;
pub mod short_id;
pub mod state;
pub mod testdata;

pub use server::{XdrOptions, app, open, openapi, serve};
pub use state::XdrState;
