//! Configuration: read (TOML file, environment, flags — merged by the binary), then validated in
//! one pure step that converts every value and reports every problem at once, naming the key.
use crate::db::Durability;
use crate::secrets::MasterKey;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Configuration as read, before validation. Every key is optional; later sources override
/// earlier ones with [`RawConfig::overlay`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `all`, `firewall` or `xdr`.
    pub role: Option<String>,
    /// Directory of the databases and the secret key.
    pub data_dir: Option<PathBuf>,
    /// Listen address of the firewall API.
    pub firewall_addr: Option<String>,
    /// Listen address of the XDR API.
    pub xdr_addr: Option<String>,
    /// Allow webhooks to private or loopback addresses.
    pub allow_private_webhooks: Option<bool>,
    /// Mark the consoles' cookies `Secure` (the consoles are served over HTTPS, e.g. behind a
    /// TLS-terminating proxy).
    pub secure_cookies: Option<bool>,
    /// Name of the tenant created on first start.
    pub tenant_name: Option<String>,
    /// E-mail of the admin created on first start.
    pub admin_email: Option<String>,
    /// Password of the admin created on first start (generated and printed once if absent).
    pub admin_password: Option<String>,
    /// `source` of the events the firewall emits.
    pub event_source: Option<String>,
    /// `full` (fsync every commit) or `normal`.
    pub durability: Option<String>,
    /// The most writes grouped in one transaction.
    pub write_batch_max: Option<usize>,
    /// `text` or `json` logs.
    pub log_format: Option<String>,
    /// Base64 master key (otherwise `<data_dir>/secret.key`).
    pub secret_key: Option<String>,
    /// The longest text, in UTF-8 bytes, the firewall scans in one request.
    pub max_text_bytes: Option<usize>,
    /// Delays before each webhook delivery attempt (`["0s", "5s", "5m", …]`).
    pub webhook_retry_delays: Option<Vec<String>>,
    /// Jitter of each delay, a fraction below 1 (default 0.2).
    pub webhook_retry_jitter: Option<f64>,
    /// A webhook failing without a success this long is disabled (default `5d`).
    pub webhook_disable_after: Option<String>,
    /// Timeout of one webhook request (default `15s`).
    pub webhook_timeout: Option<String>,
    /// Delays before each notification delivery attempt (`["0s", "10s", "1m", …]`).
    pub notification_retry_delays: Option<Vec<String>>,
    /// Timeout of one notification (an HTTP request or an SMTP exchange; default `15s`).
    pub notification_timeout: Option<String>,
    /// The longest an XDR search runs before answering what it has (default `10s`).
    pub search_timeout: Option<String>,
    /// The most events an XDR search reads for stages after its filter (default 10,000).
    pub search_max_rows: Option<usize>,
}

/// The default webhook retry delays: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_WEBHOOK_DELAYS: &[&str] = &["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"];

/// The default notification retry delays: immediately, 10 s, 1 min, 5 min, 30 min, 2 h.
pub const DEFAULT_NOTIFICATION_DELAYS: &[&str] = &["0s", "10s", "1m", "5m", "30m", "2h"];

/// `250ms`, `0s`, `5s`, `5m`, `2h`, `1d`: a whole number and a unit.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// The longest text the firewall scans by default: 1 MiB.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 1 << 20;
/// The range `max_text_bytes` may take: 1 KiB to 64 MiB (the request body limit is six times it, room for JSON escapes).
pub const MAX_TEXT_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=64 << 20;

macro_rules! overlay_fields {
    ($base:ident, $over:ident, $($f:ident),*) => { $( if $over.$f.is_some() { $base.$f = $over.$f; } )* };
}

impl RawConfig {
    /// Parses a TOML config file's text; unknown keys are errors.
    pub fn from_toml(text: &str) -> Result<RawConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// `self` with every key that `over` sets replaced.
    pub fn overlay(mut self, over: RawConfig) -> RawConfig {
        overlay_fields!(
            self,
            over,
            role,
            data_dir,
            firewall_addr,
            xdr_addr,
            allow_private_webhooks,
            secure_cookies,
            tenant_name,
            admin_email,
            admin_password,
            event_source,
            durability,
            write_batch_max,
            log_format,
            secret_key,
            max_text_bytes,
            webhook_retry_delays,
            webhook_retry_jitter,
            webhook_disable_after,
            webhook_timeout,
            notification_retry_delays,
            notification_timeout,
            search_timeout,
            search_max_rows
        );
        self
    }
}

/// Which halves a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeRole {
    /// Both halves.
    All,
    /// The AI firewall only.
    Firewall,
    /// The XDR only.
    Xdr,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Halves to run.
    pub role: ServeRole,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Firewall listen address.
    pub firewall_addr: SocketAddr,
    /// XDR listen address.
    pub xdr_addr: SocketAddr,
    /// Whether webhooks may target private addresses.
    pub allow_private_webhooks: bool,
    /// Whether the consoles' cookies are marked `Secure`.
    pub secure_cookies: bool,
    /// First tenant's name.
    pub tenant_name: String,
    /// First admin's e-mail.
    pub admin_email: String,
    /// First admin's password, if given.
    pub admin_password: Option<String>,
    /// Event `source`.
    pub event_source: String,
    /// Commit durability.
    pub durability: Durability,
    /// Group-commit size limit.
    pub write_batch_max: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Master key given in configuration, if any.
    pub secret_key: Option<MasterKey>,
    /// The longest text the firewall scans, in UTF-8 bytes.
    pub max_text_bytes: usize,
    /// Delays before each webhook delivery attempt.
    pub webhook_retry_delays: Vec<std::time::Duration>,
    /// Jitter of each delay (fraction).
    pub webhook_retry_jitter: f64,
    /// Continuous failure after which a webhook is disabled.
    pub webhook_disable_after: std::time::Duration,
    /// Timeout of one webhook request.
    pub webhook_timeout: std::time::Duration,
    /// Delays before each notification delivery attempt.
    pub notification_retry_delays: Vec<std::time::Duration>,
    /// Timeout of one notification.
    pub notification_timeout: std::time::Duration,
    /// The longest an XDR search runs.
    pub search_timeout: std::time::Duration,
    /// The most events an XDR search reads for the stages after its filter.
    pub search_max_rows: usize,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key (`firewall_addr`).
    pub key: &'static str,
    /// What is wrong, with the value.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Validates `raw`, filling defaults; returns every problem found.
pub fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let mut bad = |key: &'static str, message: String| problems.push(ConfigProblem { key, message });
    let role = match raw.role.as_deref().unwrap_or("all") {
        "all" => ServeRole::All,
        "firewall" => ServeRole::Firewall,
        "xdr" => ServeRole::Xdr,
        other => {
            bad("role", format!("{other:?} is not a role; use all, firewall or xdr"));
            ServeRole::All
        }
    };
    let mut addr = |key: &'static str, v: Option<String>, default: &str| -> SocketAddr {
        let v = v.unwrap_or_else(|| default.to_owned());
        v.parse().unwrap_or_else(|_| {
            bad(key, format!("{v:?} is not an address; write IP:PORT, e.g. {default}"));
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    };
    let firewall_addr = addr("firewall_addr", raw.firewall_addr, "127.0.0.1:8080");
    let xdr_addr = addr("xdr_addr", raw.xdr_addr, "127.0.0.1:8090");
    let mut problems2 = Vec::new();
    let mut bad = |key: &'static str, message: String| problems2.push(ConfigProblem { key, message });
    if role == ServeRole::All && firewall_addr == xdr_addr && firewall_addr.port() != 0 {
        bad("xdr_addr", format!("{xdr_addr} is also the firewall's address; give the two halves different ports"));
    }
    let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("./vigie-data"));
    if data_dir.as_os_str().is_empty() {
        bad("data_dir", "is empty; name a directory".into());
    }
    let admin_email = raw.admin_email.unwrap_or_else(|| "admin@vigie.local".into());
    if let Err(e) = crate::auth::normalize_email(&admin_email) {
        bad("admin_email", format!("{}; write a full address such as admin@example.org", e.message));
    }
    if let Some(p) = &raw.admin_password
        && let Some(msg) = crate::auth::password::check_strength(p)
    {
        bad("admin_password", msg);
    }
    let tenant_name = raw.tenant_name.unwrap_or_else(|| "default".into());
    if tenant_name.trim().is_empty() {
        bad("tenant_name", "is empty".into());
    }
    let event_source = raw.event_source.unwrap_or_else(|| "noxys".into());
    if event_source.trim().is_empty() {
        bad("event_source", "is empty; the default is noxys".into());
    }
    let durability = match raw.durability.as_deref().unwrap_or("full") {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        other => {
            bad("durability", format!("{other:?} is not a durability; use full or normal"));
            Durability::Full
        }
    };
    let write_batch_max = raw.write_batch_max.unwrap_or(512);
    if !(1..=100_000).contains(&write_batch_max) {
        bad("write_batch_max", format!("{write_batch_max} is out of range; use 1 to 100000"));
    }
    let log_format = match raw.log_format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            bad("log_format", format!("{other:?} is not a log format; use text or json"));
            LogFormat::Text
        }
    };
    let max_text_bytes = raw.max_text_bytes.unwrap_or(DEFAULT_MAX_TEXT_BYTES);
    if !MAX_TEXT_BYTES_RANGE.contains(&max_text_bytes) {
        bad("max_text_bytes", format!("{max_text_bytes} is out of range; use 1024 (1 KiB) to 67108864 (64 MiB), default 1048576"));
    }
    let duration_hint = "write a whole number and a unit: 250ms, 5s, 5m, 2h, 1d";
    let mut delays = |key: &'static str, given: Option<Vec<String>>, default: &[&str]| {
        let raw = given.unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
        let mut out = Vec::with_capacity(raw.len());
        for d in &raw {
            match parse_duration(d) {
                Some(v) => out.push(v),
                None => bad(key, format!("{d:?} is not a delay; {duration_hint}")),
            }
        }
        if raw.is_empty() || raw.len() > 50 {
            bad(key, "give 1 to 50 delays; the first is usually 0s (deliver at once)".into());
        }
        out
    };
    let webhook_retry_delays = delays("webhook_retry_delays", raw.webhook_retry_delays, DEFAULT_WEBHOOK_DELAYS);
    let notification_retry_delays = delays("notification_retry_delays", raw.notification_retry_delays, DEFAULT_NOTIFICATION_DELAYS);
    let webhook_retry_jitter = raw.webhook_retry_jitter.unwrap_or(0.2);
    if !(0.0..1.0).contains(&webhook_retry_jitter) {
        bad("webhook_retry_jitter", format!("{webhook_retry_jitter} is out of range; use a fraction from 0 to below 1 (default 0.2)"));
    }
    let mut duration = |key: &'static str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.to_owned());
        parse_duration(&v).filter(|d| !d.is_zero()).unwrap_or_else(|| {
            bad(key, format!("{v:?} is not a positive duration; {duration_hint}"));
            std::time::Duration::from_secs(1)
        })
    };
    let webhook_disable_after = duration("webhook_disable_after", raw.webhook_disable_after, "5d");
    let webhook_timeout = duration("webhook_timeout", raw.webhook_timeout, "15s");
    let notification_timeout = duration("notification_timeout", raw.notification_timeout, "15s");
    let search_timeout = duration("search_timeout", raw.search_timeout, "10s");
    if notification_timeout > std::time::Duration::from_secs(300) {
        // A stop waits for deliveries in flight, and a lease lasts twice this long.
        bad("notification_timeout", format!("{}s is too long; at most 5m", notification_timeout.as_secs()));
    }
    let search_max_rows = raw.search_max_rows.unwrap_or(10_000);
    if !(1..=10_000_000).contains(&search_max_rows) {
        bad("search_max_rows", format!("{search_max_rows} is out of range; use 1 to 10,000,000 (default 10,000)"));
    }
    let secret_key = raw.secret_key.as_deref().and_then(|s| MasterKey::from_base64(s).map_err(|e| bad("secret_key", e)).ok());
    problems.extend(problems2);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Config {
        role,
        data_dir,
        firewall_addr,
        xdr_addr,
        allow_private_webhooks: raw.allow_private_webhooks.unwrap_or(false),
        secure_cookies: raw.secure_cookies.unwrap_or(false),
        tenant_name,
        admin_email,
        admin_password: raw.admin_password,
        event_source,
        durability,
        write_batch_max,
        log_format,
        secret_key,
        max_text_bytes,
        webhook_retry_delays,
        webhook_retry_jitter,
        webhook_disable_after,
        webhook_timeout,
        notification_retry_delays,
        notification_timeout,
        search_timeout,
        search_max_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = validate(RawConfig::default()).expect("defaults");
        assert_eq!(c.firewall_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.xdr_addr.to_string(), "127.0.0.1:8090");
        assert_eq!(c.role, ServeRole::All);
        assert_eq!(c.event_source, "noxys");
        assert_eq!(c.max_text_bytes, 1_048_576);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let raw = RawConfig::from_toml(
            "role = \"both\"\nfirewall_addr = \"localhost\"\ndurability = \"yes\"\nwrite_batch_max = 0\nadmin_email = \"admin@localhost\"\nmax_text_bytes = 10",
        )
        .expect("toml");
        let keys: Vec<_> = validate(raw).expect_err("invalid").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["role", "firewall_addr", "admin_email", "durability", "write_batch_max", "max_text_bytes"]);
    }

    #[test]
    fn webhook_delivery_settings_are_read_and_checked() {
        let c = validate(RawConfig::default()).expect("defaults");
        assert_eq!(c.webhook_retry_delays.len(), 8);
        assert_eq!(c.webhook_retry_delays[1], std::time::Duration::from_secs(5));
        assert_eq!((c.webhook_retry_jitter, c.webhook_disable_after.as_secs(), c.webhook_timeout.as_secs()), (0.2, 5 * 86_400, 15));
        let raw = RawConfig::from_toml(
            "webhook_retry_delays = [\"0ms\", \"250ms\", \"1s\"]\nwebhook_retry_jitter = 0.0\nwebhook_disable_after = \"1h\"\nwebhook_timeout = \"3s\"",
        )
        .expect("toml");
        let c = validate(raw).expect("valid");
        assert_eq!(
            c.webhook_retry_delays,
            vec![std::time::Duration::ZERO, std::time::Duration::from_millis(250), std::time::Duration::from_secs(1)]
        );
        assert_eq!((c.webhook_disable_after.as_secs(), c.webhook_timeout.as_secs()), (3600, 3));
        let raw = RawConfig::from_toml(
            "webhook_retry_delays = [\"soon\"]\nwebhook_retry_jitter = 1.5\nwebhook_disable_after = \"0s\"\nwebhook_timeout = \"15\"",
        )
        .expect("toml");
        let keys: Vec<_> = validate(raw).expect_err("invalid").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["webhook_retry_delays", "webhook_retry_jitter", "webhook_disable_after", "webhook_timeout"]);
        assert!(validate(RawConfig { webhook_retry_delays: Some(vec![]), ..RawConfig::default() }).is_err());
    }

    #[test]
    fn notification_delivery_settings_are_read_and_checked() {
        let c = validate(RawConfig::default()).expect("defaults");
        assert_eq!(c.notification_retry_delays.len(), 6);
        assert_eq!((c.notification_retry_delays[1].as_secs(), c.notification_timeout.as_secs()), (10, 15));
        let raw = RawConfig::from_toml("notification_retry_delays = [\"0s\", \"1s\"]\nnotification_timeout = \"5s\"").expect("toml");
        let c = validate(raw).expect("valid");
        assert_eq!((c.notification_retry_delays.len(), c.notification_timeout.as_secs()), (2, 5));
        let raw = RawConfig::from_toml("notification_retry_delays = [\"soon\"]\nnotification_timeout = \"0s\"").expect("toml");
        let keys: Vec<_> = validate(raw).expect_err("invalid").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["notification_retry_delays", "notification_timeout"]);
        let raw = RawConfig::from_toml("notification_timeout = \"1h\"").expect("toml");
        assert_eq!(validate(raw).expect_err("too long")[0].key, "notification_timeout");
    }

    #[test]
    fn search_budgets_are_read_and_checked() {
        let c = validate(RawConfig::default()).expect("defaults");
        assert_eq!((c.search_timeout.as_secs(), c.search_max_rows), (10, 10_000));
        let c = validate(RawConfig::from_toml("search_timeout = \"2s\"\nsearch_max_rows = 500").expect("toml")).expect("valid");
        assert_eq!((c.search_timeout.as_secs(), c.search_max_rows), (2, 500));
        let raw = RawConfig::from_toml("search_timeout = \"never\"\nsearch_max_rows = 0").expect("toml");
        let keys: Vec<_> = validate(raw).expect_err("invalid").into_iter().map(|p| p.key).collect();
        assert_eq!(keys, vec!["search_timeout", "search_max_rows"]);
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_and_later_sources_win() {
        assert!(RawConfig::from_toml("firewal_addr = \"x\"").expect_err("unknown").contains("firewal_addr"));
        let file = RawConfig::from_toml("firewall_addr = \"127.0.0.1:1\"\nrole = \"xdr\"").expect("toml");
        let flags = RawConfig { firewall_addr: Some("127.0.0.1:2".into()), ..RawConfig::default() };
        let c = validate(file.overlay(flags)).expect("valid");
        assert_eq!(c.firewall_addr.port(), 2);
        assert_eq!(c.role, ServeRole::Xdr);
    }
}
