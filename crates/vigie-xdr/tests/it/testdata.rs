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
    assert_eq!(c["deferred"], 0, "no run in progress: nothing is deferred: {v}");
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

    // The facts of both events are built first: "the facts match the log" below then shows
    // that removing the test event took its facts (not that they were never built).
    crate::until("fact blocks covering both events of acme", || async {
        (x.count(&format!("SELECT COALESCE(SUM(events), 0) FROM fact_blocks WHERE space_no = {acme}")) == 2).then_some(())
    })
    .await;

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

const ALL_SCOPES: &[&str] = &[
    "events_write",
    "events_read",
    "alerts_read",
    "alerts_write",
    "cases_read",
    "cases_write",
    "rules_read",
    "rules_write",
    "playbooks_read",
    "playbooks_write",
    "admin",
];

/// A rule raising an alert per policy violation, folding those with the same `similarity`.
async fn violation_rule(x: &TestXdr, key: &str, similarity: Value) {
    let rule = json!({"name": "Violations", "severity": "high", "kind": "pipe", "enabled": true,
        "source": "event_type == \"interaction.policy_violated\"", "similarity": similarity});
    let (status, body) = x.call_json("POST", "/api/v1/rules", key, rule).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn on(mut event: Value, platform: &str) -> Value {
    event["data"]["interaction"]["platform_id"] = json!(platform);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_holding_a_real_persons_event_stays_and_loses_only_its_link_to_the_test_event() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", ALL_SCOPES, false).await;
    let acme: i64 = x.count("SELECT no FROM spaces WHERE name = 'acme'");
    let tester = vigie_core::testdata::new_test_person().to_string();
    // Folded by platform only: one alert per platform, whoever's events they are.
    violation_rule(&x, &key, json!(["platform_id"])).await;
    // On deepseek the real person comes first (the alert is dave's); on qwen the test person
    // does (the alert's user is the test person, yet it holds dave's event).
    for (n, (id, user, platform)) in
        [("r-1", "dave", "deepseek"), ("t-1", tester.as_str(), "deepseek"), ("t-2", tester.as_str(), "qwen"), ("r-2", "dave", "qwen")]
            .into_iter()
            .enumerate()
    {
        post(&x, &key, json!([on(violation(id, user), platform)])).await;
        crate::until("the event folded into its platform's alert", || async {
            (x.count(&format!("SELECT COUNT(*) FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id WHERE a.space_no = {acme}"))
                == n as i64 + 1)
                .then_some(())
        })
        .await;
    }
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM alerts WHERE space_no = {acme}")), 2);
    let qwen_user: String = {
        let (_, v) = x.get(&format!("/api/v1/alerts?user_id={tester}"), &key).await;
        v["items"][0]["user_id"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(qwen_user, tester, "the qwen alert is the test person's by its first event");

    let (status, found) = x.get("/api/v1/test-data", &key).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!((found["found"]["events"].clone(), found["found"]["alerts"].clone()), (json!(2), json!(0)), "{found}");
    let (status, removed) = delete(&x, "/api/v1/test-data", &key).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!((removed["removed"]["events"].clone(), removed["removed"]["alerts"].clone()), (json!(2), json!(0)), "{removed}");

    // Both alerts stay, each holding dave's event only.
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM alerts WHERE space_no = {acme}")), 2, "no alert holding dave's event went");
    assert_eq!(
        x.count(&format!("SELECT COUNT(*) FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id WHERE a.space_no = {acme}")),
        2,
        "only the links to the test events went"
    );
    assert_eq!(
        x.count(&format!(
            "SELECT COUNT(*) FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id WHERE a.space_no = {acme} AND ae.event_id LIKE 'r-%'"
        )),
        2,
        "dave's links are kept"
    );
    let (_, again) = delete(&x, "/api/v1/test-data", &key).await;
    assert_eq!(
        again["removed"],
        json!({"events": 0, "alerts": 0, "cases": 0, "people": 0, "playbook_runs": 0, "notifications": 0, "deferred": 0})
    );
}

/// An HTTP receiver that holds every request until released, and counts them.
struct Hold {
    port: u16,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    release: CancellationToken,
}

async fn hold() -> Hold {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (requests, release) = (std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)), CancellationToken::new());
    let (n, r) = (requests.clone(), release.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (n, r) = (n.clone(), r.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r.cancelled().await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").await;
            });
        }
    });
    Hold { port, requests, release }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_with_a_run_in_progress_are_deferred_and_a_queued_run_is_cancelled_before_it_starts() {
    let x = TestXdr::start_with(|o| o.allow_private_destinations = true).await;
    let (key, _) = x.key("acme", ALL_SCOPES, false).await;
    let acme: i64 = x.count("SELECT no FROM spaces WHERE name = 'acme'");
    let h = hold().await;
    violation_rule(&x, &key, json!(["user_id"])).await;
    let yaml = format!(
        "name: hold\ntrigger: {{type: alert_created}}\nsteps:\n  - {{id: call, type: http_request, method: POST, url: 'http://127.0.0.1:{}/hold'}}\n",
        h.port
    );
    let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml, "enabled": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Five test people, an alert and a run each: four runs hold the space's slots, the fifth waits.
    let slots = vigie_xdr::playbooks::runner::RUNS_PER_SPACE;
    let people: Vec<String> = (0..=slots).map(|_| vigie_core::testdata::new_test_person().to_string()).collect();
    let events: Vec<Value> = people.iter().enumerate().map(|(i, p)| violation(&format!("t-{i}"), p)).collect();
    post(&x, &key, Value::Array(events)).await;
    crate::until("four runs in progress and one queued", || async {
        let running = x.count(&format!("SELECT COUNT(*) FROM playbook_runs WHERE space_no = {acme} AND status = 'running'"));
        let queued = x.count(&format!("SELECT COUNT(*) FROM playbook_runs WHERE space_no = {acme} AND status = 'queued'"));
        (running == slots as i64 && queued == 1 && h.requests.load(std::sync::atomic::Ordering::SeqCst) == slots).then_some(())
    })
    .await;
    let queued_alert: String = {
        let db =
            rusqlite::Connection::open_with_flags(x.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("db");
        db.query_row("SELECT json_extract(trigger, '$.alert.id') FROM playbook_runs WHERE status = 'queued'", [], |r| r.get(0))
            .expect("queued")
    };

    let (_, found) = x.get("/api/v1/test-data", &key).await;
    assert_eq!(found["found"]["deferred"], json!(slots), "{found}");
    assert_eq!(found["found"]["alerts"], json!(1), "{found}");
    let (status, removed) = delete(&x, "/api/v1/test-data", &key).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let r = &removed["removed"];
    assert_eq!(
        [&r["events"], &r["alerts"], &r["playbook_runs"], &r["deferred"]],
        [&json!(slots + 1), &json!(1), &json!(1), &json!(slots)],
        "every event, the alert whose run was queued with that run, four alerts deferred: {removed}"
    );
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM alerts WHERE id = '{queued_alert}'")), 0);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM alerts WHERE space_no = {acme}")), slots as i64, "the alerts being worked on stay");

    // The runs finish; the cancelled one never started and nothing came back.
    h.release.cancel();
    crate::until("the runs in progress to finish", || async {
        (x.count(&format!("SELECT COUNT(*) FROM playbook_runs WHERE space_no = {acme} AND status IN ('queued', 'running')")) == 0)
            .then_some(())
    })
    .await;
    assert_eq!(h.requests.load(std::sync::atomic::Ordering::SeqCst), slots, "the queued run did not run");
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM playbook_runs WHERE json_extract(trigger, '$.alert.id') = '{queued_alert}'")), 0);
    let (_, removed) = delete(&x, "/api/v1/test-data", &key).await;
    let r = &removed["removed"];
    assert_eq!(
        [&r["events"], &r["alerts"], &r["playbook_runs"], &r["deferred"]],
        [&json!(0), &json!(slots), &json!(slots), &json!(0)],
        "{removed}"
    );
    for table in ["alerts", "playbook_runs", "cases", "events"] {
        assert_eq!(x.count(&format!("SELECT COUNT(*) FROM {table} WHERE space_no = {acme}")), 0, "{table}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM playbook_steps"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_bounds_the_events_read_to_those_received_at_or_after_it() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", ALL_SCOPES, false).await;
    let tester = vigie_core::testdata::new_test_person().to_string();
    post(&x, &key, json!([violation("old-1", &tester)])).await;
    let between = chrono::Utc::now();
    // The log's received_at has microseconds: the next event is received strictly later.
    crate::until("the clock to move past the first event", || async { (chrono::Utc::now() > between).then_some(()) }).await;
    post(&x, &key, json!([violation("new-1", &tester)])).await;
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B");
    let (status, found) = x.get(&format!("/api/v1/test-data?from={}", at(between)), &key).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["found"]["events"], 1, "{found}");
    let (_, all) = x.get("/api/v1/test-data", &key).await;
    assert_eq!(all["found"]["events"], 2, "{all}");
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let (_, none) = x.get(&format!("/api/v1/test-data?from={}", at(future)), &key).await;
    assert_eq!(none["found"]["events"], 0, "{none}");
    let (status, removed) = delete(&x, &format!("/api/v1/test-data?from={}", at(between)), &key).await;
    assert_eq!((status, removed["removed"]["events"].clone()), (StatusCode::OK, json!(1)), "{removed}");
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE id = 'old-1'"), 1, "before from: kept");
    assert_eq!(x.count("SELECT COUNT(*) FROM events WHERE id = 'new-1'"), 0);
    let (status, e) = x.get("/api/v1/test-data?from=yesterday", &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
}
