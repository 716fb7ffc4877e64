//! The command line: flags, their environment variables, and the merge with the config file
//! (flags > environment > file > defaults).
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use vigie_core::config::RawConfig;

/// Vigie: an AI firewall and an XDR in one binary.
#[derive(Parser, Debug)]
#[command(name = "vigie", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the servers.
    Serve(ServeArgs),
    /// Run the servers with simulated traffic from a few dozen people.
    Demo(DemoArgs),
    /// Classify a text (a file, or standard input) with the detection engine and print what it
    /// found, values masked. Exit code 0 when clean, 1 when something was found, 2 on error.
    Scan(ScanArgs),
    /// Manage tenants in the data directory (works while the server runs).
    Tenants {
        /// What to do with tenants.
        #[command(subcommand)]
        action: TenantsCommand,
    },
    /// Manage XDR API keys in the data directory (works while the server runs).
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Detection rules offline.
    Rules {
        /// What to do with rules.
        #[command(subcommand)]
        action: RulesCommand,
    },
    /// Check a deployment end to end: record a test interaction full of sensitive data and
    /// follow it to the policy decision, the XDR's events, alerts, notification and cases.
    /// Exit code 0 when every step passed, 1 when one failed, 2 when it could not run.
    Verify(crate::verify::VerifyArgs),
    /// Load generators for the figures in BENCHMARKS.md.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        which: BenchCommand,
    },
}

/// Flags shared by `serve` and `demo`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// all, firewall or xdr.
    #[arg(long, env = "VIGIE_ROLE")]
    pub role: Option<String>,
    /// Directory of the databases and the secret key [default: ./vigie-data].
    #[arg(long, env = "VIGIE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Firewall listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "VIGIE_FIREWALL_ADDR")]
    pub firewall_addr: Option<String>,
    /// XDR listen address [default: 127.0.0.1:8090].
    #[arg(long, env = "VIGIE_XDR_ADDR")]
    pub xdr_addr: Option<String>,
    /// Allow webhooks to private and loopback addresses.
    #[arg(long, env = "VIGIE_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Mark the consoles' session cookies Secure (set it when they are served over HTTPS).
    #[arg(long, env = "VIGIE_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// TOML configuration file (keys as the long flags, with underscores).
    #[arg(long, env = "VIGIE_CONFIG")]
    pub config: Option<PathBuf>,
    /// E-mail of the admin created on first start [default: admin@vigie.local].
    #[arg(long, env = "VIGIE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Name of the tenant created on first start [default: default].
    #[arg(long, env = "VIGIE_TENANT_NAME")]
    pub tenant_name: Option<String>,
    /// `source` of the events the firewall emits [default: noxys].
    #[arg(long, env = "VIGIE_EVENT_SOURCE")]
    pub event_source: Option<String>,
    /// full (fsync each commit) or normal [default: full].
    #[arg(long, env = "VIGIE_DURABILITY")]
    pub durability: Option<String>,
    /// The most writes grouped in one transaction [default: 512].
    #[arg(long, env = "VIGIE_WRITE_BATCH_MAX")]
    pub write_batch_max: Option<usize>,
    /// text or json [default: text].
    #[arg(long, env = "VIGIE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// The longest text, in UTF-8 bytes, the firewall scans in one request [default: 1048576].
    #[arg(long, env = "VIGIE_MAX_TEXT_BYTES")]
    pub max_text_bytes: Option<usize>,
}

impl ServeArgs {
    /// The configuration these flags (and their variables) set. Secrets come only from the
    /// environment or the file, never from argv where `ps` would show them.
    pub fn raw(&self) -> RawConfig {
        RawConfig {
            role: self.role.clone(),
            data_dir: self.data_dir.clone(),
            firewall_addr: self.firewall_addr.clone(),
            xdr_addr: self.xdr_addr.clone(),
            allow_private_webhooks: self.allow_private_webhooks.then_some(true),
            secure_cookies: self.secure_cookies.then_some(true),
            tenant_name: self.tenant_name.clone(),
            admin_email: self.admin_email.clone(),
            admin_password: std::env::var("VIGIE_ADMIN_PASSWORD").ok().filter(|s| !s.is_empty()),
            event_source: self.event_source.clone(),
            durability: self.durability.clone(),
            write_batch_max: self.write_batch_max,
            log_format: self.log_format.clone(),
            secret_key: std::env::var("VIGIE_SECRET_KEY").ok().filter(|s| !s.is_empty()),
            max_text_bytes: self.max_text_bytes,
            ..RawConfig::default()
        }
    }
}

/// `scan` flags.
#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// The file to scan; `-` or nothing reads standard input. Any size: it is read in 64 KiB
    /// chunks.
    pub file: Option<PathBuf>,
    /// Print one JSON document (`findings`, `risk_score`, `classification_count`, `bytes`)
    /// instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `demo` flags.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The serve flags.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Simulated interactions per second.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
}

/// `tenants` subcommands.
#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Create a tenant and its first admin; prints the admin's password if generated.
    Create {
        /// Unique tenant name.
        #[arg(long)]
        name: String,
        /// The admin's e-mail.
        #[arg(long)]
        admin_email: String,
        /// Data directory [default: ./vigie-data].
        #[arg(long, env = "VIGIE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key in a space (created if absent); prints the key alone on the last line.
    Create {
        /// The space's name.
        #[arg(long)]
        space: String,
        /// Scopes, comma-separated: events_write, events_read, alerts_read, alerts_write,
        /// cases_read, cases_write, rules_read, rules_write, playbooks_read, playbooks_write, intel_read,
        /// intel_write, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// A label for the key.
        #[arg(long)]
        name: String,
        /// `source` given to events that name none.
        #[arg(long)]
        source: Option<String>,
        /// Generate a Standard Webhooks signing secret: deliveries must be signed with it.
        #[arg(long)]
        signed: bool,
        /// The key expires after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Data directory [default: ./vigie-data].
        #[arg(long, env = "VIGIE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// `rules` subcommands.
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Run a rule over events from a file, as the XDR would (a backtest without a server):
    /// prints the matches, the alerts it would raise and counts per day. Exit code 0 when the
    /// rule raised no alert, 1 when it did, 2 on error (a rule that does not compile).
    Test(crate::rules_test::RulesTest),
}

/// `bench` subcommands.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// POST /api/v1/interactions throughput and latency against a firewall started in-process,
    /// with group commit and, as the baseline, one transaction per request.
    Interactions(crate::bench::InteractionsBench),
    /// Webhook deliveries per second to a local receiver and commit-to-2xx latency at a steady
    /// event rate, each against a baseline without the dispatcher.
    Webhooks(crate::bench_webhooks::WebhooksBench),
    /// XDR intake: events per second, latency and CPU per event with batches of 100 and with
    /// single-event POSTs, each against the store alone as the baseline.
    Intake(crate::bench_intake::IntakeBench),
    /// The query language: parse and compile time, matcher throughput with the default rules,
    /// and search latency over stored events, each beside a baseline.
    Query(crate::bench_query::QueryBench),
    /// Detection: throughput of the default rules plus Sigma rules (views beside the shown
    /// event), the whole consumer, memory per group key of a window, and latency from intake
    /// acknowledgement to the alert visible through the API.
    Detect(crate::bench_detect::DetectBench),
    /// Response: runs per second of the default playbook with notifications to local receivers
    /// (beside the alerts alone), and the time from an alert to the manager's e-mail received.
    Response(crate::bench_response::ResponseBench),
    /// The dashboard: the default dashboard's server render (evaluation + template) over stored
    /// events for 24 h, 7 d and 30 d beside its queries run one after another, and the bytes a
    /// page load transfers without a cache.
    Dashboard(crate::bench_dashboard::DashboardBench),
}
