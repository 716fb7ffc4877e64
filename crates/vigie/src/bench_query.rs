//! `vigie bench query`: the query language's figures (issue 6), each beside a baseline measured
//! in the same run.
//!
//! - **Parse + compile**: every example of QUERY.md and the default rules, parsed, compiled to
//!   a matcher and planned as SQL; microseconds per query (median of rounds).
//! - **Matcher**: the three filter rules of the default content (ARCHITECTURE.md, rules 1, 3
//!   and 4) together over real firewall events as the log shows them, on one thread; events per
//!   second. Baseline: the same rules interpreted from their syntax tree (each field looked up
//!   by name, each literal examined, per event) — what compiling saves. Also the cost of making
//!   the shown event from a stored row, which a consumer pays once per event for all its rules.
//! - **Search**: `source = "noxys" | stats count by platform_id, bin(timestamp, 1h)` over
//!   `--events` stored firewall events spread over 30 days (a fresh XDR data directory, facts
//!   built), through `search::search` (facts); median of `--rounds` after a first (cold) run.
//!   Beside it, the same query compiled to SQL over the bodies (the path of queries facts cannot
//!   answer) and, as the baseline, the cheapest hand-written SQL over the bodies (the platform
//!   read with one `json_extract`, grouped by SQLite).
use clap::Args;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_core::StoreError;
use vigie_core::db::{Durability, StoreOptions};
use vigie_query::ast::{CmpOp, Expr, Literal, TestOp};
use vigie_query::matcher::{Fields, Matcher};

/// Flags of `vigie bench query`.
#[derive(Args, Debug, Clone)]
pub struct QueryBench {
    /// Events stored for the search figure.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Timed runs of the search (after one cold run); the two paths over the bodies run at most
    /// three times.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Event evaluations timed for the matcher figure.
    #[arg(long, default_value_t = 2_000_000)]
    pub evaluations: usize,
    /// Where to build the database (default: a temporary directory); it holds about 1.5 KB per event.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// The examples of QUERY.md.
const EXAMPLES: &[&str] = &[
    "event_type == \"interaction.policy_violated\" AND platform_id NOT IN [\"chatgpt\", \"claude\", \"gemini\"] AND classification_count > 0",
    "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour",
    "event_type == \"interaction.high_risk\" AND classification_type IN [\"CREDIT_CARD\", \"IBAN\"] AND risk_score > 0.9",
    "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)",
    "event_type == \"interaction.policy_violated\" | stats count by policy_name",
    "risk_score > 0.8 | stats count by bin(timestamp, 1d)",
    "event_type == \"interaction.policy_violated\" | stats count by user_id | sort -count | head 10",
];

/// The filter rules of the default content (rules 1, 3 and 4).
const RULES: &[&str] = &[
    "event_type == \"interaction.policy_violated\" AND platform_id NOT IN [\"chatgpt\", \"claude\", \"gemini\"] AND classification_count > 0",
    "event_type == \"interaction.high_risk\" AND classification_type IN [\"CREDIT_CARD\", \"IBAN\"] AND risk_score > 0.9",
    "event_type == \"alert.severity_critical\"",
];

const SEARCH: &str = "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The baseline matcher: the syntax tree walked per event, fields looked up by name.
fn interpret(e: &Expr, ev: &Map<String, Value>) -> bool {
    fn eq(l: &Literal, v: &Value) -> bool {
        match l {
            Literal::Str(s) => v.as_str() == Some(s),
            Literal::Num(n) => vigie_query::value::number(v) == Some(*n),
            Literal::Bool(b) => v.as_bool() == Some(*b),
            Literal::Null => v.is_null(),
        }
    }
    fn any(v: &Value, f: &dyn Fn(&Value) -> bool) -> bool {
        match v {
            Value::Array(items) => items.iter().any(f),
            v => f(v),
        }
    }
    match e {
        Expr::And(items) => items.iter().all(|i| interpret(i, ev)),
        Expr::Or(items) => items.iter().any(|i| interpret(i, ev)),
        Expr::Not(inner) => !interpret(inner, ev),
        Expr::Test(t) => {
            let Some(v) = ev.get(&t.field) else { return matches!(t.op, TestOp::Cmp(CmpOp::Ne, _) | TestOp::In { negated: true, .. }) };
            match &t.op {
                TestOp::Cmp(CmpOp::Eq, l) => any(v, &|x| eq(l, x)),
                TestOp::Cmp(CmpOp::Ne, l) => !any(v, &|x| eq(l, x)),
                TestOp::Cmp(op, Literal::Num(n)) => any(v, &|x| {
                    vigie_query::value::number(x).is_some_and(|x| match op {
                        CmpOp::Gt => x > *n,
                        CmpOp::Ge => x >= *n,
                        CmpOp::Lt => x < *n,
                        _ => x <= *n,
                    })
                }),
                TestOp::In { negated, values } => any(v, &|x| values.iter().any(|l| eq(l, x))) != *negated,
                _ => false,
            }
        }
    }
}

/// Real firewall envelopes of every type, as the log would show them.
async fn samples() -> anyhow::Result<Vec<String>> {
    crate::bench_intake::firewall_envelopes(None, 4000).await
}

fn shown_of(state: &vigie_xdr::XdrState, text: &str, space: &str) -> anyhow::Result<Map<String, Value>> {
    let f = vigie_xdr::intake::log_fields(text)?;
    let stored = vigie_xdr::log::Stored {
        id: f.id.unwrap_or_default(),
        received_at: vigie_core::clock::to_micros(state.clock.now()),
        timestamp: f.timestamp.unwrap_or(0),
        event_type: f.event_type,
        source: f.source.unwrap_or_else(|| "noxys".into()),
        body: text.to_owned(),
    };
    match vigie_xdr::log::shown(&stored, space) {
        Value::Object(m) => Ok(m),
        _ => anyhow::bail!("an event did not show as an object"),
    }
}

/// `vigie bench query`.
pub async fn query(b: QueryBench) -> anyhow::Result<()> {
    anyhow::ensure!(b.events > 0 && b.rounds > 0 && b.evaluations > 0, "--events, --rounds and --evaluations must be positive");
    println!("Query language — {} stored events for the search, {} matcher evaluations, {} rounds", b.events, b.evaluations, b.rounds);

    // Parse + compile.
    println!("\n| query | parse µs | parse + compile (matcher) µs | parse + plan (SQL) µs |\n|---|---|---|---|");
    let schema = vigie_xdr::search::LogSchema { space_id: "space".into() };
    for q in EXAMPLES.iter().chain(RULES.iter().skip(2)) {
        let (mut parse, mut compile, mut plan) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..15 {
            let n = 2000;
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(vigie_query::parse(q)?);
            }
            parse.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
            let t = Instant::now();
            for _ in 0..n {
                let parsed = vigie_query::parse(q)?;
                let mut f = Fields::new();
                std::hint::black_box(Matcher::compile(parsed.filter.as_ref(), &mut f).map_err(anyhow::Error::msg)?);
            }
            compile.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
            let t = Instant::now();
            for _ in 0..n {
                let parsed = vigie_query::parse(q)?;
                std::hint::black_box(vigie_query::sql::plan(&parsed, &schema, "1").ok());
            }
            plan.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        println!("| `{}` | {:.2} | {:.2} | {:.2} |", q.replace('|', "\\|"), median(parse), median(compile), median(plan));
    }

    // The matcher.
    let dir = match &b.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let opts = vigie_xdr::XdrOptions {
        data_dir: dir.path().to_path_buf(),
        store: StoreOptions { durability: Durability::Normal, ..StoreOptions::default() },
        secret_key: None,
        key_rate: Default::default(),
        retention_every: Duration::from_secs(86_400),
        search: vigie_xdr::search::SearchLimits { timeout: Duration::from_secs(600), max_rows: 10_000 },
        build_facts: false,
        default_rules_enabled: false,
        allow_private_destinations: false,
        notify: Default::default(),
    };
    let state = vigie_xdr::open(opts, Arc::new(vigie_core::SystemClock))?;
    let payloads = samples().await?;
    anyhow::ensure!(!payloads.is_empty(), "the firewall produced no event");
    let space = state.keys.ensure_space("bench").await?;
    let shown: Vec<Map<String, Value>> =
        payloads.iter().map(|p| shown_of(&state, p, &space.id.to_string())).collect::<anyhow::Result<_>>()?;
    let mut types: std::collections::BTreeMap<String, usize> = Default::default();
    for e in &shown {
        *types.entry(e.get("event_type").and_then(Value::as_str).unwrap_or("?").to_owned()).or_default() += 1;
    }
    let mut fields = Fields::new();
    let parsed: Vec<vigie_query::Query> = RULES.iter().map(|r| vigie_query::parse(r)).collect::<Result<_, _>>()?;
    let matchers: Vec<Matcher> =
        parsed.iter().map(|q| Matcher::compile(q.filter.as_ref(), &mut fields)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    let exprs: Vec<&Expr> = parsed.iter().filter_map(|q| q.filter.as_ref()).collect();
    let (mut compiled, mut naive, mut hits) = (Vec::new(), Vec::new(), [0usize; 3]);
    for round in 0..5 {
        let t = Instant::now();
        let mut n = [0usize; 3];
        for i in 0..b.evaluations {
            let r = fields.record(&shown[i % shown.len()]);
            for (k, m) in matchers.iter().enumerate() {
                n[k] += usize::from(m.matches(&r));
            }
        }
        compiled.push(b.evaluations as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut m2 = [0usize; 3];
        for i in 0..b.evaluations {
            let e = &shown[i % shown.len()];
            for (k, x) in exprs.iter().enumerate() {
                m2[k] += usize::from(interpret(x, e));
            }
        }
        naive.push(b.evaluations as f64 / t.elapsed().as_secs_f64());
        anyhow::ensure!(n == m2, "the compiled and interpreted rules disagree: {n:?} vs {m2:?}");
        if round == 0 {
            hits = n;
        }
    }
    let t = Instant::now();
    let rows = 20_000;
    for i in 0..rows {
        std::hint::black_box(shown_of(&state, &payloads[i % payloads.len()], "space")?);
    }
    let show_us = t.elapsed().as_secs_f64() * 1e6 / rows as f64;
    println!(
        "\nMatcher, one thread, {} distinct events ({types:?}); matches per rule over {} evaluations: {hits:?}",
        shown.len(),
        b.evaluations
    );
    println!("| path | events/s (median of 5) | ratio |\n|---|---|---|");
    let (c, nv) = (median(compiled), median(naive));
    println!("| compiled matchers, 3 rules | {c:.0} | {:.2}× |", c / nv);
    println!("| baseline: the tree interpreted | {nv:.0} | 1× |");
    println!(
        "Making the shown event from a stored row (parse, normalise, flatten): {show_us:.2} µs per event ({:.0} events/s)",
        1e6 / show_us
    );

    // The search.
    println!("\nLoading {} events over 30 days…", b.events);
    let now = vigie_core::clock::to_micros(state.clock.now());
    let span: i64 = 30 * 86_400_000_000;
    let start = now - span;
    let caller = bench_caller(&state, &space).await?;
    let caller_space = caller.space_no;
    let (load, build, built) = load_events(&state, &caller, &payloads, b.events, start, span).await?;
    let db_bytes: u64 = std::fs::read_dir(dir.path())?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    println!(
        "Loaded in {:.1} s; facts built in {:.1} s ({:.0} events/s); data directory {:.2} GB",
        load.as_secs_f64(),
        build.as_secs_f64(),
        built as f64 / build.as_secs_f64(),
        db_bytes as f64 / 1e9
    );
    let params = || vigie_xdr::search::SearchParams {
        q: SEARCH.into(),
        from: Some(vigie_core::clock::from_micros(start)),
        to: Some(vigie_core::clock::from_micros(now + 1)),
        limit: None,
        cursor: None,
        format: None,
    };
    let t = Instant::now();
    let first = vigie_xdr::search::search(&state, &caller, params()).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let cold = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(!first.partial, "the search ran out of budget");
    let total: u64 = first.items.iter().filter_map(|r| r.get("count").and_then(Value::as_u64)).sum();
    let mut warm = Vec::new();
    for _ in 0..b.rounds {
        let t = Instant::now();
        std::hint::black_box(vigie_xdr::search::search(&state, &caller, params()).await.map_err(|e| anyhow::anyhow!("{}", e.message))?);
        warm.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // The same query compiled to SQL over the bodies (the path of queries facts cannot answer).
    let q = vigie_query::parse(SEARCH)?;
    let plan =
        vigie_query::sql::plan(&q, &vigie_xdr::search::LogSchema { space_id: space.id.to_string() }, &format!("space_no = {caller_space}"))
            .map_err(anyhow::Error::msg)?;
    let plan = Arc::new(plan);
    let mut generic = Vec::new();
    let mut generic_total = 0u64;
    for _ in 0..b.rounds.min(3) {
        let plan = plan.clone();
        let t = Instant::now();
        let out = state
            .store
            .read(move |c| {
                let budget = vigie_query::sqlite::Budget { max_rows: 10_000, deadline: Instant::now() + Duration::from_secs(600) };
                vigie_query::sqlite::stats(c, &plan, start, now + 1, 86_400_000_000, budget).map_err(|e| StoreError::Invalid(e.0))
            })
            .await?;
        generic.push(t.elapsed().as_secs_f64() * 1e3);
        generic_total = out.value.rows.iter().filter_map(|r| r.get("count").and_then(Value::as_u64)).sum();
    }
    let mut base = Vec::new();
    let mut base_total = 0i64;
    for _ in 0..b.rounds.min(3) {
        let t = Instant::now();
        base_total = state
            .store
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT json_extract(body, '$.data.interaction.platform_id'), timestamp / 3600000000, COUNT(*) FROM events \
                     WHERE space_no = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND source = 'noxys' GROUP BY 1, 2",
                )?;
                let rows = stmt.query_map(rusqlite::params![caller_space, start, now + 1], |r| r.get::<_, i64>(2))?;
                rows.sum::<Result<i64, _>>().map_err(StoreError::from)
            })
            .await?;
        base.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (w, g, bl) = (median(warm), median(generic), median(base));
    println!(
        "\nSearch `{SEARCH}` over {} events in 30 days ({} rows; counted: search {total}, compiled SQL {generic_total}, baseline {base_total})",
        b.events,
        first.items.len()
    );
    println!("| path | first (cold) ms | median ms | ratio to the baseline |\n|---|---|---|---|");
    println!("| search::search (facts, then the log after their checkpoint) | {cold:.0} | {w:.0} | {:.2}× |", w / bl);
    println!("| the query compiled to SQL over the bodies (vigie_query::sqlite::stats) | — | {g:.0} | {:.2}× |", g / bl);
    println!("| baseline: one hand-written GROUP BY over the bodies | — | {bl:.0} | 1× |");
    println!(
        "Target (issue 6): ≤ 300 ms over 1 M events — {}",
        if b.events < 1_000_000 {
            "not measured (fewer events)"
        } else if w <= 300.0 {
            "PASS"
        } else {
            "FAIL"
        }
    );
    state.store.close().await;
    Ok(())
}

/// Stores `events` copies of `payloads` (each with its own id) spread evenly over the `span`
/// µs from `start` in `caller`'s space, in transactions of 5,000, then builds their facts; the
/// time each took and the facts built. `vigie bench dashboard` loads its events the same way.
pub(crate) async fn load_events(
    state: &vigie_xdr::XdrState,
    caller: &vigie_xdr::keys::Caller,
    payloads: &[String],
    events: usize,
    start: i64,
    span: i64,
) -> anyhow::Result<(Duration, Duration, usize)> {
    anyhow::ensure!(!payloads.is_empty() && events > 0, "nothing to load");
    let now = vigie_core::clock::to_micros(state.clock.now());
    let caller_space = caller.space_no;
    let t = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let chunk = 5000;
    let mut i = 0usize;
    while i < events {
        let n = chunk.min(events - i);
        let mut texts = Vec::with_capacity(n);
        for j in 0..n {
            let k = i + j;
            let ts = start + (k as i64) * (span / events as i64) + rng.random_range(0..1000);
            let mut o: Map<String, Value> = serde_json::from_str(&payloads[k % payloads.len()])?;
            o.insert("id".into(), json!(format!("q-{k}")));
            o.insert("timestamp".into(), json!(vigie_query::table::rfc3339_micros(ts)));
            texts.push(std::borrow::Cow::Owned(Value::Object(o).to_string()));
        }
        let prepared = vigie_xdr::intake::prepare(state, caller, texts, state.clock.now()).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        state.store.write(move |c| vigie_xdr::intake::insert_events(c, caller_space, now, &prepared)).await?;
        i += n;
    }
    let load = t.elapsed();
    let t = Instant::now();
    let mut built = 0;
    loop {
        let n = vigie_xdr::facts::build_once(state).await?;
        if n == 0 {
            break;
        }
        built += n;
    }
    Ok((load, t.elapsed(), built))
}

pub(crate) async fn bench_caller(state: &vigie_xdr::XdrState, space: &vigie_xdr::keys::Space) -> anyhow::Result<vigie_xdr::keys::Caller> {
    let created = state
        .keys
        .create(
            space.id,
            vigie_xdr::keys::NewKey {
                name: "bench".into(),
                scopes: vec!["events_write".into(), "events_read".into()],
                ..Default::default()
            },
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    state.keys.authenticate(&created.secret_key).await.map_err(|e| anyhow::anyhow!("{}", e.message))
}
