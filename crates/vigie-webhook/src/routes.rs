//! HTTP routes of webhooks, for a half whose state yields [`Webhooks`] and an `Auth`.
use crate::model::{Attempt, NewWebhook, READ_ONLY, ReplayRequest, ReplayResult, TestResult, Webhook, WebhookPatch, WebhookWithSecret};
use crate::service::{Webhooks, parse_webhook_id};
use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::auth::{Auth, Permission, Principal};
use vigie_core::http::{Admin, ApiError, ApiJson, ApiQuery, ErrorBody, Page, READ_ONLY_FIELDS, bad_query, page_limit};

/// The webhook routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    Auth: FromRef<S>,
    Webhooks: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(webhooks_create, webhooks_list))
        .routes(routes!(webhooks_get, webhooks_update, webhooks_delete))
        .routes(routes!(webhooks_test))
        .routes(routes!(webhooks_rotate_secret))
        .routes(routes!(webhooks_deliveries))
        .routes(routes!(webhooks_replay))
}

/// A body with the read-only fields a GET returns dropped, then read strictly.
fn writable<T: DeserializeOwned>(mut map: serde_json::Map<String, serde_json::Value>) -> Result<T, ApiError> {
    for f in READ_ONLY_FIELDS.iter().chain(READ_ONLY) {
        map.remove(*f);
    }
    vigie_core::http::parse_json(&serde_json::to_vec(&map).map_err(ApiError::internal)?)
}

/// Create a webhook (admins). The answer carries the signing secret, shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = NewWebhook,
    responses((status = 201, body = WebhookWithSecret), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn webhooks_create(
    State(svc): State<Webhooks>,
    Admin(p): Admin,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    Ok((StatusCode::CREATED, Json(svc.create(&p, writable(body)?).await?)))
}

/// Filters of the webhook list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WebhookListParams {
    /// Only active (true) or inactive (false) webhooks.
    pub active: Option<bool>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List webhooks.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])), params(WebhookListParams),
    responses((status = 200, body = Page<Webhook>)))]
async fn webhooks_list(
    State(svc): State<Webhooks>,
    p: Principal,
    ApiQuery(q): ApiQuery<WebhookListParams>,
) -> Result<Json<Page<Webhook>>, ApiError> {
    p.require(Permission::ReadConfig)?;
    let limit = page_limit(q.limit);
    let after = match q.cursor {
        Some(c) => Some(parse_webhook_id(&c).map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?),
        None => None,
    };
    let rows = svc.list(p.tenant_id, q.active, after, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |w| w.id.clone())))
}

/// One webhook, with its health.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody)))]
async fn webhooks_get(State(svc): State<Webhooks>, p: Principal, Path(id): Path<String>) -> Result<Json<Webhook>, ApiError> {
    p.require(Permission::ReadConfig)?;
    Ok(Json(svc.get(p.tenant_id, &parse_webhook_id(&id)?).await?))
}

/// Change a webhook (admins); absent fields are kept. `active: true` re-enables a disabled one.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)), request_body = WebhookPatch,
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn webhooks_update(
    State(svc): State<Webhooks>,
    Admin(p): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<Webhook>, ApiError> {
    let id = parse_webhook_id(&id)?;
    Ok(Json(svc.update(&p, &id, writable(body)?).await?))
}

/// Delete a webhook, its pending deliveries and its delivery log (admins).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn webhooks_delete(State(svc): State<Webhooks>, Admin(p): Admin, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    svc.delete(&p, &parse_webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deliver a `webhook.test` event now (admins); answers with the receiver's status, latency and
/// the first KiB of its body. Works on an inactive webhook too.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = TestResult), (status = 404, body = ErrorBody)))]
async fn webhooks_test(State(svc): State<Webhooks>, Admin(p): Admin, Path(id): Path<String>) -> Result<Json<TestResult>, ApiError> {
    Ok(Json(svc.test(&p, &parse_webhook_id(&id)?).await?))
}

/// Replace the signing secret (admins). The old secret keeps signing beside the new one for
/// 24 hours; the new one is shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody)))]
async fn webhooks_rotate_secret(
    State(svc): State<Webhooks>,
    Admin(p): Admin,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    Ok(Json(svc.rotate_secret(&p, &parse_webhook_id(&id)?).await?))
}

/// Filters of the delivery log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryListParams {
    /// Only attempts that carried this event.
    pub event_id: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The delivery log: every request made to the webhook, newest first, with its time, status
/// code or network error, latency and the first KiB of the answer.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), DeliveryListParams), responses((status = 200, body = Page<Attempt>), (status = 404, body = ErrorBody)))]
async fn webhooks_deliveries(
    State(svc): State<Webhooks>,
    p: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveryListParams>,
) -> Result<Json<Page<Attempt>>, ApiError> {
    p.require(Permission::ReadConfig)?;
    let id = parse_webhook_id(&id)?;
    let limit = page_limit(q.limit);
    let before = match q.cursor {
        Some(c) => Some(c.parse::<i64>().map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?),
        None => None,
    };
    let rows = svc.attempts(p.tenant_id, &id, q.event_id, before, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |a| a.id.to_string())))
}

/// Deliver events again (admins): one (`event_id`) or every subscribed event of a range
/// (`from`, `to`; `failed_only` for those whose delivery failed for good). Each restarts from
/// its first attempt, with the same `webhook-id`.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/replay", tag = "webhooks", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = ReplayRequest, responses((status = 202, body = ReplayResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn webhooks_replay(
    State(svc): State<Webhooks>,
    Admin(p): Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, Json<ReplayResult>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(svc.replay(&p, &parse_webhook_id(&id)?, req).await?)))
}
