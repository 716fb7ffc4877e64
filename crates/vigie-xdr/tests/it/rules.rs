//! Rules over real HTTP: the round trip, compilation refusals with their position or reason,
//! history, the enable toggles, Sigma export, statistics, scopes and space isolation, and the
//! default rules every new space gets.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};

const RW: &[&str] = &["rules_read", "rules_write"];
const CORRELATION: &str = "title: failed\nname: failed\nlogsource: {product: vigie}\ndetection:\n  sel:\n    event_type: login.failed\n  \
     condition: sel\n---\ntitle: many failures\ncorrelation:\n  type: event_count\n  rules: [failed]\n  group-by: [user_id]\n  \
     timespan: 10m\n  condition: {gte: 5}\n";

fn pipe(name: &str, source: &str) -> Value {
    json!({"name": name, "severity": "high", "kind": "pipe", "source": source})
}

/// A rule with `detection` and a correlation document written by hand; `extra` is appended.
fn sigma_with(extra: &str) -> String {
    format!("title: a\nname: a\nlogsource: {{product: vigie}}\ndetection:\n  sel:\n    event_type: x\n  condition: sel\n---\n{extra}")
}

impl TestXdr {
    async fn create_rule(&self, key: &str, body: Value) -> Value {
        let (status, rule) = self.call_json("POST", "/api/v1/rules", key, body).await;
        assert_eq!(status, StatusCode::CREATED, "{rule}");
        rule
    }

    /// The rule history's kinds, oldest first.
    async fn history_kinds(&self, key: &str, id: &str) -> Vec<String> {
        let (status, page) = self.get(&format!("/api/v1/rules/{id}/history"), key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut kinds: Vec<String> =
            page["items"].as_array().expect("items").iter().map(|e| e["kind"].as_str().expect("kind").to_owned()).collect();
        kinds.reverse();
        kinds
    }

    /// Runs `sql` on the database, beside the server.
    fn exec(&self, sql: &str) {
        let db = rusqlite::Connection::open(self.dir.path().join("xdr.db")).expect("db");
        db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
        db.execute_batch(sql).expect("sql");
    }

    fn space_no(&self, name: &str) -> i64 {
        self.count(&format!("SELECT no FROM spaces WHERE name = '{name}'"))
    }

    async fn sigma(&self, key: &str, id: &str) -> (StatusCode, String, String) {
        let resp = self.http.get(format!("{}/api/v1/rules/{id}/sigma", self.base)).bearer_auth(key).send().await.expect("request");
        let status = resp.status();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        (status, ctype, resp.text().await.expect("text"))
    }
}

#[tokio::test]
async fn a_rule_is_created_read_listed_changed_and_deleted() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let mut changed = x.state.rules_changed.subscribe();
    changed.mark_unchanged();
    let rule = x
        .create_rule(
            &key,
            json!({"name": "  Prompt to DeepSeek  ", "description": "a prompt went to DeepSeek", "severity": "high", "kind": "pipe",
                "source": "event_type == \"interaction.created\" AND platform_id == \"deepseek\"", "similarity": ["user_id"],
                "tags": ["T1567.002", "attack.ta0010"]}),
        )
        .await;
    assert!(changed.has_changed().expect("signal"), "the detection consumer is told after the commit");
    let id = rule["id"].as_str().expect("id").to_owned();
    assert_eq!(rule["name"], "Prompt to DeepSeek");
    assert_eq!((rule["severity"].clone(), rule["severity_label"].clone()), (json!(70), json!("high")));
    assert_eq!(rule["kind"], "pipe");
    assert_eq!(rule["enabled"], false);
    assert_eq!(rule["actions"], json!([{"type": "alert"}]));
    assert_eq!(rule["similarity"], json!(["user_id"]));
    assert_eq!(rule["tags"], json!(["T1567.002", "attack.ta0010"]));
    assert_eq!(rule["version"], 1);
    assert_eq!(rule["builtin"], Value::Null);
    assert_eq!(rule["shape"], json!({"type": "per_event"}));
    assert_eq!((rule["paused"].clone(), rule["paused_until"].clone()), (json!(false), Value::Null));
    assert!(rule["created_by"].as_str().expect("by").starts_with("key:"));
    assert_eq!(
        rule["stats"],
        json!({"matches": 0, "alerts": 0, "occurrences": 0, "suppressed": 0, "rejected": 0, "false_positive_rate": null,
            "last_match_at": null, "last_fired_at": null})
    );
    let (status, got) = x.get(&format!("/api/v1/rules/{id}"), &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, rule);
    let (_, page) = x.get("/api/v1/rules?q=deepseek", &key).await;
    assert_eq!(page["items"].as_array().expect("items").iter().map(|r| &r["id"]).collect::<Vec<_>>(), [&json!(id)]);

    // A change of what it says keeps the version; a change of what it matches bumps it.
    let (status, r) = x.call_json("PATCH", &format!("/api/v1/rules/{id}"), &key, json!({"description": "DeepSeek", "severity": 10})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!((r["description"].clone(), r["severity_label"].clone(), r["version"].clone()), (json!("DeepSeek"), json!("low"), json!(1)));
    let new_source = "event_type == \"interaction.created\" AND platform_id IN [\"deepseek\", \"qwen\"]";
    let (status, r) = x.call_json("PATCH", &format!("/api/v1/rules/{id}"), &key, json!({"payload": new_source})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!((r["source"].clone(), r["version"].clone()), (json!(new_source), json!(2)));
    // Similarity folds alerts; it does not change what is matched (windows are kept).
    let (_, r) = x.call_json("PATCH", &format!("/api/v1/rules/{id}"), &key, json!({"similarity": ["user_id", "platform_id"]})).await;
    assert_eq!((r["version"].clone(), r["similarity"].clone()), (json!(2), json!(["user_id", "platform_id"])));
    // Nothing changes: no history row.
    let (status, same) = x.call_json("PATCH", &format!("/api/v1/rules/{id}"), &key, json!({"name": "Prompt to DeepSeek"})).await;
    assert_eq!((status, same["version"].clone()), (StatusCode::OK, json!(2)));
    assert_eq!(x.history_kinds(&key, &id).await, ["created", "updated", "updated", "updated"]);
    let (_, h) = x.get(&format!("/api/v1/rules/{id}/history"), &key).await;
    let newest = &h["items"][1];
    assert_eq!(newest["detail"]["source"]["to"], new_source, "{newest}");
    assert_eq!(newest["detail"]["version"], json!({"from": 1, "to": 2}));
    assert_eq!(h["items"][2]["detail"]["severity"], json!({"from": 70, "to": 10}));
    assert!(h["items"][2]["detail"].get("source").is_none(), "only what changed is recorded");

    // Deleting takes its windows and keeps its alerts.
    let space = x.space_no("soc");
    x.exec(&format!(
        "INSERT INTO rule_windows (rule_id, version, window, h, state) VALUES ('{id}', 2, 0, 42, '[]');
         INSERT INTO alerts (id, short_id, space_no, rule_id, rule_name, title, severity, urgency, status, similarity_key, occurrences,
             first_seen, last_seen, raised_at, created_at, updated_at) \
             VALUES ('a1', 'ALaaaaaaaa', {space}, '{id}', 'Prompt to DeepSeek', 't', 'low', 10, 'pending', 'k', 1, 1, 1, 1, 1, 1);"
    ));
    changed.mark_unchanged();
    let resp = x.http.delete(format!("{}/api/v1/rules/{id}", x.base)).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(changed.has_changed().expect("signal"));
    assert_eq!(x.get(&format!("/api/v1/rules/{id}"), &key).await.0, StatusCode::NOT_FOUND);
    assert_eq!(x.get(&format!("/api/v1/rules/{id}/history"), &key).await.0, StatusCode::NOT_FOUND);
    let resp = x.http.delete(format!("{}/api/v1/rules/{id}", x.base)).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM rule_windows WHERE rule_id = '{id}'")), 0);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM alerts WHERE rule_id = '{id}' AND rule_name = 'Prompt to DeepSeek'")), 1);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM rule_history WHERE rule_id = '{id}' AND kind = 'deleted'")), 1);
}

#[tokio::test]
async fn a_pipe_rule_that_does_not_parse_is_refused_with_its_line_and_column() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let (status, body) = x.call_json("POST", "/api/v1/rules", &key, pipe("broken", "event_type == \"x\"\nAND a === 3")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["fields"][0]["field"], "source");
    assert!(body["fields"][0]["message"].as_str().expect("message").starts_with("2:9: "), "{body}");
    // A query that parses but is no rule (a search's stages) says what a rule is.
    let (status, body) = x.call_json("POST", "/api/v1/rules", &key, pipe("a table", "event_type == \"x\" | head 5")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().expect("error").contains("sliding window"), "{body}");
    assert_eq!(x.count("SELECT COUNT(*) FROM rules WHERE name IN ('broken', 'a table')"), 0);
}

#[tokio::test]
async fn sigma_rules_the_engine_would_not_carry_out_are_refused_with_the_reason() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let cases = [
        (
            "a filter document",
            sigma_with("title: f\nfilter:\n  rules: [a]\n  selection:\n    user_id: bob\n  condition: not selection\n"),
            "filter documents",
        ),
        (
            "a median",
            sigma_with(
                "title: c\ncorrelation:\n  type: value_median\n  rules: [a]\n  group-by: [user_id]\n  timespan: 10m\n  \
                 condition: {gte: 5, field: x}\n",
            ),
            "value_median",
        ),
        (
            "a tumbling window",
            sigma_with(
                "title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [user_id]\n  timespan: 10m\n  \
                 window: tumbling\n  condition: {gte: 5}\n",
            ),
            "tumbling",
        ),
        ("broken YAML", "title: a\ndetection: [\n".to_owned(), "not parse"),
    ];
    for (name, source, reason) in cases {
        let (status, body) =
            x.call_json("POST", "/api/v1/rules", &key, json!({"name": name, "severity": 50, "kind": "sigma", "source": source})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(body["fields"][0]["field"], "source", "{name}");
        assert!(body["fields"][0]["message"].as_str().expect("message").contains(reason), "{name}: {body}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM rules WHERE kind = 'sigma'"), 0);
}

#[tokio::test]
async fn a_sigma_event_count_correlation_is_accepted_as_a_window_under_sekoia_field_names() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let rule =
        x.create_rule(&key, json!({"name": "Brute force", "severity": 60, "type": "sigma", "payload": CORRELATION, "enabled": true})).await;
    assert_eq!(
        (rule["kind"].clone(), rule["severity_label"].clone(), rule["enabled"].clone()),
        (json!("sigma"), json!("high"), json!(true))
    );
    assert_eq!(rule["shape"], json!({"type": "window", "by": ["user_id"], "span_secs": 600}));
    // Its Sigma form is its own source.
    let (status, ctype, yaml) = x.sigma(&key, rule["id"].as_str().expect("id")).await;
    assert_eq!((status, ctype.as_str(), yaml.as_str()), (StatusCode::OK, "application/yaml", CORRELATION));
    let (_, page) = x.get("/api/v1/rules?kind=sigma", &key).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn a_second_rule_of_the_same_name_is_a_conflict() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    x.create_rule(&key, pipe("Twice", "event_type == \"a\"")).await;
    let (status, body) = x.call_json("POST", "/api/v1/rules", &key, pipe("Twice", "event_type == \"b\"")).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{body}");
    assert!(body["error"].as_str().expect("error").contains("Twice"));
    // The default rules' names are taken too, and a rename onto a taken name is refused.
    let (status, _) = x.call_json("POST", "/api/v1/rules", &key, pipe("Financial data exposure", "event_type == \"b\"")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let other = x.create_rule(&key, pipe("Other", "event_type == \"b\"")).await;
    let (status, _) =
        x.call_json("PATCH", &format!("/api/v1/rules/{}", other["id"].as_str().expect("id")), &key, json!({"name": "Twice"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Another space may use the name.
    let (elsewhere, _) = x.key("ops", RW, false).await;
    x.create_rule(&elsewhere, pipe("Twice", "event_type == \"a\"")).await;
}

#[tokio::test]
async fn invalid_fields_are_all_named() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let body = json!({"name": "", "description": "d".repeat(1001), "severity": 20, "kind": "pipe", "source": "event_type == \"a\"",
        "similarity": ["user_id", "user_id", "a b"], "tags": ["T1567", "exfiltration", "T15"],
        "actions": [{"type": "notify", "channel": ""}, {"type": "case", "template": "AI Platform Violation"}]});
    let (status, err) = x.call_json("POST", "/api/v1/rules", &key, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let mut fields: Vec<&str> = err["fields"].as_array().expect("fields").iter().map(|f| f["field"].as_str().expect("field")).collect();
    fields.sort();
    assert_eq!(fields, ["actions[0].channel", "description", "name", "similarity[1]", "similarity[2]", "tags[1]", "tags[2]"]);
    for (body, field) in [
        (json!({"name": "n", "severity": "severe", "kind": "pipe", "source": "a == 1"}), "severity"),
        (json!({"name": "n", "severity": 101, "kind": "pipe", "source": "a == 1"}), "severity"),
        (json!({"name": "n", "severity": 1, "kind": "kql", "source": "a == 1"}), "kind"),
        (json!({"name": "n", "severity": 1, "kind": "pipe", "source": "a == 1", "effort": 2}), "body"),
        (json!({"name": "n", "severity": 1, "kind": "pipe", "source": "a == 1", "actions": [{"type": "page"}]}), "actions[0]"),
        (json!({"name": "n", "severity": 1, "kind": "pipe", "source": "a == 1", "actions": []}), "actions"),
        (json!({"name": "n", "severity": 1, "kind": "pipe", "source": "a == 1", "similarity": vec!["f"; 11]}), "similarity"),
        (json!({"name": "n", "severity": 1, "kind": "pipe", "source": format!("a == \"{}\"", "x".repeat(64 * 1024))}), "source"),
    ] {
        let (status, err) = x.call_json("POST", "/api/v1/rules", &key, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {err}");
        let named = err["fields"].as_array().expect("fields").iter().any(|f| f["field"].as_str().is_some_and(|n| n.starts_with(field)));
        assert!(named || (field == "body" && err["error"].as_str().expect("error").contains("effort")), "{field}: {err}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM rules WHERE builtin IS NULL"), 0);
}

#[tokio::test]
async fn the_toggles_enable_and_disable_and_record_each_change_once() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let id = x.create_rule(&key, pipe("Toggle", "event_type == \"a\"")).await["id"].as_str().expect("id").to_owned();
    let put = |what: &'static str| {
        let (x, key, id) = (&x, &key, &id);
        async move {
            let resp = x.http.put(format!("{}/api/v1/rules/{id}/{what}", x.base)).bearer_auth(key).send().await.expect("put");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    let (status, r) = put("enabled").await;
    assert_eq!((status, r["enabled"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(put("enabled").await.1["enabled"], true);
    let (_, page) = x.get("/api/v1/rules?enabled=true", &key).await;
    assert_eq!(page["items"].as_array().expect("items").iter().map(|r| r["name"].clone()).collect::<Vec<_>>(), [json!("Toggle")]);
    let (status, r) = put("disabled").await;
    assert_eq!((status, r["enabled"].clone(), r["version"].clone()), (StatusCode::OK, json!(false), json!(1)));
    let (_, r) = x.call_json("PATCH", &format!("/api/v1/rules/{id}"), &key, json!({"enabled": true})).await;
    assert_eq!(r["enabled"], true);
    assert_eq!(x.history_kinds(&key, &id).await, ["created", "enabled", "disabled", "enabled"]);
    let missing = "0190a3c1-0000-7000-8000-000000000099";
    let resp = x.http.put(format!("{}/api/v1/rules/{missing}/enabled", x.base)).bearer_auth(&key).send().await.expect("put");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn default_rule_2_exports_to_sigma_that_compiles_back_to_the_same_window() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let (_, page) = x.get("/api/v1/rules?q=repeated", &key).await;
    let rule = &page["items"][0];
    assert_eq!(rule["builtin"], "default-2", "{page}");
    let (status, ctype, yaml) = x.sigma(&key, rule["id"].as_str().expect("id")).await;
    assert_eq!((status, ctype.as_str()), (StatusCode::OK, "application/yaml"), "{yaml}");
    for line in
        ["title: \"Repeated high-risk interactions\"", "type: event_count", "timespan: 1h", "gt: 5", "level: medium", "- \"attack.t1567\""]
    {
        assert!(yaml.contains(line), "{line} in\n{yaml}");
    }
    let program = vigie_detect::compile(vigie_detect::Kind::Sigma, &yaml).expect("the export is Sigma the engine runs");
    assert_eq!(program.shape(), vigie_detect::Shape::Window { by: vec!["user_id".into()], span_secs: 3600 });
    // And the API takes it back as a Sigma rule.
    let back = x.create_rule(&key, json!({"name": "Repeated, as Sigma", "severity": "medium", "kind": "sigma", "source": yaml})).await;
    assert_eq!(back["shape"], rule["shape"]);
}

#[tokio::test]
async fn a_rule_without_a_sigma_form_is_refused_with_every_reason() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let id = x.create_rule(&key, pipe("No Sigma", "a == null AND b > \"x\"")).await["id"].as_str().expect("id").to_owned();
    let resp = x.http.get(format!("{}/api/v1/rules/{id}/sigma", x.base)).bearer_auth(&key).send().await.expect("get");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = resp.json().await.expect("json");
    let reasons: Vec<&str> = err["fields"].as_array().expect("fields").iter().map(|f| f["message"].as_str().expect("message")).collect();
    assert_eq!(reasons.len(), 2, "{err}");
    assert!(reasons[0].contains("null") && reasons[1].contains("only numbers"), "{err}");
    assert!(err["error"].as_str().expect("error").starts_with("this rule has no Sigma form"));
    let id = x.create_rule(&key, pipe("Average", "a == 1 | stats avg(x) by y | where avg(x) > 2 in last 1h")).await["id"].clone();
    let (status, _, text) = x.sigma(&key, id.as_str().expect("id")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.contains("no Sigma correlation"), "{text}");
}

#[tokio::test]
async fn statistics_pauses_and_detection_history_are_shown() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let id = x.create_rule(&key, pipe("Counted", "event_type == \"a\"")).await["id"].as_str().expect("id").to_owned();
    let space = x.space_no("soc");
    let alert = |n: usize, status: &str| {
        format!(
            "INSERT INTO alerts (id, short_id, space_no, rule_id, rule_name, title, severity, urgency, status, similarity_key, \
             occurrences, \
             first_seen, last_seen, raised_at, created_at, updated_at) VALUES ('al{n}', 'AL0000000{n}', {space}, '{id}', 'Counted', 't', \
             'high', 70, '{status}', 'k{n}', 1, 1, 1, 1, 1, 1);"
        )
    };
    let far = 4_102_444_800_000_000_i64; // 2100-01-01
    x.exec(&format!(
        "INSERT INTO rule_stats (rule_id, matches, alerts, occurrences, suppressed, last_match_at, last_fired_at) \
         VALUES ('{id}', 9, 4, 3, 2, 1764320400000000, 1764320400000000);
         {}{}{}{}
         UPDATE rules SET paused_until = {far} WHERE id = '{id}';
         INSERT INTO rule_history (rule_id, at, by, kind, detail) \
         VALUES ('{id}', 1764320400000000, 'detection', 'paused', '{{\"alerts\": 30}}');",
        alert(1, "rejected"),
        alert(2, "pending"),
        alert(3, "closed"),
        alert(4, "pending"),
    ));
    let (_, r) = x.get(&format!("/api/v1/rules/{id}"), &key).await;
    let s = &r["stats"];
    assert_eq!(
        (s["matches"].clone(), s["alerts"].clone(), s["occurrences"].clone(), s["suppressed"].clone()),
        (json!(9), json!(4), json!(3), json!(2))
    );
    assert_eq!((s["rejected"].clone(), s["false_positive_rate"].clone()), (json!(1), json!(0.25)));
    assert_eq!(s["last_match_at"], "2025-11-28T09:00:00Z");
    assert_eq!((r["paused"].clone(), r["paused_until"].clone()), (json!(true), json!("2100-01-01T00:00:00Z")));
    assert_eq!(x.history_kinds(&key, &id).await, ["created", "paused"]);
    // The list shows the same.
    let (_, page) = x.get("/api/v1/rules?q=counted", &key).await;
    assert_eq!(page["items"][0]["stats"], *s);
}

#[tokio::test]
async fn lists_filter_and_page_by_name_or_creation() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    for (name, tags) in [("b rule", json!(["attack.t1567"])), ("a rule", json!(["T1059"])), ("c rule", json!([]))] {
        let mut body = pipe(name, "event_type == \"a\"");
        body["tags"] = tags;
        x.create_rule(&key, body).await;
    }
    // The four defaults and three rules, by name, two at a time.
    let (mut names, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/rules?limit=2&cursor={}", urlencode(c)),
            None => "/api/v1/rules?limit=2".to_owned(),
        };
        let (status, page) = x.get(&path, &key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        names.extend(page["items"].as_array().expect("items").iter().map(|r| r["name"].as_str().expect("name").to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 7);
    let (_, page) = x.get("/api/v1/rules?sort=created&limit=100", &key).await;
    let created: Vec<&str> = page["items"].as_array().expect("items").iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(&created[4..], ["b rule", "a rule", "c rule"]);
    // A tag is found in either form: the four defaults carry T1567, "b rule" attack.t1567.
    let (_, page) = x.get("/api/v1/rules?tag=T1567", &key).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 5);
    let (_, page) = x.get("/api/v1/rules?tag=attack.t1059", &key).await;
    assert_eq!(page["items"][0]["name"], "a rule");
    let (_, page) = x.get("/api/v1/rules?q=RULE&enabled=false&kind=pipe", &key).await;
    assert_eq!(page["items"].as_array().expect("items").len(), 3);
    for bad in ["kind=kql", "sort=severity", "sort=created&cursor=nope", "colour=red"] {
        assert_eq!(x.get(&format!("/api/v1/rules?{bad}"), &key).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn keys_without_the_rules_scopes_are_refused() {
    let x = TestXdr::start().await;
    let (rw, _) = x.key("soc", RW, false).await;
    let (read_only, _) = x.key("soc", &["rules_read"], false).await;
    let (no_rules, _) = x.key("soc", &["events_read", "alerts_read"], false).await;
    let id = x.create_rule(&rw, pipe("Scoped", "event_type == \"a\"")).await["id"].as_str().expect("id").to_owned();
    let rule = format!("/api/v1/rules/{id}");
    for (method, path) in [
        ("POST", "/api/v1/rules".to_owned()),
        ("PATCH", rule.clone()),
        ("DELETE", rule.clone()),
        ("PUT", format!("{rule}/enabled")),
        ("PUT", format!("{rule}/disabled")),
    ] {
        let (status, body) = x.call_json(method, &path, &read_only, pipe("Sneaky", "a == 1")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert!(body["error"].as_str().expect("error").contains("rules_write"));
    }
    for path in ["/api/v1/rules".to_owned(), rule.clone(), format!("{rule}/history"), format!("{rule}/sigma")] {
        assert_eq!(x.get(&path, &read_only).await.0, StatusCode::OK, "{path}");
        let (status, body) = x.get(&path, &no_rules).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM rules WHERE name = 'Sneaky'"), 0);
    assert_eq!(x.get("/api/v1/rules", "vxk_nothing").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_space_never_sees_or_changes_another_spaces_rules() {
    let x = TestXdr::start().await;
    let (soc, _) = x.key("soc", RW, false).await;
    let (ops, _) = x.key("ops", RW, false).await;
    let id = x.create_rule(&soc, pipe("Private", "event_type == \"a\"")).await["id"].as_str().expect("id").to_owned();
    let rule = format!("/api/v1/rules/{id}");
    for path in [rule.clone(), format!("{rule}/history"), format!("{rule}/sigma")] {
        assert_eq!(x.get(&path, &ops).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    for (method, path) in [("PATCH", rule.clone()), ("DELETE", rule.clone()), ("PUT", format!("{rule}/enabled"))] {
        assert_eq!(x.call_json(method, &path, &ops, json!({"name": "Taken"})).await.0, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, page) = x.get("/api/v1/rules?limit=500", &ops).await;
    let items = page["items"].as_array().expect("items");
    assert!(items.iter().all(|r| r["id"] != json!(id) && r["builtin"].is_string()), "{page}");
    assert_eq!(items.len(), 4, "its own defaults only");
    let (_, r) = x.get(&rule, &soc).await;
    assert_eq!((r["name"].clone(), r["enabled"].clone()), (json!("Private"), json!(false)));
}

#[tokio::test]
async fn a_new_space_gets_the_four_default_rules_once_and_disabled() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let (_, page) = x.get("/api/v1/rules?sort=created", &key).await;
    let rules = page["items"].as_array().expect("items");
    let got: Vec<(&str, &str, &str, bool)> = rules
        .iter()
        .map(|r| {
            assert!(r["shape"].is_object() && r.get("compile_error").is_none(), "{r}");
            assert_eq!(r["created_by"], "system");
            (
                r["builtin"].as_str().expect("builtin"),
                r["name"].as_str().expect("name"),
                r["severity_label"].as_str().expect("label"),
                r["enabled"].as_bool().expect("enabled"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("default-1", "Policy violation on unvetted AI platform", "high", false),
            ("default-2", "Repeated high-risk interactions", "medium", false),
            ("default-3", "Financial data exposure", "critical", false),
            ("default-4", "Critical alert from the AI firewall", "critical", false),
        ]
    );
    assert_eq!(rules[0]["actions"], json!([{"type": "alert"}, {"type": "notify", "channel": "soc"}]));
    assert_eq!(rules[1]["similarity"], json!(["user_id"]));
    assert_eq!(rules[1]["shape"], json!({"type": "window", "by": ["user_id"], "span_secs": 3600}));
    assert_eq!(rules[2]["actions"], json!([{"type": "alert"}, {"type": "case"}]));
    assert_eq!(rules[3]["actions"], json!([{"type": "case", "template": "AI Platform Violation", "assignee": "on-duty"}]));
    for r in [&rules[0], &rules[2], &rules[3]] {
        assert_eq!(r["similarity"], json!(["user_id", "platform_id"]));
    }
    assert_eq!(
        rules[2]["source"],
        r#"event_type == "interaction.high_risk" AND classification_type IN ["CREDIT_CARD", "IBAN"] AND risk_score > 0.9"#
    );
    // Another key in the same space (ensure_space again) installs nothing more.
    x.key("soc", &["rules_read"], false).await;
    x.state.keys.ensure_space("soc").await.expect("space");
    let space = x.space_no("soc");
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM rules WHERE space_no = {space}")), 4);
    // Installing again is a no-op.
    let state = x.state.clone();
    let again = state
        .store
        .write(move |c| vigie_xdr::rules::install_defaults(c, space, true, 1, &vigie_core::ids::IdGen::default()))
        .await
        .expect("install");
    assert_eq!(again, 0);
    // The demo enables them (once), with a history row each.
    assert_eq!(vigie_xdr::rules::set_defaults_enabled(&x.state, space, true).await.expect("enable"), 4);
    assert_eq!(vigie_xdr::rules::set_defaults_enabled(&x.state, space, true).await.expect("enable"), 0);
    assert_eq!(x.count(&format!("SELECT COUNT(*) FROM rules WHERE space_no = {space} AND enabled")), 4);
    assert_eq!(x.history_kinds(&key, rules[0]["id"].as_str().expect("id")).await, ["created", "enabled"]);
}

#[tokio::test]
async fn with_default_rules_enabled_a_new_space_runs_them() {
    let x = TestXdr::start_with(|o| o.default_rules_enabled = true).await;
    let mut changed = x.state.rules_changed.subscribe();
    changed.mark_unchanged();
    let (key, _) = x.key("demo", RW, false).await;
    assert!(changed.has_changed().expect("signal"), "the detection consumer is told of the new space's rules");
    let (_, page) = x.get("/api/v1/rules", &key).await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    assert!(items.iter().all(|r| r["enabled"] == true && r["builtin"].is_string()), "{page}");
}

#[tokio::test]
async fn the_openapi_document_describes_rules_and_what_their_actions_do_today() {
    let x = TestXdr::start().await;
    let doc: Value = x.http.get(format!("{}/api/v1/openapi.json", x.base)).send().await.expect("doc").json().await.expect("json");
    let schemas = &doc["components"]["schemas"];
    for name in ["NewRule", "RulePatch", "Rule", "RuleAction", "RuleStats", "RuleHistoryEntry", "SeverityInput"] {
        assert!(
            schemas[name].is_object(),
            "{name} missing: {}",
            schemas.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
        );
    }
    let tag = doc["tags"].as_array().expect("tags").iter().find(|t| t["name"] == "rules").expect("rules tag");
    assert!(tag["description"].as_str().expect("description").contains("`case` opens a case from a template"), "{tag}");
    let sigma = &doc["paths"]["/api/v1/rules/{id}/sigma"]["get"]["responses"]["200"]["content"];
    assert!(sigma["application/yaml"].is_object(), "{sigma}");
}

#[tokio::test]
async fn a_windows_similarity_fields_are_among_its_group_by_fields() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", RW, false).await;
    let window = "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour";
    // A typo would give every person the same key (null) and fold everyone into one alert.
    let mut body = pipe("Repeated", window);
    body["similarity"] = json!(["userid"]);
    let (status, err) = x.call_json("POST", "/api/v1/rules", &key, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("similarity[0]") && err.to_string().contains("user_id"), "{err}");
    let mut body = pipe("Repeated", window);
    body["similarity"] = json!(["user_id"]);
    let id = x.create_rule(&key, body).await["id"].as_str().expect("id").to_owned();
    let (status, _) = x.call_json("PATCH", &format!("/api/v1/rules/{id}"), &key, json!({"similarity": ["platform_id"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "checked on a change of similarity alone too");
    // A filter's matches are single events: any field.
    let mut body = pipe("Cards", "classification_type == \"CREDIT_CARD\"");
    body["similarity"] = json!(["user_email"]);
    x.create_rule(&key, body).await;
}
