//! The "Try a prompt" page: the verdict the scan API would give, the highlighted findings and
//! the risk, for a text that is stored nowhere.
use crate::console::{Browser, logged_in};
use crate::console_overview::viewer;
use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;

const TEXT: &str = "Invoice for the zebra quokka account: card 4532 0151 1283 0366, thanks";

fn files_containing(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read file");
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{} contains {n:?}", path.display()));
            }
        }
    }
    found
}

async fn block_cards(s: &TestServer) -> String {
    s.policy("Block cards", 10, "block", json!([{"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}])).await
}

#[tokio::test]
async fn a_card_number_gets_block_with_its_policy_risk_and_highlight_and_nothing_is_stored() {
    let (s, b) = logged_in().await;
    let policy = block_cards(&s).await;
    let outbox = s.count("SELECT count(*) FROM outbox");
    let (status, html) = b.post_fragment("/try", json!({"text": TEXT, "platform_id": "deepseek"})).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("<p class=\"verdict block\"><span class=\"badge block\">block</span> Blocked: it would not reach the AI service</p>"),
        "{html}"
    );
    assert!(html.contains(&format!("<a href=\"/policies/{policy}\">Block cards</a>")));
    assert!(html.contains("blocks it; remove them before sending"), "the message shown to the person");
    assert!(html.contains("<span class=\"badge critical\">critical</span>"));
    assert!(html.contains("DeepSeek — not vetted"));
    assert!(
        html.contains("card <mark class=\"finding high\" title=\"CREDIT_CARD: ****0366\">4532 0151 1283 0366</mark>, thanks"),
        "the finding is marked in the text: {html}"
    );
    assert!(html.contains("<td><code>****0366</code></td>"), "the table shows the value masked");
    assert!(!html.contains("<!doctype"), "a fragment, not a page");

    assert_eq!(s.count("SELECT count(*) FROM interactions"), 0, "no interaction recorded");
    assert_eq!(s.count("SELECT count(*) FROM outbox"), outbox, "no event emitted");
    let needles = ["zebra quokka", "4532 0151 1283 0366", "4532015112830366"];
    assert_eq!(files_containing(s.dir.path(), &needles), Vec::<String>::new(), "while running (WAL included)");
    let dir = s.stop().await;
    assert_eq!(files_containing(dir.path(), &needles), Vec::<String>::new(), "after shutdown");
}

#[tokio::test]
async fn the_verdict_is_the_one_the_scan_api_gives() {
    let (s, b) = logged_in().await;
    s.policy("Coach e-mails on unvetted platforms", 10, "coach", json!([{"field": "platform_vetted", "operator": "eq", "value": false}, {"field": "classifications", "operator": "contains", "value": "EMAIL"}]))
        .await;
    let text = "write to alice.martin@acme.fr about the plan";
    // Not vetted: coach; vetted: log; no platform counts as not vetted.
    for (platform, expected) in [(Some("mistral"), "coach"), (Some("claude"), "log"), (None, "coach")] {
        let mut body = json!({"text": text});
        if let Some(p) = platform {
            body["platform_id"] = json!(p);
        }
        let (_, api) = s.post("/api/v1/scan", &s.admin, body.clone()).await;
        let (status, html) = b.post_fragment("/try", body).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let action = api["decision"]["action"].as_str().expect("action");
        assert_eq!(action, expected, "{platform:?}: {api}");
        assert!(html.contains(&format!("<p class=\"verdict {action}\">")), "{platform:?}: {api} vs {html}");
        assert!(html.contains(&format!("<span class=\"mono\">{:.2}</span>", api["risk_score"].as_f64().expect("risk"))), "{platform:?}");
    }
    let (_, html) = b.post_fragment("/try", json!({"text": "What is the capital of France?", "platform_id": "chatgpt"})).await;
    assert!(html.contains("<p class=\"verdict log\">") && html.contains("No policy matched"), "{html}");
    assert!(html.contains("No sensitive data was found"));
}

#[tokio::test]
async fn the_page_has_a_labelled_form_with_the_platform_catalogue() {
    let (_s, b) = logged_in().await;
    let (status, html) = b.page("/try").await;
    assert_eq!(status, StatusCode::OK);
    for label in ["<label for=\"try-text\">", "<label for=\"try-platform\">", "<label for=\"try-user\">"] {
        assert!(html.contains(label), "{label}");
    }
    assert!(html.contains("data-api=\"/try\" data-method=\"POST\" data-then=\"show:#result\""));
    assert!(html.contains("<option value=\"deepseek\">DeepSeek — not vetted</option>"));
    assert!(html.contains("<option value=\"claude\">Claude (Anthropic) — vetted</option>"));
    assert!(html.contains("id=\"result\""));
    assert!(!html.contains("fieldset disabled"));
}

#[tokio::test]
async fn a_text_over_the_limit_gets_a_clear_message_in_the_fragment() {
    let s = TestServer::start_with(|o| o.max_text_bytes = 100).await;
    let b = Browser::login(&s.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, html) = b.post_fragment("/try", json!({"text": "x".repeat(101)})).await;
    assert_eq!(status, StatusCode::OK, "the fragment replaces an earlier verdict");
    assert!(html.contains("role=\"alert\"") && html.contains("text is 101 bytes, more than the 100 this server scans"), "{html}");
    // Past the body limit too (room for six-fold JSON escapes, at least 1 MiB).
    let (status, html) = b.post_fragment("/try", json!({"text": "x".repeat(1_100_000)})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("longer than the 100 bytes this server scans"), "{html}");
    assert_eq!(b.post_fragment("/try", json!({"text": "x".repeat(100)})).await.0, StatusCode::OK, "at the limit");
}

#[tokio::test]
async fn field_errors_come_back_as_the_api_reports_them_and_the_text_is_escaped() {
    let (_s, b) = logged_in().await;
    let r = b
        .http
        .post(format!("{}/try", b.base))
        .header("x-csrf-token", &b.csrf)
        .json(&json!({"text": "hi", "user_id": "<script>alert(1)</script>"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["fields"][0]["field"], "user_id", "{e}");
    let (status, html) = b.post_fragment("/try", json!({"text": "  "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("\"field\":\"text\""));
    let (status, html) = b.post_fragment("/try", json!({"text": "<script>alert(1)</script> & <img src=x>"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x&gt;"), "{html}");
}

#[tokio::test]
async fn without_the_csrf_token_nothing_is_tried() {
    let (_s, b) = logged_in().await;
    let r = b.http.post(format!("{}/try", b.base)).json(&json!({"text": TEXT})).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_viewer_sees_the_page_without_a_usable_form_as_the_scan_api_refuses_them() {
    let s = TestServer::start().await;
    block_cards(&s).await;
    let vera = viewer(&s).await;
    let (status, html) = vera.page("/try").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<fieldset disabled>") && html.contains("needs the admin role"), "{html}");
    let (status, _) = vera.post_fragment("/try", json!({"text": TEXT})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = vera.api("POST", "/api/v1/scan", Some(json!({"text": TEXT}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the same rule as the API");
}
