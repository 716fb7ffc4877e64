//! Recording and listing interactions, and what bad input gets.
use crate::{HASH, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn an_interaction_is_stored_with_its_decision_defaults_and_masked_values() {
    let s = TestServer::start().await;
    s.policy("Block cards", 10, "block", json!([{"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}])).await;
    let ingest = s.api_token("ingest").await;
    let (status, r) = s
        .interaction(&ingest, json!({
            "platform_id": "ChatGPT", "content_hash": HASH.to_uppercase(), "risk_score": 0.92,
            "classifications": [{"type": "credit_card", "value": "4532-0151-1283-0366", "confidence": 0.99, "start": 8, "end": 27}, {"type": "nir", "value": "2 84 05 75 112 233 45"}],
            "user_id": "0190a3c1-0000-7000-8000-000000000010", "content_metadata": {"model": "gpt-4o"}
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["platform_id"], "chatgpt");
    assert_eq!(r["content_hash"], HASH);
    assert_eq!(
        (r["interaction_type"].as_str(), r["direction"].as_str(), r["source"].as_str()),
        (Some("prompt"), Some("outbound"), Some("browser_extension"))
    );
    assert_eq!(r["classifications"][0], json!({"type": "CREDIT_CARD", "value": "****0366", "score": 0.99, "start": 8, "end": 27}));
    assert_eq!(r["classifications"][1]["type"], "FR_NIR");
    assert_eq!(r["classification_count"], 2);
    assert_eq!(r["risk_level"], "critical");
    assert_eq!(r["decision"]["action"], "block");
    assert_eq!(r["decision"]["policy_name"], "Block cards");
    assert_eq!(r["alert"]["severity"], "critical");
    // The ingest token may record but not read back.
    let id = r["id"].as_str().expect("id");
    let (status, _) = s.get(&format!("/api/v1/interactions/{id}"), &ingest).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, got) = s.get(&format!("/api/v1/interactions/{id}"), &s.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, r);
    let (status, e) = s.get("/api/v1/interactions/0190a3c1-0000-7000-8000-000000000099", &s.admin).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn bad_input_gets_the_error_shape_with_the_right_status_and_nothing_is_written() {
    let s = TestServer::start().await;
    let valid = interaction("chatgpt");
    let with = |k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        b.to_string()
    };
    let without = |k: &str| {
        let mut b = valid.clone();
        b.as_object_mut().expect("object").remove(k);
        b.to_string()
    };
    let cases: Vec<(&str, String, StatusCode, &str, Option<&str>)> = vec![
        ("malformed JSON", "{\"platform_id\": \"chatgpt\",".into(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("empty body", String::new(), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("trailing garbage", format!("{valid} x"), StatusCode::BAD_REQUEST, "malformed_json", None),
        ("not an object", "[1, 2]".into(), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("body")),
        ("wrong type", with("risk_score", json!("high")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("risk_score")),
        ("unknown enum", with("direction", json!("sideways")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("direction")),
        ("unknown source", with("source", json!("fax")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("source")),
        ("user id not a UUID", with("user_id", json!("bob")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("user_id")),
        ("short hash", with("content_hash", json!("abc123")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("content_hash")),
        ("risk above 1", with("risk_score", json!(1.5)), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("risk_score")),
        ("no platform", without("platform_id"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("body")),
        ("no hash nor text", without("content_hash"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", Some("content_hash")),
        (
            "bad type code",
            with("classifications", json!([{"type": "!!"}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("classifications[0].type"),
        ),
        (
            "score out of range",
            with("classifications", json!([{"type": "EMAIL", "score": 7}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("classifications[0].score"),
        ),
        (
            "body over six times max_text_bytes plus 64 KiB",
            with("content_metadata", json!({"pad": "x".repeat(6 * 1_048_576 + 70_000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        ),
    ];
    for (what, body, status, code, field) in cases {
        let (got, err) = s.post_raw("/api/v1/interactions", &s.admin, body).await;
        assert_eq!((got, err["code"].as_str()), (status, Some(code)), "{what}: {err}");
        assert!(err["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: no message");
        if let Some(f) = field {
            assert_eq!(err["fields"][0]["field"], f, "{what}: {err}");
        }
    }
    let (_, err) = s.post_raw("/api/v1/interactions", &s.admin, "{\n  \"platform_id\": }").await;
    assert!(err["error"].as_str().unwrap_or_default().contains("line 2, column"), "position missing: {err}");

    let (status, err) = s.call("POST", "/api/v1/interactions", None, Some(valid.clone())).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing_credentials")));
    let (status, err) = s.call("POST", "/api/v1/interactions", Some("vgt_not-a-real-token"), Some(valid.clone())).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    let (status, err) = s.call("POST", "/api/v1/interactions", Some("eyJhbGciOiJIUzI1NiJ9.e30.bad"), Some(valid)).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));

    assert_eq!(s.count("SELECT count(*) FROM interactions"), 0);
    assert_eq!(s.count("SELECT count(*) FROM outbox"), 0);
}

#[tokio::test]
async fn the_list_filters_and_pages_newest_first_without_gaps_or_repeats() {
    let s = TestServer::start().await;
    s.policy("Block DeepSeek", 10, "block", json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}])).await;
    let alice = "0190a3c1-0000-7000-8000-00000000000a";
    let bob = "0190a3c1-0000-7000-8000-00000000000b";
    let mut ids = Vec::new();
    for i in 0..9 {
        let platform = ["chatgpt", "deepseek", "claude"][i % 3];
        let user = if i % 2 == 0 { alice } else { bob };
        let (status, r) = s
            .interaction(&s.admin, json!({"platform_id": platform, "content_hash": HASH, "user_id": user, "risk_score": i as f64 / 10.0}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(r["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/interactions?limit=4&cursor={c}"),
            None => "/api/v1/interactions?limit=4".into(),
        };
        let (status, page) = s.get(&path, &s.admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().expect("id").to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let count = |page: &Value| page["items"].as_array().map_or(0, Vec::len);
    let (_, p) = s.get("/api/v1/interactions?platform_id=deepseek", &s.admin).await;
    assert_eq!(count(&p), 3);
    assert!(p["items"].as_array().expect("items").iter().all(|i| i["decision"]["action"] == "block"));
    let (_, p) = s.get(&format!("/api/v1/interactions?user_id={bob}"), &s.admin).await;
    assert_eq!(count(&p), 4);
    let (_, p) = s.get("/api/v1/interactions?action=block", &s.admin).await;
    assert_eq!(count(&p), 3);
    let (_, p) = s.get("/api/v1/interactions?min_risk=0.5", &s.admin).await;
    assert_eq!(count(&p), 4);
    let (_, p) = s.get(&format!("/api/v1/interactions?min_risk=0.5&user_id={alice}&platform_id=claude"), &s.admin).await;
    assert_eq!(count(&p), 1);
    let (_, first) = s.get(&format!("/api/v1/interactions/{}", ids[0]), &s.admin).await;
    let (_, last) = s.get(&format!("/api/v1/interactions/{}", ids[8]), &s.admin).await;
    let t0 = chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().expect("time")).expect("rfc3339");
    let t8 = chrono::DateTime::parse_from_rfc3339(last["created_at"].as_str().expect("time")).expect("rfc3339");
    let enc = |t: chrono::DateTime<chrono::FixedOffset>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B");
    let (_, p) = s
        .get(
            &format!("/api/v1/interactions?from={}&to={}", enc(t0 - chrono::Duration::seconds(1)), enc(t8 + chrono::Duration::seconds(1))),
            &s.admin,
        )
        .await;
    assert_eq!(count(&p), 9);
    let (_, p) = s.get(&format!("/api/v1/interactions?from={}", enc(t8 + chrono::Duration::seconds(1))), &s.admin).await;
    assert_eq!(count(&p), 0);
    // Bounds are exact to the microsecond: `from` includes, `to` excludes.
    let (_, third) = s.get(&format!("/api/v1/interactions/{}", ids[3]), &s.admin).await;
    let t3 = chrono::DateTime::parse_from_rfc3339(third["created_at"].as_str().expect("time")).expect("rfc3339");
    let (_, p) = s.get(&format!("/api/v1/interactions?from={}", enc(t3)), &s.admin).await;
    assert_eq!(count(&p), 6);
    let (_, p) = s.get(&format!("/api/v1/interactions?to={}", enc(t3)), &s.admin).await;
    assert_eq!(count(&p), 3);
    let (_, p) = s.get(&format!("/api/v1/interactions?to={}", enc(t3 + chrono::Duration::microseconds(1))), &s.admin).await;
    assert_eq!(count(&p), 4);
    let (status, e) = s.get("/api/v1/interactions?action=explode", &s.admin).await;
    assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("action")));
    let (status, e) = s.get("/api/v1/interactions?limit=many", &s.admin).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn a_sent_text_is_hashed_by_the_server_and_a_hash_of_something_else_is_refused() {
    let s = TestServer::start().await;
    let text = "Résume ce contrat pour moi, s'il te plaît.";
    let (status, r) = s.interaction(&s.admin, json!({"platform_id": "claude", "text": text})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(
        (r["content_hash"].as_str(), r["content_length"].as_u64()),
        (Some(sha256(text).as_str()), Some(text.chars().count() as u64))
    );
    let (status, r) =
        s.interaction(&s.admin, json!({"platform_id": "claude", "text": text, "content_hash": sha256(text).to_uppercase()})).await;
    assert_eq!(status, StatusCode::CREATED, "the same hash in capitals: {r}");
    let (status, e) = s.interaction(&s.admin, json!({"platform_id": "claude", "text": text, "content_hash": HASH})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["fields"][0]["field"], "content_hash");
    assert!(e["fields"][0]["message"].as_str().unwrap_or_default().contains("does not match the SHA-256 of text"), "{e}");
    let (status, _) =
        s.interaction(&s.admin, json!({"platform_id": "claude", "content_metadata": {"text": text}, "content_hash": HASH})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "content_metadata.text is checked the same way");
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 2);
}

#[tokio::test]
async fn the_stored_risk_is_the_higher_of_the_clients_and_the_servers_and_decides() {
    let s = TestServer::start().await;
    s.policy("Coach critical", 10, "coach", json!([{"field": "risk_score", "operator": "gte", "value": 0.9}])).await;
    // The server never lowers what the client saw.
    let (status, r) = s.interaction(&s.admin, json!({"platform_id": "claude", "text": "nothing to see", "risk_score": 0.99})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["risk_score"].as_f64(), r["decision"]["action"].as_str()), (Some(0.99), Some("coach")));
    // Nor ignores what the client found: a card it reports with a risk of 0 is scored by the server.
    let body = json!({"platform_id": "claude", "content_hash": HASH, "risk_score": 0.0,
                      "classifications": [{"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.97}]});
    let (status, r) = s.interaction(&s.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let risk = r["risk_score"].as_f64().expect("risk");
    assert!(risk > 0.9, "{risk}");
    assert_eq!((r["risk_level"].as_str(), r["decision"]["action"].as_str()), (Some("critical"), Some("coach")), "{r}");
    assert_eq!(r["alert"]["severity"], "critical");
    let id = r["id"].as_str().expect("id");
    let high = s.count(&format!(
        "SELECT count(*) FROM outbox WHERE event_type = 'interaction.high_risk' AND json_extract(payload, '$.data.interaction.id') = '{id}'"
    ));
    assert_eq!(high, 1, "interaction.high_risk follows the final risk");
}

#[tokio::test]
async fn a_text_at_the_limit_is_accepted_even_when_json_escaping_doubles_it_and_one_byte_more_gets_413() {
    let s = TestServer::start().await;
    // 1 MiB of quotes: 2 MiB of JSON once escaped. Scanned on the blocking pool (over 64 KiB).
    let at_limit = "\"".repeat(1 << 20);
    let (status, r) = s.interaction(&s.admin, json!({"platform_id": "claude", "text": at_limit})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["content_length"].as_u64(), Some(1 << 20));
    let over = format!("{at_limit}x");
    let (status, e) = s.interaction(&s.admin, json!({"platform_id": "claude", "text": over})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("text_too_large")), "{e}");
    let (status, e) = s.interaction(&s.admin, json!({"platform_id": "claude", "content_metadata": {"text": over}})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("text_too_large")), "{e}");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("content_metadata.text")), "{e}");
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 1);

    let small = TestServer::start_with(|o| o.max_text_bytes = 1024).await;
    let (status, _) = small.interaction(&small.admin, json!({"platform_id": "claude", "text": "a".repeat(1024)})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, e) = small.interaction(&small.admin, json!({"platform_id": "claude", "text": "a".repeat(1025)})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("text_too_large")), "{e}");
}

/// Needs the detection engine.
#[tokio::test]
async fn server_findings_join_the_classifications_and_replace_the_clients_on_the_same_span() {
    let s = TestServer::start().await;
    let text = "my card 4532 0151 1283 0366, mail alice@acme.fr";
    let (status, r) = s
        .interaction(
            &s.admin,
            json!({"platform_id": "claude", "text": text, "risk_score": 0.0, "classifications": [
                {"type": "credit_card", "value": "4532015112830366", "score": 0.6, "start": 8, "end": 27},
                {"type": "PERSON", "value": "Alice Martin", "score": 0.7}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let got: Vec<(&str, &str, Option<u64>)> = r["classifications"]
        .as_array()
        .expect("classifications")
        .iter()
        .map(|c| (c["type"].as_str().unwrap_or(""), c["value"].as_str().unwrap_or(""), c["start"].as_u64()))
        .collect();
    assert_eq!(got, [("CREDIT_CARD", "****0366", Some(8)), ("EMAIL", "a***@acme.fr", Some(34)), ("PERSON", "****in", None)]);
    assert!(r["classifications"][0]["score"].as_f64().is_some_and(|x| x > 0.6), "the server's finding replaced the client's: {r}");
    assert_eq!(r["classification_count"], 3);
    assert!(r["risk_score"].as_f64().is_some_and(|x| x > 0.9), "a card in the text: {r}");
}
