//! Vigie's foundation, shared by both halves: configuration, ids, time, errors, authentication
//! (tenants, users, roles, API tokens) and the SQLite plumbing (group-committing writer, read
//! pool, migrations), plus the HTTP pieces every API shares (the one error type, the JSON
//! extractor, the caller's identity, metrics).
//!
//! Must not depend on: any other Vigie crate, reqwest, or anything that prints or reads the
//! environment (the binary passes everything in through [`config::Config`]).
#![warn(missing_docs)]

pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod secrets;
pub mod testdata;

pub use clock::{Clock, SystemClock};
pub use db::Store;
pub use error::StoreError;
