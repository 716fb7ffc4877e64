//! HTTP routes of authentication, users, API tokens and the caller's tenant. Mounted by each
//! half that has users; generic over the half's state.
use super::{ApiToken, Auth, Permission, Principal, Role, Session, Tenant, User, UserRole, UserStatus};
use crate::http::{Admin, ApiError, ApiJson, ApiQuery, ClientIp, ErrorBody, Page, bad_query, page_limit, path_id};
use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The routes, for a half whose state yields an [`Auth`].
pub fn router<S>() -> OpenApiRouter<S>
where
    Auth: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(auth_login))
        .routes(routes!(auth_me))
        .routes(routes!(auth_password))
        .routes(routes!(auth_accept_invite))
        .routes(routes!(tenant_me))
        .routes(routes!(users_invite))
        .routes(routes!(users_list))
        .routes(routes!(users_get, users_update))
        .routes(routes!(users_deactivate))
        .routes(routes!(users_activate))
        .routes(routes!(tokens_create, tokens_list))
        .routes(routes!(tokens_revoke))
}

/// Login request. Other fields (`remember_me`…) are ignored.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// E-mail (case-insensitive).
    pub email: String,
    /// Password.
    pub password: String,
    /// Tenant name; needed only when this e-mail has accounts with the same password in several
    /// tenants.
    pub tenant: Option<String>,
}

/// Log in; returns a bearer token valid 24 hours. Five failed attempts per minute per address
/// are allowed, then 429.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Session), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn auth_login(
    State(auth): State<Auth>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(auth.login(ip, &req.email, &req.password, req.tenant.as_deref()).await?))
}

/// The caller as the server sees them.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// `user` or `token`.
    pub kind: &'static str,
    /// User or token id.
    pub id: Uuid,
    /// The user's e-mail or the token's name.
    pub name: String,
    /// Current role.
    pub role: Role,
    /// Tenant id.
    pub tenant_id: Uuid,
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn auth_me(p: Principal) -> Json<Me> {
    let (kind, id, name) = match &p.actor {
        super::Actor::User { id, email } => ("user", *id, email.clone()),
        super::Actor::Token { id, name, .. } => ("token", *id, name.clone()),
    };
    Json(Me { kind, id, name, role: p.role, tenant_id: p.tenant_id })
}

/// Password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new password (12 characters or more).
    #[schema(min_length = 12)]
    pub new_password: String,
}

/// Change your password; every other login token of yours stops working. Returns a new token.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 200, body = Session), (status = 422, body = ErrorBody)))]
async fn auth_password(State(auth): State<Auth>, p: Principal, ApiJson(req): ApiJson<ChangePassword>) -> Result<Json<Session>, ApiError> {
    Ok(Json(auth.change_password(&p, &req.current_password, &req.new_password).await?))
}

/// Invitation acceptance.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    /// The invitation token (`vgi_…`).
    pub token: String,
    /// The password to set (12 characters or more).
    #[schema(min_length = 12)]
    pub password: String,
    /// Optional name to show.
    pub display_name: Option<String>,
}

/// Accept an invitation: set a password, activate the account, and log in.
#[utoipa::path(post, path = "/api/v1/auth/accept-invite", tag = "auth", request_body = AcceptInvite,
    responses((status = 200, body = Session), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn auth_accept_invite(
    State(auth): State<Auth>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<AcceptInvite>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(auth.accept_invite(ip, &req.token, &req.password, req.display_name).await?))
}

/// The caller's tenant.
#[utoipa::path(get, path = "/api/v1/tenants/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Tenant), (status = 401, body = ErrorBody)))]
async fn tenant_me(State(auth): State<Auth>, p: Principal) -> Result<Json<Tenant>, ApiError> {
    Ok(Json(auth.tenant(p.tenant_id).await?))
}

/// An invitation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// E-mail, unique in the tenant.
    #[schema(format = "email")]
    pub email: String,
    /// `admin` or `viewer`.
    pub role: UserRole,
    /// Name to show.
    pub display_name: Option<String>,
}

/// A created invitation: hand the token to the person (it is shown only here).
#[derive(Serialize, ToSchema)]
pub struct Invitation {
    /// The pending user.
    #[serde(flatten)]
    pub user: User,
    /// Accept with `POST /api/v1/auth/accept-invite`.
    pub invite_token: String,
    /// When the invitation lapses.
    pub invite_expires_at: DateTime<Utc>,
}

/// Invite a user (admins).
#[utoipa::path(post, path = "/api/v1/users/invite", tag = "users", security(("bearer" = [])), request_body = InviteRequest,
    responses((status = 201, body = Invitation), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn users_invite(
    State(auth): State<Auth>,
    Admin(p): Admin,
    ApiJson(req): ApiJson<InviteRequest>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let (user, invite_token, invite_expires_at) = auth.invite(&p, &req.email, req.role.into(), req.display_name).await?;
    Ok((StatusCode::CREATED, Json(Invitation { user, invite_token, invite_expires_at })))
}

/// Filters of the user list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserListParams {
    /// Only this role.
    pub role: Option<UserRole>,
    /// Only this status.
    pub status: Option<UserStatus>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn cursor(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|c| Uuid::parse_str(c).map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))).transpose()
}

/// List the tenant's users, in creation order.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(UserListParams),
    responses((status = 200, body = Page<User>)))]
async fn users_list(State(auth): State<Auth>, p: Principal, ApiQuery(q): ApiQuery<UserListParams>) -> Result<Json<Page<User>>, ApiError> {
    p.require(Permission::ReadData)?;
    let limit = page_limit(q.limit);
    let rows = auth.list_users(p.tenant_id, q.role.map(Role::from), q.status, cursor(q.cursor.as_deref())?, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |u| u.id.to_string())))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn users_get(State(auth): State<Auth>, p: Principal, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    p.require(Permission::ReadData)?;
    Ok(Json(auth.get_user(p.tenant_id, path_id(&id, "user")?).await?))
}

/// A change to a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New role (`admin` or `viewer`); the user's login tokens are revoked.
    pub role: Option<UserRole>,
    /// New name to show.
    pub display_name: Option<String>,
}

/// Change a user's role or name (admins).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn users_update(
    State(auth): State<Auth>,
    Admin(p): Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(auth.update_user(&p, path_id(&id, "user")?, req.role.map(Role::from), req.display_name).await?))
}

/// Deactivate a user: they cannot log in and their tokens stop working (admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn users_deactivate(State(auth): State<Auth>, Admin(p): Admin, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    Ok(Json(auth.set_active(&p, path_id(&id, "user")?, false).await?))
}

/// Reactivate a deactivated user (admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/activate", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn users_activate(State(auth): State<Auth>, Admin(p): Admin, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    Ok(Json(auth.set_active(&p, path_id(&id, "user")?, true).await?))
}

/// A new API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Label (e.g. `extension-paris-office`).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// `ingest` (record interactions, read policies: for extensions and proxies), `viewer` or `admin`.
    pub role: Role,
    /// Optional expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created token: the secret is shown here only.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token's record.
    #[serde(flatten)]
    pub info: ApiToken,
    /// Send as `Authorization: Bearer <token>`. Not retrievable later.
    pub token: String,
}

/// Create an API token (admins).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = ErrorBody)))]
async fn tokens_create(
    State(auth): State<Auth>,
    Admin(p): Admin,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let (info, token) = auth.create_token(&p, &req.name, req.role, req.expires_at).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

/// Pagination of the token list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenListParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List the tenant's API tokens (admins).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])), params(TokenListParams),
    responses((status = 200, body = Page<ApiToken>)))]
async fn tokens_list(
    State(auth): State<Auth>,
    Admin(p): Admin,
    ApiQuery(q): ApiQuery<TokenListParams>,
) -> Result<Json<Page<ApiToken>>, ApiError> {
    let limit = page_limit(q.limit);
    let rows = auth.list_tokens(p.tenant_id, cursor(q.cursor.as_deref())?, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id.to_string())))
}

/// Revoke an API token; it stops working at once (admins).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
async fn tokens_revoke(State(auth): State<Auth>, Admin(p): Admin, Path(id): Path<String>) -> Result<Json<ApiToken>, ApiError> {
    Ok(Json(auth.revoke_token(p.tenant_id, path_id(&id, "token")?).await?))
}
