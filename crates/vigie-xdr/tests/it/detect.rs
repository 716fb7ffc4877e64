//! Issue 7: detection end to end — events posted to the intake, the detection consumer, alerts
//! read through the API. The default rules behave exactly as the brief writes them; repeats
//! fold into an open alert; a failed commit loses and repeats nothing; backtests answer what
//! the consumer would have raised; the consumer's view of an event equals the shown event.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A server with the default rules enabled, and a key that can post events and read alerts
/// and rules.
async fn xdr() -> (TestXdr, String) {
    let x = TestXdr::start_with(|o| o.default_rules_enabled = true).await;
    let (key, _) = x.key("soc", &["events_write", "events_read", "alerts_read", "alerts_write", "rules_read", "rules_write"], false).await;
    (x, key)
}

/// Waits until detection has read every event stored so far.
async fn caught_up(x: &TestXdr) {
    let last = x.count("SELECT COALESCE(MAX(seq), 0) FROM events");
    let mut rx = x.state.detected.subscribe();
    tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| *s >= last)).await.expect("detection caught up in time").expect("watch");
}

fn minutes_ago(m: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(m)).to_rfc3339()
}

/// A firewall event as the firewall's webhook sends it.
fn firewall(id: &str, kind: &str, at: &str, user: &str, platform: &str, risk: f64, types: &[&str]) -> Value {
    let classifications: Vec<Value> = types.iter().map(|t| json!({"type": t, "confidence": 0.99})).collect();
    json!({
        "id": id, "type": kind, "timestamp": at, "source": "noxys", "tenant_id": "t1",
        "data": {"interaction": {
            "id": format!("i-{id}"), "platform_id": platform, "user_id": user, "user_email": format!("{user}@corp.example"),
            "risk_score": risk, "risk_level": if risk > 0.9 { "critical" } else { "high" },
            "classification_count": types.len(), "classifications": classifications,
            "direction": "outbound", "interaction_type": "prompt",
            "decision": {"action": "block", "policy_name": "Protect financial data", "risk_level": "high"}
        }}
    })
}

async fn post(x: &TestXdr, key: &str, events: Vec<Value>) {
    let (status, body) = x.post("/api/v1/events", Some(key), Value::Array(events).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn rule_id(x: &TestXdr, builtin: &str) -> String {
    let db = rusqlite::Connection::open_with_flags(x.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("db");
    db.query_row("SELECT id FROM rules WHERE builtin = ?1", [builtin], |r| r.get(0)).expect("the default rule is installed")
}

async fn alerts_of(x: &TestXdr, key: &str, rule: &str) -> Vec<Value> {
    let (status, page) = x.get(&format!("/api/v1/alerts?rule_id={rule}&limit=100"), key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_high_risk_events_from_one_person_within_an_hour_raise_one_alert_five_or_six_over_two_hours_none() {
    let (x, key) = xdr().await;
    let mut events = Vec::new();
    // alice: six within 50 minutes; bob: five; carol: six over 100 minutes.
    for k in 0..6 {
        events.push(firewall(
            &format!("alice-{k}"),
            "interaction.high_risk",
            &minutes_ago(100 - k * 10),
            "alice",
            "chatgpt",
            0.85,
            &["EMAIL_ADDRESS"],
        ));
        events.push(firewall(
            &format!("carol-{k}"),
            "interaction.high_risk",
            &minutes_ago(110 - k * 20),
            "carol",
            "claude",
            0.85,
            &["EMAIL_ADDRESS"],
        ));
        if k < 5 {
            events.push(firewall(
                &format!("bob-{k}"),
                "interaction.high_risk",
                &minutes_ago(100 - k * 10),
                "bob",
                "gemini",
                0.85,
                &["EMAIL_ADDRESS"],
            ));
        }
    }
    // Two posts, so the window may also span transactions; filler makes a batch long enough to
    // be evaluated on two threads.
    let later = events.split_off(9);
    let mut first: Vec<Value> = (0..600).map(|i| json!({"id": format!("fill-{i}"), "type": "proxy.log", "n": i})).collect();
    first.extend(events);
    post(&x, &key, first).await;
    post(&x, &key, later).await;
    caught_up(&x).await;
    let rule = rule_id(&x, "default-2");
    let alerts = alerts_of(&x, &key, &rule).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!((a["user_id"].as_str(), a["severity"].as_str(), a["status"].as_str()), (Some("alice"), Some("medium"), Some("pending")));
    // A window per person names the person, not the platform of its last event.
    assert_eq!((a["title"].as_str(), a["platform_id"].as_str()), (Some("Repeated high-risk interactions — alice"), None));
    let (_, full) = x.get(&format!("/api/v1/alerts/{}", a["id"].as_str().expect("id")), &key).await;
    let mut ids: Vec<&str> = full["event_ids"].as_array().expect("event ids").iter().filter_map(Value::as_str).collect();
    ids.sort();
    assert_eq!(ids, ["alice-0", "alice-1", "alice-2", "alice-3", "alice-4", "alice-5"]);
    // Rule statistics follow.
    let (_, r) = x.get(&format!("/api/v1/rules/{rule}"), &key).await;
    assert_eq!((r["stats"]["matches"].as_u64(), r["stats"]["alerts"].as_u64()), (Some(1), Some(1)), "{r}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_violations_with_classifications_alert_on_unvetted_platforms_and_financial_data_above_0_9_is_critical() {
    let (x, key) = xdr().await;
    post(
        &x,
        &key,
        vec![
            firewall("pv-deepseek", "interaction.policy_violated", &minutes_ago(5), "dan", "deepseek", 0.7, &["EMAIL_ADDRESS"]),
            firewall("pv-chatgpt", "interaction.policy_violated", &minutes_ago(5), "dan", "chatgpt", 0.7, &["EMAIL_ADDRESS"]),
            firewall("pv-empty", "interaction.policy_violated", &minutes_ago(5), "erin", "mistral", 0.7, &[]),
            firewall("hr-095", "interaction.high_risk", &minutes_ago(4), "fay", "claude", 0.95, &["CREDIT_CARD"]),
            firewall("hr-090", "interaction.high_risk", &minutes_ago(4), "gus", "claude", 0.9, &["CREDIT_CARD"]),
            firewall("hr-iban", "interaction.high_risk", &minutes_ago(4), "hal", "claude", 0.97, &["EMAIL_ADDRESS", "IBAN"]),
            json!({"id": "crit", "type": "alert.severity_critical", "timestamp": minutes_ago(3), "source": "noxys",
                   "data": {"interaction": {"id": "i-crit", "user_id": "ivy", "platform_id": "deepseek", "risk_score": 0.99}, "alert": {"severity": "critical"}}}),
            json!({"id": "high", "type": "alert.severity_high", "timestamp": minutes_ago(3), "source": "noxys",
                   "data": {"interaction": {"id": "i-high", "user_id": "jon", "platform_id": "deepseek"}, "alert": {"severity": "high"}}}),
        ],
    )
    .await;
    caught_up(&x).await;
    let one = alerts_of(&x, &key, &rule_id(&x, "default-1")).await;
    assert_eq!(one.len(), 1, "{one:#?}");
    assert_eq!((one[0]["platform_id"].as_str(), one[0]["severity"].as_str()), (Some("deepseek"), Some("high")));
    let three = alerts_of(&x, &key, &rule_id(&x, "default-3")).await;
    let mut users: Vec<&str> = three.iter().filter_map(|a| a["user_id"].as_str()).collect();
    users.sort();
    assert_eq!(users, ["fay", "hal"], "0.95 with a card and 0.97 with an IBAN alert; exactly 0.9 does not");
    assert!(three.iter().all(|a| a["severity"] == "critical"));
    let four = alerts_of(&x, &key, &rule_id(&x, "default-4")).await;
    assert_eq!(four.len(), 1);
    assert_eq!((four[0]["user_id"].as_str(), four[0]["severity"].as_str()), (Some("ivy"), Some("critical")));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_folds_into_the_open_alert_and_after_closing_it_raises_a_new_one() {
    let (x, key) = xdr().await;
    let rule = rule_id(&x, "default-1");
    // Two in one post (one detection batch: applied together), one more after.
    let kim = |id: &str, m: i64| firewall(id, "interaction.policy_violated", &minutes_ago(m), "kim", "deepseek", 0.7, &["IBAN"]);
    post(&x, &key, vec![kim("a1", 10), kim("a1b", 9)]).await;
    caught_up(&x).await;
    post(&x, &key, vec![kim("a2", 8)]).await;
    caught_up(&x).await;
    let alerts = alerts_of(&x, &key, &rule).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["occurrences"].as_u64(), Some(3));
    let (_, full) = x.get(&format!("/api/v1/alerts/{}", alerts[0]["id"].as_str().expect("id")), &key).await;
    assert_eq!(full["event_ids"], json!(["a1", "a1b", "a2"]));
    let (_, r) = x.get(&format!("/api/v1/rules/{rule}"), &key).await;
    let stats = &r["stats"];
    assert_eq!((stats["matches"].as_u64(), stats["alerts"].as_u64(), stats["occurrences"].as_u64()), (Some(3), Some(1), Some(2)), "{r}");
    let id = alerts[0]["id"].as_str().expect("id").to_owned();
    for status in ["acknowledged", "ongoing", "closed"] {
        let (s, b) = x.call_json("PATCH", &format!("/api/v1/alerts/{id}/workflow"), &key, json!({"status": status})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    post(&x, &key, vec![firewall("a3", "interaction.policy_violated", &minutes_ago(7), "kim", "deepseek", 0.7, &["IBAN"])]).await;
    caught_up(&x).await;
    let alerts = alerts_of(&x, &key, &rule).await;
    assert_eq!(alerts.len(), 2, "a closed alert absorbs nothing");
    x.stop().await;
}

/// An XDR state without a server (no background consumer: the test drives `detect_once`), its
/// default rules enabled, and the number of its space "soc".
async fn by_hand() -> (tempfile::TempDir, vigie_xdr::XdrState, i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = vigie_xdr::XdrOptions {
        data_dir: dir.path().to_path_buf(),
        store: vigie_core::db::StoreOptions::default(),
        secret_key: None,
        key_rate: Default::default(),
        retention_every: Duration::from_secs(3600),
        search: Default::default(),
        build_facts: false,
        default_rules_enabled: true,
        allow_private_destinations: false,
        notify: Default::default(),
    };
    let st = vigie_xdr::open(opts, std::sync::Arc::new(vigie_core::SystemClock)).expect("open");
    let id = st.keys.ensure_space("soc").await.expect("space").id.to_string();
    let space_no: i64 = st
        .store
        .read(move |c| c.query_row("SELECT no FROM spaces WHERE id = ?1", [id], |r| r.get(0)).map_err(vigie_core::StoreError::from))
        .await
        .expect("no");
    (dir, st, space_no)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_fails_is_evaluated_again_from_the_stored_state_without_double_counting() {
    // The consumer driven by hand (no server), so the failing round is this test's.
    let (_dir, st, space_no) = by_hand().await;
    let insert = |ks: std::ops::Range<i64>| {
        let events: Vec<vigie_xdr::intake::Prepared> = ks
            .map(|k| {
                let e = firewall(
                    &format!("lee-{k}"),
                    "interaction.high_risk",
                    &minutes_ago(50 - k),
                    "lee",
                    "chatgpt",
                    0.85,
                    &["EMAIL_ADDRESS"],
                );
                vigie_xdr::intake::Prepared {
                    id: format!("lee-{k}"),
                    timestamp: vigie_core::clock::to_micros(chrono::Utc::now()) - (50 - k) * 60_000_000,
                    event_type: Some("interaction.high_risk".into()),
                    source: "noxys".into(),
                    body: e.to_string(),
                }
            })
            .collect();
        let store = st.store.clone();
        async move { store.write(move |c| vigie_xdr::intake::insert_events(c, space_no, 0, &events)).await.expect("insert") }
    };
    let alerts = || {
        let store = st.store.clone();
        async move {
            store
                .read(|c| c.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get::<_, i64>(0)).map_err(vigie_core::StoreError::from))
                .await
                .expect("count")
        }
    };
    let mut d = vigie_xdr::detect::Detector::default();
    insert(0..3).await;
    assert_eq!(vigie_xdr::detect::detect_once(&st, &mut d).await.expect("round").events, 3);
    st.store
        .write(|c| {
            c.execute_batch(
                "CREATE TABLE fail_once (n INTEGER); INSERT INTO fail_once VALUES (1);
                 CREATE TRIGGER detection_fails BEFORE UPDATE ON consumer_checkpoints
                 WHEN NEW.name = 'detection' AND (SELECT n FROM fail_once) = 1
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            )
            .map_err(vigie_core::StoreError::from)
        })
        .await
        .expect("trigger");
    insert(3..6).await;
    // The round completes the window in memory, then its commit fails: nothing is stored.
    assert!(vigie_xdr::detect::detect_once(&st, &mut d).await.is_err());
    assert_eq!(alerts().await, 0, "nothing of the failed round is stored");
    st.store.write(|c| c.execute_batch("UPDATE fail_once SET n = 0").map_err(vigie_core::StoreError::from)).await.expect("heal");
    // Again, from the stored state: the three saved and the three new, once each.
    assert_eq!(vigie_xdr::detect::detect_once(&st, &mut d).await.expect("round").events, 3);
    assert_eq!(vigie_xdr::detect::detect_once(&st, &mut d).await.expect("round").events, 0);
    assert_eq!(alerts().await, 1);
    let events: i64 = st
        .store
        .read(|c| c.query_row("SELECT COUNT(*) FROM alert_events", [], |r| r.get(0)).map_err(vigie_core::StoreError::from))
        .await
        .expect("count");
    assert_eq!(events, 6, "each event counted once");
    st.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_answers_what_the_consumer_raised_and_counts_per_day() {
    let (x, key) = xdr().await;
    let mut events = Vec::new();
    for k in 0..6 {
        events.push(firewall(
            &format!("mo-{k}"),
            "interaction.high_risk",
            &minutes_ago(300 - k * 5),
            "mo",
            "chatgpt",
            0.85,
            &["EMAIL_ADDRESS"],
        ));
    }
    events.push(firewall("pv", "interaction.policy_violated", &minutes_ago(200), "ned", "deepseek", 0.7, &["IBAN"]));
    post(&x, &key, events).await;
    caught_up(&x).await;
    let rule = rule_id(&x, "default-2");
    let (s, bt) = x.call_json("POST", &format!("/api/v1/rules/{rule}/backtest"), &key, json!({"from": minutes_ago(24 * 60)})).await;
    assert_eq!(s, StatusCode::OK, "{bt}");
    assert_eq!((bt["events"].as_u64(), bt["matches"].as_u64(), bt["alerts"].as_u64()), (Some(7), Some(1), Some(1)), "{bt}");
    assert_eq!(bt["would_alert"][0]["user_id"], "mo");
    assert_eq!(bt["would_alert"][0]["event_ids"].as_array().map(Vec::len), Some(6));
    assert_eq!(bt["per_day"].as_array().map(|d| d.iter().map(|d| d["matches"].as_u64().unwrap_or(0)).sum::<u64>()), Some(1));
    assert_eq!(bt["partial"], false);
    // An unsaved rule, and one that does not compile.
    let (s, bt) = x
        .call_json(
            "POST",
            "/api/v1/rules/backtest",
            &key,
            json!({"kind": "pipe", "source": "platform_id == \"deepseek\"", "from": minutes_ago(24 * 60)}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{bt}");
    assert_eq!((bt["matches"].as_u64(), bt["would_alert"][0]["user_id"].as_str()), (Some(1), Some("ned")));
    let (s, bad) = x.call_json("POST", "/api/v1/rules/backtest", &key, json!({"kind": "pipe", "source": "platform_id == "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.to_string().contains("1:16"), "{bad}");
    // It shows events: it needs events_read too.
    let (rules_only, _) = x.key("soc", &["rules_read"], false).await;
    let (s, _) = x.call_json("POST", &format!("/api/v1/rules/{rule}/backtest"), &rules_only, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Another space's key does not see the rule, nor the events.
    let (other, _) = x.key("other", &["rules_read", "events_read"], false).await;
    let (s, _) = x.call_json("POST", &format!("/api/v1/rules/{rule}/backtest"), &other, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, bt) = x.call_json("POST", "/api/v1/rules/backtest", &other, json!({"kind": "pipe", "source": "source == \"noxys\""})).await;
    assert_eq!((s, bt["events"].as_u64(), bt["matches"].as_u64()), (StatusCode::OK, Some(0), Some(0)), "{bt}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumers_view_of_an_event_is_the_shown_event_field_by_field() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let events = vec![
        firewall("v1", "interaction.policy_violated", &minutes_ago(1), "ann", "deepseek", 0.93, &["CREDIT_CARD", "IBAN", "CREDIT_CARD"]),
        json!({"id": "v2", "type": "login", "timestamp": minutes_ago(1), "user": {"name": "bo", "roles": ["a", "b"], "empty": {}},
               "a.b": {"c": 1}, "n": null, "deep": {"x": {"y": {"z": true}}}, "source": "okta"}),
        json!({"id": "v3", "type": "policy.updated", "data": {"policy": {"name": "P", "action": "block"}}, "platform_id": {"n": 1}}),
        json!({"message": "plain", "event_type": 5, "@timestamp": minutes_ago(2)}),
    ];
    post(&x, &key, events).await;
    let rows = x.state.store.read(|c| vigie_xdr::detect::read_batch(c, 0, 100)).await.expect("read");
    assert_eq!(rows.len(), 4);
    for (_, _, view) in &rows {
        let Value::Object(shown) =
            vigie_xdr::log::shown(view.stored(), &x.state.keys.ensure_space("soc").await.expect("space").id.to_string())
        else {
            panic!("an event shows as an object")
        };
        use vigie_query::matcher::Lookup;
        for (k, v) in &shown {
            assert_eq!(view.lookup(k), Some(v), "{k} of {}", view.stored().body);
        }
        for absent in ["nope", "data.nope", "user", "data", "deep.x", "user.roles.0"] {
            if !shown.contains_key(absent) {
                assert_eq!(view.lookup(absent), None, "{absent} of {}", view.stored().body);
            }
        }
    }
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_whose_clock_runs_ahead_does_not_expire_another_spaces_windows() {
    let (x, key) = xdr().await;
    let (evil, _) = x.key("evil", &["events_write"], false).await;
    let rule = rule_id(&x, "default-2");
    let hr =
        |k: i64| firewall(&format!("pat-{k}"), "interaction.high_risk", &minutes_ago(30 - k), "pat", "chatgpt", 0.85, &["EMAIL_ADDRESS"]);
    post(&x, &key, (0..3).map(hr).collect()).await;
    caught_up(&x).await;
    // A day ahead (intake indexes it at most a day ahead; detection counts it at its arrival).
    let ahead = (chrono::Utc::now() + chrono::Duration::hours(23)).to_rfc3339();
    post(&x, &evil, vec![json!({"id": "ahead", "type": "clock.skew", "timestamp": ahead})]).await;
    post(&x, &key, vec![json!({"id": "ahead-too", "type": "clock.skew", "timestamp": ahead})]).await;
    caught_up(&x).await;
    post(&x, &key, (3..6).map(hr).collect()).await;
    caught_up(&x).await;
    assert_eq!(alerts_of(&x, &key, &rule).await.len(), 1, "the three before the skewed events still count");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_whose_rules_changed_before_its_commit_is_evaluated_again_with_the_new_rules() {
    let (_dir, st, space_no) = by_hand().await;
    let event = firewall("crit", "alert.severity_critical", &minutes_ago(1), "ivy", "deepseek", 0.99, &[]);
    let prepared = vec![vigie_xdr::intake::Prepared {
        id: "crit".into(),
        timestamp: vigie_core::clock::to_micros(chrono::Utc::now()),
        event_type: Some("alert.severity_critical".into()),
        source: "noxys".into(),
        body: event.to_string(),
    }];
    let mut d = vigie_xdr::detect::Detector::default();
    // The consumer loads the rules; then rule 4 is disabled before the round commits (no signal
    // reaches this hand-driven consumer, as if the change landed mid-round).
    assert_eq!(vigie_xdr::detect::detect_once(&st, &mut d).await.expect("an empty round loads the rules").events, 0);
    st.store.write(move |c| vigie_xdr::intake::insert_events(c, space_no, 0, &prepared)).await.expect("insert");
    st.store
        .write(|c| {
            c.execute_batch("UPDATE rules SET enabled = 0, version = version + 1 WHERE builtin = 'default-4'")
                .map_err(vigie_core::StoreError::from)
        })
        .await
        .expect("disable");
    let err = vigie_xdr::detect::detect_once(&st, &mut d).await.expect_err("the rules changed");
    assert!(err.to_string().contains("rules changed"), "{err}");
    assert_eq!(vigie_xdr::detect::detect_once(&st, &mut d).await.expect("again").events, 1);
    let alerts: i64 = st
        .store
        .read(|c| c.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0)).map_err(vigie_core::StoreError::from))
        .await
        .expect("count");
    assert_eq!(alerts, 0, "the disabled rule raised nothing");
    st.store.close().await;
}
