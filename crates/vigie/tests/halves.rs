//! `vigie serve` with both halves, as a user runs it: an interaction posted to the firewall is an
//! event in the XDR within 2 seconds, through the webhook the first start created — both HTTP
//! servers, the real binary, nothing in between.
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vigie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("VIGIE_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Starts `vigie serve` (both halves) and returns it with the two base URLs it prints.
fn serve(data: &std::path::Path) -> (Server, String, String) {
    let mut child = vigie()
        .args(["serve", "--firewall-addr", "127.0.0.1:0", "--xdr-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("VIGIE_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vigie");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let (mut fw, mut xdr) = (None, None);
    while fw.is_none() || xdr.is_none() {
        let line = lines.next().expect("vigie printed its addresses before exiting").expect("a line");
        let base = |rest: &str| rest.trim().split("/api/v1").next().expect("a URL").to_owned();
        if let Some(rest) = line.strip_prefix("Firewall API:") {
            fw = Some(base(rest));
        } else if let Some(rest) = line.strip_prefix("XDR API:") {
            xdr = Some(base(rest));
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, fw.expect("firewall"), xdr.expect("xdr"))
}

#[tokio::test]
async fn an_interaction_posted_to_the_firewall_is_an_xdr_event_within_two_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, fw, xdr) = serve(dir.path());
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{fw}/api/v1/auth/login"))
        .json(&json!({"email": "admin@vigie.local", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["token"].as_str().expect("token").to_owned();
    // A reader key for the XDR, made as an operator would, while the server runs.
    let out = vigie()
        .args(["keys", "create", "--space", "default", "--scope", "events_read", "--name", "test reader", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("vigie keys create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).lines().last().expect("the key on the last line").trim().to_owned();
    assert!(key.starts_with("vxk_"), "{key}");

    let posted = Instant::now();
    let r: Value = http
        .post(format!("{fw}/api/v1/interactions"))
        .bearer_auth(&token)
        .json(&json!({"platform_id": "deepseek", "content_hash": "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3",
            "risk_score": 0.95, "classifications": [{"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.99}]}))
        .send()
        .await
        .expect("interaction")
        .json()
        .await
        .expect("json");
    let interaction = r["id"].as_str().expect("id").to_owned();
    // The high-risk event, normalised, in the XDR: looked for until the 2-second bound.
    let found = loop {
        let page: Value = http
            .get(format!("{xdr}/api/v1/events?event_type=interaction.high_risk"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        if let Some(e) = page["items"].as_array().and_then(|items| items.iter().find(|e| e["interaction_id"] == interaction.as_str())) {
            break e.clone();
        }
        assert!(posted.elapsed() < Duration::from_secs(2), "no XDR event 2 s after the interaction: {page}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("interaction → XDR event in {:?}", posted.elapsed());
    assert_eq!((found["source"].as_str(), found["platform_id"].as_str()), (Some("noxys"), Some("deepseek")));
    assert_eq!(found["classification_type"], json!(["CREDIT_CARD"]));
    assert_eq!(found["data.interaction.classifications"][0]["value"], "****0366", "masked values only");
    // The firewall trusts the XDR's loopback address for its own webhook only: a tenant's admin
    // cannot point another webhook at it.
    let refused = http
        .post(format!("{fw}/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": format!("{xdr}/api/v1/keys"), "events": ["interaction.created"]}))
        .send()
        .await
        .expect("create");
    assert_eq!(refused.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    // interaction.created is not among the events the default webhook carries.
    let page: Value = http
        .get(format!("{xdr}/api/v1/events?event_type=interaction.created"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(page["items"], json!([]));
}
