//! A webhook receiver on a loopback port: records every request and answers as scripted
//! (status, delay, `Retry-After`, body), so tests see exactly what the dispatcher sent.
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a test waits for a condition before failing (a guard, never the synchronisation).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").expect("webhook-id")
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, delay: Duration::ZERO, retry_after: None, location: None, body: String::new() }
    }
}

struct Inner {
    got: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    answered: AtomicUsize,
    changed: watch::Sender<usize>,
}

pub struct Receiver {
    pub url: String,
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let headers: HashMap<String, String> =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let reply = {
        let mut script = inner.script.lock().expect("lock");
        script.pop_front().unwrap_or_else(|| inner.default.lock().expect("lock").clone())
    };
    {
        let mut got = inner.got.lock().expect("lock");
        got.push(Received { headers, body: body.to_vec(), at: Instant::now() });
        inner.changed.send_replace(got.len());
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    inner.answered.fetch_add(1, Ordering::SeqCst);
    let mut resp = (StatusCode::from_u16(reply.status).expect("status"), reply.body).into_response();
    if let Some(r) = reply.retry_after {
        resp.headers_mut().insert("retry-after", r.parse().expect("header"));
    }
    if let Some(l) = reply.location {
        resp.headers_mut().insert("location", l.parse().expect("header"));
    }
    resp
}

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().expect("addr")).await
    }

    /// A receiver on `addr` (a port a stopped receiver used: it comes back up).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the receiver");
        let addr = listener.local_addr().expect("addr");
        let (changed, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            got: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(200)),
            answered: AtomicUsize::new(0),
            changed,
        });
        let app = Router::new().route("/hook", axum::routing::post(handle)).with_state(inner.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        });
        Receiver { url: format!("http://{addr}/hook"), addr, inner, shutdown, task }
    }

    /// Replies given in order to the next requests; then the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().expect("lock").extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.inner.default.lock().expect("lock") = reply;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.got.lock().expect("lock").clone()
    }

    /// Requests answered (their delay over).
    pub fn answered(&self) -> usize {
        self.inner.answered.load(Ordering::SeqCst)
    }

    /// Waits until `cond` holds over what was received; fails the test after [`DEADLINE`].
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let mut rx = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let got = self.received();
            if cond(&got) {
                return got;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                panic!("the receiver never saw {what}; it got {} requests", got.len());
            }
        }
    }

    /// Stops listening (connections closed): the receiver is down.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
