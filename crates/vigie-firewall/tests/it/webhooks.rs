//! Webhooks end to end: the API, signed deliveries to a real receiver on loopback, retries,
//! health, disablement, replays, SIEM batches and isolation.
use crate::receiver::{Received, Receiver, Reply};
use crate::{HASH, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use vigie_webhook::{SigningSecret, verify};

/// Creates a webhook (asserting 201) and returns the answer.
async fn hook(s: &TestServer, body: Value) -> Value {
    let (status, w) = s.post("/api/v1/webhooks", &s.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    w
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Verifies a delivery's Standard Webhooks signature with `secret`.
fn signed_by(r: &Received, secret: &str) -> bool {
    let secret = SigningSecret::parse(secret).expect("secret");
    verify(|n| r.header(n), &r.body, &[&secret], now(), 300).is_ok()
}

async fn record(s: &TestServer, platform: &str) -> String {
    let (status, r) = s.interaction(&s.admin, interaction(platform)).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    r["id"].as_str().expect("id").to_owned()
}

/// Waits until the webhook's log holds `n` attempts, and returns them (newest first).
async fn attempts(s: &TestServer, id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + crate::receiver::DEADLINE;
    let mut commits = s.state.store.commit_signal();
    loop {
        let (status, page) = s.get(&format!("/api/v1/webhooks/{id}/deliveries?limit=500"), &s.admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        if items.len() >= n {
            return items;
        }
        assert!(tokio::time::timeout_at(deadline, commits.changed()).await.is_ok(), "only {} attempts logged: {page}", items.len());
    }
}

/// Waits until `cond` holds, looking again after each commit.
async fn until(s: &TestServer, what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + crate::receiver::DEADLINE;
    let mut commits = s.state.store.commit_signal();
    while !cond() {
        assert!(tokio::time::timeout_at(deadline, commits.changed()).await.is_ok(), "never: {what}");
    }
}

/// Waits until the webhook's object satisfies `cond`.
async fn webhook_until(s: &TestServer, id: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + crate::receiver::DEADLINE;
    let mut commits = s.state.store.commit_signal();
    loop {
        let (status, w) = s.get(&format!("/api/v1/webhooks/{id}"), &s.admin).await;
        assert_eq!(status, StatusCode::OK, "{w}");
        if cond(&w) {
            return w;
        }
        assert!(tokio::time::timeout_at(deadline, commits.changed()).await.is_ok(), "the webhook never became {what}: {w}");
    }
}

#[tokio::test]
async fn a_webhook_is_created_read_changed_and_deleted_and_its_secrets_are_never_shown_again() {
    let s = TestServer::start().await;
    let w = hook(
        &s,
        json!({"url": "https://siem.example.org/hook", "events": ["interaction.policy_violated", "INTERACTION.HIGH_RISK", "interaction.policy_violated"],
               "description": "SOC", "headers": {"X-Api-Key": "k-123456"}, "auth_token": "tok-abcdef"}),
    )
    .await;
    let id = w["id"].as_str().expect("id");
    assert!(id.starts_with("whk_") && id.len() == 36, "{id}");
    assert!(w["signing_secret"].as_str().expect("secret").starts_with("whsec_"));
    assert_eq!(w["events"], json!(["interaction.policy_violated", "interaction.high_risk"]));
    assert_eq!((w["active"].as_bool(), w["status"].as_str(), w["format"].as_str()), (Some(true), Some("healthy"), Some("standard")));
    assert_eq!(w["headers"], json!({"X-Api-Key": "********"}));
    assert_eq!(w["auth_token"], "********");

    let (_, got) = s.get(&format!("/api/v1/webhooks/{id}"), &s.admin).await;
    assert!(got.get("signing_secret").is_none(), "{got}");
    let text = got.to_string();
    assert!(!text.contains("k-123456") && !text.contains("tok-abcdef"), "{text}");

    // What a GET returns can be sent back: read-only fields are ignored, hidden values kept.
    let mut back = got.clone();
    back["description"] = json!("SOC, changed");
    back["events"] = json!(["interaction.created"]);
    let (status, changed) = s.call("PATCH", &format!("/api/v1/webhooks/{id}"), Some(&s.admin), Some(back)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!((changed["description"].as_str(), changed["events"].clone()), (Some("SOC, changed"), json!(["interaction.created"])));
    assert_eq!(changed["headers"], json!({"X-Api-Key": "********"}));

    let (status, list) = s.get("/api/v1/webhooks?active=true", &s.admin).await;
    assert_eq!((status, list["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (_, none) = s.get("/api/v1/webhooks?active=false", &s.admin).await;
    assert_eq!(none["items"], json!([]));

    // Secrets are sealed at rest: neither the signing secret nor the token is in the file.
    let secret = w["signing_secret"].as_str().expect("secret").to_owned();
    let stopped = s.stop().await;
    for file in std::fs::read_dir(stopped.path()).expect("dir") {
        let bytes = std::fs::read(file.expect("entry").path()).expect("read");
        let hay = String::from_utf8_lossy(&bytes);
        for needle in [&secret[6..], "tok-abcdef", "k-123456"] {
            assert!(!hay.contains(needle), "a secret is stored in clear");
        }
    }
}

#[tokio::test]
async fn bad_webhooks_are_refused_with_every_reason_and_viewers_cannot_write() {
    let s = TestServer::start_with(|o| o.webhooks.client.allow_private = false).await;
    let (status, e) = s
        .post(
            "/api/v1/webhooks",
            &s.admin,
            json!({"url": "http://siem.example.org/hook", "events": ["interaction.sent"], "headers": {"Content-Type": "text/plain", "X-Ok": "a\nb"}, "batch_max": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let fields: BTreeSet<&str> = e["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, BTreeSet::from(["url", "events[0]", "headers.Content-Type", "headers.X-Ok", "batch_max"]), "{e}");
    // Private, loopback, link-local and mapped addresses are refused without the flag.
    for url in [
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest",
        "https://[::ffff:127.0.0.1]/x",
        "https://user:pw@siem.example.org/",
    ] {
        let (status, e) = s.post("/api/v1/webhooks", &s.admin, json!({"url": url, "events": ["interaction.created"]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {e}");
    }
    let (status, e) = s
        .post(
            "/api/v1/webhooks",
            &s.admin,
            json!({"url": "https://siem.example.org/", "events": ["interaction.created"], "format": "sekoia"}),
        )
        .await;
    assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("intake_key")), "{e}");
    let (status, e) = s
        .post("/api/v1/webhooks", &s.admin, json!({"url": "https://siem.example.org/", "events": ["interaction.created"], "colour": "red"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let viewer = s.api_token("viewer").await;
    let (status, _) =
        s.post("/api/v1/webhooks", &viewer, json!({"url": "https://siem.example.org/", "events": ["interaction.created"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/v1/webhooks", &viewer).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/v1/webhooks/whk_nothing", &s.admin).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deliveries_are_signed_carry_the_headers_and_token_and_verify_with_the_reference_library() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let w = hook(
        &s,
        json!({"url": rx.url, "events": ["interaction.created"], "headers": {"X-Tenant": "acme"}, "auth_token": "secret-token-1"}),
    )
    .await;
    let secret = w["signing_secret"].as_str().expect("secret");
    let interaction_id = record(&s, "chatgpt").await;
    let got = rx.wait_until("the event", |g| !g.is_empty()).await;
    let r = &got[0];
    let body = r.json();
    assert_eq!(
        (body["type"].as_str(), body["data"]["interaction"]["id"].as_str()),
        (Some("interaction.created"), Some(interaction_id.as_str()))
    );
    assert_eq!(r.webhook_id(), body["id"].as_str().expect("event id"), "webhook-id is the event id");
    assert!(signed_by(r, secret), "the signature verifies");
    assert_eq!(r.header("x-tenant"), Some("acme"));
    assert_eq!(r.header("authorization"), Some("Bearer secret-token-1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ts: i64 = r.header("webhook-timestamp").expect("timestamp").parse().expect("number");
    assert!((ts - now()).abs() < 60);
    // An independent implementation of the specification verifies the real delivery.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\nfrom standardwebhooks.webhooks import Webhook\nsecret, i, t, sig = sys.argv[1:5]\nbody = sys.stdin.buffer.read()\n\
             Webhook(secret).verify(body, {'webhook-id': i, 'webhook-timestamp': t, 'webhook-signature': sig})\nprint('verified')",
        )
        .args([secret, r.webhook_id(), r.header("webhook-timestamp").expect("ts"), r.header("webhook-signature").expect("sig")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&r.body)?;
            child.wait_with_output()
        })
        .expect("python3 runs");
    assert!(out.status.success() && out.stdout.starts_with(b"verified"), "{}", String::from_utf8_lossy(&out.stderr));
    // The log shows the attempt.
    let log = attempts(&s, w["id"].as_str().expect("id"), 1).await;
    assert_eq!(
        (log[0]["status_code"].as_u64(), log[0]["outcome"].as_str(), log[0]["attempt"].as_u64()),
        (Some(200), Some("delivered"), Some(1))
    );
    // Events the webhook does not subscribe to are not delivered; a policy change is another type.
    s.policy("Block DeepSeek", 10, "block", json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}])).await;
    record(&s, "claude").await;
    let got = rx.wait_until("the second interaction", |g| g.len() >= 2).await;
    assert!(got.iter().all(|r| r.json()["type"] == "interaction.created"));
}

#[tokio::test]
async fn a_receiver_that_fails_the_first_attempts_gets_the_event_later_with_the_same_webhook_id() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    // A redirect is a failure, not followed (it could point anywhere).
    rx.script([Reply { location: Some(rx.url.clone()), ..Reply::status(307) }, Reply { body: "x".repeat(5000), ..Reply::status(503) }]);
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    record(&s, "chatgpt").await;
    let got = rx.wait_until("three attempts", |g| g.len() >= 3).await;
    let ids: BTreeSet<&str> = got.iter().map(Received::webhook_id).collect();
    assert_eq!(ids.len(), 1, "one webhook-id on every retry");
    assert!(got.iter().all(|r| signed_by(r, w["signing_secret"].as_str().expect("secret"))));
    let log = attempts(&s, id, 3).await;
    let seen: Vec<(Option<u64>, Option<&str>, Option<u64>)> =
        log.iter().rev().map(|a| (a["status_code"].as_u64(), a["outcome"].as_str(), a["attempt"].as_u64())).collect();
    assert_eq!(
        seen,
        vec![(Some(307), Some("retrying"), Some(1)), (Some(503), Some("retrying"), Some(2)), (Some(200), Some("delivered"), Some(3))]
    );
    assert_eq!(log[1]["response_excerpt"].as_str().map(str::len), Some(1024), "the first KiB of the answer is kept");
    assert!(log[2]["next_attempt_at"].is_string());
    let w = webhook_until(&s, id, "healthy again", |w| w["status"] == "healthy" && w["last_success_at"].is_string()).await;
    assert_eq!((w["consecutive_failures"].as_i64(), w["pending_deliveries"].as_i64()), (Some(0), Some(0)));
    // Filtering the log by event.
    let event = got[0].json()["id"].as_str().expect("id").to_owned();
    let (_, page) = s.get(&format!("/api/v1/webhooks/{id}/deliveries?event_id={event}&limit=2"), &s.admin).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert!(page["next_cursor"].is_string(), "{page}");
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_failing_webhook_shows_it() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script([Reply { retry_after: Some("1".into()), ..Reply::status(429) }]);
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    record(&s, "chatgpt").await;
    let failing = webhook_until(&s, id, "failing", |w| w["status"] == "failing").await;
    assert_eq!((failing["consecutive_failures"].as_i64(), failing["last_error"].as_str()), (Some(1), Some("HTTP 429")));
    // Sending back `active: true` (as a client that always sends the whole object does) does not
    // reset the failure record of a webhook that is on.
    let (_, same) = s.call("PATCH", &format!("/api/v1/webhooks/{id}"), Some(&s.admin), Some(json!({"active": true}))).await;
    assert_eq!((same["status"].as_str(), same["failing_since"].clone()), (Some("failing"), failing["failing_since"].clone()), "{same}");
    let got = rx.wait_until("the retry", |g| g.len() >= 2).await;
    // The schedule's next delay is 20 ms; the receiver asked for a second.
    assert!(got[1].at - got[0].at >= Duration::from_millis(950), "retried after {:?}", got[1].at - got[0].at);
    webhook_until(&s, id, "healthy", |w| w["status"] == "healthy").await;
}

#[tokio::test]
async fn gone_disables_the_webhook_and_emits_webhook_disabled_and_reenabling_resumes() {
    let s = TestServer::start().await;
    let gone = Receiver::start().await;
    gone.set_default(Reply::status(410));
    let watcher = Receiver::start().await;
    let w = hook(&s, json!({"url": gone.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    hook(&s, json!({"url": watcher.url, "events": ["webhook.disabled"]})).await;
    record(&s, "chatgpt").await;
    let got = watcher.wait_until("webhook.disabled", |g| !g.is_empty()).await;
    let e = got[0].json();
    assert_eq!((e["type"].as_str(), e["data"]["webhook_id"].as_str()), (Some("webhook.disabled"), Some(id)));
    assert!(e["data"]["reason"].as_str().expect("reason").contains("410"), "{e}");
    let w = webhook_until(&s, id, "disabled", |w| w["status"] == "disabled").await;
    assert_eq!(w["active"], false);
    assert!(w["disabled_reason"].as_str().expect("reason").contains("410"));
    assert_eq!(w["pending_deliveries"], 1, "the event waits: nothing is lost");
    // Nothing more goes to a disabled webhook; replay is refused until it is enabled again.
    record(&s, "claude").await;
    let (status, _) = s.post(&format!("/api/v1/webhooks/{id}/replay"), &s.admin, json!({"event_id": e["id"]})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    gone.set_default(Reply::status(204));
    let (status, w) = s.call("PATCH", &format!("/api/v1/webhooks/{id}"), Some(&s.admin), Some(json!({"active": true}))).await;
    assert_eq!((status, w["status"].as_str(), w["disabled_reason"].clone()), (StatusCode::OK, Some("healthy"), Value::Null), "{w}");
    gone.wait_until("the waiting event", |g| g.len() >= 2).await;
    webhook_until(&s, id, "drained", |w| w["pending_deliveries"] == 0).await;
}

#[tokio::test]
async fn continuous_failure_for_the_configured_span_disables_the_webhook() {
    let s = TestServer::start_with(|o| {
        o.webhooks.schedule = vigie_webhook::RetrySchedule::parse(
            &["0ms", "30ms", "30ms", "30ms", "30ms", "30ms", "30ms", "30ms", "30ms", "30ms"],
            0.0,
            Duration::from_millis(150),
        )
        .expect("schedule");
    })
    .await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created", "webhook.disabled"]})).await;
    let id = w["id"].as_str().expect("id");
    record(&s, "chatgpt").await;
    let w = webhook_until(&s, id, "disabled", |w| w["status"] == "disabled").await;
    assert!(w["disabled_reason"].as_str().expect("reason").starts_with("every delivery failed for"), "{w}");
    let log = attempts(&s, id, 1).await;
    assert_eq!(log[0]["outcome"], "disabled");
    let n = s.count("SELECT COUNT(*) FROM outbox WHERE event_type = 'webhook.disabled'");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_schedule_that_is_spent_fails_the_delivery_for_good_and_replay_sends_it_again() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    record(&s, "chatgpt").await;
    let log = attempts(&s, id, 5).await;
    assert_eq!(log[0]["outcome"], "failed", "the test schedule has five attempts");
    let event = log[0]["event_ids"][0].as_str().expect("event").to_owned();
    webhook_until(&s, id, "without pending deliveries", |w| w["pending_deliveries"] == 0).await;
    rx.set_default(Reply::status(200));
    let (status, r) = s.post(&format!("/api/v1/webhooks/{id}/replay"), &s.admin, json!({"event_id": event})).await;
    assert_eq!((status, r["queued"].as_u64()), (StatusCode::ACCEPTED, Some(1)), "{r}");
    let got = rx.wait_until("the replayed event", |g| g.len() >= 6).await;
    assert_eq!(got[5].webhook_id(), event, "a replay keeps the webhook-id");
    let log = attempts(&s, id, 6).await;
    assert_eq!((log[0]["outcome"].as_str(), log[0]["attempt"].as_u64()), (Some("delivered"), Some(1)));
    // A range replay: every subscribed event of the range, failed or not.
    record(&s, "claude").await;
    rx.wait_until("the second event", |g| g.len() >= 7).await;
    let from = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let (status, r) = s.post(&format!("/api/v1/webhooks/{id}/replay"), &s.admin, json!({"from": from, "to": to})).await;
    assert_eq!((status, r["queued"].as_u64()), (StatusCode::ACCEPTED, Some(2)), "{r}");
    rx.wait_until("both events again", |g| g.len() >= 9).await;
    let (status, _) =
        s.post(&format!("/api/v1/webhooks/{id}/replay"), &s.admin, json!({"event_id": "evt_0190a3c1-0000-7000-8000-000000000000"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.post(&format!("/api/v1/webhooks/{id}/replay"), &s.admin, json!({"from": to, "to": from})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_receiver_down_for_a_while_then_up_receives_every_event() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let (url, addr) = (rx.url.clone(), rx.addr);
    rx.stop().await;
    let w = hook(&s, json!({"url": url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    let mut ids = BTreeSet::new();
    for _ in 0..20 {
        ids.insert(record(&s, "chatgpt").await);
    }
    // Every event has failed at least twice (connection refused) before the receiver returns.
    let log = attempts(&s, id, 40).await;
    assert!(log.iter().all(|a| a["status_code"].is_null() && a["error"].as_str().is_some_and(|e| e.contains("connect"))), "{:?}", log[0]);
    let rx = Receiver::start_on(addr).await;
    let got = rx
        .wait_until("all 20 interactions", |g| {
            g.iter().map(|r| r.json()["data"]["interaction"]["id"].as_str().unwrap_or_default().to_owned()).collect::<BTreeSet<_>>() == ids
        })
        .await;
    assert!(got.iter().all(|r| r.webhook_id() == r.json()["id"].as_str().unwrap_or_default()));
    webhook_until(&s, id, "healthy and drained", |w| w["status"] == "healthy" && w["pending_deliveries"] == 0).await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_deliveries_to_a_healthy_one() {
    let s = TestServer::start_with(|o| o.webhooks.client.timeout = Duration::from_secs(15)).await;
    let slow = Receiver::start().await;
    slow.set_default(Reply { delay: Duration::from_secs(10), ..Reply::status(200) });
    let fast = Receiver::start().await;
    hook(&s, json!({"url": slow.url, "events": ["interaction.created"], "max_in_flight": 2})).await;
    hook(&s, json!({"url": fast.url, "events": ["interaction.created"]})).await;
    let mut ids = BTreeSet::new();
    for _ in 0..50 {
        ids.insert(record(&s, "chatgpt").await);
    }
    fast.wait_until("all 50 events", |g| g.len() >= 50).await;
    assert_eq!(fast.received().len(), 50);
    assert_eq!(slow.answered(), 0, "the healthy receiver had everything before the slow one answered once");
    assert!(slow.received().len() <= 2, "at most max_in_flight requests wait on the slow receiver");
}

#[tokio::test]
async fn the_test_call_reports_the_answer_and_is_logged() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script([Reply { body: "é".repeat(700), ..Reply::status(418) }]);
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.high_risk"], "active": false})).await;
    let id = w["id"].as_str().expect("id");
    let (status, t) = s.post(&format!("/api/v1/webhooks/{id}/test"), &s.admin, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!((t["success"].as_bool(), t["status_code"].as_u64()), (Some(false), Some(418)));
    assert!(t["latency_ms"].as_f64().is_some_and(|l| l > 0.0));
    assert!(t["response_body"].as_str().expect("body").len() <= 1024);
    let (status, t) = s.post(&format!("/api/v1/webhooks/{id}/test"), &s.admin, json!({})).await;
    assert_eq!((status, t["success"].as_bool(), t["status_code"].as_u64()), (StatusCode::OK, Some(true), Some(200)));
    let got = rx.received();
    let e = got[1].json();
    assert_eq!((e["type"].as_str(), e["data"]["webhook_id"].as_str()), (Some("webhook.test"), Some(id)));
    assert!(signed_by(&got[1], w["signing_secret"].as_str().expect("secret")));
    let log = attempts(&s, id, 2).await;
    assert!(log.iter().all(|a| a["trigger"] == "test" && a["outcome"] == "test"));
    // Unreachable: the error is reported, not a 5xx.
    let down = Receiver::start().await;
    let url = down.url.clone();
    down.stop().await;
    s.call("PATCH", &format!("/api/v1/webhooks/{id}"), Some(&s.admin), Some(json!({"url": url}))).await;
    let (status, t) = s.post(&format!("/api/v1/webhooks/{id}/test"), &s.admin, json!({})).await;
    assert_eq!((status, t["success"].as_bool(), t["status_code"].clone()), (StatusCode::OK, Some(false), Value::Null));
    assert!(t["error"].as_str().is_some_and(|e| e.contains("connect") && !e.contains("127.0.0.1")), "{t}");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    let old = w["signing_secret"].as_str().expect("secret").to_owned();
    let (status, r) = s.post(&format!("/api/v1/webhooks/{id}/rotate-secret"), &s.admin, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let new = r["signing_secret"].as_str().expect("secret").to_owned();
    assert_ne!(old, new);
    let until = chrono::DateTime::parse_from_rfc3339(r["previous_secret_expires_at"].as_str().expect("expiry")).expect("time");
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    record(&s, "chatgpt").await;
    let got = rx.wait_until("the event", |g| !g.is_empty()).await;
    assert_eq!(got[0].header("webhook-signature").expect("sig").split(' ').count(), 2);
    assert!(signed_by(&got[0], &old) && signed_by(&got[0], &new));
}

#[tokio::test]
async fn siem_formats_batch_events_and_sekoia_carries_the_intake_key() {
    let s = TestServer::start().await;
    let splunk = Receiver::start().await;
    let sekoia = Receiver::start().await;
    hook(&s, json!({"url": splunk.url, "events": ["interaction.created"], "format": "splunk_hec", "batch_max": 10, "batch_ms": 200, "headers": {"Authorization": "Splunk hec-token"}})).await;
    hook(&s, json!({"url": sekoia.url, "events": ["interaction.created"], "format": "sekoia", "intake_key": "intake-123", "batch_max": 100, "batch_ms": 100})).await;
    let mut ids = BTreeSet::new();
    for _ in 0..25 {
        ids.insert(record(&s, "mistral").await);
    }
    let lines = |g: &[Received]| -> Vec<Value> {
        g.iter()
            .flat_map(|r| r.body.split(|b| *b == b'\n').map(|l| serde_json::from_slice::<Value>(l).expect("HEC event")).collect::<Vec<_>>())
            .collect()
    };
    let got = splunk.wait_until("25 HEC events", |g| lines(g).len() >= 25).await;
    assert!(got.iter().all(|r| r.body.split(|b| *b == b'\n').count() <= 10), "at most batch_max per request");
    assert!(got.len() >= 3);
    assert_eq!(got[0].header("authorization"), Some("Splunk hec-token"));
    let events = lines(&got);
    let seen: BTreeSet<String> = events.iter().map(|e| e["event"]["data"]["interaction"]["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(seen, ids);
    assert!(events.iter().all(|e| e["time"].is_number() && e["source"] == "noxys" && e["sourcetype"] == "vigie:event"));
    let got =
        sekoia.wait_until("25 events", |g| g.iter().map(|r| r.json()["jsons"].as_array().map_or(0, Vec::len)).sum::<usize>() >= 25).await;
    for r in &got {
        let b = r.json();
        assert_eq!(b["intake_key"], "intake-123");
        for e in b["jsons"].as_array().expect("jsons") {
            let inner: Value = serde_json::from_str(e.as_str().expect("a JSON string")).expect("an event");
            assert_eq!(inner["type"], "interaction.created");
        }
        if b["jsons"].as_array().map_or(0, Vec::len) > 1 {
            assert!(r.webhook_id().starts_with("bat_"));
        }
    }
}

#[tokio::test]
async fn tenants_see_and_receive_only_their_own() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let other = s.login("root@globex.test", "globex password 1").await;
    assert_eq!(s.get(&format!("/api/v1/webhooks/{id}"), &other).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&format!("/api/v1/webhooks/{id}/deliveries"), &other).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.post(&format!("/api/v1/webhooks/{id}/test"), &other, json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call("DELETE", &format!("/api/v1/webhooks/{id}"), Some(&other), None).await.0, StatusCode::NOT_FOUND);
    let (_, list) = s.get("/api/v1/webhooks", &other).await;
    assert_eq!(list["items"], json!([]));
    // Globex's interaction does not reach Acme's webhook; Acme's does.
    let (status, _) = s.interaction(&other, json!({"platform_id": "chatgpt", "content_hash": HASH})).await;
    assert_eq!(status, StatusCode::CREATED);
    let mine = record(&s, "chatgpt").await;
    let got = rx.wait_until("acme's event", |g| !g.is_empty()).await;
    s.state.store.write(|c| c.execute_batch("SELECT 1").map_err(vigie_core::StoreError::from)).await.expect("a later commit");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["data"]["interaction"]["id"], mine);
    assert_eq!(rx.received().len(), 1);
    // Deleting removes the webhook and its log.
    assert_eq!(s.call("DELETE", &format!("/api/v1/webhooks/{id}"), Some(&s.admin), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("/api/v1/webhooks/{id}"), &s.admin).await.0, StatusCode::NOT_FOUND);
    until(&s, "the log purged", || s.count("SELECT COUNT(*) FROM webhook_attempts") == 0).await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let addr = rx.addr;
    let url = rx.url.clone();
    rx.stop().await;
    let w = hook(&s, json!({"url": url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id").to_owned();
    let mut ids = BTreeSet::new();
    for _ in 0..5 {
        ids.insert(record(&s, "chatgpt").await);
    }
    attempts(&s, &id, 5).await;
    let dir = s.stop().await;
    let rx = Receiver::start_on(addr).await;
    let s = TestServer::restart(dir).await;
    let got = rx
        .wait_until("the five events", |g| {
            g.iter().filter_map(|r| r.json()["data"]["interaction"]["id"].as_str().map(str::to_owned)).collect::<BTreeSet<_>>() == ids
        })
        .await;
    assert!(got.len() >= 5);
    webhook_until(&s, &id, "drained", |w| w["pending_deliveries"] == 0).await;
}

#[tokio::test]
async fn the_delivery_log_is_pruned_after_its_retention_and_pending_deliveries_are_kept() {
    let s = TestServer::start_with(|o| {
        o.webhooks.log_retention = Duration::from_millis(1);
        o.webhooks.prune_every = Duration::from_millis(50);
    })
    .await;
    let rx = Receiver::start().await;
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id");
    record(&s, "chatgpt").await;
    rx.wait_until("the event", |g| !g.is_empty()).await;
    until(&s, "the log pruned", || {
        s.count("SELECT COUNT(*) FROM webhook_attempts") + s.count("SELECT COUNT(*) FROM webhook_deliveries") == 0
    })
    .await;
    // A webhook whose receiver is down keeps its pending delivery, however old.
    rx.stop().await;
    record(&s, "chatgpt").await;
    let w = webhook_until(&s, id, "failing", |w| w["status"] == "failing").await;
    assert_eq!(w["pending_deliveries"], 1);
    let (status, metrics) = s.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().expect("text");
    for line in ["vigie_firewall_webhook_events_delivered_total 1", "vigie_firewall_webhook_requests_total{outcome=\"delivered\"} 1"] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[tokio::test]
async fn an_attempt_that_cannot_be_recorded_is_recorded_later_not_sent_again() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id").to_owned();
    // The database refuses to log attempts (as a full disk would).
    s.state
        .store
        .write(|c| {
            c.execute_batch("CREATE TRIGGER refuse BEFORE INSERT ON webhook_attempts BEGIN SELECT RAISE(ABORT, 'disk full'); END")
                .map_err(vigie_core::StoreError::from)
        })
        .await
        .expect("trigger");
    record(&s, "chatgpt").await;
    rx.wait_until("the event", |g| !g.is_empty()).await;
    s.state.store.write(|c| c.execute_batch("DROP TRIGGER refuse").map_err(vigie_core::StoreError::from)).await.expect("drop");
    let log = attempts(&s, &id, 1).await;
    assert_eq!(log[0]["outcome"], "delivered");
    webhook_until(&s, &id, "drained", |w| w["pending_deliveries"] == 0).await;
    assert_eq!(rx.received().len(), 1, "the delivered event was not sent again while its record was retried");
}

#[tokio::test]
async fn a_rotation_racing_an_update_keeps_the_new_secret() {
    let s = TestServer::start().await;
    let rx = Receiver::start().await;
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id").to_owned();
    let mut secret = String::new();
    let (rotate_path, patch_path) = (format!("/api/v1/webhooks/{id}/rotate-secret"), format!("/api/v1/webhooks/{id}"));
    for i in 0..10 {
        let rotate = s.post(&rotate_path, &s.admin, json!({}));
        let patch = s.call(
            "PATCH",
            &patch_path,
            Some(&s.admin),
            Some(json!({"description": format!("round {i}"), "headers": {"X-Round": format!("{i}")}})),
        );
        let ((rs, r), (ps, p)) = tokio::join!(rotate, patch);
        assert_eq!((rs, ps), (StatusCode::OK, StatusCode::OK), "{r} {p}");
        secret = r["signing_secret"].as_str().expect("secret").to_owned();
    }
    let (_, t) = s.post(&format!("/api/v1/webhooks/{id}/test"), &s.admin, json!({})).await;
    assert_eq!(t["success"], true, "{t}");
    let got = rx.received();
    let last = got.last().expect("the test delivery");
    assert!(signed_by(last, &secret), "the last secret issued signs");
    assert_eq!(last.header("x-round"), Some("9"), "the last header change is kept");
}

#[tokio::test]
async fn without_an_active_webhook_the_dispatcher_writes_nothing_and_a_new_one_gets_only_later_events() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        record(&s, "chatgpt").await;
    }
    let commits = s.state.store.commits();
    for _ in 0..5 {
        record(&s, "chatgpt").await;
    }
    // Five interactions, five commits: no fan-out transaction beside them.
    assert_eq!(s.state.store.commits() - commits, 5);
    let rx = Receiver::start().await;
    let w = hook(&s, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    let later = record(&s, "claude").await;
    let got = rx.wait_until("the later event", |g| !g.is_empty()).await;
    assert_eq!(got[0].json()["data"]["interaction"]["id"], later.as_str());
    webhook_until(&s, w["id"].as_str().expect("id"), "drained", |w| w["pending_deliveries"] == 0).await;
    assert_eq!(rx.received().len(), 1, "events from before the webhook existed are not sent");
}

#[tokio::test]
async fn an_event_gone_from_the_outbox_fails_its_delivery_with_the_reason_and_others_still_go() {
    // Retries spread over seconds, not the usual milliseconds: on a loaded machine the lost
    // event's whole schedule could otherwise run out (refused connections) before the test
    // deletes its outbox row and restarts the receiver.
    let s = TestServer::start_with(|o| {
        o.webhooks.schedule = vigie_webhook::schedule::RetrySchedule::parse(
            &["0ms", "50ms", "1s", "2s", "4s", "8s"],
            0.2,
            std::time::Duration::from_secs(3600),
        )
        .expect("schedule")
    })
    .await;
    let rx = Receiver::start().await;
    let (url, addr) = (rx.url.clone(), rx.addr);
    rx.stop().await;
    let w = hook(&s, json!({"url": url, "events": ["interaction.created"]})).await;
    let id = w["id"].as_str().expect("id").to_owned();
    record(&s, "chatgpt").await;
    let first = attempts(&s, &id, 1).await;
    let lost = first[0]["event_ids"][0].as_str().expect("event").to_owned();
    let gone = lost.clone();
    s.state
        .store
        .write(move |c| c.execute("DELETE FROM outbox WHERE id = ?1", [gone]).map_err(vigie_core::StoreError::from))
        .await
        .expect("delete");
    let rx = Receiver::start_on(addr).await;
    let kept = record(&s, "claude").await;
    let got = rx.wait_until("the other event", |g| !g.is_empty()).await;
    assert_eq!(got[0].json()["data"]["interaction"]["id"], kept.as_str());
    let log = attempts(&s, &id, 3).await;
    let failed = log.iter().find(|a| a["outcome"] == "failed").expect("the lost event's delivery failed");
    assert_eq!(failed["event_ids"][0], lost.as_str());
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("no longer in the outbox")), "{failed}");
    webhook_until(&s, &id, "drained", |w| w["pending_deliveries"] == 0).await;
    assert_eq!(rx.received().len(), 1, "nothing empty was sent for the lost event");
}
