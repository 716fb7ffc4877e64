//! What clients of the compatible API send, and the errors a person reads at 3 a.m.
use crate::{HASH, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_fetched_policy_can_be_sent_back_with_put_and_nulls_mean_defaults() {
    let s = TestServer::start().await;
    let (status, created) = s
        .post(
            "/api/v1/policies",
            &s.admin,
            json!({"name": "p", "description": null, "enabled": null, "priority": null,
                   "rules": {"action": "Block", "conditions": [{"field": "platform_id", "operator": "EQ", "value": "grok"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["description"].as_str(), created["enabled"].as_bool(), created["priority"].as_i64()),
        (Some(""), Some(false), Some(100))
    );
    let id = created["id"].as_str().expect("id");
    let (_, mut fetched) = s.get(&format!("/api/v1/policies/{id}"), &s.admin).await;
    fetched["enabled"] = json!(true);
    let (status, replaced) = s.call("PUT", &format!("/api/v1/policies/{id}"), Some(&s.admin), Some(fetched)).await;
    assert_eq!((status, replaced["enabled"].as_bool()), (StatusCode::OK, Some(true)), "{replaced}");
    let (status, e) = s.call("PATCH", &format!("/api/v1/policies/{id}"), Some(&s.admin), Some(json!({"enabeld": false}))).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "a typo is not silently ignored"
    );
    assert!(e["error"].as_str().unwrap_or_default().contains("enabeld"), "{e}");
}

#[tokio::test]
async fn enum_values_are_read_in_any_case() {
    let s = TestServer::start().await;
    let (status, r) = s
        .interaction(&s.admin, json!({"platform_id": "chatgpt", "content_hash": HASH, "source": "Browser_Extension", "direction": "OUTBOUND", "interaction_type": "Prompt"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["source"].as_str(), r["direction"].as_str()), (Some("browser_extension"), Some("outbound")));
    let (status, page) = s.get("/api/v1/interactions?action=Log", &s.admin).await;
    assert_eq!((status, page["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
}

#[tokio::test]
async fn aggregated_classifications_count_every_match() {
    let s = TestServer::start().await;
    s.policy("Many e-mails", 10, "coach", json!([{"field": "classification_count", "operator": "gte", "value": "3"}])).await;
    let (status, r) = s
        .interaction(
            &s.admin,
            json!({"platform_id": "claude", "content_hash": HASH, "classifications": [{"type": "email", "confidence": 0.95, "count": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["classification_count"].as_u64(), r["decision"]["action"].as_str()), (Some(3), Some("coach")));
}

#[tokio::test]
async fn unknown_query_parameters_and_bad_dates_are_refused_with_a_hint() {
    let s = TestServer::start().await;
    for path in ["/api/v1/users?page=2", "/api/v1/interactions?platform=chatgpt", "/api/v1/policies?sort=-name"] {
        let (status, e) = s.get(path, &s.admin).await;
        assert_eq!((status, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{path}: {e}");
    }
    let (status, e) = s.get("/api/v1/interactions?from=2026-01-01", &s.admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap_or_default().contains("RFC 3339"), "{e}");
    let (_, e) = s.get("/api/v1/policies?cursor=garbage", &s.admin).await;
    assert_eq!((e["code"].as_str(), e["fields"][0]["field"].as_str()), (Some("invalid_query"), Some("cursor")));
}

#[tokio::test]
async fn every_error_is_json_and_roles_are_checked_before_the_body() {
    let s = TestServer::start().await;
    let resp = s.http.get(format!("{}/api/v1/policies/%FF", s.base)).bearer_auth(&s.admin).send().await.expect("send");
    assert!(resp.status().is_client_error());
    assert!(resp.headers()["content-type"].to_str().unwrap_or_default().starts_with("application/json"));
    let e: serde_json::Value = resp.json().await.expect("json");
    assert!(e["code"].is_string() && e["error"].is_string(), "{e}");

    let viewer = s.api_token("viewer").await;
    let (status, e) = s.post("/api/v1/policies", &viewer, json!({})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    let (status, e) = s.post("/api/v1/interactions", &viewer, json!({})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    assert_eq!(s.interaction(&viewer, interaction("claude")).await.0, StatusCode::FORBIDDEN);
}
