//! `vigie bench detect`: the figures of issue 7.
//!
//! - Throughput: the four default rules plus 100 Sigma rules over real firewall events, as the
//!   detection consumer reads them (`detect::View`: parsed once, fields derived on demand),
//!   beside the baseline of building the shown event (`log::shown`) for each; then the whole
//!   consumer (read from the log, evaluate, commit with the checkpoint) over stored events.
//! - Memory: one million distinct group keys in default rule 2's window (resident memory before
//!   and after, beside a run whose events do not match).
//! - Latency: intake acknowledgement → the alert visible through the API, at a steady
//!   1,000 events/s.
use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::SystemClock;
use vigie_core::db::StoreOptions;
use vigie_detect::engine::RuleEntry;
use vigie_detect::{Engine, Kind, MapEvent};
use vigie_xdr::detect::View;
use vigie_xdr::log::Stored;

/// Flags of `vigie bench detect`.
#[derive(Args, Debug, Clone)]
pub struct DetectBench {
    /// Events per throughput round.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Throughput rounds (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Sigma rules beside the four default rules.
    #[arg(long, default_value_t = 100)]
    pub sigma: usize,
    /// Distinct group keys for the memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub groups: usize,
    /// Events per second of the latency run.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Only these parts (throughput, consumer, memory, latency), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The default rules' sources (content/rules.json).
fn default_rules() -> anyhow::Result<Vec<(Kind, String)>> {
    let defaults: Vec<Value> = serde_json::from_str(include_str!("../../../content/rules.json"))?;
    defaults
        .iter()
        .map(|r| {
            let kind = r["kind"].as_str().and_then(Kind::parse).context("a default rule without a kind")?;
            Ok((kind, r["source"].as_str().context("a default rule without a source")?.to_owned()))
        })
        .collect()
}

/// `n` Sigma rules of the kinds a SOC writes over the firewall's fields: selections on the
/// platform, the classification types, the risk, the person's e-mail domain, the policy; one in
/// ten an event_count correlation per person. Each watches one person of the 500 the samples
/// have (as rules for a watch list do), so together they match a few percent of events, not
/// every one: what detection costs is evaluating them, and what is written is alerts.
pub fn sigma_rules(n: usize) -> Vec<String> {
    let platforms = ["deepseek", "mistral", "perplexity", "copilot", "poe", "character-ai", "you", "huggingchat"];
    let types = ["CREDIT_CARD", "IBAN", "EMAIL_ADDRESS", "PHONE_NUMBER", "API_KEY", "FR_NIR", "PASSWORD", "US_SSN"];
    (0..n)
        .map(|i| {
            let p = platforms[i % platforms.len()];
            let who = format!("{:012x}", (i * 37) % 500);
            let t = types[(i / platforms.len()) % types.len()];
            let detection = match i % 5 {
                0 => format!(
                    "  sel:\n    event_type: interaction.policy_violated\n    classification_type: {t}\n    user_id|endswith: '{who}'\n  condition: sel"
                ),
                1 => format!(
                    "  sel:\n    event_type: interaction.high_risk\n    risk_score|gt: 0.{}\n    user_id|endswith: '{who}'\n  condition: sel",
                    80 + i % 19
                ),
                2 => format!("  sel:\n    platform_id: {p}\n    user_email|endswith: '@contractor-{i}.example'\n  condition: sel"),
                3 => format!(
                    "  sel:\n    policy_name|contains: 'Block {p}'\n    user_id|endswith: '{who}'\n  filter:\n    policy_action: log\n  condition: sel and not filter"
                ),
                _ => format!("  sel:\n    event_type|startswith: 'alert.'\n    platform_id: {p}\n    user_id|endswith: '{who}'\n  condition: sel"),
            };
            let mut y = format!("title: Bench rule {i}\nname: bench_{i}\nlogsource:\n  product: vigie\ndetection:\n{detection}\nlevel: high\n");
            if i % 10 == 9 {
                y.push_str(&format!(
                    "---\ntitle: Bench correlation {i}\ncorrelation:\n  type: event_count\n  rules: [bench_{i}]\n  group-by: [user_id]\n  timespan: 1h\n  condition: {{gte: 3}}\n"
                ));
            }
            y
        })
        .collect()
}

fn engine(sigma: usize) -> anyhow::Result<Engine> {
    let mut entries = Vec::new();
    for (i, (kind, source)) in default_rules()?.into_iter().enumerate() {
        entries.push(RuleEntry { id: format!("default-{}", i + 1), program: vigie_detect::compile(kind, &source)? });
    }
    for (i, y) in sigma_rules(sigma).into_iter().enumerate() {
        entries.push(RuleEntry {
            id: format!("sigma-{i}"),
            program: vigie_detect::compile(Kind::Sigma, &y).map_err(|e| anyhow::anyhow!("{e}\n{y}"))?,
        });
    }
    Ok(Engine::new(entries)?)
}

/// Real firewall events as the log stores them, with times one second apart.
async fn stored_events(n: usize) -> anyhow::Result<Vec<Stored>> {
    let samples = crate::bench_intake::firewall_envelopes(None, 4000).await?;
    anyhow::ensure!(!samples.is_empty(), "the firewall produced no events");
    let base = vigie_core::clock::to_micros(chrono::Utc::now()) - n as i64 * 1_000_000;
    (0..n)
        .map(|i| {
            let body = &samples[i % samples.len()];
            let f = vigie_xdr::intake::log_fields(body)?;
            Ok(Stored {
                id: format!("bench-{i}"),
                received_at: base + i as i64 * 1_000_000,
                timestamp: base + i as i64 * 1_000_000,
                event_type: f.event_type,
                source: f.source.unwrap_or_else(|| "noxys".into()),
                body: body.clone(),
            })
        })
        .collect()
}

/// `vigie bench detect`.
pub async fn detect(b: DetectBench) -> anyhow::Result<()> {
    let want = |part: &str| b.only.is_empty() || b.only.iter().any(|o| o == part);
    println!("Detection — 4 default rules + {} Sigma rules; {} events × {} rounds", b.sigma, b.events, b.rounds);
    if want("throughput") {
        throughput(&b).await?;
    }
    if want("consumer") {
        consumer(&b).await?;
    }
    if want("memory") {
        memory(&b)?;
    }
    if want("latency") {
        latency(&b).await?;
    }
    Ok(())
}

async fn throughput(b: &DetectBench) -> anyhow::Result<()> {
    let events = stored_events(b.events).await?;
    let e = engine(b.sigma)?;
    let (mut views_rate, mut shown_rate, mut match_rate) = (Vec::new(), Vec::new(), Vec::new());
    let mut hits_total = 0usize;
    for _ in 0..b.rounds {
        // As the consumer reads: a view per stored event, then every rule.
        let owned: Vec<Stored> = events.clone();
        let mut states = e.states();
        let mut hits = Vec::new();
        let started = Instant::now();
        for (i, s) in owned.into_iter().enumerate() {
            let t = s.timestamp;
            let v = View::new(s, "space".into());
            e.evaluate(&mut states, &v, i as i64, t, &mut hits);
        }
        views_rate.push(b.events as f64 / started.elapsed().as_secs_f64());
        hits_total = hits.len();
        // Baseline: the shown event (parsed, normalised, flattened) for each.
        let mut states = e.states();
        let mut hits2 = Vec::new();
        let started = Instant::now();
        for (i, s) in events.iter().enumerate() {
            let Value::Object(m) = vigie_xdr::log::shown(s, "space") else { continue };
            e.evaluate(&mut states, &MapEvent(&m), i as i64, s.timestamp, &mut hits2);
        }
        shown_rate.push(b.events as f64 / started.elapsed().as_secs_f64());
        anyhow::ensure!(hits.len() == hits2.len(), "the view and the shown event disagree: {} vs {} hits", hits.len(), hits2.len());
        // The rules alone, over views built beforehand.
        let views: Vec<View> = events.iter().cloned().map(|s| View::new(s, "space".into())).collect();
        let mut states = e.states();
        let mut hits3 = Vec::new();
        let started = Instant::now();
        for (i, v) in views.iter().enumerate() {
            e.evaluate(&mut states, v, i as i64, v.stored().timestamp, &mut hits3);
        }
        match_rate.push(b.events as f64 / started.elapsed().as_secs_f64());
    }
    let (v, s, m) = (median(views_rate), median(shown_rate), median(match_rate));
    println!(
        "  throughput (one core): views + rules {v:.0} events/s; baseline shown + rules {s:.0} ({:.1}×); rules alone {m:.0} — \
         {hits_total} hits per round",
        v / s
    );
    Ok(())
}

async fn consumer(b: &DetectBench) -> anyhow::Result<()> {
    let events = stored_events(b.events).await?;
    let dir = tempfile::tempdir()?;
    let opts = vigie_xdr::XdrOptions {
        data_dir: dir.path().to_path_buf(),
        store: StoreOptions::default(),
        secret_key: None,
        key_rate: Default::default(),
        retention_every: Duration::from_secs(3600),
        search: Default::default(),
        build_facts: false,
        default_rules_enabled: true,
        allow_private_destinations: false,
        notify: Default::default(),
    };
    let state = vigie_xdr::open(opts, Arc::new(SystemClock))?;
    let space = state.keys.ensure_space("bench").await?;
    let space_no: i64 = state
        .store
        .read(move |c| c.query_row("SELECT no FROM spaces WHERE id = ?1", [space.id.to_string()], |r| r.get(0)).map_err(StoreError::from))
        .await?;
    let sigma = sigma_rules(b.sigma);
    let now = vigie_core::clock::to_micros(chrono::Utc::now());
    let ids = state.ids.clone();
    state
        .store
        .write(move |c| {
            for (i, y) in sigma.iter().enumerate() {
                c.execute(
                    "INSERT INTO rules (id, space_no, name, severity, kind, source, enabled, created_at, updated_at) VALUES (?1, ?2, ?3, 70, 'sigma', ?4, 1, ?5, ?5)",
                    rusqlite::params![ids.at(chrono::Utc::now()).to_string(), space_no, format!("Bench rule {i}"), y, now],
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .await?;
    let prepared: Vec<vigie_xdr::intake::Prepared> = events
        .iter()
        .map(|s| vigie_xdr::intake::Prepared {
            id: s.id.clone(),
            timestamp: s.timestamp,
            event_type: s.event_type.clone(),
            source: s.source.clone(),
            body: s.body.clone(),
        })
        .collect();
    for chunk in prepared.chunks(5_000) {
        let chunk = chunk.to_vec();
        state.store.write(move |c| vigie_xdr::intake::insert_events(c, space_no, now, &chunk)).await?;
    }
    let mut d = vigie_xdr::detect::Detector::default();
    let started = Instant::now();
    let mut read = 0;
    let mut took = [Duration::ZERO; 3];
    loop {
        let r = vigie_xdr::detect::detect_once(&state, &mut d).await?;
        if r.events == 0 {
            break;
        }
        read += r.events;
        for (t, r) in took.iter_mut().zip(r.took) {
            *t += r;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let alerts: i64 = state.store.read(|c| c.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0)).map_err(StoreError::from)).await?;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / read.max(1) as f64;
    println!(
        "  consumer (log → rules → alerts + checkpoint, one transaction per {} events): {:.0} events/s over {read} events, {alerts} alerts; \
         µs per event: read {:.2}, evaluate {:.2}, commit {:.2}",
        vigie_xdr::detect::BATCH,
        read as f64 / secs,
        per(took[0]),
        per(took[1]),
        per(took[2])
    );
    state.store.close().await;
    Ok(())
}

/// Resident memory of this process, bytes.
fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

fn memory(b: &DetectBench) -> anyhow::Result<()> {
    let rule = vigie_query::window::WindowRule::compile(&vigie_query::parse(
        "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour",
    )?)
    .map_err(anyhow::Error::msg)?
    .context("rule 2 is a window")?;
    let t0 = vigie_core::clock::to_micros(chrono::Utc::now());
    let mut event = serde_json::Map::new();
    event.insert("event_type".into(), json!("interaction.high_risk"));
    // Baseline: the same events of another type (nothing kept).
    let before = resident().context("no /proc/self/statm")?;
    let mut none = vigie_query::window::WindowState::default();
    let mut other = event.clone();
    other.insert("event_type".into(), json!("interaction.created"));
    for i in 0..b.groups {
        other.insert("user_id".into(), Value::String(format!("user-{i:08}@corp.example")));
        rule.observe(&mut none, &other, i as i64, t0 + i as i64);
    }
    let baseline = resident().unwrap_or(before).saturating_sub(before);
    let before = resident().unwrap_or(0);
    let mut state = vigie_query::window::WindowState::default();
    let started = Instant::now();
    for i in 0..b.groups {
        event.insert("user_id".into(), Value::String(format!("user-{i:08}@corp.example")));
        rule.observe(&mut state, &event, i as i64, t0 + i as i64);
    }
    let took = started.elapsed();
    let after = resident().unwrap_or(0);
    let bytes = after.saturating_sub(before);
    println!(
        "  memory: {} groups held, resident +{:.1} MB ({:.0} bytes per group; baseline without matches +{:.1} MB); {:.0} events/s into the window",
        state.groups(),
        bytes as f64 / 1e6,
        bytes as f64 / state.groups().max(1) as f64,
        baseline as f64 / 1e6,
        b.groups as f64 / took.as_secs_f64()
    );
    // Saving what changed (what the consumer writes after a batch) for all of them at once.
    let started = Instant::now();
    let changes = state.take_changes();
    println!("  memory: {} changed groups serialised for saving in {:.0} ms", changes.len(), started.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

async fn latency(b: &DetectBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let opts = vigie_xdr::XdrOptions {
        data_dir: dir.path().to_path_buf(),
        store: StoreOptions::default(),
        secret_key: None,
        key_rate: vigie_xdr::keys::KeyRate { per_second: 1e9, burst: 1e9 },
        retention_every: Duration::from_secs(3600),
        search: Default::default(),
        build_facts: true,
        default_rules_enabled: true,
        allow_private_destinations: false,
        notify: Default::default(),
    };
    let state = vigie_xdr::open(opts, Arc::new(SystemClock))?;
    let space = state.keys.ensure_space("bench").await?;
    let new =
        vigie_xdr::keys::NewKey { name: "bench".into(), scopes: vec!["events_write".into(), "alerts_read".into()], ..Default::default() };
    let key = state.keys.create(space.id, new, None).await.map_err(|e| anyhow::anyhow!("key: {}", e.message))?.secret_key;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(vigie_xdr::serve(listener, state.clone(), shutdown.clone()));
    let http = reqwest::Client::new();
    let samples = crate::bench_intake::firewall_envelopes(None, 2000).await?;
    let probe = |i: u64| {
        json!({"id": format!("probe-{i}"), "type": "alert.severity_critical", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
            "data": {"interaction": {"id": format!("pi-{i}"), "user_id": "latency-probe", "platform_id": "deepseek", "risk_score": 0.99},
                     "alert": {"severity": "critical", "reason": "bench probe"}}})
    };
    let (post_http, post_url, post_key) = (http.clone(), format!("{base}/api/v1/events"), key.clone());
    let post = move |body: Value| {
        let http = post_http.clone();
        let url = post_url.clone();
        let key = post_key.clone();
        async move { http.post(url).bearer_auth(key).json(&body).send().await.and_then(|r| r.error_for_status()).map(|_| ()) }
    };
    // The probe's alert, raised before the load starts (later probes add occurrences to it).
    post(json!([probe(0)])).await?;
    let alert_url = format!("{base}/api/v1/alerts?user_id=latency-probe&limit=1");
    let occurrences = || {
        let http = http.clone();
        let url = alert_url.clone();
        let key = key.clone();
        async move {
            let v: Value = http.get(url).bearer_auth(key).send().await?.json().await?;
            Ok::<_, anyhow::Error>(v["items"][0]["occurrences"].as_u64().unwrap_or(0))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while occurrences().await? < 1 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the probe's alert did not appear within 10 s: is detection running with the default rules?"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Load: `rate` events/s in batches every 10 ms, one of them a probe every 20 ms.
    let acked: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::new(std::sync::Mutex::new(vec![Instant::now()]));
    let stop = CancellationToken::new();
    let per_tick = (b.rate / 100).max(1) as usize;
    let sender = {
        let acked = acked.clone();
        let stop = stop.clone();
        let samples = samples.clone();
        let post = post.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut n = 0u64;
            let mut probes = 0u64;
            while !stop.is_cancelled() {
                tick.tick().await;
                let mut batch = Vec::with_capacity(per_tick);
                let with_probe = n.is_multiple_of(2);
                for j in 0..per_tick - usize::from(with_probe) {
                    let mut e: Value = serde_json::from_str(&samples[(n as usize * per_tick + j) % samples.len()]).unwrap_or(Value::Null);
                    if let Some(o) = e.as_object_mut() {
                        o.insert("id".into(), json!(format!("load-{n}-{j}")));
                        o.insert("timestamp".into(), json!(chrono::Utc::now().to_rfc3339()));
                    }
                    batch.push(e);
                }
                if with_probe {
                    probes += 1;
                    batch.push(probe(probes));
                }
                let post = post.clone();
                let acked = acked.clone();
                tokio::spawn(async move {
                    if post(Value::Array(batch)).await.is_ok() && with_probe {
                        let mut a = acked.lock().unwrap_or_else(|e| e.into_inner());
                        let at = probes as usize;
                        if a.len() <= at {
                            a.resize(at + 1, Instant::now());
                        }
                        a[at] = Instant::now();
                    }
                });
                n += 1;
            }
        })
    };
    // When each probe's occurrence became visible (probe k is occurrence k + 1).
    let mut visible: Vec<Instant> = Vec::new();
    let end = Instant::now() + Duration::from_secs(b.seconds);
    while Instant::now() < end {
        let now_seen = occurrences().await?;
        let at = Instant::now();
        while (visible.len() as u64) + 1 < now_seen {
            visible.push(at);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.cancel();
    let _ = sender.await;
    // An occurrence can be visible before its sender has read the acknowledgement (the alert is
    // committed right after the events): that probe counts as 0.
    let acks = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut h = Histogram::<u64>::new(3)?;
    for (k, seen) in visible.iter().enumerate() {
        if let Some(ack) = acks.get(k + 1) {
            h.record(seen.saturating_duration_since(*ack).as_micros() as u64)?;
        }
    }
    println!(
        "  latency (ack → alert visible, {} ev/s, {} probes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        b.rate,
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}
