//! `vigie bench intake`: the XDR's intake figures (issue 5) against an XDR started in this
//! process, each beside a baseline measured in the same run.
//!
//! - **Batched**: `--senders` senders each POSTing arrays of `--batch` events to
//!   `/api/v1/events` (`Authorization: Bearer`), back to back, for `--seconds` after `--warmup`.
//! - **Single**: `--concurrency` senders each POSTing one event (a JSON object) per request.
//! - **Baseline** of each: the storage ceiling — the same events, read by `intake::prepare`
//!   (id, time, type, source) before the clock starts, written with `Store::write` and the intake's own
//!   insert (one write per batch, or per event, from the same number of concurrent writers, so
//!   group commit works the same), with no HTTP and no parsing. The ratio says what the HTTP
//!   path (request handling, authentication, parsing, reading each event's log fields) costs on
//!   top.
//!
//! Events are real `interaction.high_risk` envelopes: a firewall opened in a temporary directory
//! records simulated interactions (500 people, the usual platforms, the starter policies) and
//! its outbox gives the envelopes; each event sent gets its own id and is stamped with the time
//! it is sent. Every measurement runs on a fresh data directory, and ends by checking that the
//! `events` table holds exactly the events acknowledged (warm-up included): none lost, none twice.
//!
//! The load generator runs on its own runtime (threads `vigie-bench-client`), so the CPU time of
//! the server (the XDR's runtime threads and its SQLite writer) is told apart from the client's.
//! Both share this machine's cores.
use crate::traffic;
use clap::Args;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vigie_core::db::{Durability, StoreOptions};
use vigie_core::{StoreError, SystemClock};
use vigie_xdr::XdrState;
use vigie_xdr::intake::Prepared;
use vigie_xdr::keys::Caller;

/// Issue 5's batched target, events per second.
const TARGET_BATCHED_EPS: f64 = 100_000.0;
/// Issue 5's single-event target, requests (= events) per second.
const TARGET_SINGLE_RPS: f64 = 10_000.0;
/// Issue 5's single-event latency target, p99.
const TARGET_SINGLE_P99_MS: f64 = 10.0;
/// The placeholder an envelope's id holds in a template.
const ID_SLOT: &str = "@@BENCH-EVENT-ID@@";
/// The placeholder an envelope's `timestamp` holds in a template.
const TS_SLOT: &str = "@@BENCH-TIMESTAMP@@";
/// Distinct envelopes the events are cut from.
const TEMPLATES: usize = 256;
/// Bytes that start every event id this bench sends (counted in answers).
const ID_PREFIX: &str = "evt-bench-";

/// Flags of `vigie bench intake`.
#[derive(Args, Debug, Clone)]
pub struct IntakeBench {
    /// Seconds measured per phase and path (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Seconds of load before each measure (not counted).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Concurrent senders of the batched phase.
    #[arg(long, default_value_t = 8)]
    pub senders: usize,
    /// Concurrent senders of the single-event phase.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Events per request in the batched phase.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Commit durability: full (fsync per commit) or normal.
    #[arg(long, default_value = "full")]
    pub durability: String,
    /// Checkpoint the WAL from a background thread (`StoreOptions::background_checkpoints`)
    /// instead of the writer's auto-checkpoint (the default).
    #[arg(long)]
    pub background_checkpoints: bool,
    /// Print one JSON document on standard output (the table goes to standard error).
    #[arg(long)]
    pub json: bool,
    /// Do not run the facts builder beside intake (it runs in `vigie serve`).
    #[arg(long)]
    pub no_facts: bool,
    /// Enable the default detection rules in the bench's space: detection then evaluates every
    /// event beside intake (without, it only counts them).
    #[arg(long)]
    pub detection: bool,
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

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// CPU time

/// CPU time (user + system) of the process, of the load generator's threads and of the SQLite
/// writer thread, from `/proc` (clock ticks of 10 ms).
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    process: Duration,
    client: Duration,
    writer: Duration,
    /// Every CPU's busy time, all processes (`/proc/stat`): what else ran on the machine.
    machine: Duration,
}

/// Busy time of all CPUs together since boot (user, nice, system, irq, softirq, steal).
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let busy = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum::<u64>();
    Some(Duration::from_millis(busy * 10))
}

/// `(utime + stime, comm)` of a `/proc/.../stat` line.
fn stat_cpu(stat: &str) -> Option<(Duration, &str)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    // Fields after the command name's closing parenthesis; utime and stime are the 12th and
    // 13th of them, in clock ticks (100 per second on Linux).
    let mut rest = rest.split_whitespace().skip(11);
    let user: u64 = rest.next()?.parse().ok()?;
    let system: u64 = rest.next()?.parse().ok()?;
    Some((Duration::from_millis((user + system) * 10), comm))
}

impl Cpu {
    /// Now; `None` where `/proc` does not tell.
    fn now() -> Option<Cpu> {
        let process = stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?)?.0;
        let mut cpu = Cpu { process, machine: machine_busy()?, ..Cpu::default() };
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
            let Some((used, comm)) = stat_cpu(&stat) else { continue };
            // Thread names are cut to 15 bytes.
            if comm.starts_with("vigie-bench-cli") {
                cpu.client += used;
            } else if comm.starts_with("vigie-sqlite-wr") {
                cpu.writer += used;
            }
        }
        Some(cpu)
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            process: self.process.saturating_sub(before.process),
            client: self.client.saturating_sub(before.client),
            writer: self.writer.saturating_sub(before.writer),
            machine: self.machine.saturating_sub(before.machine),
        }
    }

    /// CPU time of other processes: the machine's busy time less this process's.
    fn others(&self) -> Duration {
        self.machine.saturating_sub(self.process)
    }

    /// Everything but the load generator: the XDR's runtime threads, its writer, the rest.
    fn server(&self) -> Duration {
        self.process.saturating_sub(self.client)
    }
}

// ---------------------------------------------------------------------------------------------
// The XDR's own metrics

/// Sums and counts of the XDR's histograms, to say where the time goes.
#[derive(Clone, Default, Debug)]
struct Scrape {
    /// `db_commit_duration_seconds`: BEGIN to the end of COMMIT (the inserts and the fsync).
    commit_s: f64,
    commits: f64,
    /// `db_write_batch_size`: writes (`Store::write` calls) per committed transaction.
    writes: f64,
    /// `http_request_duration_seconds`: requests as the server times them.
    http_s: f64,
    http: f64,
    /// The commit-duration histogram: (upper bound in seconds, commits at or under it).
    commit_buckets: Vec<(f64, f64)>,
}

impl Scrape {
    /// The bucket bound (ms) under which a fraction `q` of the window's commits finished.
    fn commit_quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.commit_buckets.iter().map(|b| b.1).fold(0.0, f64::max);
        let mut sorted = self.commit_buckets.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        sorted.into_iter().find(|b| total > 0.0 && b.1 >= q * total).map(|b| b.0 * 1000.0)
    }

    fn of(state: &XdrState) -> Scrape {
        let text = state.metrics.render();
        let get = |name: &str| -> f64 {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.rsplit_once(' '))
                .filter(|(k, _)| k.split('{').next().is_some_and(|k| k.ends_with(name)))
                .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
                .sum()
        };
        let commit_buckets = text
            .lines()
            .filter(|l| l.split('{').next().is_some_and(|k| k.ends_with("db_commit_duration_seconds_bucket")))
            .filter_map(|l| {
                let le = l.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((le, l.rsplit_once(' ')?.1.trim().parse().ok()?))
            })
            .collect();
        Scrape {
            commit_buckets,
            commit_s: get("db_commit_duration_seconds_sum"),
            commits: get("db_commit_duration_seconds_count"),
            writes: get("db_write_batch_size_sum"),
            http_s: get("http_request_duration_seconds_sum"),
            http: get("http_request_duration_seconds_count"),
        }
    }

    fn since(self, before: &Scrape) -> Scrape {
        let commit_buckets = self
            .commit_buckets
            .iter()
            .map(|&(le, n)| (le, n - before.commit_buckets.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1)))
            .collect();
        Scrape {
            commit_buckets,
            commit_s: self.commit_s - before.commit_s,
            commits: self.commits - before.commits,
            writes: self.writes - before.writes,
            http_s: self.http_s - before.http_s,
            http: self.http - before.http,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The events

/// What a template leaves open.
#[derive(Clone, Copy)]
enum Slot {
    Id,
    Timestamp,
}

/// An event with its id and its `timestamp` cut out: `parts` interleaved with `slots`.
struct Template {
    parts: Vec<String>,
    slots: Vec<Slot>,
}

impl Template {
    fn of(text: &str) -> anyhow::Result<Template> {
        let mut found = Vec::new();
        for (slot, mark) in [(Slot::Id, ID_SLOT), (Slot::Timestamp, TS_SLOT)] {
            let at: Vec<usize> = text.match_indices(mark).map(|(i, _)| i).collect();
            anyhow::ensure!(at.len() == 1, "the placeholder {mark} occurs {} times in a template, not once", at.len());
            found.push((at[0], mark.len(), slot));
        }
        found.sort_by_key(|f| f.0);
        let (mut parts, mut slots, mut from) = (Vec::new(), Vec::new(), 0);
        for (at, len, slot) in found {
            parts.push(text[from..at].to_owned());
            slots.push(slot);
            from = at + len;
        }
        parts.push(text[from..].to_owned());
        Ok(Template { parts, slots })
    }

    /// Bytes without the slots.
    fn len(&self) -> usize {
        self.parts.iter().map(String::len).sum()
    }

    /// Appends the event with event id (`op`, `j`) and `timestamp`.
    fn write(&self, out: &mut Vec<u8>, op: u64, j: usize, timestamp: &str) {
        for (part, slot) in self.parts.iter().zip(self.slots.iter().map(Some).chain(std::iter::once(None))) {
            out.extend_from_slice(part.as_bytes());
            match slot {
                Some(Slot::Id) => event_id(out, op, j),
                Some(Slot::Timestamp) => out.extend_from_slice(timestamp.as_bytes()),
                None => {}
            }
        }
    }
}

/// The id of event `j` of operation `op`.
fn event_id(out: &mut Vec<u8>, op: u64, j: usize) {
    let _ = write!(out, "{ID_PREFIX}{op:010}-{j:03}");
}

/// Now, as an event's `timestamp` (RFC 3339, µs) and in µs. Events are stamped when sent, as a
/// live stream is: their times increase, so the time indexes are appended to. (Stamps from a
/// fixed set, replayed in any order, make every commit touch leaf pages all over the
/// `(space_id, timestamp, seq)` indexes: measured 3.6× slower in SQLite alone.)
fn stamp() -> (String, i64) {
    let now = chrono::Utc::now();
    (now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), now.timestamp_micros())
}

/// Up to `n` envelopes from the outbox of a throwaway firewall fed simulated interactions (500
/// people, the usual platforms, the starter policies), of `event_type` only when given.
pub(crate) async fn firewall_envelopes(event_type: Option<&str>, n: usize) -> anyhow::Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let opts = vigie_firewall::FirewallOptions {
        data_dir: dir.path().to_path_buf(),
        // A generator of samples: no fsync needed.
        store: StoreOptions { durability: Durability::Normal, ..StoreOptions::default() },
        event_source: "noxys".into(),
        secret_key: None,
        auth: Default::default(),
        max_text_bytes: vigie_core::config::DEFAULT_MAX_TEXT_BYTES,
        webhooks: Default::default(),
    };
    let state = vigie_firewall::open(opts, Arc::new(SystemClock))?;
    let boot = state
        .auth
        .bootstrap("bench", "admin@bench.test", Some("correct horse battery staple"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = boot.map(|b| b.tenant.id).ok_or_else(|| anyhow::anyhow!("fresh data dir expected"))?;
    let admin = traffic::system(tenant, "bench");
    traffic::seed(&state, &admin, traffic::starter_policies()).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let kind = event_type.map(str::to_owned);
    let count = |kind: Option<String>| {
        let store = state.store.clone();
        async move {
            store
                .read(move |c| {
                    c.query_row("SELECT COUNT(*) FROM outbox WHERE ?1 IS NULL OR event_type = ?1", [kind], |r| r.get::<_, i64>(0))
                        .map_err(StoreError::from)
                })
                .await
        }
    };
    for _ in 0..400 {
        if count(kind.clone()).await? >= n as i64 {
            break;
        }
        for _ in 0..100 {
            let req = serde_json::from_value(traffic::interaction(&mut rng, 500, None))?;
            vigie_firewall::interactions::record(&state, &admin, req)
                .await
                .map_err(|e| anyhow::anyhow!("sample interaction: {}", e.message))?;
        }
    }
    let payloads: Vec<String> = state
        .store
        .read(move |c| {
            let mut stmt = c.prepare("SELECT payload FROM outbox WHERE ?1 IS NULL OR event_type = ?1 ORDER BY seq LIMIT ?2")?;
            let rows = stmt.query_map(rusqlite::params![kind, n as i64], |r| r.get(0))?;
            rows.collect::<Result<Vec<String>, _>>().map_err(StoreError::from)
        })
        .await?;
    state.store.close().await;
    Ok(payloads)
}

/// Real firewall envelopes, as JSON objects with [`ID_SLOT`] as their id and [`TS_SLOT`] as
/// their `timestamp`.
struct Envelopes {
    objects: Vec<Map<String, Value>>,
    templates: Vec<Template>,
    /// Mean bytes of one event as sent (with an id of this bench's length).
    mean_bytes: usize,
}

impl Envelopes {
    /// Records simulated interactions in a throwaway firewall and keeps the first
    /// [`TEMPLATES`] `interaction.high_risk` envelopes of its outbox.
    async fn from_firewall() -> anyhow::Result<Envelopes> {
        let payloads = firewall_envelopes(Some("interaction.high_risk"), TEMPLATES).await?;
        anyhow::ensure!(!payloads.is_empty(), "the firewall produced no interaction.high_risk event");
        let mut objects = Vec::with_capacity(payloads.len());
        let mut templates = Vec::with_capacity(payloads.len());
        for p in payloads {
            let Value::Object(mut o) = serde_json::from_str::<Value>(&p)? else { anyhow::bail!("an envelope is not an object") };
            o.insert("id".into(), Value::String(ID_SLOT.into()));
            o.insert("timestamp".into(), Value::String(TS_SLOT.into()));
            templates.push(Template::of(&serde_json::to_string(&o)?)?);
            objects.push(o);
        }
        let slots_len = ID_PREFIX.len() + 14 + stamp().0.len();
        let mean_bytes = templates.iter().map(Template::len).sum::<usize>() / templates.len() + slots_len;
        Ok(Envelopes { objects, templates, mean_bytes })
    }

    /// The body of operation `op`: `n` events, an array unless `single`.
    fn body(&self, op: u64, n: usize, single: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * (self.mean_bytes + 1) + 2);
        let (timestamp, _) = stamp();
        if !single {
            out.push(b'[');
        }
        for j in 0..n {
            if j > 0 {
                out.push(b',');
            }
            self.templates[(op as usize).wrapping_mul(n).wrapping_add(j) % self.templates.len()].write(&mut out, op, j, &timestamp);
        }
        if !single {
            out.push(b']');
        }
        out
    }
}

/// The envelopes as `intake::prepare` leaves them, for one space: what the baseline stores.
/// Each keeps its `event_type` and `source`; the body is a template.
struct PreparedTemplates(Vec<(Option<String>, String, Template)>);

impl PreparedTemplates {
    fn new(x: &Xdr, envelopes: &Envelopes) -> anyhow::Result<PreparedTemplates> {
        let texts = envelopes.objects.iter().map(|o| std::borrow::Cow::Owned(Value::Object(o.clone()).to_string())).collect();
        let prepared = vigie_xdr::intake::prepare(&x.state, &x.caller, texts, x.state.clock.now())
            .map_err(|e| anyhow::anyhow!("prepare: {}", e.message))?;
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            let t = Template::of(&p.body)?;
            out.push((p.event_type, p.source, t));
        }
        Ok(PreparedTemplates(out))
    }

    /// The `n` prepared events of operation `op`, each with its own id, stamped now.
    fn events(&self, op: u64, n: usize) -> Vec<Prepared> {
        let (text, micros) = stamp();
        (0..n)
            .map(|j| {
                let (event_type, source, t) = &self.0[(op as usize).wrapping_mul(n).wrapping_add(j) % self.0.len()];
                let mut id = Vec::with_capacity(ID_PREFIX.len() + 14);
                event_id(&mut id, op, j);
                let mut body = Vec::with_capacity(t.len() + id.len() + text.len());
                t.write(&mut body, op, j, &text);
                Prepared {
                    id: String::from_utf8(id).unwrap_or_default(),
                    timestamp: micros,
                    event_type: event_type.clone(),
                    source: source.clone(),
                    body: String::from_utf8(body).unwrap_or_default(),
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The XDR

struct Xdr {
    state: XdrState,
    url: String,
    /// `Bearer <key>`.
    auth: String,
    caller: Caller,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Xdr {
    /// An XDR on a fresh data directory, served on 127.0.0.1:0, with a space and an
    /// `events_write` key whose request rate is not limited in practice.
    async fn start(b: &IntakeBench) -> anyhow::Result<Xdr> {
        let dir = tempfile::tempdir()?;
        let opts = vigie_xdr::XdrOptions {
            data_dir: dir.path().to_path_buf(),
            store: StoreOptions {
                durability: durability(&b.durability)?,
                background_checkpoints: b.background_checkpoints,
                ..StoreOptions::default()
            },
            secret_key: None,
            // The per-key limit (20,000 requests/s by default) would cap the single-event phase
            // rather than the intake path: raised far above anything this machine can send.
            key_rate: vigie_xdr::keys::KeyRate { per_second: 1e9, burst: 1e9 },
            retention_every: Duration::from_secs(3600),
            search: Default::default(),
            build_facts: !b.no_facts,
            default_rules_enabled: b.detection,
            allow_private_destinations: false,
            notify: Default::default(),
        };
        let state = vigie_xdr::open(opts, Arc::new(SystemClock))?;
        let space = state.keys.ensure_space("bench").await?;
        let new = vigie_xdr::keys::NewKey { name: "bench".into(), scopes: vec!["events_write".into()], ..Default::default() };
        let key = state.keys.create(space.id, new, None).await.map_err(|e| anyhow::anyhow!("key: {}", e.message))?.secret_key;
        let caller = state.keys.authenticate(&key).await.map_err(|e| anyhow::anyhow!("key: {}", e.message))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/api/v1/events", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(vigie_xdr::serve(listener, state.clone(), shutdown.clone()));
        Ok(Xdr { state, url, auth: format!("Bearer {key}"), caller, shutdown, server, _dir: dir })
    }

    /// Counts the log's rows, stops the server (closing the store) and measures the database.
    async fn finish(self, load: Load) -> anyhow::Result<Run> {
        let rows = self.rows().await?;
        let path = self._dir.path().join("xdr.db");
        self.shutdown.cancel();
        self.server.await??;
        let db_bytes = std::fs::metadata(&path).ok().map(|m| m.len());
        Ok(Run { load, rows, db_bytes })
    }

    /// Rows in the log.
    async fn rows(&self) -> anyhow::Result<u64> {
        let n: i64 =
            self.state.store.read(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).map_err(StoreError::from)).await?;
        Ok(n as u64)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the load

/// What one sender saw.
struct Sent {
    /// Operations that ended inside the measured window, and their events.
    ops: u64,
    events: u64,
    /// Failed operations inside the window.
    errors: u64,
    /// Events acknowledged at any time (warm-up and the window's last operations included).
    acked: u64,
    /// Failed operations at any time, and the first failure's message.
    failures: u64,
    first_failure: Option<String>,
    latency_us: Histogram<u64>,
}

/// A load's result.
struct Load {
    ops: u64,
    events: u64,
    errors: u64,
    acked: u64,
    failures: u64,
    first_failure: Option<String>,
    latency_us: Histogram<u64>,
    window: Duration,
    cpu: Option<Cpu>,
    inside: Scrape,
}

impl Load {
    fn eps(&self) -> f64 {
        self.events as f64 / self.window.as_secs_f64()
    }
    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }
    fn p(&self, q: f64) -> f64 {
        ms(&self.latency_us, q)
    }
    /// CPU seconds per 100,000 events measured, of `part`.
    fn cpu_per_100k(&self, part: impl Fn(&Cpu) -> Duration) -> Option<f64> {
        let c = self.cpu.as_ref()?;
        (self.events > 0).then(|| part(c).as_secs_f64() * 100_000.0 / self.events as f64)
    }
    fn cores(&self, part: impl Fn(&Cpu) -> Duration) -> Option<f64> {
        self.cpu.as_ref().map(|c| part(c).as_secs_f64() / self.window.as_secs_f64())
    }
    fn writer_busy(&self) -> f64 {
        self.inside.commit_s / self.window.as_secs_f64()
    }
    fn commits_per_s(&self) -> f64 {
        self.inside.commits / self.window.as_secs_f64()
    }
    fn writes_per_commit(&self) -> f64 {
        self.inside.writes / self.inside.commits
    }
    fn commit_ms(&self) -> f64 {
        1000.0 * self.inside.commit_s / self.inside.commits
    }
    fn server_request_ms(&self) -> Option<f64> {
        (self.inside.http > 0.0).then(|| 1000.0 * self.inside.http_s / self.inside.http)
    }
}

/// Runs `op` from `workers` senders on the load generator's runtime: warm-up, then the measured
/// window. An operation returns the events it got acknowledged; the window counts operations
/// that end inside it.
async fn drive<F, Fut>(client: &tokio::runtime::Handle, state: &XdrState, workers: usize, b: &IntakeBench, op: F) -> anyhow::Result<Load>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<usize, String>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let t0 = start + Duration::from_secs(b.warmup);
    let t1 = t0 + Duration::from_secs(b.seconds);
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(client.spawn(async move {
            let mut s = Sent { ops: 0, events: 0, errors: 0, acked: 0, failures: 0, first_failure: None, latency_us: histogram() };
            loop {
                let began = Instant::now();
                if began >= t1 {
                    break;
                }
                let r = op(next.fetch_add(1, Ordering::Relaxed)).await;
                let ended = Instant::now();
                let inside = ended >= t0 && ended < t1;
                match r {
                    Ok(n) => {
                        s.acked += n as u64;
                        if inside {
                            s.ops += 1;
                            s.events += n as u64;
                            let _ = s.latency_us.record(ended.saturating_duration_since(began).as_micros().max(1) as u64);
                        }
                    }
                    Err(e) => {
                        s.failures += 1;
                        if inside {
                            s.errors += 1;
                        }
                        s.first_failure.get_or_insert(e);
                        // No busy loop against a server that refuses at once.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            s
        }));
    }
    tokio::time::sleep_until(t0.into()).await;
    let (cpu0, scrape0, at0) = (Cpu::now(), Scrape::of(state), Instant::now());
    tokio::time::sleep_until(t1.into()).await;
    let (cpu1, scrape1, at1) = (Cpu::now(), Scrape::of(state), Instant::now());
    let mut load = Load {
        ops: 0,
        events: 0,
        errors: 0,
        acked: 0,
        failures: 0,
        first_failure: None,
        latency_us: histogram(),
        // The window as the senders count it; the snapshots are taken within a scheduling delay of it.
        window: t1 - t0,
        cpu: cpu0.zip(cpu1).map(|(a, z)| z.since(a)),
        inside: scrape1.since(&scrape0),
    };
    if at1.saturating_duration_since(at0) > load.window + Duration::from_millis(50) {
        tracing::warn!(late_ms = (at1 - at0).as_millis() as u64, "the measure's snapshots were late; CPU figures are approximate");
    }
    for t in tasks {
        let s = t.await?;
        load.ops += s.ops;
        load.events += s.events;
        load.errors += s.errors;
        load.acked += s.acked;
        load.failures += s.failures;
        if load.first_failure.is_none() {
            load.first_failure = s.first_failure;
        }
        load.latency_us.add(&s.latency_us)?;
    }
    Ok(load)
}

/// How many ids of this bench an answer holds.
fn ids_in(answer: &[u8]) -> usize {
    let p = ID_PREFIX.as_bytes();
    answer.windows(p.len()).filter(|w| *w == p).count()
}

/// One measurement: a phase through HTTP or into the store alone, on a fresh XDR.
struct Run {
    load: Load,
    /// Rows in `events` at the end, against `load.acked`.
    rows: u64,
    /// Size of the database file once closed (WAL checkpointed).
    db_bytes: Option<u64>,
}

impl Run {
    fn verified(&self) -> bool {
        self.rows == self.load.acked
    }
}

#[derive(Clone, Copy)]
struct Phase {
    name: &'static str,
    key: &'static str,
    workers: usize,
    per_op: usize,
    single: bool,
}

async fn http(b: &IntakeBench, phase: Phase, envelopes: &Arc<Envelopes>, client: &tokio::runtime::Handle) -> anyhow::Result<Run> {
    let x = Xdr::start(b).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(phase.workers).tcp_nodelay(true).build()?;
    let (url, auth, envelopes) = (Arc::new(x.url.clone()), Arc::new(x.auth.clone()), envelopes.clone());
    let load = drive(client, &x.state, phase.workers, b, move |op| {
        let (http, url, auth) = (http.clone(), url.clone(), auth.clone());
        let body = envelopes.body(op, phase.per_op, phase.single);
        async move {
            let resp = http
                .post(url.as_str())
                .header("authorization", auth.as_str())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = resp.status();
            let answer = resp.bytes().await.map_err(|e| format!("answer: {e}"))?;
            if !status.is_success() {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&answer[..answer.len().min(300)])));
            }
            let n = ids_in(&answer);
            if n != phase.per_op {
                return Err(format!("{n} ids acknowledged for {} events sent", phase.per_op));
            }
            Ok(n)
        }
    })
    .await?;
    x.finish(load).await
}

async fn store(b: &IntakeBench, phase: Phase, envelopes: &Envelopes, client: &tokio::runtime::Handle) -> anyhow::Result<Run> {
    let x = Xdr::start(b).await?;
    let prepared = Arc::new(PreparedTemplates::new(&x, envelopes)?);
    let (state, space_no) = (x.state.clone(), x.caller.space_no);
    let load = drive(client, &x.state, phase.workers, b, move |op| {
        let state = state.clone();
        let events = prepared.events(op, phase.per_op);
        async move {
            let received = vigie_core::clock::to_micros(state.clock.now());
            // The intake's own insert (`intake::store_groups` without a webhook-id).
            state
                .store
                .write(move |c| vigie_xdr::intake::insert_events(c, space_no, received, &events))
                .await
                .map_err(|e| format!("store: {e}"))
        }
    })
    .await?;
    x.finish(load).await
}

/// Single-thread CPU cost of the steps the baseline skips, per event: parsing a body of
/// `per_op` events and reading their log fields (`intake::prepare`).
struct Steps {
    parse_us: f64,
    prepare_us: f64,
    /// Mean bytes of an event's stored `body`.
    stored_bytes: f64,
}

async fn steps(b: &IntakeBench, phase: Phase, envelopes: &Envelopes) -> anyhow::Result<Steps> {
    let x = Xdr::start(b).await?;
    let bodies: Vec<Vec<u8>> = (0..64).map(|op| envelopes.body(op, phase.per_op, phase.single)).collect();
    let rounds = (20_000 / phase.per_op).max(1);
    let (mut parse, mut prep, mut events, mut stored) = (Duration::ZERO, Duration::ZERO, 0usize, 0usize);
    for i in 0..rounds {
        let t = Instant::now();
        let parsed = vigie_xdr::intake::parse_events(&bodies[i % bodies.len()]).map_err(|e| anyhow::anyhow!("parse: {}", e.message))?;
        parse += t.elapsed();
        events += parsed.len();
        let t = Instant::now();
        let out = vigie_xdr::intake::prepare(&x.state, &x.caller, parsed, x.state.clock.now())
            .map_err(|e| anyhow::anyhow!("prepare: {}", e.message))?;
        prep += t.elapsed();
        stored += out.iter().map(|p| p.body.len()).sum::<usize>();
        std::hint::black_box(out);
    }
    x.stop().await?;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
    Ok(Steps { parse_us: per(parse), prepare_us: per(prep), stored_bytes: stored as f64 / events as f64 })
}

// ---------------------------------------------------------------------------------------------
// Report

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("?".into(), |v| format!("{v:.digits$}"))
}

fn load_json(r: &Run) -> Value {
    let l = &r.load;
    json!({
        "events_per_s": l.eps(),
        "requests_per_s": l.ops_per_s(),
        "events": l.events,
        "requests": l.ops,
        "errors": l.errors,
        "latency_ms": {
            "p50": l.p(0.5), "p90": l.p(0.9), "p99": l.p(0.99), "p999": l.p(0.999), "max": l.p(1.0),
        },
        "cpu_s_per_100k_events": {
            "process": l.cpu_per_100k(|c| c.process),
            "server": l.cpu_per_100k(Cpu::server),
            "client": l.cpu_per_100k(|c| c.client),
            "sqlite_writer": l.cpu_per_100k(|c| c.writer),
        },
        "cores_busy": {
            "process": l.cores(|c| c.process),
            "server": l.cores(Cpu::server),
            "client": l.cores(|c| c.client),
            "other_processes": l.cores(Cpu::others),
        },
        "xdr": {
            "commits_per_s": l.commits_per_s(),
            "writes_per_commit": l.writes_per_commit(),
            "commit_mean_ms": l.commit_ms(),
            "commit_p50_bucket_ms": l.inside.commit_quantile_ms(0.5),
            "commit_p99_bucket_ms": l.inside.commit_quantile_ms(0.99),
            "writer_busy": l.writer_busy(),
            "server_request_mean_ms": l.server_request_ms(),
        },
        "database_bytes_per_event": r.db_bytes.filter(|_| r.rows > 0).map(|d| d as f64 / r.rows as f64),
        "verification": {
            "acknowledged": l.acked,
            "rows": r.rows,
            "failed_requests": l.failures,
            "first_failure": l.first_failure,
            "ok": r.verified(),
        },
    })
}

/// `vigie bench intake`.
pub async fn intake(b: IntakeBench) -> anyhow::Result<()> {
    durability(&b.durability)?;
    anyhow::ensure!(b.seconds > 0, "--seconds must be positive");
    anyhow::ensure!(b.senders > 0 && b.concurrency > 0, "--senders and --concurrency must be positive");
    anyhow::ensure!((1..=10_000).contains(&b.batch), "--batch: 1–10,000 events");
    let json_out = b.json;
    let say = |line: String| if json_out { eprintln!("{line}") } else { println!("{line}") };

    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let client_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(cpus).thread_name("vigie-bench-client").enable_all().build()?;
    let client = client_rt.handle().clone();
    let result = run(&b, &client, &say).await;
    client_rt.shutdown_background();
    let doc = result?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

async fn run(b: &IntakeBench, client: &tokio::runtime::Handle, say: &dyn Fn(String)) -> anyhow::Result<Value> {
    let envelopes = Arc::new(Envelopes::from_firewall().await?);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    say(format!(
        "XDR intake — durability {}{}, in-process XDR; the load generator runs in this process on its own {cpus} threads; \
         {} s measured after {} s of warm-up per row; {} distinct interaction.high_risk envelopes from the firewall, \
         {} bytes per event on average; a fresh data directory per row",
        b.durability,
        if b.background_checkpoints { ", background WAL checkpoints" } else { "" },
        b.seconds,
        b.warmup,
        envelopes.templates.len(),
        envelopes.mean_bytes
    ));
    say("The per-key request rate is raised to 1e9/s for the bench (the default, 20,000/s, would cap the single phase).".into());
    say(String::new());

    let phases = [
        Phase { name: "batched", key: "batched", workers: b.senders, per_op: b.batch, single: b.batch == 1 },
        Phase { name: "single", key: "single", workers: b.concurrency, per_op: 1, single: true },
    ];
    let mut results = Vec::new();
    for phase in phases {
        let h = http(b, phase, &envelopes, client).await?;
        let s = store(b, phase, &envelopes, client).await?;
        let st = steps(b, phase, &envelopes).await?;
        results.push((phase, h, s, st));
    }

    say("| phase | path | events/s | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | CPU s / 100k events: process | server | client \
         | SQLite writer | cores busy: server + client (other processes) | errors |"
        .into());
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    for (phase, h, s, _) in &results {
        let label = format!("{} ({} × {})", phase.name, phase.workers, phase.per_op);
        for (path, r) in [("HTTP POST /api/v1/events", h), ("baseline: the store alone", s)] {
            let l = &r.load;
            say(format!(
                "| {label} | {path} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} + {} ({}) | {} |",
                l.eps(),
                l.ops_per_s(),
                l.p(0.5),
                l.p(0.99),
                l.p(0.999),
                l.p(1.0),
                opt(l.cpu_per_100k(|c| c.process), 2),
                opt(l.cpu_per_100k(Cpu::server), 2),
                opt(l.cpu_per_100k(|c| c.client), 2),
                opt(l.cpu_per_100k(|c| c.writer), 2),
                opt(l.cores(Cpu::server), 2),
                opt(l.cores(|c| c.client), 2),
                opt(l.cores(Cpu::others), 2),
                l.errors,
            ));
        }
        say(format!(
            "| {label} | HTTP / baseline | {:.2}× | | {:.1}× | {:.1}× | | | {} | {} | | | | |",
            h.load.eps() / s.load.eps(),
            h.load.p(0.5) / s.load.p(0.5),
            h.load.p(0.99) / s.load.p(0.99),
            match (h.load.cpu_per_100k(|c| c.process), s.load.cpu_per_100k(|c| c.process)) {
                (Some(a), Some(z)) => format!("{:.1}×", a / z),
                _ => "?".into(),
            },
            match (h.load.cpu_per_100k(Cpu::server), s.load.cpu_per_100k(Cpu::server)) {
                (Some(a), Some(z)) => format!("{:.1}×", a / z),
                _ => "?".into(),
            },
        ));
    }
    say("(server = process − client threads: the XDR's runtime, its SQLite writer, blocking threads; \
         cores busy = CPU time / wall time; other processes = the machine's busy time less this process's)"
        .into());

    say(String::new());
    say("Where the time goes (the XDR's own metrics over the window; steps timed on one thread):".into());
    say("| phase | path | commits/s | writes per commit | events per commit | commit mean ms | commit p50 / p99 ≤ ms | writer busy \
         | server request mean ms | parse µs/event | prepare µs/event | database bytes/event |"
        .into());
    say("|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    for (phase, h, s, st) in &results {
        for (path, r, http_path) in [("HTTP", h, true), ("baseline", s, false)] {
            let l = &r.load;
            say(format!(
                "| {} | {path} | {:.0} | {:.1} | {:.0} | {:.3} | {} / {} | {:.0} % | {} | {} | {} | {} |",
                phase.name,
                l.commits_per_s(),
                l.writes_per_commit(),
                l.eps() / l.commits_per_s(),
                l.commit_ms(),
                opt(l.inside.commit_quantile_ms(0.5), 1),
                opt(l.inside.commit_quantile_ms(0.99), 1),
                100.0 * l.writer_busy(),
                opt(l.server_request_ms(), 2),
                if http_path { format!("{:.2}", st.parse_us) } else { "—".into() },
                if http_path { format!("{:.2}", st.prepare_us) } else { "—".into() },
                opt(r.db_bytes.filter(|_| r.rows > 0).map(|d| d as f64 / r.rows as f64), 0),
            ));
        }
    }
    if let Some((_, _, _, st)) = results.first() {
        say(format!(
            "(an event is {} bytes as sent and {:.0} bytes as stored: the stored body is the event as sent, its flat fields derived when read; \
             database bytes/event = the closed database file over its rows, indexes included)",
            envelopes.mean_bytes, st.stored_bytes
        ));
    }

    say("(commit p50 / p99: upper bounds of the buckets of vigie_xdr_db_commit_duration_seconds, 50 µs × 2ⁿ)".into());
    say(String::new());
    say("Verification (rows in `events` at the end = events acknowledged, warm-up included):".into());
    let mut all_ok = true;
    for (phase, h, s, _) in &results {
        for (path, r) in [("HTTP", h), ("baseline", s)] {
            all_ok &= r.verified();
            say(format!(
                "  {} {path}: {} acknowledged, {} rows — {}{}",
                phase.name,
                r.load.acked,
                r.rows,
                if r.verified() { "OK" } else { "MISMATCH" },
                match (&r.load.first_failure, r.load.failures) {
                    (Some(e), n) => format!(" ({n} failed requests; first: {e})"),
                    (None, _) => String::new(),
                }
            ));
        }
    }

    let batched = &results[0].1.load;
    let single = &results[1].1.load;
    let standard_batch = b.batch == 100;
    let standard_conc = b.concurrency == 32;
    let batched_ok = batched.errors == 0 && batched.eps() >= TARGET_BATCHED_EPS;
    let single_ok = single.errors == 0 && single.ops_per_s() >= TARGET_SINGLE_RPS;
    let single_p99_ok = single.errors == 0 && single.p(0.99) <= TARGET_SINGLE_P99_MS;
    say(String::new());
    say("Targets (issue 5):".into());
    say(format!(
        "  ≥ {TARGET_BATCHED_EPS:.0} events/s batched: {:.0} — {}{}",
        batched.eps(),
        pass(batched_ok),
        if standard_batch { String::new() } else { format!(" (measured with batches of {}, not 100)", b.batch) }
    ));
    say(format!(
        "  ≥ {TARGET_SINGLE_RPS:.0} single-event POSTs/s: {:.0} — {}{}",
        single.ops_per_s(),
        pass(single_ok),
        if standard_conc { String::new() } else { format!(" (measured at concurrency {}, not 32)", b.concurrency) }
    ));
    say(format!("  single-event p99 ≤ {TARGET_SINGLE_P99_MS:.0} ms: {:.2} ms — {}", single.p(0.99), pass(single_p99_ok)));
    say(format!("  no loss, no duplicates: {}", pass(all_ok)));

    Ok(json!({
        "bench": "intake",
        "durability": b.durability,
        "background_checkpoints": b.background_checkpoints,
        "seconds": b.seconds,
        "warmup": b.warmup,
        "event_bytes_mean": envelopes.mean_bytes,
        "templates": envelopes.templates.len(),
        "client_threads": cpus,
        "key_rate_per_s": 1e9,
        "phases": results.iter().map(|(phase, h, s, st)| json!({
            "phase": phase.key,
            "senders": phase.workers,
            "events_per_request": phase.per_op,
            "http": load_json(h),
            "baseline_store": load_json(s),
            "ratio_events_per_s": h.load.eps() / s.load.eps(),
            "steps_us_per_event": {"parse": st.parse_us, "prepare": st.prepare_us},
            "stored_body_bytes_mean": st.stored_bytes,
        })).collect::<Vec<_>>(),
        "targets": {
            "batched_events_per_s": {"target": TARGET_BATCHED_EPS, "batch": b.batch, "measured": batched.eps(), "pass": batched_ok && standard_batch},
            "single_requests_per_s": {"target": TARGET_SINGLE_RPS, "concurrency": b.concurrency, "measured": single.ops_per_s(), "pass": single_ok && standard_conc},
            "single_p99_ms": {"target": TARGET_SINGLE_P99_MS, "measured": single.p(0.99), "pass": single_p99_ok && standard_conc},
            "no_loss_no_duplicates": all_ok,
        },
    }))
}
