//! What `vigie demo` puts in place before its traffic. The organisation (people, starter
//! policies, default rules and playbook, the `soc` channel, the analyst on duty) is added until
//! a run finishes setting it up and saves [`MARKER`] in the data directory, naming the tenant
//! and the XDR space it set up; later runs on the same databases change none of it, so what a
//! person edited, disabled or deleted stays that way. A marker naming others (the databases
//! were replaced or restored) or unreadable counts as absent. Every run makes its own
//! credentials (a firewall token for the traffic, an XDR key for the console, the previous ones
//! revoked) and points the `soc` channel at its mail sink, unless a person pointed it at a real
//! mail server.
use crate::org::{self, ANALYST, MEMBERS};
use crate::serve::{Running, RunningXdr};
use crate::traffic;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use vigie_core::auth::{Principal, Role};
use vigie_core::config::Config;
use vigie_xdr::keys::{Caller, Scope};

/// The file a run saves in the data directory once the organisation is set up: its first two
/// lines are `tenant <id>` and `space <id>`, the databases it was set up in.
pub const MARKER: &str = "demo-setup-complete";
/// The name of the XDR key the demo makes for the console; each run revokes the previous one.
pub const CONSOLE_KEY: &str = "demo console";
/// How long a console key works.
pub const CONSOLE_KEY_DAYS: i64 = 7;
/// Who the demo's XDR keys are created by (so a person's key of the same name is left alone).
const KEY_CREATOR: &str = "vigie demo";
/// The name of the firewall token the traffic is sent with; each run revokes the previous one.
const TRAFFIC_TOKEN: &str = "demo traffic";
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
    /// Why the marker an earlier run left was not believed (this run set up again), if so.
    pub stale_marker: Option<String>,
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
    /// Left as it is: it sends through this host, not a demo's mail sink, or has no host (a
    /// person set it).
    Kept(Option<String>),
    /// Deleted after the set-up: not created again.
    Missing,
    /// Could not be pointed at the mail sink (why).
    NotMoved(String),
}

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join(MARKER)
}

/// What the marker in the data directory says about the databases there.
#[derive(Debug, PartialEq, Eq)]
pub enum Marker {
    /// No marker: no run finished setting up.
    Absent,
    /// Saved by a run that set up this tenant and space: this run resumes.
    Ours,
    /// Saved for other databases (replaced or restored since), or unreadable: this run sets up
    /// as a first one would. Why.
    Stale(String),
}

/// Reads the marker (`read`: the file's text, or why it could not be read) against the
/// tenant and space the databases hold now.
fn marker_state(read: std::io::Result<String>, tenant: Uuid, space: Uuid) -> Marker {
    let text = match read {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Marker::Absent,
        Err(e) => return Marker::Stale(format!("it cannot be read: {e}")),
    };
    let field =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).and_then(|v| Uuid::parse_str(v.trim()).ok());
    match (field("tenant"), field("space")) {
        (Some(t), Some(s)) if t == tenant && s == space => Marker::Ours,
        (Some(t), Some(s)) => Marker::Stale(format!(
            "it names tenant {t} and XDR space {s}, the databases hold tenant {tenant} and space {space}: they were made anew"
        )),
        _ => Marker::Stale("it does not name the tenant and XDR space it was saved for (an older vigie, or edited)".to_owned()),
    }
}

/// Everything the demo needs before traffic.
pub async fn set_up(cfg: &Config, fw: &Running, x: &RunningXdr, sink: SocketAddr) -> anyhow::Result<Setup> {
    let tenant = fw
        .state
        .auth
        .tenant_by_name(&cfg.tenant_name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot find tenant {:?}: {e}", cfg.tenant_name))?;
    let space = x.state.keys.ensure_space(&cfg.tenant_name).await.context("cannot find the default space")?;
    let (resumed, stale_marker) = match marker_state(std::fs::read_to_string(marker(&cfg.data_dir)), tenant.id, space.id) {
        Marker::Absent => (false, None),
        Marker::Ours => (true, None),
        Marker::Stale(why) => {
            tracing::warn!(marker = %marker(&cfg.data_dir).display(), why = %why, "the demo's set-up marker does not match the databases: setting up again");
            (false, Some(why))
        }
    };
    let system = traffic::system(tenant.id, "demo");
    let policies_created = if resumed { 0 } else { traffic::seed(&fw.state, &system, traffic::starter_policies()).await? };
    let ingest_token = traffic_token(fw, &system).await?;

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
        save_marker(&cfg.data_dir, tenant.id, space.id)?;
    }
    Ok(Setup {
        ingest_token,
        console_key,
        space_no,
        resumed,
        stale_marker,
        policies_created,
        defaults_enabled,
        people_imported,
        soc,
        on_duty_set,
    })
}

/// The last step of the set-up: later runs find the organisation in place.
fn save_marker(data_dir: &Path, tenant: Uuid, space: Uuid) -> anyhow::Result<()> {
    let text = format!(
        "tenant {tenant}\nspace {space}\n\nvigie demo set this data directory up on {}: the people directory, the starter policies, the default rules and \
         playbook, the soc channel and the analyst on duty.\nLater runs reuse them and change nothing a person edited. \
         Delete this file to have the next run add what is missing again (and enable the default rules and playbook); \
         it counts only for the tenant and XDR space above (databases made anew are set up again).\n",
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
        // What the console key may do: everything but sending events.
        scopes: Scope::ALL.iter().filter(|s| **s != Scope::EventsWrite).map(|s| s.as_str().to_owned()).collect(),
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

/// What to do with the `soc` channel on this run.
#[derive(Debug, PartialEq, Eq)]
enum SocPlan {
    /// Create it (setting up, and there is none).
    Create,
    /// Point the channel (its id) at this run's mail sink: it sends to loopback, i.e. an
    /// earlier run's sink.
    Point(String),
    /// Leave it: it sends through this host, which a person set (a real mail server), or has
    /// none (a person made it another kind of channel).
    Keep(Option<String>),
    /// None, and set up already: a person deleted it.
    Missing,
}

/// What to do with the `soc` channel: `existing` is the channel's id and settings, if there
/// is one; `resumed`, whether the organisation was set up already.
fn soc_plan(existing: Option<(&str, &serde_json::Value)>, resumed: bool) -> SocPlan {
    match existing {
        None if resumed => SocPlan::Missing,
        None => SocPlan::Create,
        Some((id, settings)) => match settings.get("host").and_then(serde_json::Value::as_str) {
            Some(host) if is_loopback_host(host) => SocPlan::Point(id.to_owned()),
            host => SocPlan::Keep(host.map(str::to_owned)),
        },
    }
}

/// Whether a channel's host is this machine: where an earlier demo's mail sink listened.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

/// Creates the `soc` e-mail channel while setting up, or points it at this run's mail sink when
/// it sends to loopback (an earlier run's sink); one a person pointed at a real mail server is
/// kept. The sink listens on loopback on a random port, which channels may only use with private
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
    // As the XDR finds the channel a rule names: the exact name, else ignoring ASCII case.
    let soc =
        page.items.iter().find(|c| c.name == SOC_CHANNEL).or_else(|| page.items.iter().find(|c| c.name.eq_ignore_ascii_case(SOC_CHANNEL)));
    match soc_plan(soc.map(|c| (c.id.as_str(), &c.settings)), resumed) {
        SocPlan::Point(id) => {
            // Only where it sends: whether it is enabled, its recipients and sender are the user's.
            let patch = ChannelPatch { settings: Some(address()), ..Default::default() };
            let moved = vigie_xdr::notify::channels_update(
                axum::extract::State(st),
                auth(&caller),
                axum::extract::Path(id.clone()),
                ApiJson(patch),
            )
            .await;
            Ok(match moved {
                Ok(_) => Soc::Moved,
                Err(e) => {
                    let why = describe(e);
                    tracing::warn!(channel = %id, error = %why, "cannot point the soc channel at the demo's mail sink");
                    Soc::NotMoved(why)
                }
            })
        }
        SocPlan::Keep(host) => Ok(Soc::Kept(host)),
        SocPlan::Missing => Ok(Soc::Missing),
        SocPlan::Create => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TENANT: Uuid = Uuid::from_u128(1);
    const SPACE: Uuid = Uuid::from_u128(2);

    fn saved(tenant: Uuid, space: Uuid) -> std::io::Result<String> {
        Ok(format!("tenant {tenant}\nspace {space}\n\nvigie demo set this data directory up on 2025-01-01.\n"))
    }

    #[test]
    fn a_marker_counts_only_for_the_tenant_and_space_it_names() {
        assert_eq!(marker_state(saved(TENANT, SPACE), TENANT, SPACE), Marker::Ours);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(marker_state(Err(missing), TENANT, SPACE), Marker::Absent);
        // The databases were deleted and made anew, the marker kept: set up again.
        let Marker::Stale(why) = marker_state(saved(TENANT, Uuid::from_u128(3)), TENANT, SPACE) else { panic!("a new space") };
        assert!(why.contains("made anew") && why.contains(&SPACE.to_string()), "{why}");
        assert!(matches!(marker_state(saved(Uuid::from_u128(9), SPACE), TENANT, SPACE), Marker::Stale(_)));
        // An older demo's marker (no ids), or one that cannot be read: set up again.
        assert!(matches!(marker_state(Ok("vigie demo set this data directory up.".into()), TENANT, SPACE), Marker::Stale(_)));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let Marker::Stale(why) = marker_state(Err(denied), TENANT, SPACE) else { panic!("unreadable") };
        assert!(why.contains("cannot be read"), "{why}");
    }

    #[test]
    fn a_saved_marker_reads_as_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        save_marker(dir.path(), TENANT, SPACE).expect("save");
        assert_eq!(marker_state(std::fs::read_to_string(marker(dir.path())), TENANT, SPACE), Marker::Ours);
    }

    #[test]
    fn the_soc_channel_is_repointed_only_when_it_sends_to_an_earlier_sink() {
        let on = |host: &str| json!({"host": host, "port": 2525, "tls": "none"});
        for host in ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost", "LocalHost."] {
            assert_eq!(soc_plan(Some(("ch_1", &on(host))), true), SocPlan::Point("ch_1".into()), "{host}");
        }
        for host in ["smtp.example.com", "10.0.0.5", "192.168.1.2", "localhost.example.com"] {
            assert_eq!(soc_plan(Some(("ch_1", &on(host))), true), SocPlan::Keep(Some(host.into())), "{host}");
        }
        assert_eq!(soc_plan(Some(("ch_1", &json!({"url": "set"}))), false), SocPlan::Keep(None), "a Slack channel named soc");
        assert_eq!(soc_plan(None, false), SocPlan::Create);
        assert_eq!(soc_plan(None, true), SocPlan::Missing, "deleted after the set-up: not created again");
    }
}
