//! The AI firewall half of Vigie: records AI interactions without their raw text (a text sent
//! is scanned by `vigie-pii`, hashed and dropped), masks what they found, scores the risk,
//! evaluates the tenant's policies (block, coach, log), and writes the interaction and the
//! events it implies into the outbox in one transaction. `POST /api/v1/scan` gives the same
//! verdict without storing anything. Its HTTP API is compatible with the Noxys AI firewall API.
//!
//! Must not depend on: the XDR crate (the halves talk only over HTTP), an HTTP client (outbound
//! calls go through `vigie-webhook`), or anything that prints or reads the environment.
//!
//! Architecture invariants: no raw classification value or prompt text reaches the database,
//! the outbox or a log line; an outbox row exists if and only if the change it describes was
//! committed; policy evaluation never touches the database on the hot path (see
//! [`policy::PolicyCache`]).
#![warn(missing_docs)]

pub mod console;
pub mod events;
pub mod interactions;
pub mod model;
pub mod platforms;
pub mod policy;
pub mod scan;
pub mod server;
pub mod state;
#[cfg(test)]
mod test_support;
pub mod testdata;

pub use server::{FirewallOptions, app, open, openapi, serve};
pub use state::FirewallState;
