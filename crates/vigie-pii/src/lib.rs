//! Vigie's detection engine: finds personal data and secrets in a text and scores the risk.
//!
//! [`Scanner::scan`] makes one pass over the text: a byte-class state machine cuts it into
//! candidate tokens, keeps only those whose shape (digits, `@`, a known key prefix, length)
//! admits some recognizer, and runs that recognizer's validator (Luhn, mod 97, check letters,
//! libphonenumber metadata…) on the candidate alone. Context words around a validated candidate,
//! in English, French, German, Spanish, Italian and Dutch, raise or lower its score.
//! [`risk::score`] turns findings into a risk score in 0..1.
//!
//! Offsets of a [`Finding`] are in Unicode code points (`start` inclusive, `end` exclusive), as
//! the Noxys API has them; byte offsets are kept beside them for callers that slice the text.
//!
//! This crate does no I/O, reads no environment and holds no global mutable state (the phone
//! metadata is loaded once, read-only). It must not depend on tokio, axum or SQLite.
#![warn(missing_docs)]

mod checksum;
mod context;
pub mod corpus;
mod finding;
mod kind;
pub mod masking;
mod recognizers;
pub mod risk;
mod scanner;
pub mod stream;
#[cfg(test)]
mod tests;

pub use finding::Finding;
pub use kind::PiiType;
pub use masking::mask;
pub use scanner::{Scanner, ScannerOptions};
