//! The outbox: an event row exists if and only if the interaction (or policy change) it
//! describes was committed.
use crate::{HASH, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn events_of(s: &TestServer, interaction_id: &str) -> Vec<Value> {
    let db = s.db();
    let mut stmt =
        db.prepare("SELECT payload FROM outbox WHERE json_extract(payload, '$.data.interaction.id') = ?1 ORDER BY seq").expect("prepare");
    let rows = stmt.query_map([interaction_id], |r| r.get::<_, String>(0)).expect("query");
    rows.map(|r| serde_json::from_str(&r.expect("row")).expect("json")).collect()
}

#[tokio::test]
async fn each_committed_interaction_has_exactly_the_events_it_implies() {
    let s = TestServer::start().await;
    s.policy("Block DeepSeek", 10, "block", json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}])).await;
    s.policy(
        "Log risky",
        20,
        "log",
        json!([{"field": "risk_score", "operator": "gte", "value": "0.7"}, {"field": "platform_id", "operator": "eq", "value": "claude"}]),
    )
    .await;
    let cases: &[(&str, f64, &[&str])] = &[
        ("chatgpt", 0.05, &["interaction.created"]),
        ("chatgpt", 0.69, &["interaction.created"]),
        ("claude", 0.75, &["interaction.created", "interaction.policy_violated", "interaction.high_risk"]),
        ("chatgpt", 0.95, &["interaction.created", "interaction.high_risk", "alert.severity_critical"]),
        ("deepseek", 0.2, &["interaction.created", "interaction.policy_violated", "alert.severity_low"]),
        ("deepseek", 0.5, &["interaction.created", "interaction.policy_violated", "alert.severity_medium"]),
        ("deepseek", 0.8, &["interaction.created", "interaction.policy_violated", "interaction.high_risk", "alert.severity_high"]),
    ];
    // A barely confident IBAN: the server's score of it (under 0.06) stays below every client
    // risk here, so the client's risk decides.
    for (platform, risk, expected) in cases {
        let (status, r) = s
            .interaction(&s.admin, json!({"platform_id": platform, "content_hash": HASH, "risk_score": risk, "classifications": [{"type": "IBAN", "value": "FR7630006000011234567890189", "score": 0.05}]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        let id = r["id"].as_str().expect("id");
        let events = events_of(&s, id);
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(&kinds, expected, "{platform} at {risk}");
        for e in &events {
            assert!(e["id"].as_str().is_some_and(|i| i.starts_with("evt_")), "{e}");
            assert_eq!(e["source"], "noxys");
            assert_eq!(e["tenant_id"], r["tenant_id"]);
            assert!(e["timestamp"].is_string());
            assert_eq!(e["data"]["interaction"]["classifications"][0]["value"], "****0189");
            assert_eq!(e["data"]["interaction"]["decision"], r["decision"]);
            assert_eq!(e["data"]["policy"]["name"].as_str(), r["decision"]["policy_name"].as_str());
            assert_eq!(e["data"]["alert"], r["alert"]);
        }
    }
}

#[tokio::test]
async fn a_failed_transaction_stores_neither_the_interaction_nor_any_of_its_events() {
    let s = TestServer::start().await;
    let (status, _) = s.interaction(&s.admin, json!({"platform_id": "chatgpt", "content_hash": HASH})).await;
    assert_eq!(status, StatusCode::CREATED);
    // Make the third event of a critical interaction fail, after the interaction row and two
    // events were written in the same transaction.
    let writer = rusqlite::Connection::open(s.dir.path().join("firewall.db")).expect("open");
    writer
        .execute_batch(
            "CREATE TRIGGER fail_alert BEFORE INSERT ON outbox WHEN NEW.event_type = 'alert.severity_critical'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .expect("trigger");
    let (status, e) = s.interaction(&s.admin, json!({"platform_id": "chatgpt", "content_hash": HASH, "risk_score": 0.97})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error")), "{e}");
    assert!(!e["error"].as_str().unwrap_or_default().contains("injected"), "internal detail leaked: {e}");
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 1);
    assert_eq!(s.count("SELECT count(*) FROM outbox"), 1);
    writer.execute_batch("DROP TRIGGER fail_alert").expect("drop");
    let (status, _) = s.interaction(&s.admin, json!({"platform_id": "chatgpt", "content_hash": HASH, "risk_score": 0.97})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 2);
    assert_eq!(s.count("SELECT count(*) FROM outbox"), 4);
}

#[tokio::test]
async fn concurrent_interactions_each_commit_with_their_events_in_commit_order() {
    let s = TestServer::start().await;
    let token = s.api_token("ingest").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (http, url, token) = (s.http.clone(), format!("{}/api/v1/interactions", s.base), token.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"platform_id": "claude", "content_hash": HASH, "risk_score": (i % 10) as f64 / 10.0});
            http.post(url).bearer_auth(token).json(&body).send().await.expect("send").status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), StatusCode::CREATED);
    }
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 64);
    let orphans = s.count(
        "SELECT count(*) FROM interactions i WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_type = 'interaction.created'
         AND json_extract(o.payload, '$.data.interaction.id') = i.id)",
    );
    assert_eq!(orphans, 0);
    let strays = s.count(
        "SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM interactions i WHERE i.id = json_extract(o.payload, '$.data.interaction.id'))",
    );
    assert_eq!(strays, 0);
    // The outbox sequence follows commit order, and so do interaction ids.
    let ordered = s.count(
        "SELECT count(*) FROM (SELECT json_extract(payload, '$.data.interaction.id') AS iid, lag(json_extract(payload, '$.data.interaction.id')) OVER (ORDER BY seq) AS prev
         FROM outbox WHERE event_type = 'interaction.created') WHERE prev IS NOT NULL AND prev > iid",
    );
    assert_eq!(ordered, 0);
}
