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
        for (method, op) in item.as_object().expect("item") {
            documented.push((method.clone(), path.clone()));
            // A path parameter is one the path has (query filters documented as path
            // parameters would tell clients to put them in the URL's path).
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap_or_default();
                    assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: {name} documented as a path parameter");
                }
            }
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
        ("get", "/api/v1/alerts"),
        ("get", "/api/v1/alerts/{id}"),
        ("patch", "/api/v1/alerts/{id}"),
        ("patch", "/api/v1/alerts/{id}/workflow"),
        ("get", "/api/v1/alerts/{id}/comments"),
        ("post", "/api/v1/alerts/{id}/comments"),
        ("post", "/api/v1/rules"),
        ("get", "/api/v1/rules"),
        ("get", "/api/v1/rules/{id}"),
        ("patch", "/api/v1/rules/{id}"),
        ("delete", "/api/v1/rules/{id}"),
        ("put", "/api/v1/rules/{id}/enabled"),
        ("put", "/api/v1/rules/{id}/disabled"),
        ("get", "/api/v1/rules/{id}/history"),
        ("get", "/api/v1/rules/{id}/sigma"),
        ("post", "/api/v1/rules/{id}/backtest"),
        ("post", "/api/v1/rules/backtest"),
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
        ("post", "/api/v1/cases"),
        ("get", "/api/v1/cases"),
        ("get", "/api/v1/cases/{id}"),
        ("patch", "/api/v1/cases/{id}"),
        ("post", "/api/v1/cases/{id}/alerts"),
        ("delete", "/api/v1/cases/{id}/alerts/{alert_id}"),
        ("post", "/api/v1/cases/{id}/events"),
        ("delete", "/api/v1/cases/{id}/events/{event_id}"),
        ("get", "/api/v1/cases/{id}/tasks"),
        ("post", "/api/v1/cases/{id}/tasks"),
        ("patch", "/api/v1/cases/{id}/tasks/{task_id}"),
        ("get", "/api/v1/cases/{id}/comments"),
        ("post", "/api/v1/cases/{id}/comments"),
        ("get", "/api/v1/cases/{id}/timeline"),
        ("get", "/api/v1/case-templates"),
        ("post", "/api/v1/case-templates"),
        ("get", "/api/v1/case-templates/{id}"),
        ("put", "/api/v1/case-templates/{id}"),
        ("delete", "/api/v1/case-templates/{id}"),
        ("get", "/api/v1/people"),
        ("post", "/api/v1/people/import"),
        ("get", "/api/v1/people/{user_id}"),
        ("put", "/api/v1/people/{user_id}"),
        ("patch", "/api/v1/people/{user_id}"),
        ("delete", "/api/v1/people/{user_id}"),
        ("get", "/api/v1/notifications/channels"),
        ("post", "/api/v1/notifications/channels"),
        ("get", "/api/v1/notifications/channels/{id}"),
        ("patch", "/api/v1/notifications/channels/{id}"),
        ("delete", "/api/v1/notifications/channels/{id}"),
        ("post", "/api/v1/notifications/channels/{id}/test"),
        ("get", "/api/v1/notifications"),
        ("get", "/api/v1/notifications/{id}"),
        ("post", "/api/v1/notifications/{id}/retry"),
        ("post", "/api/v1/playbooks"),
        ("get", "/api/v1/playbooks"),
        ("post", "/api/v1/playbooks/validate"),
        ("get", "/api/v1/playbooks/{id}"),
        ("patch", "/api/v1/playbooks/{id}"),
        ("delete", "/api/v1/playbooks/{id}"),
        ("post", "/api/v1/playbooks/{id}/test"),
        ("post", "/api/v1/playbooks/{id}/run"),
        ("get", "/api/v1/playbooks/{id}/runs"),
        ("get", "/api/v1/playbook-runs/{id}"),
        ("post", "/api/v1/playbook-runs/{id}/replay"),
        ("post", "/api/v1/playbook-runs/{id}/cancel"),
        ("get", "/api/v1/dashboards"),
        ("post", "/api/v1/dashboards"),
        ("get", "/api/v1/dashboards/{id}"),
        ("put", "/api/v1/dashboards/{id}"),
        ("delete", "/api/v1/dashboards/{id}"),
        ("get", "/api/v1/dashboards/{id}/data"),
        ("get", "/api/v1/test-data"),
        ("delete", "/api/v1/test-data"),
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
