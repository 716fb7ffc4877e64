//! Dashboards: the default "AI usage" dashboard of a new space, its answers over the firewall's
//! events (equal to the plain search's), the page and its refresh fragment, the API (create,
//! list, replace, delete, validation with field paths), scopes and isolation between spaces.
use crate::TestXdr;
use crate::console::{Browser, logged_in};
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A firewall envelope of `kind` about an interaction of `user` on `platform`, `ago` before now.
fn event(id: &str, kind: &str, ago: Duration, user: &str, platform: &str, risk: f64, policy: Option<&str>) -> Value {
    let mut decision = json!({"action": "log", "risk_level": if risk > 0.9 { "critical" } else { "high" }});
    if let Some(p) = policy {
        decision = json!({"action": "block", "policy_name": p, "risk_level": "high"});
    }
    let at = (Utc::now() - ago).to_rfc3339();
    json!({"id": id, "type": kind, "timestamp": at, "source": "noxys", "tenant_id": "t1",
        "data": {"interaction": {"id": format!("i-{id}"), "platform_id": platform, "user_id": user, "risk_score": risk,
            "risk_level": "high", "classification_count": 1, "classifications": [{"type": "IBAN", "value": "****"}],
            "direction": "outbound", "interaction_type": "prompt", "decision": decision}}})
}

const PV: &str = "interaction.policy_violated";
const HR: &str = "interaction.high_risk";
const CR: &str = "interaction.created";

/// What the firewall sends about a day of interactions (and one event from elsewhere).
fn day_of_traffic() -> Vec<Value> {
    let m = Duration::minutes;
    vec![
        event("v1", PV, m(10), "alice", "chatgpt", 0.5, Some("Block IBAN")),
        event("v2", PV, m(70), "alice", "chatgpt", 0.5, Some("Block IBAN")),
        event("v3", PV, m(130), "alice", "deepseek", 0.5, Some("Block IBAN")),
        event("v4", PV, m(200), "bob", "deepseek", 0.6, Some("Coach on secrets")),
        event("h1", HR, m(15), "alice", "chatgpt", 0.95, None),
        event("h2", HR, m(300), "carol", "deepseek", 0.85, None),
        event("h3", HR, m(400), "carol", "deepseek", 0.75, None),
        event("c1", CR, m(20), "dave", "chatgpt", 0.1, None),
        event("c2", CR, m(25), "dave", "gemini", 0.1, None),
        // Older than a day: in 7 d and 30 d only.
        event("v5", PV, Duration::days(3), "bob", "mistral", 0.5, Some("Coach on secrets")),
        event("h4", HR, Duration::days(20), "erin", "mistral", 0.99, None),
        // Not the firewall's.
        json!({"id": "x1", "event_type": "login", "timestamp": (Utc::now() - m(5)).to_rfc3339(), "source": "edr", "user_id": "alice",
            "platform_id": "vpn", "risk_score": 0.99}),
    ]
}

async fn post_events(x: &TestXdr, space: &str, events: Vec<Value>) {
    let (key, _) = x.key(space, &["events_write"], false).await;
    let (status, body) = x.post("/api/v1/events", Some(&key), Value::Array(events).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn default_dashboard(b: &Browser) -> Value {
    let (status, list) = b.api("GET", "/api/v1/dashboards", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    items(&list).into_iter().find(|d| d["is_default"] == true).expect("a default dashboard")
}

/// The rows of widget `i` of a data answer.
fn rows(data: &Value, i: usize) -> Vec<Value> {
    assert!(data["widgets"][i]["error"].is_null(), "widget {i}: {}", data["widgets"][i]);
    data["widgets"][i]["rows"].as_array().cloned().unwrap_or_default()
}

fn total(rows: &[Value]) -> u64 {
    rows.iter().filter_map(|r| r["count"].as_u64()).sum()
}

#[tokio::test]
async fn a_new_space_has_the_ai_usage_dashboard_with_its_four_widgets() {
    let (_x, b, _) = logged_in().await;
    let (status, list) = b.api("GET", "/api/v1/dashboards", None).await;
    assert_eq!(status, StatusCode::OK);
    let all = items(&list);
    assert_eq!(all.len(), 1, "{list}");
    let d = &all[0];
    assert_eq!((d["name"].as_str(), d["is_default"].as_bool(), d["builtin"].as_str()), (Some("AI usage"), Some(true), Some("ai-usage")));
    let renders: Vec<&str> = d["widgets"].as_array().expect("widgets").iter().filter_map(|w| w["render"].as_str()).collect();
    assert_eq!(renders, ["timeseries", "number", "bars", "table"]);
    assert!(d["widgets"][0]["query"].as_str().expect("query").starts_with("source == \"noxys\""));
    // Its page is the space's home, with the four widgets and the range switch.
    let (status, html) = b.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>AI usage</h1>"), "{html}");
    assert_eq!(html.matches("<section class=\"widget").count(), 4, "{html}");
    assert!(html.contains("href=\"/?range=7d\"") && html.contains("aria-current=\"true\">Last 24 h"), "{html}");
    // No events yet: each chart says what to do; the number says 0.
    assert!(html.contains("No events in this range.") && html.contains("Connect the AI firewall's webhook"), "{html}");
    assert!(html.contains("<div class=\"big\">0</div>"), "{html}");
}

#[tokio::test]
async fn the_default_dashboard_counts_the_firewall_events_and_its_page_shows_them() {
    let (x, b, _) = logged_in().await;
    post_events(&x, "acme", day_of_traffic()).await;
    let (status, _) = b.api("PUT", "/api/v1/people/alice", Some(json!({"display_name": "Alice Martin"}))).await;
    assert!(status.is_success(), "{status}");
    let d = default_dashboard(&b).await;
    let id = d["id"].as_str().expect("id");

    let (status, data) = b.api("GET", &format!("/api/v1/dashboards/{id}/data?range=24h"), None).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert_eq!(data["range"], "24h");
    // Volume: the interaction events of the day by platform (4 violations, 3 high risk, 2 created).
    let volume = rows(&data, 0);
    assert_eq!(total(&volume), 9, "{volume:?}");
    let on = |p: &str| total(&volume.iter().filter(|r| r["platform_id"] == p).cloned().collect::<Vec<_>>());
    assert_eq!((on("chatgpt"), on("deepseek"), on("gemini"), on("vpn")), (4, 4, 1, 0));
    assert!(volume.iter().all(|r| r["timestamp"].as_str().is_some_and(|t| t.ends_with(":00:00Z") || t.ends_with(":00:00.000000Z"))));
    // High risk above 0.8 (h3 is 0.75).
    assert_eq!(total(&rows(&data, 1)), 2);
    // Violations by policy, most first.
    let bars = rows(&data, 2);
    assert_eq!(bars[0]["policy_name"], "Block IBAN");
    assert_eq!((bars[0]["count"].as_u64(), bars[1]["count"].as_u64()), (Some(3), Some(1)));
    // The people behind the violations.
    let people = rows(&data, 3);
    assert_eq!((people[0]["user_id"].as_str(), people[0]["count"].as_u64()), (Some("alice"), Some(3)));
    assert_eq!((people[1]["user_id"].as_str(), people[1]["count"].as_u64()), (Some("bob"), Some(1)));

    // Over 7 days, bob's older violation counts too, and the bins are still an hour.
    let (_, week) = b.api("GET", &format!("/api/v1/dashboards/{id}/data?range=7d"), None).await;
    assert_eq!(total(&rows(&week, 3)), 5);
    assert_eq!(week["widgets"][0]["bin_seconds"], 3600);
    // Over 30 days the chart's bins widen to 6 hours (at most 180 points).
    let (_, month) = b.api("GET", &format!("/api/v1/dashboards/{id}/data?range=30d"), None).await;
    assert_eq!(month["widgets"][0]["bin_seconds"], 21_600);
    assert!(month["widgets"][0]["query"].as_str().expect("query").contains("bin(timestamp, 6h)"));
    assert_eq!(total(&rows(&month, 1)), 3);

    // The page draws the same numbers.
    let (status, html) = b.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<div class=\"big\">2</div>"), "{html}");
    assert!(html.contains("<span class=\"bar-label\" title=\"Block IBAN\">Block IBAN</span><span class=\"bar-value\">3</span>"), "{html}");
    assert!(html.contains("<a href=\"/people/alice\">Alice Martin (alice)</a>"), "{html}");
    assert!(html.contains("<i class=\"k1\"></i>chatgpt") || html.contains("<i class=\"k1\"></i>deepseek"), "{html}");
    assert!(html.contains("role=\"img\"") && !html.contains("No events in this range."), "{html}");
    // Refreshed every minute, and the fragment it reloads is the widgets alone.
    let refresh = format!("data-refresh=\"/dashboards/{id}/widgets?range=24h\" data-every=\"60\"");
    assert!(html.contains(&refresh) && html.contains("data-refresh-toggle"), "{html}");
    let (status, fragment) = b.page(&format!("/dashboards/{id}/widgets?range=30d")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fragment.matches("<section class=\"widget").count(), 4, "{fragment}");
    assert!(!fragment.contains("<html") && fragment.contains("<div class=\"big\">3</div>"), "{fragment}");
    assert!(fragment.contains("Last 30 d"), "{fragment}");
    // An unknown range is refused, on the page as in the API.
    assert_eq!(b.page("/?range=1y").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(b.api("GET", &format!("/api/v1/dashboards/{id}/data?range=1y"), None).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_dashboard_answers_equal_the_plain_search_over_every_range() {
    let (x, b, _) = logged_in().await;
    let mut events = day_of_traffic();
    for k in 0..60 {
        let kind = [PV, HR, CR][k % 3];
        let ago = Duration::hours(k as i64 * 11 + 1);
        events.push(event(
            &format!("s{k}"),
            kind,
            ago,
            ["u1", "u2", "u3"][k % 3],
            ["chatgpt", "claude"][k % 2],
            0.7 + (k % 4) as f64 * 0.1,
            Some("P"),
        ));
    }
    post_events(&x, "acme", events).await;
    let id = default_dashboard(&b).await["id"].as_str().expect("id").to_owned();
    for range in ["24h", "7d", "30d"] {
        let (status, data) = b.api("GET", &format!("/api/v1/dashboards/{id}/data?range={range}"), None).await;
        assert_eq!(status, StatusCode::OK, "{data}");
        for (i, w) in data["widgets"].as_array().expect("widgets").iter().enumerate() {
            let (status, plain) = b
                .api("POST", "/api/v1/events/search", Some(json!({"q": w["query"], "from": data["from"], "to": data["to"], "limit": 10})))
                .await;
            assert_eq!(status, StatusCode::OK, "{plain}");
            assert_eq!(w["rows"], plain["items"], "widget {i} over {range}");
            assert_eq!(w["columns"], plain["columns"], "widget {i} over {range}");
            assert!(!rows(&data, i).is_empty() || i == 1, "widget {i} over {range} has rows");
        }
    }
}

#[tokio::test]
async fn a_widget_whose_query_does_not_parse_is_refused_with_its_field_path_and_position() {
    let (_x, b, _) = logged_in().await;
    let body = json!({"name": "Mine", "widgets": [
        {"title": "Fine", "query": "| stats count", "render": "number"},
        {"title": "Broken", "query": "event_type == AND x", "render": "table"},
        {"title": "Unfit", "query": "| stats count by user_id", "render": "timeseries"},
    ]});
    let (status, err) = b.api("POST", "/api/v1/dashboards", Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let fields: Vec<(&str, &str)> = err["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| (f["field"].as_str().unwrap_or(""), f["message"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(fields.len(), 2, "{err}");
    assert_eq!(fields[0].0, "widgets.1.query");
    assert!(fields[0].1.starts_with("the query does not parse at 1:15: "), "{}", fields[0].1);
    assert_eq!(fields[1].0, "widgets.2.query");
    assert!(fields[1].1.contains("bin(timestamp"), "{}", fields[1].1);
    // The editor has an input of that name for the error to show under.
    let id = default_dashboard(&b).await["id"].as_str().expect("id").to_owned();
    let (status, html) = b.page(&format!("/dashboards/{id}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"widgets.1.query\"") && html.contains("<label for=\"w1-query\">Query</label>"), "{html}");
    assert!(html.contains("data-api=\"/api/v1/dashboards/") && html.contains("data-method=\"PUT\""), "{html}");
    // More than 24 widgets is refused too.
    let many: Vec<Value> = (0..25).map(|i| json!({"title": format!("W{i}"), "query": "| stats count", "render": "number"})).collect();
    let (status, err) = b.api("POST", "/api/v1/dashboards", Some(json!({"name": "Big", "widgets": many}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["fields"][0]["field"], "widgets");
}

#[tokio::test]
async fn dashboards_are_created_listed_replaced_and_deleted() {
    let (_x, b, _) = logged_in().await;
    let mine = json!({"name": "<script>x</script>", "description": "Platforms", "default_range": "7d", "refresh_seconds": 0,
        "widgets": [{"title": "By platform", "query": "| stats count by platform_id | sort -count", "render": "bars", "size": "full",
            "options": {"limit": 5}}]});
    let (status, created) = b.api("POST", "/api/v1/dashboards", Some(mine.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!((created["default_range"].as_str(), created["is_default"].as_bool()), (Some("7d"), Some(false)));
    assert_eq!(b.api("POST", "/api/v1/dashboards", Some(mine)).await.0, StatusCode::CONFLICT);

    // Listed by name, a page at a time.
    let (_, first) = b.api("GET", "/api/v1/dashboards?limit=1", None).await;
    assert_eq!(items(&first).len(), 1);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, second) = b.api("GET", &format!("/api/v1/dashboards?limit=1&cursor={}", vigie_web::form::encode(&cursor)), None).await;
    assert_eq!(items(&second).len(), 1);
    assert!(second["next_cursor"].is_null());
    assert_ne!(items(&first)[0]["id"], items(&second)[0]["id"]);

    // Its page opens on its range, the name escaped, with the switch to the other dashboard.
    let (status, html) = b.page(&format!("/dashboards/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>&#60;script&#62;x&#60;/script&#62;</h1>") && !html.contains("<script>x</script>"), "{html}");
    assert!(html.contains("aria-current=\"true\">Last 7 d") && html.contains(">AI usage</a>"), "{html}");
    assert!(html.contains("class=\"widget span-12\"") && !html.contains("data-refresh=\""), "{html}");

    // Replaced with a GET's body (read-only fields and all): now the home page.
    let (_, mut got) = b.api("GET", &format!("/api/v1/dashboards/{id}"), None).await;
    got["name"] = json!("Platforms");
    got["is_default"] = json!(true);
    let (status, replaced) = b.api("PUT", &format!("/api/v1/dashboards/{id}"), Some(got)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!((replaced["name"].as_str(), replaced["is_default"].as_bool()), (Some("Platforms"), Some(true)));
    assert_eq!(default_dashboard(&b).await["id"], id.as_str());
    let (_, home) = b.page("/").await;
    assert!(home.contains("<h1>Platforms</h1>"), "{home}");

    // Deleted: gone, and the home page is the first left.
    assert_eq!(b.api("DELETE", &format!("/api/v1/dashboards/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(b.api("GET", &format!("/api/v1/dashboards/{id}"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.api("DELETE", &format!("/api/v1/dashboards/{id}"), None).await.0, StatusCode::NOT_FOUND);
    let (_, home) = b.page("/").await;
    assert!(home.contains("<h1>AI usage</h1>"), "{home}");
    // The editor for a new one.
    let (status, new) = b.page("/dashboards/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(new.contains("data-api=\"/api/v1/dashboards\" data-method=\"POST\"") && new.contains("name=\"widgets.0.query\""), "{new}");
}

#[tokio::test]
async fn reading_needs_events_read_and_changing_needs_admin() {
    let x = TestXdr::start().await;
    let (alerts_only, _) = x.key("acme", &["alerts_read"], false).await;
    assert_eq!(x.get("/api/v1/dashboards", &alerts_only).await.0, StatusCode::FORBIDDEN);
    let (reader, _) = x.key("acme", &["events_read"], false).await;
    let (status, list) = x.get("/api/v1/dashboards", &reader).await;
    assert_eq!(status, StatusCode::OK);
    let id = items(&list)[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(x.get(&format!("/api/v1/dashboards/{id}/data"), &alerts_only).await.0, StatusCode::FORBIDDEN);
    assert_eq!(x.get(&format!("/api/v1/dashboards/{id}/data"), &reader).await.0, StatusCode::OK);
    let body = json!({"name": "Mine", "widgets": []});
    assert_eq!(x.call_json("POST", "/api/v1/dashboards", &reader, body.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(x.call_json("DELETE", &format!("/api/v1/dashboards/{id}"), &reader, Value::Null).await.0, StatusCode::FORBIDDEN);
    // The reader's page shows the dashboard without the editor's links, and no editor.
    let b = Browser::login(&x.base, &reader).await;
    let (status, html) = b.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>AI usage</h1>") && !html.contains("/edit\"") && !html.contains("/dashboards/new"), "{html}");
    assert_eq!(b.page(&format!("/dashboards/{id}/edit")).await.0, StatusCode::FORBIDDEN);
    // With the cookie, a change needs the CSRF token (and the admin scope).
    let (admin, _) = x.key("acme", &["events_read", "admin"], false).await;
    let a = Browser::login(&x.base, &admin).await;
    let r = a.http.post(format!("{}/api/v1/dashboards", x.base)).json(&body).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(a.api("POST", "/api/v1/dashboards", Some(body)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_space_sees_only_its_own_dashboards_and_events() {
    let x = TestXdr::start().await;
    let (a, _) = x.key("space-a", &["events_read", "admin"], false).await;
    let (b, _) = x.key("space-b", &["events_read", "admin"], false).await;
    post_events(&x, "space-a", day_of_traffic()).await;
    let (_, created) = x.call_json("POST", "/api/v1/dashboards", &a, json!({"name": "A only", "widgets": []})).await;
    let a_id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(x.get(&format!("/api/v1/dashboards/{a_id}"), &b).await.0, StatusCode::NOT_FOUND);
    assert_eq!(x.get(&format!("/api/v1/dashboards/{a_id}/data"), &b).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        x.call_json("PUT", &format!("/api/v1/dashboards/{a_id}"), &b, json!({"name": "Taken", "widgets": []})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(x.call_json("DELETE", &format!("/api/v1/dashboards/{a_id}"), &b, Value::Null).await.0, StatusCode::NOT_FOUND);
    let (_, list) = x.get("/api/v1/dashboards", &b).await;
    let names: Vec<&str> = list["items"].as_array().expect("items").iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["AI usage"]);
    // B's default dashboard counts none of A's events; A's counts them.
    let b_id = list["items"][0]["id"].as_str().expect("id").to_owned();
    let (_, data) = x.get(&format!("/api/v1/dashboards/{b_id}/data"), &b).await;
    assert_eq!(total(&rows(&data, 0)), 0);
    assert_eq!(total(&rows(&data, 1)), 0);
    let (_, list_a) = x.get("/api/v1/dashboards", &a).await;
    let default_a = items(&list_a).into_iter().find(|d| d["is_default"] == true).expect("default");
    let (_, data) = x.get(&format!("/api/v1/dashboards/{}/data", default_a["id"].as_str().expect("id")), &a).await;
    assert_eq!(total(&rows(&data, 0)), 9);
}

#[tokio::test]
async fn a_widget_that_fails_shows_its_error_and_the_others_still_draw() {
    let (x, b, _) = logged_in().await;
    post_events(&x, "acme", day_of_traffic()).await;
    let id = default_dashboard(&b).await["id"].as_str().expect("id").to_owned();
    // A widget stored by an older version that no longer parses.
    let db = rusqlite::Connection::open(x.dir.path().join("xdr.db")).expect("db");
    db.busy_timeout(std::time::Duration::from_secs(5)).expect("timeout");
    let widgets: String = db.query_row("SELECT widgets FROM dashboards WHERE id = ?1", [&id], |r| r.get(0)).expect("widgets");
    let mut widgets: Value = serde_json::from_str(&widgets).expect("json");
    widgets[2]["query"] = json!("event_type == | stats count by policy_name");
    db.execute("UPDATE dashboards SET widgets = ?2 WHERE id = ?1", rusqlite::params![id, widgets.to_string()]).expect("update");
    let (status, html) = b.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<p class=\"query-error\" role=\"alert\">This widget could not be drawn: the query does not parse at 1:15"),
        "{html}"
    );
    assert!(html.contains("<div class=\"big\">2</div>"), "{html}");
    let (_, data) = b.api("GET", &format!("/api/v1/dashboards/{id}/data"), None).await;
    assert!(data["widgets"][2]["error"].as_str().is_some_and(|e| e.contains("1:15")), "{data}");
    assert_eq!(total(&rows(&data, 3)), 4);
}

#[tokio::test]
async fn the_editor_removes_a_widget_with_the_session_and_its_csrf_token() {
    let (x, b, _) = logged_in().await;
    let id = default_dashboard(&b).await["id"].as_str().expect("id").to_owned();
    let (_, html) = b.page(&format!("/dashboards/{id}/edit")).await;
    let remove = format!("/dashboards/{id}/widgets/1/remove");
    assert!(html.contains(&format!("data-api=\"{remove}\" data-method=\"POST\"")), "{html}");
    // Without the CSRF token the change is refused; with it, the widget is gone.
    let r = b.http.post(format!("{}{remove}", x.base)).json(&json!({})).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, after) = b.api("POST", &remove, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let titles: Vec<&str> = after["widgets"].as_array().expect("widgets").iter().filter_map(|w| w["title"].as_str()).collect();
    assert_eq!(titles, ["Interaction volume by platform", "Policy violations by policy", "Top 10 people with violations"]);
    assert_eq!(b.api("POST", &format!("/dashboards/{id}/widgets/9/remove"), Some(json!({}))).await.0, StatusCode::NOT_FOUND);
    // The page drawn before that change removes nothing: its positions are those of the old version.
    let stale = html.find("data-body=\"").map(|i| &html[i + 11..]).and_then(|r| r.split('"').next()).expect("a version body");
    let stale: serde_json::Value = serde_json::from_str(&stale.replace("&quot;", "\"").replace("&#34;", "\"")).expect("json");
    let (status, body) = b.api("POST", &format!("/dashboards/{id}/widgets/0/remove"), Some(stale)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, fresh) = b.page(&format!("/dashboards/{id}/edit")).await;
    assert!(!fresh.contains("Remove the widget High-risk interactions"), "the widget removed before stays removed");
    // A key without the admin scope cannot.
    let (reader, _) = x.key("acme", &["events_read"], false).await;
    let r = Browser::login(&x.base, &reader).await;
    assert_eq!(r.api("POST", &format!("/dashboards/{id}/widgets/0/remove"), Some(json!({}))).await.0, StatusCode::FORBIDDEN);
}
