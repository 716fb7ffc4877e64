//! POST /api/v1/scan: findings, risk and decision for a text, stored only when asked.
use crate::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CARD_TEXT: &str = "é café: 4532 0151 1283 0366, alice@acme.fr";

fn stored(s: &TestServer) -> (i64, i64) {
    (s.count("SELECT count(*) FROM interactions"), s.count("SELECT count(*) FROM outbox"))
}

#[tokio::test]
async fn a_scan_without_record_answers_and_stores_nothing() {
    let s = TestServer::start().await;
    s.policy("Coach on DeepSeek", 10, "coach", json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}])).await;
    let before = stored(&s);
    for body in [json!({"text": "What is the capital of France?"}), json!({"text": CARD_TEXT, "platform_id": "deepseek", "record": false})]
    {
        let (status, r) = s.post("/api/v1/scan", &s.admin, body).await;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert!(r.get("interaction_id").is_none(), "{r}");
        assert!(r["findings"].is_array() && r["risk_score"].is_f64() && r["risk_level"].is_string(), "{r}");
    }
    assert_eq!(stored(&s), before, "no interaction and no event");
    let (_, r) = s.post("/api/v1/scan", &s.admin, json!({"text": "hello"})).await;
    assert_eq!(
        r,
        json!({"findings": [], "classification_count": 0, "risk_score": 0.0, "risk_level": "minimal",
               "decision": {"action": "log", "policy_id": null, "policy_name": null, "message": null}}),
        "no platform: unknown, and the DeepSeek policy does not match"
    );
}

#[tokio::test]
async fn the_decision_carries_the_policys_message_or_a_default_one() {
    let s = TestServer::start().await;
    let (status, p) = s
        .post(
            "/api/v1/policies",
            &s.admin,
            json!({"name": "Coach on DeepSeek", "enabled": true, "priority": 10, "rules": {"action": "coach", "message": "DeepSeek keeps prompts; remove client names first.",
                   "conditions": [{"field": "platform_id", "operator": "eq", "value": "deepseek"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["rules"]["message"], "DeepSeek keeps prompts; remove client names first.", "the message is kept with the rules");
    let block = s.policy("Block Grok", 20, "block", json!([{"field": "platform_id", "operator": "eq", "value": "grok"}])).await;

    let (status, r) = s.post("/api/v1/scan", &s.admin, json!({"text": "hello", "platform_id": "DeepSeek"})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        r["decision"],
        json!({"action": "coach", "policy_id": p["id"], "policy_name": "Coach on DeepSeek", "message": "DeepSeek keeps prompts; remove client names first."})
    );
    let (_, r) = s.post("/api/v1/scan", &s.admin, json!({"text": "hello", "platform_id": "grok", "interaction_type": "completion"})).await;
    assert_eq!(r["decision"]["policy_id"].as_str(), Some(block.as_str()));
    assert_eq!(r["decision"]["message"], "Policy \"Block Grok\" blocks this answer.");

    let (status, e) = s
        .post(
            "/api/v1/policies",
            &s.admin,
            json!({"name": "long", "rules": {"action": "coach", "message": "x".repeat(501), "conditions": [{"field": "platform_id", "operator": "eq", "value": "poe"}]}}),
        )
        .await;
    assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("rules.message")), "{e}");
}

#[tokio::test]
async fn record_true_stores_one_interaction_as_post_interactions_would() {
    let s = TestServer::start().await;
    s.policy("Coach on Poe", 10, "coach", json!([{"field": "platform_id", "operator": "eq", "value": "poe"}])).await;
    let user = "0190a3c1-0000-7000-8000-000000000010";
    let ingest = s.api_token("ingest").await;
    let (status, r) = s
        .post("/api/v1/scan", &ingest, json!({"text": CARD_TEXT, "platform_id": "poe", "user_id": user, "source": "proxy", "record": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let id = r["interaction_id"].as_str().expect("interaction_id");
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 1);
    let (status, i) = s.get(&format!("/api/v1/interactions/{id}"), &s.admin).await;
    assert_eq!(status, StatusCode::OK, "{i}");
    assert_eq!(i["content_hash"], format!("{:x}", Sha256::digest(CARD_TEXT.as_bytes())));
    assert_eq!(i["content_length"], CARD_TEXT.chars().count());
    assert_eq!((i["platform_id"].as_str(), i["source"].as_str(), i["user_id"].as_str()), (Some("poe"), Some("proxy"), Some(user)));
    assert_eq!(i["decision"]["action"], r["decision"]["action"]);
    assert_eq!(i["decision"]["policy_name"], "Coach on Poe");
    assert_eq!((&i["risk_score"], &i["classification_count"]), (&r["risk_score"], &r["classification_count"]));
    let from_scan: Vec<(Value, Value, Value, Value)> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["type"].clone(), f["value"].clone(), f["start"].clone(), f["end"].clone()))
        .collect();
    let stored: Vec<(Value, Value, Value, Value)> = i["classifications"]
        .as_array()
        .expect("classifications")
        .iter()
        .map(|c| (c["type"].clone(), c["value"].clone(), c["start"].clone(), c["end"].clone()))
        .collect();
    assert_eq!(stored, from_scan, "the interaction holds the scan's findings");
    let events = s.count(&format!("SELECT count(*) FROM outbox WHERE json_extract(payload, '$.data.interaction.id') = '{id}'"));
    assert!(events >= 2, "created and policy_violated at least: {events}");

    let (status, e) = s.post("/api/v1/scan", &s.admin, json!({"text": "hello", "record": true})).await;
    assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("platform_id")), "{e}");
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 1);
}

#[tokio::test]
async fn only_recorders_may_scan_and_bad_bodies_are_refused() {
    let s = TestServer::start().await;
    let viewer = s.api_token("viewer").await;
    let (status, e) = s.post("/api/v1/scan", &viewer, json!({"text": "hello"})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    let (status, e) = s.call("POST", "/api/v1/scan", None, Some(json!({"text": "hello"}))).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing_credentials")));
    let cases = [
        (json!({}), "body", "missing field `text`"),
        (json!({"text": "hello", "recrod": true}), "recrod", "expected one of"),
        (json!({"text": "hello", "direction": "sideways"}), "direction", "expected one of outbound, inbound"),
        (json!({"text": "hello", "platform_id": "not a platform!"}), "platform_id", "not a platform id"),
    ];
    for (body, field, says) in cases {
        let (status, e) = s.post("/api/v1/scan", &s.admin, body.clone()).await;
        assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{body}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(says)), "{body}: {e}");
    }
    let ingest = s.api_token("ingest").await;
    assert_eq!(s.post("/api/v1/scan", &ingest, json!({"text": "hello"})).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_text_over_the_limit_gets_413_and_one_at_the_limit_is_scanned() {
    let s = TestServer::start_with(|o| o.max_text_bytes = 2048).await;
    let at_limit = "é".repeat(1024);
    let (status, r) = s.post("/api/v1/scan", &s.admin, json!({"text": at_limit})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let (status, e) = s.post("/api/v1/scan", &s.admin, json!({"text": format!("{at_limit}x")})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("text_too_large")), "{e}");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("2049") && m.contains("max_text_bytes")), "{e}");
}

#[tokio::test]
async fn scans_are_counted_and_timed_in_the_metrics() {
    let s = TestServer::start().await;
    for _ in 0..2 {
        assert_eq!(s.post("/api/v1/scan", &s.admin, json!({"text": "hello"})).await.0, StatusCode::OK);
    }
    let (status, _) = s.interaction(&s.admin, json!({"platform_id": "claude", "text": "hello"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let metrics = s.http.get(format!("{}/metrics", s.base)).send().await.expect("metrics").text().await.expect("text");
    for line in [
        "vigie_firewall_text_scans_total{endpoint=\"scan\",outcome=\"clean\"} 2",
        "vigie_firewall_text_scans_total{endpoint=\"interactions\",outcome=\"clean\"} 1",
        "vigie_firewall_text_scan_duration_seconds_count{endpoint=\"scan\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from:\n{metrics}");
    }
}

/// Needs the detection engine.
#[tokio::test]
async fn a_card_and_an_email_are_found_with_code_point_offsets_masked_values_and_a_default_message() {
    let s = TestServer::start().await;
    s.policy("PII on unvetted platforms", 10, "coach", json!([{"field": "platform_vetted", "operator": "eq", "value": false}, {"field": "classification_count", "operator": "gt", "value": 0}]))
        .await;
    let (status, r) = s.post("/api/v1/scan", &s.admin, json!({"text": CARD_TEXT, "platform_id": "deepseek"})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let findings: Vec<(&str, &str, u64, u64)> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or(""),
                f["start"].as_u64().unwrap_or(0),
                f["end"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(findings, [("CREDIT_CARD", "****0366", 8, 27), ("EMAIL", "a***@acme.fr", 29, 42)]);
    assert!(r["risk_score"].as_f64().is_some_and(|x| x > 0.9), "{r}");
    assert_eq!((r["classification_count"].as_u64(), r["risk_level"].as_str()), (Some(2), Some("critical")));
    assert_eq!(
        r["decision"]["message"],
        "This prompt contains CREDIT_CARD, EMAIL. Policy \"PII on unvetted platforms\" asks you to remove them before sending."
    );
    assert!(!r.to_string().contains("4532 0151") && !r.to_string().contains("alice@"), "a raw value was returned: {r}");
}

#[tokio::test]
async fn a_text_at_the_limit_fits_even_when_its_json_escaping_makes_the_body_six_times_larger() {
    // Found in review: the body limit assumed escaping at most doubles a text, so a text under
    // the limit written with \u escapes (Python's default json.dumps) got a 413.
    let s = TestServer::start_with(|o| o.max_text_bytes = 8 * 1024).await;
    let text = "é".repeat(4 * 1024); // 8 KiB of UTF-8, the limit
    let escaped = text.chars().map(|c| format!("\\u{:04x}", c as u32)).collect::<String>();
    let body = format!(r#"{{"text": "{escaped}"}}"#);
    assert!(body.len() > 3 * 8 * 1024, "the body is three times the text");
    let (status, r) = s.post_raw("/api/v1/scan", &s.admin, body).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let (status, r) = s.post("/api/v1/scan", &s.admin, json!({"text": format!("{text}é")})).await;
    assert_eq!((status, r["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("text_too_large")), "{r}");
}

#[tokio::test]
async fn a_value_sent_in_the_wrong_place_is_not_echoed_in_the_error() {
    let s = TestServer::start().await;
    for body in [json!({"text": 4532015112830366_u64}), json!({"text": "x", "source": "4532015112830366"})] {
        let (status, r) = s.post("/api/v1/scan", &s.admin, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
        assert!(!r.to_string().contains("4532015112830366"), "{r}");
        assert!(r.to_string().contains("not shown"), "{r}");
    }
    let (_, r) = s.post("/api/v1/scan", &s.admin, json!({"platform_id": "x"})).await;
    assert!(r.to_string().contains("missing field `text`"), "our own names stay: {r}");
}
