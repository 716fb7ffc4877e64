//! The people directory over real HTTP: added, changed, listed and removed; imported from CSV
//! all or nothing; the names it gives shown on alerts and events; read with `alerts_read`,
//! changed with `admin`, and never across spaces.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie_core::StoreError;
use vigie_xdr::alerts::{Match, Outcome};

async fn import(x: &TestXdr, key: &str, csv: &str) -> (StatusCode, Value) {
    x.post("/api/v1/people/import", Some(key), csv.to_owned(), &[("content-type", "text/csv")]).await
}

fn user_ids(v: &Value) -> Vec<&str> {
    v["items"].as_array().expect("items").iter().map(|p| p["user_id"].as_str().expect("user_id")).collect()
}

#[tokio::test]
async fn people_are_added_changed_listed_and_removed() {
    let x = TestXdr::start().await;
    let (admin, _) = x.key("soc", &["admin"], false).await;
    let (reader, _) = x.key("soc", &["alerts_read"], false).await;
    let alice = json!({"display_name": "Alice Martin", "email": "alice@example.com", "manager_email": "boss@example.com",
        "department": "Finance", "training_date": "2024-01-15"});
    let (status, p) = x.call_json("PUT", "/api/v1/people/alice", &admin, alice.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!((p["display_name"].as_str(), p["training_date"].as_str()), (Some("Alice Martin"), Some("2024-01-15")));
    assert!(p["training_days_ago"].as_i64().is_some_and(|d| d > 365), "{p}");
    // PUT again replaces (an absent field is cleared), and says it was not new.
    let (status, p) = x.call_json("PUT", "/api/v1/people/alice", &admin, json!({"display_name": "Alice M."})).await;
    assert_eq!((status, p["email"].clone()), (StatusCode::OK, Value::Null), "{p}");
    // PATCH changes only what it names; null clears.
    let (status, p) =
        x.call_json("PATCH", "/api/v1/people/alice", &admin, json!({"email": "alice@example.com", "display_name": null})).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!((p["email"].as_str(), p["display_name"].clone()), (Some("alice@example.com"), Value::Null));
    for (user, name, dept) in [("bob", "Bob Stone", "Sales"), ("carol", "Carol Lee", "Finance"), ("dave", "Dave Bell", "Finance")] {
        let body = json!({"display_name": name, "department": dept, "email": format!("{user}@example.com")});
        assert_eq!(x.call_json("PUT", &format!("/api/v1/people/{user}"), &admin, body).await.0, StatusCode::CREATED);
    }
    // Bad values are refused, each named.
    let (status, e) =
        x.call_json("PUT", "/api/v1/people/erin", &admin, json!({"email": "not an address", "training_date": "2024-02-30"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let fields: Vec<&str> = e["fields"].as_array().expect("fields").iter().map(|f| f["field"].as_str().unwrap_or("")).collect();
    assert_eq!(fields, ["email", "training_date"]);
    assert_eq!(x.call_json("PATCH", "/api/v1/people/nobody", &admin, json!({"department": "X"})).await.0, StatusCode::NOT_FOUND);
    // Listing: by department, by prefix of name or e-mail, and paged by user id.
    let (status, v) = x.get("/api/v1/people?department=Finance", &reader).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(user_ids(&v), ["carol", "dave"]);
    assert_eq!(user_ids(&x.get("/api/v1/people?q=bob", &reader).await.1), ["bob"]);
    assert_eq!(user_ids(&x.get("/api/v1/people?q=DAVE%20B", &reader).await.1), ["dave"], "a name's prefix, any case");
    assert_eq!(user_ids(&x.get("/api/v1/people?q=carol%40", &reader).await.1), ["carol"], "an e-mail's prefix");
    assert!(user_ids(&x.get("/api/v1/people?q=%25", &reader).await.1).is_empty(), "% is a character, not a wildcard");
    let (_, first) = x.get("/api/v1/people?limit=2", &reader).await;
    assert_eq!(user_ids(&first), ["alice", "bob"]);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = x.get(&format!("/api/v1/people?limit=2&cursor={cursor}"), &reader).await;
    assert_eq!((user_ids(&second), second["next_cursor"].clone()), (vec!["carol", "dave"], Value::Null));
    // Delete.
    let resp = x.http.delete(format!("{}/api/v1/people/bob", x.base)).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(x.get("/api/v1/people/bob", &reader).await.0, StatusCode::NOT_FOUND);
    let resp = x.http.delete(format!("{}/api/v1/people/bob", x.base)).bearer_auth(&admin).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_csv_import_is_all_or_nothing_and_a_second_import_updates() {
    let x = TestXdr::start().await;
    let (admin, _) = x.key("soc", &["admin"], false).await;
    let (reader, _) = x.key("soc", &["alerts_read"], false).await;
    let good = "User ID,Name,E-mail,Manager,Department,Last Training\n\
                alice,Alice Martin,alice@example.com,boss@example.com,Finance,2024-01-15\n\
                bob,\"Stone, Bob\",bob@example.com,boss@example.com,Sales,\n";
    let (status, v) = import(&x, &admin, good).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"rows": 2, "created": 2, "updated": 0}));
    let (_, bob) = x.get("/api/v1/people/bob", &reader).await;
    assert_eq!((bob["display_name"].as_str(), bob["training_date"].clone()), (Some("Stone, Bob"), Value::Null));

    // A file with bad lines: 422 naming each line and column, and nothing imported.
    let bad = "user_id,email,training_date\n\
               carol,carol@example.com,2023-05-01\n\
               dave,dave-at-example.com,2023-05-01\n\
               erin,erin@example.com,01/05/2023\n\
               ,frank@example.com,\n\
               carol,carol2@example.com,\n";
    let (status, e) = import(&x, &admin, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let fields: Vec<&str> = e["fields"].as_array().expect("fields").iter().map(|f| f["field"].as_str().unwrap_or("")).collect();
    assert_eq!(fields, ["line 3, email", "line 4, training_date", "line 5, user_id", "line 6, user_id"]);
    assert!(e["error"].as_str().is_some_and(|m| m.starts_with("nothing was imported")), "{e}");
    assert_eq!(x.count("SELECT COUNT(*) FROM people"), 2, "carol, on a good line, was not imported either");

    // A second import updates; the columns it lacks are kept.
    let again = "user_id,department\nalice,Risk\ncarol,Legal\n";
    let (status, v) = import(&x, &admin, again).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"rows": 2, "created": 1, "updated": 1})));
    let (_, alice) = x.get("/api/v1/people/alice", &reader).await;
    assert_eq!(
        (alice["department"].as_str(), alice["email"].as_str(), alice["training_date"].as_str()),
        (Some("Risk"), Some("alice@example.com"), Some("2024-01-15"))
    );

    // Not CSV, an unknown column, no user_id column.
    let (status, _) = x.post("/api/v1/people/import", Some(&admin), good.to_owned(), &[("content-type", "application/json")]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, e) = import(&x, &admin, "user_id,shoe_size\nalice,42\n").await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && e["error"].as_str().is_some_and(|m| m.contains("shoe_size")), "{e}");
    let (status, e) = import(&x, &admin, "name,email\nAlice,alice@example.com\n").await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && e["error"].as_str().is_some_and(|m| m.contains("user_id")), "{e}");
    // Only admin imports.
    assert_eq!(import(&x, &reader, good).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn reading_needs_alerts_read_writing_needs_admin_and_spaces_stay_apart() {
    let x = TestXdr::start().await;
    let (admin, _) = x.key("soc", &["admin"], false).await;
    let (reader, _) = x.key("soc", &["alerts_read"], false).await;
    let (other, _) = x.key("soc", &["events_read", "cases_read", "cases_write"], false).await;
    let (elsewhere, _) = x.key("other", &["admin", "alerts_read"], false).await;
    let body = json!({"display_name": "Alice"});
    assert_eq!(x.call_json("PUT", "/api/v1/people/alice", &admin, body.clone()).await.0, StatusCode::CREATED);
    assert_eq!(x.call_json("PUT", "/api/v1/people/alice", &reader, body.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(x.call_json("PATCH", "/api/v1/people/alice", &reader, body.clone()).await.0, StatusCode::FORBIDDEN);
    let resp = x.http.delete(format!("{}/api/v1/people/alice", x.base)).bearer_auth(&reader).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    for path in ["/api/v1/people", "/api/v1/people/alice"] {
        assert_eq!(x.get(path, &other).await.0, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(x.get(path, &reader).await.0, StatusCode::OK, "{path}");
    }
    // Another space sees none of it, and its own person of the same id is its own.
    assert_eq!(x.get("/api/v1/people/alice", &elsewhere).await.0, StatusCode::NOT_FOUND);
    assert!(user_ids(&x.get("/api/v1/people", &elsewhere).await.1).is_empty());
    assert_eq!(x.call_json("PATCH", "/api/v1/people/alice", &elsewhere, body.clone()).await.0, StatusCode::NOT_FOUND);
    let resp = x.http.delete(format!("{}/api/v1/people/alice", x.base)).bearer_auth(&elsewhere).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(x.call_json("PUT", "/api/v1/people/alice", &elsewhere, json!({"display_name": "Other Alice"})).await.0, StatusCode::CREATED);
    assert_eq!(x.get("/api/v1/people/alice", &reader).await.1["display_name"], "Alice");
}

/// An address the mailer (lettre) would refuse at send time is refused when stored.
#[tokio::test]
async fn an_address_the_mailer_refuses_is_not_kept() {
    let x = TestXdr::start().await;
    let (admin, _) = x.key("soc", &["admin"], false).await;
    let (status, e) = x.call_json("PUT", "/api/v1/people/alice", &admin, json!({"email": "a(b)@x.y"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["fields"][0]["field"], "email", "{e}");
    let (status, e) = import(
        &x,
        &admin,
        "user_id,manager_email
bob,a(b)@x.y
",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("manager_email"), "{e}");
    assert_eq!(x.call_json("PUT", "/api/v1/people/alice", &admin, json!({"email": "a.b+c@x.y"})).await.0, StatusCode::CREATED);
}

/// A firewall event by `user` (`interaction.policy_violated`).
fn violation(id: &str, user: &str) -> Value {
    json!({"id": id, "type": "interaction.policy_violated", "timestamp": "2026-05-01T10:00:00Z", "source": "noxys",
        "data": {"interaction": {"id": format!("i-{id}"), "platform_id": "deepseek", "user_id": user, "risk_score": 0.9,
            "decision": {"action": "block", "policy_name": "Unvetted platforms", "risk_level": "high"}}}})
}

#[tokio::test]
async fn alerts_and_events_show_the_directory_name_of_their_user() {
    let x = TestXdr::start().await;
    let (admin, _) = x.key("soc", &["admin"], false).await;
    let (key, _) = x.key("soc", &["alerts_read", "events_read", "events_write"], false).await;
    assert_eq!(x.call_json("PUT", "/api/v1/people/alice", &admin, json!({"display_name": "Alice Martin"})).await.0, StatusCode::CREATED);
    let events = json!([violation("e1", "alice"), violation("e2", "zoe")]);
    let (status, v) = x.post("/api/v1/events", Some(&key), events.to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, e1) = x.get("/api/v1/events/e1", &key).await;
    assert_eq!(status, StatusCode::OK, "{e1}");
    assert_eq!((e1["user_id"].as_str(), e1["user_name"].as_str()), (Some("alice"), Some("Alice Martin")));
    let (_, page) = x.get("/api/v1/events?from=2026-05-01T00:00:00Z&to=2026-05-02T00:00:00Z", &key).await;
    let names: Vec<(String, Value)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["id"].as_str().unwrap_or("").to_owned(), e["user_name"].clone()))
        .collect();
    assert_eq!(names, [("e2".to_owned(), Value::Null), ("e1".to_owned(), json!("Alice Martin"))], "zoe is not in the directory");

    // An alert about alice shows her name.
    let no = x.count("SELECT no FROM spaces WHERE name = 'soc'");
    let m = Match {
        space_no: no,
        rule_id: "r1".into(),
        rule_name: "Rule r1".into(),
        severity: 70,
        similarity_key: "alice".into(),
        title: "alice on deepseek".into(),
        user_id: Some("alice".into()),
        platform_id: Some("deepseek".into()),
        first_seen: 1_000_000,
        last_seen: 1_000_000,
        events: Vec::new(),
        details: json!({}),
        count: 1,
    };
    let ids = x.state.ids.clone();
    let outcome = x
        .state
        .store
        .write(move |c| {
            c.execute(
                "INSERT INTO rules (id, space_no, name, severity, kind, source, enabled, created_at, updated_at) \
                 VALUES ('r1', ?1, 'Rule r1', 70, 'pipe', 'risk_score > 0.9', 1, 0, 0)",
                [no],
            )
            .map_err(StoreError::from)?;
            vigie_xdr::alerts::apply(c, &ids, &m, 2_000_000)
        })
        .await
        .expect("apply");
    let Outcome::Raised { short_id, .. } = outcome else { panic!("{outcome:?}") };
    let (status, a) = x.get(&format!("/api/v1/alerts/{short_id}"), &key).await;
    assert_eq!((status, a["user_name"].as_str()), (StatusCode::OK, Some("Alice Martin")), "{a}");
    let (_, list) = x.get("/api/v1/alerts", &key).await;
    assert_eq!(list["items"][0]["user_name"], "Alice Martin");
}
