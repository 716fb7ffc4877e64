//! Console page: the dashboards (the default "AI usage" and the space's own).
use super::{Console, PageResult};
use crate::keys::EventsRead;
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use vigie_web::Shell;

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/", get(home))
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    shell: Shell,
}

async fn home(State(_st): State<XdrState>, console: Console) -> PageResult {
    if !console.can(crate::keys::Scope::EventsRead) {
        // The dashboard reads events; a key that cannot goes to the first page it may see.
        if let Some((href, _, _)) = super::NAV.iter().find(|(_, _, s)| console.can(*s)) {
            return Ok(vigie_web::redirect(href));
        }
    }
    console.authorized::<EventsRead>()?;
    let shell = console.shell("Dashboard", "/");
    Ok(vigie_web::page(StatusCode::OK, &DashboardPage { shell }))
}
