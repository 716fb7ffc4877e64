//! Intake and the event log over real HTTP: the accepted forms, idempotence, limits and errors,
//! signatures, scopes and spaces.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn ids(v: &Value) -> Vec<String> {
    v["event_ids"].as_array().expect("event_ids").iter().map(|i| i.as_str().expect("id").to_owned()).collect()
}

#[tokio::test]
async fn an_object_an_array_ndjson_and_gzip_are_accepted_and_stored_normalised() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let (status, r) =
        x.post("/api/v1/events", Some(&key), json!({"id": "e-1", "type": "login", "user": {"name": "alice"}}).to_string(), &[]).await;
    assert_eq!((status, ids(&r)), (StatusCode::OK, vec!["e-1".to_owned()]), "{r}");
    let (status, r) = x.post("/api/v1/events", Some(&key), json!([{"a": 1}, {"a": 2}]).to_string(), &[]).await;
    assert_eq!((status, ids(&r).len()), (StatusCode::OK, 2), "{r}");
    let generated = ids(&r)[0].clone();
    assert_eq!(uuid::Uuid::parse_str(&generated).expect("a UUID").get_version_num(), 7);
    let (status, r) = x.post("/api/v1/events", Some(&key), "{\"id\": \"n-1\"}\n{\"id\": \"n-2\"}\n\n{\"id\": \"n-3\"}\n", &[]).await;
    assert_eq!((status, ids(&r)), (StatusCode::OK, vec!["n-1".to_owned(), "n-2".into(), "n-3".into()]), "{r}");
    let (_, r) = x.post("/api/v1/events", Some(&key), json!({"id": 42, "@timestamp": "2026-11-28T07:00:00Z"}).to_string(), &[]).await;
    assert_eq!(ids(&r), vec!["42".to_owned()], "a numeric id is kept");
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE id = '42' AND timestamp = 1795849200000000"), 1, "@timestamp is read");
    let body = gzip(json!([{"id": "g-1", "source": "edr", "timestamp": "2026-11-28T08:00:00Z"}]).to_string().as_bytes());
    let (status, r) = x.post("/api/v1/events", Some(&key), body, &[("content-encoding", "gzip")]).await;
    assert_eq!((status, ids(&r)), (StatusCode::OK, vec!["g-1".to_owned()]), "{r}");
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 8);

    let (status, e) = x.get("/api/v1/events/e-1", &key).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!((e["user.name"].as_str(), e["event_type"].as_str(), e["source"].as_str()), (Some("alice"), Some("login"), Some("api")));
    assert!(e["received_at"].is_string() && e["space_id"].is_string());
    let (_, g) = x.get("/api/v1/events/g-1", &key).await;
    assert_eq!(g["source"], "edr");
    assert_eq!(x.get("/api/v1/events/nothing", &key).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_firewall_event_is_normalised_into_the_fields_rules_use() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let event = json!({"id": "evt_01", "type": "interaction.policy_violated", "timestamp": "2026-11-28T09:00:00Z", "source": "noxys", "tenant_id": "t",
        "data": {"interaction": {"id": "i-1", "platform_id": "deepseek", "user_id": "u-1", "risk_score": 0.97, "risk_level": "critical", "classification_count": 2,
            "classifications": [{"type": "CREDIT_CARD", "value": "****0366"}, {"type": "IBAN", "value": "****0189"}], "direction": "outbound", "interaction_type": "prompt",
            "decision": {"action": "block", "policy_name": "Block DeepSeek", "risk_level": "critical"}}, "policy": {"name": "Block DeepSeek", "action": "block"}, "alert": {"severity": "high"}}});
    let (status, _) = x.post("/api/v1/events", Some(&key), event.to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, e) = x.get("/api/v1/events/evt_01", &key).await;
    for (field, want) in [
        ("event_type", json!("interaction.policy_violated")),
        ("source", json!("noxys")),
        ("platform_id", json!("deepseek")),
        ("user_id", json!("u-1")),
        ("risk_score", json!(0.97)),
        ("classification_count", json!(2)),
        ("classification_type", json!(["CREDIT_CARD", "IBAN"])),
        ("policy_name", json!("Block DeepSeek")),
        ("policy_action", json!("block")),
        ("alert_severity", json!("high")),
        ("interaction_id", json!("i-1")),
    ] {
        assert_eq!(e[field], want, "{field}: {e}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE event_type = 'interaction.policy_violated' AND timestamp = 1795856400000000"), 1);
}

#[tokio::test]
async fn repeats_are_acknowledged_and_stored_once_by_event_id_and_by_webhook_id() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write"], false).await;
    for _ in 0..3 {
        let (status, r) = x.post("/api/v1/events", Some(&key), json!({"id": "same", "n": 1}).to_string(), &[]).await;
        assert_eq!((status, ids(&r)), (StatusCode::OK, vec!["same".to_owned()]));
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 1);
    // A redelivery of one webhook message: the events carry no id, the webhook-id says it is the
    // same message; the first answer is given again and nothing more is stored.
    let (_, first) = x.post("/api/v1/events", Some(&key), json!([{"n": 1}, {"n": 2}]).to_string(), &[("webhook-id", "msg_1")]).await;
    let (status, again) = x.post("/api/v1/events", Some(&key), json!([{"n": 1}, {"n": 2}]).to_string(), &[("webhook-id", "msg_1")]).await;
    assert_eq!((status, ids(&again)), (StatusCode::OK, ids(&first)));
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 3);
}

#[tokio::test]
async fn bad_requests_get_the_right_error_and_store_nothing() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write"], false).await;
    let (reader, _) = x.key("soc", &["events_read"], false).await;
    let (status, e) = x.post("/api/v1/events", None, "{}", &[]).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{e}");
    assert_eq!(x.post("/api/v1/events", Some("vxk_nope"), "{}", &[]).await.0, StatusCode::UNAUTHORIZED);
    // The scope is checked before the body is read: a reader is refused whatever it sends.
    let (status, e) = x.post("/api/v1/events", Some(&reader), vec![b'x'; 11 << 20], &[]).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    let (status, e) = x.post("/api/v1/events", Some(&key), "{\"a\": 1}\n{\"b\": }", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().expect("error").contains("line 2, column"), "{e}");
    assert_eq!(x.post("/api/v1/events", Some(&key), "[1, 2]", &[]).await.0, StatusCode::BAD_REQUEST);
    let big = json!({"blob": "x".repeat(260 * 1024)}).to_string();
    let (status, e) = x.post("/api/v1/events", Some(&key), big, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    let huge = Value::Array(vec![json!({"blob": "x".repeat(200 * 1024)}); 60]).to_string();
    assert_eq!(x.post("/api/v1/events", Some(&key), huge, &[]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // A small gzip body that inflates past 10 MiB.
    let bomb = gzip(&vec![b' '; 11 << 20]);
    assert!(bomb.len() < 100 << 10);
    assert_eq!(x.post("/api/v1/events", Some(&key), bomb, &[("content-encoding", "gzip")]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(x.post("/api/v1/events", Some(&key), "not gzip", &[("content-encoding", "gzip")]).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 0);
}

#[tokio::test]
async fn a_signed_key_takes_only_correctly_signed_deliveries() {
    let x = TestXdr::start().await;
    let (key, secret) = x.key("soc", &["events_write"], true).await;
    let secret = vigie_webhook::SigningSecret::parse(&secret.expect("a signing secret")).expect("secret");
    let body = json!({"id": "s-1"}).to_string();
    let (status, e) = x.post("/api/v1/events", Some(&key), body.clone(), &[]).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_signature")), "{e}");
    let now = chrono::Utc::now().timestamp();
    let h = vigie_webhook::sign("msg_9", now, body.as_bytes(), &[&secret]);
    let ts = h.timestamp.to_string();
    let forged = vigie_webhook::sign("msg_9", now, b"{\"id\": \"other\"}", &[&secret]);
    let (status, _) = x
        .post(
            "/api/v1/events",
            Some(&key),
            body.clone(),
            &[("webhook-id", "msg_9"), ("webhook-timestamp", &ts), ("webhook-signature", &forged.signature)],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, r) = x
        .post(
            "/api/v1/events",
            Some(&key),
            body,
            &[("webhook-id", "msg_9"), ("webhook-timestamp", &ts), ("webhook-signature", &h.signature)],
        )
        .await;
    assert_eq!((status, ids(&r)), (StatusCode::OK, vec!["s-1".to_owned()]), "{r}");
}

#[tokio::test]
async fn spaces_see_only_their_own_and_revoked_or_expired_keys_stop_working() {
    let x = TestXdr::start().await;
    let (a, _) = x.key("alpha", &["events_write", "events_read", "admin"], false).await;
    let (b, _) = x.key("beta", &["events_write", "events_read"], false).await;
    x.post("/api/v1/events", Some(&a), json!({"id": "shared-id", "secret": "alpha's"}).to_string(), &[]).await;
    x.post("/api/v1/events", Some(&b), json!({"id": "shared-id", "secret": "beta's"}).to_string(), &[]).await;
    let (_, ea) = x.get("/api/v1/events/shared-id", &a).await;
    let (_, eb) = x.get("/api/v1/events/shared-id", &b).await;
    assert_eq!((ea["secret"].as_str(), eb["secret"].as_str()), (Some("alpha's"), Some("beta's")));
    let (_, list) = x.get("/api/v1/events", &b).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    // Keys are managed by admin keys, within their space.
    let (status, created) = x
        .post(
            "/api/v1/keys",
            Some(&a),
            json!({"name": "sender", "scopes": ["events_write"]}).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let new_key = created["secret_key"].as_str().expect("key").to_owned();
    assert_eq!(x.post("/api/v1/keys", Some(&b), json!({"name": "x", "scopes": ["admin"]}).to_string(), &[]).await.0, StatusCode::FORBIDDEN);
    let (_, keys) = x.get("/api/v1/keys", &a).await;
    assert!(
        keys["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|k| k.get("secret_key").is_none() && k["prefix"].as_str().is_some_and(|p| p.starts_with("vxk_")))
    );
    assert_eq!(x.post("/api/v1/events", Some(&new_key), "{}", &[]).await.0, StatusCode::OK);
    let id = created["id"].as_str().expect("id");
    let resp = x.http.delete(format!("{}/api/v1/keys/{id}", x.base)).bearer_auth(&a).send().await.expect("revoke");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(x.post("/api/v1/events", Some(&new_key), "{}", &[]).await.0, StatusCode::UNAUTHORIZED);
    // Keys are stored hashed: the key itself is nowhere in the database.
    let stopped = x.stop().await;
    let bytes = std::fs::read(stopped.path().join("xdr.db")).expect("db");
    assert!(!String::from_utf8_lossy(&bytes).contains(&new_key[4..]));
}

#[tokio::test]
async fn the_log_lists_a_time_range_newest_first_with_a_cursor() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let events: Vec<Value> =
        (0..7).map(|i| json!({"id": format!("t-{i}"), "type": if i % 2 == 0 { "even" } else { "odd" }, "timestamp": format!("2026-11-28T08:0{i}:00Z")})).collect();
    x.post("/api/v1/events", Some(&key), Value::Array(events).to_string(), &[]).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) =
            x.get(&format!("/api/v1/events?from=2026-11-28T08:01:00Z&to=2026-11-28T08:06:00Z&limit=2{cursor}"), &key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().expect("items").iter().map(|e| e["id"].as_str().expect("id").to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["t-5", "t-4", "t-3", "t-2", "t-1"], "the range includes from and excludes to");
    let (_, odd) = x.get("/api/v1/events?from=2026-11-28T00:00:00Z&to=2026-11-29T00:00:00Z&event_type=odd", &key).await;
    assert_eq!(odd["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(x.get("/api/v1/events?from=2026-11-29T00:00:00Z&to=2026-11-28T00:00:00Z", &key).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(x.get("/api/v1/events?cursor=nonsense", &key).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let x = TestXdr::start_with(|o| o.key_rate = vigie_xdr::keys::KeyRate { per_second: 1.0, burst: 3.0 }).await;
    let (key, _) = x.key("soc", &["events_write"], false).await;
    let (other, _) = x.key("soc", &["events_write"], false).await;
    for _ in 0..3 {
        assert_eq!(x.post("/api/v1/events", Some(&key), "{}", &[]).await.0, StatusCode::OK);
    }
    let resp = x.http.post(format!("{}/api/v1/events", x.base)).bearer_auth(&key).body("{}").send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)));
    // The limit is per key.
    assert_eq!(x.post("/api/v1/events", Some(&other), "{}", &[]).await.0, StatusCode::OK);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 4);
}

#[tokio::test]
async fn events_past_their_space_retention_are_deleted_and_consumers_wake_on_appends() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "admin"], false).await;
    let mut signal = x.state.log_signal();
    // Received 40 days ago (written as it would have been then), and two received now — one of
    // them saying it happened 40 days ago, which must not make it expire early.
    let space: i64 = x.count(&format!("SELECT no FROM spaces WHERE id = '{}'", x.state.keys.ensure_space("soc").await.expect("space").id));
    let long_ago = vigie_core::clock::to_micros(chrono::Utc::now() - chrono::Duration::days(40));
    x.state
        .store
        .write(move |c| {
            c.execute(
                "INSERT INTO events (space_no, id, received_at, timestamp, source, body) VALUES (?1, 'old', ?2, ?2, 'api', '{}')",
                rusqlite::params![space, long_ago],
            )
            .map_err(vigie_core::StoreError::from)
        })
        .await
        .expect("old event");
    let old = chrono::Utc::now() - chrono::Duration::days(40);
    let body = json!([{"id": "claims-old", "timestamp": old.to_rfc3339()}, {"id": "new"}]).to_string();
    x.post("/api/v1/events", Some(&key), body, &[]).await;
    assert!(signal.has_changed().expect("signal"), "an append wakes consumers");
    signal.borrow_and_update();
    let (status, space) = x.call_json("PATCH", "/api/v1/space", &key, json!({"retention_days": 30})).await;
    assert_eq!((status, space["retention_days"].as_i64()), (StatusCode::OK, Some(30)), "{space}");
    assert_eq!(x.call_json("PATCH", "/api/v1/space", &key, json!({"retention_days": 0})).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    while vigie_xdr::facts::build_once(&x.state).await.expect("facts") > 0 {}
    assert_eq!(x.count("SELECT SUM(events) FROM fact_blocks"), 3);
    let deleted = vigie_xdr::retention::apply(&x.state).await.expect("retention");
    assert_eq!(deleted, 1);
    assert_eq!(x.count("SELECT SUM(events) FROM fact_blocks"), 2, "an event's facts go with it");
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE id IN ('new', 'claims-old')"), 2);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 2);
}

#[tokio::test]
async fn a_consumer_reads_the_log_in_order_and_resumes_from_its_checkpoint_after_a_restart() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write"], false).await;
    x.post("/api/v1/events", Some(&key), json!([{"id": "c-1"}, {"id": "c-2"}, {"id": "c-3"}]).to_string(), &[]).await;
    let first = x
        .state
        .store
        .write(|c| {
            let from = vigie_xdr::log::checkpoint(c, "test")?;
            let got = vigie_xdr::log::read_after(c, from, 2)?;
            vigie_xdr::log::advance(c, "test", got.last().map_or(from, |e| e.seq), 0)?;
            Ok::<_, vigie_core::StoreError>(got.into_iter().map(|e| e.id).collect::<Vec<_>>())
        })
        .await
        .expect("consume");
    assert_eq!(first, vec!["c-1", "c-2"]);
    let dir = x.stop().await;
    let x = TestXdr::start_in(dir, |_| {}).await;
    let rest = x
        .state
        .store
        .read(|c| {
            let from = vigie_xdr::log::checkpoint(c, "test")?;
            Ok::<_, vigie_core::StoreError>(vigie_xdr::log::read_after(c, from, 10)?.into_iter().map(|e| e.id).collect::<Vec<_>>())
        })
        .await
        .expect("resume");
    assert_eq!(rest, vec!["c-3"]);
}

#[tokio::test]
async fn concatenated_gzip_members_are_all_read_and_a_key_multiplied_over_many_leaves_is_kept_but_not_flattened() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let mut body = gzip(b"{\"id\": \"m-1\"}\n");
    body.extend(gzip(b"{\"id\": \"m-2\"}\n"));
    let (status, r) = x.post("/api/v1/events", Some(&key), body, &[("content-encoding", "gzip")]).await;
    assert_eq!((status, ids(&r)), (StatusCode::OK, vec!["m-1".to_owned(), "m-2".into()]), "{r}");
    let leaves: serde_json::Map<String, Value> = (0..1000).map(|i| (format!("a{i}"), json!(0))).collect();
    let mut wide = serde_json::Map::new();
    wide.insert("id".into(), json!("wide"));
    wide.insert("k".repeat(100 * 1024), Value::Object(leaves));
    // 108 KiB as sent, so accepted; shown as stored, since its dotted paths would be 100 MB.
    assert_eq!(x.post("/api/v1/events", Some(&key), Value::Object(wide).to_string(), &[]).await.0, StatusCode::OK);
    let (status, e) = x.get("/api/v1/events/wide", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e["k".repeat(100 * 1024)]["a999"], 0);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 3);
    // Concurrent repeats of one message store it once.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, url, key) = (x.http.clone(), format!("{}/api/v1/events", x.base), key.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .header("webhook-id", "msg-race")
                .body("[{\"n\": 1}, {\"n\": 2}]")
                .send()
                .await
                .expect("post")
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), StatusCode::OK);
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 5);
}

#[tokio::test]
async fn an_event_is_stored_byte_for_byte_as_sent_and_its_log_fields_are_read_from_it() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    // Odd spacing, escapes, a non-firewall `data`, a long numeric id.
    let odd = r#"{ "b" : 1,  "a": "x\u00e9",  "id" : "e\u0031", "type": "login", "event_type" : "auth.login", "source": "  ", "data": {"interaction": "nope"} }"#;
    let firewall = r#"{"id": "fw-1", "type": "interaction.blocked", "event_type": "other", "data": {"interaction": {"id": "i-9", "platform_id": "mistral"}}}"#;
    let repeated = r#"{"id": "last", "source": "edr"}"#;
    let numeric = r#"{"id": 12345678901234567890, "@timestamp": "2026-11-28T08:00:00Z"}"#;
    let body = format!("{odd}\n{firewall}\n{repeated}\n{numeric}\n");
    let (status, answer) = x.post("/api/v1/events", Some(&key), body, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(ids(&answer), ["e1", "fw-1", "last", "12345678901234567890"]);
    let db = rusqlite::Connection::open(x.dir.path().join("xdr.db")).expect("db");
    let stored = |id: &str| -> (String, Option<String>, String, i64) {
        db.query_row("SELECT body, event_type, source, timestamp FROM events WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect(id)
    };
    let e1 = stored("e1");
    assert_eq!((e1.0, e1.1, e1.2), (odd.to_owned(), Some("auth.login".to_owned()), "api".to_owned()));
    assert_eq!((stored("fw-1").0, stored("fw-1").1), (firewall.to_owned(), Some("interaction.blocked".to_owned())));
    assert_eq!((stored("last").0, stored("last").2), (repeated.to_owned(), "edr".to_owned()));
    assert_eq!((stored("12345678901234567890").0, stored("12345678901234567890").3), (numeric.to_owned(), 1795852800000000));
    // Read back, the event is normalised: dotted paths, the flat fields, the log's own fields.
    let (_, e) = x.get("/api/v1/events/e1", &key).await;
    assert_eq!(
        (e["a"].as_str(), e["data.interaction"].as_str(), e["id"].as_str(), e["source"].as_str()),
        (Some("xé"), Some("nope"), Some("e1"), Some("api"))
    );
    let (_, f) = x.get("/api/v1/events/fw-1", &key).await;
    assert_eq!(
        (f["event_type"].as_str(), f["platform_id"].as_str(), f["interaction_id"].as_str()),
        (Some("interaction.blocked"), Some("mistral"), Some("i-9"))
    );
    assert_eq!(f["data.interaction.platform_id"], "mistral");
    // `timestamp` is the time the log indexes (here the event's `@timestamp`).
    let (_, n) = x.get("/api/v1/events/12345678901234567890", &key).await;
    assert_eq!((n["timestamp"].as_str(), n["@timestamp"].as_str()), (Some("2026-11-28T08:00:00.000000Z"), Some("2026-11-28T08:00:00Z")));
}

#[tokio::test]
async fn a_log_written_before_the_compact_schema_is_carried_over_whole() {
    // A data directory as the first XDR schema left it: a space, two events whose body held
    // the flat and log fields, and a consumer's checkpoint.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = rusqlite::Connection::open(dir.path().join("xdr.db")).expect("db");
        db.execute_batch(include_str!("../../migrations/xdr_001_xdr.sql")).expect("xdr_001");
        db.execute_batch(
            "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES ('xdr_001_xdr', 0);
             INSERT INTO spaces (id, name, created_at) VALUES ('01900000-0000-7000-8000-000000000001', 'soc', 0);
             INSERT INTO events (seq, space_id, id, received_at, timestamp, event_type, source, body) VALUES
               (41, '01900000-0000-7000-8000-000000000001', 'old-1', 1795852800000000, 1795852800000000, 'login', 'edr',
                '{\"id\":\"old-1\",\"type\":\"login\",\"event_type\":\"login\",\"source\":\"edr\",\"user\":{\"name\":\"bob\"},\"received_at\":\"2026-11-28T08:00:00.000000Z\",\"space_id\":\"01900000-0000-7000-8000-000000000001\"}'),
               (42, '01900000-0000-7000-8000-000000000001', 'old-2', 1795852800000001, 1795852800000000, NULL, 'api', '{\"x\":1}');
             INSERT INTO consumer_checkpoints VALUES ('intel', 41, 0);
             UPDATE sqlite_sequence SET seq = 100 WHERE name = 'events';",
        )
        .expect("old rows");
    }
    let x = TestXdr::start_in(dir, |_| {}).await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let (status, e) = x.get("/api/v1/events/old-1", &key).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!((e["user.name"].as_str(), e["event_type"].as_str(), e["source"].as_str()), (Some("bob"), Some("login"), Some("edr")));
    assert_eq!(e["space_id"], "01900000-0000-7000-8000-000000000001");
    x.post("/api/v1/events", Some(&key), r#"{"id": "new-1"}"#, &[]).await;
    assert_eq!(x.count("SELECT seq FROM events WHERE id = 'new-1'"), 101, "the sequence goes on from the old log's high-water mark");
    let next = x
        .state
        .store
        .read(|c| {
            let from = vigie_xdr::log::checkpoint(c, "intel")?;
            Ok::<_, vigie_core::StoreError>(vigie_xdr::log::read_after(c, from, 10)?.into_iter().map(|e| e.id).collect::<Vec<_>>())
        })
        .await
        .expect("consume");
    assert_eq!(next, ["old-2", "new-1"], "a consumer resumes where it was");
    // The carried-over space still has its own number, and a new space gets the next one.
    x.key("second", &["events_write"], false).await;
    assert_eq!(x.count("SELECT COUNT(DISTINCT no) FROM spaces WHERE no IS NOT NULL"), 2);
}

#[tokio::test]
async fn the_other_products_key_forms_send_events_but_never_read_or_administer() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read", "admin"], false).await;
    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("x:{key}")));
    for path in ["/api/v1/events", "/api/v1/keys", "/api/v1/space"] {
        let url = format!("{}{path}", x.base);
        let tries = [
            x.http.get(&url).header("x-sekoiaio-intake-key", &key),
            x.http.get(&url).query(&[("intake_key", &key)]),
            x.http.get(&url).header("authorization", &basic),
            x.http.get(&url).header("authorization", format!("Splunk {key}")),
        ];
        for req in tries {
            let resp = req.send().await.expect("request");
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        assert_eq!(x.get(path, &key).await.0, StatusCode::OK, "{path} with a bearer token");
    }
    // Sending events takes them all.
    let (status, _) = x.post(&format!("/api/v1/events?intake_key={key}"), None, r#"{"id": "q"}"#, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn events_a_full_parse_would_refuse_or_read_two_ways_are_refused_whole() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write"], false).await;
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    for (body, says) in [
        (r#"[{"id": "ok-1"}, {"note": "\ud800"}]"#.to_owned(), "event 1"),
        (r#"{"risk_score": 1e999}"#.to_owned(), "out of range"),
        (deep, "recursion"),
        (r#"{"user_id": "alice", "user_id": "mallory"}"#.to_owned(), "appears twice"),
        (r#"{"data": {"interaction": {}, "interaction": {"user_id": "x"}}}"#.to_owned(), "appears twice"),
    ] {
        let (status, e) = x.post("/api/v1/events", Some(&key), body.clone(), &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(says)), "{body}: {e}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 0, "a refused request stores nothing");
    let (status, _) = x.post("/api/v1/events", Some(&key), r#"{"id": "fine", "note": "caf\u00e9 \ud83d\ude00", "n": 1e300}"#, &[]).await;
    assert_eq!(status, StatusCode::OK);
}
