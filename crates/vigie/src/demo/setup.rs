//! What `vigie demo` puts in place before its traffic. The organisation (people, starter
//! policies, default rules and playbook, the `soc` channel, the analyst on duty) is added until
//! a run finishes setting it up and saves [`MARKER`] in the data directory; later runs change none
//! of it, so what a person edited, disabled or deleted stays that way. Every run makes its own
//! credentials (a firewall token for the traffic, an XDR key for the console, the previous ones
//! revoked) and points the `soc` channel at its mail sink.
use crate::org::{self, ANALYST, MEMBERS};
use crate::serve::{Running, RunningXdr};
use crate::traffic;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vigie_core::auth::{Principal, Role};
use vigie_core::config::Config;
use vigie_xdr::keys::{Caller, Scope};

/// The file a run saves in the data directory once the organisation is set up.
pub const MARKER: &str = "demo-setup-complete";
/// The name of the XDR key the demo makes for the console; each run revokes the previous one.
pub const CONSOLE_KEY: &str = "demo console";
/// How long a console key works.
pub const CONSOLE_KEY_DAYS: i64 = 7;
/// Who the demo's XDR keys are created by (so a person's key of the same name is left alone).
const KEY_CREATOR: &str = "vigie demo";
/// The name of the firewall token the traffic is sent with; each run revokes the previous one.
const TRAFFIC_TOKEN: &str = "demo traffic";
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
pub const SOC_CHANNEL: &str = "soc";
/// How long one request of the set-up may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the demo set up, for the welcome text, the traffic and the live counts.
pub struct Setup {
    /// The firewall token the traffic is sent with.
    pub ingest_token: String,
    /// The XDR key for the console, made on this run.
    pub console_key: String,
    /// The default space's number (for the live counts).
    pub space_no: i64,
    /// Whether an earlier run had set the organisation up (this one added none of it).
    pub resumed: bool,
    /// Starter policies created on this run.
    pub policies_created: usize,
    /// Default rules (and the default playbook) enabled on this run.
    pub defaults_enabled: Option<usize>,
    /// People imported into the directory on this run.
    pub people_imported: Option<usize>,
    /// What became of the `soc` channel.
    pub soc: Soc,
    /// The analyst on duty, when set on this run.
    pub on_duty_set: Option<String>,
}

/// What became of the `soc` channel on this run.
pub enum Soc {
    /// Created, through the mail sink.
    Created,
    /// Pointed at this run's mail sink (host, port and TLS; nothing else changed).
    Moved,
    /// Deleted after the set-up: not created again.
    Missing,
    /// Could not be pointed at the mail sink (why).
    NotMoved(String),
}

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join(MARKER)
}

/// Everything the demo needs before traffic.
pub async fn set_up(cfg: &Config, fw: &Running, x: &RunningXdr, sink: SocketAddr) -> anyhow::Result<Setup> {
    let resumed = marker(&cfg.data_dir).exists();
    let tenant = fw
        .state
        .auth
        .tenant_by_name(&cfg.tenant_name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot find tenant {:?}: {e}", cfg.tenant_name))?;
    let system = traffic::system(tenant.id, "demo");
    let policies_created = if resumed { 0 } else { traffic::seed(&fw.state, &system, traffic::starter_policies()).await? };
    let ingest_token = traffic_token(fw, &system).await?;

    let space = x.state.keys.ensure_space(&cfg.tenant_name).await.context("cannot find the default space")?;
    let id = space.id.to_string();
    let space_no: i64 = x
        .state
        .store
        .read(move |c| c.query_row("SELECT no FROM spaces WHERE id = ?1", [id], |r| r.get(0)).map_err(vigie_core::StoreError::from))
        .await?;
    // The default content is installed in every space, disabled; the demo enables it while it
    // sets up (a later run keeps what the user changed).
    let defaults_enabled = if resumed {
        None
    } else {
        let n = vigie_xdr::rules::set_defaults_enabled(&x.state, space_no, true).await?;
        vigie_xdr::playbooks::set_defaults_enabled(&x.state, space_no, true).await?;
        Some(n)
    };

    let console_key = console_key(x, space.id).await?;
    let caller =
        x.state.keys.authenticate(&console_key).await.map_err(|e| anyhow::anyhow!("the new console key does not work: {}", e.message))?;
    let people_imported = if resumed { None } else { import_people(crate::serve::reachable(x.addr), &console_key).await? };
    let soc = soc_channel(cfg, x, caller, sink, resumed).await?;
    let on_duty_set = match space.on_duty {
        Some(_) => None,
        None if resumed => None,
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
    if !resumed {
        save_marker(&cfg.data_dir)?;
    }
    Ok(Setup { ingest_token, console_key, space_no, resumed, policies_created, defaults_enabled, people_imported, soc, on_duty_set })
}

/// The last step of the set-up: later runs find the organisation in place.
fn save_marker(data_dir: &Path) -> anyhow::Result<()> {
    let text = format!(
        "vigie demo set this data directory up on {}: the people directory, the starter policies, the default rules and \
         playbook, the soc channel and the analyst on duty.\nLater runs reuse them and change nothing a person edited. \
         Delete this file to have the next run add what is missing again (and enable the default rules and playbook).\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let path = marker(data_dir);
    std::fs::write(&path, text).with_context(|| format!("cannot write {} (is the data directory writable?)", path.display()))
}

/// Revokes the previous runs' traffic tokens and makes one that does not expire, so a demo left
/// running for days keeps sending.
async fn traffic_token(fw: &Running, system: &Principal) -> anyhow::Result<String> {
    let ours = Some(system.label());
    let mut after = None;
    loop {
        let page = fw
            .state
            .auth
            .list_tokens(system.tenant_id, after, 200)
            .await
            .map_err(|e| anyhow::anyhow!("cannot list the API tokens: {e}"))?;
        // A page holds one more than asked when more follow.
        for t in page.iter().take(200).filter(|t| t.name == TRAFFIC_TOKEN && t.created_by == ours && t.revoked_at.is_none()) {
            fw.state
                .auth
                .revoke_token(system.tenant_id, t.id)
                .await
                .map_err(|e| anyhow::anyhow!("cannot revoke the previous traffic token: {e}"))?;
        }
        if page.len() <= 200 {
            break;
        }
        after = page.get(199).map(|t| t.id);
    }
    let (_, token) = fw
        .state
        .auth
        .create_token(system, TRAFFIC_TOKEN, Role::Ingest, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the demo's firewall token: {e}"))?;
    Ok(token)
}

/// Revokes the previous runs' console keys and makes a new one, valid [`CONSOLE_KEY_DAYS`] days.
async fn console_key(x: &RunningXdr, space: uuid::Uuid) -> anyhow::Result<String> {
    let mut after = None;
    loop {
        let page = x.state.keys.list(space, after, 500).await.map_err(|e| anyhow::anyhow!("cannot list the XDR keys: {}", e.message))?;
        let ours =
            |k: &&vigie_xdr::keys::ApiKey| k.name == CONSOLE_KEY && k.created_by.as_deref() == Some(KEY_CREATOR) && k.revoked_at.is_none();
        for k in page.iter().take(500).filter(ours) {
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
        expires_at: Some(chrono::Utc::now() + chrono::Duration::days(CONSOLE_KEY_DAYS)),
        ..Default::default()
    };
    let created = x
        .state
        .keys
        .create(space, new, Some(KEY_CREATOR.into()))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the console key: {}", e.message))?;
    Ok(created.secret_key)
}

/// Imports the members the directory lacks (by user id), through the API as an operator would;
/// those already there are left as they are. The number imported, if any.
async fn import_people(xdr: SocketAddr, key: &str) -> anyhow::Result<Option<usize>> {
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().context("cannot build an HTTP client")?;
    let base = format!("http://{xdr}/api/v1/people");
    let r = http.get(format!("{base}?limit=500")).bearer_auth(key).send().await.context("cannot reach the XDR's people directory")?;
    let status = r.status();
    let listed: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the people directory answered {status}: {listed}");
    }
    let known: std::collections::HashSet<&str> =
        listed["items"].as_array().into_iter().flatten().filter_map(|p| p["user_id"].as_str()).collect();
    let missing: Vec<usize> = (0..MEMBERS.len()).filter(|i| !known.contains(traffic::person(*i).to_string().as_str())).collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let r = http
        .post(format!("{base}/import"))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(org::people_csv_of(chrono::Utc::now().date_naive(), &missing))
        .send()
        .await
        .context("cannot reach the XDR's people directory")?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("the people import was refused ({status}): {body}");
    }
    Ok(Some(body["rows"].as_u64().unwrap_or_default() as usize))
}

/// Creates the `soc` e-mail channel while setting up, or points it at this run's mail sink. The
/// sink listens on loopback on a random port, which channels may only use with private
/// destinations allowed: allowed here, for this channel alone, not for the whole XDR.
async fn soc_channel(cfg: &Config, x: &RunningXdr, caller: Caller, sink: SocketAddr, resumed: bool) -> anyhow::Result<Soc> {
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
    let describe = |e: vigie_core::http::ApiError| {
        let fields: Vec<String> = e.fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
        format!("{} {}", e.message, fields.join("; "))
    };
    let address =
        || SettingsInput { host: Some(sink.ip().to_string()), port: Some(sink.port()), tls: Some(SmtpTls::None), ..Default::default() };
    let axum::Json(page) = vigie_xdr::notify::channels_list(
        axum::extract::State(st.clone()),
        auth(&caller),
        ApiQuery(ChannelListParams { limit: Some(500), cursor: None }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot list the notification channels: {}", describe(e)))?;
    match page.items.iter().find(|c| c.name == SOC_CHANNEL) {
        Some(c) => {
            // Only where it sends: whether it is enabled, its recipients and sender are the user's.
            let patch = ChannelPatch { settings: Some(address()), ..Default::default() };
            let moved = vigie_xdr::notify::channels_update(
                axum::extract::State(st),
                auth(&caller),
                axum::extract::Path(c.id.clone()),
                ApiJson(patch),
            )
            .await;
            Ok(match moved {
                Ok(_) => Soc::Moved,
                Err(e) => {
                    let why = describe(e);
                    tracing::warn!(channel = %c.id, error = %why, "cannot point the soc channel at the demo's mail sink");
                    Soc::NotMoved(why)
                }
            })
        }
        None if resumed => Ok(Soc::Missing),
        None => {
            let mut settings = address();
            settings.from = Some(format!("Vigie <vigie@{}>", org::DOMAIN));
            settings.to = Some(vec![format!("soc@{}", org::DOMAIN)]);
            let new = NewChannel {
                name: SOC_CHANNEL.into(),
                kind: ChannelKind::Email,
                enabled: Some(true),
                min_severity: None,
                rules: None,
                templates: None,
                settings,
            };
            let _ = vigie_xdr::notify::channels_create(axum::extract::State(st), auth(&caller), ApiJson(new))
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the {SOC_CHANNEL:?} channel: {}", describe(e)))?;
            Ok(Soc::Created)
        }
    }
}

/// `caller` as a handler's extractor gives it.
fn auth<S: vigie_xdr::keys::NeedsScope>(caller: &Caller) -> vigie_xdr::keys::Authorized<S> {
    vigie_xdr::keys::Authorized(caller.clone(), std::marker::PhantomData)
}
