//! Notifications over real sockets: channels created through the API; alerts queued as the
//! responder queues them (`notify::enqueue_for_alert` in a write transaction) and delivered by
//! the worker to local HTTP receivers (Slack, Teams, a signed webhook verified with the
//! Standard Webhooks check) and to a real SMTP server (Python's aiosmtpd, plain and STARTTLS
//! with a private CA); retries, the delivery log, routing, secrets at rest, scopes and spaces.
use crate::TestXdr;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use vigie_core::StoreError;
use vigie_webhook::signature::{SigningSecret, verify};

use crate::until;

/// A server that may post to loopback, with a retry schedule in milliseconds.
async fn server() -> TestXdr {
    TestXdr::start_with(|o| {
        o.allow_private_destinations = true;
        o.notify.retry_delays = vec![Duration::ZERO, Duration::from_millis(20), Duration::from_millis(20), Duration::from_millis(20)];
        o.notify.jitter = 0.0;
        o.notify.timeout = Duration::from_secs(5);
    })
    .await
}

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A local HTTP receiver: `/ok/…` answers 200, `/flaky/…` 500 twice then 200, `/gone/…` 410,
/// `/missing/…` 404, `/switch/…` 503 until `healthy` is set, `/hold/…` 200 once `release` is
/// notified.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    flaky: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    release: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().route("/{kind}/{*rest}", axum::routing::post(receive)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, base)
    }

    fn on(&self, prefix: &str) -> Vec<Received> {
        self.got.lock().expect("lock").iter().filter(|r| r.path.starts_with(prefix)).cloned().collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    UrlPath((kind, rest)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> AxStatus {
    r.got.lock().expect("lock").push(Received { path: format!("/{kind}/{rest}"), headers, body: body.to_vec() });
    if kind == "hold" {
        r.release.notified().await;
    }
    match kind.as_str() {
        "flaky" if r.flaky.fetch_add(1, Ordering::SeqCst) < 2 => AxStatus::INTERNAL_SERVER_ERROR,
        "gone" => AxStatus::GONE,
        "missing" => AxStatus::NOT_FOUND,
        "switch" if !r.healthy.load(Ordering::SeqCst) => AxStatus::SERVICE_UNAVAILABLE,
        _ => AxStatus::OK,
    }
}

/// The alert context, shaped as `response::alert_context` gives it.
fn context(short_id: &str, severity: &str, rule: &str) -> Value {
    json!({
        "alert": {"id": format!("id-{short_id}"), "short_id": short_id, "title": format!("{rule} on chatgpt"), "severity": severity,
                  "urgency": 70, "status": "pending", "rule_id": format!("rule-{rule}"), "rule_name": rule, "user_id": "u-42",
                  "user_name": "Ada Lovelace", "platform_id": "chatgpt", "occurrences": 1, "first_seen": "2025-01-01T00:00:00Z",
                  "last_seen": "2025-01-01T00:00:00Z", "event_ids": ["e1"], "details": {}},
        "rule": {"id": format!("rule-{rule}"), "name": rule, "severity": 70},
        "event": {"event_type": "interaction.policy_violated", "platform_id": "chatgpt", "user_id": "u-42", "user_email": "ada@example.com",
                  "risk_score": 0.93, "risk_level": "high", "classification_type": ["pii", "source_code"], "policy_name": "No PII to AI",
                  "policy_action": "block"},
        "person": {"user_id": "u-42", "display_name": "Ada Lovelace", "email": "ada@example.com", "manager_email": "boss@example.com",
                   "department": "R&D", "training_date": "2023-01-01", "training_days_ago": 700}
    })
}

async fn space_no(x: &TestXdr, name: &str) -> i64 {
    x.state.keys.ensure_space(name).await.expect("space");
    x.count(&format!("SELECT no FROM spaces WHERE name = '{name}'"))
}

/// Queues an alert's notifications as the responder does (then tells the worker, as it does);
/// how many were queued.
async fn enqueue(x: &TestXdr, space_no: i64, ctx: Value, channel: Option<&str>) -> usize {
    let (ids, now) = (x.state.ids.clone(), vigie_core::clock::to_micros(chrono::Utc::now()));
    let channel = channel.map(str::to_owned);
    let n = x
        .state
        .store
        .write(move |c| vigie_xdr::notify::enqueue_for_alert(c, &ids, space_no, &ctx, channel.as_deref(), now))
        .await
        .expect("enqueue");
    x.state.response.queued();
    n
}

async fn create(x: &TestXdr, key: &str, body: Value) -> Value {
    let (s, v) = x.call_json("POST", "/api/v1/notifications/channels", key, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body} → {v}");
    v
}

/// The notifications of a channel once none is pending.
async fn settled(x: &TestXdr, key: &str, channel: &str, count: usize) -> Vec<Value> {
    until(&format!("{count} settled notifications of {channel}"), || async {
        let (s, v) = x.get(&format!("/api/v1/notifications?channel={channel}"), key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["items"].as_array().cloned().unwrap_or_default();
        (items.len() == count && items.iter().all(|n| n["status"] != "pending")).then_some(items)
    })
    .await
}

/// Every byte of the database files (the WAL too).
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        if e.file_name().to_string_lossy().starts_with("xdr.db") {
            all.extend(std::fs::read(e.path()).unwrap_or_default());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn slack_teams_and_webhook_channels_deliver_an_alert_signed_and_logged() {
    let x = server().await;
    let (rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    let (reader, _) = x.key("acme", &["alerts_read"], false).await;
    let slack_url = format!("{base}/ok/slack/T000/B000/SeCrEtSlackToken9z");
    let slack = create(&x, &admin, json!({"name": "soc-slack", "kind": "slack", "settings": {"url": slack_url}})).await;
    assert_eq!(slack["settings"]["url"], json!(format!("{base}/…/en9z")), "masked: {slack}");
    assert!(!slack.to_string().contains("SeCrEtSlackToken"), "{slack}");
    assert!(slack.get("signing_secret").is_none());
    let teams =
        create(&x, &admin, json!({"name": "soc-teams", "kind": "teams", "settings": {"url": format!("{base}/ok/teams/TeamsSecretPath")}}))
            .await;
    let hook = create(&x, &admin, json!({"name": "siem", "kind": "webhook", "settings": {"url": format!("{base}/ok/hook")}})).await;
    let secret = hook["signing_secret"].as_str().expect("a new webhook's secret is shown once").to_owned();
    assert!(secret.starts_with("whsec_"));

    // Read back: the secrets are never returned.
    let (s, got) = x.get(&format!("/api/v1/notifications/channels/{}", hook["id"].as_str().expect("id")), &reader).await;
    assert_eq!(s, StatusCode::OK);
    assert!(got.get("signing_secret").is_none() && !got.to_string().contains(&secret), "{got}");
    assert_eq!(got["settings"]["secret_set"], json!(true));
    let (_, list) = x.get("/api/v1/notifications/channels", &reader).await;
    let names: Vec<&str> = list["items"].as_array().expect("items").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["siem", "soc-slack", "soc-teams"]);
    assert!(!list.to_string().contains("SeCrEtSlackToken") && !list.to_string().contains("TeamsSecretPath"), "{list}");

    let no = space_no(&x, "acme").await;
    assert_eq!(enqueue(&x, no, context("AL00000001", "high", "Policy violation"), None).await, 3);
    until("three deliveries", || async { (rx.got.lock().expect("lock").len() >= 3).then_some(()) }).await;

    let slack_req = &rx.on("/ok/slack")[0];
    let body: Value = serde_json::from_slice(&slack_req.body).expect("slack json");
    let text = body["text"].as_str().expect("text");
    for want in ["AL00000001", "chatgpt", "Ada Lovelace", "0.93", "pii, source_code", "block (No PII to AI)", "HIGH", "Policy violation"] {
        assert!(text.contains(want), "{want} missing from the Slack text: {text}");
    }
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");

    let card: Value = serde_json::from_slice(&rx.on("/ok/teams")[0].body).expect("teams json");
    assert_eq!(card["@type"], "MessageCard");
    let facts = card["sections"][0]["facts"].to_string();
    for want in ["Ada Lovelace", "chatgpt", "0.93 (high)", "pii, source_code", "block (No PII to AI)"] {
        assert!(facts.contains(want), "{want} missing from the Teams facts: {facts}");
    }

    let hook_req = &rx.on("/ok/hook")[0];
    let key = SigningSecret::parse(&secret).expect("secret");
    let now = chrono::Utc::now().timestamp();
    verify(|h| hook_req.headers.get(h).and_then(|v| v.to_str().ok()), &hook_req.body, &[&key], now, 300).expect("a valid signature");
    let other = SigningSecret::generate();
    assert!(verify(|h| hook_req.headers.get(h).and_then(|v| v.to_str().ok()), &hook_req.body, &[&other], now, 300).is_err());
    let payload: Value = serde_json::from_slice(&hook_req.body).expect("webhook json");
    assert_eq!(payload["type"], "alert.notification");
    assert_eq!(payload["alert"]["short_id"], "AL00000001");
    assert_eq!(payload["event"]["policy_action"], "block");
    assert_eq!(payload["person"]["display_name"], "Ada Lovelace");

    // The delivery log.
    let items = settled(&x, &reader, "siem", 1).await;
    assert_eq!(items[0]["status"], "succeeded");
    assert_eq!(items[0]["alert_id"], "id-AL00000001");
    let webhook_id = hook_req.headers.get("webhook-id").and_then(|v| v.to_str().ok()).expect("webhook-id");
    assert_eq!(items[0]["id"], webhook_id, "the notification id is the message id");
    let (s, detail) = x.get(&format!("/api/v1/notifications/{webhook_id}"), &reader).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(detail["attempts"][0]["http_status"], 200);
    assert_eq!(detail["attempts"][0]["outcome"], "succeeded");
    let (_, all) = x.get("/api/v1/notifications?status=succeeded", &reader).await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(3));
    let (_, page) = x.get("/api/v1/notifications?limit=2", &reader).await;
    let cursor = page["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, rest) = x.get(&format!("/api/v1/notifications?limit=2&cursor={cursor}"), &reader).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert!(rest["next_cursor"].is_null());

    // The test call.
    let (s, t) =
        x.call_json("POST", &format!("/api/v1/notifications/channels/{}/test", teams["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!((t["status"].as_str(), t["http_status"].as_u64()), (Some("succeeded"), Some(200)), "{t}");
    assert!(t["duration_ms"].is_u64());
    assert!(rx.on("/ok/teams").len() == 2);

    // Secrets are sealed at rest.
    let db = database_bytes(x.dir.path());
    for secret_part in ["SeCrEtSlackToken9z", "TeamsSecretPath", secret.trim_start_matches("whsec_")] {
        assert!(!contains(&db, secret_part), "{secret_part} is in the database in clear");
    }
    x.stop().await;
}

#[tokio::test]
async fn failing_receivers_are_retried_recorded_given_up_and_retried_by_hand() {
    let x = server().await;
    let (rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin", "alerts_read"], false).await;
    let no = space_no(&x, "acme").await;
    create(&x, &admin, json!({"name": "flaky", "kind": "slack", "settings": {"url": format!("{base}/flaky/x")}})).await;
    create(&x, &admin, json!({"name": "gone", "kind": "webhook", "settings": {"url": format!("{base}/gone/x")}})).await;
    create(&x, &admin, json!({"name": "down", "kind": "teams", "settings": {"url": format!("{base}/switch/x")}})).await;
    assert_eq!(enqueue(&x, no, context("AL00000002", "critical", "R"), None).await, 3);

    // Two 500s, then a 200: three attempts recorded.
    let flaky = settled(&x, &admin, "flaky", 1).await;
    assert_eq!((flaky[0]["status"].as_str(), flaky[0]["attempt_count"].as_i64()), (Some("succeeded"), Some(3)), "{flaky:?}");
    let (_, d) = x.get(&format!("/api/v1/notifications/{}", flaky[0]["id"].as_str().expect("id")), &admin).await;
    let outcomes: Vec<(&str, i64)> = d["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| (a["outcome"].as_str().unwrap_or(""), a["http_status"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(outcomes, [("failed", 500), ("failed", 500), ("succeeded", 200)]);
    assert!(d["attempts"][0]["error"].as_str().is_some_and(|e| e.contains("500")), "{d}");

    // 410: failed at once, not retried.
    let gone = settled(&x, &admin, "gone", 1).await;
    assert_eq!((gone[0]["status"].as_str(), gone[0]["attempt_count"].as_i64()), (Some("failed"), Some(1)), "{gone:?}");

    // Always 503: the whole schedule (four attempts), then failed.
    let down = settled(&x, &admin, "down", 1).await;
    assert_eq!((down[0]["status"].as_str(), down[0]["attempt_count"].as_i64()), (Some("failed"), Some(4)), "{down:?}");
    assert_eq!(rx.on("/switch").len(), 4);
    assert!(down[0]["last_error"].as_str().is_some_and(|e| e.contains("503")));
    // Retried by hand once the receiver is back.
    let id = down[0]["id"].as_str().expect("id").to_owned();
    let (s, again) = x.call_json("POST", &format!("/api/v1/notifications/{id}/retry"), &admin, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{again}");
    rx.healthy.store(true, Ordering::SeqCst);
    let done = until("the retried notification", || async {
        let (_, d) = x.get(&format!("/api/v1/notifications/{id}"), &admin).await;
        (d["status"] != "pending").then_some(d)
    })
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"].as_array().map(Vec::len), Some(5));
    // A delivered one is not sent again.
    let (s, _) = x.call_json("POST", &format!("/api/v1/notifications/{id}/retry"), &admin, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    x.stop().await;
}

#[tokio::test]
async fn alerts_are_routed_by_severity_and_rule() {
    let x = server().await;
    let (_rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    let no = space_no(&x, "acme").await;
    let url = |n: &str| format!("{base}/ok/{n}");
    create(&x, &admin, json!({"name": "all", "kind": "slack", "settings": {"url": url("all")}})).await;
    create(&x, &admin, json!({"name": "high", "kind": "slack", "min_severity": "high", "settings": {"url": url("high")}})).await;
    create(&x, &admin, json!({"name": "rule-x", "kind": "slack", "rules": ["Rule X"], "settings": {"url": url("rx")}})).await;
    let by_id =
        create(&x, &admin, json!({"name": "rule-id", "kind": "slack", "rules": ["rule-Rule Y"], "settings": {"url": url("ry")}})).await;
    create(&x, &admin, json!({"name": "off", "kind": "slack", "enabled": false, "settings": {"url": url("off")}})).await;

    let queued = |ctx| async { enqueue(&x, no, ctx, None).await };
    assert_eq!(queued(context("AL00000010", "medium", "Rule Z")).await, 1, "medium, another rule: only `all`");
    assert_eq!(queued(context("AL00000011", "critical", "rule x")).await, 3, "all, high, rule-x (names in any case)");
    assert_eq!(queued(context("AL00000012", "low", "Rule Y")).await, 2, "all, and rule-id by the rule's id");
    // Naming a channel sends there alone, whatever its route; a disabled one gets nothing.
    assert_eq!(enqueue(&x, no, context("AL00000013", "low", "Rule Z"), Some("high")).await, 1);
    assert_eq!(enqueue(&x, no, context("AL00000014", "high", "Rule Z"), Some("off")).await, 0);
    assert_eq!(enqueue(&x, no, context("AL00000015", "high", "Rule Z"), Some("nope")).await, 0);
    let per = |name: &str| x.count(&format!("SELECT COUNT(*) FROM notifications WHERE channel_name = '{name}'"));
    assert_eq!((per("all"), per("high"), per("rule-x"), per("rule-id"), per("off")), (3, 2, 1, 1, 0));

    // Changing the route changes what is queued next.
    let (s, v) = x
        .call_json(
            "PATCH",
            &format!("/api/v1/notifications/channels/{}", by_id["id"].as_str().expect("id")),
            &admin,
            json!({"rules": [], "min_severity": "critical"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(queued(context("AL00000016", "critical", "Rule Q")).await, 3, "all, high, rule-id");
    x.stop().await;
}

#[tokio::test]
async fn channels_need_admin_to_change_and_are_invisible_from_another_space() {
    let x = server().await;
    let (_rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    let (reader, _) = x.key("acme", &["alerts_read"], false).await;
    let (other, _) = x.key("globex", &["admin", "alerts_read"], false).await;
    let body = json!({"name": "soc", "kind": "slack", "settings": {"url": format!("{base}/ok/s")}});
    let (s, v) = x.call_json("POST", "/api/v1/notifications/channels", &reader, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let ch = create(&x, &admin, body).await;
    let id = ch["id"].as_str().expect("id");
    let path = format!("/api/v1/notifications/channels/{id}");
    for (m, p) in [("PATCH", path.clone()), ("POST", format!("{path}/test")), ("DELETE", path.clone())] {
        let (s, v) = x.call_json(m, &p, &reader, json!({"enabled": false})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: {v}");
        let (s, v) = x.call_json(m, &p, &other, json!({"enabled": false})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p} from another space: {v}");
    }
    let (s, _) = x.get(&path, &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = x.get("/api/v1/notifications/channels", &other).await;
    assert_eq!(list["items"], json!([]));
    // The test call lands in acme's log, not globex's.
    let (s, t) = x.call_json("POST", &format!("{path}/test"), &admin, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let nid = t["notification_id"].as_str().expect("id");
    let (s, _) = x.get(&format!("/api/v1/notifications/{nid}"), &other).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, n) = x.get(&format!("/api/v1/notifications/{nid}"), &reader).await;
    assert_eq!((s, n["source"].as_str()), (StatusCode::OK, Some("test")));
    let (s, _) = x.call_json("POST", &format!("/api/v1/notifications/{nid}/retry"), &other, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bad input: every problem at once, templates with their position, unique names.
    let (s, v) = x
        .call_json(
            "POST",
            "/api/v1/notifications/channels",
            &admin,
            json!({
            "name": "bad", "kind": "email", "min_severity": "severe",
            "templates": {"body": "Hello\n{{ alert.title ", "html": "<p>{% if %}</p>"},
            "settings": {"host": "smtp.example.com", "from": "not an address", "to": ["ok@example.com", "nope"], "url": "https://x"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&str> = v["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    for want in ["min_severity", "templates.body", "templates.html", "settings.url", "settings.from", "settings.to[1]"] {
        assert!(fields.contains(&want), "{want} not in {fields:?}");
    }
    let body_error = v["fields"].as_array().expect("fields").iter().find(|f| f["field"] == "templates.body").expect("body");
    assert!(body_error["message"].as_str().is_some_and(|m| m.starts_with("line 2, column")), "{body_error}");
    let (s, _) = x
        .call_json(
            "POST",
            "/api/v1/notifications/channels",
            &admin,
            json!({"name": "soc", "kind": "slack", "settings": {"url": format!("{base}/ok/s")}}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    x.stop().await;

    // Without --allow-private-webhooks, a loopback URL is refused.
    let strict = TestXdr::start().await;
    let (admin, _) = strict.key("acme", &["admin"], false).await;
    for url in [format!("{base}/ok/s"), "https://127.0.0.1/hook".to_owned(), "https://10.0.0.8/x".to_owned()] {
        let (s, v) = strict
            .call_json("POST", "/api/v1/notifications/channels", &admin, json!({"name": "w", "kind": "webhook", "settings": {"url": url}}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert!(v["fields"][0]["field"] == "settings.url", "{v}");
    }
    // An e-mail channel may not aim at any other internal service through its port.
    let mail = |port: u16| json!({"name": "m", "kind": "email", "settings": {"host": "10.0.0.9", "port": port, "tls": "none", "from": "v@corp.example"}});
    let (s, v) = strict.call_json("POST", "/api/v1/notifications/channels", &admin, mail(6379)).await;
    assert_eq!((s, v["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("settings.port")), "{v}");
    let (s, v) = strict.call_json("POST", "/api/v1/notifications/channels", &admin, mail(587)).await;
    assert_eq!(s, StatusCode::CREATED, "an internal relay on an SMTP port is fine: {v}");
    strict.stop().await;
}

/// A real SMTP server: aiosmtpd in a Python subprocess, writing each message it takes to
/// `dir` (`<n>.eml`, recipients on an `X-Rcpt-To` line first). With `tls`, STARTTLS is
/// required and so is AUTH (user `vigie`, password `s3cret-pass`).
struct Smtp {
    child: tokio::process::Child,
    port: u16,
    dir: PathBuf,
}

const SMTP_SERVER: &str = r#"
import os, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, out = int(sys.argv[1]), sys.argv[2]
tls = sys.argv[3:5]

class Sink:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith('.eml')])
        tmp = os.path.join(out, 'part')
        with open(tmp, 'wb') as f:
            f.write(b'X-Rcpt-To: ' + ','.join(envelope.rcpt_tos).encode() + b'\r\n')
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(out, '%d.eml' % n))
        return '250 2.0.0 Ok: queued as %d' % n

def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b'vigie' and data.password == b's3cret-pass'
    return AuthResult(success=ok, handled=False)

kw = {}
if tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls[0], tls[1])
    kw = dict(tls_context=ctx, require_starttls=True, authenticator=auth, auth_required=True)
c = Controller(Sink(), hostname='127.0.0.1', port=port, **kw)
c.start()
print('ready', flush=True)
sys.stdin.read()
c.stop()
"#;

impl Smtp {
    async fn start(work: &Path, tls: Option<(&Path, &Path)>) -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = work.join(format!("mail-{port}"));
        std::fs::create_dir_all(&dir).expect("mail dir");
        let script = work.join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).expect("script");
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(&script).arg(port.to_string()).arg(&dir);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs (aiosmtpd is installed by .ci/run)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        assert!(matches!(ready, Ok(Ok(Some(ref l))) if l == "ready"), "the SMTP server did not start: {ready:?}");
        Smtp { child, port, dir }
    }

    /// The messages received so far.
    fn mails(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "eml")).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0));
        files.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        until(&format!("{n} e-mails"), || async {
            let m = self.mails();
            (m.len() >= n).then_some(m)
        })
        .await
    }

    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// A private CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Vigie Test CA"]].concat());
    run(&[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

#[tokio::test]
async fn email_is_delivered_over_plain_smtp_and_starttls_with_a_private_ca() {
    let x = server().await;
    let work = tempfile::tempdir().expect("tempdir");
    let (admin, _) = x.key("acme", &["admin", "alerts_read"], false).await;
    let no = space_no(&x, "acme").await;

    // Plain SMTP: an alert, the test call, and a direct message with an invitation.
    let plain = Smtp::start(work.path(), None).await;
    let ch = create(
        &x,
        &admin,
        json!({"name": "mail", "kind": "email", "min_severity": "medium", "settings": {
        "host": "127.0.0.1", "port": plain.port, "tls": "none", "from": "Vigie <vigie@example.com>", "to": ["soc@example.com"]}}),
    )
    .await;
    assert_eq!(ch["settings"]["password_set"], json!(false));
    assert_eq!(enqueue(&x, no, context("AL00000020", "high", "Policy violation"), None).await, 1);
    let mails = plain.wait_for(1).await;
    let m = &mails[0];
    assert!(m.starts_with("X-Rcpt-To: soc@example.com"), "{m}");
    assert!(m.contains("Subject: [Vigie] HIGH AL00000020: Policy violation on chatgpt"), "{m}");
    for want in ["Ada Lovelace", "chatgpt", "0.93", "pii, source_code", "block (No PII to AI)"] {
        assert!(m.contains(want), "{want} missing from the e-mail: {m}");
    }
    let logged = settled(&x, &admin, "mail", 1).await;
    let (_, d) = x.get(&format!("/api/v1/notifications/{}", logged[0]["id"].as_str().expect("id")), &admin).await;
    assert!(d["attempts"][0]["smtp_reply"].as_str().is_some_and(|r| r.starts_with("250")), "{d}");

    let (s, t) =
        x.call_json("POST", &format!("/api/v1/notifications/channels/{}/test", ch["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(t["smtp_reply"].as_str().is_some_and(|r| r.starts_with("250")), "{t}");
    assert!(plain.wait_for(2).await[1].contains("Test notification from Vigie"));

    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:review-1@vigie\r\nSUMMARY:Security review\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let sent = vigie_xdr::notify::send_now(
        &x.state,
        no,
        vigie_xdr::notify::Direct {
            to: vec!["boss@example.com".into()],
            subject: Some("Security review for Ada Lovelace".into()),
            body: Some("Please review {{ not a template }}".into()),
            context: context("AL00000021", "high", "Policy violation"),
            ical: Some(ics.into()),
            ..Default::default()
        },
    )
    .await
    .expect("sent");
    assert_eq!((sent["status"].as_str(), sent["channel"].as_str()), (Some("succeeded"), Some("mail")), "{sent}");
    let m = plain.wait_for(3).await.remove(2);
    assert!(m.starts_with("X-Rcpt-To: boss@example.com\r\n"), "{m}");
    assert!(m.contains("Please review {{ not a template }}"), "given text is not rendered again: {m}");
    assert!(m.contains("invite.ics") && m.contains("text/calendar") && m.contains("method=REQUEST"), "{m}");
    let (_, n) = x.get(&format!("/api/v1/notifications/{}", sent["notification_id"].as_str().expect("id")), &admin).await;
    assert_eq!((n["source"].as_str(), n["status"].as_str()), (Some("direct"), Some("succeeded")));
    let bad =
        vigie_xdr::notify::send_now(&x.state, no, vigie_xdr::notify::Direct { to: vec!["nobody".into()], ..Default::default() }).await;
    assert!(matches!(bad, Err(vigie_xdr::notify::NotifyError::BadAddress(_))), "{bad:?}");
    plain.stop().await;

    // STARTTLS required, with AUTH, against a relay whose certificate a private CA signed.
    let (ca, cert, key) = certificates(work.path());
    let secure = Smtp::start(work.path(), Some((&cert, &key))).await;
    let settings = json!({"host": "127.0.0.1", "port": secure.port, "tls": "starttls", "username": "vigie", "password": "s3cret-pass",
                          "from": "vigie@example.com", "to": ["soc@example.com"], "ca_pem": std::fs::read_to_string(&ca).expect("ca")});
    let tls = create(&x, &admin, json!({"name": "mail-tls", "kind": "email", "settings": settings})).await;
    assert_eq!(tls["settings"]["password_set"], json!(true));
    assert!(!tls.to_string().contains("s3cret-pass"));
    let (s, t) =
        x.call_json("POST", &format!("/api/v1/notifications/channels/{}/test", tls["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(secure.wait_for(1).await[0].contains("Test notification from Vigie"));

    // Without the CA the relay's certificate is not trusted; with a wrong password AUTH fails.
    let mut untrusted = settings.clone();
    untrusted["ca_pem"] = json!("");
    let ch = create(&x, &admin, json!({"name": "mail-untrusted", "kind": "email", "settings": untrusted})).await;
    let (_, t) =
        x.call_json("POST", &format!("/api/v1/notifications/channels/{}/test", ch["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["error"].as_str().is_some_and(|e| e.contains("certificate") && !e.contains("s3cret-pass")), "{t}");
    let mut wrong = settings.clone();
    wrong["password"] = json!("wrong");
    let ch = create(&x, &admin, json!({"name": "mail-wrong", "kind": "email", "settings": wrong})).await;
    let (_, t) =
        x.call_json("POST", &format!("/api/v1/notifications/channels/{}/test", ch["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["smtp_reply"].as_str().is_some_and(|r| r.starts_with('5')), "{t}");
    assert_eq!(secure.mails().len(), 1);
    secure.stop().await;

    // Neither password is in the database in clear.
    let db = database_bytes(x.dir.path());
    assert!(!contains(&db, "s3cret-pass"), "the SMTP password is in the database in clear");
    let (_, list) = x.get("/api/v1/notifications/channels", &admin).await;
    assert!(!list.to_string().contains("s3cret-pass"));
    x.stop().await;
}

/// Reads the stored sealed column directly: it is not the secret and does not open as another
/// channel's.
#[tokio::test]
async fn a_sealed_secret_does_not_open_on_another_channel() {
    let x = server().await;
    let (_rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    let a = create(&x, &admin, json!({"name": "a", "kind": "slack", "settings": {"url": format!("{base}/ok/a/AAAA")}})).await;
    let b = create(&x, &admin, json!({"name": "b", "kind": "slack", "settings": {"url": format!("{base}/ok/b/BBBB")}})).await;
    let (ida, idb) = (a["id"].as_str().expect("id").to_owned(), b["id"].as_str().expect("id").to_owned());
    x.state
        .store
        .write(move |c| {
            c.execute("UPDATE notify_channels SET sealed = (SELECT sealed FROM notify_channels WHERE id = ?1) WHERE id = ?2", [&ida, &idb])
                .map_err(StoreError::from)
        })
        .await
        .expect("swap");
    let (_, t) =
        x.call_json("POST", &format!("/api/v1/notifications/channels/{}/test", b["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["error"].as_str().is_some_and(|e| e.contains("cannot be opened")), "{t}");
    x.stop().await;
}

#[tokio::test]
async fn a_channel_template_that_could_exhaust_memory_is_refused_when_saved() {
    let x = server().await;
    let (_rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    for (bomb, teaches) in [
        ("{% for i in range(100) %}{{ alert.title * 99999999 }}{% endfor %}", "`*`"),
        ("{% set x = alert.title %}{% set x = x ~ x %}{% set x = x ~ x %}{{ x }}", "{{ a }}{{ b }}"),
    ] {
        let body = json!({"name": "bomb", "kind": "slack", "templates": {"body": bomb}, "settings": {"url": format!("{base}/ok/s")}});
        let (s, v) = x.call_json("POST", "/api/v1/notifications/channels", &admin, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bomb}: {v}");
        assert_eq!(v["fields"][0]["field"], "templates.body", "{v}");
        assert!(v["fields"][0]["message"].as_str().is_some_and(|m| m.contains(teaches)), "{teaches}: {v}");
    }
    let ok = json!({"name": "fine", "kind": "slack", "templates": {"body": "{{ person.display_name | default('*') }} {# * ~ #}"},
        "settings": {"url": format!("{base}/ok/s")}});
    create(&x, &admin, ok).await;
    x.stop().await;
}

#[tokio::test]
async fn moving_an_email_channel_elsewhere_needs_its_password_again() {
    let x = server().await;
    let (admin, _) = x.key("acme", &["admin", "alerts_read"], false).await;
    let ch = create(
        &x,
        &admin,
        json!({"name": "mail", "kind": "email", "settings": {"host": "smtp.example.com", "port": 587, "tls": "starttls",
            "username": "vigie", "password": "s3cret-pass", "from": "Vigie <vigie@example.com>", "to": ["soc@example.com"]}}),
    )
    .await;
    let path = format!("/api/v1/notifications/channels/{}", ch["id"].as_str().expect("id"));
    for change in
        [json!({"host": "smtp.attacker.example"}), json!({"port": 2525}), json!({"tls": "none"}), json!({"username": "someone-else"})]
    {
        let (s, v) = x.call_json("PATCH", &path, &admin, json!({"settings": change})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{change}: {v}");
        assert_eq!(v["fields"][0]["field"], "settings.password", "{v}");
        assert!(v["fields"][0]["message"].as_str().is_some_and(|m| m.contains("give the password again")), "{v}");
    }
    let (_, got) = x.get(&path, &admin).await;
    assert_eq!(got["settings"]["host"], "smtp.example.com", "nothing changed: {got}");
    // What does not change where the password goes needs nothing; a new host with the password does.
    let (s, v) = x.call_json("PATCH", &path, &admin, json!({"settings": {"to": ["other@example.com"]}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = x.call_json("PATCH", &path, &admin, json!({"settings": {"host": "smtp2.example.com", "password": "n3w-pass"}})).await;
    assert_eq!((s, v["settings"]["host"].as_str()), (StatusCode::OK, Some("smtp2.example.com")), "{v}");
    x.stop().await;
}

#[tokio::test]
async fn a_webhook_url_is_sealed_and_shown_masked() {
    let x = server().await;
    let (rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    let (reader, _) = x.key("acme", &["alerts_read"], false).await;
    let url = format!("{base}/ok/hooks/catch/123/ZapTokenQq7Xw9/");
    let ch = create(&x, &admin, json!({"name": "zap", "kind": "webhook", "settings": {"url": url}})).await;
    assert!(!ch.to_string().contains("ZapTokenQq7"), "{ch}");
    let (_, one) = x.get(&format!("/api/v1/notifications/channels/{}", ch["id"].as_str().expect("id")), &reader).await;
    let (_, list) = x.get("/api/v1/notifications/channels", &reader).await;
    for shown in [&one, &list] {
        assert!(!shown.to_string().contains("ZapTokenQq7"), "the token is shown: {shown}");
    }
    assert!(one["settings"]["url"].as_str().is_some_and(|u| u.ends_with("/…/7Xw9")), "masked: {one}");
    assert!(!contains(&database_bytes(x.dir.path()), "ZapTokenQq7"), "the webhook URL is in the database in clear");
    // It still delivers there.
    let no = space_no(&x, "acme").await;
    assert_eq!(enqueue(&x, no, context("AL00000030", "high", "R"), None).await, 1);
    until("the delivery", || async { (!rx.on("/ok/hooks/catch/123/ZapTokenQq7Xw9").is_empty()).then_some(()) }).await;
    x.stop().await;
}

#[tokio::test]
async fn a_delivery_in_flight_does_not_bring_back_a_notification_its_channel_deletion_failed() {
    let x = server().await;
    let (rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin", "alerts_read"], false).await;
    let ch = create(&x, &admin, json!({"name": "slow", "kind": "webhook", "settings": {"url": format!("{base}/hold/x")}})).await;
    let no = space_no(&x, "acme").await;
    assert_eq!(enqueue(&x, no, context("AL00000031", "high", "R"), None).await, 1);
    until("the delivery to start", || async { (!rx.on("/hold").is_empty()).then_some(()) }).await;
    let (s, _) =
        x.call_json("DELETE", &format!("/api/v1/notifications/channels/{}", ch["id"].as_str().expect("id")), &admin, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    rx.release.notify_one();
    // The worker counts the delivery, then records it: once counted, its write is queued, and a
    // write of ours after it sees its outcome.
    until("the delivery to end", || async {
        let m = x.state.metrics.render();
        m.lines()
            .any(|l| l.contains("notification_deliveries") && l.contains("kind=\"webhook\"") && l.contains("outcome=\"succeeded\""))
            .then_some(())
    })
    .await;
    x.state.store.write(|_| Ok::<_, StoreError>(())).await.expect("a write after the worker's");
    let (_, log) = x.get("/api/v1/notifications?channel=slow", &admin).await;
    let n = &log["items"][0];
    assert_eq!((n["status"].as_str(), n["attempt_count"].as_i64()), (Some("failed"), Some(0)), "{log}");
    assert_eq!(n["last_error"], "the channel was deleted", "{n}");
    x.stop().await;
}

#[tokio::test]
async fn a_4xx_other_than_408_and_429_fails_at_once() {
    let x = server().await;
    let (rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin", "alerts_read"], false).await;
    create(&x, &admin, json!({"name": "revoked", "kind": "slack", "settings": {"url": format!("{base}/missing/T0/B0/bad")}})).await;
    let no = space_no(&x, "acme").await;
    assert_eq!(enqueue(&x, no, context("AL00000032", "high", "R"), None).await, 1);
    let done = settled(&x, &admin, "revoked", 1).await;
    assert_eq!((done[0]["status"].as_str(), done[0]["attempt_count"].as_i64()), (Some("failed"), Some(1)), "{done:?}");
    assert!(done[0]["last_error"].as_str().is_some_and(|e| e.contains("404")), "{done:?}");
    assert_eq!(rx.on("/missing").len(), 1);
    x.stop().await;
}

#[tokio::test]
async fn teams_messages_escape_markdown_in_values_from_events_and_people() {
    let x = server().await;
    let (rx, base) = Receiver::start().await;
    let (admin, _) = x.key("acme", &["admin"], false).await;
    create(&x, &admin, json!({"name": "teams", "kind": "teams", "settings": {"url": format!("{base}/ok/teams/T")}})).await;
    let no = space_no(&x, "acme").await;
    let mut ctx = context("AL00000033", "high", "R");
    ctx["person"]["display_name"] = json!("[Reset your password](https://evil.example/login)");
    ctx["event"]["policy_name"] = json!("<a href=\"https://evil.example\">x</a>");
    assert_eq!(enqueue(&x, no, ctx, None).await, 1);
    let got = until("the Teams card", || async { rx.on("/ok/teams").first().cloned() }).await;
    let card: Value = serde_json::from_slice(&got.body).expect("teams json");
    let facts = card["sections"][0]["facts"].as_array().expect("facts").iter().filter_map(|f| f["value"].as_str());
    let shown: String = facts.chain(card["text"].as_str()).collect::<Vec<_>>().join("\n");
    for link in ["[Reset your password](", "https://evil"] {
        assert!(!shown.contains(link), "{link} reaches Teams: {shown}");
    }
    assert!(!shown.replace("\\<a href", "").contains("<a href"), "an HTML tag reaches Teams: {shown}");
    assert!(shown.contains("Person: \\[Reset your password\\]"), "still readable: {shown}");
    x.stop().await;
}

#[tokio::test]
async fn notifications_finished_more_than_thirty_days_ago_are_pruned_with_their_attempts() {
    let x = server().await;
    let no = space_no(&x, "acme").await;
    let now = vigie_core::clock::to_micros(chrono::Utc::now());
    let day = 86_400_000_000i64;
    x.state
        .store
        .write(move |c| {
            for (id, status, updated) in [
                ("old-done", "succeeded", now - 31 * day),
                ("old-failed", "failed", now - 40 * day),
                ("recent", "failed", now - day),
                ("old-pending", "pending", now - 31 * day),
            ] {
                c.execute(
                    "INSERT INTO notifications (id, space_no, channel_id, channel_name, kind, source, status, message, attempts, \
                     next_attempt_at, created_at, updated_at) VALUES (?1, ?2, 'c', 'c', 'slack', 'alert', ?3, '{}', 2, ?4, ?5, ?5)",
                    rusqlite::params![id, no, status, (status == "pending").then_some(now + day), updated],
                )?;
                for n in 1..=2 {
                    c.execute(
                        "INSERT INTO notification_attempts (notification_id, n, at, duration_ms, outcome) VALUES (?1, ?2, ?3, 1, 'failed')",
                        rusqlite::params![id, n, updated],
                    )?;
                }
            }
            Ok::<_, StoreError>(())
        })
        .await
        .expect("insert");
    let pruned = vigie_xdr::notify::prune_log(&x.state).await.expect("prune");
    assert!(pruned <= 2, "{pruned}");
    let left = |table: &str, col: &str| {
        x.count(&format!("SELECT COUNT(DISTINCT {col}) FROM {table} WHERE {col} IN ('old-done', 'old-failed', 'recent', 'old-pending')"))
    };
    assert_eq!(left("notifications", "id"), 2, "the recent one and the pending one stay");
    assert_eq!(left("notification_attempts", "notification_id"), 2, "and only their attempts");
    assert_eq!(x.count("SELECT COUNT(*) FROM notifications WHERE id IN ('recent', 'old-pending')"), 2);
    x.stop().await;
}
