//! The XDR's web console: server-rendered pages (askama templates under `templates/`, checked
//! at compile time) behind the same login as the API — an API key of the space. A page reads
//! through the same functions the API handlers use, with the key's scopes; forms and buttons
//! send their changes to the JSON API itself (the console's script adds the session's CSRF
//! token), so a page can never do what the API would refuse that key.
//!
//! Logging in with a key opens a server-side session (`console_sessions`; the cookie
//! `vigie_xdr_session` holds a random token, the table its hash); it ends after 12 hours, at log
//! out, or when the key is revoked or expires.
use crate::keys::{Authorized, Caller, NeedsScope, SESSION_COOKIE, Scope};
use crate::state::XdrState;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use vigie_core::StoreError;
use vigie_core::console::{self as session, XDR_LOGIN_CSRF_COOKIE as LOGIN_CSRF_COOKIE};
use vigie_core::http::ApiError;
use vigie_web::Shell;

mod alerts;
mod cases;
pub mod dashboard;
mod events;
pub mod mailbox;
mod notifications;
mod people;
mod playbooks;
mod rules;
mod settings;

/// The console's product name.
pub const PRODUCT: &str = "XDR";

/// How long a console session lasts.
pub const SESSION_HOURS: i64 = 12;

/// The main navigation: (path, label, the scope that shows it).
pub const NAV: &[(&str, &str, Scope)] = &[
    ("/", "Dashboard", Scope::EventsRead),
    ("/events", "Events", Scope::EventsRead),
    ("/alerts", "Alerts", Scope::AlertsRead),
    ("/cases", "Cases", Scope::CasesRead),
    ("/rules", "Rules", Scope::RulesRead),
    ("/playbooks", "Playbooks", Scope::PlaybooksRead),
    ("/people", "People", Scope::AlertsRead),
    ("/notifications", "Notifications", Scope::AlertsRead),
    ("/settings", "Space & keys", Scope::Admin),
];

/// The console's routes (pages, log in and out, assets).
pub fn router() -> Router<XdrState> {
    let r = Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", axum::routing::post(logout))
        .merge(vigie_web::assets::routes());
    let r = dashboard::routes(r);
    let r = events::routes(r);
    let r = alerts::routes(r);
    let r = cases::routes(r);
    let r = rules::routes(r);
    let r = playbooks::routes(r);
    let r = people::routes(r);
    let r = notifications::routes(r);
    let r = mailbox::routes(r);
    settings::routes(r)
}

/// The key logged in to a page: its caller (space, scopes), the session's CSRF token, and names
/// to show. A request without a valid session is sent to the login page (and back afterwards);
/// a page request that changes something (a POST answering HTML) needs the CSRF token too.
pub struct Console {
    /// The key, as the API sees it.
    pub caller: Caller,
    /// The session's CSRF token (put into the page's `<meta name="csrf-token">`).
    pub csrf: String,
    /// The key's name.
    pub key_name: String,
    /// The space's name.
    pub space_name: String,
    /// Whether the server has a mail sink of the caller's space (the Mailbox page and its
    /// link).
    pub mailbox: bool,
}

impl Console {
    /// The page shell for a page of `section` (a path of [`NAV`]); the navigation shows only
    /// what the key may read.
    pub fn shell(&self, title: impl Into<String>, section: &str) -> Shell {
        let mut nav: Vec<(&'static str, &'static str)> =
            NAV.iter().filter(|(_, _, scope)| self.caller.scopes.contains(scope)).map(|(h, l, _)| (*h, *l)).collect();
        if self.mailbox && self.can(Scope::AlertsRead) {
            // Beside Notifications, whose e-mails it shows.
            let at = nav.iter().position(|(h, _)| *h == "/notifications").map_or(nav.len(), |i| i + 1);
            nav.insert(at, ("/mailbox", "Mailbox"));
        }
        Shell::new(PRODUCT, title, &nav, section).for_session(format!("{} · {}", self.key_name, self.space_name), self.csrf.clone())
    }

    /// Whether the key has `scope` (pages hide the forms it could not use).
    pub fn can(&self, scope: Scope) -> bool {
        self.caller.scopes.contains(&scope)
    }

    /// The key as an API handler's `Authorized<S>` extractor would give it: 403 page without the
    /// scope. Lets a page call an API handler function directly, with the same checks.
    pub fn authorized<S: NeedsScope>(&self) -> Result<Authorized<S>, PageError> {
        self.caller.require(S::SCOPE)?;
        Ok(Authorized(self.caller.clone(), std::marker::PhantomData))
    }
}

impl FromRequestParts<XdrState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &XdrState) -> Result<Self, Self::Rejection> {
        let back = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let Some(token) = session::cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(vigie_web::login_redirect(&back));
        };
        if !session::is_safe(&parts.method) && !st.csrf.check(&token, session::presented_csrf(&parts.headers).unwrap_or("")) {
            return Err(PageError::Api(vigie_core::http::csrf_failed()).into_response());
        }
        let caller = match st.keys.session(&token).await {
            Ok(c) => c,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(vigie_web::login_redirect(&back)),
            Err(e) => return Err(PageError::Api(e).into_response()),
        };
        let (key_id, space_id) = (caller.key_id.to_string(), caller.space_id.to_string());
        let names = st
            .store
            .read(move |c| {
                c.query_row(
                    "SELECT k.name, s.name FROM api_keys k JOIN spaces s ON s.id = k.space_id WHERE k.id = ?1 AND s.id = ?2",
                    [key_id, space_id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .map_err(StoreError::from)
            })
            .await
            .map_err(|e| PageError::Api(ApiError::internal(e)).into_response())?;
        let mailbox = st.mail_sink.as_ref().is_some_and(|s| s.for_caller(&caller).is_some());
        Ok(Console { csrf: st.csrf.token(&token), caller, key_name: names.0, space_name: names.1, mailbox })
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

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        PageError::Api(ApiError::internal(e))
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

fn login_form(st: &XdrState) -> vigie_web::fallback::LoginForm {
    vigie_web::fallback::LoginForm { product: PRODUCT, csrf_cookie: LOGIN_CSRF_COOKIE, secure: st.secure_cookies, with_key: true }
}

/// The login page; it sets the login form's CSRF cookie (double submit).
async fn login_page(State(st): State<XdrState>, Query(q): Query<NextParam>) -> Response {
    login_form(&st).answer(StatusCode::OK, q.next.as_deref().unwrap_or("/"), None, "")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    key: String,
}

/// Checks the key (as the API would: unknown, revoked, expired, rate limited) and opens a session.
async fn login_submit(State(st): State<XdrState>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let form = login_form(&st);
    if !form.posted_from_here(&headers, &f.csrf) {
        return form.answer(StatusCode::FORBIDDEN, &f.next, Some("The form had expired. Please log in again.".to_owned()), "");
    }
    match st.keys.open_session(f.key.trim(), chrono::Duration::hours(SESSION_HOURS)).await {
        Ok((token, _)) => form.logged_in(&f.next, SESSION_COOKIE, &token, SESSION_HOURS * 3600),
        Err(e) => form.answer(e.status, &f.next, Some(e.message), ""),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// Ends the session (the form carries its CSRF token, so another site cannot log someone out).
async fn logout(State(st): State<XdrState>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    if let Some(token) = session::cookie(&headers, SESSION_COOKIE) {
        if !st.csrf.check(token, &f.csrf) {
            return PageError::Api(vigie_core::http::csrf_failed()).into_response();
        }
        if let Err(e) = st.keys.close_session(token).await {
            return PageError::Api(e).into_response();
        }
    }
    let mut resp = vigie_web::redirect("/login");
    resp.headers_mut().append(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE));
    resp
}
