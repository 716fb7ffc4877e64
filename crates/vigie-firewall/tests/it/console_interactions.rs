//! The Interactions pages: the list with its filters and pagination, the detail with masked
//! findings, the decision and the events; viewers, tenants and escaping.
use crate::console::logged_in;
use crate::console_overview::{has_escaped, link, other_tenant, three_blocked_two_logged, viewer};
use crate::{TestServer, interaction};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ROW: &str = "title=\"Details of this interaction\"";
const ALICE: &str = "0190a3c1-0000-7000-8000-00000000a11c";

async fn record(s: &TestServer, body: Value) -> Value {
    let (status, r) = s.interaction(&s.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    r
}

/// How many rows the list shows at `path`.
async fn rows(b: &crate::console::Browser, path: &str) -> usize {
    let (status, html) = b.page(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    html.matches(ROW).count()
}

#[tokio::test]
async fn filters_narrow_the_list_and_rows_link_to_their_detail_and_policy() {
    let (s, b) = logged_in().await;
    let policy = three_blocked_two_logged(&s).await;
    let mut body = interaction("claude");
    body["user_id"] = json!(ALICE);
    body["classifications"] = json!([{"type": "EMAIL", "value": "alice@acme.fr"}]);
    record(&s, body).await;

    let (_, html) = b.page("/interactions").await;
    assert_eq!(html.matches(ROW).count(), 6);
    assert_eq!(html.matches("<span class=\"badge block\">block</span>").count(), 3);
    assert_eq!(html.matches(&format!("<a href=\"/policies/{policy}\">Block cards</a>")).count(), 3, "blocked rows link to their policy");
    assert!(html.contains("<label for=\"f-action\">Action</label>") && html.contains("<label for=\"f-user\">User id</label>"));
    assert!(html.contains("data-autosubmit"));
    let first = html.find(">Claude (Anthropic)</a>").expect("claude row");
    assert!(first < html.find(">DeepSeek</a>").expect("deepseek row"), "newest first");

    for (filter, expected) in [
        ("action=block", 3),
        ("action=log", 3),
        ("action=coach", 0),
        ("platform_id=chatgpt", 2),
        (&format!("user_id={ALICE}") as &str, 1),
        ("type=email", 1),
        ("type=CREDIT_CARD", 3),
        ("risk=critical", 3),
        ("action=block&platform_id=chatgpt", 0),
        ("when=24h", 6),
        ("when=&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", 6),
        ("from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", 0),
        ("action=", 6),
    ] {
        assert_eq!(rows(&b, &format!("/interactions?{filter}")).await, expected, "{filter}");
    }
    let (_, html) = b.page("/interactions?action=coach").await;
    assert!(html.contains("No interactions match these filters."), "{html}");
    assert!(html.contains("<option value=\"coach\" selected>"), "the form shows the filter again");

    // A row leads to its detail.
    let (status, detail) = b.page(&link(&html_of(&b, "/interactions?platform_id=claude").await, "/interactions/0")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.contains("a***@acme.fr") && detail.contains(ALICE), "{detail}");
}

async fn html_of(b: &crate::console::Browser, path: &str) -> String {
    b.page(path).await.1
}

#[tokio::test]
async fn the_detail_shows_masked_values_the_decision_and_the_events_and_never_the_raw_card() {
    let (s, b) = logged_in().await;
    let policy =
        s.policy("Block cards", 10, "block", json!([{"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}])).await;
    let r = record(
        &s,
        json!({"platform_id": "deepseek", "text": "pay with 4532 0151 1283 0366 please", "content_metadata": {"model": "<b>deep</b>", "url": "https://chat.deepseek.com/a/b"},
            "classifications": [{"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.99}]}),
    )
    .await;
    let id = r["id"].as_str().expect("id");
    let (status, html) = b.page(&format!("/interactions/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("****0366"), "{html}");
    assert!(html.contains(&format!("<a href=\"/policies/{policy}\">Block cards</a>")));
    assert!(has_escaped(&html, "This prompt contains CREDIT_CARD. Policy \"Block cards\" blocks it"), "{html}");
    assert!(html.contains(&format!("sha256:{}", r["content_hash"].as_str().expect("hash"))));
    assert!(html.contains("35 characters"), "the length of the text");
    assert!(html.contains("<code>interaction.created</code>") && html.contains("<code>interaction.policy_violated</code>"), "{html}");
    assert!(html.contains("<code>alert.severity_critical</code>"));
    assert!(has_escaped(&html, "<b>deep</b>") && html.contains("https://chat.deepseek.com"), "metadata, escaped");
    for path in [format!("/interactions/{id}"), "/interactions".to_owned(), "/".to_owned()] {
        let (_, html) = b.page(&path).await;
        for raw in ["4532015112830366", "4532 0151 1283 0366", "pay with"] {
            assert!(!html.contains(raw), "{path} shows {raw:?}");
        }
    }
    let (status, html) = b.page("/interactions/0190a3c1-0000-7000-8000-000000000099").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("<!doctype html>"));
}

#[tokio::test]
async fn the_older_link_follows_the_cursor_to_the_next_page() {
    let (s, b) = logged_in().await;
    for _ in 0..51 {
        record(&s, interaction("mistral")).await;
    }
    let (_, html) = b.page("/interactions?platform_id=mistral").await;
    assert_eq!(html.matches(ROW).count(), 50);
    let older = link(&html, "/interactions?platform_id=mistral&cursor=");
    let (_, html) = b.page(&older).await;
    assert_eq!(html.matches(ROW).count(), 1);
    assert!(!html.contains(">Older</a>"), "the last page");
    assert!(html.contains(">Newest</a>"));
}

#[tokio::test]
async fn an_empty_tenant_is_told_what_to_do_next() {
    let (_s, b) = logged_in().await;
    let (status, html) = b.page("/interactions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No interactions yet."), "{html}");
    assert!(html.contains("POST /api/v1/interactions"));
}

#[tokio::test]
async fn a_viewer_sees_the_list_and_the_detail() {
    let s = TestServer::start().await;
    let r = record(&s, interaction("chatgpt")).await;
    let vera = viewer(&s).await;
    assert_eq!(rows(&vera, "/interactions").await, 1);
    let (status, _) = vera.page(&format!("/interactions/{}", r["id"].as_str().expect("id"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn another_tenants_interactions_do_not_show() {
    let s = TestServer::start().await;
    let r = record(&s, interaction("chatgpt")).await;
    let globex = other_tenant(&s).await;
    let (_, html) = globex.page("/interactions").await;
    assert!(html.contains("No interactions yet."));
    let (status, _) = globex.page(&format!("/interactions/{}", r["id"].as_str().expect("id"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_user_id_like_a_script_is_escaped_and_reported_and_so_is_a_policy_name() {
    let (s, b) = logged_in().await;
    let (status, html) = b.page("/interactions?user_id=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(has_escaped(&html, "<script>alert(1)</script>"), "{html}");
    assert!(
        html.contains("value=\"&#60;script&#62;alert(1)") || html.contains("value=\"&lt;script&gt;alert(1)"),
        "the form shows it back, escaped"
    );
    assert!(html.contains("is not a user id"));
    s.policy("<script>x</script>", 10, "coach", json!([{"field": "platform_id", "operator": "eq", "value": "poe"}])).await;
    record(&s, interaction("poe")).await;
    let (_, html) = b.page("/interactions").await;
    assert!(!html.contains("<script>x"), "{html}");
    assert!(has_escaped(&html, "<script>x</script>"), "{html}");
}

#[tokio::test]
async fn the_api_filters_by_classification_type_too() {
    let (s, b) = logged_in().await;
    three_blocked_two_logged(&s).await;
    let (status, page) = b.api("GET", "/api/v1/interactions?type=credit_card", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    let (status, e) = s.get("/api/v1/interactions?type=not%20a%20type%201234", &s.admin).await;
    assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("type")), "{e}");
    let (_, doc) = s.call("GET", "/api/v1/openapi.json", None, None).await;
    let params = doc["paths"]["/api/v1/interactions"]["get"]["parameters"].as_array().cloned().unwrap_or_default();
    assert!(params.iter().any(|p| p["name"] == "type" && p["in"] == "query"), "documented: {params:?}");
}

#[tokio::test]
async fn the_detail_still_names_a_policy_deleted_since() {
    let (s, b) = logged_in().await;
    let policy = s.policy("Coach on Poe", 10, "coach", json!([{"field": "platform_id", "operator": "eq", "value": "poe"}])).await;
    let r = record(&s, interaction("poe")).await;
    assert_eq!(s.call("DELETE", &format!("/api/v1/policies/{policy}"), Some(&s.admin), None).await.0, StatusCode::NO_CONTENT);
    let (status, html) = b.page(&format!("/interactions/{}", r["id"].as_str().expect("id"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("<a href=\"/policies/{policy}\">Coach on Poe</a> <span class=\"hint\">(since deleted)</span>")),
        "{html}"
    );
    assert!(html.contains("<span class=\"badge coach\">coach</span>"));
}
