//! The OpenAPI document matches the routes, and the operational endpoints answer.
use crate::TestServer;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn every_documented_operation_is_routed_and_every_route_is_documented() {
    let s = TestServer::start().await;
    let (status, doc) = s.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let expected = [
        ("post", "/api/v1/interactions"),
        ("get", "/api/v1/interactions"),
        ("get", "/api/v1/interactions/{id}"),
        ("get", "/api/v1/interactions/{id}/events"),
        ("get", "/api/v1/test-data"),
        ("delete", "/api/v1/test-data"),
        ("post", "/api/v1/policies"),
        ("get", "/api/v1/policies"),
        ("get", "/api/v1/policies/{id}"),
        ("patch", "/api/v1/policies/{id}"),
        ("put", "/api/v1/policies/{id}"),
        ("delete", "/api/v1/policies/{id}"),
        ("post", "/api/v1/policies/{id}/enable"),
        ("post", "/api/v1/policies/{id}/disable"),
        ("get", "/api/v1/platforms"),
        ("post", "/api/v1/platforms"),
        ("get", "/api/v1/platforms/{id}"),
        ("patch", "/api/v1/platforms/{id}"),
        ("post", "/api/v1/auth/login"),
        ("get", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/password"),
        ("post", "/api/v1/auth/accept-invite"),
        ("get", "/api/v1/tenants/me"),
        ("post", "/api/v1/users/invite"),
        ("get", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("patch", "/api/v1/users/{id}"),
        ("post", "/api/v1/users/{id}/deactivate"),
        ("post", "/api/v1/users/{id}/activate"),
        ("post", "/api/v1/tokens"),
        ("get", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/scan"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks/{id}"),
        ("patch", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/test"),
        ("post", "/api/v1/webhooks/{id}/rotate-secret"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        ("post", "/api/v1/webhooks/{id}/replay"),
    ];
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut want: Vec<(String, String)> = expected.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    want.sort();
    documented.sort();
    assert_eq!(documented, want);
    // Each documented operation reaches a handler: never the unknown-route or wrong-method answer.
    for (method, path) in &documented {
        let concrete = path.replace(
            "{id}",
            if path.contains("platforms") {
                "chatgpt"
            } else if path.contains("webhooks") {
                "whk_0190a3c100007000800000000000009a"
            } else {
                "0190a3c1-0000-7000-8000-000000000099"
            },
        );
        let body = (method != "get" && method != "delete").then(|| json!({}));
        let (status, resp) = s.call(&method.to_uppercase(), &concrete, Some(&s.admin), body).await;
        let code = resp["code"].as_str().unwrap_or_default();
        assert!(
            code != "route_not_found" && code != "method_not_allowed" && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {resp}"
        );
    }
    let (status, e) = s.get("/api/v1/nothing-here", &s.admin).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("route_not_found")));
    let (status, e) = s.call("PUT", "/api/v1/interactions", Some(&s.admin), None).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_credentials() {
    let s = TestServer::start().await;
    assert_eq!(s.call("GET", "/healthz", None, None).await.0, StatusCode::OK);
    let (status, ready) = s.call("GET", "/readyz", None, None).await;
    assert_eq!((status, ready["status"].as_str()), (StatusCode::OK, Some("ready")));
    s.interaction(&s.admin, crate::interaction("claude")).await;
    let text = s.http.get(format!("{}/metrics", s.base)).send().await.expect("metrics").text().await.expect("text");
    for metric in [
        "vigie_firewall_http_requests_total{method=\"POST\",route=\"/api/v1/interactions\",status=\"201\"} 1",
        "vigie_firewall_interactions_recorded_total{action=\"log\"} 1",
        "vigie_firewall_outbox_events_total{event_type=\"interaction.created\"} 1",
        "vigie_firewall_db_write_batch_size_count",
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
}
