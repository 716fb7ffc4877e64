//! HTTP routes of policies.
use super::{NewPolicy, Policy, PolicyPatch};
use crate::state::FirewallState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vigie_core::auth::{Permission, Principal};
use vigie_core::http::{Admin, ApiError, ApiJsonWrite, ApiQuery, ErrorBody, Page, bad_query, page_limit, path_id};

/// The policy routes.
pub fn router() -> OpenApiRouter<FirewallState> {
    OpenApiRouter::new()
        .routes(routes!(policies_create, policies_list))
        .routes(routes!(policies_get, policies_update, policies_replace, policies_delete))
        .routes(routes!(policies_enable))
        .routes(routes!(policies_disable))
}

/// Create a policy (admins). New policies start disabled unless `enabled` is true.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", security(("bearer" = [])), request_body = NewPolicy,
    responses((status = 201, body = Policy), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn policies_create(
    State(st): State<FirewallState>,
    Admin(p): Admin,
    ApiJsonWrite(new): ApiJsonWrite<NewPolicy>,
) -> Result<(StatusCode, Json<Policy>), ApiError> {
    Ok((StatusCode::CREATED, Json(super::create(&st, &p, new).await?)))
}

/// Filters of the policy list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PolicyListParams {
    /// Only enabled (true) or disabled (false) policies.
    pub enabled: Option<bool>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_cursor(c: &str) -> Option<(i64, Uuid)> {
    let (p, id) = c.split_once(':')?;
    Some((p.parse().ok()?, Uuid::parse_str(id).ok()?))
}

/// List policies in evaluation order (priority, then creation).
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", security(("bearer" = [])), params(PolicyListParams),
    responses((status = 200, body = Page<Policy>)))]
async fn policies_list(
    State(st): State<FirewallState>,
    p: Principal,
    ApiQuery(q): ApiQuery<PolicyListParams>,
) -> Result<Json<Page<Policy>>, ApiError> {
    p.require(Permission::ReadConfig)?;
    let limit = page_limit(q.limit);
    let after = match q.cursor.as_deref() {
        Some(c) => Some(parse_cursor(c).ok_or_else(|| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?),
        None => None,
    };
    let rows = super::list(&st, p.tenant_id, q.enabled, after, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |p| format!("{}:{}", p.priority, p.id))))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody)))]
async fn policies_get(State(st): State<FirewallState>, p: Principal, Path(id): Path<String>) -> Result<Json<Policy>, ApiError> {
    p.require(Permission::ReadConfig)?;
    Ok(Json(super::get(&st, p.tenant_id, path_id(&id, "policy")?).await?))
}

/// Change a policy (admins); absent fields are kept, `rules` is replaced whole.
#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = PolicyPatch,
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn policies_update(
    State(st): State<FirewallState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    ApiJsonWrite(patch): ApiJsonWrite<PolicyPatch>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(super::update(&st, &p, path_id(&id, "policy")?, patch).await?))
}

/// Replace a policy (admins): the body is a whole policy, as for creation; absent optional
/// fields take their defaults (disabled, priority 100, empty description).
#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = NewPolicy,
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn policies_replace(
    State(st): State<FirewallState>,
    Admin(p): Admin,
    Path(id): Path<String>,
    ApiJsonWrite(new): ApiJsonWrite<NewPolicy>,
) -> Result<Json<Policy>, ApiError> {
    let patch = PolicyPatch {
        name: Some(new.name),
        description: Some(new.description),
        rules: Some(new.rules),
        enabled: Some(new.enabled),
        priority: Some(new.priority.unwrap_or(super::DEFAULT_PRIORITY)),
    };
    Ok(Json(super::update(&st, &p, path_id(&id, "policy")?, patch).await?))
}

/// Delete a policy (admins).
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn policies_delete(State(st): State<FirewallState>, Admin(p): Admin, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    super::delete(&st, &p, path_id(&id, "policy")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a policy (admins).
#[utoipa::path(post, path = "/api/v1/policies/{id}/enable", tag = "policies", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody)))]
async fn policies_enable(State(st): State<FirewallState>, Admin(p): Admin, Path(id): Path<String>) -> Result<Json<Policy>, ApiError> {
    Ok(Json(super::update(&st, &p, path_id(&id, "policy")?, PolicyPatch { enabled: Some(true), ..PolicyPatch::default() }).await?))
}

/// Disable a policy (admins).
#[utoipa::path(post, path = "/api/v1/policies/{id}/disable", tag = "policies", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Policy), (status = 404, body = ErrorBody)))]
async fn policies_disable(State(st): State<FirewallState>, Admin(p): Admin, Path(id): Path<String>) -> Result<Json<Policy>, ApiError> {
    Ok(Json(super::update(&st, &p, path_id(&id, "policy")?, PolicyPatch { enabled: Some(false), ..PolicyPatch::default() }).await?))
}
