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
use vigie_web::Shell;

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
        vigie_web::fallback::error_page(PRODUCT, e)
    }
}

/// A page's result.
pub type PageResult = Result<Response, PageError>;

/// The 404 for a path that is neither a page nor an endpoint.
pub async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    vigie_web::fallback::not_found(PRODUCT, &headers, uri).await
}

/// The 405 for a known path with the wrong method.
pub async fn method_not_allowed(headers: HeaderMap, method: axum::http::Method, uri: axum::http::Uri) -> Response {
    vigie_web::fallback::method_not_allowed(PRODUCT, &headers, method, uri).await
}

#[derive(Deserialize)]
struct NextParam {
    next: Option<String>,
}

fn login_form(st: &FirewallState) -> vigie_web::fallback::LoginForm {
    vigie_web::fallback::LoginForm { product: PRODUCT, csrf_cookie: LOGIN_CSRF_COOKIE, secure: st.auth.secure_cookies(), with_key: false }
}

/// The login page; it sets the login form's CSRF cookie (double submit).
async fn login_page(State(st): State<FirewallState>, Query(q): Query<NextParam>) -> Response {
    login_form(&st).answer(StatusCode::OK, q.next.as_deref().unwrap_or("/"), None, "")
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
    let form = login_form(&st);
    if !form.posted_from_here(&headers, &f.csrf) {
        return form.answer(StatusCode::FORBIDDEN, &f.next, Some("The form had expired. Please log in again.".to_owned()), &f.email);
    }
    match st.auth.login(ip, &f.email, &f.password, None).await {
        Ok(s) => {
            let ttl = (s.expires_at - st.clock.now()).num_seconds().max(60);
            form.logged_in(&f.next, SESSION_COOKIE, &s.token, ttl)
        }
        Err(e) => {
            let e = ApiError::from(e);
            form.answer(e.status, &f.next, Some(e.message), &f.email)
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
