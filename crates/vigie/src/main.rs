//! The `vigie` binary: parses the command line, loads and validates the configuration, and
//! wires the library crates together. It is the only place that prints or reads the
//! environment.
mod bench;
mod bench_dashboard;
mod bench_detect;
mod bench_intake;
mod bench_query;
mod bench_response;
mod bench_webhooks;
mod cli;
mod demo;
mod org;
mod rules_test;
mod scan;
mod serve;
mod traffic;
mod verify;

use anyhow::Context;
use clap::Parser;
use cli::{BenchCommand, Cli, Command, KeysCommand, RulesCommand, ServeArgs, TenantsCommand};
use std::process::ExitCode;
use vigie_core::config::{Config, LogFormat, RawConfig, validate};

/// mimalloc instead of the C library's allocator: parsing events and matching rules allocate
/// many small objects, and glibc's malloc spent a quarter of detection's time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = load_config(&args)?;
            init_logs(cfg.log_format);
            serve::run(cfg).await?;
        }
        Command::Demo(args) => {
            let cfg = load_config(&args.serve)?;
            init_logs(cfg.log_format);
            demo::run(cfg, args.rate).await?;
        }
        // Its exit code says whether something was found.
        Command::Scan(args) => return scan::run(&args),
        Command::Tenants { action: TenantsCommand::Create { name, admin_email, data_dir } } => {
            init_logs(LogFormat::Text);
            let args = ServeArgs { data_dir, ..ServeArgs::default() };
            let cfg = load_config(&args)?;
            serve::create_tenant(cfg, &name, &admin_email).await?;
        }
        Command::Keys { action: KeysCommand::Create { space, scope, name, source, signed, expires_in_days, data_dir } } => {
            init_logs(LogFormat::Text);
            let args = ServeArgs { data_dir, ..ServeArgs::default() };
            let cfg = load_config(&args)?;
            serve::create_key(cfg, &space, &name, scope, source, signed, expires_in_days).await?;
        }
        Command::Rules { action: RulesCommand::Test(t) } => return rules_test::run(&t),
        // Its exit code says whether every step passed.
        Command::Verify(args) => return Ok(verify::run(args).await),
        Command::Bench { which: BenchCommand::Interactions(b) } => {
            init_logs(LogFormat::Text);
            bench::interactions(b).await?;
        }
        Command::Bench { which: BenchCommand::Webhooks(b) } => {
            init_logs(LogFormat::Text);
            bench_webhooks::webhooks(b).await?;
        }
        Command::Bench { which: BenchCommand::Intake(b) } => {
            init_logs(LogFormat::Text);
            bench_intake::intake(b).await?;
        }
        Command::Bench { which: BenchCommand::Detect(b) } => {
            init_logs(LogFormat::Text);
            bench_detect::detect(b).await?;
        }
        Command::Bench { which: BenchCommand::Response(b) } => {
            init_logs(LogFormat::Text);
            bench_response::response(b).await?;
        }
        Command::Bench { which: BenchCommand::Dashboard(b) } => {
            init_logs(LogFormat::Text);
            bench_dashboard::dashboard(b).await?;
        }
        Command::Bench { which: BenchCommand::Query(b) } => {
            init_logs(LogFormat::Text);
            bench_query::query(b).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// File, then environment and flags, then validation reporting every problem.
fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
            RawConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
        }
        None => RawConfig::default(),
    };
    validate(file.overlay(args.raw())).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!("the configuration is invalid:\n{}", lines.join("\n"))
    })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A panic's message can quote the data being processed (a slice of a prompt, a value), so
    // the log says where it happened and not what it said. Set VIGIE_PANIC_MESSAGES=1 to see
    // the messages while debugging on test data.
    if std::env::var_os("VIGIE_PANIC_MESSAGES").is_none() {
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            tracing::error!(location = %at, "a task panicked (message withheld: it may quote request data)");
        }));
    }
}
