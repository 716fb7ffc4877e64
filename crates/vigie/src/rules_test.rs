//! `vigie rules test RULE_FILE --events EVENTS.ndjson`: a rule run over events from a file as
//! the XDR's detection would run it (the same engine, the same views of events, alerts folded
//! by similarity and rate-limited the same way) — a backtest without a server.
use clap::Args;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use vigie_detect::Kind;
use vigie_xdr::detect::{RuleInfo, Simulation, View};
use vigie_xdr::log::Stored;

/// Flags of `vigie rules test`.
#[derive(Args, Debug)]
pub struct RulesTest {
    /// The rule: a pipe query (any extension), or Sigma YAML (`.yml`, `.yaml`).
    pub rule_file: PathBuf,
    /// Events, one JSON object per line, as senders post them (firewall events are normalised
    /// as the XDR normalises them). `-` reads standard input.
    #[arg(long)]
    pub events: PathBuf,
    /// `pipe` or `sigma` [default: from the file's extension].
    #[arg(long)]
    pub kind: Option<String>,
    /// Similarity fields, comma-separated [default: a window's group-by, else user_id,platform_id].
    #[arg(long, value_delimiter = ',')]
    pub similarity: Vec<String>,
    /// Alerts listed (the counts cover all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the test; exit 0 without alerts, 1 with, 2 on error.
pub fn run(t: &RulesTest) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(&t.rule_file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", t.rule_file.display()))?;
    let kind = match t.kind.as_deref() {
        Some(k) => Kind::parse(k).ok_or_else(|| anyhow::anyhow!("--kind is pipe or sigma"))?,
        None => match t.rule_file.extension().and_then(|e| e.to_str()) {
            Some("yml" | "yaml") => Kind::Sigma,
            _ => Kind::Pipe,
        },
    };
    let program = vigie_detect::compile(kind, &source).map_err(|e| anyhow::anyhow!("{}: {e}", t.rule_file.display()))?;
    let name = t.rule_file.file_stem().and_then(|s| s.to_str()).unwrap_or("rule").to_owned();
    let info = RuleInfo {
        id: String::new(),
        version: 0,
        name,
        severity: 50,
        similarity: t.similarity.clone(),
        group_by: vigie_xdr::detect::group_by(&program),
    };
    let mut sim = Simulation::new(program, info, t.limit).map_err(|e| anyhow::anyhow!("{e}"))?;
    let reader: Box<dyn BufRead> = if t.events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&t.events).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", t.events.display()))?,
        ))
    };
    let now = vigie_core::clock::to_micros(chrono::Utc::now());
    // Events in the order of their time, as a backtest reads the log.
    let mut events: Vec<(i64, Stored)> = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let f = vigie_xdr::intake::log_fields(&line)
            .map_err(|e| anyhow::anyhow!("{}:{}: not a JSON object: {e}", t.events.display(), n + 1))?;
        let stored = Stored {
            id: f.id.unwrap_or_else(|| format!("line-{}", n + 1)),
            received_at: now,
            timestamp: f.timestamp.unwrap_or(now),
            event_type: f.event_type,
            source: f.source.unwrap_or_else(|| "api".into()),
            body: line,
        };
        events.push((n as i64 + 1, stored));
    }
    events.sort_by_key(|(seq, e)| (e.timestamp, *seq));
    let ids: std::collections::HashMap<i64, String> = events.iter().map(|(seq, e)| (*seq, e.id.clone())).collect();
    for (seq, stored) in events {
        let t = stored.timestamp;
        sim.feed(&View::new(stored, "offline".into()), seq, t);
    }
    let out = sim.finish(false, None, |seq| ids.get(&seq).cloned());
    if t.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{} events, {} matches, {} alerts ({} suppressed by the rate limit)", out.events, out.matches, out.alerts, out.suppressed);
        for a in &out.would_alert {
            println!("  alert  {}  ×{}  {} → {}  events: {}", a.title, a.occurrences, a.first_seen, a.last_seen, a.event_ids.join(", "));
        }
        for d in &out.per_day {
            println!("  {}  {} matches, {} alerts", d.day, d.matches, d.alerts);
        }
    }
    Ok(if out.alerts > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
