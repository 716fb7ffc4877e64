//! What every HTTP API of Vigie shares: the one error type (`{"error", "code"}` with the right
//! status), the JSON and query extractors that report bad input in that shape, the caller's
//! identity as an extractor, and cursor pagination.
use crate::auth::{Auth, AuthError, Permission, Principal};
use crate::error::StoreError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use utoipa::ToSchema;

/// One offending field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// The field's path in the request (`rules.conditions[1].value`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A sentence a person can act on.
    pub error: String,
    /// A stable snake_case code for programs.
    pub code: String,
    /// The offending fields, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// The API error: a status, a stable code and a message, rendered as [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: Cow<'static, str>,
    /// The sentence shown to the caller.
    pub message: String,
    /// Offending fields, if any.
    pub fields: Vec<FieldError>,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: Cow::Borrowed(code), message: message.into(), fields: Vec::new(), retry_after: None }
    }
    /// 400: the request cannot be read.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 422 listing every offending field.
    pub fn validation(fields: Vec<FieldError>) -> ApiError {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!(
                "{} fields are invalid: {}",
                many.len(),
                many.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
            ),
        };
        ApiError { fields, ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message) }
    }
    /// 404 for a resource that does not exist in the caller's tenant.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what} with this id in your tenant"))
    }

    /// Converts a store error, naming `what` when it is a missing row.
    pub fn from_store(what: &'static str) -> impl FnOnce(StoreError) -> ApiError {
        move |e| match e {
            StoreError::NotFound => ApiError::not_found(what),
            e => e.into(),
        }
    }
    /// 409 for a conflict with existing data.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 500; the detail goes to the log, not to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error while serving a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on the server; the request was not completed and can be retried",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.status, Json(ErrorBody { error: self.message, code: self.code.into_owned(), fields: self.fields })).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource in your tenant"),
            StoreError::Conflict(what) => ApiError::conflict(format!("{what} already exists")),
            StoreError::Invalid(msg) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", msg),
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down; retry against another instance or in a moment",
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let msg = e.to_string();
        match e {
            AuthError::MissingCredentials => ApiError::new(StatusCode::UNAUTHORIZED, "missing_credentials", msg),
            AuthError::InvalidCredentials | AuthError::InvalidToken => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", msg),
            AuthError::Expired => ApiError::new(StatusCode::UNAUTHORIZED, "token_expired", msg),
            AuthError::InvalidInvitation => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_invitation", msg),
            AuthError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg),
            AuthError::RateLimited { retry_after } => {
                ApiError { retry_after: Some(retry_after), ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", msg) }
            }
            AuthError::LastAdmin => ApiError::conflict(msg),
            AuthError::Invalid(fields) => ApiError::validation(fields),
            AuthError::Store(s) => s.into(),
        }
    }
}

/// A JSON body, read with the API's limits and errors: malformed JSON is a 400 naming the line
/// and column; a wrong type or unknown enum value is a 422 naming the field path; a body over
/// the limit is a 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this endpoint accepts (1 MiB; six times max_text_bytes plus 64 KiB where a text is sent, room for JSON escapes); send less per request",
        )
    } else {
        ApiError::bad_request("unreadable_body", format!("the request body could not be read: {r}"))
    }
}

/// Parses a JSON document into `T` with the error rules of [`ApiJson`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("malformed_json", "the request body is empty; send a JSON object"));
    }
    // Every JSON endpoint takes an object; say so rather than let serde read an array as a struct.
    if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace())
        && *first != b'{'
        && (*first == b'[' || first.is_ascii_digit() || matches!(*first, b'"' | b'-' | b't' | b'f' | b'n'))
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::validation(vec![FieldError::new("body", "expected a JSON object")]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

/// A JSON body for a write endpoint whose resource a GET returns: the read-only `ignored` fields
/// are dropped before `T` (which may refuse unknown fields) reads the rest.
#[derive(Debug, Clone, Default)]
pub struct ApiJsonWrite<T>(pub T);

/// The read-only fields [`ApiJsonWrite`] drops.
pub const READ_ONLY_FIELDS: &[&str] = &["id", "tenant_id", "created_by", "created_at", "updated_at"];

impl<T, S> FromRequest<S> for ApiJsonWrite<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(mut map) = ApiJson::<serde_json::Map<String, serde_json::Value>>::from_request(req, state).await?;
        for f in READ_ONLY_FIELDS {
            map.remove(*f);
        }
        serde_path_to_error::deserialize(serde_json::Value::Object(map)).map(ApiJsonWrite).map_err(|e| {
            let path = e.path().to_string();
            json_error(&path, e.inner())
        })
    }
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON at line {}, column {}: {}", e.line(), e.column(), strip_position(e)),
        ),
        Category::Data => {
            let field = if path == "." || path.is_empty() { "body".to_owned() } else { path.to_owned() };
            ApiError::validation(vec![FieldError::new(field, strip_position(e))])
        }
    }
}

/// The error without its position and without the value the client sent: serde quotes it
/// first between backticks (``invalid type: integer `4532015112830366`, expected a string``,
/// ``unknown variant `…`, expected one of …``), and a value sent in the wrong place can be
/// exactly what must not be echoed (a card number, a prompt). Our own names (a missing
/// field, the expected variants) stay.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => &s,
    };
    if s.starts_with("missing field") {
        return s.to_owned();
    }
    match s.find('`').and_then(|a| s[a + 1..].find('`').map(|b| (a, a + 1 + b))) {
        Some((a, b)) => format!("{}(value not shown){}", &s[..a], &s[b + 1..]),
        None => s.to_owned(),
    }
}

/// Query parameters with the API's error shape (400 naming the parameter).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let field = e.path().to_string();
            let hint = if matches!(field.as_str(), "from" | "to") {
                " (use RFC 3339, e.g. 2026-11-28T09:00:00Z; write + as %2B in a URL)"
            } else {
                ""
            };
            bad_query(&field, format!("{}{hint}", e.inner()))
        })
    }
}

/// The page size of a list request: `limit` clamped to 1–500, 50 when absent.
pub fn page_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(50).clamp(1, 500) as usize
}

/// A page of a list: `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items, newest first unless the endpoint says otherwise.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only signals that more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }
}

/// The cookie of the console of the half with users (the firewall); it holds a login token.
pub const SESSION_COOKIE: &str = "vigie_session";

/// The authenticated caller, taken from `Authorization: Bearer …`, or else from the console's
/// session cookie — then a request that changes something must carry the session's CSRF token
/// in `X-CSRF-Token` (403 `csrf_failed` without it).
impl<S> FromRequestParts<S> for Principal
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        if let Some(token) = bearer(parts) {
            return Ok(auth.authenticate(token).await?);
        }
        if crate::console::has_authorization(&parts.headers) {
            return Err(AuthError::MissingCredentials.into());
        }
        let session = crate::console::cookie(&parts.headers, SESSION_COOKIE).ok_or(AuthError::MissingCredentials)?;
        if !crate::console::is_safe(&parts.method) {
            let presented = crate::console::presented_csrf(&parts.headers).unwrap_or("");
            if !auth.csrf().check(session, presented) {
                return Err(csrf_failed());
            }
        }
        // A console session is a login token, never an API token.
        if session.starts_with("vgt_") {
            return Err(AuthError::InvalidToken.into());
        }
        Ok(auth.authenticate(session).await?)
    }
}

/// 403 for a cookie-authenticated write without its session's CSRF token.
pub fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "this request came with the console's session cookie but without its CSRF token (X-CSRF-Token); reload the page and try again",
    )
}

impl Principal {
    /// Fails with 403 unless the caller's role grants `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.allows(p) { Ok(()) } else { Err(AuthError::Forbidden(p).into()) }
    }
}

/// Declares an extractor for a caller whose role grants one permission. It runs before the body
/// is read, so a caller without the right gets 403 whatever they send.
macro_rules! permitted_caller {
    ($(#[$doc:meta])* $name:ident, $permission:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl<S> FromRequestParts<S> for $name
        where
            Auth: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                let p = Principal::from_request_parts(parts, state).await?;
                p.require($permission)?;
                Ok($name(p))
            }
        }
    };
}

permitted_caller!(
    /// A caller allowed to change data: an admin.
    Admin,
    Permission::Write
);
permitted_caller!(
    /// A caller allowed to record interactions: an admin or an `ingest` token.
    Recorder,
    Permission::Record
);

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The client's address: the TCP peer (proxies' headers are not trusted by default).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(ClientIp(ip))
    }
}

/// Parses a path id, answering 404 (not 400) for something that cannot be an id.
pub fn path_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

/// Middleware turning any error answer that is not JSON (a framework rejection: a path that is
/// not UTF-8, an unsupported media type…) into the API's error shape, so clients always get
/// `{"error", "code"}`.
pub async fn json_errors(req: Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    // JSON is the API's shape; HTML is a console page that says what went wrong itself.
    let is_shaped = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_shaped {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "invalid_credentials",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "request_refused",
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    let mut out = ApiError { status, code: Cow::Borrowed(code), message, fields: Vec::new(), retry_after: None }.into_response();
    if let Some(v) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}

/// A 400 about one query parameter.
pub fn bad_query(field: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::validation(vec![FieldError::new(field, message)]);
    e.status = StatusCode::BAD_REQUEST;
    e.code = Cow::Borrowed("invalid_query");
    e
}

/// The fallback for unknown routes.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", format!("there is no endpoint at {}; see /api/v1/openapi.json", uri.path()))
}

/// The fallback for a known path with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}; see /api/v1/openapi.json", uri.path()),
    )
}

/// Declares the `bearer` security scheme every half's OpenAPI document uses.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The `/readyz` answer of a half: ready when started, not stopping, and its database commits
/// (a no-op write proves the writer thread is alive, not only that reads work).
pub async fn readiness(store: &crate::Store, ready: &std::sync::atomic::AtomicBool) -> (StatusCode, axum::Json<serde_json::Value>) {
    use serde_json::json;
    let db = store.write(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).map_err(crate::StoreError::from)).await;
    match (ready.load(std::sync::atomic::Ordering::Acquire), db) {
        (true, Ok(_)) => (StatusCode::OK, axum::Json(json!({"status": "ready"}))),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "starting or stopping"}))),
        (true, Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "database unavailable", "error": e.to_string()}))),
    }
}

/// Reads a field that may be `null` (`#[serde(default, deserialize_with = "present")]`): absent
/// is `None`, `null` is `Some(None)` — so a patch can clear a value.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
