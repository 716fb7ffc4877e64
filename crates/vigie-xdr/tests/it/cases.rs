//! Cases over real HTTP: the workflow and read-only closed cases, alerts and events attached
//! (twice changes nothing), tasks, comments, a timeline of every change, templates rendering
//! the alert context (the default "AI Platform Violation" included), the domain functions the
//! responder and playbooks call, scopes (403) and other spaces (404).
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vigie_core::StoreError;
use vigie_xdr::alerts::{Match, Outcome};

/// The space's number, creating the space.
async fn space_no(x: &TestXdr, name: &str) -> i64 {
    x.state.keys.ensure_space(name).await.expect("space");
    x.count(&format!("SELECT no FROM spaces WHERE name = '{name}'"))
}

/// Raises an alert about `user` in space `no` (its rule created if needed): (id, short id).
async fn alert(x: &TestXdr, no: i64, user: &str, events: Vec<(i64, String)>) -> (String, String) {
    let m = Match {
        space_no: no,
        rule_id: format!("r-{no}"),
        rule_name: "Policy violation on unvetted AI platform".into(),
        severity: 70,
        similarity_key: user.into(),
        title: format!("{user} on deepseek"),
        user_id: Some(user.into()),
        platform_id: Some("deepseek".into()),
        first_seen: 1_000_000,
        last_seen: 1_000_000,
        events,
        details: json!({}),
        count: 1,
    };
    let ids = x.state.ids.clone();
    let outcome = x
        .state
        .store
        .write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO rules (id, space_no, name, severity, kind, source, enabled, created_at, updated_at) \
                 VALUES (?1, ?2, 'Policy violation on unvetted AI platform', 70, 'pipe', 'risk_score > 0.9', 1, 0, 0)",
                rusqlite::params![m.rule_id, no],
            )
            .map_err(StoreError::from)?;
            vigie_xdr::alerts::apply(c, &ids, &m, 2_000_000)
        })
        .await
        .expect("apply");
    match outcome {
        Outcome::Raised { alert_id, short_id } => (alert_id, short_id),
        other => panic!("expected a new alert, got {other:?}"),
    }
}

async fn create(x: &TestXdr, key: &str, body: Value) -> Value {
    let (status, v) = x.call_json("POST", "/api/v1/cases", key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn patch(x: &TestXdr, key: &str, case: &str, body: Value) -> (StatusCode, Value) {
    x.call_json("PATCH", &format!("/api/v1/cases/{case}"), key, body).await
}

/// The kinds of a case's timeline, oldest first (every page).
async fn kinds(x: &TestXdr, key: &str, case: &str) -> Vec<String> {
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, v) = x.get(&format!("/api/v1/cases/{case}/timeline?limit=3{q}"), key).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        out.extend(v["items"].as_array().expect("items").iter().map(|e| e["kind"].as_str().unwrap_or("?").to_owned()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_case_moves_forward_through_its_workflow_and_a_closed_case_is_read_only() {
    let x = TestXdr::start().await;
    let no = space_no(&x, "soc").await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write"], false).await;
    let (_, al) = alert(&x, no, "alice", Vec::new()).await;
    let case = create(&x, &key, json!({"title": "Data sent to DeepSeek", "severity": "high", "tags": ["ai", "ai"]})).await;
    let (id, short) = (case["id"].as_str().expect("id").to_owned(), case["short_id"].as_str().expect("short").to_owned());
    assert!(short.len() == 10 && short.starts_with("CA"), "{short}");
    assert_eq!(
        (case["status"].as_str(), case["priority"].as_str(), case["severity"].as_str(), case["tags"].clone()),
        (Some("open"), Some("medium"), Some("high"), json!(["ai"]))
    );
    // Read by id, by short id (any case).
    assert_eq!(x.get(&format!("/api/v1/cases/{}", short.to_lowercase()), &key).await.1["id"], id.as_str());
    // Changes, each recorded.
    let (status, v) = patch(&x, &key, &short, json!({"status": "in_progress", "assignee": "ana", "priority": "high"})).await;
    assert_eq!((status, v["status"].as_str(), v["assignee"].as_str()), (StatusCode::OK, Some("in_progress"), Some("ana")), "{v}");
    let (status, e) = patch(&x, &key, &short, json!({"status": "open"})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_transition")), "{e}");
    let (status, v) =
        patch(&x, &key, &id, json!({"title": "Card numbers sent to DeepSeek", "description": "See the alert.", "tags": ["pci"]})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _) = patch(&x, &key, &id, json!({"severity": "urgent"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, v) = patch(&x, &key, &id, json!({"status": "closed"})).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("closed")));
    assert!(v["closed_at"].is_string(), "{v}");
    // Closed: every change refused with 409 naming it, nothing recorded.
    let before = kinds(&x, &key, &id).await;
    let refused = [
        patch(&x, &key, &id, json!({"title": "again"})).await,
        patch(&x, &key, &id, json!({"status": "in_progress"})).await,
        x.call_json("POST", &format!("/api/v1/cases/{id}/comments"), &key, json!({"content": "late"})).await,
        x.call_json("POST", &format!("/api/v1/cases/{id}/tasks"), &key, json!({"title": "late"})).await,
        x.call_json("POST", &format!("/api/v1/cases/{id}/alerts"), &key, json!({"alerts": [al]})).await,
    ];
    for (status, e) in refused {
        assert_eq!((status, e["code"].as_str()), (StatusCode::CONFLICT, Some("case_closed")), "{e}");
        assert!(e["error"].as_str().is_some_and(|m| m.contains(&short) && m.contains("read-only")), "{e}");
    }
    let resp = x.http.delete(format!("{}/api/v1/cases/{id}/alerts/{al}", x.base)).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(kinds(&x, &key, &id).await, before);
    assert_eq!(before, ["created", "priority", "assignee", "status", "title", "description", "tags", "status"]);
    // open → closed directly.
    let other = create(&x, &key, json!({"title": "False alarm"})).await;
    let (status, v) = patch(&x, &key, other["id"].as_str().expect("id"), json!({"status": "closed"})).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("closed")));
    // Listing with filters and a cursor.
    for i in 0..3 {
        create(&x, &key, json!({"title": format!("Case {i}"), "priority": "low", "tags": ["batch"], "assignee": "bo"})).await;
    }
    let titles =
        |v: &Value| v["items"].as_array().expect("items").iter().map(|c| c["title"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>();
    let (_, v) = x.get("/api/v1/cases?tag=batch&limit=2", &key).await;
    assert_eq!(titles(&v), ["Case 2", "Case 1"]);
    let cursor = v["next_cursor"].as_str().expect("cursor").replace(':', "%3A");
    assert_eq!(titles(&x.get(&format!("/api/v1/cases?tag=batch&limit=2&cursor={cursor}"), &key).await.1), ["Case 0"]);
    assert_eq!(titles(&x.get("/api/v1/cases?status=closed&severity=high", &key).await.1), ["Card numbers sent to DeepSeek"]);
    assert_eq!(titles(&x.get("/api/v1/cases?priority=low&assignee=bo&limit=1", &key).await.1), ["Case 2"]);
    assert_eq!(x.get("/api/v1/cases?status=done", &key).await.0, StatusCode::BAD_REQUEST);
    assert!(titles(&x.get("/api/v1/cases?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z", &key).await.1).is_empty());
}

#[tokio::test]
async fn attaching_an_alert_twice_changes_nothing() {
    let x = TestXdr::start().await;
    let no = space_no(&x, "soc").await;
    let other_no = space_no(&x, "other").await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write", "events_write", "admin"], false).await;
    assert_eq!(x.call_json("PUT", "/api/v1/people/alice", &key, json!({"display_name": "Alice Martin"})).await.0, StatusCode::CREATED);
    let events = json!([{"id": "ev-1", "event_type": "login", "user_id": "alice"}, {"id": "ev-2", "event_type": "login"}]);
    assert_eq!(x.post("/api/v1/events", Some(&key), events.to_string(), &[]).await.0, StatusCode::OK);
    let (a1, s1) = alert(&x, no, "alice", Vec::new()).await;
    let (a2, _) = alert(&x, no, "bob", Vec::new()).await;
    let (foreign, foreign_short) = alert(&x, other_no, "alice", Vec::new()).await;
    let case = create(&x, &key, json!({"title": "Two alerts"})).await;
    let id = case["id"].as_str().expect("id").to_owned();
    let attach = |body: Value| {
        let (x, key, id) = (&x, &key, &id);
        async move { x.call_json("POST", &format!("/api/v1/cases/{id}/alerts"), key, body).await }
    };
    let (status, v) = attach(json!({"alerts": [s1.to_lowercase(), a2]})).await;
    assert_eq!((status, v.clone()), (StatusCode::OK, json!({"attached": [a1, a2], "unchanged": []})));
    let before = kinds(&x, &key, &id).await;
    let (status, v) = attach(json!({"alerts": [a1, s1]})).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"attached": [], "unchanged": [a1]})));
    assert_eq!(kinds(&x, &key, &id).await, before, "no timeline entry for an alert already attached");
    // Another space's alert (by id or short id) is not found: 422 naming it, nothing attached.
    let (status, e) = attach(json!({"alerts": ["AL00000000", foreign, foreign_short]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let fields: Vec<&str> = e["fields"].as_array().expect("fields").iter().map(|f| f["field"].as_str().unwrap_or("")).collect();
    assert_eq!(fields, ["alerts[0]", "alerts[1]", "alerts[2]"]);
    assert_eq!(attach(json!({"alerts": []})).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // The case shows its alerts with their people's names, and the people.
    let (_, d) = x.get(&format!("/api/v1/cases/{id}"), &key).await;
    let shown: Vec<(&str, Option<&str>)> =
        d["alerts"].as_array().expect("alerts").iter().map(|a| (a["user_id"].as_str().unwrap_or(""), a["user_name"].as_str())).collect();
    assert_eq!(shown, [("alice", Some("Alice Martin")), ("bob", None)]);
    assert_eq!(d["people"][0]["display_name"], "Alice Martin");
    assert_eq!(d["people"].as_array().map(Vec::len), Some(1));
    // Detach, then detaching again is 404.
    let url = format!("{}/api/v1/cases/{id}/alerts/{a2}", x.base);
    assert_eq!(x.http.delete(&url).bearer_auth(&key).send().await.expect("delete").status(), StatusCode::NO_CONTENT);
    assert_eq!(x.http.delete(&url).bearer_auth(&key).send().await.expect("delete").status(), StatusCode::NOT_FOUND);
    // Events, the same way.
    let (status, v) = x.call_json("POST", &format!("/api/v1/cases/{id}/events"), &key, json!({"events": ["ev-1", "ev-2", "ev-1"]})).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"attached": ["ev-1", "ev-2"], "unchanged": []})));
    let (status, v) = x.call_json("POST", &format!("/api/v1/cases/{id}/events"), &key, json!({"events": ["ev-2"]})).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"attached": [], "unchanged": ["ev-2"]})));
    let (status, _) = x.call_json("POST", &format!("/api/v1/cases/{id}/events"), &key, json!({"events": ["ev-9"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let url = format!("{}/api/v1/cases/{id}/events/ev-1", x.base);
    assert_eq!(x.http.delete(&url).bearer_auth(&key).send().await.expect("delete").status(), StatusCode::NO_CONTENT);
    assert_eq!(x.get(&format!("/api/v1/cases/{id}"), &key).await.1["event_ids"], json!(["ev-2"]));
    assert_eq!(
        kinds(&x, &key, &id).await,
        ["created", "alert_attached", "alert_attached", "alert_detached", "event_attached", "event_attached", "event_detached"]
    );
}

#[tokio::test]
async fn tasks_and_comments_are_kept_and_the_timeline_records_every_change() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write"], false).await;
    let case = create(&x, &key, json!({"title": "Review"})).await;
    let id = case["short_id"].as_str().expect("id").to_owned();
    let (status, t) = x
        .call_json(
            "POST",
            &format!("/api/v1/cases/{id}/tasks"),
            &key,
            json!({"title": "Call the manager", "assignee": "ana", "due_at": "2026-06-01T09:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!((t["done"].clone(), t["due_at"].as_str()), (json!(false), Some("2026-06-01T09:00:00Z")));
    let task = format!("/api/v1/cases/{id}/tasks/{}", t["id"].as_str().expect("task id"));
    let (status, t) = x.call_json("PATCH", &task, &key, json!({"done": true})).await;
    assert_eq!((status, t["done"].clone()), (StatusCode::OK, json!(true)));
    assert!(t["done_at"].is_string());
    let (_, t) = x
        .call_json("PATCH", &task, &key, json!({"done": false, "title": "Call the manager today", "due_at": null, "assignee": null}))
        .await;
    assert_eq!((t["done"].clone(), t["due_at"].clone(), t["assignee"].clone()), (json!(false), Value::Null, Value::Null), "{t}");
    assert_eq!(x.call_json("PATCH", &task, &key, json!({})).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(x.call_json("PATCH", &format!("/api/v1/cases/{id}/tasks/nope"), &key, json!({"done": true})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        x.call_json("POST", &format!("/api/v1/cases/{id}/tasks"), &key, json!({"title": " "})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, tasks) = x.get(&format!("/api/v1/cases/{id}/tasks"), &key).await;
    assert_eq!(tasks["items"][0]["title"], "Call the manager today");
    // Comments, paged oldest first.
    for i in 0..3 {
        let (status, c) = x.call_json("POST", &format!("/api/v1/cases/{id}/comments"), &key, json!({"content": format!("note {i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        assert!(c["author"].as_str().is_some_and(|a| a.starts_with("key:")));
    }
    let (status, _) = x.call_json("POST", &format!("/api/v1/cases/{id}/comments"), &key, json!({"content": "x", "author": "system"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, page) = x.get(&format!("/api/v1/cases/{id}/comments?limit=2"), &key).await;
    assert_eq!((page["items"][0]["content"].as_str(), page["items"][1]["content"].as_str()), (Some("note 0"), Some("note 1")));
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let (_, page) = x.get(&format!("/api/v1/cases/{id}/comments?limit=2&cursor={cursor}"), &key).await;
    assert_eq!(page["items"][0]["content"], "note 2");
    // The case shows them all, and the timeline every change with who made it.
    let (_, d) = x.get(&format!("/api/v1/cases/{id}"), &key).await;
    assert_eq!((d["tasks"].as_array().map(Vec::len), d["comments"].as_array().map(Vec::len)), (Some(1), Some(3)));
    assert_eq!(
        kinds(&x, &key, &id).await,
        ["created", "task_added", "task_done", "task_updated", "task_reopened", "comment", "comment", "comment"]
    );
    let updated = d["timeline"].as_array().expect("timeline").iter().find(|e| e["kind"] == "task_updated").expect("updated").clone();
    assert_eq!(updated["detail"]["title"], json!({"from": "Call the manager", "to": "Call the manager today"}));
    assert!(updated["detail"]["due_at"]["to"].is_null() && updated["detail"]["assignee"]["from"] == "ana", "{updated}");
    assert!(d["timeline"].as_array().expect("timeline").iter().all(|e| e["by"].as_str().is_some_and(|b| b.starts_with("key:"))));
    assert_eq!(x.get(&format!("/api/v1/cases/{id}/timeline?cursor=x"), &key).await.0, StatusCode::BAD_REQUEST);
}

/// An alert context built by hand, as `response::alert_context` gives it.
fn context() -> Value {
    json!({
        "alert": {"id": "a-1", "short_id": "AL12345678", "title": "Policy violation", "severity": "high", "user_id": "u-42",
                  "user_name": "Alice Martin", "platform_id": "deepseek", "occurrences": 1},
        "rule": {"id": "r-1", "name": "Policy violation on unvetted AI platform", "severity": "high"},
        "event": {"event_type": "interaction.policy_violated", "platform_id": "deepseek", "user_id": "u-42", "risk_score": 0.93,
                  "risk_level": "high", "classification_type": ["CREDIT_CARD", "IBAN"], "policy_name": "Unvetted platforms",
                  "policy_action": "block", "interaction_id": "int-7", "timestamp": "2026-05-01T10:00:00Z"},
        "person": {"user_id": "u-42", "display_name": "Alice Martin", "email": "alice@example.com", "manager_email": "boss@example.com",
                   "department": "Finance", "training_date": "2024-01-15", "training_days_ago": 472}
    })
}

#[tokio::test]
async fn a_template_renders_the_alert_context_into_the_case_and_its_tasks() {
    let x = TestXdr::start().await;
    let no = space_no(&x, "soc").await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write", "admin"], false).await;
    // The default template is installed in every space.
    let (status, list) = x.get("/api/v1/case-templates", &key).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let default = list.as_array().expect("templates").iter().find(|t| t["name"] == "AI Platform Violation").expect("default").clone();
    assert_eq!((default["builtin"].as_str(), default["severity"].as_str()), (Some("default-case-1"), Some("high")));
    // A template with a syntax error is refused with its position.
    let bad = json!({"name": "Broken", "title_pattern": "{{ alert.user_id", "tasks": [{"title": "ok"}, {"title": "{% if x %}"}]});
    let (status, e) = x.call_json("POST", "/api/v1/case-templates", &key, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let fields: Vec<(&str, &str)> = e["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| (f["field"].as_str().unwrap_or(""), f["message"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(fields.iter().map(|f| f.0).collect::<Vec<_>>(), ["title_pattern", "tasks[1].title"]);
    assert!(fields[0].1.starts_with("line 1, column "), "{fields:?}");
    // A template of our own.
    let mine = json!({"name": "Leak", "title_pattern": "Leak by {{ person.display_name }} ({{ event.risk_score }})",
        "description": "Types: {{ event.classification_type | join(', ') }}; manager {{ person.manager_email }}; missing: [{{ person.nothing }}]",
        "severity": "critical", "priority": "high", "tags": ["leak"],
        "tasks": [{"title": "Tell {{ person.manager_email }}", "due_in_days": 3, "assignee": "soc"}, {"title": "Close"}]});
    let (status, t) = x.call_json("POST", "/api/v1/case-templates", &key, mine.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(x.call_json("POST", "/api/v1/case-templates", &key, mine.clone()).await.0, StatusCode::CONFLICT);
    let case = create(&x, &key, json!({"template": "Leak", "context": context(), "priority": "low"})).await;
    assert_eq!(case["title"], "Leak by Alice Martin (0.93)");
    assert_eq!(case["description"], "Types: CREDIT_CARD, IBAN; manager boss@example.com; missing: []");
    assert_eq!(
        (case["severity"].as_str(), case["priority"].as_str(), case["template"].as_str(), case["tags"].clone()),
        (Some("critical"), Some("low"), Some("Leak"), json!(["leak"]))
    );
    let tasks = case["tasks"].as_array().expect("tasks");
    assert_eq!((tasks[0]["title"].as_str(), tasks[0]["assignee"].as_str()), (Some("Tell boss@example.com"), Some("soc")));
    let created = chrono::DateTime::parse_from_rfc3339(case["created_at"].as_str().expect("created")).expect("time");
    let due = chrono::DateTime::parse_from_rfc3339(tasks[0]["due_at"].as_str().expect("due")).expect("time");
    assert_eq!(due - created, chrono::Duration::days(3));
    assert!(tasks[1]["due_at"].is_null());
    // Unknown template, no title: named.
    let (status, e) = x.call_json("POST", "/api/v1/cases", &key, json!({"template": "Nope"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["fields"].as_array().expect("fields").iter().any(|f| f["field"] == "template"), "{e}");
    assert_eq!(x.call_json("POST", "/api/v1/cases", &key, json!({})).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // The default template over the hand-built context.
    let case = create(&x, &key, json!({"template": "AI Platform Violation", "context": context()})).await;
    assert_eq!(case["title"], "AI platform violation: Alice Martin on deepseek");
    let d = case["description"].as_str().expect("description");
    for want in [
        "0.93 (high)",
        "CREDIT_CARD, IBAN",
        "Unvetted platforms",
        "block",
        "int-7",
        "alice@example.com",
        "boss@example.com",
        "Finance",
        "2024-01-15 (472 days ago)",
        "over a year ago",
    ] {
        assert!(d.contains(want), "{want} missing from:\n{d}");
    }
    assert_eq!(case["tasks"].as_array().map(Vec::len), Some(4));
    // From an alert, without a context: the alert's own context (and the directory's name).
    assert_eq!(
        x.call_json("PUT", "/api/v1/people/carol", &key, json!({"display_name": "Carol Lee", "manager_email": "m@example.com"})).await.0,
        StatusCode::CREATED
    );
    let (alert_id, _) = alert(&x, no, "carol", Vec::new()).await;
    let case = create(&x, &key, json!({"template": "AI Platform Violation", "alerts": [alert_id]})).await;
    assert_eq!(case["title"], "AI platform violation: Carol Lee on deepseek");
    assert!(case["description"].as_str().is_some_and(|d| d.contains("m@example.com")));
    assert_eq!(case["alerts"][0]["user_name"], "Carol Lee");
    // Templates: read, replace, delete (by id or name).
    let tid = t["id"].as_str().expect("id");
    let mut changed = mine.clone();
    changed["severity"] = json!("low");
    let (status, v) = x.call_json("PUT", &format!("/api/v1/case-templates/{tid}"), &key, changed).await;
    assert_eq!((status, v["severity"].as_str()), (StatusCode::OK, Some("low")), "{v}");
    assert_eq!(x.get("/api/v1/case-templates/Leak", &key).await.1["severity"], "low");
    let resp = x.http.delete(format!("{}/api/v1/case-templates/Leak", x.base)).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(x.get(&format!("/api/v1/case-templates/{tid}"), &key).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_domain_functions_create_attach_and_add_tasks_inside_the_callers_transaction() {
    let x = TestXdr::start().await;
    let no = space_no(&x, "soc").await;
    let (alert_id, short) = alert(&x, no, "alice", Vec::new()).await;
    let ids = x.state.ids.clone();
    let (aid, sid) = (alert_id.clone(), short.clone());
    let (case_id, first, second, found, task, none) = x
        .state
        .store
        .write(move |c| {
            let spec = vigie_xdr::cases::NewCaseSpec {
                template: Some("AI Platform Violation".into()),
                alerts: vec![aid.clone()],
                ..Default::default()
            };
            let case = vigie_xdr::cases::create(c, &ids, no, spec, "rule:r-1", 5_000_000)?;
            let first = vigie_xdr::cases::attach_alert(c, no, &case.id, &sid, "rule:r-1", 6_000_000)?;
            let other = vigie_xdr::cases::create(
                c,
                &ids,
                no,
                vigie_xdr::cases::NewCaseSpec { title: Some("Other".into()), ..Default::default() },
                "system",
                6_000_000,
            )?;
            let second = vigie_xdr::cases::attach_alert(c, no, &other.short_id, &aid, "rule:r-1", 7_000_000)?;
            let found = vigie_xdr::cases::open_case_of_alert(c, no, &sid)?;
            let task = vigie_xdr::cases::add_task(
                c,
                &ids,
                no,
                &case.id,
                vigie_xdr::cases::NewTask { title: "Security review".into(), due_at_us: Some(9_000_000), ..Default::default() },
                "playbook:p-1",
                8_000_000,
            )?;
            let none = vigie_xdr::cases::open_case_of_alert(c, no + 1, &sid)?;
            Ok::<_, vigie_xdr::cases::CaseError>((case.id, first, second, found, task, none))
        })
        .await
        .expect("domain functions");
    assert!(!first, "the case made with the alert already holds it");
    assert!(second, "another case takes it");
    assert!(found.is_some() && none.is_none());
    assert_eq!(task.due_at.map(|t| t.timestamp_micros()), Some(9_000_000));
    assert_eq!(x.count("SELECT COUNT(*) FROM response_events WHERE kind = 'case.created'"), 2);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM response_events WHERE kind = 'case.created' AND subject = '{case_id}'")), 1);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM case_tasks WHERE case_id = '{case_id}'")), 5, "4 from the template, 1 added");
    // A closed case is not the open case of its alert, and refuses attachments.
    let closed = x
        .state
        .store
        .write(move |c| {
            c.execute("UPDATE cases SET status = 'closed'", []).map_err(StoreError::from)?;
            let found = vigie_xdr::cases::open_case_of_alert(c, no, &alert_id)?;
            let refused = vigie_xdr::cases::attach_alert(c, no, &case_id, &alert_id, "x", 1);
            Ok::<_, vigie_xdr::cases::CaseError>((found, matches!(refused, Err(vigie_xdr::cases::CaseError::Closed(_)))))
        })
        .await
        .expect("closed");
    assert_eq!(closed, (None, true));
}

#[tokio::test]
async fn every_case_endpoint_needs_its_scope_and_another_spaces_cases_are_not_found() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write"], false).await;
    let (reader, _) = x.key("soc", &["cases_read"], false).await;
    let (none, _) = x.key("soc", &["alerts_read", "alerts_write"], false).await;
    let (elsewhere, _) = x.key("other", &["cases_read", "cases_write"], false).await;
    let case = create(&x, &key, json!({"title": "Ours"})).await;
    let id = case["id"].as_str().expect("id").to_owned();
    let (_, t) = x.call_json("POST", &format!("/api/v1/cases/{id}/tasks"), &key, json!({"title": "t"})).await;
    let task = t["id"].as_str().expect("task").to_owned();
    let (_, tpl) = x.get("/api/v1/case-templates/AI%20Platform%20Violation", &key).await;
    let tpl_id = tpl["id"].as_str().expect("template").to_owned();
    let reads = [
        "/api/v1/cases".to_owned(),
        format!("/api/v1/cases/{id}"),
        format!("/api/v1/cases/{id}/tasks"),
        format!("/api/v1/cases/{id}/comments"),
        format!("/api/v1/cases/{id}/timeline"),
        "/api/v1/case-templates".to_owned(),
        format!("/api/v1/case-templates/{tpl_id}"),
    ];
    for path in &reads {
        assert_eq!(x.get(path, &none).await.0, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(x.get(path, &reader).await.0, StatusCode::OK, "{path}");
    }
    let spec = json!({"name": "T", "title_pattern": "t"});
    let writes: Vec<(&str, String, Value)> = vec![
        ("POST", "/api/v1/cases".into(), json!({"title": "x"})),
        ("PATCH", format!("/api/v1/cases/{id}"), json!({"title": "x"})),
        ("POST", format!("/api/v1/cases/{id}/alerts"), json!({"alerts": ["AL00000000"]})),
        ("DELETE", format!("/api/v1/cases/{id}/alerts/AL00000000"), Value::Null),
        ("POST", format!("/api/v1/cases/{id}/events"), json!({"events": ["e"]})),
        ("DELETE", format!("/api/v1/cases/{id}/events/e"), Value::Null),
        ("POST", format!("/api/v1/cases/{id}/tasks"), json!({"title": "x"})),
        ("PATCH", format!("/api/v1/cases/{id}/tasks/{task}"), json!({"done": true})),
        ("POST", format!("/api/v1/cases/{id}/comments"), json!({"content": "x"})),
        ("POST", "/api/v1/case-templates".into(), spec.clone()),
        ("PUT", format!("/api/v1/case-templates/{tpl_id}"), spec.clone()),
        ("DELETE", format!("/api/v1/case-templates/{tpl_id}"), Value::Null),
    ];
    for (method, path, body) in &writes {
        assert_eq!(x.call_json(method, path, &reader, body.clone()).await.0, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(x.call_json(method, path, &none, body.clone()).await.0, StatusCode::FORBIDDEN, "{method} {path}");
    }
    // Another space: every read and change of our case, task or template is 404; its list is empty.
    for path in reads.iter().filter(|p| p.contains(&id) || p.contains(&tpl_id)) {
        assert_eq!(x.get(path, &elsewhere).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    for (method, path, body) in writes.iter().filter(|(_, p, _)| p.contains(&id) || p.contains(&tpl_id)) {
        assert_eq!(x.call_json(method, path, &elsewhere, body.clone()).await.0, StatusCode::NOT_FOUND, "{method} {path}");
    }
    assert_eq!(x.get("/api/v1/cases", &elsewhere).await.1["items"], json!([]));
    let (_, theirs) = x.get("/api/v1/case-templates", &elsewhere).await;
    assert!(theirs.as_array().expect("templates").iter().all(|t| t["id"] != tpl_id.as_str()), "each space has its own default template");
    assert_eq!(x.get(&format!("/api/v1/cases/{id}"), &key).await.1["title"], "Ours", "unchanged");
    assert_eq!(x.count("SELECT COUNT(*) FROM cases"), 1);
}

#[tokio::test]
async fn templates_that_could_exhaust_memory_are_refused_when_saved() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write", "playbooks_read", "playbooks_write"], false).await;
    let bombs = [
        ("{% for i in range(100) %}{{ \"x\" * 99999999 }}{% endfor %}", "`*`"),
        ("{% set x = 'xx' %}{% set x = x ~ x %}{% set x = x ~ x %}{% set x = x ~ x %}{{ x }}", "{{ a }}{{ b }}"),
        ("{% for i in range(100000) %}{% if i < 0 %}x{% endif %}{% endfor %}", "fuel"),
    ];
    for (bomb, teaches) in bombs {
        let spec = json!({"name": "Bomb", "title_pattern": "Case", "description": bomb});
        let (status, e) = x.call_json("POST", "/api/v1/case-templates", &key, spec).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bomb}: {e}");
        assert_eq!(e["fields"][0]["field"], "description", "{e}");
        assert!(e["fields"][0]["message"].as_str().is_some_and(|m| m.contains(teaches)), "{teaches}: {e}");
    }
    // A star inside a string, or in a comment, is text.
    let fine = json!({"name": "Stars", "title_pattern": "{{ alert.title | default('*') }} {# a * b #}"});
    let (status, t) = x.call_json("POST", "/api/v1/case-templates", &key, fine).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");

    let yaml = "name: bomb\ntrigger: {type: manual}\nsteps:\n  - {id: one, type: extract, set: {a: '{% set x = \"ab\" %}{% set x = x ~ x %}{{ x }}'}}\n";
    let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("steps[0].set.a") && body.to_string().contains("{{ a }}{{ b }}"), "{body:#}");
    let yaml = "name: star\ntrigger: {type: manual}\nsteps:\n  - {id: one, type: extract, set: {a: \"{{ run.id | default('*') }}\"}}\n";
    let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    x.stop().await;
}

#[tokio::test]
async fn a_template_named_like_another_ones_id_does_not_make_delete_remove_both() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write"], false).await;
    let (status, first) = x.call_json("POST", "/api/v1/case-templates", &key, json!({"name": "First", "title_pattern": "One"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().expect("id").to_owned();
    let (status, twin) = x.call_json("POST", "/api/v1/case-templates", &key, json!({"name": id, "title_pattern": "Two"})).await;
    assert_eq!(status, StatusCode::CREATED, "{twin}");
    let (status, got) = x.get(&format!("/api/v1/case-templates/{id}"), &key).await;
    assert_eq!((status, got["title_pattern"].as_str()), (StatusCode::OK, Some("One")), "the id wins over a name");
    let (status, _) = x.call_json("DELETE", &format!("/api/v1/case-templates/{id}"), &key, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, got) = x.get(&format!("/api/v1/case-templates/{id}"), &key).await;
    assert_eq!((status, got["title_pattern"].as_str()), (StatusCode::OK, Some("Two")), "the one named like the id is still there");
    x.stop().await;
}

#[tokio::test]
async fn cases_can_be_listed_by_an_alert_they_hold_given_by_id_or_short_id() {
    let x = TestXdr::start().await;
    let no = space_no(&x, "soc").await;
    let other_no = space_no(&x, "other").await;
    let (key, _) = x.key("soc", &["cases_read", "cases_write"], false).await;
    let (a1, s1) = alert(&x, no, "alice", Vec::new()).await;
    let (a2, _) = alert(&x, no, "bob", Vec::new()).await;
    let (foreign, _) = alert(&x, other_no, "carol", Vec::new()).await;
    let mut ids = Vec::new();
    for (title, alerts) in [("Both", vec![a1.clone(), a2.clone()]), ("Alice only", vec![a1.clone()]), ("Bob only", vec![a2.clone()])] {
        let case = create(&x, &key, json!({"title": title})).await;
        let id = case["id"].as_str().expect("id").to_owned();
        let (status, v) = x.call_json("POST", &format!("/api/v1/cases/{id}/alerts"), &key, json!({"alerts": alerts})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        ids.push(id);
    }
    create(&x, &key, json!({"title": "No alert"})).await;
    let titles = |v: &Value| -> Vec<String> {
        v["items"].as_array().expect("items").iter().map(|c| c["title"].as_str().unwrap_or("").to_owned()).collect()
    };
    // Newest first, only the cases holding the alert; the short id in any case works too.
    assert_eq!(titles(&x.get(&format!("/api/v1/cases?alert_id={a1}"), &key).await.1), ["Alice only", "Both"]);
    assert_eq!(titles(&x.get(&format!("/api/v1/cases?alert_id={}", s1.to_lowercase()), &key).await.1), ["Alice only", "Both"]);
    assert_eq!(titles(&x.get(&format!("/api/v1/cases?alert_id={a2}&limit=1"), &key).await.1), ["Bob only"]);
    // Combined with the other filters.
    let (status, v) = x.call_json("PATCH", &format!("/api/v1/cases/{}", ids[0]), &key, json!({"priority": "high"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(titles(&x.get(&format!("/api/v1/cases?alert_id={a2}&priority=high"), &key).await.1), ["Both"]);
    // An alert of another space, or one no case holds, gives none; a value that is no alert
    // reference is refused, naming the parameter.
    assert!(titles(&x.get(&format!("/api/v1/cases?alert_id={foreign}"), &key).await.1).is_empty());
    assert!(titles(&x.get("/api/v1/cases?alert_id=AL00000000", &key).await.1).is_empty());
    let (status, e) = x.get("/api/v1/cases?alert_id=nope", &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["fields"][0]["field"], "alert_id", "{e}");
}
