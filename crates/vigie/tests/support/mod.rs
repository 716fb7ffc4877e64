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
