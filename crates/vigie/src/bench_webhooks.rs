//! `vigie bench webhooks`: the webhook dispatcher's figures (issue 4) against a receiver in this
//! process, each beside a baseline measured in the same run.
//!
//! - **Throughput**: `--events` events written straight into the outbox (batches of 1,000 per
//!   transaction, as fast as the store takes them), one standard-format webhook subscribed;
//!   measured from the first write to the receiver's last first-seen `webhook-id`. Baseline: a
//!   plain reqwest client posting the same bodies to the same receiver at the same concurrency
//!   (the HTTP ceiling without outbox, fan-out, signing or the attempt log).
//! - **Latency**: events committed one per transaction at `--rate` for `--seconds` (after a
//!   warm-up), like interactions; latency is the receiver's first receive instant of an event's
//!   `webhook-id` minus the instant its write returned (commit acknowledged). Baseline: the same
//!   event stream with each writer posting its event itself right after the commit.
//!
//! Everything (firewall, dispatcher, receiver, load) shares this process and the machine's cores.
use crate::traffic;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Args;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigie_core::auth::Principal;
use vigie_core::db::{Durability, StoreOptions};
use vigie_core::{StoreError, SystemClock};
use vigie_firewall::{FirewallOptions, FirewallState};

/// Issue 4's throughput target, deliveries per second.
const TARGET_DELIVERIES_PER_S: f64 = 5_000.0;
/// Issue 4's latency target: p99 from commit to the receiver's 2xx at 500 events/s.
const TARGET_P99_MS: f64 = 50.0;
/// Events per transaction in the throughput phase.
const WRITE_BATCH: usize = 1000;
/// The default per-endpoint concurrency of a webhook (`max_in_flight`).
const DEFAULT_MAX_IN_FLIGHT: u32 = 16;

/// Flags of `vigie bench webhooks`.
#[derive(Args, Debug, Clone)]
pub struct WebhooksBench {
    /// Events written to the outbox in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// The webhook's `max_in_flight` values measured in the throughput phase (comma-separated);
    /// the baseline client uses the same concurrency. The first is the one judged.
    #[arg(long, value_delimiter = ',', default_values_t = [16u32, 32])]
    pub max_in_flight: Vec<u32>,
    /// Events per second in the latency phase.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds measured in the latency phase.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds of events at the same rate before the latency phase's measure (not counted).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Commit durability: full (fsync per commit) or normal.
    #[arg(long, default_value = "full")]
    pub durability: String,
    /// Print one JSON document on standard output (the table goes to standard error).
    #[arg(long)]
    pub json: bool,
    /// Other webhooks of the same tenant, subscribed to an event type that never occurs here
    /// (the dispatcher must not pay for them on every wake).
    #[arg(long, default_value_t = 0)]
    pub idle_webhooks: usize,
}

// ---------------------------------------------------------------------------------------------
// The receiver

/// What the receiver saw: the first receive instant of every `webhook-id`.
struct Sink {
    first: Mutex<HashMap<String, Instant>>,
    requests: AtomicU64,
    /// The count of distinct ids, published after every new one.
    distinct: watch::Sender<usize>,
}

async fn hook(State(sink): State<Arc<Sink>>, headers: HeaderMap, _body: Bytes) -> StatusCode {
    let at = Instant::now();
    sink.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        let new_count = {
            let mut first = sink.first.lock().unwrap_or_else(|e| e.into_inner());
            if first.contains_key(id) {
                None
            } else {
                first.insert(id.to_owned(), at);
                Some(first.len())
            }
        };
        // Two handlers can publish out of order: the count only ever goes up.
        if let Some(n) = new_count {
            sink.distinct.send_if_modified(|d| {
                let higher = n > *d;
                *d = (*d).max(n);
                higher
            });
        }
    }
    StatusCode::OK
}

/// An HTTP receiver on 127.0.0.1 answering 200 to `POST /hook`.
struct Receiver {
    url: String,
    sink: Arc<Sink>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let sink = Arc::new(Sink { first: Mutex::new(HashMap::new()), requests: AtomicU64::new(0), distinct: watch::channel(0).0 });
        let app = Router::new().route("/hook", post(hook)).with_state(sink.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await });
        Ok(Receiver { url, sink, shutdown, task })
    }

    /// Waits until `n` distinct ids arrived, or `limit` passed; returns whether they all did.
    async fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let mut rx = self.sink.distinct.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|&d| d >= n)).await.is_ok_and(|r| r.is_ok())
    }

    fn distinct(&self) -> usize {
        *self.sink.distinct.borrow()
    }

    fn requests(&self) -> u64 {
        self.sink.requests.load(Ordering::Relaxed)
    }

    /// The latest first-receive instant.
    fn last(&self) -> Option<Instant> {
        self.sink.first.lock().unwrap_or_else(|e| e.into_inner()).values().max().copied()
    }

    fn take(&self) -> HashMap<String, Instant> {
        std::mem::take(&mut *self.sink.first.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The firewall

struct Firewall {
    state: FirewallState,
    tenant: Uuid,
    admin: Principal,
    /// The `data` of a real `interaction.created` event, reused for every event emitted.
    sample: Arc<Value>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Firewall {
    /// A firewall on a fresh data directory, served on 127.0.0.1:0 (which starts the
    /// dispatcher), with a tenant and one recorded interaction whose event is the sample.
    async fn start(durability: Durability) -> anyhow::Result<Firewall> {
        let dir = tempfile::tempdir()?;
        let mut opts = FirewallOptions {
            data_dir: dir.path().to_path_buf(),
            store: StoreOptions { durability, ..StoreOptions::default() },
            event_source: "noxys".into(),
            secret_key: None,
            auth: Default::default(),
            max_text_bytes: vigie_core::config::DEFAULT_MAX_TEXT_BYTES,
            webhooks: vigie_webhook::WebhookSettings::default(),
        };
        opts.webhooks.client.allow_private = true;
        let state = vigie_firewall::open(opts, Arc::new(SystemClock))?;
        let boot = state
            .auth
            .bootstrap("bench", "admin@bench.test", Some("correct horse battery staple"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let tenant = boot.map(|b| b.tenant.id).ok_or_else(|| anyhow::anyhow!("fresh data dir expected"))?;
        let admin = traffic::system(tenant, "bench");
        // One real interaction (recorded before any webhook exists, so never delivered): its
        // event's data is what every emitted event carries, so bodies have the real size.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let req = serde_json::from_value(traffic::interaction(&mut rng, 40, None))?;
        vigie_firewall::interactions::record(&state, &admin, req)
            .await
            .map_err(|e| anyhow::anyhow!("sample interaction: {}", e.message))?;
        let payload: String = state
            .store
            .read(|c| {
                c.query_row("SELECT payload FROM outbox WHERE event_type = 'interaction.created' ORDER BY seq DESC LIMIT 1", [], |r| {
                    r.get(0)
                })
                .map_err(StoreError::from)
            })
            .await?;
        let envelope: Value = serde_json::from_str(&payload)?;
        let sample = Arc::new(envelope.get("data").cloned().unwrap_or(Value::Null));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(vigie_firewall::serve(listener, state.clone(), shutdown.clone()));
        Ok(Firewall { state, tenant, admin, sample, shutdown, server, _dir: dir })
    }

    /// Subscribes a standard webhook at `url` to `interaction.created`, and `idle` others to
    /// `policy.deleted`.
    async fn subscribe(&self, url: &str, max_in_flight: u32, idle: usize) -> anyhow::Result<()> {
        for i in 0..=idle {
            let events = if i == 0 { "interaction.created" } else { "policy.deleted" };
            let new = serde_json::from_value(json!({"url": url, "events": [events], "max_in_flight": max_in_flight}))?;
            self.state.webhooks.create(&self.admin, new).await.map_err(|e| anyhow::anyhow!("webhook: {} {:?}", e.message, e.fields))?;
        }
        // No wait: creating a webhook bumps the dispatcher's generation, and it reloads before
        // it fans out anything written after.
        Ok(())
    }

    /// Writes `count` events in one transaction; returns their ids.
    async fn emit(&self, count: usize) -> Result<Vec<String>, StoreError> {
        let (ids, clock, sample, tenant) = (self.state.ids.clone(), self.state.clock.clone(), self.sample.clone(), self.tenant);
        self.state
            .store
            .write(move |c| {
                let now = clock.now();
                (0..count)
                    .map(|_| {
                        vigie_firewall::events::emit(
                            c,
                            ids.at(now),
                            "noxys",
                            tenant,
                            vigie_firewall::events::INTERACTION_CREATED,
                            now,
                            &*sample,
                        )
                    })
                    .collect()
            })
            .await
    }

    /// A body as the dispatcher sends it for one event: the envelope around the sample.
    fn body(&self) -> anyhow::Result<Vec<u8>> {
        let now = self.state.clock.now();
        let id = vigie_webhook::outbox::event_id(self.state.ids.at(now));
        Ok(serde_json::to_vec(&json!({
            "id": id, "type": vigie_firewall::events::INTERACTION_CREATED, "timestamp": now, "source": "noxys",
            "tenant_id": self.tenant, "data": &*self.sample,
        }))?)
    }

    /// The webhook's deliveries by state.
    async fn delivery_states(&self) -> anyhow::Result<HashMap<String, i64>> {
        Ok(self
            .state
            .store
            .read(|c| {
                let mut stmt = c.prepare("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                rows.collect::<Result<HashMap<_, _>, _>>().map_err(StoreError::from)
            })
            .await?)
    }

    async fn pending(&self) -> anyhow::Result<i64> {
        Ok(self
            .state
            .store
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'", [], |r| r.get(0)).map_err(StoreError::from)
            })
            .await?)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        Ok(())
    }
}

fn durability(s: &str) -> anyhow::Result<Durability> {
    match s {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => anyhow::bail!("--durability must be full or normal, not {other:?}"),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// CPU time of this process so far (user + system), where `/proc` tells it.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name's closing parenthesis; utime and stime are the 12th and
    // 13th of them, in clock ticks (100 per second on Linux).
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = rest.next()?.parse().ok()?;
    let system: u64 = rest.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// CPU time over wall time since `(cpu, wall)`: 2.0 is two cores busy.
fn cores_busy(since: (Option<Duration>, Instant)) -> Option<f64> {
    let used = cpu_time()?.checked_sub(since.0?)?;
    Some(used.as_secs_f64() / since.1.elapsed().as_secs_f64())
}

/// Sums and counts of the firewall's own histograms, to say where the time goes.
#[derive(Clone, Copy, Default)]
struct Scrape {
    /// `db_commit_duration_seconds`: BEGIN to the end of COMMIT (fsync included).
    commit_s: f64,
    commits: f64,
    /// `db_write_batch_size`: writes per committed transaction.
    writes: f64,
    /// `webhook_request_duration_seconds`: a delivery's request, as the dispatcher times it.
    request_s: f64,
    requests: f64,
}

impl Scrape {
    fn of(state: &FirewallState) -> Scrape {
        let text = state.metrics.render();
        let get = |name: &str| -> f64 {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(' '))
                .filter(|(k, _)| k.split('{').next().is_some_and(|k| k.ends_with(name)))
                .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
                .sum()
        };
        Scrape {
            commit_s: get("db_commit_duration_seconds_sum"),
            commits: get("db_commit_duration_seconds_count"),
            writes: get("db_write_batch_size_sum"),
            request_s: get("webhook_request_duration_seconds_sum"),
            requests: get("webhook_request_duration_seconds_count"),
        }
    }

    fn since(self, before: Scrape) -> Scrape {
        Scrape {
            commit_s: self.commit_s - before.commit_s,
            commits: self.commits - before.commits,
            writes: self.writes - before.writes,
            request_s: self.request_s - before.request_s,
            requests: self.requests - before.requests,
        }
    }

    /// Mean time of one commit, ms.
    fn commit_ms(&self) -> f64 {
        1000.0 * self.commit_s / self.commits
    }

    /// Mean writes grouped per commit.
    fn per_commit(&self) -> f64 {
        self.writes / self.commits
    }

    /// Mean delivery request time, ms.
    fn request_ms(&self) -> f64 {
        1000.0 * self.request_s / self.requests
    }

    fn json(&self, over: Duration) -> Value {
        json!({
            "commits": self.commits,
            "commit_mean_ms": self.commit_ms(),
            "writes_per_commit": self.per_commit(),
            "writer_busy": self.commit_s / over.as_secs_f64(),
            "delivery_requests": self.requests,
            "delivery_request_mean_ms": self.request_ms(),
        })
    }
}

/// How long to wait for `n` deliveries before calling the run incomplete.
fn patience(n: usize) -> Duration {
    Duration::from_secs(60).max(Duration::from_millis(n as u64 * 10))
}

// ---------------------------------------------------------------------------------------------
// Throughput

struct Throughput {
    max_in_flight: u32,
    events: usize,
    /// First write to the last first-seen id at the receiver.
    elapsed: Duration,
    delivered: usize,
    /// The outbox writes alone.
    writes: Duration,
    /// First write to the last attempt recorded (no delivery pending).
    settled: Option<Duration>,
    requests: u64,
    failed: i64,
    /// Transactions committed from the first write to settled.
    commits: u64,
    /// Cores busy (process CPU / wall) from the first write to the last receive.
    cores: Option<f64>,
    /// Bytes of one request body.
    body_bytes: usize,
    /// The firewall's metrics from the first write to settled.
    inside: Scrape,
    baseline: Baseline,
}

struct Baseline {
    elapsed: Duration,
    delivered: usize,
    errors: u64,
    cores: Option<f64>,
}

impl Throughput {
    fn per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }
    fn settled_per_s(&self) -> Option<f64> {
        self.settled.map(|s| self.delivered as f64 / s.as_secs_f64())
    }
    fn baseline_per_s(&self) -> f64 {
        self.baseline.delivered as f64 / self.baseline.elapsed.as_secs_f64()
    }
}

async fn throughput(b: &WebhooksBench, max_in_flight: u32) -> anyhow::Result<Throughput> {
    let n = b.events;
    let fw = Firewall::start(durability(&b.durability)?).await?;
    let rx = Receiver::start().await?;
    fw.subscribe(&rx.url, max_in_flight, b.idle_webhooks).await?;
    let commits_before = fw.state.store.commits();
    let scrape = Scrape::of(&fw.state);
    let started = Instant::now();
    let cpu = (cpu_time(), started);
    let mut left = n;
    while left > 0 {
        let count = left.min(WRITE_BATCH);
        fw.emit(count).await?;
        left -= count;
    }
    let writes = started.elapsed();
    let complete = rx.wait_for(n, patience(n)).await;
    let cores = cores_busy(cpu);
    let delivered = rx.distinct();
    let elapsed = rx.last().map_or(started.elapsed(), |t| t.saturating_duration_since(started));
    if !complete {
        tracing::warn!(max_in_flight, delivered, expected = n, "not every event reached the receiver in time");
    }
    // Settled: every attempt recorded. Polled only now, so it does not load the measure above.
    let mut settled = None;
    let deadline = Instant::now() + patience(n);
    while Instant::now() < deadline {
        if fw.pending().await? == 0 {
            settled = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let commits = fw.state.store.commits() - commits_before;
    let inside = Scrape::of(&fw.state).since(scrape);
    let states = fw.delivery_states().await?;
    let requests = rx.requests();
    let body = fw.body()?;
    fw.stop().await?;
    rx.stop().await?;

    let baseline = baseline_throughput(n, max_in_flight as usize, &body).await?;
    Ok(Throughput {
        max_in_flight,
        events: n,
        elapsed,
        delivered,
        writes,
        settled,
        requests,
        failed: states.get("failed").copied().unwrap_or(0),
        commits,
        cores,
        body_bytes: body.len(),
        inside,
        baseline,
    })
}

fn plain_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(concurrency.max(1)).tcp_nodelay(true).build()?)
}

/// `n` posts to a fresh receiver from `concurrency` plain workers.
async fn baseline_throughput(n: usize, concurrency: usize, body: &[u8]) -> anyhow::Result<Baseline> {
    let rx = Receiver::start().await?;
    let client = plain_client(concurrency)?;
    let body = Bytes::copy_from_slice(body);
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let cpu = (cpu_time(), started);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, body, next, errors) = (client.clone(), rx.url.clone(), body.clone(), next.clone(), errors.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", format!("base_{i}"))
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match r {
                    Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let cores = cores_busy(cpu);
    let delivered = rx.distinct();
    let elapsed = rx.last().map_or(started.elapsed(), |t| t.saturating_duration_since(started));
    rx.stop().await?;
    Ok(Baseline { elapsed, delivered, errors: errors.load(Ordering::Relaxed), cores })
}

// ---------------------------------------------------------------------------------------------
// Latency

struct Latency {
    name: &'static str,
    /// Events measured (after the warm-up).
    events: usize,
    /// Measured events that never reached the receiver.
    missing: usize,
    /// Receive before the commit was seen acknowledged (clamped to 1 µs).
    early: usize,
    /// Commit acknowledged → first receive, µs.
    latency_us: Histogram<u64>,
    /// Write called → commit acknowledged, µs.
    commit_us: Histogram<u64>,
    /// How late the generator started writes against the schedule, µs.
    lag_us: Histogram<u64>,
    /// The rate achieved over the measured events.
    achieved_rate: f64,
    /// The firewall's metrics over the measured part, and how long it lasted.
    inside: Scrape,
    span: Duration,
}

impl Latency {
    fn ms(h: &Histogram<u64>, q: f64) -> f64 {
        h.value_at_quantile(q) as f64 / 1000.0
    }
    fn p(&self, q: f64) -> f64 {
        Self::ms(&self.latency_us, q)
    }
}

/// Events at `b.rate` for warm-up + measure, one transaction each; with `direct`, each writer
/// posts its event to the receiver itself after the commit (the baseline) and no webhook is
/// subscribed.
async fn latency(b: &WebhooksBench, direct: bool) -> anyhow::Result<Latency> {
    let fw = Arc::new(Firewall::start(durability(&b.durability)?).await?);
    let rx = Receiver::start().await?;
    if !direct {
        fw.subscribe(&rx.url, DEFAULT_MAX_IN_FLIGHT, b.idle_webhooks).await?;
    }
    let client = plain_client(16)?;
    let body = Bytes::from(fw.body()?);
    let warm = (b.rate * b.warmup as f64).round() as usize;
    let total = warm + (b.rate * b.seconds as f64).round() as usize;
    let period = 1.0 / b.rate;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = tokio::task::JoinSet::new();
    let mut from = (Scrape::default(), start);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 * period);
        tokio::time::sleep_until(due.into()).await;
        if i == warm {
            from = (Scrape::of(&fw.state), Instant::now());
        }
        let (fw, client, url, body) = (fw.clone(), client.clone(), rx.url.clone(), body.clone());
        tasks.spawn(async move {
            let called = Instant::now();
            let ids = fw.emit(1).await?;
            let committed = Instant::now();
            let id = ids.into_iter().next().unwrap_or_default();
            if direct {
                let r = client.post(&url).header("content-type", "application/json").header("webhook-id", &id).body(body).send().await;
                if let Ok(resp) = r {
                    let _ = resp.bytes().await;
                }
            }
            anyhow::Ok((i, id, called, committed, called.saturating_duration_since(due)))
        });
    }
    let mut commits = Vec::with_capacity(total);
    while let Some(r) = tasks.join_next().await {
        commits.push(r??);
    }
    commits.sort_by_key(|c| c.0);
    let measured = &commits[warm.min(commits.len())..];
    rx.wait_for(commits.len(), patience(commits.len())).await;
    let inside = Scrape::of(&fw.state).since(from.0);
    let span = from.1.elapsed();
    let received = rx.take();
    let fw = Arc::try_unwrap(fw).map_err(|_| anyhow::anyhow!("the firewall is still shared"))?;
    fw.stop().await?;
    rx.stop().await?;

    let (mut latency_us, mut commit_us, mut lag_us) = (histogram(), histogram(), histogram());
    let (mut missing, mut early) = (0, 0);
    for (_, id, called, committed, lag) in measured {
        commit_us.record(committed.saturating_duration_since(*called).as_micros().max(1) as u64)?;
        lag_us.record(lag.as_micros().max(1) as u64)?;
        match received.get(id) {
            Some(at) => {
                if at < committed {
                    early += 1;
                }
                latency_us.record(at.saturating_duration_since(*committed).as_micros().max(1) as u64)?;
            }
            None => missing += 1,
        }
    }
    let achieved_rate = match (measured.first(), measured.last()) {
        (Some(f), Some(l)) if measured.len() > 1 => (measured.len() - 1) as f64 / l.2.saturating_duration_since(f.2).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok(Latency {
        name: if direct { "baseline: commit, then a direct POST" } else { "dispatcher: commit → receiver 2xx" },
        events: measured.len(),
        missing,
        early,
        latency_us,
        commit_us,
        lag_us,
        achieved_rate,
        inside,
        span,
    })
}

// ---------------------------------------------------------------------------------------------
// Report

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// `vigie bench webhooks`.
pub async fn webhooks(b: WebhooksBench) -> anyhow::Result<()> {
    durability(&b.durability)?;
    anyhow::ensure!(b.events > 0 && b.rate > 0.0 && b.seconds > 0, "--events, --rate and --seconds must be positive");
    anyhow::ensure!(!b.max_in_flight.is_empty() && b.max_in_flight.iter().all(|m| (1..=64).contains(m)), "--max-in-flight: values 1–64");
    let json_out = b.json;
    // With --json the table goes to stderr so stdout is the document alone.
    let say = |line: String| if json_out { eprintln!("{line}") } else { println!("{line}") };

    say(format!("Webhook dispatcher — durability {}, standard format, one webhook, receiver and load in this process", b.durability));
    say(String::new());
    say(format!(
        "Throughput: {} events written to the outbox ({} per transaction); \
         baseline: a plain client posting the same bodies at the same concurrency",
        b.events, WRITE_BATCH
    ));
    say("| max_in_flight | deliveries/s (to 2xx) | settled/s (attempts recorded) | outbox writes | commits | cores busy \
         | baseline requests/s | baseline cores busy | dispatcher / baseline | requests | failed |"
        .into());
    say("|---|---|---|---|---|---|---|---|---|---|---|".into());
    let mut runs = Vec::new();
    for &m in &b.max_in_flight {
        let t = throughput(&b, m).await?;
        let cores = |c: Option<f64>| c.map_or("?".into(), |c| format!("{c:.2}"));
        say(format!(
            "| {} | {:.0}{} | {} | {:.0} ms | {} | {} | {:.0}{} | {} | {:.3} | {} | {} |",
            t.max_in_flight,
            t.per_s(),
            if t.delivered < t.events { format!(" ({} of {} only)", t.delivered, t.events) } else { String::new() },
            t.settled_per_s().map_or("not settled".into(), |v| format!("{v:.0}")),
            t.writes.as_secs_f64() * 1000.0,
            t.commits,
            cores(t.cores),
            t.baseline_per_s(),
            if t.baseline.errors > 0 { format!(" ({} errors)", t.baseline.errors) } else { String::new() },
            cores(t.baseline.cores),
            t.per_s() / t.baseline_per_s(),
            t.requests,
            t.failed,
        ));
        runs.push(t);
    }
    say(String::new());
    say("Where the time goes (the firewall's own metrics, first write to the last attempt recorded):".into());
    say("| max_in_flight | slot cycle ms (max_in_flight / deliveries/s) | delivery request mean ms | commits | writes per commit \
         | commit mean ms | writer busy |"
        .into());
    say("|---|---|---|---|---|---|---|".into());
    for t in &runs {
        let i = &t.inside;
        say(format!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.1} | {:.3} | {:.0} % |",
            t.max_in_flight,
            1000.0 * f64::from(t.max_in_flight) / t.per_s(),
            i.request_ms(),
            i.commits,
            i.per_commit(),
            i.commit_ms(),
            100.0 * i.commit_s / t.settled.unwrap_or(t.elapsed).as_secs_f64(),
        ));
    }
    if let Some(t) = runs.first() {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        say(format!(
            "({} bytes per request body: an interaction.created envelope; cores busy = process CPU time / wall time, of {cpus})",
            t.body_bytes
        ));
    }

    say(String::new());
    say(format!(
        "Latency: {} events/s for {} s after {} s of warm-up, one transaction per event; commit acknowledged → first receive",
        b.rate, b.seconds, b.warmup
    ));
    say("| path | events | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | missing | commit p50 / p99 ms | rate achieved |".into());
    say("|---|---|---|---|---|---|---|---|---|---|".into());
    let mut lats = Vec::new();
    for direct in [false, true] {
        let l = latency(&b, direct).await?;
        say(format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} / {:.2} | {:.0}/s |",
            l.name,
            l.events,
            l.p(0.5),
            l.p(0.9),
            l.p(0.99),
            l.p(0.999),
            l.p(1.0),
            l.missing,
            Latency::ms(&l.commit_us, 0.5),
            Latency::ms(&l.commit_us, 0.99),
            l.achieved_rate,
        ));
        say(format!(
            "  ({:.0} commits/s, {:.1} writes per commit, commit mean {:.3} ms, writer busy {:.0} %{})",
            l.inside.commits / l.span.as_secs_f64(),
            l.inside.per_commit(),
            l.inside.commit_ms(),
            100.0 * l.inside.commit_s / l.span.as_secs_f64(),
            if l.inside.requests > 0.0 { format!(", delivery request mean {:.2} ms", l.inside.request_ms()) } else { String::new() }
        ));
        if l.early > 0 {
            say(format!("  ({} events reached the receiver before their writer saw the commit; counted as 1 µs)", l.early));
        }
        if Latency::ms(&l.lag_us, 0.99) > 5.0 {
            say(format!("  (the generator ran late: start lag p99 {:.2} ms)", Latency::ms(&l.lag_us, 0.99)));
        }
        lats.push(l);
    }

    let judged = &runs[0];
    let dispatcher = &lats[0];
    let throughput_ok = judged.delivered == judged.events && judged.per_s() >= TARGET_DELIVERIES_PER_S;
    let rate_ok = (b.rate - 500.0).abs() < f64::EPSILON;
    let latency_ok = dispatcher.missing == 0 && dispatcher.p(0.99) <= TARGET_P99_MS;
    say(String::new());
    say("Targets (issue 4):".into());
    say(format!(
        "  ≥ {:.0} deliveries/s (max_in_flight {}): {:.0} — {} ({:.2}× the plain-client baseline)",
        TARGET_DELIVERIES_PER_S,
        judged.max_in_flight,
        judged.per_s(),
        pass(throughput_ok),
        judged.per_s() / judged.baseline_per_s()
    ));
    say(format!(
        "  p99 ≤ {TARGET_P99_MS:.0} ms at 500 events/s: {:.2} ms — {}{}",
        dispatcher.p(0.99),
        pass(latency_ok),
        if rate_ok { String::new() } else { format!(" (measured at {} events/s, not 500)", b.rate) }
    ));

    if json_out {
        let q = |h: &Histogram<u64>| {
            json!({
                "p50_ms": Latency::ms(h, 0.5), "p90_ms": Latency::ms(h, 0.9), "p99_ms": Latency::ms(h, 0.99),
                "p999_ms": Latency::ms(h, 0.999), "max_ms": Latency::ms(h, 1.0),
            })
        };
        let doc = json!({
            "bench": "webhooks",
            "durability": b.durability,
            "throughput": runs.iter().map(|t| json!({
                "max_in_flight": t.max_in_flight,
                "events": t.events,
                "delivered": t.delivered,
                "deliveries_per_s": t.per_s(),
                "settled_per_s": t.settled_per_s(),
                "outbox_writes_ms": t.writes.as_secs_f64() * 1000.0,
                "requests": t.requests,
                "failed": t.failed,
                "commits": t.commits,
                "cores_busy": t.cores,
                "body_bytes": t.body_bytes,
                "firewall": t.inside.json(t.settled.unwrap_or(t.elapsed)),
                "baseline": {
                    "requests_per_s": t.baseline_per_s(),
                    "cores_busy": t.baseline.cores,
                    "delivered": t.baseline.delivered,
                    "errors": t.baseline.errors,
                },
                "ratio": t.per_s() / t.baseline_per_s(),
            })).collect::<Vec<_>>(),
            "latency": {
                "rate": b.rate,
                "seconds": b.seconds,
                "warmup": b.warmup,
                "runs": lats.iter().map(|l| json!({
                    "path": l.name,
                    "events": l.events,
                    "missing": l.missing,
                    "received_before_commit_seen": l.early,
                    "latency": q(&l.latency_us),
                    "commit": q(&l.commit_us),
                    "generator_lag": q(&l.lag_us),
                    "achieved_rate": l.achieved_rate,
                    "firewall": l.inside.json(l.span),
                })).collect::<Vec<_>>(),
            },
            "targets": {
                "deliveries_per_s": {
                    "target": TARGET_DELIVERIES_PER_S, "max_in_flight": judged.max_in_flight,
                    "measured": judged.per_s(), "pass": throughput_ok,
                },
                "p99_ms_at_500_per_s": {
                    "target": TARGET_P99_MS, "rate": b.rate, "measured": dispatcher.p(0.99), "pass": latency_ok && rate_ok,
                },
            },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
