//! The web console's session plumbing, shared by both halves: the session cookie, and the CSRF
//! token every state-changing request made with that cookie must carry.
//!
//! A console session is a cookie (`HttpOnly`, `SameSite=Lax` so that a link from an e-mail
//! opens the page logged in, path `/`). Its CSRF token is an
//! HMAC of the session under a key of the half ([`CsrfKey`]): nothing to store, different for
//! every session, and useless without the session itself. A request authenticated by the cookie
//! whose method is not GET/HEAD/OPTIONS needs the token in the `X-CSRF-Token` header (the
//! console's script sends it) or, for the few plain HTML forms (log in, log out), in a `_csrf`
//! form field the page handler checks. Requests with `Authorization` never read the cookie.
//!
//! Both halves may listen on the same host (ports do not separate cookies), so each names its
//! cookie differently.
use axum::http::{HeaderMap, HeaderValue, Method, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header a cookie-authenticated write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field of the plain HTML forms that carry a CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The cookie that holds the firewall's login form CSRF token before there is a session (each
/// half names its own: both may be open on one host, and ports do not separate cookies).
pub const LOGIN_CSRF_COOKIE: &str = "vigie_login_csrf";
/// The XDR login form's CSRF cookie.
pub const XDR_LOGIN_CSRF_COOKIE: &str = "vigie_xdr_login_csrf";

/// The key CSRF tokens are derived with (one per half, from its master key).
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(********)")
    }
}

impl CsrfKey {
    /// The key from 32 secret bytes (`MasterKey::derive("vigie/console-csrf/v1")`).
    pub fn new(key: [u8; 32]) -> CsrfKey {
        CsrfKey(key)
    }

    /// The CSRF token of a session (URL-safe base64, 43 characters).
    pub fn token(&self, session: &str) -> String {
        use base64::Engine as _;
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(b"csrf:");
        mac.update(session.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `presented` is the token of `session` (constant-time).
    pub fn check(&self, session: &str, presented: &str) -> bool {
        let expected = self.token(session);
        expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// Whether a method changes nothing (and so needs no CSRF token).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of the cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Whether the request carries credentials of its own (`Authorization`): then the cookie is not
/// read, and no CSRF token is needed (a browser does not add that header by itself).
pub fn has_authorization(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
}

/// The CSRF token a request presents in [`CSRF_HEADER`].
pub fn presented_csrf(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

/// A `Set-Cookie` value for a session cookie lasting `max_age_secs`. `secure` adds `Secure`
/// (set it when the console is served over HTTPS).
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // Lax: a link followed from elsewhere (a notification e-mail) carries the session, a form
    // posted from elsewhere does not; and every change needs the CSRF token besides.
    let v = format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("vigie_invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that removes the cookie `name`.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"))
        .unwrap_or_else(|_| HeaderValue::from_static("vigie_invalid=; Max-Age=0"))
}

/// A random token for a login form's CSRF cookie or a server-side session (32 bytes, URL-safe
/// base64).
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Whether the login form's CSRF field matches its cookie `name` (double submit,
/// constant-time).
pub fn login_csrf_ok(headers: &HeaderMap, name: &str, field: &str) -> bool {
    match cookie(headers, name) {
        Some(c) => c.len() == field.len() && !field.is_empty() && bool::from(c.as_bytes().ct_eq(field.as_bytes())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_its_session_and_key() {
        let k = CsrfKey::new([7; 32]);
        let t = k.token("session-a");
        assert!(k.check("session-a", &t));
        assert!(!k.check("session-b", &t));
        assert!(!CsrfKey::new([8; 32]).check("session-a", &t));
        assert!(!k.check("session-a", ""));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a_b=1; vigie_fw=tok; x=\"q\""));
        assert_eq!(cookie(&h, "vigie_fw"), Some("tok"));
        assert_eq!(cookie(&h, "x"), Some("q"));
        assert_eq!(cookie(&h, "vigie"), None);
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn the_login_form_token_must_match_its_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("vigie_login_csrf=abc"));
        assert!(login_csrf_ok(&h, LOGIN_CSRF_COOKIE, "abc"));
        assert!(!login_csrf_ok(&h, LOGIN_CSRF_COOKIE, "abd"));
        assert!(!login_csrf_ok(&h, LOGIN_CSRF_COOKIE, ""));
        assert!(!login_csrf_ok(&h, XDR_LOGIN_CSRF_COOKIE, "abc"));
        assert!(!login_csrf_ok(&HeaderMap::new(), LOGIN_CSRF_COOKIE, "abc"));
    }
}
