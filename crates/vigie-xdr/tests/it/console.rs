//! The console's foundation: log in with a key, the session cookie, CSRF on every change, log
//! out, the HTML 404 and the security headers. `Browser` is what every console test uses.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::Value;

/// A browser-like client: a cookie jar, no redirects followed, and the CSRF token of its page.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

/// The `_csrf` field value (or the `csrf-token` meta) in a page.
pub fn csrf_in(html: &str) -> String {
    for marker in ["name=\"_csrf\" value=\"", "name=\"csrf-token\" content=\""] {
        if let Some(i) = html.find(marker) {
            let rest = &html[i + marker.len()..];
            return rest[..rest.find('"').expect("closing quote")].to_owned();
        }
    }
    panic!("no CSRF token in the page: {html}")
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { http, base: base.to_owned(), csrf: String::new() }
    }

    /// Logs in through the login form with `key`; panics unless it redirects.
    pub async fn login(base: &str, key: &str) -> Browser {
        let mut b = Browser::new(base);
        let status = b.submit_login(key, "/").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login with a key");
        let (mut status, mut html) = b.page("/").await;
        if status == StatusCode::SEE_OTHER {
            // Home is the dashboard; a key that cannot read events is sent to its first page.
            let r = b.http.get(format!("{base}/")).send().await.expect("home");
            let to = r.headers()["location"].to_str().expect("location").to_owned();
            (status, html) = b.page(&to).await;
        }
        assert!(status.is_success(), "home after login: {status}");
        b.csrf = csrf_in(&html);
        b
    }

    /// Posts the login form (after getting it, for its CSRF cookie); the status answered.
    pub async fn submit_login(&mut self, key: &str, next: &str) -> StatusCode {
        let (_, form) = self.page(&format!("/login?next={next}")).await;
        let token = csrf_in(&form);
        let r = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[("_csrf", token.as_str()), ("next", next), ("key", key)])
            .send()
            .await
            .expect("login");
        r.status()
    }

    /// GETs a page as a browser would (Accept: text/html).
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self.http.get(format!("{}{path}", self.base)).header("accept", "text/html").send().await.expect("page");
        let status = r.status();
        (status, r.text().await.expect("body"))
    }

    /// Calls the JSON API with the session cookie and the CSRF token, as the console's script does.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().expect("method"), format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("api");
        let status = r.status();
        let text = r.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

const ALL: &[&str] = &[
    "events_read",
    "alerts_read",
    "alerts_write",
    "cases_read",
    "cases_write",
    "rules_read",
    "rules_write",
    "playbooks_read",
    "playbooks_write",
    "admin",
];

/// A server and a browser logged in with a key of every scope but events_write.
pub async fn logged_in() -> (TestXdr, Browser, String) {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", ALL, false).await;
    let b = Browser::login(&x.base, &key).await;
    (x, b, key)
}

#[tokio::test]
async fn a_page_without_a_session_sends_to_the_login_page_and_back() {
    let x = TestXdr::start().await;
    let b = Browser::new(&x.base);
    let r = b.http.get(format!("{}/?range=7d", x.base)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2F%3Frange%3D7d");
}

#[tokio::test]
async fn logging_in_with_a_key_opens_a_session_that_reads_the_api_and_changes_only_with_the_csrf_token() {
    let (x, b, _) = logged_in().await;
    let (status, page) = b.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("aria-current=\"page\""), "{page}");
    // The API takes the session cookie for reads…
    let (status, _) = b.api("GET", "/api/v1/alerts", None).await;
    assert_eq!(status, StatusCode::OK);
    // …and for changes only with the session's CSRF token.
    let r = b.http.patch(format!("{}/api/v1/space", x.base)).json(&serde_json::json!({"on_duty": "alice"})).send().await.expect("patch");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "csrf_failed");
    let r = b
        .http
        .patch(format!("{}/api/v1/space", x.base))
        .header("x-csrf-token", "not-the-token")
        .json(&serde_json::json!({"on_duty": "alice"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, body) = b.api("PATCH", "/api/v1/space", Some(serde_json::json!({"on_duty": "alice"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["on_duty"], "alice");
}

#[tokio::test]
async fn a_wrong_key_an_intake_only_key_and_a_forged_login_form_are_refused() {
    let x = TestXdr::start().await;
    let mut b = Browser::new(&x.base);
    assert_eq!(b.submit_login("vxk_not-a-key", "/").await, StatusCode::UNAUTHORIZED);
    let (intake, _) = x.key("acme", &["events_write"], false).await;
    assert_eq!(b.submit_login(&intake, "/").await, StatusCode::FORBIDDEN);
    // A login form posted without the form's own token (from another site) is refused.
    let (key, _) = x.key("acme", &["alerts_read"], false).await;
    let r = Browser::new(&x.base)
        .http
        .post(format!("{}/login", x.base))
        .form(&[("_csrf", "forged"), ("next", "/"), ("key", key.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap_or("").starts_with("vigie_xdr_session=")));
}

#[tokio::test]
async fn logging_out_or_revoking_the_key_ends_the_session() {
    let (x, b, _) = logged_in().await;
    let r = b.http.post(format!("{}/logout", x.base)).form(&[("_csrf", b.csrf.as_str())]).send().await.expect("logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The cookie removed, and the session gone server-side too: the old cookie no longer works.
    assert_eq!(x.count("SELECT COUNT(*) FROM console_sessions"), 0);
    let (status, _) = b.page("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (admin, _) = x.key("acme", ALL, false).await;
    let (key, _) = x.key("acme", &["events_read", "alerts_read"], false).await;
    let b2 = Browser::login(&x.base, &key).await;
    assert_eq!(b2.api("GET", "/api/v1/alerts", None).await.0, StatusCode::OK);
    let (_, keys) = x.get("/api/v1/keys", &admin).await;
    let id =
        keys["items"].as_array().expect("keys").iter().find(|k| key.starts_with(k["prefix"].as_str().unwrap_or("-"))).expect("key")["id"]
            .as_str()
            .expect("id")
            .to_owned();
    let (status, _) = x.call_json("DELETE", &format!("/api/v1/keys/{id}"), &admin, Value::Null).await;
    assert!(status.is_success(), "revoke: {status}");
    assert_eq!(b2.api("GET", "/api/v1/alerts", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_sees_only_the_pages_its_scopes_allow() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["events_read", "alerts_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let (_, html) = b.page("/").await;
    assert!(html.contains("href=\"/alerts\""));
    assert!(!html.contains("href=\"/rules\""));
    assert!(!html.contains("href=\"/settings\""));
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy_and_unknown_pages_are_html_404s() {
    let (x, b, _) = logged_in().await;
    let r = b.http.get(format!("{}/", x.base)).header("accept", "text/html").send().await.expect("get");
    let csp = r.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (status, html) = b.page("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("<!doctype html>"));
    // The API keeps its JSON 404.
    let (status, body) = b.api("GET", "/api/v1/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "route_not_found");
    // The assets are cached for long (their URL carries their version).
    let r = b.http.get(format!("{}/assets/vigie.js", x.base)).send().await.expect("js");
    assert!(r.headers()["cache-control"].to_str().expect("cc").contains("immutable"));
}

/// Logs in with `key` and returns the session token the answer sets (`vigie_xdr_session`).
async fn session_token(x: &TestXdr, key: &str) -> String {
    let b = Browser::new(&x.base);
    let (_, form) = b.page("/login").await;
    let token = csrf_in(&form);
    let r = b
        .http
        .post(format!("{}/login", x.base))
        .form(&[("_csrf", token.as_str()), ("next", "/"), ("key", key)])
        .send()
        .await
        .expect("login");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("vigie_xdr_session=").map(|rest| rest.split(';').next().unwrap_or("").to_owned()))
        .expect("a session cookie")
}

#[tokio::test]
async fn a_console_session_is_not_a_key_and_never_sends_events() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["events_read", "events_write", "alerts_read"], false).await;
    let token = session_token(&x, &key).await;
    // Used before: the session is in the cache, yet its token (in any form) is not a key.
    let b = Browser::login(&x.base, &key).await;
    assert_eq!(b.api("GET", "/api/v1/events", None).await.0, StatusCode::OK);
    for presented in [token.clone(), format!("session:{token}")] {
        let (status, _) = x.get("/api/v1/events", &presented).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{presented}");
    }
    // Intake never takes the cookie, even with its CSRF token.
    let (status, _) = b.api("POST", "/api/v1/events", Some(serde_json::json!({"source": "test", "event_type": "x"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 0);
}

#[tokio::test]
async fn logging_out_forgets_only_that_session() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["events_read", "alerts_read"], false).await;
    let (a, b) = (Browser::login(&x.base, &key).await, Browser::login(&x.base, &key).await);
    let r = a.http.post(format!("{}/logout", x.base)).form(&[("_csrf", a.csrf.as_str())]).send().await.expect("logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(a.page("/").await.0, StatusCode::SEE_OTHER);
    assert_eq!(b.page("/").await.0, StatusCode::OK);
    assert_eq!(x.get("/api/v1/alerts", &key).await.0, StatusCode::OK);
}

#[tokio::test]
async fn dot_segments_are_not_user_ids() {
    let (_, b, _) = logged_in().await;
    for id in [".", ".."] {
        let csv = format!("user_id,display_name\n{id},Dot\n");
        let r = b
            .http
            .post(format!("{}/api/v1/people/import", b.base))
            .header("x-csrf-token", &b.csrf)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("import");
        let (status, body) = (r.status(), r.text().await.expect("body"));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id}: {body}");
    }
}
