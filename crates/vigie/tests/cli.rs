//! The binary as an operator runs it: configuration errors, first start, resume, graceful stop.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn vigie() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigie"));
    for var in ["VIGIE_ROLE", "VIGIE_DATA_DIR", "VIGIE_FIREWALL_ADDR", "VIGIE_ADMIN_PASSWORD", "VIGIE_SECRET_KEY", "VIGIE_CONFIG"] {
        c.env_remove(var);
    }
    c
}

/// Starts `vigie serve` and reads its stdout until it prints the API address; returns the child,
/// the base URL and every line printed before it.
fn start(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Child, String, Vec<String>) {
    let mut cmd = vigie();
    cmd.args(["serve", "--role", "firewall", "--firewall-addr", "127.0.0.1:0", "--data-dir"]).arg(dir);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    // stderr goes to a file so a chatty log can never fill a pipe and stall the server.
    let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
    let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().expect("spawn vigie");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("Firewall API: ") {
            let base = rest.split("/api/v1").next().expect("url").to_owned();
            return (child, base, lines);
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait");
    panic!("vigie exited ({status}) before listening: {lines:?}");
}

fn stop(mut child: Child, dir: &std::path::Path) -> String {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            let err = std::fs::read_to_string(dir.join("stderr.log")).expect("read log");
            assert!(code.success(), "exit {code}: {err}");
            return err;
        }
        assert!(Instant::now() < deadline, "vigie did not stop after SIGTERM");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn login(base: &str, password: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "admin@vigie.local", "password": password}))
            .send()
            .await
            .expect("login request")
            .status()
            .as_u16()
    })
}

#[test]
fn an_invalid_configuration_names_every_bad_key_and_exits_non_zero() {
    let out =
        vigie().args(["serve", "--firewall-addr", "not-an-address", "--durability", "sometimes", "--role", "both"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["firewall_addr", "durability", "role"] {
        assert!(err.contains(key), "{key} not named in: {err}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vigie.toml");
    std::fs::write(&file, "firewal_addr = \"127.0.0.1:1\"\n").expect("write");
    let out = vigie().args(["serve", "--config"]).arg(&file).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("firewal_addr"));
}

#[test]
fn the_first_start_prints_a_working_admin_password_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, base, lines) = start(dir.path(), &[]);
    let password = lines
        .iter()
        .find_map(|l| l.rsplit_once("): ").filter(|_| l.starts_with("Admin password")).map(|(_, p)| p.to_owned()))
        .expect("password printed");
    assert_eq!(login(&base, &password), 200);
    let log = stop(child, dir.path());
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains(&password), "the password reached a log line");

    let (child, base, lines) = start(dir.path(), &[]);
    assert!(lines.iter().all(|l| !l.starts_with("Admin password")), "a second start printed a password: {lines:?}");
    assert_eq!(login(&base, &password), 200, "the data survived the restart");
    stop(child, dir.path());
}

#[test]
fn the_admin_password_can_come_from_the_environment_and_tenants_are_created_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, base, _) = start(dir.path(), &[("VIGIE_ADMIN_PASSWORD", "from the environment")]);
    assert_eq!(login(&base, "from the environment"), 200);
    let out = vigie()
        .args(["tenants", "create", "--name", "globex", "--admin-email", "root@globex.test", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("globex") && printed.contains("Admin password"), "{printed}");
    let out = vigie()
        .args(["tenants", "create", "--name", "globex", "--admin-email", "other@globex.test", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a duplicate tenant is refused");
    stop(child, dir.path());
}

/// Runs `vigie scan` with `args`, feeding `stdin`; returns the exit code, stdout and stderr.
fn scan(args: &[&std::ffi::OsStr], stdin: &[u8]) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child =
        vigie().arg("scan").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn vigie");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const CLEAN: &str = "Summarise the attached meeting notes in three bullet points.\nKeep it short.\n";

#[test]
fn scanning_a_clean_file_exits_0_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, CLEAN).expect("write");
    let (code, out, err) = scan(&[file.as_os_str()], b"");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("No sensitive data found") && out.contains(&format!("{} bytes", CLEAN.len())), "{out}");
}

#[test]
fn scanning_reads_standard_input_and_json_is_one_document() {
    for args in [vec![], vec!["-"]] {
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        args.push(std::ffi::OsStr::new("--json"));
        let (code, out, err) = scan(&args, CLEAN.as_bytes());
        assert_eq!(code, Some(0), "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
        assert_eq!(v, serde_json::json!({"findings": [], "risk_score": 0.0, "classification_count": 0, "bytes": CLEAN.len()}));
    }
}

#[test]
fn scanning_a_missing_file_exits_2_with_one_line_saying_what_to_do() {
    let (code, out, err) = scan(&[std::ffi::OsStr::new("/no/such/file.txt")], b"");
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/no/such/file.txt") && err.contains("check the path"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = scan(&[dir.path().as_os_str()], b"");
    assert_eq!(code, Some(2), "a directory: {err}");
}

/// Needs the detection engine.
#[test]
fn scanning_a_file_with_a_card_exits_1_and_prints_only_masked_values_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prompt.txt");
    // Over one read of 64 KiB: lines are counted across reads.
    let mut text = "Une ligne sans rien de sensible, répétée.\n".repeat(2000);
    text.push_str("Ma carte : 4532 0151 1283 0366, mail alice@acme.fr\n");
    std::fs::write(&file, &text).expect("write");
    let (code, out, err) = scan(&[file.as_os_str()], b"");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("2001:12") && out.contains("CREDIT_CARD") && out.contains("****0366"), "{out}");
    assert!(out.contains("EMAIL") && out.contains("a***@acme.fr"), "{out}");
    assert!(!out.contains("4532 0151") && !out.contains("alice@"), "a raw value was printed: {out}");
    let (code, out, _) = scan(&[std::ffi::OsStr::new("--json")], text.as_bytes());
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(v["findings"][0]["type"], "CREDIT_CARD");
    assert_eq!((v["findings"][0]["line"].as_u64(), v["findings"][0]["column"].as_u64()), (Some(2001), Some(12)));
    assert!(v["risk_score"].as_f64().is_some_and(|r| r > 0.9), "{v}");
    assert_eq!(v["bytes"].as_u64(), Some(text.len() as u64));
}

/// Runs `vigie rules test` with `args`; returns the exit code, stdout and stderr.
fn rules_test(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = vigie().args(["rules", "test"]).args(args).output().expect("run");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn high_risk(id: &str, user: &str, minute: u32) -> String {
    serde_json::json!({"id": id, "type": "interaction.high_risk", "timestamp": format!("2026-11-27T10:{minute:02}:00Z"), "source": "noxys",
        "data": {"interaction": {"id": format!("i-{id}"), "user_id": user, "platform_id": "deepseek", "risk_score": 0.95,
            "classification_count": 1, "classifications": [{"type": "CREDIT_CARD"}]}}})
    .to_string()
}

#[test]
fn rules_test_runs_a_pipe_or_sigma_rule_over_a_file_of_events_as_the_xdr_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.ndjson");
    // Seven high-risk events: six from ann within the hour (given out of order), one from bo.
    let mut lines: Vec<String> = (0..6).rev().map(|k| high_risk(&format!("ann-{k}"), "ann", k * 9)).collect();
    lines.push(high_risk("bo-0", "bo", 1));
    std::fs::write(&events, lines.join("\n") + "\n\n").expect("write");
    let rule = dir.path().join("repeated.pipe");
    std::fs::write(&rule, "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour")
        .expect("write");
    let (code, out, err) = rules_test(&[rule.as_os_str(), "--events".as_ref(), events.as_os_str()]);
    assert_eq!(code, Some(1), "an alert is exit 1: {out}{err}");
    assert!(out.starts_with("7 events, 1 matches, 1 alerts"), "{out}");
    assert!(
        out.contains("repeated — ann") && out.contains("ann-0") && out.contains("ann-5") && out.contains("2026-11-27  1 matches, 1 alerts"),
        "{out}"
    );
    // The same in Sigma, as JSON.
    let sigma = dir.path().join("cards.yml");
    std::fs::write(
        &sigma,
        "title: Cards\nlogsource: {product: vigie}\ndetection:\n  sel:\n    classification_type: CREDIT_CARD\n    risk_score|gt: 0.9\n  condition: sel\n",
    )
    .expect("write");
    let (code, out, err) = rules_test(&[sigma.as_os_str(), "--events".as_ref(), events.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, Some(1), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!((v["matches"].as_u64(), v["alerts"].as_u64()), (Some(7), Some(2)), "{v}");
    // Nothing matches: exit 0.
    let none = dir.path().join("none.pipe");
    std::fs::write(&none, "platform_id == \"claude\"").expect("write");
    let (code, out, _) = rules_test(&[none.as_os_str(), "--events".as_ref(), events.as_os_str()]);
    assert_eq!((code, out.lines().next()), (Some(0), Some("7 events, 0 matches, 0 alerts (0 suppressed by the rate limit)")));
    // A rule that does not compile: exit 2, the position.
    std::fs::write(&none, "platform_id ==").expect("write");
    let (code, _, err) = rules_test(&[none.as_os_str(), "--events".as_ref(), events.as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("none.pipe: 1:15"), "{err}");
}
