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
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::{Demo, create_key};

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
    // The demo, with loopback webhooks allowed (the webhook flow points one at the script's own
    // receiver), on free ports. Then a key with every scope, made as an operator would, with
    // the server running.
    let demo = Demo::start(&["--rate", "10", "--allow-private-webhooks"], PASSWORD, Duration::from_secs(60)).await;
    let (fw, xdr) = (demo.firewall.clone(), demo.xdr.clone());
    let key = create_key(
        &demo.data,
        "default",
        "events_write,events_read,alerts_read,alerts_write,cases_read,cases_write,rules_read,rules_write,\
         playbooks_read,playbooks_write,intel_read,intel_write,admin",
    );

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
    let demo_log = demo.log_text();
    drop(demo);
    match status {
        None => panic!("the browser run took more than {RUN_LIMIT:?}; its output is above"),
        Some(s) => assert!(
            s.success(),
            "the browser run failed ({s}); its output is above, screenshots in {}. Demo log tail:\n{}",
            out_dir.display(),
            tail(&demo_log, 40)
        ),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
