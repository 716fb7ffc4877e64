//! The Sekoia.io and Splunk HEC intake forms, with the key in each place they accept it.
use crate::TestXdr;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn raw(x: &TestXdr, path: &str, body: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    x.post(path, None, body.to_owned(), headers).await
}

#[tokio::test]
async fn sekoia_forms_store_their_events_and_answer_as_sekoia_does() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ignored:{key}")));
    let (status, r) = raw(&x, "/plain", "<13>Nov 28 09:00:00 host sshd: Failed password for bob", &[("x-sekoiaio-intake-key", &key)]).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["event_id"].is_string(), "{r}");
    let (status, r) = raw(&x, "/plain/batch", "line one\r\nline two\n\n{\"user\": \"eve\"}\n", &[("authorization", &basic)]).await;
    assert_eq!((status, r["event_ids"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{r}");
    let (status, r) =
        raw(&x, &format!("/jsons?intake_key={key}"), "[{\"user\": \"bob\"}, \"{\\\"user\\\": \\\"carol\\\"}\", \"plain text\"]", &[]).await;
    assert_eq!((status, r["event_ids"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{r}");
    let (status, r) = raw(&x, &format!("/jsons?intake_key={key}&path=$.records"), "{\"records\": [{\"id\": \"j-1\"}]}", &[]).await;
    assert_eq!((status, r["event_ids"].clone()), (StatusCode::OK, json!(["j-1"])), "{r}");
    let batch = json!({"intake_key": key, "jsons": ["{\"id\": \"b-1\", \"user\": \"bob\", \"src\": \"10.0.0.5\"}", "{\"user\": \"eve\"}"]});
    let (status, r) = raw(&x, "/batch", &batch.to_string(), &[]).await;
    assert_eq!((status, r["event_ids"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{r}");
    let (status, r) =
        raw(&x, "/", &json!({"intake_key": key, "json": "{\"id\": \"s-1\"}", "@timestamp": "2026-11-28T08:00:00Z"}).to_string(), &[]).await;
    assert_eq!((status, r["event_id"].as_str()), (StatusCode::OK, Some("s-1")), "{r}");
    let (status, r) =
        raw(&x, "/array", &json!([{"intake_key": key, "json": "{\"id\": \"a-1\"}"}, {"intake_key": key, "json": "x"}]).to_string(), &[])
            .await;
    assert_eq!((status, r["event_ids"][0].as_str()), (StatusCode::OK, Some("a-1")), "{r}");
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 13);
    let (_, e) = x.get("/api/v1/events/b-1", &key).await;
    assert_eq!((e["user"].as_str(), e["src"].as_str()), (Some("bob"), Some("10.0.0.5")));
    let (_, e) = x.get("/api/v1/events/s-1", &key).await;
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE id = 's-1' AND timestamp = 1795852800000000"), 1, "{e}");
    // Without a key, or with a wrong one, nothing is stored.
    assert_eq!(raw(&x, "/plain", "x", &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(raw(&x, "/batch", &json!({"intake_key": "vxk_wrong", "jsons": ["x"]}).to_string(), &[]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        raw(&x, "/array", &json!([{"intake_key": key, "json": "x"}, {"intake_key": "vxk_wrong", "json": "y"}]).to_string(), &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 13);
}

#[tokio::test]
async fn splunk_hec_events_and_raw_lines_are_stored() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let splunk = format!("Splunk {key}");
    let body = "{\"time\": 1795856400, \"source\": \"fw\", \"sourcetype\": \"vigie:event\", \"event\": {\"id\": \"h-1\", \"action\": \"block\"}}\n{\"event\": \"a line\", \"fields\": {\"dc\": \"par\"}}";
    let (status, r) = raw(&x, "/services/collector/event", body, &[("authorization", &splunk)]).await;
    assert_eq!((status, r.clone()), (StatusCode::OK, json!({"text": "Success", "code": 0})), "{r}");
    let (status, _) = raw(&x, "/services/collector", "{\"event\": {\"id\": \"h-2\"}}", &[("authorization", &splunk)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = raw(&x, "/services/collector/raw", "first\nsecond\n", &[("authorization", &splunk)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 5);
    let (_, e) = x.get("/api/v1/events/h-1", &key).await;
    assert_eq!((e["action"].as_str(), e["source"].as_str(), e["sourcetype"].as_str()), (Some("block"), Some("fw"), Some("vigie:event")));
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE id = 'h-1' AND timestamp = 1795856400000000"), 1);
    assert_eq!(raw(&x, "/services/collector/event", "{\"time\": 1}", &[("authorization", &splunk)]).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(raw(&x, "/services/collector/event", "{\"event\": 1}", &[]).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_array_over_two_keys_of_one_space_with_a_webhook_id_is_stored_whole_and_a_bad_item_stores_nothing() {
    let x = TestXdr::start().await;
    let (k1, _) = x.key("soc", &["events_write"], false).await;
    let (k2, _) = x.key("soc", &["events_write"], false).await;
    let body = json!([{"intake_key": k1, "json": "{\"id\": \"x-1\"}"}, {"intake_key": k2, "json": "{\"id\": \"x-2\"}"}, {"intake_key": k1, "json": "{\"id\": \"x-3\"}"}]);
    let (status, r) = raw(&x, "/array", &body.to_string(), &[("webhook-id", "arr-1")]).await;
    assert_eq!((status, r["event_ids"].clone()), (StatusCode::OK, json!(["x-1", "x-2", "x-3"])), "{r}");
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 3);
    let big = "x".repeat(260 * 1024);
    let bad = json!([{"intake_key": k1, "json": "{\"id\": \"y-1\"}"}, {"intake_key": k2, "json": big}]);
    assert_eq!(raw(&x, "/array", &bad.to_string(), &[]).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 3, "all or nothing");
    let many: Vec<Value> = (0..20).map(|i| json!({"intake_key": format!("vxk_fake{i}"), "json": "x"})).collect();
    assert_eq!(raw(&x, "/array", &Value::Array(many).to_string(), &[]).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn splunk_hec_errors_carry_splunk_codes() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write"], false).await;
    let (reader, _) = x.key("soc", &["events_read"], false).await;
    let (splunk, reader) = (format!("Splunk {key}"), format!("Splunk {reader}"));
    let wrong = "Splunk vxk_not_a_key".to_owned();
    for (path, body, auth, status, code) in [
        ("/services/collector/event", "{\"event\": 1}", None, StatusCode::UNAUTHORIZED, 2),
        ("/services/collector/event", "{\"event\": 1}", Some(&wrong), StatusCode::UNAUTHORIZED, 4),
        ("/services/collector/raw", "a line", Some(&reader), StatusCode::FORBIDDEN, 3),
        ("/services/collector/event", "", Some(&splunk), StatusCode::BAD_REQUEST, 5),
        ("/services/collector/event", "{\"time\": 1}", Some(&splunk), StatusCode::BAD_REQUEST, 12),
        ("/services/collector/event", "{\"event\": ", Some(&splunk), StatusCode::BAD_REQUEST, 6),
        ("/services/collector/raw", "\n\n", Some(&splunk), StatusCode::BAD_REQUEST, 5),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a.as_str())).into_iter().collect();
        let (got, r) = raw(&x, path, body, &headers).await;
        assert_eq!((got, r["code"].as_u64()), (status, Some(code)), "{path} {body:?}: {r}");
        assert!(r["text"].as_str().is_some_and(|t| !t.is_empty()), "{r}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM events"), 0);
}
