//! Integration tests of the XDR API: a real server on a loopback port, a real SQLite file, a
//! real HTTP client.
mod alerts;
mod cases;
mod compat;
mod console;
mod console_alerts;
mod console_cases;
mod console_dashboard;
mod console_events;
mod console_mailbox;
mod console_playbooks;
mod console_rules;
mod console_settings;
mod detect;
mod intake;
mod matrix;
mod notify;
mod openapi;
mod people;
mod response;
mod rules;
mod search;
mod testdata;

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_core::db::StoreOptions;
use vigie_xdr::keys::NewKey;
use vigie_xdr::{XdrOptions, XdrState};

pub struct TestXdr {
    pub base: String,
    pub http: reqwest::Client,
    pub state: XdrState,
    pub dir: TempDir,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestXdr {
    pub async fn start() -> TestXdr {
        TestXdr::start_with(|_| {}).await
    }

    /// A server whose options `tune` changes first.
    pub async fn start_with(tune: impl FnOnce(&mut XdrOptions)) -> TestXdr {
        TestXdr::start_in(tempfile::tempdir().expect("tempdir"), tune).await
    }

    pub async fn start_in(dir: TempDir, tune: impl FnOnce(&mut XdrOptions)) -> TestXdr {
        TestXdr::start_clocked(dir, Arc::new(SystemClock), tune).await
    }

    /// A server on `clock`.
    pub async fn start_clocked(dir: TempDir, clock: vigie_core::clock::SharedClock, tune: impl FnOnce(&mut XdrOptions)) -> TestXdr {
        TestXdr::start_full(dir, clock, tune, async |_| {}).await
    }

    /// A server whose options `tune` changes, and whose state `edit` changes before it serves
    /// (as the binary creates its space and sets `mail_sink`).
    pub async fn start_full(
        dir: TempDir,
        clock: vigie_core::clock::SharedClock,
        tune: impl FnOnce(&mut XdrOptions),
        edit: impl AsyncFnOnce(&mut XdrState),
    ) -> TestXdr {
        let mut opts = XdrOptions {
            data_dir: dir.path().to_path_buf(),
            store: StoreOptions::default(),
            secret_key: None,
            key_rate: Default::default(),
            retention_every: std::time::Duration::from_secs(3600),
            search: Default::default(),
            build_facts: true,
            default_rules_enabled: false,
            allow_private_destinations: false,
            notify: Default::default(),
        };
        tune(&mut opts);
        let mut state = vigie_xdr::open(opts, clock).expect("open");
        edit(&mut state).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(vigie_xdr::serve(listener, state.clone(), shutdown.clone()));
        TestXdr { base, http: reqwest::Client::new(), state, dir, shutdown, task }
    }

    /// A key in `space` (created if absent) with `scopes`; returns the key and its signing secret.
    pub async fn key(&self, space: &str, scopes: &[&str], signed: bool) -> (String, Option<String>) {
        let s = self.state.keys.ensure_space(space).await.expect("space");
        let new = NewKey {
            name: format!("{space} {}", scopes.join("+")).chars().take(100).collect(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            signed,
            ..Default::default()
        };
        let k = self.state.keys.create(s.id, new, None).await.expect("key");
        (k.secret_key, k.signing_secret)
    }

    /// POSTs `body` with `key` as a bearer token and extra headers.
    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Sends `body` as JSON with `method`.
    pub async fn call_json(&self, method: &str, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method.parse().expect("method"), format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(key).send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub fn count(&self, sql: &str) -> i64 {
        let db =
            rusqlite::Connection::open_with_flags(self.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("db");
        db.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    pub async fn stop(self) -> TempDir {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("serve");
        self.dir
    }
}

/// Polls `f` until it gives a value (20 s at most; the shared deadline of the suite's waits on
/// background work — detection, the responder, notifications).
pub async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
