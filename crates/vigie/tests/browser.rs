//! The consoles in a real browser: `vigie demo` (the real binary, both halves, simulated traffic,
//! its organisation in the people directory and its mail sink) on free loopback ports, then
//! `node tests/browser/console.mjs` — Playwright driving Debian's Chromium through every page
//! of both consoles (at 1280×800 and on a 390 px phone, as the admin and read-only) and the flows
//! of issue 9 (its header lists the checks). Screenshots and the bytes of each page load
//! (`bytes.json`) are written to `target/browser-screenshots/`.
//!
//! Needs Chromium (`/usr/bin/chromium`, or the path in `CHROMIUM`) and the script's packages
//! (`tests/browser/node_modules`): `.ci/run` installs both. Without them this test fails; it never
//! skips, so a CI run cannot pass without having driven the browser.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "browser test password 9";
const ADMIN: &str = "admin@vigie.local";
/// The whole browser run, at most (the script bounds itself to less).
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// A child process killed (and reaped) when dropped, so a failing assertion leaves nothing behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// `vigie`, without the caller's `VIGIE_*` environment.
fn vigie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("VIGIE_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// What the browser run needs besides this repository, or why it cannot run.
fn prerequisites(root: &Path) -> Result<PathBuf, String> {
    let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!("Chromium ({}; apt-get install -y chromium)", chromium.display()));
    }
    if !root.join("tests/browser/node_modules/playwright-core").is_dir() {
        missing.push("the script's packages (npm ci --prefix tests/browser)".to_owned());
    }
    if Command::new("node").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        missing.push("Node.js (node)".to_owned());
    }
    if missing.is_empty() {
        Ok(chromium)
    } else {
        Err(format!("the browser tests cannot run: missing {}. Run `bash .ci/run` once (it installs them).", missing.join(", ")))
    }
}

/// Waits for `url` to answer 200.
async fn ready(http: &reqwest::Client, url: &str, deadline: Instant, log: &Path) {
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered 200: {}", std::fs::read_to_string(log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_consoles_work_in_a_real_browser() {
    let root = repo_root();
    let chromium = match prerequisites(&root) {
        Ok(c) => c,
        Err(why) => panic!("{why}"),
    };
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target folder").join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("the screenshots folder");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("demo.log");

    // The demo, with loopback webhooks allowed (the webhook flow points one at the script's own
    // receiver). Free ports: it prints the addresses it got.
    let mut child = vigie()
        .args([
            "demo",
            "--rate",
            "10",
            "--allow-private-webhooks",
            "--firewall-addr",
            "127.0.0.1:0",
            "--xdr-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("VIGIE_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn vigie demo");
    let stdout = child.stdout.take().expect("stdout");
    let demo = Killed(child);
    let (tx, lines) = std::sync::mpsc::channel();
    // Drains stdout for the life of the process (the demo prints a summary every 2 seconds).
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut fw, mut xdr) = (None, None);
    while fw.is_none() || xdr.is_none() {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("vigie demo did not print its addresses: {}", std::fs::read_to_string(&log).unwrap_or_default()));
        let base = |rest: &str| rest.trim().split("/api/v1").next().expect("a URL").to_owned();
        if let Some(rest) = line.strip_prefix("Firewall API:") {
            fw = Some(base(rest));
        } else if let Some(rest) = line.strip_prefix("XDR API:") {
            xdr = Some(base(rest));
        }
    }
    let (fw, xdr) = (fw.expect("firewall"), xdr.expect("xdr"));
    let http = reqwest::Client::new();
    ready(&http, &format!("{fw}/readyz"), deadline, &log).await;
    ready(&http, &format!("{xdr}/readyz"), deadline, &log).await;

    // A key with every scope, made as an operator would, with the server running.
    let out = vigie()
        .args(["keys", "create", "--space", "default", "--name", "browser tests", "--scope"])
        .arg(
            "events_write,events_read,alerts_read,alerts_write,cases_read,cases_write,rules_read,rules_write,\
             playbooks_read,playbooks_write,intel_read,intel_write,admin",
        )
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("vigie keys create");
    assert!(out.status.success(), "vigie keys create: {}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).lines().last().expect("the key on the last line").trim().to_owned();
    assert!(key.starts_with("vxk_"), "{key}");

    // The browser run, bounded in time; its output goes to files (never a full pipe).
    let node_out = dir.path().join("node.out");
    let node = Command::new("node")
        .arg(root.join("tests/browser/console.mjs"))
        .current_dir(&root)
        .env("FIREWALL_URL", &fw)
        .env("XDR_URL", &xdr)
        .env("ADMIN_EMAIL", ADMIN)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("XDR_KEY", &key)
        .env("CHROMIUM", &chromium)
        .env("OUT_DIR", &out_dir)
        .stdout(std::fs::File::create(&node_out).expect("node output file"))
        .stderr(std::fs::File::create(dir.path().join("node.err")).expect("node error file"))
        .spawn()
        .expect("spawn node");
    let mut node = Killed(node);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = node.0.try_wait().expect("wait for node") {
            break Some(s);
        }
        if started.elapsed() > RUN_LIMIT {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(node);
    let output = std::fs::read_to_string(&node_out).unwrap_or_default();
    let errors = std::fs::read_to_string(dir.path().join("node.err")).unwrap_or_default();
    println!("{output}");
    if !errors.is_empty() {
        println!("--- stderr of the browser script\n{errors}");
    }
    drop(demo);
    match status {
        None => panic!("the browser run took more than {RUN_LIMIT:?}; its output is above"),
        Some(s) => assert!(
            s.success(),
            "the browser run failed ({s}); its output is above, screenshots in {}. Demo log tail:\n{}",
            out_dir.display(),
            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 40)
        ),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
