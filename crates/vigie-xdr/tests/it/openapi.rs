//! The OpenAPI document matches the routes, and the operational endpoints answer.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn every_documented_operation_is_routed_and_the_operational_endpoints_answer() {
    let x = TestXdr::start().await;
    let doc: Value = x.http.get(format!("{}/api/v1/openapi.json", x.base)).send().await.expect("doc").json().await.expect("json");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("post", "/api/v1/events"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/events/{id}"),
        ("post", "/api/v1/keys"),
        ("get", "/api/v1/keys"),
        ("delete", "/api/v1/keys/{id}"),
        ("get", "/api/v1/space"),
        ("patch", "/api/v1/space"),
        ("post", "/plain"),
        ("post", "/plain/batch"),
        ("post", "/jsons"),
        ("post", "/batch"),
        ("post", "/"),
        ("post", "/array"),
        ("post", "/services/collector/event"),
        ("post", "/services/collector/raw"),
        ("get", "/api/v1/events/search"),
        ("post", "/api/v1/events/search"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Each reaches a handler: never the unknown-route or wrong-method answer.
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "0190a3c1-0000-7000-8000-000000000099");
        let resp =
            x.http.request(method.to_uppercase().parse().expect("method"), format!("{}{concrete}", x.base)).send().await.expect("request");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status != StatusCode::METHOD_NOT_ALLOWED && body["code"] != "route_not_found", "{method} {path}: {status} {body}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(x.http.get(format!("{}{path}", x.base)).send().await.expect("get").status(), StatusCode::OK, "{path}");
    }
    let resp = x.http.get(format!("{}/nothing-here", x.base)).send().await.expect("get");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
