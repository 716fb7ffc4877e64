//! `vigie serve`: opens the halves, runs the first-start bootstrap, and serves until SIGINT or
//! SIGTERM, then shuts down gracefully.
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_core::auth::Bootstrap;
use vigie_core::config::{Config, ServeRole};
use vigie_firewall::{FirewallOptions, FirewallState};
use vigie_xdr::{XdrOptions, XdrState};

/// A running firewall: its state, address and the task serving it.
pub struct Running {
    /// Shared state (the demo drives it directly).
    pub state: FirewallState,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What the first start created, if this was the first start.
    pub bootstrap: Option<Bootstrap>,
    /// The serving task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A running XDR.
pub struct RunningXdr {
    /// Shared state.
    pub state: XdrState,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The serving task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The halves a process runs.
pub struct Halves {
    /// The firewall, unless the role is `xdr`.
    pub firewall: Option<Running>,
    /// The XDR, unless the role is `firewall`.
    pub xdr: Option<RunningXdr>,
}

/// The description that marks the webhook `serve` creates from the firewall to its own XDR.
pub const XDR_WEBHOOK: &str = "Vigie XDR intake (created by vigie serve)";
/// The event types it carries (default content 7).
pub const XDR_EVENTS: &[&str] = &["interaction.policy_violated", "interaction.high_risk", "alert.severity_critical", "alert.severity_high"];

/// What a caller gives the halves besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// A mail sink the process runs (`vigie demo`): the XDR console shows its messages.
    pub mail_sink: Option<vigie_xdr::mailsink::Mailbox>,
}

/// Starts the halves of `cfg.role` without connecting them (see [`connect`]). When the
/// firewall cannot start after the XDR did, `shutdown` is cancelled and the XDR awaited before
/// the error is returned, so nothing keeps serving.
pub async fn start_halves(cfg: &Config, shutdown: CancellationToken, extras: Extras) -> anyhow::Result<Halves> {
    let xdr = match cfg.role {
        ServeRole::Firewall => None,
        _ => Some(start_xdr(cfg, shutdown.clone(), extras).await?),
    };
    // The firewall may deliver over plain http to its own XDR on loopback, and only there.
    let trusted: Vec<SocketAddr> = xdr.iter().map(|x| reachable(x.addr)).collect();
    let firewall = match cfg.role {
        ServeRole::Xdr => None,
        _ => match start_firewall(cfg, shutdown.clone(), trusted).await {
            Ok(f) => Some(f),
            Err(e) => {
                shutdown.cancel();
                if let Err(stopped) = stop(Halves { firewall: None, xdr }).await {
                    tracing::error!(error = %format!("{stopped:#}"), "the XDR did not stop cleanly");
                }
                return Err(e);
            }
        },
    };
    Ok(Halves { firewall, xdr })
}

/// Waits for the halves' servers to finish (after their shutdown token was cancelled): both are
/// awaited even when the first failed; the first error is returned.
pub async fn stop(halves: Halves) -> anyhow::Result<()> {
    let ended = |r: Result<std::io::Result<()>, tokio::task::JoinError>, half: &str| match r {
        Ok(r) => r.with_context(|| format!("the {half} server stopped with an error")),
        Err(e) => Err(anyhow::Error::new(e).context(format!("the {half} server task failed"))),
    };
    let mut first = Ok(());
    if let Some(fw) = halves.firewall {
        first = first.and(ended(fw.task.await, "firewall"));
    }
    if let Some(x) = halves.xdr {
        first = first.and(ended(x.task.await, "XDR"));
    }
    first
}

/// The address a client on this host reaches a server listening on `a` at: an unspecified IP
/// (`0.0.0.0`, `::`) made loopback.
pub fn reachable(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), a.port()),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), a.port()),
        _ => a,
    }
}

/// Opens and starts the XDR half.
pub async fn start_xdr(cfg: &Config, shutdown: CancellationToken, extras: Extras) -> anyhow::Result<RunningXdr> {
    let mut state = vigie_xdr::open(XdrOptions::from_config(cfg), Arc::new(SystemClock))
        .with_context(|| format!("cannot open the XDR database in {}", cfg.data_dir.display()))?;
    state.secure_cookies = cfg.secure_cookies;
    let space = state.keys.ensure_space(&cfg.tenant_name).await.context("cannot create the default space")?;
    state.mail_sink = extras.mail_sink.map(|mailbox| vigie_xdr::state::MailSink { mailbox, space_id: space.id });
    let listener = tokio::net::TcpListener::bind(cfg.xdr_addr)
        .await
        .with_context(|| format!("cannot listen on {} (is another process using it? pass --xdr-addr)", cfg.xdr_addr))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(vigie_xdr::serve(listener, state.clone(), shutdown));
    tracing::info!(%addr, "XDR listening");
    Ok(RunningXdr { state, addr, task })
}

/// Opens and starts the firewall half; `trusted` are the addresses it may deliver to over
/// plain http although private (its own XDR).
pub async fn start_firewall(cfg: &Config, shutdown: CancellationToken, trusted: Vec<SocketAddr>) -> anyhow::Result<Running> {
    let mut opts = FirewallOptions::from_config(cfg);
    opts.webhooks.client.trusted = trusted;
    let state = vigie_firewall::open(opts, Arc::new(SystemClock))
        .with_context(|| format!("cannot open the firewall database in {}", cfg.data_dir.display()))?;
    // Listening first: a first start that cannot listen must not create the admin, whose
    // generated password would then never be shown.
    let listener = tokio::net::TcpListener::bind(cfg.firewall_addr)
        .await
        .with_context(|| format!("cannot listen on {} (is another process using it? pass --firewall-addr)", cfg.firewall_addr))?;
    let bootstrap = state
        .auth
        .bootstrap(&cfg.tenant_name, &cfg.admin_email, cfg.admin_password.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("first-start setup failed: {e}"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(vigie_firewall::serve(listener, state.clone(), shutdown));
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "firewall listening");
    Ok(Running { state, addr, bootstrap, task })
}

/// Default content 7: a webhook from the firewall's tenant to the XDR intake of the space of the
/// same name, carrying the events the SOC needs, authenticated by a key with `events_write`.
/// Created once; if the XDR moved to another address, the webhook follows it, and if it was
/// disabled (by a person, or by the dispatcher after failures) it is enabled again, since events
/// would otherwise silently stop reaching the XDR.
///
/// The webhook is found by its description, [`XDR_WEBHOOK`], which a tenant admin can also give
/// a webhook: the webhook store keeps no mark of the webhooks the server made
/// (`create_system` only widens the URL check), so there is nothing sturdier to find it by.
pub async fn connect(cfg: &Config, fw: &Running, xdr: &RunningXdr) -> anyhow::Result<()> {
    let tenant = fw.state.auth.tenant_by_name(&cfg.tenant_name).await.map_err(|e| anyhow::anyhow!("tenant {:?}: {e}", cfg.tenant_name))?;
    let system = crate::traffic::system(tenant.id, "vigie serve");
    let url = format!("http://{}/api/v1/events", reachable(xdr.addr));
    let existing = fw.state.webhooks.list(tenant.id, None, None, 500).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if let Some(w) = existing.iter().find(|w| w.description == XDR_WEBHOOK) {
        let moved = w.url != url;
        if moved || !w.active {
            if !w.active {
                tracing::warn!(
                    webhook = %w.id,
                    reason = w.disabled_reason.as_deref().unwrap_or("disabled through the API or the console"),
                    "the webhook to the XDR was disabled: enabling it again so that events reach the XDR"
                );
            }
            let patch = vigie_webhook::model::WebhookPatch {
                url: moved.then(|| url.clone()),
                active: (!w.active).then_some(true),
                ..Default::default()
            };
            fw.state
                .webhooks
                .update_system(&system, &w.id, patch)
                .await
                .map_err(|e| anyhow::anyhow!("cannot point the XDR webhook at {url} and enable it: {}", e.message))?;
        }
        return Ok(());
    }
    let space = xdr.state.keys.ensure_space(&cfg.tenant_name).await?;
    let key = xdr
        .state
        .keys
        .create(
            space.id,
            vigie_xdr::keys::NewKey {
                name: "firewall webhook".into(),
                scopes: vec!["events_write".into()],
                default_source: Some(cfg.event_source.clone()),
                ..Default::default()
            },
            Some("vigie serve".into()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the firewall's XDR key: {}", e.message))?;
    let new = vigie_webhook::model::NewWebhook {
        url,
        events: XDR_EVENTS.iter().map(|s| (*s).to_owned()).collect(),
        active: Some(true),
        description: Some(XDR_WEBHOOK.into()),
        headers: None,
        auth_token: Some(key.secret_key),
        format: None,
        sourcetype: None,
        intake_key: None,
        batch_max: None,
        batch_ms: None,
        max_in_flight: None,
    };
    fw.state
        .webhooks
        .create_system(&system, new)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the webhook to the XDR: {}", e.message))?;
    tracing::info!("connected the firewall to the XDR intake (webhook and key created)");
    Ok(())
}

/// Prints what the first start created; the generated password is shown here once and never
/// written to a log.
pub fn print_bootstrap(b: &Bootstrap) {
    println!("First start: created tenant {:?} and admin {}", b.tenant.name, b.admin.email);
    match &b.generated_password {
        Some(p) => println!("Admin password (shown once; change it with POST /api/v1/auth/password): {p}"),
        None => println!("Admin password: the one given in VIGIE_ADMIN_PASSWORD"),
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing requests in flight and queued writes");
        token.cancel();
    });
}

/// `vigie serve`.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let halves = start_halves(&cfg, shutdown.clone(), Extras::default()).await?;
    // Shown before anything else can fail: the password exists now.
    if let Some(b) = halves.firewall.as_ref().and_then(|fw| fw.bootstrap.as_ref()) {
        print_bootstrap(b);
    }
    if let (Some(fw), Some(x)) = (&halves.firewall, &halves.xdr)
        && let Err(e) = connect(&cfg, fw, x).await
    {
        shutdown.cancel();
        if let Err(stopped) = stop(halves).await {
            tracing::error!(error = %format!("{stopped:#}"), "the servers did not stop cleanly");
        }
        return Err(e);
    }
    if let Some(fw) = &halves.firewall {
        println!("Firewall API: http://{}/api/v1 (OpenAPI: http://{}/api/v1/openapi.json)", fw.addr, fw.addr);
    }
    if let Some(x) = &halves.xdr {
        println!("XDR API:      http://{}/api/v1 (OpenAPI: http://{}/api/v1/openapi.json)", x.addr, x.addr);
    }
    stop(halves).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `vigie keys create`: works on the data directory, also while the server runs; prints the
/// key alone on the last line.
pub async fn create_key(
    cfg: Config,
    space: &str,
    name: &str,
    scopes: Vec<String>,
    source: Option<String>,
    signed: bool,
    days: Option<u32>,
) -> anyhow::Result<()> {
    let state = vigie_xdr::open(XdrOptions::from_config(&cfg), Arc::new(SystemClock))
        .with_context(|| format!("cannot open the XDR database in {}", cfg.data_dir.display()))?;
    let space = state.keys.ensure_space(space).await.context("cannot create the space")?;
    let new = vigie_xdr::keys::NewKey {
        name: name.to_owned(),
        scopes,
        default_source: source,
        signed,
        expires_at: days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
    };
    let created = state.keys.create(space.id, new, Some("vigie keys create".into())).await.map_err(|e| {
        let fields: Vec<String> = e.fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
        anyhow::anyhow!("{}{}", e.message, if fields.is_empty() { String::new() } else { format!(" ({})", fields.join("; ")) })
    })?;
    state.store.close().await;
    let scopes: Vec<&str> = created.key.scopes.iter().map(|s| s.as_str()).collect();
    println!("Created key {:?} ({}) in space {:?} with scopes {}", created.key.name, created.key.id, space.name, scopes.join(","));
    if let Some(s) = &created.signing_secret {
        println!("Signing secret (deliveries must be signed with it; shown once): {s}");
    }
    println!("The key is shown once:");
    println!("{}", created.secret_key);
    Ok(())
}

/// `vigie tenants create`.
pub async fn create_tenant(cfg: Config, name: &str, admin_email: &str) -> anyhow::Result<()> {
    let state = vigie_firewall::open(FirewallOptions::from_config(&cfg), Arc::new(SystemClock))
        .with_context(|| format!("cannot open the firewall database in {}", cfg.data_dir.display()))?;
    let b = state.auth.create_tenant(name, admin_email, None).await.map_err(|e| match e {
        vigie_core::auth::AuthError::Invalid(f) => {
            anyhow::anyhow!("{}", f.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))
        }
        e => anyhow::anyhow!("{e}"),
    })?;
    state.store.close().await;
    println!("Created tenant {:?} ({}) with admin {}", b.tenant.name, b.tenant.id, b.admin.email);
    println!("Admin password (shown once): {}", b.generated_password.unwrap_or_default());
    Ok(())
}
