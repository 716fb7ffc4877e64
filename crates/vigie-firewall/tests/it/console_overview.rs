//! The Overview page: interactions per day by action, top platforms and types, over a range;
//! its numbers are the ones recorded through the API, for the logged-in tenant only.
use crate::console::{Browser, logged_in};
use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::json;

/// A viewer of the Acme tenant, logged in through the form.
pub async fn viewer(s: &TestServer) -> Browser {
    let (status, inv) =
        s.post("/api/v1/users/invite", &s.admin, json!({"email": "vera@acme.test", "role": "viewer", "display_name": "Vera"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let body = json!({"token": inv["invite_token"], "password": "viewer password 1"});
    let (status, session) = s.call("POST", "/api/v1/auth/accept-invite", None, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    Browser::login(&s.base, "vera@acme.test", "viewer password 1").await
}

/// The admin of a second tenant, Globex, logged in through the form.
pub async fn other_tenant(s: &TestServer) -> Browser {
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    Browser::login(&s.base, "root@globex.test", "globex password 1").await
}

/// Records 3 interactions carrying a card on DeepSeek (blocked by a policy) and 2 clean ones on
/// ChatGPT (logged); returns the policy's id.
pub async fn three_blocked_two_logged(s: &TestServer) -> String {
    let policy =
        s.policy("Block cards", 10, "block", json!([{"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}])).await;
    for _ in 0..3 {
        let mut body = interaction("deepseek");
        body["classifications"] = json!([{"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.99}]);
        let (status, r) = s.interaction(&s.admin, body).await;
        assert_eq!((status, r["decision"]["action"].as_str()), (StatusCode::CREATED, Some("block")), "{r}");
    }
    for _ in 0..2 {
        let (status, r) = s.interaction(&s.admin, interaction("chatgpt")).await;
        assert_eq!((status, r["decision"]["action"].as_str()), (StatusCode::CREATED, Some("log")), "{r}");
    }
    policy
}

/// The `href` of the first link whose address starts with `prefix` (written with a bare `&`),
/// unescaped.
pub fn link(html: &str, prefix: &str) -> String {
    let href = |h: &str| h.replace("&#38;", "&").replace("&amp;", "&");
    let (mut from, mut found) = (0, None);
    while let Some(i) = html[from..].find("href=\"") {
        let at = from + i + 6;
        let value = href(&html[at..at + html[at..].find('"').expect("closing quote")]);
        if value.starts_with(prefix) {
            found = Some(value);
            break;
        }
        from = at;
    }
    found.unwrap_or_else(|| panic!("no link to {prefix} in {html}"))
}

/// Whether `html` holds `raw` escaped (as askama writes it, or with named entities).
pub fn has_escaped(html: &str, raw: &str) -> bool {
    let numeric = raw.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;");
    let named = raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    html.contains(&numeric) || html.contains(&named)
}

#[tokio::test]
async fn the_overview_counts_what_was_recorded_by_action_platform_and_type() {
    let (s, b) = logged_in().await;
    three_blocked_two_logged(&s).await;
    for range in ["", "?range=24h", "?range=7d", "?range=30d"] {
        let (status, html) = b.page(&format!("/{range}")).await;
        assert_eq!(status, StatusCode::OK, "{range}");
        assert!(html.contains("<h2>Interactions</h2><div class=\"big\">5</div>"), "{range}: {html}");
        assert!(html.contains("<h2>Blocked</h2><div class=\"big\">3</div>"), "{range}");
        assert!(html.contains("<h2>Coached</h2><div class=\"big\">0</div>"), "{range}");
        assert!(html.contains("<h2>Logged</h2><div class=\"big\">2</div>"), "{range}");
        assert!(html.contains("Block rate 60.0%"), "{range}");
        assert!(html.contains("<svg class=\"chart\""), "{range}: the chart is drawn");
        assert!(html.contains("block (3)") && html.contains("log (2)"), "{range}: the legend gives the numbers");
    }
    let (_, html) = b.page("/").await;
    assert!(html.contains("<option value=\"7d\" selected>"), "7 days by default");
    // Top platforms, most first, with their vetting; top types.
    let deepseek = html.find(">DeepSeek</a>").expect("DeepSeek listed");
    let chatgpt = html.find(">ChatGPT (OpenAI)</a>").expect("ChatGPT listed");
    assert!(deepseek < chatgpt, "the platform with the most interactions comes first");
    assert!(html[deepseek..chatgpt].contains("<td class=\"num\">3</td>") && html[deepseek..chatgpt].contains("not vetted"));
    assert!(html[chatgpt..].contains("<td class=\"num\">2</td>") && html[chatgpt..].contains("badge ok\">vetted"));
    assert!(html.contains("<code>CREDIT_CARD</code></a></td><td class=\"num\">3</td>"), "{html}");
    assert!(!html.contains("4532015112830366"), "no raw value on the page");

    // The links lead to the interactions they count.
    let (status, list) = b.page(&link(&html, "/interactions?platform_id=deepseek")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.matches("title=\"Details of this interaction\"").count(), 3, "{list}");
    let (_, list) = b.page(&link(&html, "/interactions?type=CREDIT_CARD")).await;
    assert_eq!(list.matches("title=\"Details of this interaction\"").count(), 3);
    let (_, list) = b.page(&link(&html, "/interactions?from=")).await;
    assert_eq!(list.matches("title=\"Details of this interaction\"").count(), 5, "a bar or the 'see all' link");
}

#[tokio::test]
async fn an_empty_tenant_is_told_what_to_do_next() {
    let (_s, b) = logged_in().await;
    let (status, html) = b.page("/?range=30d").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No interactions in the last 30 days."), "{html}");
    assert!(html.contains("href=\"/try\""), "it points to a next step");
    assert!(!html.contains("<svg class=\"chart\""));
}

#[tokio::test]
async fn interactions_without_findings_show_an_empty_type_table() {
    let (s, b) = logged_in().await;
    s.interaction(&s.admin, interaction("claude")).await;
    let (_, html) = b.page("/").await;
    assert!(html.contains("<h2>Interactions</h2><div class=\"big\">1</div>"));
    assert!(html.contains("No sensitive data found in the last 7 days."), "{html}");
}

#[tokio::test]
async fn a_viewer_sees_the_overview_and_another_tenant_sees_none_of_acmes_numbers() {
    let s = TestServer::start().await;
    three_blocked_two_logged(&s).await;
    let vera = viewer(&s).await;
    let (status, html) = vera.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h2>Interactions</h2><div class=\"big\">5</div>"));
    let globex = other_tenant(&s).await;
    let (status, html) = globex.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No interactions in the last 7 days."), "{html}");
    assert!(!html.contains("DeepSeek"));
    // And Acme's admin still sees them all.
    let admin = Browser::login(&s.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(admin.page("/").await.1.contains("<div class=\"big\">5</div>"));
}
