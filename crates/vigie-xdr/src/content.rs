//! The default content a new space gets (ARCHITECTURE.md, "Default content"): the rules, the
//! case template, the playbook and the dashboard, installed in `ensure_space`'s transaction.
use rusqlite::Connection;
use vigie_core::StoreError;
use vigie_core::ids::IdGen;

/// Installs what a space lacks of the default content (each part idempotent); the number of
/// rules installed (the detection consumer reloads the space when it is not zero).
pub fn install(c: &Connection, space_no: i64, enabled: bool, now_us: i64, ids: &IdGen) -> Result<usize, StoreError> {
    let rules = crate::rules::install_defaults(c, space_no, enabled, now_us, ids)?;
    crate::cases::install_default_templates(c, space_no, now_us, ids)?;
    crate::playbooks::install_defaults(c, space_no, enabled, now_us, ids)?;
    crate::dashboards::install_default(c, space_no, now_us, ids)?;
    Ok(rules)
}
