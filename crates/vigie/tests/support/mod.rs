//! What the binary's process tests share: a `vigie` command without the caller's `VIGIE_*`
//! environment, and a `vigie serve --role xdr` process killed when dropped.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::{Instant, timeout_at};

/// A `vigie serve --role xdr` process, killed when dropped (a failing assertion leaves no server
/// behind).
pub struct Xdr {
    child: Child,
    /// `http://host:port`.
    pub base: String,
    log: PathBuf,
}

/// The binary, without the caller's `VIGIE_*` environment.
pub fn vigie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("VIGIE_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

impl Xdr {
    /// Starts the XDR on `data` and `addr`, waits for the address it prints and for `/readyz` to
    /// answer 200.
    pub async fn start(data: &Path, addr: &str, log: PathBuf, deadline: Instant) -> Xdr {
        // stderr goes to a file so a chatty log can never fill a pipe and stall the server.
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = vigie()
            .args(["serve", "--role", "xdr", "--xdr-addr", addr, "--data-dir"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn vigie");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        // Drains stdout for the life of the process: a closed pipe would make a later print fail.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut xdr = Xdr { child, base: String::new(), log };
        loop {
            match timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(rest) = line.strip_prefix("XDR API:") {
                        xdr.base = rest.trim().split("/api/v1").next().expect("a URL").to_owned();
                        break;
                    }
                }
                Ok(None) => panic!("vigie exited before listening: {}", xdr.log_text()),
                Err(_) => panic!("vigie did not print its address in time: {}", xdr.log_text()),
            }
        }
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", xdr.base)).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return xdr;
            }
            assert!(Instant::now() < deadline, "/readyz never answered 200: {}", xdr.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `host:port`, to start again on the same address.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Xdr {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates a key in space `space` as an operator would, with the server running; it is the last
/// line printed.
pub fn create_key(data: &Path, space: &str, scopes: &str) -> String {
    let out = vigie()
        .args(["keys", "create", "--space", space, "--scope", scopes, "--name", "test", "--data-dir"])
        .arg(data)
        .output()
        .expect("vigie keys create");
    assert!(out.status.success(), "vigie keys create: {}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).lines().last().expect("the key on the last line").trim().to_owned();
    assert!(key.starts_with("vxk_"), "{key}");
    key
}

/// A `vigie demo` on free loopback ports in a data dir of its own, killed when dropped: the
/// addresses and the console key it printed, its stdout drained for its whole life (it prints a
/// summary every few seconds; a full pipe would stall it), its log (stderr) in a file.
pub struct Demo {
    child: Child,
    /// `http://host:port` of the firewall.
    pub firewall: String,
    /// `http://host:port` of the XDR.
    pub xdr: String,
    /// The XDR console key the demo printed (every scope but events_write).
    pub key: String,
    /// The data dir.
    pub data: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts `vigie demo` with `args` (besides the addresses and the data dir) and the admin
    /// password `password`; waits, until `within` has passed, for the lines `Firewall API:`,
    /// `XDR API:` and `XDR key:` and for both halves' `/readyz` to answer 200.
    pub async fn start(args: &[&str], password: &str, within: Duration) -> Demo {
        let deadline = Instant::now() + within;
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, log) = (dir.path().join("data"), dir.path().join("demo.log"));
        let mut child = vigie()
            .arg("demo")
            .args(args)
            .args(["--firewall-addr", "127.0.0.1:0", "--xdr-addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("VIGIE_ADMIN_PASSWORD", password)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn vigie demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut demo = Demo { child, firewall: String::new(), xdr: String::new(), key: String::new(), data, log, _dir: dir };
        let mut seen = Vec::new();
        while demo.firewall.is_empty() || demo.xdr.is_empty() || demo.key.is_empty() {
            let line = match timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => panic!("vigie demo exited before printing its addresses:\n{}\nlog:\n{}", seen.join("\n"), demo.log_text()),
                Err(_) => panic!("vigie demo did not print its addresses in time:\n{}\nlog:\n{}", seen.join("\n"), demo.log_text()),
            };
            let base = |rest: &str| rest.trim().split("/api/v1").next().expect("a URL").trim().to_owned();
            if let Some(rest) = line.strip_prefix("Firewall API:") {
                demo.firewall = base(rest);
            } else if let Some(rest) = line.strip_prefix("XDR API:") {
                demo.xdr = base(rest);
            } else if let Some(rest) = line.strip_prefix("XDR key:") {
                demo.key = rest.trim().to_owned();
            }
            seen.push(line);
        }
        // The rest of stdout is read and dropped.
        tokio::spawn(async move { while lines.recv().await.is_some() {} });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
        for base in [demo.firewall.clone(), demo.xdr.clone()] {
            loop {
                if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                    && r.status() == reqwest::StatusCode::OK
                {
                    break;
                }
                assert!(Instant::now() < deadline, "{base}/readyz never answered 200: {}", demo.log_text());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        demo
    }

    /// The demo's log (stderr) so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
