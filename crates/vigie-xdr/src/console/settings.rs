//! Console page: the space and its API keys (scope `admin`) — the space's retention and analyst
//! on duty, the keys (scopes, last use, expiry, revocation) and a form creating one whose secret
//! is shown once, in the page, from the API's answer (it is never part of a page the server
//! renders).
use super::{Console, PageResult};
use crate::keys::{AdminScope, Scope};
use crate::routes::{self as api, KeyListParams};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use vigie_core::http::ApiQuery;
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/settings", get(settings))
}

#[derive(Deserialize, Default)]
struct SettingsQuery {
    cursor: Option<String>,
}

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: Vec<&'static str>,
    signed: bool,
    default_source: Option<String>,
    created: Time,
    created_by: Option<String>,
    last_used: Option<Time>,
    expires: Option<Time>,
    expired: bool,
    revoked: Option<Time>,
    current: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    shell: Shell,
    space_id: String,
    space_name: String,
    retention_days: i64,
    on_duty: String,
    created: Time,
    keys: Vec<KeyRow>,
    scopes: Vec<&'static str>,
    next: Option<String>,
    older: bool,
}

async fn settings(State(st): State<XdrState>, console: Console, Query(q): Query<SettingsQuery>) -> PageResult {
    let auth = console.authorized::<AdminScope>()?;
    let space = api::space_get(State(st.clone()), auth.clone()).await?.0;
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = api::keys_list(State(st.clone()), auth, ApiQuery(KeyListParams { limit: Some(100), cursor: cursor.clone() })).await?.0;
    let now = st.clock.now();
    let keys = page
        .items
        .into_iter()
        .map(|k| KeyRow {
            current: k.id == console.caller.key_id,
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str()).collect(),
            signed: k.signed,
            default_source: k.default_source,
            created: Time(k.created_at),
            created_by: k.created_by,
            last_used: k.last_used_at.map(Time),
            expired: k.expires_at.is_some_and(|t| t <= now),
            expires: k.expires_at.map(Time),
            revoked: k.revoked_at.map(Time),
        })
        .collect();
    let next = page.next_cursor.map(|c| format!("/settings?cursor={}#keys", vigie_web::form::encode(&c)));
    let shell = console.shell("Space & keys", "/settings");
    Ok(vigie_web::page(
        StatusCode::OK,
        &SettingsPage {
            shell,
            space_id: space.id.to_string(),
            space_name: space.name,
            retention_days: space.retention_days,
            on_duty: space.on_duty.unwrap_or_default(),
            created: Time(space.created_at),
            keys,
            scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
            next,
            older: cursor.is_some(),
        },
    ))
}
