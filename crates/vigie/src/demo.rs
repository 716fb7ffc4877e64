//! `vigie demo`: serves both halves with a local mail sink, sets up a realistic organisation
//! (people directory, policies, default content, a `soc` e-mail channel, the analyst on duty, a
//! console key), then plays its people using AI platforms through the real firewall API at
//! `--rate` interactions per second, with a live one-line summary until Ctrl-C. A second run on
//! the same data directory resumes: nothing is created twice.
use crate::org::{self, ANALYST, MEMBERS, OFFENDER};
use crate::serve::{Extras, Running, RunningXdr, cancel_on_signal, start_with};
use crate::traffic;
use anyhow::Context;
use rand::SeedableRng;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::auth::Role;
use vigie_core::config::Config;
use vigie_xdr::keys::{Caller, Scope};
use vigie_xdr::mailsink::Mailbox;

/// The name of the XDR key the demo makes for the console; each run revokes the previous one.
pub const CONSOLE_KEY: &str = "demo console";
/// What the console key may do: everything but sending events.
const CONSOLE_SCOPES: &[Scope] = &[
    Scope::EventsRead,
    Scope::AlertsRead,
    Scope::AlertsWrite,
    Scope::CasesRead,
    Scope::CasesWrite,
    Scope::RulesRead,
    Scope::RulesWrite,
    Scope::PlaybooksRead,
    Scope::PlaybooksWrite,
    Scope::IntelRead,
    Scope::IntelWrite,
    Scope::Admin,
];
/// The notification channel the default rule 1 notifies.
const SOC_CHANNEL: &str = "soc";

/// `vigie demo`.
pub async fn run(cfg: Config, rate: f64) -> anyhow::Result<()> {
    if !(rate > 0.0 && rate <= 10_000.0) {
        anyhow::bail!("--rate must be between 0 and 10000 interactions per second");
    }
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());

    // The mail sink first, so the halves start knowing it (the XDR console shows its mailbox).
    let mailbox = Mailbox::default();
    let sink =
        tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await.context("cannot start the demo's mail sink on loopback")?;
    let sink_addr = sink.local_addr()?;
    let sink_task = tokio::spawn(vigie_xdr::mailsink::serve(sink, mailbox.clone(), shutdown.clone()));

    let halves = start_with(&cfg, shutdown.clone(), Extras { mail_sink: Some(mailbox.clone()) }).await?;
    let (Some(fw), Some(x)) = (halves.firewall, halves.xdr) else {
        anyhow::bail!("the demo runs both halves; leave --role unset (or set it to all)");
    };
    let setup = set_up(&cfg, &fw, &x, sink_addr).await?;
    print_welcome(&cfg, &fw, &x, &setup, rate);

    // Built once: checking every prompt against the detection engine takes a moment.
    let pool = traffic::PromptPool::new(rand::random());
    let [clean, contact, payment, ids, secrets] = pool.sizes();
    tracing::debug!(clean, contact, payment, ids, secrets, "demo prompts ready, each checked against the detection engine");
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/interactions", fw.addr);
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // A terminal gets one line redrawn every 2 s; a pipe or a file a full line every 10 s.
    let terminal = std::io::stdout().is_terminal();
    let mut report = tokio::time::interval(Duration::from_secs(if terminal { 2 } else { 10 }));
    report.tick().await;
    let mut sent = Sent::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = report.tick() => {
                let line = summary(&x, setup.space_no, &sent, &mailbox).await;
                if terminal {
                    print!("\r{line}   ");
                } else {
                    println!("{line}");
                }
                let _ = std::io::stdout().flush();
            }
            _ = tick.tick() => {
                let body = traffic::demo_interaction(&mut rng, &pool);
                match client.post(&url).bearer_auth(&setup.ingest_token).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => {
                        sent.ok += 1;
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        match v.pointer("/decision/action").and_then(|a| a.as_str()) {
                            Some("block") => sent.blocked += 1,
                            Some("coach") => sent.coached += 1,
                            _ => {}
                        }
                    }
                    Ok(r) => {
                        sent.failed += 1;
                        tracing::warn!(status = %r.status(), "the firewall refused a simulated interaction");
                    }
                    Err(e) => {
                        sent.failed += 1;
                        tracing::warn!(error = %e, "cannot reach the firewall");
                    }
                }
            }
        }
    }
    // Counted before the servers close their stores.
    let last = summary(&x, setup.space_no, &sent, &mailbox).await;
    if terminal {
        println!();
    }
    fw.task.await.context("the firewall server task failed")??;
    x.task.await.context("the XDR server task failed")??;
    let _ = sink_task.await;
    println!("{last}");
    println!("Stopped. The data stays in {}; run the same command to resume.", cfg.data_dir.display());
    Ok(())
}

/// What the demo set up, for the welcome text and the traffic.
struct Setup {
    /// The firewall token the traffic is sent with.
    ingest_token: String,
    /// The XDR key for the console, made on this run.
    console_key: String,
    /// The default space's number (for the summary's counts).
    space_no: i64,
    /// Starter policies created on this run.
    policies_created: usize,
    /// Default rules and playbooks enabled on this run (first run only).
    defaults_enabled: Option<usize>,
    /// People imported into the directory on this run (first run only).
    people_imported: Option<usize>,
    /// Whether the `soc` channel was created (else pointed at the sink's new port).
    channel_created: bool,
    /// The analyst on duty, when set on this run.
    on_duty_set: Option<String>,
}

/// Everything the demo needs in place before traffic, created on the first run and found (or
/// moved to this run's addresses) on later ones.
async fn set_up(cfg: &Config, fw: &Running, x: &RunningXdr, sink: SocketAddr) -> anyhow::Result<Setup> {
    let tenant = fw
        .state
        .auth
        .tenant_by_name(&cfg.tenant_name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot find tenant {:?}: {e}", cfg.tenant_name))?;
    let system = traffic::system(tenant.id, "demo");
    let policies_created = traffic::seed(&fw.state, &system, traffic::starter_policies()).await?;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let (_, ingest_token) = fw
        .state
        .auth
        .create_token(&system, "demo traffic", Role::Ingest, Some(expires))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the demo's firewall token: {e}"))?;

    let space = x.state.keys.ensure_space(&cfg.tenant_name).await.context("cannot find the default space")?;
    let id = space.id.to_string();
    let space_no: i64 = x
        .state
        .store
        .read(move |c| c.query_row("SELECT no FROM spaces WHERE id = ?1", [id], |r| r.get(0)).map_err(vigie_core::StoreError::from))
        .await?;
    // The default content is installed in every space, disabled; the demo enables it once, on
    // its first run (a later run keeps what the user changed).
    let defaults_enabled = if fw.bootstrap.is_some() {
        let n = vigie_xdr::rules::set_defaults_enabled(&x.state, space_no, true).await?;
        vigie_xdr::playbooks::set_defaults_enabled(&x.state, space_no, true).await?;
        Some(n)
    } else {
        None
    };

    let console_key = console_key(x, space.id).await?;
    let caller =
        x.state.keys.authenticate(&console_key).await.map_err(|e| anyhow::anyhow!("the new console key does not work: {}", e.message))?;
    let people_imported = import_people(x.addr, &console_key).await?;
    let channel_created = soc_channel(cfg, x, caller, sink).await?;
    let on_duty_set = match space.on_duty {
        Some(_) => None,
        None => {
            let analyst = MEMBERS[ANALYST].email();
            x.state
                .keys
                .set_on_duty(space.id, Some(analyst.clone()))
                .await
                .map_err(|e| anyhow::anyhow!("cannot set the analyst on duty: {}", e.message))?;
            Some(analyst)
        }
    };
    Ok(Setup { ingest_token, console_key, space_no, policies_created, defaults_enabled, people_imported, channel_created, on_duty_set })
}

/// Revokes the previous runs' console keys and makes a new one.
async fn console_key(x: &RunningXdr, space: uuid::Uuid) -> anyhow::Result<String> {
    let mut after = None;
    loop {
        let page = x.state.keys.list(space, after, 500).await.map_err(|e| anyhow::anyhow!("cannot list the XDR keys: {}", e.message))?;
        for k in page.iter().take(500).filter(|k| k.name == CONSOLE_KEY && k.revoked_at.is_none()) {
            x.state.keys.revoke(space, k.id).await.map_err(|e| anyhow::anyhow!("cannot revoke the previous console key: {}", e.message))?;
        }
        if page.len() <= 500 {
            break;
        }
        after = page.get(499).map(|k| k.id);
    }
    let new = vigie_xdr::keys::NewKey {
        name: CONSOLE_KEY.into(),
        scopes: CONSOLE_SCOPES.iter().map(|s| s.as_str().to_owned()).collect(),
        ..Default::default()
    };
    let created = x
        .state
        .keys
        .create(space, new, Some("vigie demo".into()))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the console key: {}", e.message))?;
    Ok(created.secret_key)
}

/// Imports the organisation into the directory unless it is there (first run): through the
/// API, as an operator would.
async fn import_people(xdr: SocketAddr, key: &str) -> anyhow::Result<Option<usize>> {
    let http = reqwest::Client::new();
    let base = format!("http://{xdr}/api/v1/people");
    let probe = http.get(format!("{base}/{}", traffic::person(OFFENDER))).bearer_auth(key).send().await.context("cannot reach the XDR")?;
    match probe.status().as_u16() {
        200 => return Ok(None),
        404 => {}
        s => anyhow::bail!("the people directory answered {s}: {}", probe.text().await.unwrap_or_default()),
    }
    let r = http
        .post(format!("{base}/import"))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(org::people_csv(chrono::Utc::now().date_naive()))
        .send()
        .await
        .context("cannot reach the XDR")?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the people import was refused ({status}): {body}");
    }
    Ok(Some(body["rows"].as_u64().unwrap_or_default() as usize))
}

/// Creates the `soc` e-mail channel (first run) or points it at this run's mail sink. The sink
/// listens on loopback on a random port, which channels may only use with private destinations
/// allowed: allowed here, for this channel alone, not for the whole XDR.
async fn soc_channel(cfg: &Config, x: &RunningXdr, caller: Caller, sink: SocketAddr) -> anyhow::Result<bool> {
    use vigie_core::http::{ApiJson, ApiQuery};
    use vigie_xdr::notify::{ChannelKind, ChannelListParams, ChannelPatch, NewChannel, SettingsInput, SmtpTls};
    let key = match &cfg.secret_key {
        Some(k) => k.clone(),
        None => vigie_core::secrets::MasterKey::load_or_create(&cfg.data_dir).context("cannot read the secret key")?,
    };
    let notifier = vigie_xdr::notify::Notifier::new(&key, &Default::default(), true, &vigie_core::metrics::Metrics::new("vigie_demo"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut st = x.state.clone();
    st.notify = Arc::new(notifier);
    let settings = || SettingsInput {
        host: Some(sink.ip().to_string()),
        port: Some(sink.port()),
        tls: Some(SmtpTls::None),
        from: Some(format!("Vigie <vigie@{}>", org::DOMAIN)),
        to: Some(vec![format!("soc@{}", org::DOMAIN)]),
        ..Default::default()
    };
    let err = |e: vigie_core::http::ApiError| {
        let fields: Vec<String> = e.fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
        anyhow::anyhow!("cannot set up the {SOC_CHANNEL:?} channel: {} {}", e.message, fields.join("; "))
    };
    let axum::Json(page) = vigie_xdr::notify::channels_list(
        axum::extract::State(st.clone()),
        auth(&caller),
        ApiQuery(ChannelListParams { limit: Some(500), cursor: None }),
    )
    .await
    .map_err(err)?;
    match page.items.iter().find(|c| c.name == SOC_CHANNEL) {
        Some(c) => {
            let patch = ChannelPatch { enabled: Some(true), settings: Some(settings()), ..Default::default() };
            let _ = vigie_xdr::notify::channels_update(
                axum::extract::State(st),
                auth(&caller),
                axum::extract::Path(c.id.clone()),
                ApiJson(patch),
            )
            .await
            .map_err(err)?;
            Ok(false)
        }
        None => {
            let new = NewChannel {
                name: SOC_CHANNEL.into(),
                kind: ChannelKind::Email,
                enabled: Some(true),
                min_severity: None,
                rules: None,
                templates: None,
                settings: settings(),
            };
            let _ = vigie_xdr::notify::channels_create(axum::extract::State(st), auth(&caller), ApiJson(new)).await.map_err(err)?;
            Ok(true)
        }
    }
}

/// `caller` as a handler's extractor gives it.
fn auth<S: vigie_xdr::keys::NeedsScope>(caller: &Caller) -> vigie_xdr::keys::Authorized<S> {
    vigie_xdr::keys::Authorized(caller.clone(), std::marker::PhantomData)
}

/// What to open and how to log in, printed once.
fn print_welcome(cfg: &Config, fw: &Running, x: &RunningXdr, s: &Setup, rate: f64) {
    let offender = &MEMBERS[OFFENDER];
    let manager = offender.manager.map(|m| MEMBERS[m].name()).unwrap_or_default();
    println!();
    println!("Vigie demo: {} ({} people), data in {}", org::COMPANY, MEMBERS.len(), cfg.data_dir.display());
    if fw.bootstrap.is_none() {
        println!("  Resumed: the people, policies, rules, channel and webhook of the earlier runs are reused.");
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
    if s.channel_created {
        println!("  Created the e-mail channel \"soc\" (soc@{}) through the demo's mail sink.", org::DOMAIN);
    }
    if let Some(a) = &s.on_duty_set {
        println!("  Put {}, {} ({a}), on duty: cases the rules assign go to them.", MEMBERS[ANALYST].name(), MEMBERS[ANALYST].title);
    }
    println!();
    println!("Firewall console   http://{}/", fw.addr);
    println!("  Log in as        {}", cfg.admin_email);
    match fw.bootstrap.as_ref().map(|b| &b.generated_password) {
        Some(Some(p)) => {
            println!("Admin password: {p}");
            println!("  (generated on this first run and shown once; change it with POST /api/v1/auth/password)");
        }
        Some(None) => println!("  Password         the one in VIGIE_ADMIN_PASSWORD"),
        None => println!(
            "  Password         the one printed by the first run on this data directory (or the VIGIE_ADMIN_PASSWORD it was given)"
        ),
    }
    println!("XDR console        http://{}/   (log in with the XDR key below; made on this run, the previous one is revoked)", x.addr);
    println!("XDR key: {}", s.console_key);
    println!("Mailbox            http://{}/mailbox   (e-mails caught by the demo's mail sink: the managers' and the SOC's)", x.addr);
    println!();
    println!("Firewall API: http://{}/api/v1   (OpenAPI: http://{}/api/v1/openapi.json)", fw.addr, fw.addr);
    println!("XDR API: http://{}/api/v1   (OpenAPI: http://{}/api/v1/openapi.json; Authorization: Bearer <XDR key>)", x.addr, x.addr);
    println!();
    println!(
        "Watch {}, {} ({}, reports to {manager}): they keep pasting card numbers and IBANs, mostly into unvetted platforms.",
        offender.name(),
        offender.title,
        offender.department.name()
    );
    println!(
        "Within a minute: alerts, a case from the default playbook with a security review, and an e-mail to {manager} in the mailbox."
    );
    println!("Sending {rate} interactions per second from {} people; Ctrl-C stops.", MEMBERS.len());
    println!();
}

/// What the traffic loop counted.
#[derive(Debug, Default)]
struct Sent {
    ok: u64,
    blocked: u64,
    coached: u64,
    failed: u64,
}

/// The live summary: this run's interactions and e-mails, the XDR's events, alerts and cases.
async fn summary(x: &RunningXdr, space_no: i64, sent: &Sent, mailbox: &Mailbox) -> String {
    let counts = x
        .state
        .store
        .read(move |c| {
            let count = |sql: &str| c.query_row(sql, [space_no], |r| r.get::<_, i64>(0));
            Ok::<_, vigie_core::StoreError>((
                count("SELECT count(*) FROM events WHERE space_no = ?1")?,
                count("SELECT count(*) FROM alerts WHERE space_no = ?1")?,
                count("SELECT count(*) FROM cases WHERE space_no = ?1")?,
            ))
        })
        .await;
    let xdr = match counts {
        Ok((events, alerts, cases)) => format!("{events} events in the XDR · {alerts} alerts · {cases} cases"),
        Err(e) => {
            tracing::debug!(error = %e, "cannot count the XDR's events");
            "XDR counts unavailable".into()
        }
    };
    let mails = *mailbox.watch().borrow();
    let failed = if sent.failed > 0 { format!(" · {} failed", sent.failed) } else { String::new() };
    format!("{} interactions sent · {} blocked · {} coached{failed} · {xdr} · {mails} e-mails caught", sent.ok, sent.blocked, sent.coached)
}
