//! `GET` / `DELETE /api/v1/test-data`: a space holding a real person's and a test person's
//! violations (alerts raised by detection, cases and the manager's e-mail from the default
//! playbook, a case mixing both) — the counts, the removal of exactly the test data, the real
//! person's data untouched, a second removal finding nothing, another space's test data kept,
//! `admin` needed, and a user id outside the test range refused.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use vigie_xdr::mailsink::Mailbox;

const SCOPES: &[&str] = &["events_write", "events_read", "alerts_read", "alerts_write", "cases_read", "cases_write", "admin"];

/// A firewall's policy violation by `user`.
fn violation(id: &str, user: &str) -> Value {
    json!({
        "id": id, "type": "interaction.policy_violated", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
        "tenant_id": "t1",
        "data": {"interaction": {
            "id": format!("i-{id}"), "platform_id": "deepseek", "user_id": user, "user_email": "someone@corp.example",
            "risk_score": 0.82, "risk_level": "high", "classification_count": 1,
            "classifications": [{"type": "IBAN", "confidence": 0.97}],
            "direction": "outbound", "interaction_type": "prompt",
            "decision": {"action": "block", "policy_name": "Protect financial data", "risk_level": "high"}
        }}
    })
}

async fn post(x: &TestXdr, key: &str, events: Value) {
    let (status, body) = x.post("/api/v1/events", Some(key), events.to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn import(x: &TestXdr, key: &str, csv: String) {
    let (status, body) = x.post("/api/v1/people/import", Some(key), csv, &[("content-type", "text/csv")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn counts(v: &Value, key: &str) -> [i64; 6] {
    let c = &v[key];
    ["events", "alerts", "cases", "people", "playbook_runs", "notifications"].map(|k| c[k].as_i64().unwrap_or(-1))
}

async fn delete(x: &TestXdr, path: &str, key: &str) -> (StatusCode, Value) {
    let r = x.http.delete(format!("{}{path}", x.base)).bearer_auth(key).send().await.expect("delete");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_test_data_takes_exactly_the_test_peoples_events_alerts_cases_and_runs() {
    let x = TestXdr::start_with(|o| {
        o.default_rules_enabled = true;
        o.allow_private_destinations = true;
    })
    .await;
    let tester = vigie_core::testdata::new_test_person().to_string();
    let other_tester = vigie_core::testdata::new_test_person().to_string();
    let (key, _) = x.key("acme", SCOPES, false).await;
    let (other_key, _) = x.key("other", SCOPES, false).await;
    let acme: i64 = x.count("SELECT no FROM spaces WHERE name = 'acme'");
    let other: i64 = x.count("SELECT no FROM spaces WHERE name = 'other'");

    // The managers' e-mails and the invitations go to a real SMTP sink on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (mail, stop) = (Mailbox::default(), CancellationToken::new());
    tokio::spawn(vigie_xdr::mailsink::serve(listener, mail.clone(), stop.clone()));
    let channel = json!({"name": "mail", "kind": "email", "settings": {"host": "127.0.0.1", "port": port, "tls": "none",
        "from": "vigie@corp.example", "to": ["soc@corp.example"]}});
    let (status, body) = x.call_json("POST", "/api/v1/notifications/channels", &key, channel).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Both untrained for over a year: the default playbook opens a case and mails the manager.
    let old = (chrono::Utc::now() - chrono::Duration::days(500)).format("%Y-%m-%d");
    import(
        &x,
        &key,
        format!(
            "user_id,display_name,email,manager_email,department,training_date\n\
             dave,Dave Martin,dave@corp.example,erin@corp.example,Finance,{old}\n\
             {tester},Vigie Verify,verify@corp.example,erin@corp.example,Test,{old}\n"
        ),
    )
    .await;
    import(&x, &other_key, format!("user_id,display_name\n{other_tester},Vigie Verify\n")).await;
    post(&x, &key, json!([violation("real-1", "dave"), violation("test-1", &tester)])).await;
    post(&x, &other_key, json!([violation("other-test-1", &other_tester)])).await;
    // Per person: the manager's e-mail (it names the alert) and the review task's invitation
    // (it names none; the run's step records it).
    crate::until("both playbook runs of acme and the four e-mails", || async {
        let runs = x.count(&format!("SELECT COUNT(*) FROM playbook_runs WHERE space_no = {acme} AND status IN ('succeeded', 'failed')"));
        let sent = x.count(&format!("SELECT COUNT(*) FROM notifications WHERE space_no = {acme} AND status = 'succeeded'"));
        (runs == 2 && sent == 4).then_some(())
    })
    .await;
    crate::until("the other space's alert", || async {
        (x.count(&format!("SELECT COUNT(*) FROM alerts WHERE space_no = {other}")) == 1).then_some(())
    })
    .await;
    let (_, v) = x.get("/api/v1/alerts?user_id=dave", &key).await;
    let dave_alert = v["items"][0]["id"].as_str().expect("dave's alert").to_owned();
    let (_, v) = x.get(&format!("/api/v1/alerts?user_id={tester}"), &key).await;
    let test_alert = v["items"][0]["id"].as_str().expect("the test alert").to_owned();
    // A case an analyst made holding both alerts: it stays, without the test alert.
    let (status, mixed) = x.call_json("POST", "/api/v1/cases", &key, json!({"title": "Both of them"})).await;
    assert_eq!(status, StatusCode::CREATED, "{mixed}");
    let mixed = mixed["id"].as_str().expect("id").to_owned();
    let (status, v) =
        x.call_json("POST", &format!("/api/v1/cases/{mixed}/alerts"), &key, json!({"alerts": [dave_alert, test_alert]})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = x.get(&format!("/api/v1/cases?alert_id={test_alert}"), &key).await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "the playbook's case and the mixed one: {v}");
    let (_, v) = x.get(&format!("/api/v1/cases?alert_id={dave_alert}"), &key).await;
    let dave_cases: Vec<String> = v["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(dave_cases.len(), 2, "{v}");

    let real = |x: &TestXdr| {
        [
            x.count(&format!("SELECT COUNT(*) FROM events WHERE space_no = {acme} AND id = 'real-1'")),
            x.count(&format!("SELECT COUNT(*) FROM alerts WHERE space_no = {acme} AND user_id = 'dave'")),
            x.count(&format!("SELECT COUNT(*) FROM alert_events WHERE alert_id = '{dave_alert}'")),
            x.count(&format!("SELECT COUNT(*) FROM alert_history WHERE alert_id = '{dave_alert}'")),
            x.count(&format!("SELECT COUNT(*) FROM case_alerts WHERE alert_id = '{dave_alert}'")),
            x.count(&format!("SELECT COUNT(*) FROM people WHERE space_no = {acme} AND user_id = 'dave'")),
            x.count(&format!("SELECT COUNT(*) FROM notifications WHERE alert_id = '{dave_alert}'")),
            x.count(&format!("SELECT COUNT(*) FROM playbook_runs WHERE json_extract(trigger, '$.alert.id') = '{dave_alert}'")),
            x.count(&format!("SELECT COUNT(*) FROM case_tasks WHERE case_id IN ('{}', '{}')", dave_cases[0], dave_cases[1])),
        ]
    };
    let real_before = real(&x);
    assert!(real_before.iter().all(|n| *n >= 1), "{real_before:?}");

    // What would go.
    let (status, found) = x.get("/api/v1/test-data", &key).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(counts(&found, "found"), [1, 1, 1, 1, 1, 2], "{found}");
    let (_, one) = x.get(&format!("/api/v1/test-data?user_id={}", tester.to_uppercase()), &key).await;
    assert_eq!(counts(&one, "found"), [1, 1, 1, 1, 1, 2], "{one}");
    let (_, none) = x.get(&format!("/api/v1/test-data?user_id={other_tester}"), &key).await;
    assert_eq!(counts(&none, "found"), [0; 6], "another space's test person is not here: {none}");

    // Refused: a user id outside the range (422 naming it), a key without admin (403).
    for bad in ["dave", "00000000-7e57-4da7-a001-000000000000", ""] {
        let (status, e) = x.get(&format!("/api/v1/test-data?user_id={bad}"), &key).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {e}");
        assert_eq!(e["fields"][0]["field"], "user_id", "{e}");
        assert_eq!(delete(&x, &format!("/api/v1/test-data?user_id={bad}"), &key).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (reader, _) = x.key("acme", &["events_read", "alerts_read", "cases_read", "cases_write", "alerts_write"], false).await;
    assert_eq!(x.get("/api/v1/test-data", &reader).await.0, StatusCode::FORBIDDEN);
    assert_eq!(delete(&x, "/api/v1/test-data", &reader).await.0, StatusCode::FORBIDDEN);
    assert_eq!(counts(&x.get("/api/v1/test-data", &key).await.1, "found"), [1, 1, 1, 1, 1, 2], "nothing went");

    // Removed: exactly that.
    let (status, removed) = delete(&x, "/api/v1/test-data", &key).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(counts(&removed, "removed"), [1, 1, 1, 1, 1, 2], "{removed}");
    let left = [
        format!("SELECT COUNT(*) FROM events WHERE space_no = {acme} AND id = 'test-1'"),
        format!("SELECT COUNT(*) FROM alerts WHERE id = '{test_alert}'"),
        format!("SELECT COUNT(*) FROM alert_events WHERE alert_id = '{test_alert}'"),
        format!("SELECT COUNT(*) FROM alert_history WHERE alert_id = '{test_alert}'"),
        format!("SELECT COUNT(*) FROM case_alerts WHERE alert_id = '{test_alert}'"),
        format!("SELECT COUNT(*) FROM response_events WHERE subject = '{test_alert}'"),
        format!("SELECT COUNT(*) FROM notifications WHERE alert_id = '{test_alert}'"),
        format!("SELECT COUNT(*) FROM playbook_runs WHERE json_extract(trigger, '$.alert.id') = '{test_alert}'"),
        "SELECT COUNT(*) FROM playbook_steps WHERE run_id NOT IN (SELECT id FROM playbook_runs)".to_owned(),
        "SELECT COUNT(*) FROM notification_attempts WHERE notification_id NOT IN (SELECT id FROM notifications)".to_owned(),
        "SELECT COUNT(*) FROM case_tasks WHERE case_id NOT IN (SELECT id FROM cases)".to_owned(),
        "SELECT COUNT(*) FROM case_timeline WHERE case_id NOT IN (SELECT id FROM cases)".to_owned(),
        "SELECT COUNT(*) FROM case_events WHERE case_id NOT IN (SELECT id FROM cases)".to_owned(),
        format!("SELECT COUNT(*) FROM people WHERE space_no = {acme} AND user_id = '{tester}'"),
    ];
    for sql in &left {
        assert_eq!(x.count(sql), 0, "{sql}");
    }
    assert_eq!(real(&x), real_before, "the real person's data is untouched");
    let (status, kept) = x.get(&format!("/api/v1/cases/{mixed}"), &key).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let kept_alerts: Vec<&str> = kept["alerts"].as_array().expect("alerts").iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(kept_alerts, [dave_alert.as_str()], "{kept}");
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM cases WHERE space_no = {acme}")), 2, "dave's case and the mixed one");

    // The facts of the removed event went with it: the facts count what the log holds.
    crate::until("the facts to match the log", || async {
        let facts = x.count(&format!("SELECT COALESCE(SUM(events), 0) FROM fact_blocks WHERE space_no = {acme}"));
        let log = x.count(&format!("SELECT COUNT(*) FROM events WHERE space_no = {acme}"));
        (facts == log).then_some(())
    })
    .await;

    // Again: nothing left to remove; the other space still has its own.
    let (status, again) = delete(&x, "/api/v1/test-data", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts(&again, "removed"), [0; 6], "{again}");
    let (_, theirs) = x.get("/api/v1/test-data", &other_key).await;
    let theirs = counts(&theirs, "found");
    assert_eq!([theirs[0], theirs[1], theirs[3]], [1, 1, 1], "events, alerts, people: {theirs:?}");
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM events WHERE space_no = {other}")), 1);
    stop.cancel();
}
