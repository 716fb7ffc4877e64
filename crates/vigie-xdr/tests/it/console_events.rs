//! The events explorer and the event page: queries run as the API runs them, errors shown at
//! their position, events and stats tables (with their chart), pages, exports, escaping, and
//! one space never seeing another's events.
use crate::TestXdr;
use crate::console::{Browser, logged_in};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A firewall event (`interaction.*`) `minutes_ago` minutes ago.
pub fn fw_event(id: &str, kind: &str, minutes_ago: i64, user: &str, platform: &str, risk: f64, types: &[&str]) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let classifications: Vec<Value> = types.iter().map(|t| json!({"type": t, "value": "****"})).collect();
    json!({"id": id, "type": kind, "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "source": "noxys",
        "data": {"interaction": {"id": format!("i-{id}"), "platform_id": platform, "user_id": user, "risk_score": risk,
            "classification_count": types.len(), "classifications": classifications, "direction": "outbound",
            "decision": {"risk_level": "high"}}}})
}

/// Posts `events` to `space`'s intake with a key of its own.
pub async fn post_events(x: &TestXdr, space: &str, events: Vec<Value>) {
    let (key, _) = x.key(space, &["events_write"], false).await;
    let (status, body) = x.post("/api/v1/events", Some(&key), Value::Array(events).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

use crate::until;

/// The explorer's page for `q` over `range`.
async fn explore(b: &Browser, q: &str, range: &str) -> (StatusCode, String) {
    let r = b
        .http
        .get(format!("{}/events", b.base))
        .query(&[("q", q), ("range", range)])
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

/// The `.query-error` block of a page.
fn error_block(html: &str) -> &str {
    let start = html.find("<div class=\"query-error\" role=\"alert\">").expect("an error block") + 38;
    &html[start..start + html[start..].find("</div>").expect("end of the block")]
}

/// The links of a page that start with `prefix`.
fn links(html: &str, prefix: &str) -> Vec<String> {
    let marker = format!("href=\"{prefix}");
    html.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &html[i + 6..];
            rest[..rest.find('"').expect("closing quote")].replace("&#38;", "&").replace("&amp;", "&")
        })
        .collect()
}

#[tokio::test]
async fn a_query_that_does_not_parse_shows_a_caret_under_the_column_it_names() {
    let (_x, b, _) = logged_in().await;
    let q = "event_type == AND user_id == \"bob\"";
    let (status, html) = explore(&b, q, "24h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("<nav aria-label=\"Main\">"), "a whole page, not an error page: {html}");
    let e = vigie_query::parse(q).expect_err("a syntax error");
    let lines: Vec<&str> = error_block(&html).split('\n').collect();
    assert_eq!(lines[0], "event_type == AND user_id == &quot;bob&quot;");
    assert_eq!(lines[1], format!("{}^", " ".repeat(e.column - 1)), "the caret under column {}", e.column);
    assert_eq!(e.column, 15, "under AND");
    assert!(lines[2].starts_with("1:15: expected a value"), "{}", lines[2]);
    // The query stays in the bar to be fixed.
    assert!(html.contains(">event_type == AND user_id == &#34;bob&#34;</textarea>"), "{html}");

    // On the second line of a query, the caret is under that line's column.
    let (status, html) = explore(&b, "source = \"noxys\"\n| stats count by user_id | sort", "24h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let lines: Vec<&str> = error_block(&html).split('\n').collect();
    assert_eq!(lines[0], "| stats count by user_id | sort");
    assert_eq!(lines[1].find('^'), Some(lines[0].len()), "one past the end of the line: {lines:?}");
    assert!(lines[2].starts_with("2:32: "), "{}", lines[2]);
}

#[tokio::test]
async fn an_events_query_lists_the_matching_events_newest_first_linking_to_each() {
    let (x, b, _) = logged_in().await;
    post_events(
        &x,
        "acme",
        vec![
            fw_event("ev-1", "interaction.high_risk", 30, "alice", "chatgpt", 0.95, &["CREDIT_CARD"]),
            fw_event("ev-2", "interaction.policy_violated", 20, "bob", "deepseek", 0.7, &["EMAIL"]),
            fw_event("ev-3", "interaction.high_risk", 10, "alice", "mistral", 0.91, &["IBAN"]),
        ],
    )
    .await;
    let (status, html) = explore(&b, "user_id == \"alice\"", "24h").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(links(&html, "/events/"), ["/events/ev-3", "/events/ev-1"], "alice's events, newest first");
    assert!(html.contains("<td>interaction.high_risk</td>") && html.contains("<td class=\"num\">0.95"), "{html}");
    assert!(html.contains("CREDIT_CARD") && html.contains("mistral"), "{html}");
    assert!(html.contains("<time datetime="), "times for the browser to localise: {html}");
    // Exports of the same query, which the cookie authenticates.
    let csv = links(&html, "/api/v1/events/search?").into_iter().find(|h| h.contains("format=csv")).expect("a CSV link");
    let r = b.http.get(format!("{}{csv}", b.base)).send().await.expect("csv");
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.expect("text");
    assert_eq!(text.lines().count(), 3, "a header and alice's two events: {text}");
    // An empty bar offers examples and shows every event.
    let (_, html) = b.page("/events").await;
    assert!(html.contains("Try one of these"), "{html}");
    assert_eq!(links(&html, "/events/").len(), 3);
    // A query matching nothing says what to do.
    let (_, html) = explore(&b, "user_id == \"nobody\"", "1h").await;
    assert!(html.contains("No events match."), "{html}");
}

#[tokio::test]
async fn a_stats_query_shows_its_groups_and_a_chart() {
    let (x, b, _) = logged_in().await;
    post_events(
        &x,
        "acme",
        vec![
            fw_event("s-1", "interaction.high_risk", 50, "alice", "chatgpt", 0.95, &[]),
            fw_event("s-2", "interaction.high_risk", 40, "alice", "chatgpt", 0.95, &[]),
            fw_event("s-3", "interaction.high_risk", 30, "bob", "claude", 0.95, &[]),
        ],
    )
    .await;
    let (status, html) = explore(&b, "event_type == \"interaction.high_risk\" | stats count by user_id | sort -count", "24h").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<svg"), "a chart: {html}");
    assert!(html.contains("<span class=\"bar-label\" title=\"alice\">alice</span><span class=\"bar-value\">2</span>"), "{html}");
    assert!(html.contains("<th scope=\"col\">user_id</th><th scope=\"col\" class=\"num\">count</th>"), "{html}");
    // Each group links to its events.
    let group = links(&html, "/events?q=").into_iter().find(|h| h.contains("bob")).expect("bob's group links to his events");
    let (_, events) = b.page(&group).await;
    assert_eq!(links(&events, "/events/"), ["/events/s-3"]);
    // A key `bin(timestamp, …)` draws a time series.
    let (_, html) = explore(&b, "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)", "24h").await;
    assert!(html.contains("class=\"timeseries\"") && html.contains("<i class=\"k1\"></i>chatgpt"), "{html}");
}

#[tokio::test]
async fn more_events_than_a_page_offer_an_older_page_that_continues_the_list() {
    let (x, b, _) = logged_in().await;
    let events = (0..60).map(|i| fw_event(&format!("p-{i:02}"), "interaction.created", 60 - i, "carol", "chatgpt", 0.1, &[])).collect();
    post_events(&x, "acme", events).await;
    let (_, html) = explore(&b, "user_id == \"carol\"", "24h").await;
    let first = links(&html, "/events/p-");
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], "/events/p-59");
    let older = links(&html, "/events?").into_iter().find(|h| h.contains("cursor=")).expect("an Older link");
    let (status, html) = b.page(&older).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let second = links(&html, "/events/p-");
    assert_eq!(second, (0..10).rev().map(|i| format!("/events/p-{i:02}")).collect::<Vec<_>>());
    assert!(!links(&html, "/events?").iter().any(|h| h.contains("cursor=")), "no page after the last");
}

#[tokio::test]
async fn an_event_page_shows_its_fields_the_event_and_the_alerts_holding_it() {
    let (x, b, _) = logged_in().await;
    // Default rule 3 (a card number with risk above 0.9) raises an alert on the event.
    let (_, rules) = b.api("GET", "/api/v1/rules?q=Financial", None).await;
    let rule = rules["items"][0]["id"].as_str().expect("rule 3").to_owned();
    assert_eq!(b.api("PUT", &format!("/api/v1/rules/{rule}/enabled"), None).await.0, StatusCode::OK);
    post_events(&x, "acme", vec![fw_event("card-1", "interaction.high_risk", 5, "dave", "deepseek", 0.97, &["CREDIT_CARD"])]).await;
    let alert: String = until("the alert", || async {
        let (_, page) = b.api("GET", "/api/v1/alerts?user_id=dave", None).await;
        page["items"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let (status, html) = b.page("/events/card-1").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<dt>User</dt>") && html.contains("<dt>Platform</dt>\n      <dd>deepseek</dd>"), "{html}");
    assert!(html.contains("&#34;data.interaction.platform_id&#34;: &#34;deepseek&#34;"), "the event as shown: {html}");
    assert!(html.contains(&format!("href=\"/alerts/{alert}\"")), "the alert holding it: {html}");
    let others = links(&html, "/events?q=user_id").pop().expect("the user's other events");
    let (_, events) = b.page(&others).await;
    assert_eq!(links(&events, "/events/"), ["/events/card-1"]);
}

#[tokio::test]
async fn fields_of_events_are_escaped() {
    let (x, b, _) = logged_in().await;
    post_events(&x, "acme", vec![fw_event("<b>x</b>", "interaction.created", 5, "<script>alert(1)</script>", "chatgpt", 0.2, &[])]).await;
    let (_, html) = b.page("/events").await;
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(html.contains("href=\"/events/%3Cb%3Ex%3C%2Fb%3E\""), "{html}");
    let (status, html) = b.page("/events/%3Cb%3Ex%3C%2Fb%3E").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>alert(1)") && html.contains("&#60;b&#62;x&#60;/b&#62;"), "{html}");
}

#[tokio::test]
async fn a_space_never_sees_another_spaces_events() {
    let (x, b, _) = logged_in().await;
    post_events(&x, "acme", vec![fw_event("mine", "interaction.created", 5, "erin", "chatgpt", 0.2, &[])]).await;
    post_events(&x, "other", vec![fw_event("theirs", "interaction.created", 5, "erin", "chatgpt", 0.2, &[])]).await;
    let (_, html) = explore(&b, "user_id == \"erin\"", "24h").await;
    assert_eq!(links(&html, "/events/"), ["/events/mine"]);
    let (_, html) = explore(&b, "| stats count by user_id", "24h").await;
    assert!(html.contains("<span class=\"bar-value\">1</span>"), "{html}");
    let (status, _) = b.page("/events/theirs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_without_events_read_is_refused_the_explorer() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["alerts_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let (status, html) = b.page("/events?q=x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Not allowed"), "{html}");
}
