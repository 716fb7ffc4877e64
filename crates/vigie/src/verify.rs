//! `vigie verify`: the end-to-end check an operator runs against a deployment. It records one
//! interaction full of sensitive data for a new test person, then follows it through both
//! halves: the policy decision, the events reaching the XDR, the default rules' alerts, the
//! notification and the cases. Each step prints ✓ or ✗ with its timing and, on ✗, the likely
//! cause and where to look. Exit code 0 when every step passed, 1 when one failed, 2 when the
//! check could not run (bad flags, missing credentials).
//!
//! Everything it creates hangs off its test person (an id in the reserved range of
//! [`vigie_core::testdata`]), so `--cleanup` (this run) or `--cleanup-only` (every test person
//! of the tenant and space) removes exactly that through `DELETE /api/v1/test-data` on both
//! halves. `--cleanup-only` does not know which runs are over: it also removes the test data of
//! a `vigie verify` running against the same tenant and space at that moment, which then fails.
use clap::Args;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use uuid::Uuid;

mod cleanup;
mod expected;
mod intake;
mod response;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(200);
/// The most one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The most one test-data request may take: removal can read a large part of the XDR's log.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(600);
/// The scopes the checks read with.
const READ_SCOPES: [(&str, &str); 4] = [
    ("events_read", "/api/v1/events?limit=1"),
    ("alerts_read", "/api/v1/alerts?limit=1"),
    ("cases_read", "/api/v1/cases?limit=1"),
    ("rules_read", "/api/v1/rules?limit=1"),
];
/// The description `vigie serve` gives the webhook it creates from the firewall to its XDR.
const SERVE_WEBHOOK: &str = crate::serve::XDR_WEBHOOK;
/// A prompt with six kinds of sensitive data: a card (valid Luhn, Visa range), an IBAN (valid
/// mod 97), a French social security number (valid key), an AWS access key, an e-mail and a
/// French mobile number. None is real.
const TEXT: &str = "vigie verify test data, not a real person: please reconcile card 4532 0151 1283 0366 \
    with IBAN FR76 3000 6000 0112 3456 7890 189 for NIR 1 85 05 78 006 084 91, \
    then mail the totals to jean.verify@example.com or call +33 6 12 34 56 78. \
    The export job uses key AKIAIOSFODNN7EXAMPLE.";
/// The kinds of data the text holds.
const EXPECTED_TYPES: [&str; 6] = ["CREDIT_CARD", "IBAN", "FR_NIR", "API_KEY", "EMAIL", "PHONE"];
/// The kinds the default rules need found ("Financial data exposure"); the others are reported.
const NEEDED_TYPES: [&str; 2] = ["CREDIT_CARD", "IBAN"];

/// `verify` flags. Secrets come only from the environment (or a file), never from argv.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The firewall's base URL.
    #[arg(long, env = "VIGIE_FIREWALL_URL", default_value = "http://127.0.0.1:8080")]
    pub firewall_url: String,
    /// The XDR's base URL.
    #[arg(long, env = "VIGIE_XDR_URL", default_value = "http://127.0.0.1:8090")]
    pub xdr_url: String,
    /// The firewall admin to log in as; the password comes from VIGIE_ADMIN_PASSWORD. Or set
    /// VIGIE_FIREWALL_TOKEN to an admin API token instead.
    #[arg(long, env = "VIGIE_ADMIN_EMAIL", default_value = "admin@vigie.local")]
    pub email: String,
    /// The tenant to log in to, when the e-mail has accounts in several.
    #[arg(long, env = "VIGIE_TENANT_NAME")]
    pub tenant: Option<String>,
    /// A file holding the XDR key (else the key is read from VIGIE_XDR_KEY). It needs the
    /// scopes events_read, alerts_read, cases_read and rules_read, and admin for cleanup.
    #[arg(long, env = "VIGIE_XDR_KEY_FILE")]
    pub xdr_key_file: Option<PathBuf>,
    /// The AI platform of the test interaction: by default an unvetted one that no starter
    /// policy blocks by name, so the default rule on unvetted platforms applies.
    #[arg(long, env = "VIGIE_VERIFY_PLATFORM", default_value = "perplexity")]
    pub platform: String,
    /// How long each wait may take: `60s`, `90`, `2m`, `500ms`.
    #[arg(long, env = "VIGIE_VERIFY_TIMEOUT", default_value = "60s")]
    pub timeout: String,
    /// After the checks, remove this run's test data from both halves.
    #[arg(long)]
    pub cleanup: bool,
    /// Check nothing; remove every test person's data from both halves: all of the tenant
    /// (firewall) and space (XDR), including that of a `vigie verify` running at the same
    /// moment, which then fails.
    #[arg(long, conflicts_with = "cleanup")]
    pub cleanup_only: bool,
    /// Refused: the password is read from VIGIE_ADMIN_PASSWORD only (a flag would leave it in
    /// the shell history and the process list). Taken only to say so.
    #[arg(long, hide = true, num_args = 0..=1, value_name = "REFUSED")]
    pub password: Option<Option<String>>,
}

/// Validated settings.
struct Settings {
    firewall: String,
    xdr: String,
    firewall_login: FirewallLogin,
    xdr_key: String,
    platform: String,
    timeout: Duration,
    cleanup: bool,
    cleanup_only: bool,
}

enum FirewallLogin {
    Password { email: String, password: String, tenant: Option<String> },
    Token(String),
}

/// `vigie verify`.
pub async fn run(args: VerifyArgs) -> ExitCode {
    let settings = match validate(args) {
        Ok(s) => s,
        Err(problems) => {
            eprintln!("error: vigie verify cannot run:");
            for p in problems {
                eprintln!("  {p}");
            }
            return ExitCode::from(2);
        }
    };
    let http = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build the HTTP client: {e}");
            return ExitCode::from(2);
        }
    };
    let mut run = Run { s: settings, http, report: Report::default(), interaction_at: chrono::Utc::now() };
    run.all().await;
    run.report.finish()
}

/// Parses the timeout: a number of seconds, or a number with `ms`, `s` or `m`.
fn parse_timeout(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (n, unit) = match raw.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: f64 = n.parse().ok().filter(|n: &f64| n.is_finite() && *n > 0.0)?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        _ => return None,
    };
    (secs <= 86_400.0).then(|| Duration::from_secs_f64(secs))
}

/// Checks every flag and credential at once and reports every problem.
fn validate(a: VerifyArgs) -> Result<Settings, Vec<String>> {
    let mut problems = Vec::new();
    if a.password.is_some() {
        problems.push(
            "--password is refused: the password is read from VIGIE_ADMIN_PASSWORD only (a flag would leave it in the shell history \
             and the process list); set VIGIE_ADMIN_PASSWORD, or VIGIE_FIREWALL_TOKEN to an admin API token"
                .to_owned(),
        );
    }
    let mut base = |flag: &str, raw: &str| -> String {
        match reqwest::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => raw.trim_end_matches('/').to_owned(),
            _ => {
                problems.push(format!("--{flag} {raw:?} is not an http(s) URL (e.g. http://127.0.0.1:8080)"));
                String::new()
            }
        }
    };
    let firewall = base("firewall-url", &a.firewall_url);
    let xdr = base("xdr-url", &a.xdr_url);
    let timeout = parse_timeout(&a.timeout).unwrap_or_else(|| {
        problems.push(format!("--timeout {:?} is not a duration: give seconds (60), or 500ms, 60s, 2m (at most a day)", a.timeout));
        Duration::ZERO
    });
    if a.platform.is_empty() || a.platform.len() > 64 || !a.platform.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        problems.push(format!("--platform {:?} is not a platform id (1–64 letters, digits, - _ .)", a.platform));
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let firewall_login = match (env("VIGIE_FIREWALL_TOKEN"), env("VIGIE_ADMIN_PASSWORD")) {
        (Some(t), _) => FirewallLogin::Token(t.trim().to_owned()),
        (None, Some(p)) => FirewallLogin::Password { email: a.email.clone(), password: p, tenant: a.tenant.clone() },
        (None, None) => {
            problems.push(format!(
                "no firewall credentials: set VIGIE_ADMIN_PASSWORD to the password of {} (or pass --email), or VIGIE_FIREWALL_TOKEN to an admin API token",
                a.email
            ));
            FirewallLogin::Token(String::new())
        }
    };
    let xdr_key = match (&a.xdr_key_file, env("VIGIE_XDR_KEY")) {
        (Some(path), _) => match std::fs::read_to_string(path) {
            Ok(k) if !k.trim().is_empty() => k.trim().to_owned(),
            Ok(_) => {
                problems.push(format!("--xdr-key-file {} is empty; put the XDR key (vxk_…) in it", path.display()));
                String::new()
            }
            Err(e) => {
                problems.push(format!("--xdr-key-file {}: {e}", path.display()));
                String::new()
            }
        },
        (None, Some(k)) => k.trim().to_owned(),
        (None, None) => {
            problems.push(
                "no XDR key: set VIGIE_XDR_KEY (or pass --xdr-key-file) to a key with events_read,alerts_read,cases_read,rules_read \
                 (and admin for --cleanup); make one with `vigie keys create` or in the XDR console's Settings"
                    .to_owned(),
            );
            String::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Settings {
        firewall,
        xdr,
        firewall_login,
        xdr_key,
        platform: a.platform.to_ascii_lowercase(),
        timeout,
        cleanup: a.cleanup,
        cleanup_only: a.cleanup_only,
    })
}

/// The printed steps and whether all passed.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: usize,
    skipped: usize,
    person: Option<Uuid>,
    cleaned: bool,
}

/// What a failed step says besides what happened.
struct Failure {
    what: String,
    cause: String,
    look: String,
}

fn failure(what: impl Into<String>, cause: impl Into<String>, look: impl Into<String>) -> Failure {
    Failure { what: what.into(), cause: cause.into(), look: look.into() }
}

impl Report {
    fn pass(&mut self, step: &str, started: Instant, detail: impl AsRef<str>) {
        self.passed += 1;
        println!("✓ {step} ({} ms) {}", started.elapsed().as_millis(), detail.as_ref());
    }

    fn fail(&mut self, step: &str, started: Instant, f: Failure) {
        self.failed += 1;
        println!("✗ {step} ({} ms) {}", started.elapsed().as_millis(), f.what);
        println!("    likely cause: {}", f.cause);
        println!("    look at: {}", f.look);
    }

    fn outcome(&mut self, step: &str, started: Instant, r: Result<String, Failure>) -> bool {
        match r {
            Ok(detail) => {
                self.pass(step, started, detail);
                true
            }
            Err(f) => {
                self.fail(step, started, f);
                false
            }
        }
    }

    fn skip(&mut self, step: &str, why: &str) {
        self.skipped += 1;
        println!("- {step}: skipped ({why})");
    }

    fn finish(self) -> ExitCode {
        println!();
        if let Some(p) = self.person {
            if self.cleaned {
                println!("Test person {p}: its test data was removed from both halves.");
            } else {
                println!(
                    "Test person {p}: everything this run created belongs to it and is marked as test data (its id is in the reserved range {}…).",
                    vigie_core::testdata::PREFIX
                );
                println!(
                    "Remove it with `vigie verify --cleanup-only` (every test person), or DELETE /api/v1/test-data?user_id={p} on both halves."
                );
            }
        }
        if self.failed == 0 && self.skipped == 0 {
            println!("All {} steps passed.", self.passed);
            ExitCode::SUCCESS
        } else {
            println!("{} passed, {} failed, {} skipped.", self.passed, self.failed, self.skipped);
            ExitCode::from(1)
        }
    }
}

/// An answer: the status and the JSON body (Null when empty or not JSON).
type Answer = (StatusCode, Value);

struct Run {
    s: Settings,
    http: reqwest::Client,
    report: Report,
    /// When the test interaction was recorded (the firewall's clock), once it was; else when
    /// this run started (ours). This run's cleanup looks at the XDR's events from shortly before.
    interaction_at: chrono::DateTime<chrono::Utc>,
}

/// The error field of an API answer, or the body.
fn said(v: &Value) -> String {
    match v.get("error").and_then(Value::as_str) {
        Some(e) => e.to_owned(),
        None if v.is_null() => "an empty answer".to_owned(),
        None => v.to_string().chars().take(300).collect(),
    }
}

fn items(v: &Value) -> Vec<Value> {
    v.get("items").and_then(Value::as_array).cloned().unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn ms(d: chrono::TimeDelta) -> i64 {
    d.num_milliseconds()
}

/// The event types of the test interaction: those the firewall emitted, and those of them the
/// webhooks to the XDR carried there (found in the XDR).
#[derive(Debug, Default)]
struct Carried {
    emitted: BTreeSet<String>,
    carried: BTreeSet<String>,
}

/// What the firewall answered for the test interaction.
struct Recorded {
    id: String,
    created_at: chrono::DateTime<chrono::Utc>,
    body: Value,
}

/// An interaction whose events may still be on their way to the XDR when a step failed; `wait`:
/// whether to wait for them before cleaning up (not when the failed step waited already).
struct Settle {
    interaction: String,
    wait: bool,
}

/// The XDR alerts found for the test person, by rule id.
type Alerts = BTreeMap<String, Value>;

impl Run {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Answer, String> {
        self.send_within(req, REQUEST_TIMEOUT).await
    }

    /// Sends with a time limit of its own (the client's is [`REQUEST_TIMEOUT`]).
    async fn send_within(&self, req: reqwest::RequestBuilder, limit: Duration) -> Result<Answer, String> {
        let resp = req.timeout(limit).send().await.map_err(|e| describe(&e, limit))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| describe(&e, limit))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    async fn fw(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Result<Answer, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.s.firewall)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn fw_get(&self, path: &str, token: &str) -> Result<Answer, String> {
        self.fw(reqwest::Method::GET, path, token, None).await
    }

    async fn xdr(&self, method: reqwest::Method, path: &str, query: &[(&str, String)]) -> Result<Answer, String> {
        self.send(self.http.request(method, format!("{}{path}", self.s.xdr)).bearer_auth(&self.s.xdr_key).query(query)).await
    }

    async fn xdr_get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer, String> {
        self.xdr(reqwest::Method::GET, path, query).await
    }

    async fn all(&mut self) {
        let started = Instant::now();
        let r = self.reachable().await;
        if !self.report.outcome("both halves reachable", started, r) {
            self.report.skip("credentials", "a half cannot be reached");
            return self.skip_rest("a half cannot be reached");
        }
        let started = Instant::now();
        let r = self.credentials().await;
        let token = match r {
            Ok((token, detail)) => {
                self.report.pass("credentials", started, detail);
                token
            }
            Err(f) => {
                self.report.fail("credentials", started, f);
                return self.skip_rest("the credentials do not work");
            }
        };
        if self.s.cleanup_only {
            println!(
                "  --cleanup-only removes every test person's data in this tenant and XDR space, including that of a vigie verify running now (it will fail)"
            );
            let started = Instant::now();
            let r = self.cleanup(&token, None).await;
            self.report.outcome("cleanup of every test person", started, r);
            return;
        }
        let person = vigie_core::testdata::new_test_person();
        self.report.person = Some(person);
        println!("  test person: {person}");
        let started = Instant::now();
        let recorded = match self.record(&token, person).await {
            Ok((rec, detail)) => {
                self.report.pass("test interaction recorded", started, detail);
                rec
            }
            Err((f, recorded)) => {
                self.report.fail("test interaction recorded", started, f);
                for step in ["policy decision", "events reach the XDR", "default rules fire", "notification delivered", "cases opened"] {
                    self.report.skip(step, "no test interaction");
                }
                // Recorded all the same: its events are on their way to the XDR.
                let settle = recorded.map(|id| Settle { interaction: id, wait: true });
                return self.finish_cleanup(&token, person, settle).await;
            }
        };
        let started = Instant::now();
        let r = decision(&recorded.body);
        self.report.outcome("policy decision", started, r);
        self.interaction_at = recorded.created_at;
        let started = Instant::now();
        let carried = match self.events(&token, &recorded).await {
            Ok((detail, carried)) => {
                self.report.pass("events reach the XDR", started, detail);
                carried
            }
            Err(f) => {
                self.report.fail("events reach the XDR", started, f);
                for step in ["default rules fire", "notification delivered", "cases opened"] {
                    self.report.skip(step, "the events did not reach the XDR");
                }
                // Waited for already, for the whole timeout: the cleanup only says which are late.
                let settle = Some(Settle { interaction: recorded.id.clone(), wait: false });
                return self.finish_cleanup(&token, person, settle).await;
            }
        };
        let started = Instant::now();
        let (alerts, rules, r) = self.alerts(person, &recorded, &carried).await;
        self.report.outcome("default rules fire", started, r);
        let started = Instant::now();
        match self.notification(&alerts, &rules).await {
            Some(r) => {
                self.report.outcome("notification delivered", started, r);
            }
            None => self.report.skip("notification delivered", "no alert of a rule that notifies was raised"),
        }
        let started = Instant::now();
        match self.cases(&alerts, &rules).await {
            Some(r) => {
                self.report.outcome("cases opened", started, r);
            }
            None => self.report.skip("cases opened", "no alert of a rule that opens a case was raised"),
        }
        self.finish_cleanup(&token, person, None).await;
    }

    fn skip_rest(&mut self, why: &str) {
        let steps: &[&str] = if self.s.cleanup_only {
            &["cleanup of every test person"]
        } else {
            &[
                "test interaction recorded",
                "policy decision",
                "events reach the XDR",
                "default rules fire",
                "notification delivered",
                "cases opened",
            ]
        };
        for step in steps {
            self.report.skip(step, why);
        }
        if self.s.cleanup && !self.s.cleanup_only {
            self.report.skip("cleanup", why);
        }
    }

    /// `--cleanup`: removes this run's test data. After a failed step, `settle` names the
    /// interaction whose events may still be on their way to the XDR: they are waited for
    /// first (up to `--timeout`, when `wait`), so that the cleanup removes them too; those
    /// that did not come are named, with how to remove them later.
    async fn finish_cleanup(&mut self, token: &str, person: Uuid, settle: Option<Settle>) {
        if self.s.cleanup {
            let started = Instant::now();
            let late = match settle {
                Some(s) => self.settle(token, &s.interaction, s.wait).await,
                None => Vec::new(),
            };
            let r = self.cleanup(token, Some(person)).await.map(|done| match late.is_empty() {
                true => done,
                false => format!("{done}; {}", cleanup::late_note(&late, self.s.timeout)),
            });
            self.report.cleaned = r.is_ok() && late.is_empty();
            self.report.outcome("cleanup", started, r);
        }
    }
}

/// b. A policy acted on the interaction.
fn decision(v: &Value) -> Result<String, Failure> {
    let d = &v["decision"];
    if d["policy_id"].is_null() {
        return Err(failure(
            format!("no policy matched: the decision is {:?} at risk {}", text(d, "action"), v["risk_score"]),
            "no policy acts on card numbers: create one in Policies (e.g. block when classifications contain CREDIT_CARD)",
            "the firewall console's Policies page (enabled policies and their order), and its \"Try a prompt\" page (/try)",
        ));
    }
    let alert = v["alert"]["severity"].as_str().map(|s| format!("; the firewall raised a {s} alert")).unwrap_or_default();
    Ok(format!("{} by policy {:?}{alert}", text(d, "action"), text(d, "policy_name")))
}

/// A network error in a sentence.
fn describe(e: &reqwest::Error, limit: Duration) -> String {
    if e.is_connect() {
        "connection refused or unreachable".to_owned()
    } else if e.is_timeout() {
        format!("no answer within {} s", limit.as_secs())
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s.push_str(&format!(": {inner}"));
            src = inner.source();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_an_operator_writes_them() {
        for (raw, want) in [("60", Some(60_000)), ("60s", Some(60_000)), ("500ms", Some(500)), ("2m", Some(120_000)), ("1.5s", Some(1500))]
        {
            assert_eq!(parse_timeout(raw).map(|d| d.as_millis() as u64), want, "{raw}");
        }
        for raw in ["", "0", "-1", "abc", "5h", "100000"] {
            assert_eq!(parse_timeout(raw), None, "{raw}");
        }
    }
}
