//! Alerts over real HTTP: alerts raised through `alerts::apply` (as the detection consumer
//! does), then listed with each filter and a cursor, read by id and short id, moved through the
//! workflow, commented and assigned; refused without the scopes, and invisible from another
//! space.
use crate::TestXdr;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie_core::StoreError;
use vigie_xdr::alerts::{Match, Outcome};

const ACKNOWLEDGE: &str = "937bdabf-6a08-434b-b6d3-d7447e4e452a";
const VALIDATE: &str = "c39a0a95-aa2c-4d0d-8d2e-d3decf426eea";
const REJECT: &str = "ade85d7b-7507-4026-bfc6-cc006d10ddac";
const CLOSE: &str = "1390be4e-ced8-4dd6-9bed-573471b235ab";
/// Sekoia's UUID of the Rejected *status*, which its own client sends as an `action_uuid`.
const REJECTED_STATUS: &str = "4f68da89-38e0-4703-a6ab-652f02bdf24e";
const MINUTE: i64 = 60_000_000;

fn us(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).expect("time").timestamp_micros()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

/// The space's number (the log's and the alerts' tenant column), creating the space.
async fn space_no(x: &TestXdr, name: &str) -> i64 {
    x.state.keys.ensure_space(name).await.expect("space");
    x.count(&format!("SELECT no FROM spaces WHERE name = '{name}'"))
}

/// A rule row, as the rules API would have stored it.
async fn rule(x: &TestXdr, space_no: i64, id: &str, name: &str) {
    let (id, name) = (id.to_owned(), name.to_owned());
    x.state
        .store
        .write(move |c| {
            c.execute(
                "INSERT INTO rules (id, space_no, name, severity, kind, source, enabled, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 70, 'pipe', 'risk_score > 0.9', 1, 0, 0)",
                rusqlite::params![id, space_no, name],
            )
            .map_err(StoreError::from)
        })
        .await
        .expect("rule");
}

fn hit(space_no: i64, rule_id: &str, key: &str, severity: u8, at: i64) -> Match {
    Match {
        space_no,
        rule_id: rule_id.into(),
        rule_name: format!("Rule {rule_id}"),
        severity,
        similarity_key: key.into(),
        title: format!("{rule_id} matched {key}"),
        user_id: None,
        platform_id: None,
        first_seen: at - 1_000_000,
        last_seen: at,
        events: Vec::new(),
        details: json!({"key": key}),
        count: 1,
    }
}

/// Records a match as the detection consumer does: in a write transaction.
async fn apply(x: &TestXdr, m: Match, now: i64) -> Outcome {
    let ids = x.state.ids.clone();
    x.state.store.write(move |c| vigie_xdr::alerts::apply(c, &ids, &m, now)).await.expect("apply")
}

/// A new alert's (id, short id).
async fn raise(x: &TestXdr, m: Match, now: i64) -> (String, String) {
    match apply(x, m, now).await {
        Outcome::Raised { alert_id, short_id } => (alert_id, short_id),
        other => panic!("expected a new alert, got {other:?}"),
    }
}

/// The id of a key, for the `key:<id>` the history names.
async fn key_id(x: &TestXdr, key: &str) -> String {
    let prefix = key[..10].to_owned();
    x.state
        .store
        .read(move |c| {
            c.query_row("SELECT id FROM api_keys WHERE prefix = ?1", [prefix], |r| r.get::<_, String>(0)).map_err(StoreError::from)
        })
        .await
        .expect("key id")
}

/// A server, a space `soc` with rules r1 and r2, and a key with both alert scopes.
async fn soc() -> (TestXdr, i64, String) {
    let x = TestXdr::start().await;
    let no = space_no(&x, "soc").await;
    rule(&x, no, "r1", "Rule r1").await;
    rule(&x, no, "r2", "Rule r2").await;
    let (key, _) = x.key("soc", &["alerts_read", "alerts_write"], false).await;
    (x, no, key)
}

async fn workflow(x: &TestXdr, key: &str, alert: &str, body: Value) -> (StatusCode, Value) {
    x.call_json("PATCH", &format!("/api/v1/alerts/{alert}/workflow"), key, body).await
}

/// The similarity keys of a page's alerts, in order, and its cursor.
async fn page(x: &TestXdr, key: &str, query: &str) -> (Vec<String>, Option<String>) {
    let (status, v) = x.get(&format!("/api/v1/alerts?{query}"), key).await;
    assert_eq!(status, StatusCode::OK, "{query}: {v}");
    let keys = v["items"].as_array().expect("items").iter().map(|a| a["similarity_key"].as_str().expect("key").to_owned()).collect();
    (keys, v["next_cursor"].as_str().map(str::to_owned))
}

/// Every alert a listing returns, following the cursor.
async fn all(x: &TestXdr, key: &str, query: &str) -> (Vec<String>, usize) {
    let (mut out, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={}", c.replace(':', "%3A")),
            None => query.to_owned(),
        };
        let (keys, next) = page(x, key, &q).await;
        out.extend(keys);
        pages += 1;
        match next {
            Some(c) => cursor = Some(c),
            None => return (out, pages),
        }
        assert!(pages < 20, "the cursor does not advance");
    }
}

/// An entry of an alert's history: kind, by, from, to, comment.
#[derive(Debug, PartialEq)]
struct Entry(String, Option<String>, Option<String>, Option<String>, Option<String>);

impl Entry {
    fn new(kind: &str, by: &str, from: Option<&str>, to: Option<&str>, comment: Option<&str>) -> Entry {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Entry(kind.to_owned(), Some(by.to_owned()), own(from), own(to), own(comment))
    }
}

/// The history of an alert as `GET /api/v1/alerts/{id}` shows it.
fn history_of(a: &Value) -> Vec<Entry> {
    let entries = a["history"].as_array().expect("history");
    entries
        .iter()
        .map(|h| {
            let s = |f: &str| h[f].as_str().map(str::to_owned);
            Entry(s("kind").expect("kind"), s("by"), s("from"), s("to"), s("comment"))
        })
        .collect()
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn alerts_are_listed_newest_first_with_each_filter_and_a_cursor() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let specs = [
        ("r1", "k0", "alice", Some("chatgpt"), 30),
        ("r1", "k1", "bob", Some("deepseek"), 50),
        ("r2", "k2", "alice", Some("deepseek"), 70),
        ("r2", "k3", "carol", None, 90),
        ("r1", "k4", "alice", Some("chatgpt"), 85),
        ("r2", "k5", "bob", Some("chatgpt"), 10),
        ("r1", "k6", "dave", Some("mistral"), 65),
    ];
    let mut ids = Vec::new();
    for (i, (rule_id, k, user, platform, severity)) in specs.into_iter().enumerate() {
        let at = t0 + i as i64 * MINUTE;
        let mut m = hit(no, rule_id, k, severity, at);
        (m.user_id, m.platform_id) = (Some(user.into()), platform.map(Into::into));
        ids.push(raise(&x, m, at).await.0);
    }
    assert_eq!(workflow(&x, &key, &ids[1], json!({"status": "acknowledged"})).await.0, StatusCode::OK);
    assert_eq!(workflow(&x, &key, &ids[2], json!({"status": "rejected"})).await.0, StatusCode::OK);
    assert_eq!(workflow(&x, &key, &ids[6], json!({"action_uuid": VALIDATE})).await.0, StatusCode::OK);
    for i in [3, 5] {
        assert_eq!(x.call_json("PATCH", &format!("/api/v1/alerts/{}", ids[i]), &key, json!({"assignee": "dana"})).await.0, StatusCode::OK);
    }

    let (everything, pages) = all(&x, &key, "limit=3").await;
    assert_eq!((everything, pages), (keys(&["k6", "k5", "k4", "k3", "k2", "k1", "k0"]), 3), "newest first, three pages of 3, 3, 1");
    let (first, cursor) = page(&x, &key, "limit=3").await;
    assert_eq!((first.len(), cursor.is_some()), (3, true));
    let (_, v) = x.get("/api/v1/alerts?limit=1", &key).await;
    let a = &v["items"][0];
    assert_eq!(
        (a["rule"].clone(), a["severity"].as_str(), a["urgency"].as_i64(), a["status"].as_str(), a["user_id"].as_str()),
        (json!({"id": "r1", "name": "Rule r1"}), Some("high"), Some(65), Some("ongoing"), Some("dave")),
        "{a}"
    );
    assert_eq!(time(&a["created_at"]).timestamp_micros(), t0 + 6 * MINUTE);

    for (query, want) in [
        ("status=pending", &["k5", "k4", "k3", "k0"][..]),
        ("status=acknowledged,rejected", &["k2", "k1"]),
        ("status=Ongoing", &["k6"]),
        ("status=closed", &[]),
        ("severity=critical", &["k4", "k3"]),
        ("severity=low,medium", &["k5", "k1", "k0"]),
        ("severity=HIGH", &["k6", "k2"]),
        ("rule_id=r2", &["k5", "k3", "k2"]),
        ("rule_id=nope", &[]),
        ("user_id=alice", &["k4", "k2", "k0"]),
        ("platform_id=deepseek", &["k2", "k1"]),
        ("assignee=dana", &["k5", "k3"]),
        ("from=2026-11-28T09:01:00Z&to=2026-11-28T09:03:00Z", &["k2", "k1"]),
        ("from=2026-11-28T09:05:00Z", &["k6", "k5"]),
        ("to=2026-11-28T09:01:00Z", &["k0"]),
        ("user_id=alice&platform_id=chatgpt&severity=critical,low", &["k4", "k0"]),
    ] {
        assert_eq!(all(&x, &key, query).await.0, keys(want), "{query}");
    }
    // A filter and the cursor together.
    assert_eq!(all(&x, &key, "rule_id=r1&status=pending&limit=1").await, (keys(&["k4", "k0"]), 2));

    for (query, field) in [
        ("status=resolved", "status"),
        ("status=,", "status"),
        ("severity=major", "severity"),
        ("cursor=nonsense", "cursor"),
        ("cursor=12%3A", "cursor"),
        ("from=2026-11-28T10:00:00Z&to=2026-11-28T09:00:00Z", "from"),
        ("from=yesterday", "from"),
        ("colour=red", ""),
    ] {
        let (status, v) = x.get(&format!("/api/v1/alerts?{query}"), &key).await;
        assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{query}: {v}");
        assert!(v["error"].as_str().expect("message").contains(field), "{query}: {v}");
    }
}

#[tokio::test]
async fn alerts_raised_in_the_same_instant_are_paged_by_id_without_loss() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let mut raised = Vec::new();
    for k in ["a", "b", "c", "d"] {
        raised.push((raise(&x, hit(no, "r1", k, 70, t0), t0).await.0, k.to_owned()));
    }
    // Newest first: the later id first among equal times.
    raised.sort();
    let want: Vec<String> = raised.into_iter().rev().map(|(_, k)| k).collect();
    assert_eq!(all(&x, &key, "limit=1").await, (want.clone(), 4));
    assert_eq!(all(&x, &key, "limit=3").await, (want, 2));
}

#[tokio::test]
async fn an_alert_is_read_by_id_or_short_id_with_its_occurrences_and_events_in_log_order() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let mut m = hit(no, "r1", "alice@chatgpt", 70, t0);
    m.events = vec![(30, "e30".into()), (10, "e10".into())];
    (m.user_id, m.platform_id) = (Some("alice".into()), Some("chatgpt".into()));
    let (id, short) = raise(&x, m.clone(), t0).await;
    (m.first_seen, m.last_seen, m.events) = (t0 - 10 * MINUTE, t0 + 2 * MINUTE, vec![(20, "e20".into()), (10, "e10".into())]);
    assert_eq!(apply(&x, m, t0 + 2 * MINUTE).await, Outcome::Occurrence { alert_id: id.clone() });

    let (status, a) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!((a["id"].as_str(), a["short_id"].as_str()), (Some(id.as_str()), Some(short.as_str())));
    assert_eq!(a["event_ids"], json!(["e10", "e20", "e30"]));
    assert_eq!(
        (a["occurrences"].as_i64(), a["status"].as_str(), a["title"].as_str()),
        (Some(2), Some("pending"), Some("r1 matched alice@chatgpt"))
    );
    assert_eq!((a["severity"].as_str(), a["urgency"].as_i64(), a["assignee"].clone()), (Some("high"), Some(70), Value::Null));
    assert_eq!(
        (a["user_id"].as_str(), a["platform_id"].as_str(), a["details"].clone()),
        (Some("alice"), Some("chatgpt"), json!({"key": "alice@chatgpt"}))
    );
    assert_eq!(
        [&a["first_seen"], &a["last_seen"], &a["created_at"], &a["updated_at"]].map(|t| time(t).timestamp_micros()),
        [t0 - 10 * MINUTE, t0 + 2 * MINUTE, t0, t0 + 2 * MINUTE]
    );
    assert_eq!(a["comments"], json!([]));
    assert_eq!(a["history"].as_array().map(Vec::len), Some(1));
    assert_eq!((a["history"][0]["kind"].as_str(), a["history"][0]["by"].as_str()), (Some("created"), Some("detection")));

    for path in [short.clone(), short.to_lowercase(), id.to_uppercase()] {
        let (status, b) = x.get(&format!("/api/v1/alerts/{path}"), &key).await;
        assert_eq!((status, &b), (StatusCode::OK, &a), "{path}");
    }
    for path in ["0190a3c1-0000-7000-8000-000000000099", "AL00000000", "nothing"] {
        let (status, v) = x.get(&format!("/api/v1/alerts/{path}"), &key).await;
        assert_eq!((status, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}: {v}");
    }
}

#[tokio::test]
async fn the_workflow_runs_to_closed_and_the_history_says_who_and_when() {
    let (x, no, key) = soc().await;
    let me = format!("key:{}", key_id(&x, &key).await);
    let t0 = us("2026-11-28T09:00:00Z");
    let (id, short) = raise(&x, hit(no, "r1", "k", 70, t0), t0).await;
    let before = Utc::now();
    let names = |v: &Value| {
        v["actions"].as_array().expect("actions").iter().map(|a| a["name"].as_str().expect("name").to_owned()).collect::<Vec<_>>()
    };

    let (status, v) = workflow(&x, &key, &id, json!({"status": "acknowledged"})).await;
    assert_eq!((status, v["status"].as_str(), names(&v)), (StatusCode::OK, Some("acknowledged"), keys(&["Validate", "Reject"])), "{v}");
    assert_eq!(
        v["actions"][0],
        json!({"id": VALIDATE, "name": "Validate", "description": "The alert is a true positive; it is being handled", "status": "ongoing"})
    );
    assert!(time(&v["updated_at"]) >= before && v["event_ids"].is_null(), "{v}");
    let (status, v) = workflow(&x, &key, &short, json!({"action_uuid": VALIDATE, "comment": "true positive"})).await;
    assert_eq!((status, v["status"].as_str(), names(&v)), (StatusCode::OK, Some("ongoing"), keys(&["Close", "Reject"])), "{v}");
    let (status, v) = workflow(&x, &key, &id, json!({"status": "closed", "comment": "contained"})).await;
    assert_eq!((status, v["status"].as_str(), names(&v)), (StatusCode::OK, Some("closed"), Vec::<String>::new()), "{v}");
    let after = Utc::now();

    let (_, a) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
    assert_eq!(a["status"], "closed");
    assert_eq!(
        history_of(&a),
        [
            Entry::new("created", "detection", None, Some("pending"), None),
            Entry::new("status", &me, Some("pending"), Some("acknowledged"), None),
            Entry::new("status", &me, Some("acknowledged"), Some("ongoing"), Some("true positive")),
            Entry::new("status", &me, Some("ongoing"), Some("closed"), Some("contained")),
        ]
    );
    let history = a["history"].as_array().expect("history");
    assert_eq!(time(&history[0]["at"]).timestamp_micros(), t0);
    let mut last = before;
    for h in &history[1..] {
        let at = time(&h["at"]);
        assert!(at >= last && at <= after, "{h}");
        last = at;
    }
    assert_eq!(time(&a["updated_at"]), last);

    // Sekoia's Validate straight from pending, and a status UUID sent as the action.
    let (other, _) = raise(&x, hit(no, "r1", "k2", 70, t0), t0).await;
    let (status, v) = workflow(&x, &key, &other, json!({"action_uuid": VALIDATE.to_uppercase()})).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ongoing")), "{v}");
    let (third, _) = raise(&x, hit(no, "r1", "k3", 70, t0), t0).await;
    let (status, v) = workflow(&x, &key, &third, json!({"action_uuid": ACKNOWLEDGE})).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("acknowledged")), "{v}");
}

#[tokio::test]
async fn a_transition_the_workflow_does_not_allow_is_refused_and_changes_nothing() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let (id, short) = raise(&x, hit(no, "r1", "k", 70, t0), t0).await;
    let (_, before) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;

    for body in [json!({"status": "closed"}), json!({"status": "pending"}), json!({"action_uuid": CLOSE})] {
        let (status, v) = workflow(&x, &key, &id, body.clone()).await;
        assert_eq!((status, v["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")), "{body}: {v}");
        let msg = v["error"].as_str().expect("message");
        assert!(msg.contains(&short) && msg.contains("is pending") && msg.contains("acknowledged, ongoing or rejected"), "{msg}");
    }
    for body in [
        json!({"status": "resolved"}),
        json!({"action_uuid": "00000000-0000-0000-0000-000000000000"}),
        json!({}),
        json!({"status": "acknowledged", "action_uuid": ACKNOWLEDGE}),
        json!({"status": "acknowledged", "note": "x"}),
        json!({"status": "acknowledged", "comment": "x".repeat(10_001)}),
    ] {
        let (status, v) = workflow(&x, &key, &id, body.clone()).await;
        assert_eq!((status, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")), "{body}: {v}");
    }
    let (_, after) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
    assert_eq!(after, before, "nothing changed");

    // From a final status nothing follows.
    for step in ["acknowledged", "ongoing", "closed"] {
        assert_eq!(workflow(&x, &key, &id, json!({"status": step})).await.0, StatusCode::OK, "{step}");
    }
    let (_, before) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
    for to in ["rejected", "ongoing", "closed", "pending"] {
        let (status, v) = workflow(&x, &key, &id, json!({"status": to})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{to}: {v}");
        assert!(v["error"].as_str().expect("message").contains("is closed, a final status"), "{v}");
    }
    assert_eq!(x.get(&format!("/api/v1/alerts/{id}"), &key).await.1, before);
    assert_eq!(x.count("SELECT COUNT(*) FROM alert_history"), 4);
}

#[tokio::test]
async fn an_alert_is_rejected_from_each_open_status_and_then_absorbs_no_match() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let forms =
        [json!({"status": "rejected"}), json!({"action_uuid": REJECT}), json!({"action_uuid": REJECTED_STATUS, "comment": "noise"})];
    for (i, (from, form)) in ["pending", "acknowledged", "ongoing"].into_iter().zip(forms).enumerate() {
        let k = format!("k{i}");
        let (id, _) = raise(&x, hit(no, "r1", &k, 70, t0), t0).await;
        let path: &[&str] = match from {
            "pending" => &[],
            "acknowledged" => &["acknowledged"],
            _ => &["acknowledged", "ongoing"],
        };
        for step in path {
            assert_eq!(workflow(&x, &key, &id, json!({"status": step})).await.0, StatusCode::OK);
        }
        let (status, v) = workflow(&x, &key, &id, form.clone()).await;
        assert_eq!(
            (status, v["status"].as_str(), v["actions"].clone()),
            (StatusCode::OK, Some("rejected"), json!([])),
            "from {from} with {form}: {v}"
        );
        let (_, a) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
        let last = a["history"].as_array().and_then(|h| h.last()).expect("history").clone();
        assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some(from), Some("rejected")));
        // The same key again is a new alert: a rejected one takes no occurrence.
        let (new, _) = raise(&x, hit(no, "r1", &k, 70, t0 + MINUTE), t0 + MINUTE).await;
        assert_ne!(new, id);
        assert_eq!(x.get(&format!("/api/v1/alerts/{id}"), &key).await.1["occurrences"], 1);
    }
}

#[tokio::test]
async fn comments_and_assignment_are_validated_and_recorded() {
    let (x, no, key) = soc().await;
    let me = format!("key:{}", key_id(&x, &key).await);
    let t0 = us("2026-11-28T09:00:00Z");
    let (id, short) = raise(&x, hit(no, "r1", "k", 70, t0), t0).await;
    let comments = format!("/api/v1/alerts/{short}/comments");

    let (status, c1) = x.call_json("POST", &comments, &key, json!({"content": "looking"})).await;
    assert_eq!((status, c1["author"].as_str(), c1["content"].as_str()), (StatusCode::CREATED, Some(me.as_str()), Some("looking")), "{c1}");
    let (status, c2) = x.call_json("POST", &comments, &key, json!({"content": "by hand", "author": " Dana "})).await;
    assert_eq!((status, c2["author"].as_str()), (StatusCode::CREATED, Some("Dana")), "{c2}");
    let (status, c3) = x.call_json("POST", &comments, &key, json!({"content": "é".repeat(10_000)})).await;
    assert_eq!(status, StatusCode::CREATED, "10,000 characters are allowed: {c3}");
    for (body, field) in [
        (json!({"content": ""}), "content"),
        (json!({"content": "  \n "}), "content"),
        (json!({"content": "x".repeat(10_001)}), "content"),
        (json!({"content": "x", "author": "a".repeat(101)}), "author"),
        (json!({"content": "x", "author": ""}), "author"),
        (json!({"author": "a"}), "content"),
        (json!({"content": "x", "visible": true}), "visible"),
    ] {
        let (status, v) = x.call_json("POST", &comments, &key, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(
            v["fields"][0]["field"].as_str().is_some_and(|f| f.contains(field)) || v["error"].as_str().is_some_and(|e| e.contains(field)),
            "{body}: {v}"
        );
    }
    let (_, list) = x.get(&comments, &key).await;
    assert_eq!(
        list["items"].as_array().map(|i| i.iter().map(|c| c["id"].clone()).collect::<Vec<_>>()),
        Some(vec![c1["id"].clone(), c2["id"].clone(), c3["id"].clone()])
    );
    let (_, p1) = x.get(&format!("{comments}?limit=2"), &key).await;
    let cursor = p1["next_cursor"].as_str().expect("more");
    let (_, p2) = x.get(&format!("{comments}?limit=2&cursor={cursor}"), &key).await;
    assert_eq!((p1["items"].as_array().map(Vec::len), &p2["items"][0]["id"], &p2["next_cursor"]), (Some(2), &c3["id"], &Value::Null));

    let alert_path = format!("/api/v1/alerts/{id}");
    let patch = |body: Value| x.call_json("PATCH", &alert_path, &key, body);
    let (status, v) = patch(json!({"assignee": "dana"})).await;
    assert_eq!((status, v["assignee"].as_str(), v["urgency"].as_i64()), (StatusCode::OK, Some("dana"), Some(70)), "{v}");
    let (status, v) = patch(json!({"urgency": 90})).await;
    assert_eq!((status, v["assignee"].as_str(), v["urgency"].as_i64()), (StatusCode::OK, Some("dana"), Some(90)), "{v}");
    assert_eq!(patch(json!({"urgency": 90, "assignee": "dana"})).await.0, StatusCode::OK, "the same values: no history");
    for (body, field) in [
        (json!({"urgency": 101}), "urgency"),
        (json!({"urgency": -1}), "urgency"),
        (json!({"urgency": 50.5}), "urgency"),
        (json!({"assignee": "  "}), "assignee"),
        (json!({"assignee": "a".repeat(101)}), "assignee"),
        (json!({"assignee": null, "urgency": 200}), "urgency"),
        (json!({}), "body"),
        (json!({"status": "closed"}), "status"),
    ] {
        let (status, v) = patch(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(field)), "{body}: {v}");
    }
    let (status, v) = patch(json!({"assignee": null})).await;
    assert_eq!((status, v["assignee"].clone(), v["urgency"].as_i64()), (StatusCode::OK, Value::Null, Some(90)), "{v}");

    let (_, a) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
    assert_eq!(a["comments"].as_array().map(Vec::len), Some(3));
    assert_eq!(a["comments"][1]["content"], "by hand");
    let entry = |kind: &str, from: Option<&str>, to: Option<&str>| Entry::new(kind, &me, from, to, None);
    assert_eq!(
        history_of(&a)[1..],
        [
            entry("comment", None, c1["id"].as_str()),
            entry("comment", None, c2["id"].as_str()),
            entry("comment", None, c3["id"].as_str()),
            entry("assignee", None, Some("dana")),
            entry("urgency", Some("70"), Some("90")),
            entry("assignee", Some("dana"), None),
        ]
    );
}

#[tokio::test]
async fn keys_without_the_alert_scopes_are_refused_and_change_nothing() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let (id, _) = raise(&x, hit(no, "r1", "k", 70, t0), t0).await;
    let (events_only, _) = x.key("soc", &["events_read", "events_write"], false).await;
    let (read_only, _) = x.key("soc", &["alerts_read"], false).await;
    let (write_only, _) = x.key("soc", &["alerts_write"], false).await;
    let (_, before) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;

    let reads = ["/api/v1/alerts".to_owned(), format!("/api/v1/alerts/{id}"), format!("/api/v1/alerts/{id}/comments")];
    for path in &reads {
        for k in [&events_only, &write_only] {
            let (status, v) = x.get(path, k).await;
            assert_eq!((status, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{path}: {v}");
            assert!(v["error"].as_str().expect("message").contains("alerts_read"), "{v}");
        }
        assert_eq!(x.get(path, &read_only).await.0, StatusCode::OK, "{path}");
        let resp = x.http.get(format!("{}{path}", x.base)).send().await.expect("request");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path} without a key");
    }
    let writes = [
        ("PATCH", format!("/api/v1/alerts/{id}/workflow"), json!({"status": "acknowledged"})),
        ("PATCH", format!("/api/v1/alerts/{id}"), json!({"assignee": "mallory"})),
        ("POST", format!("/api/v1/alerts/{id}/comments"), json!({"content": "hello"})),
    ];
    for (method, path, body) in &writes {
        for k in [&events_only, &read_only] {
            let (status, v) = x.call_json(method, path, k, body.clone()).await;
            assert_eq!((status, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{method} {path}: {v}");
            assert!(v["error"].as_str().expect("message").contains("alerts_write"), "{v}");
        }
    }
    assert_eq!(x.get(&format!("/api/v1/alerts/{id}"), &key).await.1, before, "refused writes change nothing");
    // The write scope alone writes.
    let (status, v) = x.call_json("PATCH", &format!("/api/v1/alerts/{id}/workflow"), &write_only, json!({"status": "acknowledged"})).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("acknowledged")), "{v}");
}

#[tokio::test]
async fn another_spaces_alert_is_not_found_and_never_listed() {
    let (x, no, key) = soc().await;
    let t0 = us("2026-11-28T09:00:00Z");
    let (id, short) = raise(&x, hit(no, "r1", "k", 70, t0), t0).await;
    assert_eq!(
        x.call_json("POST", &format!("/api/v1/alerts/{id}/comments"), &key, json!({"content": "mine"})).await.0,
        StatusCode::CREATED
    );
    let (_, before) = x.get(&format!("/api/v1/alerts/{id}"), &key).await;
    let (other, _) = x.key("other", &["alerts_read", "alerts_write"], false).await;

    assert_eq!(page(&x, &other, "").await, (Vec::new(), None));
    assert_eq!(page(&x, &other, "rule_id=r1&status=pending").await, (Vec::new(), None));
    for path in [&id, &short] {
        let requests = [
            ("GET", format!("/api/v1/alerts/{path}"), Value::Null),
            ("GET", format!("/api/v1/alerts/{path}/comments"), Value::Null),
            ("PATCH", format!("/api/v1/alerts/{path}"), json!({"assignee": "mallory"})),
            ("PATCH", format!("/api/v1/alerts/{path}/workflow"), json!({"status": "rejected"})),
            ("POST", format!("/api/v1/alerts/{path}/comments"), json!({"content": "theirs"})),
        ];
        for (method, p, body) in requests {
            let (status, v) = if method == "GET" { x.get(&p, &other).await } else { x.call_json(method, &p, &other, body).await };
            assert_eq!((status, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{method} {p}: {v}");
        }
    }
    assert_eq!(x.get(&format!("/api/v1/alerts/{id}"), &key).await.1, before, "nothing of space soc changed");
    // The other space's own alert is its own, and soc does not see it.
    let other_no = space_no(&x, "other").await;
    rule(&x, other_no, "r-other", "Theirs").await;
    let (theirs, _) = raise(&x, hit(other_no, "r-other", "theirs", 70, t0), t0).await;
    assert_eq!(page(&x, &other, "").await.0, keys(&["theirs"]));
    assert_eq!(page(&x, &key, "").await.0, keys(&["k"]));
    assert_eq!(x.get(&format!("/api/v1/alerts/{theirs}"), &key).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_comment_cannot_sign_as_a_key_or_as_detection() {
    let (x, space, key) = soc().await;
    rule(&x, space, "r-sign", "Signed").await;
    let (_, short) = raise(&x, hit(space, "r-sign", "k", 50, us("2026-11-28T09:00:00Z")), us("2026-11-28T09:00:00Z")).await;
    for forged in ["key:0190d7a0-0000-7000-8000-000000000001", "detection", "Detection"] {
        let (status, err) =
            x.call_json("POST", &format!("/api/v1/alerts/{short}/comments"), &key, json!({"content": "x", "author": forged})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{forged}: {err}");
    }
    let (status, c) =
        x.call_json("POST", &format!("/api/v1/alerts/{short}/comments"), &key, json!({"content": "x", "author": "Dana"})).await;
    assert_eq!((status, c["author"].as_str()), (StatusCode::CREATED, Some("Dana")));
}
