//! The people directory: who the events name (user_id → display name, e-mail, manager's e-mail,
//! department, last security-awareness training), through the API and CSV import.
use crate::state::XdrState;
use utoipa_axum::router::OpenApiRouter;

/// The directory routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r
}
