//! Console pages: settings (being built).
use crate::state::FirewallState;
use axum::Router;

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r
}
