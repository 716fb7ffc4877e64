//! The console's alert pages: alerts raised by the real pipeline (events posted to the intake,
//! the default rules, detection) appear in the list with their links; filters narrow it; an
//! alert's page shows its events, person, history and comments, exactly the workflow buttons its
//! status allows, its case or the button to open one; a key without alerts_write sees no
//! button and the API refuses it; text from the data is escaped; another space sees nothing.
use crate::TestXdr;
use crate::console::Browser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Every scope a SOC analyst's key has, and events_write to post the events.
pub const SCOPES: &[&str] =
    &["events_write", "events_read", "alerts_read", "alerts_write", "cases_read", "cases_write", "rules_read", "admin"];

/// A server with the default rules enabled, a browser logged in with a key of [`SCOPES`] in
/// space `soc`, and the key.
pub async fn soc() -> (TestXdr, Browser, String) {
    let x = TestXdr::start_with(|o| o.default_rules_enabled = true).await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let b = Browser::login(&x.base, &key).await;
    (x, b, key)
}

fn minutes_ago(m: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(m)).to_rfc3339()
}

/// A firewall event as the firewall's webhook sends it.
pub fn firewall(id: &str, kind: &str, user: &str, platform: &str, risk: f64, types: &[&str]) -> Value {
    let classifications: Vec<Value> = types.iter().map(|t| json!({"type": t, "confidence": 0.99})).collect();
    json!({
        "id": id, "type": kind, "timestamp": minutes_ago(5), "source": "noxys", "tenant_id": "t1",
        "data": {"interaction": {
            "id": format!("i-{id}"), "platform_id": platform, "user_id": user,
            "risk_score": risk, "risk_level": "high", "classification_count": types.len(), "classifications": classifications,
            "direction": "outbound", "interaction_type": "prompt",
            "decision": {"action": "block", "policy_name": "Protect financial data", "risk_level": "high"}
        }}
    })
}

/// A policy violation on an unvetted platform: default rule 1 (high) raises an alert.
pub fn violation(id: &str, user: &str) -> Value {
    firewall(id, "interaction.policy_violated", user, "deepseek", 0.7, &["EMAIL_ADDRESS"])
}

/// A card number sent with risk 0.95: default rule 3 (critical) raises an alert and opens a case.
pub fn card(id: &str, user: &str) -> Value {
    firewall(id, "interaction.high_risk", user, "claude", 0.95, &["CREDIT_CARD"])
}

/// Posts events with `key` and waits until detection has read them.
pub async fn post(x: &TestXdr, key: &str, events: Vec<Value>) {
    let (status, body) = x.post("/api/v1/events", Some(key), Value::Array(events).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let last = x.count("SELECT COALESCE(MAX(seq), 0) FROM events");
    let mut rx = x.state.detected.subscribe();
    tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| *s >= last)).await.expect("detection caught up in time").expect("watch");
}

use crate::until;

/// The alerts of the space about `user`, newest first.
pub async fn alerts_of(x: &TestXdr, key: &str, user: &str) -> Vec<Value> {
    let (status, page) = x.get(&format!("/api/v1/alerts?user_id={user}"), key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

/// The one alert about `user`: (id, short id).
pub async fn alert_of(x: &TestXdr, key: &str, user: &str) -> (String, String) {
    let alerts = alerts_of(x, key, user).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    (alerts[0]["id"].as_str().expect("id").to_owned(), alerts[0]["short_id"].as_str().expect("short id").to_owned())
}

/// `text` as a template writes it (askama escapes with numeric entities).
pub fn esc(text: &str) -> String {
    text.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

/// The rows of a page's first table body.
fn rows(html: &str) -> usize {
    html.split("<tbody>").nth(1).map_or(0, |b| b.split("</tbody>").next().unwrap_or("").matches("<tr>").count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_raised_by_detection_are_listed_with_their_links_and_the_filters_narrow_the_list() {
    let (x, b, key) = soc().await;
    let (_, empty) = b.page("/alerts").await;
    assert!(empty.contains("No alerts.") && empty.contains("href=\"/rules\""), "the empty state points to the rules: {empty}");

    post(&x, &key, vec![violation("pv-1", "dan"), card("cc-1", "fay")]).await;
    let (_, dan) = alert_of(&x, &key, "dan").await;
    let (_, fay) = alert_of(&x, &key, "fay").await;
    let (status, html) = b.page("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    for short in [&dan, &fay] {
        assert!(html.contains(&format!("href=\"/alerts/{short}\"")), "{short} links to its page: {html}");
    }
    assert!(html.contains("Policy violation on unvetted AI platform") && html.contains("Financial data exposure"), "{html}");
    assert!(
        html.contains("<span class=\"badge critical\">critical</span>") && html.contains("<span class=\"badge pending\">pending</span>")
    );
    assert!(html.contains("<time datetime="), "times are marked up for the browser's time zone");
    assert!(html.contains("data-autosubmit"), "the filters re-submit on change");
    assert_eq!(rows(&html), 2);

    let (_, critical) = b.page("/alerts?severity=critical").await;
    assert_eq!(rows(&critical), 1);
    assert!(critical.contains(&fay) && !critical.contains(&dan), "{critical}");
    assert!(critical.contains("<option value=\"critical\" selected>"), "the filter shows as chosen");
    let (_, by_person) = b.page("/alerts?user_id=dan&status=&severity=").await;
    assert!(by_person.contains(&dan) && !by_person.contains(&fay), "empty fields of the GET form filter nothing");
    let (_, none) = b.page("/alerts?status=closed").await;
    assert!(none.contains("No alerts match these filters"), "{none}");
    assert_eq!(rows(&none), 0);
    // A bad filter from a hand-written link is a page saying why, not a 500.
    let (status, bad) = b.page("/alerts?status=lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("lost"), "{bad}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_link_pages_through_the_alerts_keeping_the_filters() {
    let (x, b, key) = soc().await;
    // 26 alerts of each of two rules (a rule raising more than 30 within 30 s is paused).
    let mut events: Vec<Value> = (0..26).map(|i| violation(&format!("pv-{i}"), &format!("user{i:02}"))).collect();
    events.extend((0..26).map(|i| card(&format!("cc-{i}"), &format!("user{i:02}"))));
    post(&x, &key, events).await;
    let (_, first) = b.page("/alerts?status=pending").await;
    assert_eq!(rows(&first), 50);
    let href = first.split("href=\"/alerts?status=pending&#38;cursor=").nth(1).expect("an Older link keeping the filter");
    let cursor = &href[..href.find('"').expect("quote")];
    let (_, second) = b.page(&format!("/alerts?status=pending&cursor={cursor}")).await;
    assert_eq!(rows(&second), 2, "{second}");
    assert!(!second.contains(">Older<") && second.contains(">Newest<"));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_page_shows_its_events_person_and_history_and_exactly_the_workflow_buttons_its_status_allows() {
    let (x, b, key) = soc().await;
    let person = json!({"display_name": "Dan Martin", "email": "dan@corp.example", "department": "Finance"});
    let (status, body) = b.api("PUT", "/api/v1/people/dan", Some(person)).await;
    assert!(status.is_success(), "{body}");
    post(&x, &key, vec![violation("pv-1", "dan"), violation("pv-2", "dan")]).await;
    let (id, short) = alert_of(&x, &key, "dan").await;

    let (status, html) = b.page(&format!("/alerts/{short}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Dan Martin") && html.contains("dan@corp.example") && html.contains("Finance"), "the person: {html}");
    assert!(html.contains("href=\"/events/pv-1\"") && html.contains("href=\"/events/pv-2\""), "the events link to theirs: {html}");
    assert!(html.contains("interaction.policy_violated") && html.contains("on deepseek"), "each event summarised: {html}");
    assert!(html.contains("href=\"/rules/"), "the rule links to its page");
    assert!(html.contains("Raised by detection"), "the history: {html}");
    assert!(html.contains("<ol class=\"timeline\">"));
    let button = |status: &str| format!("data-body=\"{}\"", esc(&json!({"status": status}).to_string()));
    assert!(html.contains(&button("acknowledged")) && html.contains(&button("ongoing")) && html.contains(&button("rejected")));
    assert!(!html.contains(&button("closed")), "a pending alert cannot be closed");
    assert!(html.contains(&format!("data-api=\"/api/v1/alerts/{id}/workflow\" data-method=\"PATCH\"")));
    // The lower-case id reads as well as the short id.
    assert_eq!(b.page(&format!("/alerts/{}", short.to_lowercase())).await.0, StatusCode::OK);

    // The button's request, as the script sends it: the cookie alone is refused…
    let r = b
        .http
        .patch(format!("{}/api/v1/alerts/{id}/workflow", x.base))
        .json(&json!({"status": "acknowledged"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // …with the CSRF token it works.
    let (status, answer) = b.api("PATCH", &format!("/api/v1/alerts/{id}/workflow"), Some(json!({"status": "acknowledged"}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, html) = b.page(&format!("/alerts/{short}")).await;
    assert!(html.contains("<span class=\"badge acknowledged\" id=\"alert-status\">acknowledged</span>"), "{html}");
    assert!(!html.contains(&button("acknowledged")), "no Acknowledge button once acknowledged");
    assert!(html.contains(&button("ongoing")) && html.contains(&button("rejected")));
    assert!(html.contains("Status pending → acknowledged"), "the change is in the history: {html}");
    assert!(html.contains("(this key)"), "the history names the key that made the change");

    for status in ["ongoing", "closed"] {
        let (s, a) = b.api("PATCH", &format!("/api/v1/alerts/{id}/workflow"), Some(json!({"status": status}))).await;
        assert_eq!(s, StatusCode::OK, "{a}");
    }
    let (_, html) = b.page(&format!("/alerts/{short}")).await;
    assert!(!html.contains("/workflow\""), "a closed alert has no workflow button: {html}");
    assert!(html.contains("a final status"));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_and_an_assignment_made_through_the_api_appear_and_script_in_the_data_is_escaped() {
    let (x, b, key) = soc().await;
    let user = "<script>alert(1)</script>";
    post(&x, &key, vec![violation("pv-x", user)]).await;
    let alerts = alerts_of(&x, &key, "%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let (id, short) = (alerts[0]["id"].as_str().expect("id").to_owned(), alerts[0]["short_id"].as_str().expect("short").to_owned());
    assert!(alerts[0]["title"].as_str().is_some_and(|t| t.contains(user)), "the title names the user: {}", alerts[0]["title"]);

    let (_, html) = b.page(&format!("/alerts/{short}")).await;
    assert!(html.contains(&format!("data-api=\"/api/v1/alerts/{id}/comments\" data-method=\"POST\"")), "the comment form");
    assert!(html.contains("name=\"content\"") && html.contains("name=\"assignee\""), "the forms' fields are those the API takes");
    let comment = "Called the user.\nThey say <b>sorry</b> & <script>x()</script>";
    let (status, c) = b.api("POST", &format!("/api/v1/alerts/{id}/comments"), Some(json!({"content": comment}))).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let (status, a) = b.api("PATCH", &format!("/api/v1/alerts/{id}"), Some(json!({"assignee": "ana", "urgency": 80}))).await;
    assert_eq!(status, StatusCode::OK, "{a}");

    for path in [format!("/alerts/{short}"), "/alerts".to_owned()] {
        let (_, html) = b.page(&path).await;
        assert!(!html.contains("<script>alert(1)"), "{path}: the title is escaped: {html}");
        assert!(html.contains(&esc(user)), "{path}: {html}");
    }
    let (_, html) = b.page(&format!("/alerts/{short}")).await;
    assert!(html.contains("Called the user.<br>They say &lt;b&gt;sorry&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<script>x()"));
    assert!(html.contains("Comments (1)") && html.contains("Commented"));
    assert!(html.contains("Assigned to ana") && html.contains("value=\"ana\""), "{html}");
    assert!(html.contains("Urgency 70 → 80"), "{html}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_page_links_the_case_holding_it_or_offers_to_open_one() {
    let (x, b, key) = soc().await;
    post(&x, &key, vec![violation("pv-1", "dan"), card("cc-1", "fay")]).await;
    // Rule 3's case action opens a case for fay's alert (the responder, after detection).
    let (fay_id, fay) = alert_of(&x, &key, "fay").await;
    let case = until("the case of rule 3", || async {
        let (_, page) = x.get("/api/v1/cases", &key).await;
        page["items"].as_array().and_then(|items| items.first()).and_then(|c| c["short_id"].as_str()).map(str::to_owned)
    })
    .await;
    let (_, html) = b.page(&format!("/alerts/{fay}")).await;
    assert!(html.contains(&format!("href=\"/cases/{case}\"")), "the alert links its case: {html}");
    assert!(!html.contains("Open a case from this alert"));
    let (_, case_page) = b.page(&format!("/cases/{case}")).await;
    assert!(case_page.contains(&format!("href=\"/alerts/{fay}\"")), "and the case links back");
    let _ = fay_id;

    let (dan_id, dan) = alert_of(&x, &key, "dan").await;
    let (_, html) = b.page(&format!("/alerts/{dan}")).await;
    assert!(html.contains("No case holds this alert yet") && html.contains("Open a case from this alert"), "{html}");
    assert!(html.contains("data-api=\"/api/v1/cases\" data-method=\"POST\" data-then=\"redirect:/cases/{id}\""));
    assert!(
        html.contains(&format!("name=\"alerts.0\" value=\"{dan_id}\""))
            && html.contains("<option value=\"AI Platform Violation\" selected>")
    );
    // The form's request: the template, the alert.
    let (status, made) = b.api("POST", "/api/v1/cases", Some(json!({"template": "AI Platform Violation", "alerts": [dan_id]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (_, html) = b.page(&format!("/alerts/{dan}")).await;
    assert!(html.contains(&format!("href=\"/cases/{}\"", made["short_id"].as_str().expect("short id"))), "{html}");
    assert!(!html.contains("Open a case from this alert"));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_only_reads_alerts_sees_them_without_buttons_or_forms_and_the_api_refuses_it() {
    let (x, _, key) = soc().await;
    post(&x, &key, vec![violation("pv-1", "dan")]).await;
    let (id, short) = alert_of(&x, &key, "dan").await;
    let (reader, _) = x.key("soc", &["alerts_read"], false).await;
    let b = Browser::login(&x.base, &reader).await;
    let (status, list) = b.page("/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&short));
    let (status, html) = b.page(&format!("/alerts/{short}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("data-api="), "no button and no form: {html}");
    assert!(html.contains("alerts_write"), "the page says why");
    assert!(html.contains("<code>pv-1</code>") && !html.contains("href=\"/events/pv-1\""), "event ids only, without events_read");
    let (status, _) = b.api("PATCH", &format!("/api/v1/alerts/{id}/workflow"), Some(json!({"status": "acknowledged"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = b.api("POST", &format!("/api/v1/alerts/{id}/comments"), Some(json!({"content": "hi"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A key that cannot read alerts gets a page saying so.
    let (cases_only, _) = x.key("soc", &["cases_read"], false).await;
    let b = Browser::login(&x.base, &cases_only).await;
    let (status, html) = b.page("/alerts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Not allowed"), "{html}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_space_neither_lists_nor_opens_the_alerts() {
    let (x, _, key) = soc().await;
    post(&x, &key, vec![violation("pv-1", "dan")]).await;
    let (id, short) = alert_of(&x, &key, "dan").await;
    let (other, _) = x.key("elsewhere", &["alerts_read", "alerts_write"], false).await;
    let b = Browser::login(&x.base, &other).await;
    let (_, list) = b.page("/alerts").await;
    assert!(!list.contains(&short) && list.contains("No alerts."), "{list}");
    for path in [format!("/alerts/{short}"), format!("/alerts/{id}")] {
        let (status, html) = b.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("Not found"));
    }
    let (status, _) = b.api("PATCH", &format!("/api/v1/alerts/{id}/workflow"), Some(json!({"status": "acknowledged"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    x.stop().await;
}
