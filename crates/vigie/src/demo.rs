//! `vigie demo`: serves Vigie and plays a few dozen people using AI platforms through the real
//! HTTP API, at `--rate` interactions per second, with a live one-line summary.
use crate::serve::{cancel_on_signal, print_bootstrap, start};
use crate::traffic;
use anyhow::Context;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::auth::Role;
use vigie_core::config::Config;

const PEOPLE: usize = 36;
const OFFENDER: usize = 7;

/// `vigie demo`.
pub async fn run(cfg: Config, rate: f64) -> anyhow::Result<()> {
    if !(rate > 0.0 && rate <= 10_000.0) {
        anyhow::bail!("--rate must be between 0 and 10000 interactions per second");
    }
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let halves = start(&cfg, shutdown.clone()).await?;
    let Some(fw) = halves.firewall else { anyhow::bail!("the demo needs the firewall half; run it with --role all or firewall") };
    let tenant = fw
        .state
        .auth
        .tenant_by_name(&cfg.tenant_name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot find tenant {:?}: {e}", cfg.tenant_name))?;
    let system = traffic::system(tenant.id, "demo");
    let created = traffic::seed(&fw.state, &system, traffic::starter_policies()).await?;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let (_, token) =
        fw.state.auth.create_token(&system, "demo traffic", Role::Ingest, Some(expires)).await.map_err(|e| anyhow::anyhow!("{e}"))?;

    println!();
    println!("Vigie demo");
    match &fw.bootstrap {
        Some(b) => print_bootstrap(b),
        None => println!(
            "Resuming the data in {}; log in as {} with the password printed on the first run.",
            cfg.data_dir.display(),
            cfg.admin_email
        ),
    }
    if created > 0 {
        println!("Installed {created} starter policies (block DeepSeek, payment data and secrets; coach on unvetted platforms).");
    }
    const CONSOLE_SCOPES: &str =
        "events_read,alerts_read,alerts_write,cases_read,cases_write,rules_read,rules_write,playbooks_read,playbooks_write,admin";
    println!("Firewall console: http://{}/   (log in as {})", fw.addr, cfg.admin_email);
    if let Some(x) = &halves.xdr {
        println!(
            "XDR console:      http://{}/   (log in with an XDR key: vigie keys create --data-dir {} --space {} --scope {CONSOLE_SCOPES} --name console)",
            x.addr,
            cfg.data_dir.display(),
            cfg.tenant_name,
        );
    }
    println!("Firewall API:  http://{}/api/v1   (OpenAPI: http://{}/api/v1/openapi.json)", fw.addr, fw.addr);
    println!("Log in:        curl -s http://{}/api/v1/auth/login -d '{{\"email\":\"{}\",\"password\":\"…\"}}'", fw.addr, cfg.admin_email);
    println!("Interactions:  curl -s -H 'authorization: Bearer <token>' http://{}/api/v1/interactions", fw.addr);
    println!(
        "Webhooks:      curl -s -H 'authorization: Bearer <token>' http://{}/api/v1/webhooks -d '{{\"url\": \"https://…\", \"events\": [\"interaction.policy_violated\"]}}'",
        fw.addr
    );
    match &halves.xdr {
        Some(x) => println!(
            "XDR API:       http://{}/api/v1   (events from the firewall: GET /api/v1/events with a key with events_read; `vigie keys create`)",
            x.addr
        ),
        None => println!("The XDR half is not running (--role firewall)."),
    }
    // The default content is installed in every space, disabled; the demo enables it once, on
    // its first run (a later run keeps what the user changed).
    if let (Some(_), Some(x)) = (&fw.bootstrap, &halves.xdr) {
        let space = x.state.keys.ensure_space(&cfg.tenant_name).await.context("cannot find the default space")?;
        let id = space.id.to_string();
        let space_no: i64 = x
            .state
            .store
            .read(move |c| c.query_row("SELECT no FROM spaces WHERE id = ?1", [id], |r| r.get(0)).map_err(vigie_core::StoreError::from))
            .await?;
        let n = vigie_xdr::rules::set_defaults_enabled(&x.state, space_no, true).await?;
        println!(
            "Enabled the {n} default detection rules (policy violations on unvetted platforms, repeated high-risk use, financial data, critical firewall alerts)."
        );
        if vigie_xdr::playbooks::set_defaults_enabled(&x.state, space_no, true).await? > 0 {
            println!(
                "Enabled the default playbook \"AI platform violation response\" (it acts on people the directory knows: POST /api/v1/people/import)."
            );
        }
    }
    println!("Sending {rate} simulated interactions per second from {PEOPLE} people; Ctrl-C stops.");
    println!();

    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/interactions", fw.addr);
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let prompts = traffic::prompt_texts(5, 700);
    let mut report = tokio::time::interval(Duration::from_secs(2));
    let (mut sent, mut blocked, mut coached, mut failed) = (0u64, 0u64, 0u64, 0u64);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = report.tick() => {
                print!("\r{sent} interactions · {blocked} blocked · {coached} coached · {failed} failed   ");
                let _ = std::io::stdout().flush();
            }
            _ = tick.tick() => {
                // Half the traffic comes as an extension reports it (hash and classifications),
                // half as a proxy does (the text, scanned by the firewall).
                let body = if rng.random_bool(0.5) {
                    traffic::interaction(&mut rng, PEOPLE, Some(OFFENDER))
                } else {
                    let text = &prompts[rng.random_range(0..prompts.len())];
                    traffic::interaction_with_text(&mut rng, PEOPLE, text)
                };
                let resp = client.post(&url).bearer_auth(&token).json(&body).send().await;
                match resp {
                    Ok(r) if r.status().as_u16() == 201 => {
                        sent += 1;
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        match v.pointer("/decision/action").and_then(|a| a.as_str()) {
                            Some("block") => blocked += 1,
                            Some("coach") => coached += 1,
                            _ => {}
                        }
                    }
                    Ok(r) => {
                        failed += 1;
                        tracing::warn!(status = %r.status(), "the firewall refused a simulated interaction");
                    }
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(error = %e, "cannot reach the firewall");
                    }
                }
            }
        }
    }
    println!();
    fw.task.await.context("the firewall server task failed")??;
    if let Some(x) = halves.xdr {
        x.task.await.context("the XDR server task failed")??;
    }
    Ok(())
}
