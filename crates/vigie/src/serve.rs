//! `vigie serve`: opens the halves, runs the first-start bootstrap, and serves until SIGINT or
//! SIGTERM, then shuts down gracefully.
use anyhow::Context;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_core::auth::Bootstrap;
use vigie_core::config::{Config, ServeRole};
use vigie_firewall::{FirewallOptions, FirewallState};

/// A running firewall: its state, address and the task serving it.
pub struct Running {
    /// Shared state (the demo drives it directly).
    pub state: FirewallState,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// What the first start created, if this was the first start.
    pub bootstrap: Option<Bootstrap>,
    /// The serving task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens and starts the firewall half.
pub async fn start_firewall(cfg: &Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    if cfg.role == ServeRole::Xdr {
        anyhow::bail!("the XDR half is not part of this build yet; run with --role firewall");
    }
    if cfg.role == ServeRole::All {
        tracing::warn!("the XDR half is not part of this build yet; serving the firewall only");
    }
    let state = vigie_firewall::open(FirewallOptions::from_config(cfg), Arc::new(SystemClock))
        .with_context(|| format!("cannot open the firewall database in {}", cfg.data_dir.display()))?;
    let bootstrap = state
        .auth
        .bootstrap(&cfg.tenant_name, &cfg.admin_email, cfg.admin_password.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("first-start setup failed: {e}"))?;
    let listener = tokio::net::TcpListener::bind(cfg.firewall_addr)
        .await
        .with_context(|| format!("cannot listen on {} (is another process using it? pass --firewall-addr)", cfg.firewall_addr))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(vigie_firewall::serve(listener, state.clone(), shutdown));
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "firewall listening");
    Ok(Running { state, addr, bootstrap, task })
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
    let fw = start_firewall(&cfg, shutdown.clone()).await?;
    if let Some(b) = &fw.bootstrap {
        print_bootstrap(b);
    }
    println!("Firewall API: http://{}/api/v1 (OpenAPI: http://{}/api/v1/openapi.json)", fw.addr, fw.addr);
    fw.task.await.context("the firewall server task failed")?.context("the firewall server stopped with an error")?;
    tracing::info!("stopped");
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
