//! `vigie bench dashboard`: the dashboard's figures (issue 9), each beside a baseline measured in
//! the same run.
//!
//! - **Server render**: the default dashboard "AI usage" (four widgets) over `--events` stored
//!   firewall events spread over 30 days (a fresh XDR data directory, facts built, the events
//!   loaded as `vigie bench query` loads them), rendered as its page handler does — every widget
//!   evaluated (`dashboards::evaluate`), drawn and put in the page's template — for 24 h, 7 d and
//!   30 d; median of `--rounds` after a first (cold) render. Beside it, the evaluation alone and,
//!   as the baseline, the widgets' queries run one after another through `search::search` (the
//!   plain search of `GET /api/v1/events/search`). Each round checks that the dashboard's rows
//!   equal the plain search's.
//! - **Bytes per page load without a cache**: the page's HTML plus the two assets it loads (the
//!   stylesheet and the script; the favicon is a `data:` URL), uncompressed as served.
use clap::Args;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_core::db::{Durability, StoreOptions};
use vigie_xdr::dashboards::{self, Range};

/// Flags of `vigie bench dashboard`.
#[derive(Args, Debug, Clone)]
pub struct DashboardBench {
    /// Events stored (spread over 30 days).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Timed renders per range (after one cold render).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Where to build the database (default: a temporary directory); it holds about 1.5 KB per event.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// `vigie bench dashboard`.
pub async fn dashboard(b: DashboardBench) -> anyhow::Result<()> {
    anyhow::ensure!(b.events > 0 && b.rounds > 0, "--events and --rounds must be positive");
    println!("Dashboard — {} stored events over 30 days, {} rounds per range", b.events, b.rounds);
    let dir = match &b.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let opts = vigie_xdr::XdrOptions {
        data_dir: dir.path().to_path_buf(),
        store: StoreOptions { durability: Durability::Normal, ..StoreOptions::default() },
        secret_key: None,
        key_rate: Default::default(),
        retention_every: Duration::from_secs(86_400),
        search: vigie_xdr::search::SearchLimits { timeout: Duration::from_secs(600), max_rows: 10_000 },
        build_facts: false,
        default_rules_enabled: false,
        allow_private_destinations: false,
        notify: Default::default(),
    };
    let state = vigie_xdr::open(opts, Arc::new(vigie_core::SystemClock))?;
    let payloads = crate::bench_intake::firewall_envelopes(None, 4000).await?;
    anyhow::ensure!(!payloads.is_empty(), "the firewall produced no event");
    let space = state.keys.ensure_space("bench").await?;
    let caller = crate::bench_query::bench_caller(&state, &space).await?;
    let now = vigie_core::clock::to_micros(state.clock.now());
    let span: i64 = 30 * 86_400_000_000;
    println!("Loading {} events over 30 days…", b.events);
    let (load, build, built) = crate::bench_query::load_events(&state, &caller, &payloads, b.events, now - span, span).await?;
    println!("Loaded in {:.1} s; facts of {built} events built in {:.1} s", load.as_secs_f64(), build.as_secs_f64());

    let d = dashboards::home(&state, &caller).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let d = d.ok_or_else(|| anyhow::anyhow!("the space has no default dashboard"))?;
    let console = vigie_xdr::console::Console {
        caller: caller.clone(),
        csrf: "bench".into(),
        key_name: "bench".into(),
        space_name: "bench".into(),
        mailbox: false,
    };
    let assets = vigie_web::assets::CSS.len() + vigie_web::assets::JS.len();
    println!(
        "\n| range | page render (evaluation + template), median ms | cold ms | evaluation alone ms | baseline: the {} queries one after another through search::search, ms | ratio | page HTML bytes | bytes per page load (HTML + CSS + JS) |",
        d.widgets.len()
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut worst = 0.0f64;
    let mut worst_bytes = 0usize;
    for range in Range::ALL {
        let t = Instant::now();
        let html = vigie_xdr::console::dashboard::render(&state, &console, d.clone(), range).await.map_err(page_error)?;
        let cold = ms(t);
        let (mut page, mut eval, mut base) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..b.rounds {
            let t = Instant::now();
            std::hint::black_box(vigie_xdr::console::dashboard::render(&state, &console, d.clone(), range).await.map_err(page_error)?);
            page.push(ms(t));
            let to = state.clock.now();
            let t = Instant::now();
            let data = dashboards::evaluate_at(&state, &caller, &d, range, to).await;
            eval.push(ms(t));
            // The baseline: the same queries, one after another, through the plain search.
            let t = Instant::now();
            let mut plain = Vec::new();
            for (w, r) in d.widgets.iter().zip(&data.widgets) {
                let p = dashboards::eval::search_params(w, r.query.clone(), data.from, data.to);
                plain.push(vigie_xdr::search::search(&state, &caller, p).await.map_err(|e| anyhow::anyhow!("{}", e.message))?);
            }
            base.push(ms(t));
            for ((r, a), w) in data.widgets.iter().zip(&plain).zip(&d.widgets) {
                anyhow::ensure!(r.error.is_none(), "widget {:?} failed: {:?}", w.title, r.error);
                anyhow::ensure!(!r.partial && !a.partial, "widget {:?} ran out of budget", w.title);
                anyhow::ensure!(r.rows == a.items, "widget {:?}: the dashboard and the plain search disagree", w.title);
            }
        }
        let (p, e, bl) = (median(page), median(eval), median(base));
        worst = worst.max(p);
        worst_bytes = worst_bytes.max(html.len() + assets);
        println!(
            "| {} | **{p:.0}** | {cold:.0} | {e:.0} | {bl:.0} | {:.2}× | {} | {} |",
            range.label(),
            p / bl,
            html.len(),
            html.len() + assets
        );
    }
    println!(
        "Assets: vigie.css {} bytes, vigie.js {} bytes (cached a year after the first load; counted here as without a cache).",
        vigie_web::assets::CSS.len(),
        vigie_web::assets::JS.len()
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    if b.events >= 1_000_000 {
        println!(
            "Target (issue 9): dashboard rendered server-side over 1 M events ≤ 300 ms — worst range {worst:.0} ms: {}",
            verdict(worst <= 300.0)
        );
    } else {
        println!("Target (issue 9): ≤ 300 ms over 1 M events — not measured (fewer events); worst range {worst:.0} ms");
    }
    println!("Target (issue 9): ≤ 200 KB per page load without a cache — {worst_bytes} bytes: {}", verdict(worst_bytes <= 200 * 1024));
    state.store.close().await;
    Ok(())
}

fn page_error(e: vigie_xdr::console::PageError) -> anyhow::Error {
    let vigie_xdr::console::PageError::Api(e) = e;
    anyhow::anyhow!("the page failed: {}", e.message)
}
