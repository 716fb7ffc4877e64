//! Playbooks: YAML definitions compiled into graphs (`vigie-playbook`), their triggers, the
//! runner that records every run and step, replays and dry runs, and the HTTP API
//! (`/api/v1/playbooks…`).
use crate::state::XdrState;
use rusqlite::Connection;
use utoipa_axum::router::OpenApiRouter;
use vigie_core::StoreError;
use vigie_core::ids::IdGen;

/// Installs the default playbooks missing from a space (`content/playbooks/*.yaml`).
pub fn install_defaults(_c: &Connection, _space_no: i64, _enabled: bool, _now_us: i64, _ids: &IdGen) -> Result<usize, StoreError> {
    Ok(0)
}

/// The playbook routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r
}
