//! Console pages: rules (being built).
use crate::state::XdrState;
use axum::Router;

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r
}
