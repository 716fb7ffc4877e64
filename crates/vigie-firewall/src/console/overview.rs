//! Console page: the overview (interactions per day by action, top platforms, top
//! classification types).
use super::{Console, PageResult};
use crate::state::FirewallState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use vigie_core::auth::Permission;
use vigie_web::Shell;

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/", get(overview))
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    shell: Shell,
}

async fn overview(State(_st): State<FirewallState>, console: Console) -> PageResult {
    console.require(Permission::ReadData)?;
    let shell = console.shell("Overview", "/");
    Ok(vigie_web::page(StatusCode::OK, &OverviewPage { shell }))
}
