//! The console's foundation: log in with an e-mail and password, the session cookie, CSRF on
//! every change, log out, the HTML 404 and the security headers. `Browser` is what every
//! console test uses.
use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
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

    /// Logs in through the login form; panics unless it redirects.
    pub async fn login(base: &str, email: &str, password: &str) -> Browser {
        let mut b = Browser::new(base);
        let status = b.submit_login(email, password, "/").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login of {email}");
        let (status, html) = b.page("/").await;
        assert!(status.is_success() || status == StatusCode::FORBIDDEN, "home after login: {status}");
        b.csrf = csrf_in(&html);
        b
    }

    /// Posts the login form (after getting it, for its CSRF cookie); the status answered.
    pub async fn submit_login(&mut self, email: &str, password: &str, next: &str) -> StatusCode {
        let (_, form) = self.page(&format!("/login?next={next}")).await;
        let token = csrf_in(&form);
        let r = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[("_csrf", token.as_str()), ("next", next), ("email", email), ("password", password)])
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

    /// POSTs JSON to a page route that answers an HTML fragment (with the CSRF token).
    #[allow(dead_code)]
    pub async fn post_fragment(&self, path: &str, body: Value) -> (StatusCode, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .header("accept", "text/html")
            .json(&body)
            .send()
            .await
            .expect("post");
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

/// A server and a browser logged in as its admin.
pub async fn logged_in() -> (TestServer, Browser) {
    let s = TestServer::start().await;
    let b = Browser::login(&s.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    (s, b)
}

#[tokio::test]
async fn a_page_without_a_session_sends_to_the_login_page_and_back() {
    let s = TestServer::start().await;
    let r = Browser::new(&s.base).http.get(format!("{}/?range=7d", s.base)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2F%3Frange%3D7d");
}

#[tokio::test]
async fn the_session_reads_the_api_and_changes_only_with_its_csrf_token() {
    let (s, b) = logged_in().await;
    let (status, _) = b.api("GET", "/api/v1/policies", None).await;
    assert_eq!(status, StatusCode::OK);
    let body = serde_json::json!({"name": "Coach on ChatGPT", "priority": 50,
        "rules": {"action": "coach", "conditions": [{"field": "platform_id", "operator": "eq", "value": "chatgpt"}]}});
    let r = b.http.post(format!("{}/api/v1/policies", s.base)).json(&body).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.expect("json")["code"], "csrf_failed");
    let (status, created) = b.api("POST", "/api/v1/policies", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // A bearer token never needs the CSRF token (a browser does not send one by itself).
    let (status, _) = s.get("/api/v1/policies", &s.admin).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_a_forged_form_is_refused() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s.base);
    assert_eq!(b.submit_login(ADMIN_EMAIL, "wrong-password", "/").await, StatusCode::UNAUTHORIZED);
    let r = Browser::new(&s.base)
        .http
        .post(format!("{}/login", s.base))
        .form(&[("_csrf", "forged"), ("next", "/"), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // `next` never leaves the site.
    let mut b = Browser::new(&s.base);
    let (_, form) = b.page("/login?next=//evil.example/").await;
    assert!(!form.contains("evil.example"));
    assert_eq!(b.submit_login(ADMIN_EMAIL, ADMIN_PASSWORD, "//evil.example/").await, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logging_out_needs_the_session_token_and_removes_the_cookie() {
    let (s, b) = logged_in().await;
    let r = b.http.post(format!("{}/logout", s.base)).form(&[("_csrf", "forged")]).send().await.expect("logout");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(b.page("/").await.0, StatusCode::OK);
    let r = b.http.post(format!("{}/logout", s.base)).form(&[("_csrf", b.csrf.as_str())]).send().await.expect("logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.page("/").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy_and_unknown_pages_are_html_404s() {
    let (s, b) = logged_in().await;
    let r = b.http.get(format!("{}/", s.base)).header("accept", "text/html").send().await.expect("get");
    let csp = r.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let (status, html) = b.page("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("<!doctype html>"));
    let (status, body) = b.api("GET", "/api/v1/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "route_not_found");
}

/// The session token a login form answer sets (the value of `vigie_session`).
async fn session_token_of_login(s: &TestServer) -> String {
    let b = Browser::new(&s.base);
    let (_, form) = b.page("/login").await;
    let token = csrf_in(&form);
    let r = b
        .http
        .post(format!("{}/login", s.base))
        .form(&[("_csrf", token.as_str()), ("next", "/"), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("login");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("vigie_session=").map(|rest| rest.split(';').next().unwrap_or("").to_owned()))
        .expect("a session cookie")
}

#[tokio::test]
async fn logging_out_ends_the_login_token_everywhere_not_only_in_the_browser() {
    let s = TestServer::start().await;
    let token = session_token_of_login(&s).await;
    // The same token, copied elsewhere, works until the browser logs out…
    assert_eq!(s.get("/api/v1/policies", &token).await.0, StatusCode::OK);
    let b = Browser::new(&s.base);
    let cookie: reqwest::header::HeaderValue = format!("vigie_session={token}").parse().expect("cookie");
    let (_, home) = {
        let r = b.http.get(format!("{}/", s.base)).header("cookie", cookie.clone()).send().await.expect("home");
        (r.status(), r.text().await.expect("body"))
    };
    let csrf = csrf_in(&home);
    let r = b.http.post(format!("{}/logout", s.base)).header("cookie", cookie).form(&[("_csrf", csrf.as_str())]).send().await.expect("out");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // …then nowhere: neither as a bearer token nor as a cookie.
    assert_eq!(s.get("/api/v1/policies", &token).await.0, StatusCode::UNAUTHORIZED);
    // Other sessions of the same user go on.
    assert_eq!(s.get("/api/v1/policies", &s.admin).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_login_page_address_with_the_wrong_method_is_a_page_not_json() {
    let (s, b) = logged_in().await;
    let r = b.http.get(format!("{}/logout", s.base)).header("accept", "text/html").send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b.http.delete(format!("{}/policies", s.base)).header("accept", "text/html").send().await.expect("delete");
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/html"), "{:?}", r.headers());
}

#[tokio::test]
async fn a_system_webhook_to_a_loopback_address_can_be_edited_without_changing_its_url() {
    use vigie_core::auth::{Actor, Principal, Role};
    let s = TestServer::start_with(|o| {
        o.webhooks.client.allow_private = false;
        // As `vigie serve` trusts its own XDR's address.
        o.webhooks.client.trusted = vec!["127.0.0.1:9".parse().expect("addr")];
    })
    .await;
    let (_, me) = s.get("/api/v1/auth/me", &s.admin).await;
    let admin = Principal {
        tenant_id: me["tenant_id"].as_str().expect("tenant").parse().expect("uuid"),
        role: Role::Admin,
        actor: Actor::User { id: me["id"].as_str().expect("id").parse().expect("uuid"), email: ADMIN_EMAIL.into() },
    };
    let new: vigie_webhook::model::NewWebhook = serde_json::from_value(serde_json::json!({
        "url": "http://127.0.0.1:9/api/v1/events", "events": ["interaction.policy_violated"], "description": "to the XDR"
    }))
    .expect("new webhook");
    let w = s.state.webhooks.create_system(&admin, new).await.expect("system webhook");
    let id = w.webhook.id.clone();
    let b = Browser::login(&s.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The edit form sends the URL back unchanged with the other fields.
    let (status, body) = b
        .api(
            "PATCH",
            &format!("/api/v1/webhooks/{id}"),
            Some(serde_json::json!({"url": "http://127.0.0.1:9/api/v1/events", "description": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A new loopback URL is still refused.
    let (status, _) =
        b.api("PATCH", &format!("/api/v1/webhooks/{id}"), Some(serde_json::json!({"url": "http://127.0.0.1:10/api/v1/events"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
