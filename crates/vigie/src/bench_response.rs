//! `vigie bench response`: the figures of issue 8.
//!
//! An XDR with the default content enabled, a directory of people whose training is over a year
//! old, the space's e-mail channel pointing at a mail sink on loopback and a `soc` webhook
//! channel (rule 1 notifies it) pointing at a local HTTP receiver. Policy violations on an
//! unvetted platform, one per person, each raise an alert of rule 1, whose default playbook
//! opens a case, e-mails the manager, and adds a review task with an invitation.
//!
//! - Throughput: `--alerts` violations posted at once; runs per second until every run finished
//!   and every e-mail arrived, beside the baseline of the same alerts with the playbook disabled
//!   (detection, the responder and the webhook notifications alone).
//! - Latency: violations at a steady `--rate`; for each, the alert's creation time to the
//!   manager's notice received by the mail sink (and from the intake's acknowledgement).
use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_core::db::StoreOptions;
use vigie_xdr::mailsink::Mailbox;

/// Flags of `vigie bench response`.
#[derive(Args, Debug, Clone)]
pub struct ResponseBench {
    /// Alerts (one violation each, one person each) of a throughput round.
    #[arg(long, default_value_t = 500)]
    pub alerts: usize,
    /// Throughput rounds (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Violations per second of the latency run.
    #[arg(long, default_value_t = 10)]
    pub rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Only these parts (throughput, latency), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// People per space: a rule raises at most 30 new alerts in 30 s in a space (the rate limit),
/// so the load is spread over spaces of 25 people, each with its own channels and directory.
const PER_SPACE: usize = 25;

/// A running XDR with its mail sink and webhook receiver.
struct Rig {
    base: String,
    /// One key per space (`b0`, `b1`, …), each for the people `u{space * 25 + k}`.
    keys: Vec<String>,
    http: reqwest::Client,
    mail: Mailbox,
    hooks: Arc<std::sync::atomic::AtomicU64>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

impl Rig {
    /// An XDR with enough spaces for `people` people.
    async fn start(people: usize, playbook: bool) -> anyhow::Result<Rig> {
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
            allow_private_destinations: true,
            notify: Default::default(),
        };
        let state = vigie_xdr::open(opts, Arc::new(SystemClock))?;
        let stop = CancellationToken::new();
        // The mail sink and the webhook receiver.
        let mail = Mailbox::default();
        let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let smtp_port = smtp.local_addr()?.port();
        tokio::spawn(vigie_xdr::mailsink::serve(smtp, mail.clone(), stop.clone()));
        let hooks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let h = hooks.clone();
        let receiver = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let h = h.clone();
                async move {
                    h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    "ok"
                }
            }),
        );
        let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hook_url = format!("http://{}/hook", hook_listener.local_addr()?);
        let hook_stop = stop.clone();
        tokio::spawn(async move { axum::serve(hook_listener, receiver).with_graceful_shutdown(hook_stop.cancelled_owned()).await });
        let scopes = ["events_write", "alerts_read", "playbooks_read", "playbooks_write", "admin", "cases_read"];
        let mut keys = Vec::new();
        for s in 0..people.div_ceil(PER_SPACE) {
            let space = state.keys.ensure_space(&format!("b{s}")).await?;
            let new = vigie_xdr::keys::NewKey {
                name: "bench".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            };
            keys.push(state.keys.create(space.id, new, None).await.map_err(|e| anyhow::anyhow!("key: {}", e.message))?.secret_key);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(vigie_xdr::serve(listener, state, stop.clone()));
        let rig = Rig { base, keys, http: reqwest::Client::new(), mail, hooks, stop, server, dir };
        let old = (chrono::Utc::now() - chrono::Duration::days(500)).format("%Y-%m-%d").to_string();
        for (s, key) in rig.keys.iter().enumerate() {
            rig.call(key, "POST", "/api/v1/notifications/channels", json!({"name": "mail", "kind": "email",
                "settings": {"host": "127.0.0.1", "port": smtp_port, "tls": "none", "from": "vigie@corp.example", "to": ["soc@corp.example"]}}))
                .await?;
            rig.call(
                key,
                "POST",
                "/api/v1/notifications/channels",
                json!({"name": "soc", "kind": "webhook", "settings": {"url": hook_url}}),
            )
            .await?;
            let mut csv = String::from("user_id,display_name,email,manager_email,department,training_date\n");
            for i in s * PER_SPACE..((s + 1) * PER_SPACE).min(people) {
                csv.push_str(&format!("u{i},Person {i},u{i}@corp.example,m{i}@corp.example,Finance,{old}\n"));
            }
            let resp = rig
                .http
                .post(format!("{}/api/v1/people/import", rig.base))
                .bearer_auth(key)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "people import: {}", resp.text().await?);
            if !playbook {
                let list = rig.call(key, "GET", "/api/v1/playbooks", Value::Null).await?;
                let id = list["items"][0]["id"].as_str().context("the default playbook is installed")?.to_owned();
                rig.call(key, "PATCH", &format!("/api/v1/playbooks/{id}"), json!({"enabled": false})).await?;
            }
        }
        Ok(rig)
    }

    async fn call(&self, key: &str, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.parse()?, format!("{}{path}", self.base)).bearer_auth(key);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }

    /// Posts person `i`'s events with their space's key.
    async fn post_events(&self, i: usize, events: Vec<Value>) -> anyhow::Result<()> {
        let key = &self.keys[i / PER_SPACE];
        let resp = self.http.post(format!("{}/api/v1/events", self.base)).bearer_auth(key).json(&events).send().await?;
        anyhow::ensure!(resp.status().is_success(), "intake: {}", resp.status());
        Ok(())
    }

    fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let db = rusqlite::Connection::open_with_flags(self.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(db.query_row(sql, [], |r| r.get(0))?)
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.server.await;
    }
}

fn violation(id: &str, user: &str) -> Value {
    json!({
        "id": id, "type": "interaction.policy_violated", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
        "data": {"interaction": {
            "id": format!("i-{id}"), "platform_id": "deepseek", "user_id": user, "user_email": format!("{user}@corp.example"),
            "risk_score": 0.82, "risk_level": "high", "classification_count": 1,
            "classifications": [{"type": "IBAN", "confidence": 0.97}],
            "decision": {"action": "block", "policy_name": "Protect financial data", "risk_level": "high"}
        }}
    })
}

/// Polls `done` every millisecond up to `limit`; the time it took.
async fn wait(what: &str, limit: Duration, done: impl Fn() -> anyhow::Result<bool>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !done()? {
        anyhow::ensure!(started.elapsed() < limit, "{what} did not finish within {limit:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(started.elapsed())
}

/// Runs `--alerts` violations through the pipeline; seconds until every alert was answered.
async fn round(b: &ResponseBench, playbook: bool, round: usize) -> anyhow::Result<f64> {
    let rig = Rig::start(b.alerts, playbook).await?;
    let n = b.alerts as i64;
    let started = Instant::now();
    // One request per space, all at once.
    let mut posts = tokio::task::JoinSet::new();
    let rig = Arc::new(rig);
    for s in 0..rig.keys.len() {
        let rig = rig.clone();
        let people: Vec<usize> = (s * PER_SPACE..((s + 1) * PER_SPACE).min(b.alerts)).collect();
        posts.spawn(async move {
            let events = people.iter().map(|i| violation(&format!("r{round}-{i}"), &format!("u{i}"))).collect();
            rig.post_events(people[0], events).await
        });
    }
    while let Some(r) = posts.join_next().await {
        r??;
    }
    let limit = Duration::from_secs(300);
    wait("the alerts", limit, || Ok(rig.count("SELECT COUNT(*) FROM alerts")? == n)).await?;
    wait("the webhook notifications", limit, || Ok(rig.hooks.load(std::sync::atomic::Ordering::Relaxed) as i64 >= n)).await?;
    if playbook {
        wait("the runs", limit, || Ok(rig.count("SELECT COUNT(*) FROM playbook_runs WHERE status IN ('succeeded', 'failed')")? == n))
            .await?;
        wait("the e-mails", limit, || Ok(rig.mail.messages().len() as i64 >= 2 * n)).await?;
        let failed = rig.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'failed'")?;
        anyhow::ensure!(failed == 0, "{failed} runs failed");
    }
    let took = started.elapsed().as_secs_f64();
    let suppressed = rig.count("SELECT COALESCE(SUM(suppressed), 0) FROM rule_stats")?;
    anyhow::ensure!(suppressed == 0, "{suppressed} matches were suppressed by the rate limit");
    if let Ok(rig) = Arc::try_unwrap(rig) {
        rig.stop().await;
    }
    Ok(took)
}

async fn throughput(b: &ResponseBench) -> anyhow::Result<()> {
    let (mut base, mut full) = (Vec::new(), Vec::new());
    for r in 0..b.rounds {
        base.push(b.alerts as f64 / round(b, false, r).await?);
        full.push(b.alerts as f64 / round(b, true, r).await?);
    }
    let (base, full) = (median(base), median(full));
    println!(
        "  throughput ({} alerts, median of {}): default playbook {:.0} runs/s (2 e-mails + 1 webhook each); \
         baseline without the playbook {:.0} alerts/s; ratio {:.2}",
        b.alerts,
        b.rounds,
        full,
        base,
        full / base
    );
    Ok(())
}

async fn latency(b: &ResponseBench) -> anyhow::Result<()> {
    let total = (b.rate * b.seconds) as usize;
    // Person i is in space i / 25; at `rate`/s, each space gets a new alert every 25 / rate
    // seconds, well under the rule's 30 in 30 s.
    let rig = Rig::start(total, true).await?;
    let mut acked: HashMap<String, chrono::DateTime<chrono::Utc>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / b.rate.max(1)));
    // Spread consecutive violations over spaces: person order 0, 25, 50, …, 1, 26, …
    let spaces = total.div_ceil(PER_SPACE);
    for k in 0..total {
        tick.tick().await;
        let i = (k % spaces) * PER_SPACE + k / spaces;
        if i >= total {
            continue;
        }
        rig.post_events(i, vec![violation(&format!("l{i}"), &format!("u{i}"))]).await?;
        acked.insert(format!("m{i}@corp.example"), chrono::Utc::now());
    }
    let expected = acked.len();
    wait("the e-mails", Duration::from_secs(120), || Ok(rig.mail.messages().len() >= 2 * expected)).await?;
    let created: HashMap<String, i64> = {
        let db = rusqlite::Connection::open_with_flags(rig.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut stmt = db.prepare("SELECT user_id, created_at FROM alerts")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let (mut from_alert, mut from_ack) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    for m in rig.mail.messages() {
        let Some(to) = m.to.first() else { continue };
        if m.data.contains("BEGIN:VCALENDAR") {
            continue;
        }
        let user = format!("u{}", to.trim_start_matches('m').trim_end_matches("@corp.example"));
        if let Some(c) = created.get(&user) {
            from_alert.record((vigie_core::clock::to_micros(m.at) - c).max(0) as u64)?;
        }
        if let Some(a) = acked.get(to) {
            from_ack.record((m.at - *a).num_microseconds().unwrap_or(0).max(0) as u64)?;
        }
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "  latency ({} violations at {}/s over {} spaces): alert → manager's e-mail received p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         intake ack → e-mail p50 {:.1} ms, p99 {:.1} ms",
        from_alert.len(),
        b.rate,
        spaces,
        ms(&from_alert, 0.5),
        ms(&from_alert, 0.99),
        from_alert.max() as f64 / 1e3,
        ms(&from_ack, 0.5),
        ms(&from_ack, 0.99)
    );
    // Where the time goes: alert → run queued → started → each step.
    let db = rusqlite::Connection::open_with_flags(rig.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (queued, waited, ran): (f64, f64, f64) = db.query_row(
        "SELECT AVG(r.queued_at - a.created_at), AVG(r.started_at - r.queued_at), AVG(r.finished_at - r.started_at) \
         FROM playbook_runs r JOIN alerts a ON a.id = json_extract(r.trigger, '$.alert.id')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut stmt = db.prepare("SELECT step_id, AVG(duration_us) FROM playbook_steps GROUP BY step_id ORDER BY MIN(idx)")?;
    let steps: Vec<String> =
        stmt.query_map([], |r| Ok(format!("{} {:.1}", r.get::<_, String>(0)?, r.get::<_, f64>(1)? / 1e3)))?.collect::<Result<_, _>>()?;
    println!(
        "    mean ms: alert → run queued {:.1}, queued → started {:.1}, run {:.1} (steps: {})",
        queued / 1e3,
        waited / 1e3,
        ran / 1e3,
        steps.join(", ")
    );
    rig.stop().await;
    Ok(())
}

/// `vigie bench response`.
pub async fn response(b: ResponseBench) -> anyhow::Result<()> {
    let want = |part: &str| b.only.is_empty() || b.only.iter().any(|o| o == part);
    println!("Response — the default playbook with a mail sink and a webhook receiver on loopback");
    if want("throughput") {
        throughput(&b).await?;
    }
    if want("latency") {
        latency(&b).await?;
    }
    Ok(())
}
