//! The rules pages: the list with statistics and its toggles (the API with the cookie), the
//! editor (fields named as the API names them, read-only without rules_write), the Backtest
//! fragment over stored events, escaping, and space isolation.
use crate::TestXdr;
use crate::console::{Browser, logged_in};
use crate::console_events::{fw_event, post_events};
use crate::until;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Default rule 2's query: more than five high-risk interactions by one person in an hour.
const RULE_2: &str = "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour";

/// The id of the rule named `name` (through the API, with the session).
async fn rule_id(b: &Browser, name: &str) -> String {
    let (status, page) = b.api("GET", &format!("/api/v1/rules?q={}", vigie_web::form::encode(name)), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"][0]["id"].as_str().unwrap_or_else(|| panic!("a rule named {name}: {page}")).to_owned()
}

/// The table row of the page that links to `href`.
fn row_of<'a>(html: &'a str, href: &str) -> &'a str {
    let at = html.find(&format!("<a href=\"{href}\"")).unwrap_or_else(|| panic!("a link to {href}: {html}"));
    let start = html[..at].rfind("<tr>").expect("row start");
    &html[start..at + html[at..].find("</tr>").expect("row end")]
}

/// Posts the backtest fragment as the editor's Backtest button does (cookie and CSRF token).
async fn backtest(b: &Browser, range: &str, body: Value) -> (StatusCode, String) {
    let r = b
        .http
        .post(format!("{}/rules/backtest?range={range}", b.base))
        .header("x-csrf-token", &b.csrf)
        .json(&body)
        .send()
        .await
        .expect("backtest");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

#[tokio::test]
async fn the_list_shows_each_rules_statistics_and_its_toggle_works_through_the_api_with_the_cookie() {
    let (x, b, _) = logged_in().await;
    let (status, html) = b.page("/rules").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let id = rule_id(&b, "Financial data exposure").await;
    let row = row_of(&html, &format!("/rules/{id}")).to_owned();
    assert!(row.contains("<span class=\"badge critical\">critical</span>") && row.contains("badge disabled"), "{row}");
    let enable = format!("data-api=\"/api/v1/rules/{id}/enabled\" data-method=\"PUT\"");
    assert!(row.contains(&enable), "{row}");
    assert!(html.contains("href=\"/rules/new\""), "a New rule button");

    // The button's call: refused without the CSRF token, done with it.
    let r = b.http.put(format!("{}/api/v1/rules/{id}/enabled", x.base)).send().await.expect("put");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(b.api("PUT", &format!("/api/v1/rules/{id}/enabled"), None).await.0, StatusCode::OK);

    // The rule fires; the list shows its match and its alert.
    post_events(&x, "acme", vec![fw_event("fin-1", "interaction.high_risk", 5, "dave", "deepseek", 0.97, &["IBAN"])]).await;
    until("the rule's statistics", || async {
        let (_, r) = b.api("GET", &format!("/api/v1/rules/{id}"), None).await;
        (r["stats"]["alerts"] == 1).then_some(())
    })
    .await;
    let (_, html) = b.page("/rules").await;
    let row = row_of(&html, &format!("/rules/{id}"));
    assert!(row.contains("badge enabled"), "{row}");
    assert!(row.contains(&format!("data-api=\"/api/v1/rules/{id}/disabled\"")), "now a Disable button: {row}");
    let numbers: Vec<&str> =
        row.match_indices("<td class=\"num\">").map(|(i, _)| &row[i + 16..i + 16 + row[i + 16..].find('<').expect("cell end")]).collect();
    assert_eq!(numbers, ["1", "1"], "matches and alerts: {row}");
    assert!(row.contains("<td class=\"num hide-narrow\">0 %</td>"), "no alert rejected yet: {row}");

    // Filters narrow the list; a filter matching nothing says so.
    let (_, html) = b.page("/rules?enabled=true").await;
    assert_eq!(html.matches("<td><a href=\"/rules/").count(), 1, "only the enabled rule: {html}");
    let (_, html) = b.page("/rules?q=no-such-rule").await;
    assert!(html.contains("No rule matches these filters."), "{html}");
}

#[tokio::test]
async fn the_editors_backtest_shows_the_alerts_the_text_as_written_would_raise() {
    let (x, b, _) = logged_in().await;
    let mut events: Vec<Value> =
        (0..6).map(|i| fw_event(&format!("hr-{i}"), "interaction.high_risk", 50 - i * 5, "frank", "chatgpt", 0.8, &["EMAIL"])).collect();
    events.push(fw_event("hr-other", "interaction.high_risk", 20, "gina", "claude", 0.8, &["EMAIL"]));
    post_events(&x, "acme", events).await;
    // What the editor sends: every field of the form (Save's body), the rule not saved.
    let form = json!({"name": "Try it", "description": "", "severity": 50, "kind": "pipe", "source": RULE_2, "similarity": ["user_id"],
        "tags": [], "actions": [{"type": "alert"}], "enabled": false});
    let (status, html) = backtest(&b, "24h", form.clone()).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("7 events read") && html.contains("<strong>1 would-be alert</strong>"), "{html}");
    assert!(html.contains("<td>Try it — frank</td>"), "the alert's title: {html}");
    assert!(html.contains(">frank</a>"), "the person, linking to their events: {html}");
    for i in 0..5 {
        assert!(html.contains(&format!("href=\"/events/hr-{i}\"")), "links to its events: {html}");
    }
    assert!(!html.contains("gina"), "{html}");
    assert_eq!(x.count("SELECT COUNT(*) FROM rules WHERE name = 'Try it'"), 0, "nothing saved");

    // The text as written: a syntax error comes back with a caret under its column.
    let mut broken = form.clone();
    broken["source"] = json!("event_type == | stats count");
    let (status, html) = backtest(&b, "7d", broken).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let block = &html[html.find("<div class=\"query-error\"").expect("the error block")..];
    let lines: Vec<&str> = block.split('\n').collect();
    assert_eq!(lines[1], format!("{}^", " ".repeat(14)), "{block}");
    assert!(lines[2].starts_with("1:15: "), "{block}");

    // Without the CSRF token it is refused.
    let r = b.http.post(format!("{}/rules/backtest?range=24h", x.base)).json(&form).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_apis_validation_errors_name_fields_the_editor_has_inputs_for() {
    let (_x, b, _) = logged_in().await;
    let (status, html) = b.page("/rules/new").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-api=\"/api/v1/rules\" data-method=\"POST\" data-then=\"redirect:/rules/{id}\""), "{html}");
    assert!(html.contains("data-submit-api=\"/rules/backtest?range=7d\""), "a Backtest button: {html}");
    let (status, err) = b
        .api(
            "POST",
            "/api/v1/rules",
            Some(json!({"name": "", "severity": 50, "kind": "pipe", "source": "user_id ==", "similarity": ["a b"],
                "tags": ["exfiltration"], "actions": [{"type": "alert"}], "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let fields: Vec<(String, String)> = err["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| (f["field"].as_str().expect("field").to_owned(), f["message"].as_str().expect("message").to_owned()))
        .collect();
    let mut names: Vec<&str> = fields.iter().map(|f| f.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["name", "similarity[0]", "source", "tags[0]"], "{err}");
    for (field, _) in &fields {
        assert!(
            html.contains(&format!("name=\"{field}\"")) || html.contains(&format!("data-error-for=\"{field}\"")),
            "the editor has a place for {field}"
        );
    }
    let source = &fields.iter().find(|f| f.0 == "source").expect("source").1;
    assert!(source.starts_with("1:11: "), "a compile error's line and column: {source}");
}

#[tokio::test]
async fn a_rule_saved_as_the_editor_sends_it_shows_again_in_the_editor_with_its_history() {
    let (_x, b, _) = logged_in().await;
    let (status, rule) = b
        .api(
            "POST",
            "/api/v1/rules",
            Some(json!({"name": "DeepSeek prompts", "description": "to DeepSeek", "severity": 70, "kind": "pipe",
                "source": "platform_id == \"deepseek\"", "similarity": ["user_id"], "tags": ["T1567"],
                "actions": [{"type": "alert"}, {"type": "case", "template": "AI Platform Violation"}], "enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_str().expect("id");
    let (status, html) = b.page(&format!("/rules/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&format!("data-api=\"/api/v1/rules/{id}\" data-method=\"PATCH\"")), "{html}");
    assert!(html.contains("<option value=\"70\" selected>High (70)</option>"), "{html}");
    assert!(html.contains("name=\"actions.0\" data-type=\"json\" value=\"{&#34;type&#34;:&#34;alert&#34;}\""), "{html}");
    assert!(
        html.contains("value=\"{&#34;type&#34;:&#34;case&#34;,&#34;template&#34;:&#34;AI Platform Violation&#34;}\" selected"),
        "the case action chosen: {html}"
    );
    assert!(html.contains("value=\"user_id\"") && html.contains("value=\"T1567\""), "{html}");
    assert!(html.contains("<strong>created</strong>"), "the history: {html}");
    assert!(html.contains(&format!("href=\"/api/v1/rules/{id}/sigma\"")), "the Sigma export: {html}");
    assert!(html.contains(&format!("href=\"/alerts?rule_id={id}\"")), "its alerts: {html}");
}

#[tokio::test]
async fn a_key_without_rules_write_sees_rules_read_only_and_may_still_backtest() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["rules_read", "events_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let (status, html) = b.page("/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("/enabled\"") && !html.contains("href=\"/rules/new\""), "no toggles, no New rule: {html}");
    let id = rule_id(&b, "Repeated high-risk").await;
    let (status, html) = b.page(&format!("/rules/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Save changes") && !html.contains("data-method=\"PATCH\""), "no Save: {html}");
    assert!(html.contains("read-only") && html.contains("<pre>event_type == &#34;interaction.high_risk&#34;"), "{html}");
    assert!(html.contains("data-submit-api=\"/rules/backtest?range=24h\""), "the backtest needs rules_read and events_read: {html}");
    assert_eq!(b.page("/rules/new").await.0, StatusCode::FORBIDDEN);
    // The API refuses the change too.
    assert_eq!(b.api("PUT", &format!("/api/v1/rules/{id}/enabled"), None).await.0, StatusCode::FORBIDDEN);
    // Without events_read, no Backtest.
    let (key, _) = x.key("acme", &["rules_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let (_, html) = b.page(&format!("/rules/{id}")).await;
    assert!(!html.contains("data-submit-api"), "{html}");
}

#[tokio::test]
async fn rule_names_are_escaped_and_spaces_see_only_their_own_rules() {
    let (x, b, _) = logged_in().await;
    let (status, rule) = b
        .api("POST", "/api/v1/rules", Some(json!({"name": "<script>x</script>", "severity": "low", "kind": "pipe", "source": "a == 1"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_str().expect("id");
    let (_, html) = b.page("/rules").await;
    assert!(html.contains("&#60;script&#62;x&#60;/script&#62;") && !html.contains("<script>x"), "{html}");
    let (_, html) = b.page(&format!("/rules/{id}")).await;
    assert!(!html.contains("<script>x"), "{html}");

    // Another space's rule is neither listed nor shown.
    let (other, _) = x.key("other", &["rules_read", "rules_write"], false).await;
    let (status, theirs) = x
        .call_json("POST", "/api/v1/rules", &other, json!({"name": "Theirs only", "severity": "low", "kind": "pipe", "source": "a == 2"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let (_, html) = b.page("/rules").await;
    assert!(!html.contains("Theirs only"), "{html}");
    let (status, _) = b.page(&format!("/rules/{}", theirs["id"].as_str().expect("id"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
