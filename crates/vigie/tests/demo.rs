//! `vigie demo` end to end: the real binary on free loopback ports and a temporary data
//! directory, checked through the HTTP APIs and the console. At the default rate, within a
//! minute of the welcome text, the rules fire on the person who keeps pasting payment data, the
//! default playbook opens its case, the mail sink catches the manager's e-mail and the dashboard
//! has data; the admin password the first run generates works and is never logged; Ctrl-C stops
//! it with exit status 0 after a summary. A second run on the same directory resumes keeping what
//! was changed meanwhile, with new credentials, the channel on the new mail sink and the events
//! on the new XDR address. Another test: a first start that cannot listen creates no admin, and a
//! directory `vigie serve` started gets the whole organisation on the demo's first run.
mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin@vigie.local";
/// The organisation's size and the person who keeps pasting payment data (`org::OFFENDER`,
/// `traffic::person(9)`), their manager and the rule-2 name.
const PEOPLE: usize = 40;
const OFFENDER_ID: &str = "01900000-0000-7000-8000-000000000009";
const OFFENDER_NAME: &str = "Lukas Becker";
const MANAGER_EMAIL: &str = "matthias.keller@alpenrose-logistics.example";
const REPEATED: &str = "Repeated high-risk interactions";
/// People the test changes between runs (`traffic::person(10)` and `(11)`).
const EDITED_ID: &str = "01900000-0000-7000-8000-00000000000a";
const DELETED_ID: &str = "01900000-0000-7000-8000-00000000000b";
/// What the issue promises: everything there within a minute of the welcome text.
const WITHIN: Duration = Duration::from_secs(60);
/// How long one request of the test may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client")
}

/// A `vigie` process: killed (and reaped) when dropped, so a failing assertion leaves nothing
/// behind.
struct Process {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Runs `vigie args…` with `env` (and no other `VIGIE_` variable), stdout read line by line,
    /// stderr (the log) in `log`.
    fn spawn(args: &[&str], data: &Path, env: &[(&str, &str)], log: PathBuf) -> Process {
        let mut cmd = support::vigie();
        cmd.args(args).arg("--data-dir").arg(data).envs(env.iter().copied()).env("RUST_LOG", "info");
        let mut child = cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).expect("log file")).spawn().expect("spawn vigie");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        // Drains stdout for the life of the process.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Process { child, lines, seen: Vec::new(), log }
    }

    /// The next line of stdout; None once the process closed it.
    fn next_line(&mut self, deadline: Instant, what: &str) -> Option<String> {
        match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("vigie did not print {what} in time. Output:\n{}\nLog:\n{}", self.seen.join("\n"), self.log_tail())
            }
        }
    }

    /// Reads stdout until a line satisfies `pred`.
    fn wait_line(&mut self, deadline: Instant, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        loop {
            match self.next_line(deadline, what) {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => panic!(
                    "vigie exited ({:?}) before printing {what}. Output:\n{}\nLog:\n{}",
                    self.child.wait().map(|s| s.to_string()),
                    self.seen.join("\n"),
                    self.log_tail()
                ),
            }
        }
    }

    /// Reads stdout to its end (the process exited), bounded.
    fn read_to_end(&mut self, deadline: Instant) {
        while self.next_line(deadline, "the end of its output").is_some() {}
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits (bounded) for the process to exit by itself.
    fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for vigie") {
                return s;
            }
            assert!(Instant::now() < deadline, "vigie did not exit within {within:?}. Log:\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGINT and waits (bounded) for the exit.
    fn interrupt(&mut self, within: Duration) -> ExitStatus {
        let ok = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().expect("kill -INT");
        assert!(ok.success(), "kill -INT failed");
        self.exit(within)
    }
}

/// `vigie demo` at the default rate, its welcome text read.
struct Demo {
    p: Process,
    firewall: String,
    xdr: String,
    key: String,
    /// The `Admin password:` line's value, when this run generated one.
    password: Option<String>,
    /// When the welcome text was complete.
    welcomed: Instant,
}

impl Demo {
    /// Starts the demo on `data` (ports free, or as `addrs` says) and waits for its welcome text.
    fn start(data: &Path, env: &[(&str, &str)], log: PathBuf, addrs: [&str; 2]) -> Demo {
        let args = ["demo", "--firewall-addr", addrs[0], "--xdr-addr", addrs[1]];
        let mut p = Process::spawn(&args, data, env, log);
        let deadline = Instant::now() + Duration::from_secs(60);
        let value = |line: &str, label: &str| line.strip_prefix(label).map(|rest| rest.trim().to_owned());
        let base = |url: String| url.split("/api/v1").next().expect("a URL").trim().to_owned();
        let (mut firewall, mut xdr, mut key) = (None, None, None);
        while firewall.is_none() || xdr.is_none() || key.is_none() {
            let Some(line) = p.next_line(deadline, "its addresses and key") else {
                panic!("vigie demo exited before its welcome. Output:\n{}\nLog:\n{}", p.seen.join("\n"), p.log_tail())
            };
            firewall = firewall.or(value(&line, "Firewall API:").map(base));
            xdr = xdr.or(value(&line, "XDR API:").map(base));
            key = key.or(value(&line, "XDR key:"));
        }
        let welcomed = Instant::now();
        let key = key.expect("a key");
        assert!(key.starts_with("vxk_") && !key.contains(' '), "the key alone after `XDR key:`: {key:?}");
        let password = p.seen.iter().find_map(|l| value(l, "Admin password:"));
        Demo { firewall: firewall.expect("firewall"), xdr: xdr.expect("xdr"), key, password, welcomed, p }
    }

    /// The whole welcome text (up to the line that explains the live summary).
    fn welcome(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        self.p.wait_line(deadline, "the end of the welcome", |l| l.starts_with("Live, this run:"));
        self.p.seen.join("\n")
    }

    /// A request to the XDR with `key`: the status and the JSON body.
    async fn xdr_call(&self, http: &reqwest::Client, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = http.request(method.parse().expect("a method"), format!("{}{path}", self.xdr)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{method} {path} on the XDR: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A GET on the XDR with this run's key, which must answer 200.
    async fn xdr(&self, http: &reqwest::Client, path: &str) -> Value {
        let (status, body) = self.xdr_call(http, "GET", path, &self.key, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A change on the XDR with this run's key, which must answer 2xx.
    async fn xdr_change(&self, http: &reqwest::Client, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.xdr_call(http, method, path, &self.key, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// The admin's session token on the firewall.
    async fn firewall_login(&self, http: &reqwest::Client, password: &str) -> String {
        let login = http
            .post(format!("{}/api/v1/auth/login", self.firewall))
            .json(&json!({"email": ADMIN, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(login.status().as_u16(), 200, "firewall login with the admin password");
        login.json::<Value>().await.expect("login JSON")["token"].as_str().expect("a token").to_owned()
    }

    /// A request to the firewall with `token`, which must answer 2xx; its JSON body.
    async fn firewall(&self, http: &reqwest::Client, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = http.request(method.parse().expect("a method"), format!("{}{path}", self.firewall)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{method} {path} on the firewall: {e}"));
        let status = r.status().as_u16();
        let answer = r.json().await.unwrap_or(Value::Null);
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
        answer
    }

    /// A console page, as a browser logged in with this run's key gets it (the login form with
    /// its CSRF cookie, then the session cookie).
    async fn console_page(&self, http: &reqwest::Client, path: &str) -> String {
        let form = http.get(format!("{}/login?next={path}", self.xdr)).header("accept", "text/html").send().await.expect("login page");
        let cookies = set_cookies(form.headers());
        let html = form.text().await.expect("login page");
        let marker = "name=\"_csrf\" value=\"";
        let at = html.find(marker).unwrap_or_else(|| panic!("no CSRF field in the login page: {html}")) + marker.len();
        let csrf = &html[at..at + html[at..].find('"').expect("closing quote")];
        let body = format!("_csrf={}&next={}&key={}", encode(csrf), encode(path), encode(&self.key));
        let login = http
            .post(format!("{}/login", self.xdr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookies)
            .body(body)
            .send()
            .await
            .expect("login");
        assert_eq!(login.status().as_u16(), 303, "console login with the XDR key");
        let session = set_cookies(login.headers());
        let page =
            http.get(format!("{}{path}", self.xdr)).header("accept", "text/html").header("cookie", session).send().await.expect("page");
        assert_eq!(page.status().as_u16(), 200, "GET {path} in the console");
        page.text().await.expect("page")
    }

    /// Ctrl-C: exit status 0, then the last summary line and where the data stays. The summary.
    fn stop(&mut self) -> String {
        let status = self.p.interrupt(Duration::from_secs(20));
        assert!(status.success(), "exit status {status}. Log:\n{}", self.p.log_tail());
        self.p.read_to_end(Instant::now() + Duration::from_secs(5));
        let at =
            self.p.seen.iter().position(|l| l.starts_with("Stopped. The data stays in") && l.contains("run the same command to resume"));
        let at = at.unwrap_or_else(|| panic!("no final line. Output:\n{}", self.p.seen.join("\n")));
        assert!(at > 0, "a summary before the final line");
        self.p.seen[at - 1].clone()
    }

    /// The log holds neither `secrets`.
    fn assert_log_keeps(&self, secrets: &[&str]) {
        let log = self.p.log_text();
        assert!(log.contains("listening"), "the log was written: {log}");
        for s in secrets {
            assert!(!log.contains(s), "the log holds a secret ({}…)", &s[..6]);
        }
    }
}

/// The `name=value` pairs of a response's `Set-Cookie` headers, as a `Cookie` header.
fn set_cookies(h: &reqwest::header::HeaderMap) -> String {
    h.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned)).collect::<Vec<_>>().join("; ")
}

/// `s` percent-encoded for a form.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Polls `check` every 250 ms until it gives a value or `deadline` passes (then fails with
/// `what`).
async fn poll<T, F, Fut>(deadline: Instant, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn items(v: &Value) -> &[Value] {
    v["items"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The figures of a summary line (`12 sent · 3 blocked · 20 events · …`) by their label.
fn figures(line: &str) -> std::collections::HashMap<String, u64> {
    line.split(" · ")
        .filter_map(|part| {
            let (n, label) = part.trim().split_once(' ')?;
            Some((label.to_owned(), n.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_everything_within_a_minute_and_a_resumed_run_keeps_what_was_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let http = http();
    let free = ["127.0.0.1:0", "127.0.0.1:0"];

    // First run, no password given: the demo generates one and prints it.
    let mut first = Demo::start(&data, &[], dir.path().join("first.log"), free);
    let deadline = first.welcomed + WITHIN;
    let password = first.password.clone().unwrap_or_else(|| panic!("an `Admin password:` line. Output:\n{}", first.p.seen.join("\n")));
    assert!(!password.contains(' ') && password.len() >= 12, "the password alone after the label: {password:?}");
    let token = first.firewall_login(&http, &password).await;

    let people = first.xdr(&http, "/api/v1/people?limit=500").await;
    let people = items(&people);
    assert_eq!(people.len(), PEOPLE, "the directory holds the organisation");
    let offender = people.iter().find(|p| p["user_id"] == OFFENDER_ID).expect("the offender is in the directory");
    assert_eq!(offender["display_name"], OFFENDER_NAME);
    assert_eq!(offender["manager_email"], MANAGER_EMAIL);

    let q = format!("/api/v1/alerts?user_id={OFFENDER_ID}&limit=500");
    poll(deadline, "rule 2 alerting on the offender", || async {
        items(&first.xdr(&http, &q).await).iter().any(|a| a["rule"]["name"] == REPEATED).then_some(())
    })
    .await;

    let task = format!("Security review with {OFFENDER_NAME}");
    poll(deadline, "the default playbook's case with its review task", || async {
        let cases = first.xdr(&http, "/api/v1/cases?tag=ai-platform&limit=500").await;
        for c in items(&cases).iter().filter(|c| c["title"].as_str().is_some_and(|t| t.contains(OFFENDER_NAME))) {
            let detail = first.xdr(&http, &format!("/api/v1/cases/{}", c["id"].as_str().expect("an id"))).await;
            if detail["tasks"].as_array().is_some_and(|t| t.iter().any(|t| t["title"] == task.as_str())) {
                return Some(());
            }
        }
        None
    })
    .await;

    poll(deadline, "the manager's e-mail delivered to the sink", || async {
        let log = first.xdr(&http, "/api/v1/notifications?status=succeeded&limit=500").await;
        for n in items(&log).iter().filter(|n| n["source"] == "direct" && n["subject"].as_str().is_some_and(|s| s.contains(OFFENDER_NAME)))
        {
            let detail = first.xdr(&http, &format!("/api/v1/notifications/{}", n["id"].as_str().expect("an id"))).await;
            if detail["message"].to_string().contains(MANAGER_EMAIL) && detail["channel"] == "soc" {
                return Some(());
            }
        }
        None
    })
    .await;
    let mailbox = first.console_page(&http, "/mailbox").await;
    assert!(
        mailbox.contains(MANAGER_EMAIL) && mailbox.contains(OFFENDER_NAME),
        "the console's mailbox shows the manager's e-mail: {mailbox}"
    );

    let dashboards = first.xdr(&http, "/api/v1/dashboards").await;
    let dashboard = items(&dashboards).first().and_then(|d| d["id"].as_str()).expect("the default dashboard").to_owned();
    poll(deadline, "the dashboard showing data", || async {
        let d = first.xdr(&http, &format!("/api/v1/dashboards/{dashboard}/data?range=24h")).await;
        let counted = |row: &serde_json::Map<String, Value>| row.get("count").and_then(Value::as_f64).is_some_and(|n| n > 0.0);
        d["widgets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["rows"].as_array())
            .flatten()
            .any(|r| r.as_object().is_some_and(counted))
            .then_some(())
    })
    .await;
    println!("rules, case, e-mail and dashboard within {:?} of the welcome text", first.welcomed.elapsed());

    // Changes a person makes while the demo runs; the next run must keep every one.
    first.xdr_change(&http, "PATCH", &format!("/api/v1/people/{EDITED_ID}"), Some(json!({"display_name": "Marta Kowalska-Nowak"}))).await;
    first.xdr_change(&http, "DELETE", &format!("/api/v1/people/{DELETED_ID}"), None).await;
    let rules = first.xdr(&http, "/api/v1/rules?limit=500").await;
    let rule4 = items(&rules).iter().find(|r| r["name"] == "Critical alert from the AI firewall").expect("default rule 4");
    assert_eq!(rule4["enabled"], true, "the demo enabled the default rules: {rule4}");
    let rule4 = rule4["id"].as_str().expect("an id").to_owned();
    first.xdr_change(&http, "PUT", &format!("/api/v1/rules/{rule4}/disabled"), None).await;
    let channels = first.xdr(&http, "/api/v1/notifications/channels?limit=500").await;
    let soc = items(&channels).iter().find(|c| c["name"] == "soc").expect("the soc channel")["id"].as_str().expect("an id").to_owned();
    first.xdr_change(&http, "PATCH", &format!("/api/v1/notifications/channels/{soc}"), Some(json!({"enabled": false}))).await;
    let policies = first.firewall(&http, &token, "GET", "/api/v1/policies?limit=500", None).await;
    let policies = items(&policies).to_vec();
    assert!(policies.len() >= 5, "the starter policies: {policies:?}");
    let log_high = policies.iter().find(|p| p["name"] == "Log high risk").expect("the starter policy Log high risk")["id"].clone();
    first.firewall(&http, &token, "DELETE", &format!("/api/v1/policies/{}", log_high.as_str().expect("an id")), None).await;
    let hooks = first.firewall(&http, &token, "GET", "/api/v1/webhooks?limit=500", None).await;
    let hook = items(&hooks).first().expect("the webhook to the XDR")["id"].as_str().expect("an id").to_owned();
    first.firewall(&http, &token, "PATCH", &format!("/api/v1/webhooks/{hook}"), Some(json!({"active": false}))).await;

    // Ctrl-C: this run's figures, then where the data stays.
    let old_key = first.key.clone();
    let summary = first.stop();
    let f = figures(&summary);
    for label in ["sent", "events", "alerts", "cases", "e-mails"] {
        assert!(f.get(label).is_some_and(|n| *n > 0), "{label} > 0 in the last summary: {summary:?}");
    }
    first.assert_log_keeps(&[&password, &old_key]);
    drop(first);

    // Second run on the same directory: resumed, every change kept, new credentials.
    let resumed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut second = Demo::start(&data, &[], dir.path().join("second.log"), free);
    let welcome = second.welcome();
    assert!(second.password.is_none(), "no new password on a resumed run: {welcome}");
    assert!(welcome.contains("Resumed:") && !welcome.contains("Imported"), "resumed, nobody imported: {welcome}");
    assert!(welcome.contains("Resolve or close alerts") && !welcome.contains("Within a minute"), "what a resumed run shows: {welcome}");
    assert_ne!(second.key, old_key);
    let (status, body) = second.xdr_call(&http, "GET", "/api/v1/people?limit=500", &old_key, None).await;
    assert_eq!(status, 401, "the previous console key is refused: {body}");

    let people = second.xdr(&http, "/api/v1/people?limit=500").await;
    assert_eq!(items(&people).len(), PEOPLE - 1, "the deleted person stays deleted");
    let edited = items(&people).iter().find(|p| p["user_id"] == EDITED_ID).expect("the edited person");
    assert_eq!(edited["display_name"], "Marta Kowalska-Nowak", "the edit is kept");
    let rule = second.xdr(&http, &format!("/api/v1/rules/{rule4}")).await;
    assert_eq!(rule["enabled"], false, "the disabled default rule stays disabled: {rule}");
    let channels = second.xdr(&http, "/api/v1/notifications/channels?limit=500").await;
    assert_eq!(items(&channels).len(), 1, "one channel: {channels}");
    let channel = second.xdr(&http, &format!("/api/v1/notifications/channels/{soc}")).await;
    assert_eq!(channel["enabled"], false, "the disabled soc channel stays disabled: {channel}");
    assert_eq!(channel["settings"]["to"], json!(["soc@alpenrose-logistics.example"]), "{channel}");

    let token = second.firewall_login(&http, &password).await;
    let now = items(&second.firewall(&http, &token, "GET", "/api/v1/policies?limit=500", None).await).to_vec();
    assert_eq!(now.len(), policies.len() - 1, "the deleted starter policy does not come back: {now:?}");
    assert!(!now.iter().any(|p| p["name"] == "Log high risk"));
    let tokens = second.firewall(&http, &token, "GET", "/api/v1/tokens?limit=500", None).await;
    let traffic: Vec<&Value> = items(&tokens).iter().filter(|t| t["name"] == "demo traffic").collect();
    let live: Vec<&&Value> = traffic.iter().filter(|t| t["revoked_at"].is_null()).collect();
    assert_eq!((traffic.len(), live.len()), (2, 1), "one traffic token a run, the previous one revoked: {tokens}");
    assert!(live[0]["expires_at"].is_null(), "the traffic token does not expire after a day: {}", live[0]);
    let hooks = second.firewall(&http, &token, "GET", "/api/v1/webhooks?limit=500", None).await;
    assert_eq!(items(&hooks).len(), 1, "one webhook: {hooks}");
    let hook = &items(&hooks)[0];
    assert_eq!(hook["active"], true, "the disabled webhook to the XDR is enabled again: {hook}");
    assert!(hook["url"].as_str().is_some_and(|u| u.starts_with(&second.xdr)), "pointing at this run's XDR: {hook}");

    // The events reach the XDR at its new address.
    let deadline = Instant::now() + Duration::from_secs(30);
    poll(deadline, "an event of the second run reaching the XDR", || async {
        (!items(&second.xdr(&http, &format!("/api/v1/events?from={resumed_at}&limit=1")).await).is_empty()).then_some(())
    })
    .await;

    // The soc channel, enabled again as the console's form does it (sending its host and port
    // back), sends through this run's mail sink.
    let settings = json!({"host": channel["settings"]["host"], "port": channel["settings"]["port"]});
    second
        .xdr_change(&http, "PATCH", &format!("/api/v1/notifications/channels/{soc}"), Some(json!({"enabled": true, "settings": settings})))
        .await;
    let test = second.xdr_change(&http, "POST", &format!("/api/v1/notifications/channels/{soc}/test"), None).await;
    assert_eq!(test["status"], "succeeded", "the channel test reaches this run's mail sink: {test}");
    let log = second.xdr(&http, "/api/v1/notifications?channel=soc&limit=500").await;
    let logged = items(&log).iter().find(|n| n["id"] == test["notification_id"]).expect("the test in the delivery log");
    assert_eq!((logged["source"].as_str(), logged["status"].as_str()), (Some("test"), Some("succeeded")), "{logged}");
    let subject = logged["subject"].as_str().expect("a subject");
    let mailbox = second.console_page(&http, "/mailbox").await;
    assert!(mailbox.contains(subject), "the console's mailbox shows the test message {subject:?}: {mailbox}");
    // The mailbox is kept in the data dir: the first run's manager e-mail is still there.
    assert!(
        mailbox.contains(MANAGER_EMAIL) && mailbox.contains(OFFENDER_NAME),
        "the resumed demo's mailbox still shows the first run's e-mail to the manager: {mailbox}"
    );

    let new_key = second.key.clone();
    second.stop();
    second.assert_log_keeps(&[&password, &new_key]);
    assert!(second.p.log_text().contains("enabling it again"), "the log says the webhook was enabled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_creates_no_admin_when_it_cannot_listen_and_sets_up_a_directory_serve_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let http = http();

    // A rate out of range is refused, with the range, before anything is created (1e-20 a
    // second made the send interval overflow: regression, review 2, item 12).
    for rate in ["1e-20", "0", "20000"] {
        let mut p = Process::spawn(&["demo", "--rate", rate], &data, &[], dir.path().join("rate.log"));
        let status = p.exit(Duration::from_secs(20));
        assert_eq!(status.code(), Some(2), "--rate {rate} exits 2. Log:\n{}", p.log_tail());
        let said = p.log_text();
        assert!(said.contains(&format!("--rate {:?}", rate.parse::<f64>().expect("a number"))), "{said}");
        assert!(said.contains("between 0.001 and 10000 interactions per second"), "the message gives the range: {said}");
    }
    assert!(!data.join("firewall.db").exists() && !data.join("xdr.db").exists(), "nothing created: {:?}", std::fs::read_dir(&data).ok());

    // The demo runs both halves: another role is refused before anything is created.
    let mut p = Process::spawn(&["demo", "--role", "xdr"], &data, &[], dir.path().join("role.log"));
    let status = p.exit(Duration::from_secs(20));
    assert!(!status.success(), "--role xdr is refused");
    assert!(p.log_text().contains("leave --role unset"), "{}", p.log_tail());
    assert!(!data.join("firewall.db").exists() && !data.join("xdr.db").exists(), "nothing created: {:?}", std::fs::read_dir(&data).ok());

    // The firewall's port is taken: the run fails, and no admin is created.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken = busy.local_addr().expect("its address").to_string();
    let mut p = Process::spawn(&["demo", "--firewall-addr", &taken, "--xdr-addr", "127.0.0.1:0"], &data, &[], dir.path().join("busy.log"));
    let status = p.exit(Duration::from_secs(30));
    p.read_to_end(Instant::now() + Duration::from_secs(5));
    assert!(!status.success(), "a busy port fails the run");
    assert!(p.log_text().contains("cannot listen on"), "{}", p.log_tail());
    assert!(!p.seen.iter().any(|l| l.contains("password")), "no admin yet: {:?}", p.seen);
    drop(busy);

    // `vigie serve` first: it creates the admin (so the failed run had not) and prints the
    // password.
    let mut serve =
        Process::spawn(&["serve", "--firewall-addr", "127.0.0.1:0", "--xdr-addr", "127.0.0.1:0"], &data, &[], dir.path().join("serve.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    serve.wait_line(deadline, "the generated password", |l| l.starts_with("Admin password (shown once"));
    serve.wait_line(deadline, "its addresses", |l| l.starts_with("XDR API:"));
    assert!(serve.interrupt(Duration::from_secs(20)).success(), "serve stops on Ctrl-C");

    // The demo's first run on it, on wildcard addresses: the whole organisation, and addresses a
    // browser can open.
    let mut demo = Demo::start(&data, &[], dir.path().join("demo.log"), ["0.0.0.0:0", "0.0.0.0:0"]);
    let welcome = demo.welcome();
    assert!(demo.password.is_none(), "the password was printed by serve: {welcome}");
    for said in [
        "Imported 40 people",
        "Enabled the 4 default detection rules",
        "Created the e-mail channel \"soc\"",
        "Installed 5 starter policies",
    ] {
        assert!(welcome.contains(said), "{said:?} in the welcome: {welcome}");
    }
    assert!(!welcome.contains("Resumed:"), "{welcome}");
    assert!(demo.firewall.starts_with("http://127.0.0.1:") && demo.xdr.starts_with("http://127.0.0.1:"), "{welcome}");
    assert!(!welcome.contains("0.0.0.0"), "no wildcard address printed: {welcome}");
    let rules = demo.xdr(&http, "/api/v1/rules?limit=500").await;
    let enabled = items(&rules).iter().filter(|r| r["enabled"] == true).count();
    assert_eq!(enabled, 4, "the default rules are on: {rules}");
    let keys = demo.xdr(&http, "/api/v1/keys?limit=500").await;
    let console = items(&keys).iter().find(|k| k["name"] == "demo console" && k["revoked_at"].is_null()).expect("the console key");
    let expires = console["expires_at"].as_str().and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok()).expect("an expiry");
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((7 * 24 - 1..=7 * 24).contains(&days), "the console key works 7 days: {console}");
    assert!(welcome.contains("it works 7 days"), "the welcome says so: {welcome}");
    // The traffic reaches the firewall and the XDR through the loopback addresses.
    poll(Instant::now() + Duration::from_secs(30), "an event reaching the XDR", || async {
        (!items(&demo.xdr(&http, "/api/v1/events?limit=1").await).is_empty()).then_some(())
    })
    .await;
}
