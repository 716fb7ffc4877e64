//! Vigie's webhooks: the outbox events are fanned out to, the dispatcher that delivers them at
//! least once, Standard Webhooks signing and verification, destination formats, and the
//! webhook API.
//!
//! Pure, no I/O: `signature`, `schedule`, `destination`, `format`. With I/O: `client` (the HTTP
//! client that checks every address it connects to), `dispatcher`, `service` and `routes`
//! (over the half's SQLite store, whose `outbox` table the half creates and writes with
//! [`outbox::emit`]).
//!
//! Must not depend on: vigie-firewall or the XDR crate (a half mounts these routes and starts
//! the dispatcher), or anything that prints or reads the environment.
#![warn(missing_docs)]

pub mod client;
pub mod destination;
pub mod dispatcher;
pub mod format;
pub mod model;
pub mod outbox;
pub mod routes;
pub mod schedule;
pub mod service;
pub mod signature;

pub use destination::{DestinationError, check_addresses, check_url, is_public};
pub use format::{Format, FormatError, FormatOptions, render};
pub use schedule::{NextAttempt, RetrySchedule, ScheduleError};
pub use service::{WEBHOOK_DISABLED, WEBHOOK_TEST, WebhookSettings, Webhooks};
pub use signature::{SignatureError, SigningSecret, StandardHeaders, sign, verify};

/// The migrations of the webhook tables; run after the half's own (they read its `outbox`).
pub const MIGRATIONS: &[vigie_core::db::Migration] =
    &[vigie_core::db::Migration { name: "wh_001_webhooks", sql: include_str!("../migrations/wh_001_webhooks.sql") }];
