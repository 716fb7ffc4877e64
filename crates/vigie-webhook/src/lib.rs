//! Vigie's webhooks. So far the pure parts issue 4's dispatcher builds on:
//! - [`signature`]: the Standard Webhooks scheme (<https://www.standardwebhooks.com/>) that Svix
//!   and every Standard Webhooks library verify — `webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, secrets `whsec_…`;
//! - [`schedule`]: the retry schedule as data, jitter, `Retry-After`, giving up;
//! - [`destination`]: which URLs and addresses a webhook may deliver to;
//! - [`format`]: the request body per destination format (`standard`, `splunk_hec`, `sekoia`,
//!   `slack`).
//!
//! No I/O, no tokio, no SQLite: signing and verification are pure functions of their inputs,
//! time included.
#![warn(missing_docs)]

pub mod destination;
pub mod format;
pub mod schedule;
pub mod signature;

pub use destination::{DestinationError, check_addresses, check_url, is_public};
pub use format::{Format, FormatError, FormatOptions, render};
pub use schedule::{NextAttempt, RetrySchedule, ScheduleError};
pub use signature::{SignatureError, SigningSecret, StandardHeaders, sign, verify};
