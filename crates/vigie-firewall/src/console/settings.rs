//! Console pages: users and API tokens (`/users`) — the tenant's users with, for admins,
//! invitations, role changes and deactivation; API tokens (listed, created and shown once,
//! revoked: admins only, as the API allows); the logged-in user's password; and the public page
//! where an invited person sets their password (`/invite`). Changes go to the auth API, except
//! the password change, which needs to replace the session cookie (see [`change_password`]).
use super::{Console, PRODUCT, PageResult};
use crate::state::FirewallState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;
use vigie_core::auth::{Actor, ApiToken, Permission, Role, User, UserStatus};
use vigie_core::http::{ApiError, ApiJson, FieldError, Page, SESSION_COOKIE, page_limit};
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/users", get(users)).route("/users/password", post(change_password)).route("/invite", get(invite_page))
}

/// Rows per page of each list.
const PAGE_SIZE: u32 = 50;

fn status_word(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Pending => "pending",
        UserStatus::Active => "active",
        UserStatus::Inactive => "inactive",
    }
}

/// A user as the page shows them.
struct UserView {
    id: String,
    email: String,
    display_name: String,
    role: &'static str,
    status: &'static str,
    invited_by: Option<String>,
    created: Time,
    last_login: Option<Time>,
    /// The logged-in user (who cannot demote or deactivate themselves from here).
    is_me: bool,
}

impl UserView {
    fn new(u: User, me: Option<Uuid>) -> UserView {
        UserView {
            id: u.id.to_string(),
            is_me: me == Some(u.id),
            email: u.email,
            display_name: u.display_name,
            role: u.role.as_str(),
            status: status_word(u.status),
            invited_by: u.invited_by,
            created: Time(u.created_at),
            last_login: u.last_login_at.map(Time),
        }
    }
}

/// An API token as the page shows it.
struct TokenView {
    id: String,
    name: String,
    role: &'static str,
    prefix: String,
    created_by: Option<String>,
    created: Time,
    last_used: Option<Time>,
    expires: Option<Time>,
    revoked: Option<Time>,
    /// active, expired or revoked.
    state: &'static str,
}

impl TokenView {
    fn new(t: ApiToken, now: chrono::DateTime<chrono::Utc>) -> TokenView {
        let state = if t.revoked_at.is_some() {
            "revoked"
        } else if t.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        TokenView {
            id: t.id.to_string(),
            name: t.name,
            role: t.role.as_str(),
            prefix: t.prefix,
            created_by: t.created_by,
            created: Time(t.created_at),
            last_used: t.last_used_at.map(Time),
            expires: t.expires_at.map(Time),
            revoked: t.revoked_at.map(Time),
            state,
        }
    }
}

#[derive(Deserialize, Default)]
struct UsersQuery {
    role: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    token_cursor: Option<String>,
    password: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    shell: Shell,
    can_write: bool,
    /// True for a person logged in (not an API token): the password form.
    is_user: bool,
    role: String,
    status: String,
    users: Vec<UserView>,
    next_users: Option<String>,
    first_users_page: bool,
    /// None for a viewer (the API lists tokens to admins only).
    tokens: Option<Vec<TokenView>>,
    next_tokens: Option<String>,
    first_tokens_page: bool,
    password_changed: bool,
    /// This console's address, for invitation links.
    origin: String,
}

fn cursor(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.filter(|c| !c.is_empty())
        .map(|c| Uuid::parse_str(c).map_err(|_| vigie_core::http::bad_query("cursor", "follow the Next page link unchanged")))
        .transpose()
}

async fn users(State(st): State<FirewallState>, console: Console, headers: HeaderMap, Query(q): Query<UsersQuery>) -> PageResult {
    console.require(Permission::ReadData)?;
    let p = &console.principal;
    let role = q.role.as_deref().and_then(Role::parse).filter(|r| *r != Role::Ingest);
    let status = match q.status.as_deref() {
        Some("pending") => Some(UserStatus::Pending),
        Some("active") => Some(UserStatus::Active),
        Some("inactive") => Some(UserStatus::Inactive),
        _ => None,
    };
    let (role_s, status_s) = (role.map_or("", Role::as_str), status.map_or("", status_word));
    let limit = page_limit(Some(PAGE_SIZE));
    let after = cursor(q.cursor.as_deref())?;
    let rows = st.auth.list_users(p.tenant_id, role, status, after, limit).await?;
    let page = Page::from_rows(rows, limit, |u| u.id.to_string());
    let enc = vigie_web::form::encode;
    let next_users = page.next_cursor.map(|c| format!("/users?role={role_s}&status={status_s}&cursor={}", enc(&c)));
    let me = match &p.actor {
        Actor::User { id, .. } => Some(*id),
        Actor::Token { .. } => None,
    };
    let users = page.items.into_iter().map(|u| UserView::new(u, me)).collect();
    let can_write = console.can_write();
    let token_after = cursor(q.token_cursor.as_deref())?;
    let (tokens, next_tokens) = if can_write {
        let rows = st.auth.list_tokens(p.tenant_id, token_after, limit).await?;
        let page = Page::from_rows(rows, limit, |t| t.id.to_string());
        let now = st.clock.now();
        let next = page.next_cursor.map(|c| format!("/users?token_cursor={}#tokens", enc(&c)));
        (Some(page.items.into_iter().map(|t| TokenView::new(t, now)).collect()), next)
    } else {
        (None, None)
    };
    let page = UsersPage {
        shell: console.shell("Users & API tokens", "/users"),
        can_write,
        is_user: me.is_some(),
        role: role_s.to_owned(),
        status: status_s.to_owned(),
        users,
        next_users,
        first_users_page: after.is_none(),
        tokens,
        next_tokens,
        first_tokens_page: token_after.is_none(),
        password_changed: q.password.as_deref() == Some("changed"),
        origin: origin(&headers),
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// The password form's body: `POST /api/v1/auth/password`'s, and the new password typed again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
    new_password_again: Option<String>,
}

/// Changes the logged-in user's password through the same `Auth::change_password` as
/// `POST /api/v1/auth/password`. That revokes every login token of the user — the session
/// cookie's too — so this route, unlike the API, puts the new login token into the cookie: the
/// user stays logged in here and only here. Errors are the API's JSON (fields
/// `current_password`, `new_password`, `new_password_again`).
async fn change_password(
    State(st): State<FirewallState>,
    console: Console,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    if req.new_password_again.as_deref().is_some_and(|again| again != req.new_password) {
        return Err(ApiError::validation(vec![FieldError::new("new_password_again", "the two new passwords differ")]));
    }
    let s = st.auth.change_password(&console.principal, &req.current_password, &req.new_password).await?;
    let ttl = (s.expires_at - st.clock.now()).num_seconds().max(60);
    let mut resp = Json(serde_json::json!({"changed": true})).into_response();
    resp.headers_mut().append(header::SET_COOKIE, vigie_core::console::set_cookie(SESSION_COOKIE, &s.token, ttl, st.auth.secure_cookies()));
    Ok(resp)
}

#[derive(Deserialize, Default)]
struct InviteQuery {
    token: Option<String>,
}

/// The page an invited person opens (no session): they set their password through
/// `POST /api/v1/auth/accept-invite`, then log in.
#[derive(Template)]
#[template(path = "users_invite.html")]
struct InvitePage {
    product: &'static str,
    assets: &'static str,
    token: String,
}

async fn invite_page(Query(q): Query<InviteQuery>) -> Response {
    // Only the token's own characters are kept: the value is written into the form.
    let token: String =
        q.token.unwrap_or_default().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(200).collect();
    let mut resp = vigie_web::page(StatusCode::OK, &InvitePage { product: PRODUCT, assets: vigie_web::assets::version(), token });
    // The token is in the address: keep it out of any Referer.
    resp.headers_mut().insert(header::REFERRER_POLICY, axum::http::HeaderValue::from_static("no-referrer"));
    resp
}

/// The address of this console as the browser reached it, for the invitation link.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)));
    let proto = match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    host.map(|h| format!("{proto}://{h}")).unwrap_or_default()
}
