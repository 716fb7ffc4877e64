//! HTTP routes of API keys (scope `admin`, within the key's own space).
use crate::keys::{AdminScope, ApiKey, Authorized, CreatedKey, NewKey};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use vigie_core::http::{ApiError, ApiJson, ApiQuery, Page, bad_query, page_limit, path_id};

/// Create an API key in the caller's space; the key (and its signing secret) is shown once.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])), request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 422)))]
pub async fn keys_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiJson(new): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let created = st.keys.create(caller.space_id, new, Some(format!("key:{}", caller.key_id))).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Filters of the key list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeyListParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The space's keys (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])), params(KeyListParams),
    responses((status = 200, body = Page<ApiKey>)))]
pub async fn keys_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiQuery(q): ApiQuery<KeyListParams>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    let limit = page_limit(q.limit);
    let after = match q.cursor {
        Some(c) => Some(uuid::Uuid::parse_str(&c).map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?),
        None => None,
    };
    let rows = st.keys.list(caller.space_id, after, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |k| k.id.to_string())))
}

/// Revoke a key of the space; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = 404)))]
pub async fn keys_revoke(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    Ok(Json(st.keys.revoke(caller.space_id, path_id(&id, "key")?).await?))
}

/// The caller's space.
#[utoipa::path(get, path = "/api/v1/space", tag = "keys", security(("bearer" = [])), responses((status = 200, body = crate::keys::Space)))]
pub async fn space_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
) -> Result<Json<crate::keys::Space>, ApiError> {
    Ok(Json(st.keys.space(caller.space_id).await?))
}

/// A change to the caller's space.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpacePatch {
    /// Days events are kept, 1–3650 (default 1095: three years).
    pub retention_days: Option<i64>,
    /// The analyst on duty (1–100 characters; null clears): cases a rule assigns to `on-duty`
    /// go to them.
    #[serde(default, deserialize_with = "vigie_core::http::present")]
    #[schema(value_type = Option<String>)]
    pub on_duty: Option<Option<String>>,
}

/// Change the caller's space (its retention).
#[utoipa::path(patch, path = "/api/v1/space", tag = "keys", security(("bearer" = [])), request_body = SpacePatch, responses((status = 200, body = crate::keys::Space), (status = 422)))]
pub async fn space_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiJson(patch): ApiJson<SpacePatch>,
) -> Result<Json<crate::keys::Space>, ApiError> {
    if let Some(d) = patch.retention_days {
        if !(1..=3650).contains(&d) {
            return Err(ApiError::validation(vec![vigie_core::http::FieldError::new("retention_days", format!("{d} is outside 1..3650"))]));
        }
        st.keys.set_retention(caller.space_id, d).await?;
    }
    if let Some(who) = patch.on_duty {
        let who = who.map(|w| w.trim().to_owned());
        if who.as_ref().is_some_and(|w| w.is_empty() || w.chars().count() > 100) {
            return Err(ApiError::validation(vec![vigie_core::http::FieldError::new("on_duty", "1 to 100 characters; null clears it")]));
        }
        st.keys.set_on_duty(caller.space_id, who).await?;
    }
    Ok(Json(st.keys.space(caller.space_id).await?))
}
