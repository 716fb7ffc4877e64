//! Console page: platforms — Vigie's catalogue and the tenant's custom platforms, with their
//! vetting (an admin vets or withdraws vetting through the platform API) and the form that adds
//! a custom platform. Reads go through the same merge of the catalogue and the tenant's rows as
//! `GET /api/v1/platforms`.
use super::{Console, PageResult};
use crate::platforms::Platform;
use crate::state::FirewallState;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use vigie_core::auth::Permission;
use vigie_web::Shell;

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/platforms", get(list))
}

/// A platform as the page shows it.
struct PlatformRow {
    id: String,
    name: String,
    hosts: String,
    vetted: bool,
    /// The interactions list filtered on this platform.
    interactions: String,
}

impl From<Platform> for PlatformRow {
    fn from(p: Platform) -> PlatformRow {
        PlatformRow {
            interactions: format!("/interactions?platform_id={}", vigie_web::form::encode(&p.id)),
            id: p.id,
            name: p.name,
            hosts: p.hosts.join(", "),
            vetted: p.vetted,
        }
    }
}

#[derive(Template)]
#[template(path = "platforms.html")]
struct PlatformsPage {
    shell: Shell,
    can_write: bool,
    catalogue: Vec<PlatformRow>,
    custom: Vec<PlatformRow>,
    /// Custom platforms before the filter.
    custom_total: usize,
    /// The filter: "" (all), "vetted" or "unvetted".
    show: String,
}

#[derive(Deserialize)]
struct ListParams {
    show: Option<String>,
}

async fn list(State(st): State<FirewallState>, console: Console, Query(q): Query<ListParams>) -> PageResult {
    console.require(Permission::ReadConfig)?;
    let show = match q.show.as_deref() {
        Some(s @ ("vetted" | "unvetted")) => s.to_owned(),
        _ => String::new(),
    };
    let all = crate::platforms::routes::all(&st, console.principal.tenant_id).await?;
    let custom_total = all.iter().filter(|p| !p.builtin).count();
    let (mut catalogue, mut custom) = (Vec::new(), Vec::new());
    for p in all {
        let keep = match show.as_str() {
            "vetted" => p.vetted,
            "unvetted" => !p.vetted,
            _ => true,
        };
        if !keep {
            continue;
        }
        if p.builtin { catalogue.push(PlatformRow::from(p)) } else { custom.push(PlatformRow::from(p)) }
    }
    let page = PlatformsPage {
        shell: console.shell("Platforms", "/platforms"),
        can_write: console.can_write(),
        catalogue,
        custom,
        custom_total,
        show,
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}
