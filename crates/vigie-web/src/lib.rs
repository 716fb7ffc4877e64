//! The web console's shared plumbing: the page shell (layout, navigation, CSRF meta), the
//! assets (one stylesheet, one small script), markup values that templates write unescaped
//! ([`Html`], [`Time`]), the security headers every page carries, and the SVG charts
//! ([`chart`]). Each half renders its own pages with askama templates (checked at compile time)
//! that extend `base.html` from this crate's `templates/` (each half's `askama.toml` lists it).
//!
//! Must not depend on: either half, SQLite, tokio beyond axum's types. It knows nothing of
//! interactions or alerts; pages are built by the halves.
#![warn(missing_docs)]

pub mod assets;
pub mod chart;
pub mod fallback;
pub mod form;
pub mod markdown;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::fmt;

/// Markup built in Rust (a chart, a highlighted text) that a template writes as is. Build it
/// only with [`escape`] around every piece of outside text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Html(pub String);

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Html {}

/// A moment, written as `<time datetime="…">… UTC</time>`; the console's script rewrites it in
/// the browser's time zone (and keeps the UTC form as its title).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Time(pub DateTime<Utc>);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<time datetime=\"{}\">{}</time>",
            self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.0.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

impl askama::filters::HtmlSafe for Time {}

impl From<DateTime<Utc>> for Time {
    fn from(t: DateTime<Utc>) -> Time {
        Time(t)
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An entry of the main navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether the page shown is in this section.
    pub active: bool,
}

/// What every page of a console shares: the product name, the page title, the navigation, who is
/// logged in and the session's CSRF token (a `<meta>` the script sends back with each change).
#[derive(Debug, Clone)]
pub struct Shell {
    /// `Firewall` or `XDR`.
    pub product: &'static str,
    /// The page title.
    pub title: String,
    /// The main navigation, the current section marked.
    pub nav: Vec<NavItem>,
    /// Who is logged in (an e-mail, or a key's name and space).
    pub who: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The assets' version (their hash), so a new build is never served a stale cached copy.
    pub assets: &'static str,
}

impl Shell {
    /// A shell whose navigation marks the entry whose `href` is `section`.
    pub fn new(product: &'static str, title: impl Into<String>, nav: &[(&'static str, &'static str)], section: &str) -> Shell {
        Shell {
            product,
            title: title.into(),
            nav: nav.iter().map(|(href, label)| NavItem { href, label, active: *href == section }).collect(),
            who: String::new(),
            csrf: String::new(),
            assets: assets::version(),
        }
    }

    /// The same shell with who is logged in and their CSRF token.
    pub fn for_session(mut self, who: impl Into<String>, csrf: impl Into<String>) -> Shell {
        self.who = who.into();
        self.csrf = csrf.into();
        self
    }
}

/// The login page of either console.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// `Firewall` or `XDR`.
    pub product: &'static str,
    /// The login form's CSRF token (also in its cookie).
    pub csrf: String,
    /// Where to go after logging in.
    pub next: String,
    /// What went wrong with the last attempt.
    pub error: Option<String>,
    /// True: the form asks for an API key (the XDR); false: an e-mail and a password.
    pub with_key: bool,
    /// The e-mail typed before (kept after a failed attempt).
    pub email: String,
    /// The assets' version.
    pub assets: &'static str,
}

/// A page that says one thing: an error, a missing permission, a missing record.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// `Firewall` or `XDR`.
    pub product: &'static str,
    /// The heading.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// The assets' version.
    pub assets: &'static str,
}

/// The headers every console page carries: a strict content security policy (scripts and
/// styles from this origin only, no inline script, no framing), no MIME sniffing, no referrer
/// outside the origin, and no caching of pages that show tenant data.
pub fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A rendered template as an HTML answer with [`secure`] headers (500 with a plain page if the
/// template fails, which askama's compile-time checks make a matter of formatting only).
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => secure((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()),
        Err(e) => {
            tracing_free_log(&e);
            secure(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!doctype html><title>Error</title><p>This page could not be drawn.</p>",
                )
                    .into_response(),
            )
        }
    }
}

/// An HTML fragment (auto-refreshed widgets, a form's result) with [`secure`] headers.
pub fn fragment(t: &impl Template) -> Response {
    page(StatusCode::OK, t)
}

/// A page saying one thing, with `status`.
pub fn message(product: &'static str, status: StatusCode, title: impl Into<String>, text: impl Into<String>) -> Response {
    page(status, &MessagePage { product, title: title.into(), message: text.into(), assets: assets::version() })
}

// This crate does not log (it has no tracing dependency); a template error cannot carry user
// data worth reporting beyond its kind, and the 500 says the page failed.
fn tracing_free_log(_e: &askama::Error) {}

/// A redirect (303 See Other) to a local path.
pub fn redirect(to: &str) -> Response {
    let to = if is_local_path(to) { to } else { "/" };
    secure(
        (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")))]).into_response(),
    )
}

/// Whether `p` is a path on this site (`/x`, not `//host` or `/\host`, no scheme): the only
/// places a `next` parameter may send someone after logging in.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && !p.chars().any(|c| c.is_control())
}

/// The query string to come back to `path_and_query` after logging in.
pub fn login_redirect(path_and_query: &str) -> Response {
    let next = if is_local_path(path_and_query) && path_and_query != "/" {
        format!("/login?next={}", form::encode(path_and_query))
    } else {
        "/login".to_owned()
    };
    redirect(&next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert!(is_local_path("/alerts?status=pending"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("/x\ny"));
    }

    #[test]
    fn times_are_marked_up_for_the_browser_to_localise() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-28T15:04:05Z").map(|t| t.with_timezone(&Utc));
        let Ok(t) = t else { panic!("a valid time") };
        assert_eq!(Time(t).to_string(), "<time datetime=\"2026-11-28T15:04:05Z\">2026-11-28 15:04 UTC</time>");
    }

    #[test]
    fn escape_covers_attributes_and_content() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
