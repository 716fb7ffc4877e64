//! HTTP routes of interactions.
use super::{Interaction, ListFilter, NewInteraction};
use crate::model::{Action, normalize_type};
use crate::state::FirewallState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vigie_core::auth::{Permission, Principal};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, ErrorBody, FieldError, Page, Recorder, page_limit, path_id};

/// The interaction routes.
pub fn router() -> OpenApiRouter<FirewallState> {
    OpenApiRouter::new()
        .routes(routes!(interactions_create, interactions_list))
        .routes(routes!(interactions_get))
        .routes(routes!(interactions_events))
}

/// Record an AI interaction and get the policy decision. A `text` (or `content_metadata.text`)
/// is scanned by the server, hashed (a `content_hash` that differs is refused) and dropped; its
/// findings join the classifications. Classification values are masked before anything is
/// stored; offsets are in Unicode code points. The stored risk is the higher of the client's
/// `risk_score` and the server's score of the classifications. A text over `max_text_bytes`
/// gets 413 `text_too_large`. Needs a token with the `admin` or `ingest` role.
#[utoipa::path(post, path = "/api/v1/interactions", tag = "interactions", security(("bearer" = [])), request_body = NewInteraction,
    responses((status = 201, body = Interaction), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, description = "the text is longer than max_text_bytes (code text_too_large), or the body too large", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn interactions_create(
    State(st): State<FirewallState>,
    Recorder(p): Recorder,
    ApiJson(req): ApiJson<NewInteraction>,
) -> Result<(StatusCode, Json<Interaction>), ApiError> {
    Ok((StatusCode::CREATED, Json(super::record(&st, &p, req).await?)))
}

/// Filters of the interaction list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InteractionListParams {
    /// Only this platform.
    pub platform_id: Option<String>,
    /// Only this person.
    pub user_id: Option<Uuid>,
    /// Only this decision: block, coach or log.
    pub action: Option<String>,
    /// Only risk at or above this score.
    pub min_risk: Option<f64>,
    /// Only interactions with a classification of this type (`CREDIT_CARD`; aliases accepted).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Recorded at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Recorded before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List interactions, newest first.
#[utoipa::path(get, path = "/api/v1/interactions", tag = "interactions", security(("bearer" = [])), params(InteractionListParams),
    responses((status = 200, body = Page<Interaction>), (status = 400, body = ErrorBody)))]
pub(crate) async fn interactions_list(
    State(st): State<FirewallState>,
    p: Principal,
    ApiQuery(q): ApiQuery<InteractionListParams>,
) -> Result<Json<Page<Interaction>>, ApiError> {
    p.require(Permission::ReadData)?;
    let mut errors = Vec::new();
    let action = q.action.as_deref().and_then(|a| {
        Action::parse(&a.to_ascii_lowercase()).or_else(|| {
            errors.push(FieldError::new("action", format!("{a:?} is not one of {}", Action::expected())));
            None
        })
    });
    if q.min_risk.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        errors.push(FieldError::new("min_risk", "must be within 0..1"));
    }
    let kind = q.kind.as_deref().and_then(|k| {
        normalize_type(k).or_else(|| {
            errors.push(FieldError::new("type", format!("{k:?} is not a type code (e.g. EMAIL, CREDIT_CARD, IBAN)")));
            None
        })
    });
    if let (Some(f), Some(t)) = (q.from, q.to)
        && f >= t
    {
        errors.push(FieldError::new("to", "must be after from"));
    }
    let before = q
        .cursor
        .as_deref()
        .map(|c| Uuid::parse_str(c).map_err(|_| FieldError::new("cursor", "pass the next_cursor of the previous page unchanged")));
    let before = match before {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        Some(Ok(b)) => Some(b),
        None => None,
    };
    if !errors.is_empty() {
        let mut e = ApiError::validation(errors);
        e.status = StatusCode::BAD_REQUEST;
        e.code = "invalid_query".into();
        return Err(e);
    }
    let limit = page_limit(q.limit);
    let filter = ListFilter {
        platform_id: q.platform_id.map(|p| p.to_ascii_lowercase()),
        user_id: q.user_id,
        action,
        min_risk: q.min_risk,
        kind,
        from: q.from,
        to: q.to,
        before,
    };
    let rows = super::list(&st, p.tenant_id, filter, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |i| i.id.to_string())))
}

/// One interaction.
#[utoipa::path(get, path = "/api/v1/interactions/{id}", tag = "interactions", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Interaction), (status = 404, body = ErrorBody)))]
pub(crate) async fn interactions_get(
    State(st): State<FirewallState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Interaction>, ApiError> {
    p.require(Permission::ReadData)?;
    Ok(Json(super::get(&st, p.tenant_id, path_id(&id, "interaction")?).await?))
}

/// One event an interaction emitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmittedEvent {
    /// The event's id (`evt_…`), as webhooks deliver it.
    pub id: String,
    /// Its type (`interaction.created`, `interaction.policy_violated`…).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The events an interaction emitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmittedEvents {
    /// In the order they were written.
    pub items: Vec<EmittedEvent>,
}

/// The events an interaction emitted into the outbox (what webhooks subscribed to their types
/// deliver), in writing order.
#[utoipa::path(get, path = "/api/v1/interactions/{id}/events", tag = "interactions", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = EmittedEvents), (status = 404, body = ErrorBody)))]
pub(crate) async fn interactions_events(
    State(st): State<FirewallState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<EmittedEvents>, ApiError> {
    p.require(Permission::ReadData)?;
    let i = super::get(&st, p.tenant_id, path_id(&id, "interaction")?).await?;
    let items = super::events(&st, &i).await?.into_iter().map(|(id, kind)| EmittedEvent { id, kind }).collect();
    Ok(Json(EmittedEvents { items }))
}
