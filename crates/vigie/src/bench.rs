//! `vigie bench`: load generators for the figures in BENCHMARKS.md. Each run measures the
//! configuration under test and its baseline in the same process, on the same machine state.
use crate::traffic;
use clap::Args;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_core::auth::Role;
use vigie_core::db::{Durability, StoreOptions};
use vigie_firewall::FirewallOptions;

/// Flags of `vigie bench interactions`.
#[derive(Args, Debug, Clone)]
pub struct InteractionsBench {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds measured per configuration (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Enabled policies in the tenant.
    #[arg(long, default_value_t = 20)]
    pub policies: usize,
    /// Rounds of (group commit, baseline); figures are given per round and as medians.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Measure the default configuration only (skip the alternative and the baseline).
    #[arg(long)]
    pub no_baseline: bool,
    /// Commit durability: full or normal.
    #[arg(long, default_value = "full")]
    pub durability: String,
    /// Send a text of this many bytes for the server to scan (from the ~1 % PII corpus),
    /// instead of a hash and classifications; measured beside the hash-only default.
    #[arg(long, default_value_t = 0)]
    pub text: usize,
}

struct Outcome {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// One configuration under test.
struct Mode {
    name: &'static str,
    max_batch: usize,
    background_checkpoints: bool,
    /// Requests carry a text to scan (of `--text` bytes).
    text: bool,
}

const MODES: &[Mode] = &[
    Mode { name: "default: group commit (≤ 512 per transaction)", max_batch: 512, background_checkpoints: false, text: false },
    Mode { name: "alternative: group commit, background checkpoints", max_batch: 512, background_checkpoints: true, text: false },
    Mode { name: "baseline: one transaction per request", max_batch: 1, background_checkpoints: false, text: false },
];

/// With `--text`: the hash-only default against the same with a text scanned per request.
const TEXT_MODES: &[Mode] = &[
    Mode { name: "default: hash and classifications sent", max_batch: 512, background_checkpoints: false, text: false },
    Mode { name: "default: text sent, scanned by the server", max_batch: 512, background_checkpoints: false, text: true },
];

/// Request bodies carrying texts of `size` bytes cut from the ~1 % PII corpus.
fn text_bodies(rng: &mut impl rand::Rng, size: usize, count: usize) -> Vec<String> {
    let corpus = vigie_pii::corpus::prose_with_pii(31, size * count + size);
    let mut at = 0;
    (0..count)
        .map(|_| {
            let mut end = (at + size).min(corpus.len());
            while !corpus.is_char_boundary(end) {
                end -= 1;
            }
            let text = &corpus[at..end];
            at = end;
            traffic::interaction_with_text(rng, 40, text).to_string()
        })
        .collect()
}

/// Starts a firewall on a fresh data dir configured as `mode` and drives it.
async fn one(b: &InteractionsBench, mode: &Mode) -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let durability = if b.durability == "normal" { Durability::Normal } else { Durability::Full };
    let opts = FirewallOptions {
        data_dir: dir.path().to_path_buf(),
        store: StoreOptions {
            durability,
            max_batch: mode.max_batch,
            background_checkpoints: mode.background_checkpoints,
            ..StoreOptions::default()
        },
        event_source: "noxys".into(),
        secret_key: None,
        auth: Default::default(),
        max_text_bytes: vigie_core::config::DEFAULT_MAX_TEXT_BYTES,
        webhooks: Default::default(),
    };
    let state = vigie_firewall::open(opts, Arc::new(SystemClock))?;
    let boot = state.auth.bootstrap("bench", "bench@vigie.local", Some("bench-password-123")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = boot.map(|b| b.tenant.id).ok_or_else(|| anyhow::anyhow!("fresh data dir expected"))?;
    let admin = traffic::system(tenant, "bench");
    traffic::seed(&state, &admin, traffic::bench_policies(b.policies)).await?;
    let (_, token) = state.auth.create_token(&admin, "bench", Role::Ingest, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(vigie_firewall::serve(listener, state, shutdown.clone()));

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let bodies: Arc<Vec<String>> = Arc::new(if mode.text {
        text_bodies(&mut rng, b.text, 2000)
    } else {
        (0..2000).map(|_| traffic::interaction(&mut rng, 40, None).to_string()).collect()
    });
    let client = reqwest::Client::builder().pool_max_idle_per_host(b.concurrency).build()?;
    let url = format!("http://{addr}/api/v1/interactions");
    let auth = format!("Bearer {token}");

    let run = |seconds: u64, measure: bool| {
        let mut tasks = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        for w in 0..b.concurrency {
            let (client, url, auth, bodies) = (client.clone(), url.clone(), auth.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
                let (mut ok, mut errors, mut i) = (0u64, 0u64, w * 97);
                while Instant::now() < deadline {
                    let body = bodies[i % bodies.len()].clone();
                    i += 1;
                    let t = Instant::now();
                    let r =
                        client.post(&url).header("authorization", &auth).header("content-type", "application/json").body(body).send().await;
                    let good = match r {
                        Ok(resp) => resp.status().as_u16() == 201 && resp.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if measure {
                        let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    if good { ok += 1 } else { errors += 1 }
                }
                (ok, errors, h)
            }));
        }
        async move {
            let started = Instant::now();
            let mut total = Outcome {
                ok: 0,
                errors: 0,
                elapsed: Duration::ZERO,
                latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            };
            for t in tasks {
                let (ok, errors, h) = t.await?;
                total.ok += ok;
                total.errors += errors;
                total.latency_us.add(h)?;
            }
            total.elapsed = started.elapsed();
            anyhow::Ok(total)
        }
    };
    run(b.warmup, false).await?;
    let outcome = run(b.seconds, true).await?;
    shutdown.cancel();
    server.await??;
    Ok(outcome)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `vigie bench interactions`.
pub async fn interactions(b: InteractionsBench) -> anyhow::Result<()> {
    println!(
        "POST /api/v1/interactions — concurrency {}, {} enabled policies, durability {}, {} s per run, {} rounds",
        b.concurrency, b.policies, b.durability, b.seconds, b.rounds
    );
    println!("| round | mode | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    let modes: &[Mode] = if b.text > 0 {
        TEXT_MODES
    } else if b.no_baseline {
        &MODES[..1]
    } else {
        MODES
    };
    let mut results: Vec<Vec<Outcome>> = modes.iter().map(|_| Vec::new()).collect();
    for round in 1..=b.rounds {
        for (m, mode) in modes.iter().enumerate() {
            let o = one(&b, mode).await?;
            println!(
                "| {round} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                mode.name,
                o.rps(),
                o.ms(0.5),
                o.ms(0.99),
                o.ms(0.999),
                o.ms(1.0),
                o.errors
            );
            results[m].push(o);
        }
    }
    println!();
    println!("Medians over {} rounds:", b.rounds);
    let med: Vec<(f64, f64, f64)> = results
        .iter()
        .map(|r| {
            (
                median(r.iter().map(Outcome::rps).collect()),
                median(r.iter().map(|o| o.ms(0.5)).collect()),
                median(r.iter().map(|o| o.ms(0.99)).collect()),
            )
        })
        .collect();
    for (mode, (rps, p50, p99)) in modes.iter().zip(&med) {
        println!(
            "  {}: {rps:.0} requests/s, p50 {p50:.2} ms, p99 {p99:.2} ms (the first mode does {:.2}x this)",
            mode.name,
            med[0].0 / rps
        );
    }
    Ok(())
}
