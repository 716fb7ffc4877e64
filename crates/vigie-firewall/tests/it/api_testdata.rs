//! `GET` / `DELETE /api/v1/test-data`: what `vigie verify` left (its test people's interactions,
//! their events, their deliveries not yet made) is counted and removed exactly, admins only, in
//! the caller's tenant only; real people's data and the delivery log are untouched.
use crate::receiver::{DEADLINE, Receiver, Reply};
use crate::{HASH, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PERSON_A: &str = "00000000-7e57-4da7-a000-00000000000a";
const PERSON_B: &str = "00000000-7e57-4da7-a000-0000000000b0";
const REAL: &str = "01900000-0000-7000-8000-000000000001";
/// A card, an IBAN and an e-mail: several findings, high risk, several events.
const TEXT: &str = "pay 4532 0151 1283 0366 to FR76 3000 6000 0112 3456 7890 189, tell jean.dupont@example.com";

/// A server whose failed deliveries wait an hour before their second attempt: after the first,
/// they stay pending for the whole test.
async fn server() -> TestServer {
    TestServer::start_with(|o| {
        o.webhooks.schedule =
            vigie_webhook::schedule::RetrySchedule::parse(&["0ms", "1h"], 0.0, std::time::Duration::from_secs(86_400)).expect("schedule");
    })
    .await
}

async fn record(s: &TestServer, token: &str, user: Option<&str>, text: Option<&str>) -> String {
    let mut body = json!({"platform_id": "perplexity", "user_id": user, "source": "api"});
    match text {
        Some(t) => body["text"] = json!(t),
        None => body["content_hash"] = json!(HASH),
    }
    let (status, r) = s.interaction(token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    r["id"].as_str().expect("id").to_owned()
}

/// The events an interaction emitted, through the API.
async fn events_of(s: &TestServer, id: &str) -> Vec<Value> {
    let (status, r) = s.get(&format!("/api/v1/interactions/{id}/events"), &s.admin).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r["items"].as_array().expect("items").clone()
}

async fn test_data(s: &TestServer, method: &str, token: &str, query: &str) -> (StatusCode, Value) {
    s.call(method, &format!("/api/v1/test-data{query}"), Some(token), None).await
}

fn counts(interactions: u64, events: u64, pending: u64) -> Value {
    json!({"interactions": interactions, "events": events, "pending_deliveries": pending})
}

/// Waits until the webhook logged `n` attempts (each delivery's first, failed: it then waits).
async fn first_attempts(s: &TestServer, webhook: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut commits = s.state.store.commit_signal();
    loop {
        let (_, page) = s.get(&format!("/api/v1/webhooks/{webhook}/deliveries?limit=500"), &s.admin).await;
        if page["items"].as_array().is_some_and(|a| a.len() >= n) {
            return;
        }
        assert!(tokio::time::timeout_at(deadline, commits.changed()).await.is_ok(), "only some attempts logged: {page}");
    }
}

#[tokio::test]
async fn test_data_is_counted_then_removed_exactly_and_real_data_and_the_delivery_log_stay() {
    let s = server().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let (status, w) = s.post("/api/v1/webhooks", &s.admin, json!({"url": rx.url, "events": ["interaction.created"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    let webhook = w["id"].as_str().expect("id").to_owned();

    let a1 = record(&s, &s.admin, Some(PERSON_A), Some(TEXT)).await;
    let a2 = record(&s, &s.admin, Some(&PERSON_A.to_uppercase()), None).await;
    let b = record(&s, &s.admin, Some(PERSON_B), None).await;
    let real = record(&s, &s.admin, Some(REAL), Some(TEXT)).await;
    let nobody = record(&s, &s.admin, None, None).await;
    let a_events = events_of(&s, &a1).await.len() + events_of(&s, &a2).await.len();
    assert!(events_of(&s, &a1).await.len() >= 3, "created, high risk and an alert: {:?}", events_of(&s, &a1).await);
    let b_events = events_of(&s, &b).await.len() as u64;
    let real_events = events_of(&s, &real).await;
    first_attempts(&s, &webhook, 5).await;
    let attempts_before = s.count("SELECT COUNT(*) FROM webhook_attempts");
    let outbox_before = s.count("SELECT COUNT(*) FROM outbox");

    let (status, found) = test_data(&s, "GET", &s.admin, &format!("?user_id={PERSON_A}")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found, json!({"found": counts(2, a_events as u64, 2)}));
    let (_, all) = test_data(&s, "GET", &s.admin, "").await;
    assert_eq!(all, json!({"found": counts(3, a_events as u64 + b_events, 3)}));

    let (status, removed) = test_data(&s, "DELETE", &s.admin, &format!("?user_id={}", PERSON_A.to_uppercase())).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed, json!({"removed": counts(2, a_events as u64, 2)}));
    for id in [&a1, &a2] {
        assert_eq!(s.get(&format!("/api/v1/interactions/{id}"), &s.admin).await.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(s.count("SELECT COUNT(*) FROM outbox"), outbox_before - a_events as i64);
    assert_eq!(
        s.count(&format!("SELECT COUNT(*) FROM outbox WHERE json_extract(payload, '$.data.interaction.user_id') = '{PERSON_A}'")),
        0
    );
    // The others are all there: the real person's interaction and events, the one without a
    // person, the other test person; their deliveries still wait; the log is whole.
    for id in [&b, &real, &nobody] {
        assert_eq!(s.get(&format!("/api/v1/interactions/{id}"), &s.admin).await.0, StatusCode::OK);
    }
    assert_eq!(events_of(&s, &real).await, real_events);
    let (_, w) = s.get(&format!("/api/v1/webhooks/{webhook}"), &s.admin).await;
    assert_eq!(w["pending_deliveries"], 3, "{w}");
    assert_eq!(s.count("SELECT COUNT(*) FROM webhook_attempts"), attempts_before);
    let (_, page) = s.get(&format!("/api/v1/interactions?user_id={REAL}"), &s.admin).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");

    let (_, again) = test_data(&s, "DELETE", &s.admin, &format!("?user_id={PERSON_A}")).await;
    assert_eq!(again, json!({"removed": counts(0, 0, 0)}), "a second DELETE removes nothing");
    let (_, rest) = test_data(&s, "DELETE", &s.admin, "").await;
    assert_eq!(rest, json!({"removed": counts(1, b_events, 1)}));
    let (_, none) = test_data(&s, "GET", &s.admin, "").await;
    assert_eq!(none, json!({"found": counts(0, 0, 0)}));
    let (_, w) = s.get(&format!("/api/v1/webhooks/{webhook}"), &s.admin).await;
    assert_eq!(w["pending_deliveries"], 2, "the real person's and the anonymous one's: {w}");
}

#[tokio::test]
async fn only_admins_of_the_tenant_see_or_remove_its_test_data_and_only_test_people() {
    let s = TestServer::start().await;
    record(&s, &s.admin, Some(PERSON_A), Some(TEXT)).await;
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let other = s.login("root@globex.test", "globex password 1").await;
    record(&s, &other, Some(PERSON_B), None).await;

    let (status, found) = test_data(&s, "GET", &other, &format!("?user_id={PERSON_A}")).await;
    assert_eq!((status, &found["found"]["interactions"]), (StatusCode::OK, &json!(0)), "{found}");
    let (_, removed) = test_data(&s, "DELETE", &other, "").await;
    assert_eq!(removed["removed"]["interactions"], 1, "globex's own test person only: {removed}");
    let (_, mine) = test_data(&s, "GET", &s.admin, "").await;
    assert_eq!(mine["found"]["interactions"], 1, "acme's test data survives globex's cleanup: {mine}");

    for role in ["viewer", "ingest"] {
        let token = s.api_token(role).await;
        for method in ["GET", "DELETE"] {
            let (status, e) = test_data(&s, method, &token, "").await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method}: {e}");
            assert!(e["error"].as_str().is_some_and(|m| m.contains("admin")), "{e}");
        }
    }
    assert_eq!(test_data(&s, "GET", "not a token", "").await.0, StatusCode::UNAUTHORIZED);

    for bad in [REAL, "garbage", "00000000-7e57-4da7-a001-000000000000"] {
        for method in ["GET", "DELETE"] {
            let (status, e) = test_data(&s, method, &s.admin, &format!("?user_id={bad}")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {e}");
            assert_eq!(e["fields"][0]["field"], "user_id", "{e}");
            assert!(e["error"].as_str().is_some_and(|m| m.contains("not a test person")), "{e}");
        }
    }
    let (_, mine) = test_data(&s, "GET", &s.admin, "").await;
    assert_eq!(mine["found"]["interactions"], 1, "{mine}");
}

/// More test interactions than one removal transaction takes (500): the DELETE removes them
/// all in several transactions, its counts are what GET found (they add up across the
/// transactions), and the real person's interaction stays (regression: review 2, item 2).
#[tokio::test]
async fn a_removal_larger_than_one_transaction_removes_everything_and_its_counts_add_up() {
    let s = TestServer::start().await;
    const N: usize = 520;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..N {
        let (http, url, token) = (s.http.clone(), format!("{}/api/v1/interactions", s.base), s.admin.clone());
        // Three test people, so the range covers several of them.
        let person = format!("00000000-7e57-4da7-a000-00000000000{}", i % 3);
        sends.spawn(async move {
            let body = json!({"platform_id": "perplexity", "user_id": person, "source": "api", "content_hash": HASH});
            http.post(url).bearer_auth(token).json(&body).send().await.map(|r| r.status())
        });
        // At most 16 in flight.
        while sends.len() >= 16 {
            let status = sends.join_next().await.expect("a send").expect("join").expect("request");
            assert_eq!(status, StatusCode::CREATED);
        }
    }
    while let Some(r) = sends.join_next().await {
        assert_eq!(r.expect("join").expect("request"), StatusCode::CREATED);
    }
    let real = record(&s, &s.admin, Some(REAL), None).await;

    let (status, found) = test_data(&s, "GET", &s.admin, "").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["found"]["interactions"], N as u64, "{found}");
    let events = found["found"]["events"].as_u64().expect("events");
    assert!(events >= N as u64, "each interaction emitted at least one event: {found}");
    let outbox_before = s.count("SELECT COUNT(*) FROM outbox");

    let commits = s.state.store.commits();
    let (status, removed) = test_data(&s, "DELETE", &s.admin, "").await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["removed"], found["found"], "the DELETE removed what the GET found");
    assert!(s.state.store.commits() - commits >= 2, "{N} interactions are removed in more than one transaction");
    assert_eq!(s.count("SELECT COUNT(*) FROM outbox"), outbox_before - events as i64);
    assert_eq!(s.count("SELECT COUNT(*) FROM interactions WHERE user_id LIKE '00000000-7e57-%'"), 0);
    assert_eq!(s.get(&format!("/api/v1/interactions/{real}"), &s.admin).await.0, StatusCode::OK);
    let (_, again) = test_data(&s, "DELETE", &s.admin, "").await;
    assert_eq!(again, json!({"removed": counts(0, 0, 0)}), "a second DELETE removes nothing");
}

/// The API stores only lowercase UUIDs as user ids, but a database written by another tool may
/// hold an id that starts like a test person's and is not one (37 characters, or not a UUID):
/// it is neither counted nor removed (regression: review 2, item 11).
#[tokio::test]
async fn an_id_that_only_starts_like_a_test_persons_is_left_alone() {
    let s = TestServer::start().await;
    let test = record(&s, &s.admin, Some(PERSON_A), None).await;
    let model = record(&s, &s.admin, Some(REAL), None).await;
    let lookalikes = [
        ("01910000-0000-7000-8000-0000000000f1", format!("{PERSON_A}0")),
        ("01910000-0000-7000-8000-0000000000f2", "00000000-7e57-4da7-a000-00000000000z".to_owned()),
    ];
    {
        // Copies of the real person's interaction under those user ids, written as another tool
        // would (the API cannot store them).
        let db = rusqlite::Connection::open(s.dir.path().join("firewall.db")).expect("open db");
        db.busy_timeout(std::time::Duration::from_secs(10)).expect("busy timeout");
        for (id, user) in &lookalikes {
            db.execute_batch(&format!(
                "CREATE TEMP TABLE copy AS SELECT * FROM interactions WHERE id = '{model}';
                 UPDATE copy SET id = '{id}', user_id = '{user}';
                 INSERT INTO interactions SELECT * FROM copy;
                 DROP TABLE copy;"
            ))
            .expect("insert a look-alike");
        }
    }
    let (_, found) = test_data(&s, "GET", &s.admin, "").await;
    assert_eq!(found["found"]["interactions"], 1, "only the test person's: {found}");
    let (_, removed) = test_data(&s, "DELETE", &s.admin, "").await;
    assert_eq!(removed["removed"]["interactions"], 1, "{removed}");
    assert_eq!(s.get(&format!("/api/v1/interactions/{test}"), &s.admin).await.0, StatusCode::NOT_FOUND);
    for (id, _) in &lookalikes {
        assert_eq!(s.count(&format!("SELECT COUNT(*) FROM interactions WHERE id = '{id}'")), 1, "{id} is untouched");
    }
}
