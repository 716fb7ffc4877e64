//! Integration tests of the firewall API: a real server on a loopback port, a real SQLite file
//! in a temporary directory, a real HTTP client.
mod api_auth;
mod api_interactions;
mod api_platforms;
mod api_policies;
mod api_scan;
mod api_testdata;
mod compat;
mod console;
mod console_interactions;
mod console_overview;
mod console_policies;
mod console_settings;
mod console_trial;
mod console_webhooks;
mod openapi;
mod outbox;
mod privacy;
mod receiver;
mod regression;
mod webhooks;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_core::auth::AuthSettings;
use vigie_core::db::StoreOptions;
use vigie_firewall::{FirewallOptions, FirewallState};

pub const ADMIN_EMAIL: &str = "admin@acme.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const HASH: &str = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3";

/// Webhook settings for tests: loopback receivers allowed, a schedule in milliseconds.
pub fn test_webhook_settings() -> vigie_webhook::WebhookSettings {
    let mut w = vigie_webhook::WebhookSettings {
        schedule: vigie_webhook::schedule::RetrySchedule::parse(
            &["0ms", "20ms", "40ms", "80ms", "160ms"],
            0.2,
            std::time::Duration::from_secs(3600),
        )
        .expect("schedule"),
        ..Default::default()
    };
    w.client.allow_private = true;
    w.client.timeout = std::time::Duration::from_secs(5);
    w
}

/// A firewall serving on 127.0.0.1 with a fresh data directory and a logged-in admin.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub state: FirewallState,
    pub dir: TempDir,
    pub admin: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose options `tune` changes first.
    pub async fn start_with(tune: impl FnOnce(&mut FirewallOptions)) -> TestServer {
        TestServer::start_in(tempfile::tempdir().expect("tempdir"), tune).await
    }

    /// A server started again on the data directory a stopped one returned.
    pub async fn restart(dir: TempDir) -> TestServer {
        TestServer::start_in(dir, |_| {}).await
    }

    async fn start_in(dir: TempDir, tune: impl FnOnce(&mut FirewallOptions)) -> TestServer {
        let mut opts = FirewallOptions {
            data_dir: dir.path().to_path_buf(),
            store: StoreOptions::default(),
            event_source: "noxys".into(),
            secret_key: None,
            auth: AuthSettings::default(),
            max_text_bytes: 1 << 20,
            webhooks: test_webhook_settings(),
        };
        tune(&mut opts);
        let state = vigie_firewall::open(opts, Arc::new(SystemClock)).expect("open");
        state.auth.bootstrap("acme", ADMIN_EMAIL, Some(ADMIN_PASSWORD)).await.expect("bootstrap");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(vigie_firewall::serve(listener, state.clone(), shutdown.clone()));
        let mut s = TestServer { base, http: reqwest::Client::new(), state, dir, admin: String::new(), shutdown, task };
        s.admin = s.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        s
    }

    /// Logs in and returns the token, failing the test if login fails.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self.call("POST", "/api/v1/auth/login", None, Some(json!({"email": email, "password": password}))).await;
        assert_eq!(status, StatusCode::OK, "login of {email}: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Sends a JSON request and returns the status and the JSON body (Null when empty).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method.parse().expect("method"), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    /// Sends raw bytes as the body of a POST.
    pub async fn post_raw(&self, path: &str, token: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates an API token with `role` through the API.
    pub async fn api_token(&self, role: &str) -> String {
        let (status, body) = self.post("/api/v1/tokens", &self.admin, json!({"name": format!("{role} token"), "role": role})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Creates a policy through the API and returns its id.
    pub async fn policy(&self, name: &str, priority: i64, action: &str, conditions: Value) -> String {
        let (status, body) = self
            .post(
                "/api/v1/policies",
                &self.admin,
                json!({"name": name, "priority": priority, "enabled": true, "rules": {"action": action, "conditions": conditions}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Records an interaction and returns the response.
    pub async fn interaction(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/interactions", token, body).await
    }

    /// A read-only connection to the firewall database, to check what was stored.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(self.dir.path().join("firewall.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open db")
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).expect("count")
    }

    /// Stops the server gracefully and returns the data directory.
    pub async fn stop(self) -> TempDir {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("serve");
        self.dir
    }
}

/// A minimal valid interaction on `platform`.
pub fn interaction(platform: &str) -> Value {
    json!({"platform_id": platform, "content_hash": HASH})
}
