//! Search over real HTTP: QUERY.md's examples over firewall events, the SQL back end agreeing
//! with the in-memory one on the log's own view of each event, pagination, exports, budgets and
//! errors.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use vigie_query::matcher::{Fields, Matcher};

/// A firewall envelope (`interaction.*`).
fn interaction((id, kind, at): (&str, &str, &str), user: &str, platform: &str, risk: f64, types: &[&str], action: Option<&str>) -> Value {
    let classifications: Vec<Value> = types.iter().map(|t| json!({"type": t, "value": "****"})).collect();
    let mut decision = json!({"risk_level": if risk > 0.9 { "critical" } else { "high" }});
    if let Some(a) = action {
        decision["action"] = json!(a);
        decision["policy_name"] = json!(format!("Block {platform}"));
    }
    json!({"id": id, "type": kind, "timestamp": at, "source": "noxys", "tenant_id": "t1",
        "data": {"interaction": {"id": format!("i-{id}"), "platform_id": platform, "user_id": user, "user_email": format!("{user}@example.com"),
            "risk_score": risk, "classification_count": types.len(), "classifications": classifications, "direction": "outbound",
            "interaction_type": "prompt", "content_metadata": {"model": "m1"}, "decision": decision}}})
}

fn corpus() -> Vec<Value> {
    let hv = "interaction.high_risk";
    let pv = "interaction.policy_violated";
    vec![
        interaction(("e1", hv, "2026-11-28T09:05:00Z"), "alice", "chatgpt", 0.95, &["CREDIT_CARD", "EMAIL", "CREDIT_CARD"], None),
        interaction(("e2", hv, "2026-11-28T09:40:00Z"), "alice", "deepseek", 0.85, &["IBAN"], None),
        interaction(("e3", pv, "2026-11-28T10:10:00Z"), "bob", "deepseek", 0.92, &["API_KEY"], Some("block")),
        interaction(("e4", pv, "2026-11-28T10:20:00Z"), "bob", "chatgpt", 0.75, &["EMAIL"], Some("coach")),
        interaction(("e5", pv, "2026-11-28T10:30:00Z"), "carol", "mistral", 0.5, &[], Some("log")),
        interaction(("e6", hv, "2026-11-28T11:00:00Z"), "carol", "gemini", 0.99, &["IBAN", "CREDIT_CARD"], None),
        // A policy event without an interaction, an alert, and other sources.
        json!({"id": "p1", "type": "policy.updated", "timestamp": "2026-11-28T11:10:00Z", "source": "noxys",
            "data": {"policy": {"name": "Block DeepSeek", "action": "block"}}}),
        json!({"id": "a1", "type": "alert.severity_critical", "timestamp": "2026-11-28T11:20:00Z", "source": "noxys",
            "data": {"alert": {"severity": "critical"}, "interaction": {"id": "i-e6", "platform_id": null, "user_id": "carol"}}}),
        json!({"id": "x1", "event_type": "login", "timestamp": "2026-11-28T11:30:00Z", "source": "edr", "user_id": "dave", "platform_id": "vpn",
            "risk_score": "0.95", "host": {"ip": "10.1.2.3", "name": "WS-01"}, "tags": ["a", "b"]}),
        json!({"id": "x2", "type": "interaction.high_risk", "timestamp": "2026-11-28T11:40:00Z", "source": "proxy", "data": "not an object",
            "user_id": "erin", "classification_type": ["IBAN"], "risk_score": 0.97}),
        // Classifications that are not all objects.
        json!({"id": "c1", "type": "interaction.created", "timestamp": "2026-11-28T08:00:00Z", "source": "noxys",
            "data": {"interaction": {"platform_id": "chatgpt", "user_id": "frank", "risk_score": 0.5,
                "classifications": ["IBAN", {"type": "EMAIL"}, {"type": 3}, {"type": "EMAIL"}, null]}}}),
        // Empty objects where the firewall puts flat fields (they replace the event's own: a
        // value, `{}`), and one of the event's own.
        json!({"id": "o1", "type": "interaction.created", "timestamp": "2026-11-28T07:30:00Z", "source": "noxys", "platform_id": "top",
            "user_id": "top-user", "extra": {}, "data": {"interaction": {"platform_id": {}, "user_id": {}, "risk_level": {},
                "decision": {"action": {}, "risk_level": "low"}}, "policy": {"name": {}, "action": "log"}}}),
    ]
}

async fn loaded() -> (TestXdr, String) {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    let (status, body) = x.post("/api/v1/events", Some(&key), Value::Array(corpus()).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (x, key)
}

const DAY: &str = "from=2026-11-28T00:00:00Z&to=2026-11-29T00:00:00Z";

async fn search(x: &TestXdr, key: &str, q: &str) -> (StatusCode, Value) {
    let resp = x
        .http
        .get(format!("{}/api/v1/events/search?{DAY}&limit=1000", x.base))
        .query(&[("q", q)])
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["items"].as_array().expect("items").iter().map(|e| e["id"].as_str().unwrap_or("?").to_owned()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_examples_of_the_specification_answer_over_the_log() {
    let (x, key) = loaded().await;
    let (status, v) = search(&x, &key, "event_type == \"interaction.policy_violated\"\nAND platform_id NOT IN [\"chatgpt\", \"claude\", \"gemini\"]\nAND classification_count > 0").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["kind"].as_str(), ids(&v)), (Some("events"), vec!["e3".to_owned()]));
    let (_, v) = search(
        &x,
        &key,
        "event_type == \"interaction.high_risk\"\nAND classification_type IN [\"CREDIT_CARD\", \"IBAN\"]\nAND risk_score > 0.9",
    )
    .await;
    assert_eq!(ids(&v), ["e1", "e6", "x2"], "x2 is not a firewall event: its own classification_type is read");
    let (_, v) = search(&x, &key, "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)").await;
    assert_eq!(v["columns"], json!(["platform_id", "timestamp", "count"]));
    let rows: Vec<(Value, String, u64)> = v["items"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["platform_id"].clone(), r["timestamp"].as_str().unwrap_or("").to_owned(), r["count"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        rows,
        [
            (json!("chatgpt"), "2026-11-28T08:00:00Z".into(), 1),
            (json!("chatgpt"), "2026-11-28T09:00:00Z".into(), 1),
            (json!("chatgpt"), "2026-11-28T10:00:00Z".into(), 1),
            (json!("deepseek"), "2026-11-28T09:00:00Z".into(), 1),
            (json!("deepseek"), "2026-11-28T10:00:00Z".into(), 1),
            (json!("gemini"), "2026-11-28T11:00:00Z".into(), 1),
            (json!("mistral"), "2026-11-28T10:00:00Z".into(), 1),
            // p1 and a1 (whose interaction's platform_id is null).
            (Value::Null, "2026-11-28T11:00:00Z".into(), 2),
            // o1, whose interaction's platform_id is `{}`.
            (json!({}), "2026-11-28T07:00:00Z".into(), 1),
        ],
        "{v}"
    );
    let (_, v) = search(&x, &key, "event_type == \"interaction.policy_violated\" | stats count by policy_name").await;
    assert_eq!(
        v["items"],
        json!([{"policy_name": "Block chatgpt", "count": 1}, {"policy_name": "Block deepseek", "count": 1}, {"policy_name": "Block mistral", "count": 1}])
    );
    let (_, v) = search(&x, &key, "risk_score > 0.8 | stats count by bin(timestamp, 1d)").await;
    assert_eq!(v["items"], json!([{"timestamp": "2026-11-28T00:00:00Z", "count": 6}]), "e1 e2 e3 e6 x1 (\"0.95\") x2");
    let (_, v) = search(&x, &key, "event_type == \"interaction.policy_violated\" | stats count by user_id | sort -count | head 10").await;
    assert_eq!(v["items"], json!([{"user_id": "bob", "count": 2}, {"user_id": "carol", "count": 1}]));
    let (status, v) =
        search(&x, &key, "event_type == \"interaction.high_risk\"\n| stats count by user_id\n| where count > 5 in last 1 hour").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a sliding window is a rule's, not a search's: {v}");
}

/// Every field of every stored event, as `GET /api/v1/events/{id}` shows it.
async fn shown_all(x: &TestXdr, key: &str) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for e in corpus() {
        let id = e["id"].as_str().expect("id");
        let (_, v) = x.get(&format!("/api/v1/events/{id}"), key).await;
        out.push(v.as_object().expect("event").clone());
    }
    out
}

#[tokio::test]
async fn the_sql_search_reads_every_field_as_the_log_shows_it() {
    let (x, key) = loaded().await;
    let shown = shown_all(&x, &key).await;
    let mut fields: Vec<String> = shown.iter().flat_map(|e| e.keys().cloned()).collect();
    fields.sort();
    fields.dedup();
    fields.extend(["nothing".to_owned(), "data.interaction".to_owned()]);
    let mut queries = Vec::new();
    for f in &fields {
        let f = if vigie_query::parse::needs_quoting(f) { format!("`{f}`") } else { f.clone() };
        for test in [
            "EXISTS",
            "== null",
            "== \"chatgpt\"",
            "> 0.9",
            "IN [\"IBAN\", \"bob\", 1]",
            "CONTAINS \"o\"",
            "!= \"noxys\"",
            ">= \"2026-11-28T10\"",
        ] {
            queries.push(format!("{f} {test}"));
        }
    }
    let mut checked = 0;
    for q in &queries {
        let parsed = vigie_query::parse(q).expect(q);
        let mut reg = Fields::new();
        let m = Matcher::compile(parsed.filter.as_ref(), &mut reg).expect("compile");
        let mut want: Vec<String> =
            shown.iter().filter(|e| m.matches(&reg.record(*e))).map(|e| e["id"].as_str().unwrap_or("?").to_owned()).collect();
        want.sort();
        let (status, v) = search(&x, &key, q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {v}");
        assert_eq!(ids(&v), want, "{q}");
        checked += 1;
    }
    assert!(checked > 200, "{checked} queries");
    // And the aggregations of every flat field.
    for f in [
        "platform_id",
        "user_id",
        "risk_level",
        "policy_name",
        "policy_action",
        "alert_severity",
        "model",
        "classification_type",
        "interaction_id",
    ] {
        let q = format!("| stats count, dc(user_id) by {f}");
        let want = vigie_query::table::run(&vigie_query::parse(&q).expect("q"), &shown).expect("run");
        let (_, v) = search(&x, &key, &q).await;
        assert_eq!(v["items"], Value::Array(want.rows.into_iter().map(Value::Object).collect()), "{q}");
    }
}

#[tokio::test]
async fn pages_exports_budgets_and_errors() {
    let (x, key) = loaded().await;
    // Pages of 4, newest first, then the rest.
    let (_, p1) = x.get(&format!("/api/v1/events/search?{DAY}&limit=4"), &key).await;
    let first: Vec<&str> = p1["items"].as_array().expect("items").iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(first, ["x2", "x1", "a1", "p1"]);
    assert_eq!(p1["partial"], false);
    let cursor = p1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, p2) = x.get(&format!("/api/v1/events/search?{DAY}&limit=10&cursor={cursor}"), &key).await;
    assert_eq!(p2["items"].as_array().map(Vec::len), Some(8));
    assert!(p2["next_cursor"].is_null());
    // POST, CSV and NDJSON.
    let post = json!({"q": "user_id == \"bob\" | fields id, policy_action", "from": "2026-11-28T00:00:00Z", "to": "2026-11-29T00:00:00Z", "format": "csv"});
    let resp = x.http.post(format!("{}/api/v1/events/search", x.base)).bearer_auth(&key).json(&post).send().await.expect("post");
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(resp.text().await.expect("csv"), "id,policy_action\r\ne4,coach\r\ne3,block\r\n");
    let resp = x
        .http
        .get(format!("{}/api/v1/events/search?{DAY}&format=ndjson", x.base))
        .query(&[("q", "user_id == \"alice\"")])
        .bearer_auth(&key)
        .send()
        .await
        .expect("ndjson");
    let text = resp.text().await.expect("body");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.iter().map(|l| l["id"].as_str().unwrap_or("")).collect::<Vec<_>>(), ["e2", "e1"]);
    // Errors: the position of a syntax error; an unknown format.
    let (status, v) = search(&x, &key, "risk_score > AND x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().is_some_and(|e| e.contains("1:14: expected a value after \">\", found \"AND\"")), "{v}");
    let (status, _) = x.get(&format!("/api/v1/events/search?{DAY}&format=xml"), &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, v) = x.get(&format!("/api/v1/events/search?{DAY}&q=%7C%20stats%20count&cursor={cursor}"), &key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a table is not paged: {v}");
    x.stop().await;

    // Budgets: a search that needs more events than it may read answers what it has.
    let x =
        TestXdr::start_with(|o| o.search = vigie_xdr::search::SearchLimits { timeout: std::time::Duration::from_secs(30), max_rows: 3 })
            .await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    x.post("/api/v1/events", Some(&key), Value::Array(corpus()).to_string(), &[]).await;
    let (_, v) = search(&x, &key, "| sort id | head 2").await;
    assert_eq!((v["partial"].as_bool(), v["items"].as_array().map(Vec::len)), (Some(true), Some(2)), "{v}");
    assert!(v["covered_from"].is_string());
    let x2 =
        TestXdr::start_with(|o| o.search = vigie_xdr::search::SearchLimits { timeout: std::time::Duration::ZERO, max_rows: 100 }).await;
    let (key2, _) = x2.key("soc", &["events_write", "events_read"], false).await;
    x2.post("/api/v1/events", Some(&key2), Value::Array(corpus()).to_string(), &[]).await;
    let (status, v) = x2.get("/api/v1/events/search?from=2026-10-01T00:00:00Z&to=2026-11-29T00:00:00Z&q=%7C%20stats%20count", &key2).await;
    assert_eq!((status, v["partial"].as_bool()), (StatusCode::OK, Some(true)), "a search out of time answers what it has: {v}");
}

#[tokio::test]
async fn a_space_searches_only_its_own_events() {
    let (x, key) = loaded().await;
    let (other, _) = x.key("other", &["events_write", "events_read"], false).await;
    x.post("/api/v1/events", Some(&other), json!({"id": "o1", "timestamp": "2026-11-28T12:00:00Z", "user_id": "alice"}).to_string(), &[])
        .await;
    let (_, mine) = search(&x, &key, "user_id == \"alice\"").await;
    assert_eq!(ids(&mine), ["e1", "e2"]);
    let (_, theirs) = search(&x, &other, "").await;
    assert_eq!(ids(&theirs), ["o1"]);
    let (_, count) = search(&x, &other, "| stats count").await;
    assert_eq!(count["items"], json!([{"count": 1}]));
}

/// Aggregations answered from facts (all built, none built, half built) equal the in-memory
/// answer over the events as shown.
#[tokio::test]
async fn aggregations_from_facts_equal_those_from_the_log() {
    let x = TestXdr::start_with(|o| o.build_facts = false).await;
    let (key, _) = x.key("soc", &["events_write", "events_read"], false).await;
    x.post("/api/v1/events", Some(&key), Value::Array(corpus()).to_string(), &[]).await;
    let mut queries: Vec<String> = vigie_xdr::facts::FACETS
        .iter()
        .map(|f| format!("| stats count, count(platform_id), dc(user_id), sum(risk_score), avg(classification_count), min(risk_score), max(risk_score) by {f}"))
        .collect();
    queries.extend(
        [
            "platform_id IN [\"chatgpt\", \"deepseek\"] | stats count by user_id, bin(timestamp, 1h)",
            "risk_score > 0.8 | stats count by bin(timestamp, 1d)",
            "event_type == \"interaction.policy_violated\" | stats count by user_id | sort -count | head 10",
            "NOT source == \"noxys\" | stats count",
            "classification_type IN [\"IBAN\"] | stats count by classification_type",
            "model EXISTS | stats count by model, risk_level",
            "policy_action != \"block\" | where user_id STARTSWITH \"c\" | stats dc(platform_id) as platforms by user_id",
            "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)",
        ]
        .map(str::to_owned),
    );
    for q in &queries {
        assert!(vigie_xdr::facts::answers(&vigie_query::parse(q).expect("q")), "facts answer {q}");
    }
    let check = |round: &'static str| {
        let queries = queries.clone();
        let (x, key) = (&x, &key);
        async move {
            let shown = all_shown(x, key).await;
            for q in &queries {
                let want = vigie_query::table::run(&vigie_query::parse(q).expect("q"), &shown).expect("run");
                let (status, v) = search(x, key, q).await;
                assert_eq!(status, StatusCode::OK, "{round} {q}: {v}");
                let got: Vec<Value> = v["items"].as_array().expect("items").clone();
                let want: Vec<Value> = want.rows.into_iter().map(Value::Object).collect();
                assert_eq!(got.len(), want.len(), "{round} {q}\ngot {got:?}\nwant {want:?}");
                for (g, w) in got.iter().zip(&want) {
                    let same = g.as_object().zip(w.as_object()).is_some_and(|(g, w)| {
                        g.len() == w.len()
                            && g.iter().all(|(k, a)| {
                                w.get(k).is_some_and(|b| match (a.as_f64(), b.as_f64()) {
                                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                                    _ => a == b,
                                })
                            })
                    });
                    assert!(same, "{round} {q}\ngot {got:?}\nwant {want:?}");
                }
            }
        }
    };
    check("no facts yet").await;
    while vigie_xdr::facts::build_once(&x.state).await.expect("build") > 0 {}
    assert_eq!(x.count("SELECT SUM(events) FROM fact_blocks"), corpus().len() as i64);
    check("all facts").await;
    // More events: facts for the first ones, the log for the rest.
    let more: Vec<Value> = corpus()
        .into_iter()
        .map(|mut e| {
            e["id"] = json!(format!("{}-b", e["id"].as_str().unwrap_or("")));
            e
        })
        .collect();
    x.post("/api/v1/events", Some(&key), Value::Array(more).to_string(), &[]).await;
    check("half built").await;
    while vigie_xdr::facts::build_once(&x.state).await.expect("build") > 0 {}
    check("all built again").await;
}

/// Every stored event of the test space, as shown.
async fn all_shown(x: &TestXdr, key: &str) -> Vec<Map<String, Value>> {
    let (_, v) = search(x, key, "").await;
    v["items"].as_array().expect("items").iter().filter_map(|e| e.as_object().cloned()).collect()
}
