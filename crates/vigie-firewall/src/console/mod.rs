//! The firewall's web console: server-rendered pages (askama templates under `templates/`,
//! checked at compile time) behind the same login as the API. A page reads through the same
//! functions the API handlers use, with the logged-in user's role; forms and buttons send their
//! changes to the JSON API itself (the console's script adds the session's CSRF token), so a
//! page can never do what the API would refuse.
//!
//! The session cookie (`vigie_session`) holds the user's login token; logging out removes it.
use crate::state::FirewallState;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use vigie_core::auth::{Permission, Principal};
use vigie_core::console::{self as session, LOGIN_CSRF_COOKIE};
use vigie_core::http::{ApiError, ClientIp, SESSION_COOKIE};
use vigie_web::{LoginPage, Shell};

mod interactions;
mod overview;
mod platforms;
mod policies;
mod settings;
mod trial;
mod webhooks;

/// The console's product name.
pub const PRODUCT: &str = "Firewall";

/// The main navigation: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/interactions", "Interactions"),
    ("/policies", "Policies"),
    ("/try", "Try a prompt"),
    ("/webhooks", "Webhooks"),
    ("/platforms", "Platforms"),
    ("/users", "Users & tokens"),
];

/// The console's routes (pages, log in and out, assets).
pub fn router() -> Router<FirewallState> {
    let r = Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", axum::routing::post(logout))
        .merge(vigie_web::assets::routes());
    let r = overview::routes(r);
    let r = interactions::routes(r);
    let r = policies::routes(r);
    let r = platforms::routes(r);
    let r = trial::routes(r);
    let r = webhooks::routes(r);
    settings::routes(r)
}

/// The logged-in user of a page: their principal, the session token and its CSRF token. A
/// request without a valid session is sent to the login page (and back afterwards); a page
/// request that changes something (a POST that answers HTML) needs the CSRF token too.
pub struct Console {
    /// Who is logged in, with their current role.
    pub principal: Principal,
    /// The session's CSRF token (put into the page's `<meta name="csrf-token">`).
    pub csrf: String,
}

impl Console {
    /// The page shell for a page of `section` (a path of [`NAV`]).
    pub fn shell(&self, title: impl Into<String>, section: &str) -> Shell {
        Shell::new(PRODUCT, title, NAV, section).for_session(self.principal.label(), self.csrf.clone())
    }

    /// 403 page unless the user's role grants `p`.
    pub fn require(&self, p: Permission) -> Result<(), PageError> {
        self.principal.require(p).map_err(PageError::Api)
    }

    /// Whether the user may change things (an admin): pages hide the forms otherwise.
    pub fn can_write(&self) -> bool {
        self.principal.role.allows(Permission::Write)
    }
}

impl FromRequestParts<FirewallState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &FirewallState) -> Result<Self, Self::Rejection> {
        let back = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let Some(token) = session::cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(vigie_web::login_redirect(&back));
        };
        if !session::is_safe(&parts.method) && !st.auth.csrf().check(&token, session::presented_csrf(&parts.headers).unwrap_or("")) {
            return Err(PageError::Api(vigie_core::http::csrf_failed()).into_response());
        }
        if token.starts_with("vgt_") {
            return Err(vigie_web::login_redirect(&back));
        }
        match st.auth.authenticate(&token).await {
            Ok(principal) => Ok(Console { csrf: st.auth.csrf().token(&token), principal }),
            Err(_) => Err(vigie_web::login_redirect(&back)),
        }
    }
}

/// Why a page could not be shown: an API error (its status and sentence, on a page).
#[derive(Debug)]
pub enum PageError {
    /// An error the API would have answered.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError::Api(e)
    }
}

impl From<vigie_core::auth::AuthError> for PageError {
    fn from(e: vigie_core::auth::AuthError) -> PageError {
        PageError::Api(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let PageError::Api(e) = self;
        if e.status.is_server_error() {
            tracing::error!(code = %e.code, error = %e.message, "a console page failed");
        }
        let title = match e.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            s if s.is_server_error() => "Something went wrong",
            _ => "This cannot be shown",
        };
        let text = if e.status.is_server_error() {
            "The server could not show this page; the details are in its log.".to_owned()
        } else {
            e.message
        };
        vigie_web::message(PRODUCT, e.status, title, text)
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

/// The HTML 404 for a path that is neither a page nor an endpoint (JSON for `/api/…` and for
/// clients that do not ask for HTML).
pub async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if uri.path().starts_with("/api/") || !wants_html {
        return vigie_core::http::route_not_found(uri).await.into_response();
    }
    vigie_web::message(PRODUCT, StatusCode::NOT_FOUND, "Not found", "There is no page at this address. The menu at the top lists them all.")
}

/// The 405 for a page path with the wrong method (`GET /logout`): an HTML page for browsers,
/// the API's JSON otherwise.
pub async fn method_not_allowed(headers: HeaderMap, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if uri.path().starts_with("/api/") || !wants_html {
        return vigie_core::http::method_not_allowed(method, uri).await.into_response();
    }
    if uri.path() == "/logout" || uri.path() == "/login" {
        return vigie_web::redirect("/");
    }
    vigie_web::message(
        PRODUCT,
        StatusCode::METHOD_NOT_ALLOWED,
        "Not here",
        "This address is not a page. The menu at the top lists them all.",
    )
}

#[derive(Deserialize)]
struct NextParam {
    next: Option<String>,
}

fn login_form(csrf: String, next: String, error: Option<String>, email: String) -> LoginPage {
    LoginPage { product: PRODUCT, csrf, next, error, with_key: false, email, assets: vigie_web::assets::version() }
}

/// The login page; it sets the login form's CSRF cookie (double submit).
async fn login_page(State(st): State<FirewallState>, Query(q): Query<NextParam>) -> Response {
    let token = session::random_token();
    let next = q.next.filter(|n| vigie_web::is_local_path(n)).unwrap_or_else(|| "/".to_owned());
    let mut resp = vigie_web::page(StatusCode::OK, &login_form(token.clone(), next, None, String::new()));
    resp.headers_mut().append(header::SET_COOKIE, session::set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, st.auth.secure_cookies()));
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Checks the e-mail and password through the same service as `POST /api/v1/auth/login` (the
/// same failed-login limit) and sets the session cookie.
async fn login_submit(State(st): State<FirewallState>, ClientIp(ip): ClientIp, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let next = if vigie_web::is_local_path(&f.next) { f.next.clone() } else { "/".to_owned() };
    let again = |status: StatusCode, error: String| {
        let token = session::random_token();
        let mut resp = vigie_web::page(status, &login_form(token.clone(), next.clone(), Some(error), f.email.clone()));
        resp.headers_mut().append(header::SET_COOKIE, session::set_cookie(LOGIN_CSRF_COOKIE, &token, 3600, st.auth.secure_cookies()));
        resp
    };
    if !session::login_csrf_ok(&headers, LOGIN_CSRF_COOKIE, &f.csrf) {
        return again(StatusCode::FORBIDDEN, "The form had expired. Please log in again.".to_owned());
    }
    match st.auth.login(ip, &f.email, &f.password, None).await {
        Ok(s) => {
            let ttl = (s.expires_at - st.clock.now()).num_seconds().max(60);
            let mut resp = vigie_web::redirect(&next);
            resp.headers_mut().append(header::SET_COOKIE, session::set_cookie(SESSION_COOKIE, &s.token, ttl, st.auth.secure_cookies()));
            resp.headers_mut().append(header::SET_COOKIE, session::clear_cookie(LOGIN_CSRF_COOKIE));
            resp
        }
        Err(e) => {
            let e = ApiError::from(e);
            again(e.status, e.message)
        }
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// Ends the session — the login token is refused from now on — and removes the cookie (the form
/// carries the session's CSRF token, so another site cannot log someone out).
async fn logout(State(st): State<FirewallState>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    if let Some(token) = session::cookie(&headers, SESSION_COOKIE) {
        if !st.auth.csrf().check(token, &f.csrf) {
            return PageError::Api(vigie_core::http::csrf_failed()).into_response();
        }
        // The login token stops working everywhere, not only in this browser.
        if let Err(e) = st.auth.end_session(token).await {
            return PageError::from(e).into_response();
        }
    }
    let mut resp = vigie_web::redirect("/login");
    resp.headers_mut().append(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE));
    resp
}
