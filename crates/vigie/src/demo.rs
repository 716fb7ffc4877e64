//! `vigie demo`: serves both halves with a local mail sink, sets up a realistic organisation
//! (people directory, policies, default content, a `soc` e-mail channel, the analyst on duty, a
//! console key), then plays its people using AI platforms through the real firewall API at
//! `--rate` interactions per second, with a live one-line summary until Ctrl-C. A second run on
//! the same data directory resumes: nothing is created twice and nothing a person changed is
//! undone (`setup`).
mod setup;

use crate::org::{self, ANALYST, MEMBERS, OFFENDER};
use crate::serve::{Extras, Halves, Running, RunningXdr, cancel_on_signal, reachable, start_halves};
use crate::traffic;
use anyhow::Context;
use rand::SeedableRng;
use setup::{CONSOLE_KEY_DAYS, Setup, Soc};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::config::{Config, ServeRole};
use vigie_xdr::mailsink::Mailbox;

/// How long one simulated interaction may take to be answered.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The simulated interactions waiting for the firewall's answer at most: enough for the
/// highest rate at a firewall answering in tens of milliseconds, few enough not to bury a slow
/// one.
const IN_FLIGHT: usize = 64;
/// The lowest and highest `--rate` (interactions per second).
const RATES: std::ops::RangeInclusive<f64> = 0.001..=10_000.0;
/// How far below `--rate` the achieved rate may be before the summary says so.
const SHORTFALL: f64 = 0.9;

/// `vigie demo`.
pub async fn run(cfg: Config, rate: f64) -> anyhow::Result<()> {
    let period = period_of(rate).map_err(|e| anyhow::anyhow!(e))?;
    if cfg.role != ServeRole::All {
        anyhow::bail!("the demo runs both halves; leave --role unset (or set it to all)");
    }
    // Ctrl-C stops the traffic; the servers stop after the last counts are taken.
    let stop = CancellationToken::new();
    cancel_on_signal(stop.clone());
    let servers = CancellationToken::new();

    // The mail sink first, so the halves start knowing it (the XDR console shows its mailbox).
    // Kept in the data dir, so a resumed demo still shows the e-mails of earlier runs.
    let mailbox_file = cfg.data_dir.join("demo-mailbox.ndjson");
    let mailbox =
        Mailbox::persistent(&mailbox_file).with_context(|| format!("cannot open the demo's mailbox {}", mailbox_file.display()))?;
    let mails_before = *mailbox.watch().borrow();
    let sink =
        tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await.context("cannot start the demo's mail sink on loopback")?;
    let sink_addr = sink.local_addr()?;
    let sink_task = tokio::spawn(vigie_xdr::mailsink::serve(sink, mailbox.clone(), servers.clone()));

    let halves = match start_halves(&cfg, servers.clone(), Extras { mail_sink: Some(mailbox.clone()) }).await {
        Ok(h) => h,
        Err(e) => {
            servers.cancel();
            let _ = sink_task.await;
            return Err(e);
        }
    };
    let played = play(&cfg, &halves, sink_addr, (&mailbox, mails_before), (rate, period), &stop).await;
    servers.cancel();
    let stopped = crate::serve::stop(halves).await;
    let _ = sink_task.await;
    match (played, stopped) {
        (Err(e), stopped) => {
            if let Err(s) = stopped {
                tracing::error!(error = %format!("{s:#}"), "the servers did not stop cleanly");
            }
            Err(e)
        }
        (Ok(_), Err(s)) => Err(s),
        (Ok(None), Ok(())) => {
            println!("Stopped before the demo was set up. Run the same command to set it up.");
            Ok(())
        }
        (Ok(Some(last)), Ok(())) => {
            println!("{last}");
            println!("Stopped. The data stays in {}; run the same command to resume.", cfg.data_dir.display());
            Ok(())
        }
    }
}

/// The time between two simulated interactions at `rate` per second, or what is wrong with it.
fn period_of(rate: f64) -> Result<Duration, String> {
    if !RATES.contains(&rate) {
        return Err(format!(
            "--rate {rate:?} is out of range: give between {} and {} interactions per second (e.g. --rate 5)",
            RATES.start(),
            RATES.end()
        ));
    }
    Duration::try_from_secs_f64(1.0 / rate).map_err(|e| format!("--rate {rate:?}: {e}"))
}

/// Sets the demo up, prints the welcome and sends traffic until `stop`; the last summary line,
/// or None when stopped during the set-up.
async fn play(
    cfg: &Config,
    halves: &Halves,
    sink: SocketAddr,
    (mailbox, mails_before): (&Mailbox, u64),
    (rate, period): (f64, Duration),
    stop: &CancellationToken,
) -> anyhow::Result<Option<String>> {
    let (Some(fw), Some(x)) = (&halves.firewall, &halves.xdr) else {
        anyhow::bail!("the demo runs both halves; leave --role unset (or set it to all)");
    };
    // Shown before anything else can fail: the admin exists from now on.
    print_first_start(cfg, fw);
    // Built meanwhile: checking every prompt against the detection engine takes a moment.
    let pool = tokio::task::spawn_blocking(|| traffic::PromptPool::new(rand::random()));
    let since = tokio::select! {
        _ = stop.cancelled() => return Ok(None),
        s = Since::now(x) => s?,
    };
    let setup = tokio::select! {
        _ = stop.cancelled() => return Ok(None),
        r = async { crate::serve::connect(cfg, fw, x).await?; setup::set_up(cfg, fw, x, sink).await } => r?,
    };
    let pool = tokio::select! {
        _ = stop.cancelled() => return Ok(None),
        p = pool => p.context("building the demo's prompts failed")?,
    };
    let [clean, contact, payment, ids, secrets] = pool.sizes();
    tracing::debug!(clean, contact, payment, ids, secrets, "demo prompts ready, each checked against the detection engine");
    print_welcome(cfg, fw, x, &setup, rate);

    let sent = Arc::new(Sent { asked: rate, began: std::time::Instant::now(), ..Sent::default() });
    let live = CancellationToken::new();
    let report = tokio::spawn(report(x.state.clone(), setup.space_no, since, sent.clone(), (mailbox.clone(), mails_before), live.clone()));
    send(&setup, reachable(fw.addr), &pool, period, &sent, stop).await?;
    live.cancel();
    Ok(Some(report.await.context("the live summary failed")?))
}

/// Sends a simulated interaction every `period` until `stop`, each in a task of its own so
/// that the rate does not depend on how fast the firewall answers, at most [`IN_FLIGHT`]
/// waiting for their answer. A tick missed because that many were waiting is skipped, not made
/// up in a burst (the summary then says the rate achieved). On `stop`, the sends still waiting
/// are dropped.
async fn send(
    setup: &Setup,
    firewall: SocketAddr,
    pool: &traffic::PromptPool,
    period: Duration,
    sent: &Arc<Sent>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(SEND_TIMEOUT).build().context("cannot build an HTTP client")?;
    let url: Arc<str> = format!("http://{firewall}/api/v1/interactions").into();
    let token: Arc<str> = setup.ingest_token.as_str().into();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut sends = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        // Reaps the sends that finished (each counted itself).
        while sends.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = permits.clone().acquire_owned() => p.context("the demo's send limit was closed")?,
        };
        let body = traffic::demo_interaction(&mut rng, pool);
        sent.started.fetch_add(1, Ordering::Relaxed);
        let (client, url, token, sent) = (client.clone(), url.clone(), token.clone(), sent.clone());
        sends.spawn(async move {
            let answer = client.post(&*url).bearer_auth(&*token).json(&body).send().await;
            count(&sent, answer).await;
            drop(permit);
        });
    }
    sends.shutdown().await;
    Ok(())
}

/// Counts one simulated interaction's answer.
async fn count(sent: &Sent, answer: reqwest::Result<reqwest::Response>) {
    match answer {
        Ok(r) if r.status().as_u16() == 201 => {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            sent.ok.fetch_add(1, Ordering::Relaxed);
            if v.pointer("/decision/action").and_then(|a| a.as_str()) == Some("block") {
                sent.blocked.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(r) => {
            sent.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(status = %r.status(), "the firewall refused a simulated interaction");
        }
        Err(e) => {
            sent.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot reach the firewall");
        }
    }
}

/// Prints the generated admin password the moment it exists, before anything else can fail.
fn print_first_start(cfg: &Config, fw: &Running) {
    if let Some(Some(p)) = fw.bootstrap.as_ref().map(|b| &b.generated_password) {
        println!("First start: created the firewall admin {}.", cfg.admin_email);
        println!("Admin password:   {p}");
        println!("                  (generated now and shown once: keep it; change it in the console: Users & tokens)");
        let _ = std::io::stdout().flush();
    }
}

/// What to open and how to log in, printed once.
fn print_welcome(cfg: &Config, fw: &Running, x: &RunningXdr, s: &Setup, rate: f64) {
    let offender = &MEMBERS[OFFENDER];
    let manager = offender.manager.map(|m| MEMBERS[m].name()).unwrap_or_default();
    let (fw_addr, x_addr) = (reachable(fw.addr), reachable(x.addr));
    println!();
    println!("Vigie demo: {} ({} people), data in {}", org::COMPANY, MEMBERS.len(), cfg.data_dir.display());
    if s.resumed {
        let soc = if matches!(s.soc, Soc::Moved) { " (the soc channel is pointed at this run's mail sink)" } else { "" };
        println!("  Resumed: the people, policies, rules, playbook and channels are reused as they are now{soc}.");
    }
    if let Some(why) = &s.stale_marker {
        println!("  Set up again: the {} an earlier run saved does not count for these databases ({why}).", setup::MARKER);
    }
    if let Some(n) = s.people_imported {
        println!("  Imported {n} people into the directory (departments, managers, training dates).");
    }
    if s.policies_created > 0 {
        println!(
            "  Installed {} starter policies (block DeepSeek, payment data and secrets; coach on unvetted platforms).",
            s.policies_created
        );
    }
    if let Some(n) = s.defaults_enabled {
        println!("  Enabled the {n} default detection rules and the default playbook \"AI platform violation response\".");
    }
    match &s.soc {
        Soc::Created => println!("  Created the e-mail channel \"soc\" (soc@{}) through the demo's mail sink.", org::DOMAIN),
        Soc::Moved => {}
        Soc::Kept(Some(host)) => println!(
            "  The \"soc\" channel sends through {host}, as set in the XDR console: kept, so its e-mails go there, not to the Mailbox below. \
             Set its host to 127.0.0.1 and the next run points it at its mail sink again."
        ),
        Soc::Kept(None) => println!(
            "  The \"soc\" channel has no mail server (it was made another kind of channel): kept as it is; the SOC's notifications do not reach the Mailbox below."
        ),
        Soc::Missing => println!(
            "  There is no channel named \"soc\" any more: nothing is e-mailed. Create an e-mail channel named soc and the next run points it at its mail sink."
        ),
        Soc::NotMoved(why) => {
            println!("  The \"soc\" channel could not be pointed at this run's mail sink ({why}): its e-mails will not arrive.")
        }
    }
    if let Some(a) = &s.on_duty_set {
        println!("  Put {}, {} ({a}), on duty: cases the rules assign go to them.", MEMBERS[ANALYST].name(), MEMBERS[ANALYST].title);
    }
    println!();
    // Labels end with ':' and the value starts at one column; the `Admin password:`, `XDR key:`,
    // `Firewall API:` and `XDR API:` lines are read by tests (the value alone, then notes).
    println!("Firewall console: http://{fw_addr}/");
    println!("  Log in as:      {}", cfg.admin_email);
    match fw.bootstrap.as_ref().map(|b| &b.generated_password) {
        // Printed the moment the admin was created (print_first_start).
        Some(Some(_)) => println!("  Password:       the generated one printed above"),
        Some(None) => println!("  Password:       the one in VIGIE_ADMIN_PASSWORD"),
        None => println!("  Password:       the one printed when this data directory was first used (or its VIGIE_ADMIN_PASSWORD)"),
    }
    println!(
        "XDR console:      http://{x_addr}/   (log in with this key; it works {CONSOLE_KEY_DAYS} days; each run makes a new one and revokes the previous)"
    );
    println!("XDR key:          {}", s.console_key);
    println!("Mailbox:          http://{x_addr}/mailbox   (what the demo's mail sink caught: the managers' and the SOC's e-mails)");
    println!();
    println!("Firewall API:     http://{fw_addr}/api/v1   (OpenAPI: http://{fw_addr}/api/v1/openapi.json)");
    println!("XDR API:          http://{x_addr}/api/v1   (OpenAPI: http://{x_addr}/api/v1/openapi.json; Authorization: Bearer <XDR key>)");
    println!(
        "Check it:         VIGIE_ADMIN_PASSWORD=… VIGIE_XDR_KEY=… vigie verify --firewall-url http://{fw_addr} --xdr-url http://{x_addr}"
    );
    println!();
    println!(
        "Watch {}, {} ({}, reports to {manager}): they keep pasting card numbers and IBANs, mostly into unvetted platforms.",
        offender.name(),
        offender.title,
        offender.department.name()
    );
    if s.resumed {
        // Rules 1 to 3 fold a match into the alert still open for the same person (and platform).
        println!("Alerts still open from earlier runs take this run's matches for the same person (and platform) as occurrences:");
        println!("only a person and platform with no open alert raise a new one, and with it the playbook's case and manager e-mail,");
        println!(
            "so the longer the earlier runs, the fewer come. Resolve or close alerts in the XDR console ({}'s) to see them again.",
            offender.name()
        );
    } else {
        println!(
            "Within a minute: alerts, a case from the default playbook with a security review, and an e-mail to {manager} in the mailbox."
        );
    }
    println!("Sending {rate} interactions per second from {} people; Ctrl-C stops.", MEMBERS.len());
    println!("Live, this run: interactions sent and blocked, events that reached the XDR, alerts, cases, e-mails caught.");
    println!();
}

/// What the traffic loop counted, shared with the live summary.
#[derive(Debug)]
struct Sent {
    /// The rate asked for (`--rate`).
    asked: f64,
    /// When the traffic began.
    began: std::time::Instant,
    /// Simulated interactions sent (answered or not).
    started: AtomicU64,
    ok: AtomicU64,
    blocked: AtomicU64,
    failed: AtomicU64,
}

impl Default for Sent {
    fn default() -> Sent {
        Sent {
            asked: 0.0,
            began: std::time::Instant::now(),
            started: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

/// Where this run's counts start: the last event already stored, and the time.
#[derive(Debug, Clone, Copy)]
struct Since {
    seq: i64,
    at_us: i64,
}

impl Since {
    async fn now(x: &RunningXdr) -> anyhow::Result<Since> {
        let at_us = vigie_core::clock::to_micros(x.state.clock.now());
        let seq = x
            .state
            .store
            .read(|c| c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0)).map_err(vigie_core::StoreError::from))
            .await
            .context("cannot read the XDR's event log")?;
        Ok(Since { seq, at_us })
    }
}

/// The events of this run counted so far, up to event `after`: each count reads only the
/// events stored since the last, so it costs the same however large the log grows.
struct EventTally {
    after: i64,
    events: i64,
}

/// Prints the live summary until `live` is cancelled (a terminal gets one line redrawn every
/// 2 s, a pipe or a file a full line every 10 s); the last summary, for the caller to print.
async fn report(
    st: vigie_xdr::XdrState,
    space_no: i64,
    since: Since,
    sent: Arc<Sent>,
    mailbox: (Mailbox, u64),
    live: CancellationToken,
) -> String {
    let terminal = std::io::stdout().is_terminal();
    let mut every = tokio::time::interval(Duration::from_secs(if terminal { 2 } else { 10 }));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    every.tick().await;
    let mut tally = EventTally { after: since.seq, events: 0 };
    loop {
        tokio::select! {
            _ = live.cancelled() => break,
            _ = every.tick() => {
                let line = summary(&st, space_no, since, &mut tally, &sent, &mailbox).await;
                if terminal {
                    // Cleared first: the line may have grown shorter.
                    print!("\r\x1b[2K{line}");
                } else {
                    println!("{line}");
                }
                let _ = std::io::stdout().flush();
            }
        }
    }
    let last = summary(&st, space_no, since, &mut tally, &sent, &mailbox).await;
    if terminal {
        print!("\r\x1b[2K");
        let _ = std::io::stdout().flush();
    }
    last
}

/// The live summary, this run's figures: interactions sent and blocked, the events that reached
/// the XDR, the alerts and cases raised, the e-mails the sink caught. Short enough for an
/// 80-column terminal.
async fn summary(
    st: &vigie_xdr::XdrState,
    space_no: i64,
    since: Since,
    tally: &mut EventTally,
    sent: &Sent,
    (mailbox, mails_before): &(Mailbox, u64),
) -> String {
    let after = tally.after;
    let counts = st
        .store
        .read(move |c| {
            let (events, last): (i64, Option<i64>) = c.query_row(
                "SELECT count(*), max(seq) FROM events WHERE seq > ?1 AND space_no = ?2",
                rusqlite::params![after, space_no],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let count = |sql: &str| c.query_row(sql, rusqlite::params![space_no, since.at_us], |r| r.get::<_, i64>(0));
            let alerts = count("SELECT count(*) FROM alerts WHERE space_no = ?1 AND created_at >= ?2")?;
            let cases = count("SELECT count(*) FROM cases WHERE space_no = ?1 AND created_at >= ?2")?;
            Ok::<_, vigie_core::StoreError>((events, last, alerts, cases))
        })
        .await;
    let xdr = match counts {
        Ok((events, last, alerts, cases)) => {
            tally.events += events;
            tally.after = last.unwrap_or(tally.after);
            Some((tally.events, alerts, cases))
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot count the XDR's events");
            None
        }
    };
    // This run's: the mailbox also holds what earlier runs caught.
    let mails = mailbox.watch().borrow().saturating_sub(*mails_before);
    let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
    let line = summary_line([load(&sent.ok), load(&sent.blocked), load(&sent.failed)], xdr, mails);
    match shortfall(sent.asked, load(&sent.started), sent.began.elapsed()) {
        Some(note) => format!("{line} · {note}"),
        None => line,
    }
}

/// What the summary adds when fewer interactions were sent than `--rate` asks (more than 10 %
/// fewer: [`IN_FLIGHT`] of them were waiting for the firewall at once): `only 41.2/s of 100/s`.
/// Nothing in the first second, when a tick or two decide.
fn shortfall(asked: f64, started: u64, elapsed: Duration) -> Option<String> {
    let secs = elapsed.as_secs_f64();
    if secs < 1.0 {
        return None;
    }
    let achieved = started as f64 / secs;
    (achieved < asked * SHORTFALL).then(|| format!("only {}/s of {}/s", per_second(achieved), per_second(asked)))
}

/// A rate with the digits that matter: `1200`, `41.2`, `0.333`.
fn per_second(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}").trim_end_matches(".0").to_owned()
    } else {
        format!("{r:.3}")
    }
}

/// `[sent, blocked, failed]`, the XDR's `(events, alerts, cases)` when counted, and the e-mails
/// as one line, large figures shortened (`86.4k`) so that it fits a terminal line.
fn summary_line([ok, blocked, failed]: [u64; 3], xdr: Option<(i64, i64, i64)>, mails: u64) -> String {
    let xdr = match xdr {
        Some((events, alerts, cases)) => {
            let n = |v: i64| short(u64::try_from(v).unwrap_or_default());
            format!("{} events · {} alerts · {} cases", n(events), n(alerts), n(cases))
        }
        None => "XDR counts unavailable".into(),
    };
    let failed = if failed > 0 { format!(" · {} failed", short(failed)) } else { String::new() };
    format!("{} sent · {} blocked · {xdr} · {} e-mails{failed}", short(ok), short(blocked), short(mails))
}

/// `n` in at most five characters: `9999`, `86.4k`, `432k`, `1.2M`.
fn short(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..100_000 => format!("{:.1}k", n as f64 / 1e3),
        100_000..1_000_000 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_of_a_day_at_the_default_rate_fits_an_80_column_terminal() {
        let line = summary_line([432_000, 86_400, 0], Some((345_600, 950, 420)), 1_300);
        assert_eq!(line, "432k sent · 86.4k blocked · 345k events · 950 alerts · 420 cases · 1300 e-mails");
        assert!(line.chars().count() < 80, "{} columns", line.chars().count());
        assert_eq!(summary_line([12, 3, 0], Some((20, 2, 1)), 4), "12 sent · 3 blocked · 20 events · 2 alerts · 1 cases · 4 e-mails");
        assert!(summary_line([3, 1, 2], None, 0).ends_with("XDR counts unavailable · 0 e-mails · 2 failed"));
        assert_eq!([short(9_999), short(10_000), short(999_999), short(2_500_000)], ["9999", "10.0k", "999k", "2.5M"]);
    }

    #[test]
    fn rates_outside_a_thousandth_to_ten_thousand_a_second_are_refused_with_the_range() {
        assert_eq!(period_of(5.0), Ok(Duration::from_millis(200)));
        assert_eq!(period_of(0.001), Ok(Duration::from_secs(1000)));
        assert_eq!(period_of(10_000.0), Ok(Duration::from_micros(100)));
        for bad in [1e-20, 0.0, -1.0, 10_001.0, f64::NAN, f64::INFINITY] {
            let e = period_of(bad).expect_err("refused");
            assert!(e.contains("between 0.001 and 10000 interactions per second"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_summary_says_the_rate_achieved_only_when_more_than_ten_percent_short() {
        let s = |asked, started, ms| shortfall(asked, started, Duration::from_millis(ms));
        assert_eq!(s(100.0, 1000, 10_000), None);
        assert_eq!(s(100.0, 901, 10_000), None, "within 10 %");
        assert_eq!(s(100.0, 412, 10_000).as_deref(), Some("only 41.2/s of 100/s"));
        assert_eq!(s(1000.0, 4000, 10_000).as_deref(), Some("only 400/s of 1000/s"));
        assert_eq!(s(5.0, 20, 10_000).as_deref(), Some("only 2/s of 5/s"));
        assert_eq!(s(0.5, 1, 10_000).as_deref(), Some("only 0.100/s of 0.500/s"));
        assert_eq!(s(1000.0, 0, 500), None, "not in the first second");
        // The summary's figures stay readable by label next to the note.
        let line = format!("{} · {}", summary_line([4000, 10, 0], Some((3000, 1, 1)), 2), s(1000.0, 4000, 10_000).expect("short"));
        assert!(line.ends_with("2 e-mails · only 400/s of 1000/s"), "{line}");
    }
}
