//! Vigie's webhooks. For now: the Standard Webhooks signature scheme
//! (<https://www.standardwebhooks.com/>), which Svix and every Standard Webhooks library
//! verify — `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, secrets written `whsec_<base64>`. The outbox dispatcher, the retry
//! schedule and the destination formats of issue 4 build on it.
//!
//! No I/O, no tokio, no SQLite: signing and verification are pure functions of their inputs,
//! time included.
#![warn(missing_docs)]

pub mod signature;

pub use signature::{SignatureError, SigningSecret, StandardHeaders, sign, verify};
