//! What both consoles answer besides their pages: an API error as a page, the 404 and 405
//! fallbacks (HTML for browsers, the API's JSON for everyone else), and the login form with its
//! double-submit CSRF cookie.
use crate::{LoginPage, assets, message, page, redirect};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use vigie_core::console as session;
use vigie_core::http::ApiError;

/// An error the API would have answered, as a page: its status and sentence (a server error
/// says only that the page failed; its detail goes to the log).
pub fn error_page(product: &'static str, e: ApiError) -> Response {
    if e.status.is_server_error() {
        tracing::error!(code = %e.code, error = %e.message, "a console page failed");
    }
    let title = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "This cannot be shown",
    };
    let text =
        if e.status.is_server_error() { "The server could not show this page; the details are in its log.".to_owned() } else { e.message };
    message(product, e.status, title, text)
}

fn wants_html(headers: &HeaderMap, uri: &Uri) -> bool {
    !uri.path().starts_with("/api/") && headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

/// The 404 for a path that is neither a page nor an endpoint: a page for a browser, the API's
/// JSON for `/api/…` and for clients that do not ask for HTML.
pub async fn not_found(product: &'static str, headers: &HeaderMap, uri: Uri) -> Response {
    if !wants_html(headers, &uri) {
        return vigie_core::http::route_not_found(uri).await.into_response();
    }
    message(product, StatusCode::NOT_FOUND, "Not found", "There is no page at this address. The menu at the top lists them all.")
}

/// The 405 for a known path with the wrong method (`GET /logout` goes home instead).
pub async fn method_not_allowed(product: &'static str, headers: &HeaderMap, method: Method, uri: Uri) -> Response {
    if !wants_html(headers, &uri) {
        return vigie_core::http::method_not_allowed(method, uri).await.into_response();
    }
    if uri.path() == "/logout" || uri.path() == "/login" {
        return redirect("/");
    }
    message(product, StatusCode::METHOD_NOT_ALLOWED, "Not here", "This address is not a page. The menu at the top lists them all.")
}

/// How a console's login form is drawn.
#[derive(Debug, Clone, Copy)]
pub struct LoginForm {
    /// `Firewall` or `XDR`.
    pub product: &'static str,
    /// The cookie holding the form's CSRF token (one per half).
    pub csrf_cookie: &'static str,
    /// Whether cookies are marked `Secure`.
    pub secure: bool,
    /// True: the form asks for an API key; false: an e-mail and a password.
    pub with_key: bool,
}

impl LoginForm {
    /// The form (with `status`, a fresh CSRF token in a field and its cookie), going to `next`
    /// afterwards, saying `error` if the last attempt failed.
    pub fn answer(&self, status: StatusCode, next: &str, error: Option<String>, email: &str) -> Response {
        let token = session::random_token();
        let next = if crate::is_local_path(next) { next.to_owned() } else { "/".to_owned() };
        let form = LoginPage {
            product: self.product,
            csrf: token.clone(),
            next,
            error,
            with_key: self.with_key,
            email: email.to_owned(),
            assets: assets::version(),
        };
        let mut resp = page(status, &form);
        resp.headers_mut().append(header::SET_COOKIE, session::set_cookie(self.csrf_cookie, &token, 3600, self.secure));
        resp
    }

    /// Whether a posted form carries the token of its cookie.
    pub fn posted_from_here(&self, headers: &HeaderMap, field: &str) -> bool {
        session::login_csrf_ok(headers, self.csrf_cookie, field)
    }

    /// The redirect after a successful login: sets the session cookie, removes the form's.
    pub fn logged_in(&self, next: &str, session_cookie: &str, token: &str, max_age_secs: i64) -> Response {
        let mut resp = redirect(if crate::is_local_path(next) { next } else { "/" });
        resp.headers_mut().append(header::SET_COOKIE, session::set_cookie(session_cookie, token, max_age_secs, self.secure));
        resp.headers_mut().append(header::SET_COOKIE, session::clear_cookie(self.csrf_cookie));
        resp
    }
}
