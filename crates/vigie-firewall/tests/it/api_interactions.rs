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
            "body over 1 MiB",
            with("content_metadata", json!({"pad": "x".repeat(1_100_000)})),
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
