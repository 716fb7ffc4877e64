//! Console pages of webhooks: the list, the create form, a webhook's page with the Test button,
//! its delivery log and replay — for an admin, a viewer and another tenant.
use crate::console::{Browser, logged_in};
use crate::receiver::{DEADLINE, Receiver};
use crate::{ADMIN_PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Creates a webhook through the API with the browser's session; returns the create answer.
async fn create(b: &Browser, body: Value) -> Value {
    let (status, created) = b.api("POST", "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// A browser logged in as a viewer of the test tenant (invited and accepted through the API).
async fn viewer(s: &TestServer) -> Browser {
    let (status, inv) = s.post("/api/v1/users/invite", &s.admin, json!({"email": "vera@acme.test", "role": "viewer"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let (status, _) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "viewer password 1"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    Browser::login(&s.base, "vera@acme.test", "viewer password 1").await
}

/// Polls the webhook's page until `cond` holds (deliveries are made in the background).
async fn page_until(b: &Browser, path: &str, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (status, html) = b.page(path).await;
        assert_eq!(status, StatusCode::OK);
        if cond(&html) {
            return html;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never showed {what}: {html}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn without_webhooks_the_list_explains_what_they_are_for_and_links_to_the_form() {
    let (_s, b) = logged_in().await;
    let (status, html) = b.page("/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No webhooks yet."), "{html}");
    assert!(html.contains("Splunk") && html.contains("href=\"/webhooks/new\""));
}

#[tokio::test]
async fn a_webhook_created_with_the_session_shows_on_the_list_with_its_events_and_health() {
    let (_s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w =
        create(&b, json!({"url": rx.url, "events": ["interaction.high_risk", "policy.created"], "description": "SOC <script>x</script>"}))
            .await;
    let id = w["id"].as_str().expect("id");
    let (status, html) = b.page("/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("href=\"/webhooks/{id}\"")), "a link to its page");
    assert!(html.contains(&rx.addr.to_string()), "its host");
    assert!(!html.contains("/hook"), "the list shows the host, not the whole URL (a Slack URL is a credential)");
    assert!(html.contains("<code>interaction.high_risk</code>") && html.contains("<code>policy.created</code>"));
    assert!(html.contains("badge healthy"));
    assert!(html.contains("SOC &#60;script&#62;x&#60;/script&#62;") && !html.contains("<script>x</script>"), "the description is escaped");
    assert!(html.contains(&format!("data-api=\"/webhooks/{id}/test\"")), "the Test button");
    assert!(html.contains("data-body='{\"active\": false}'"), "the Disable button");

    // Disabled: the filter narrows, the badge and the button change.
    let (status, _) = b.api("PATCH", &format!("/api/v1/webhooks/{id}"), Some(json!({"active": false}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, active) = b.page("/webhooks?state=active").await;
    assert!(active.contains("No active webhooks.") && !active.contains(id));
    let (_, inactive) = b.page("/webhooks?state=inactive").await;
    assert!(inactive.contains(id) && inactive.contains("badge disabled") && inactive.contains("data-body='{\"active\": true}'"));
}

#[tokio::test]
async fn the_test_button_reaches_the_receiver_and_its_attempt_shows_in_the_delivery_log() {
    let (s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w = create(&b, json!({"url": rx.url, "events": ["policy.created"]})).await;
    let id = w["id"].as_str().expect("id");

    let (status, fragment) = b.post_fragment(&format!("/webhooks/{id}/test"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{fragment}");
    assert!(fragment.contains("Delivered") && fragment.contains("answered 200"), "{fragment}");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "webhook.test");
    let event = got[0].webhook_id().to_owned();
    assert!(fragment.contains(&event), "the fragment names the test event");

    // The API's own test call answers the same way with the session.
    let (status, result) = b.api("POST", &format!("/api/v1/webhooks/{id}/test"), Some(json!({}))).await;
    assert_eq!((status, result["success"].as_bool()), (StatusCode::OK, Some(true)), "{result}");

    let (status, html) = b.page(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<code>webhook.test</code>") && html.contains(&event), "the attempt is in the log");
    assert!(html.contains("badge test"), "its outcome");
    let (_, one) = b.page(&format!("/webhooks/{id}?event_id={event}")).await;
    assert_eq!(html.matches("badge test").count(), 2, "both tests are in the log");
    assert_eq!(one.matches("badge test").count(), 1, "the event filter keeps that attempt only");

    // Without the session's CSRF token the Test route refuses.
    let r = b.http.post(format!("{}/webhooks/{id}/test", s.base)).json(&json!({})).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(rx.received().len(), 2, "the refused call sent nothing");
}

#[tokio::test]
async fn a_delivered_event_can_be_replayed_from_the_delivery_log() {
    let (s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w = create(&b, json!({"url": rx.url, "events": ["policy.created"]})).await;
    let id = w["id"].as_str().expect("id");
    s.policy("Coach on ChatGPT", 10, "coach", json!([{"field": "platform_id", "operator": "eq", "value": "chatgpt"}])).await;
    let got = rx.wait_until("the policy.created event", |g| !g.is_empty()).await;
    let event = got[0].webhook_id().to_owned();
    let path = format!("/webhooks/{id}");
    let html = page_until(&b, &path, "the delivered attempt", |h| h.contains("badge delivered")).await;
    assert!(html.contains(&format!("data-body='{{\"event_id\": \"{event}\"}}'")), "a Replay button for the event");
    assert!(html.contains(&format!("data-api=\"/api/v1/webhooks/{id}/replay\"")));

    let (status, replayed) = b.api("POST", &format!("/api/v1/webhooks/{id}/replay"), Some(json!({"event_id": event}))).await;
    assert_eq!((status, replayed["queued"].as_u64()), (StatusCode::ACCEPTED, Some(1)), "{replayed}");
    rx.wait_until("the replayed event", |g| g.iter().filter(|r| r.webhook_id() == event).count() == 2).await;
    page_until(&b, &path, "two delivered attempts", |h| h.matches("badge delivered").count() == 2).await;
}

#[tokio::test]
async fn the_signing_secret_and_stored_credentials_are_in_no_page() {
    let (_s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w = create(
        &b,
        json!({"url": rx.url, "events": ["interaction.created"], "headers": {"X-Api-Key": "header-secret-value"}, "auth_token": "bearer-secret-value"}),
    )
    .await;
    let id = w["id"].as_str().expect("id");
    let first = w["signing_secret"].as_str().expect("the create answer carries the secret").to_owned();
    assert!(first.starts_with("whsec_"));
    let (status, rotated) = b.api("POST", &format!("/api/v1/webhooks/{id}/rotate-secret"), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = rotated["signing_secret"].as_str().expect("secret").to_owned();
    for path in ["/webhooks".to_owned(), "/webhooks/new".to_owned(), format!("/webhooks/{id}")] {
        let (status, html) = b.page(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        for secret in [first.as_str(), second.as_str(), "header-secret-value", "bearer-secret-value"] {
            assert!(!html.contains(secret), "{path} shows a secret");
        }
    }
    let (_, html) = b.page(&format!("/webhooks/{id}")).await;
    assert!(html.contains("<code>X-Api-Key</code>") && html.contains("&#34;********&#34;"), "the header is named, its value masked");
    assert!(html.contains("data-field=\"signing_secret\"></code>"), "the rotate box is empty until the API answers");
}

#[tokio::test]
async fn the_form_has_an_input_for_every_field_the_api_reports_invalid() {
    let (_s, b) = logged_in().await;
    let (status, form) = b.page("/webhooks/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("data-api=\"/api/v1/webhooks\"") && form.contains("data-then=\"show:#created\""));
    assert!(form.contains("id=\"created\"") && form.contains("will not be shown again"));
    for event in ["interaction.created", "interaction.policy_violated", "policy.deleted", "webhook.disabled"] {
        assert!(form.contains(&format!("name=\"events\" data-type=\"list\" value=\"{event}\"")), "a checkbox for {event}");
    }
    let bad = [
        json!({"url": "ftp://example.org/x", "events": [], "format": "xml", "batch_max": 0, "max_in_flight": 100, "description": "d".repeat(501)}),
        json!({"url": "https://example.org/x", "events": ["policy.created"], "format": "sekoia", "auth_token": "a\nb", "batch_ms": 70000}),
    ];
    let mut seen = 0;
    for body in bad {
        let (status, e) = b.api("POST", "/api/v1/webhooks", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        for f in e["fields"].as_array().expect("fields") {
            let field = f["field"].as_str().expect("field");
            assert!(form.contains(&format!("name=\"{field}\"")), "no input named {field} for: {f}");
            seen += 1;
        }
    }
    assert!(seen >= 8, "every invalid field was reported");
}

#[tokio::test]
async fn the_edit_form_sends_a_patch_and_keeps_stored_secrets_unless_changed() {
    let (_s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w = create(&b, json!({"url": rx.url, "events": ["policy.created"], "headers": {"X-Api-Key": "k1"}, "auth_token": "t1"})).await;
    let id = w["id"].as_str().expect("id");
    let (_, html) = b.page(&format!("/webhooks/{id}")).await;
    assert!(html.contains(&format!("data-api=\"/api/v1/webhooks/{id}\" data-method=\"PATCH\"")));
    assert!(html.contains("value=\"policy.created\" checked"), "its events are ticked");
    assert!(html.contains(&format!("value=\"{}\"", rx.url)), "an admin edits the whole URL");
    // What the form sends when only the description changes: the masked header comes back.
    let (status, changed) = b
        .api(
            "PATCH",
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"url": rx.url, "description": "edited", "events": ["policy.created", "policy.deleted"], "format": "standard",
                "headers": {"X-Api-Key": "********"}, "batch_max": 1, "batch_ms": 1000, "max_in_flight": 16})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["auth_token"], "********", "an empty bearer field (left out) keeps the token");
    b.post_fragment(&format!("/webhooks/{id}/test"), json!({})).await;
    let got = rx.wait_until("the test", |g| !g.is_empty()).await;
    assert_eq!(got[0].header("x-api-key"), Some("k1"));
    assert_eq!(got[0].header("authorization"), Some("Bearer t1"));
}

#[tokio::test]
async fn a_viewer_sees_webhooks_without_any_form_and_the_api_refuses_their_changes() {
    let (s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w = create(&b, json!({"url": rx.url, "events": ["policy.created"]})).await;
    let id = w["id"].as_str().expect("id");
    let v = viewer(&s).await;
    let (status, list) = v.page("/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&format!("href=\"/webhooks/{id}\"")));
    assert!(!list.contains("data-api") && !list.contains("/webhooks/new"), "no button or form for a viewer");
    let (status, page) = v.page(&format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Delivery log") && page.contains("Health"));
    assert!(!page.contains("data-api") && !page.contains("<form data-api"), "no form for a viewer");
    assert!(!page.contains(&rx.url), "a viewer sees the host only");
    assert_eq!(v.page("/webhooks/new").await.0, StatusCode::FORBIDDEN);
    assert_eq!(v.api("PATCH", &format!("/api/v1/webhooks/{id}"), Some(json!({"active": false}))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(v.post_fragment(&format!("/webhooks/{id}/test"), json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(v.api("DELETE", &format!("/api/v1/webhooks/{id}"), None).await.0, StatusCode::FORBIDDEN);
    assert!(rx.received().is_empty(), "the viewer's test sent nothing");
}

#[tokio::test]
async fn another_tenant_neither_lists_nor_opens_nor_tests_a_webhook() {
    let (s, b) = logged_in().await;
    let rx = Receiver::start().await;
    let w = create(&b, json!({"url": rx.url, "events": ["policy.created"], "description": "acme SOC"})).await;
    let id = w["id"].as_str().expect("id");
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let other = Browser::login(&s.base, "root@globex.test", "globex password 1").await;
    let (_, list) = other.page("/webhooks").await;
    assert!(list.contains("No webhooks yet.") && !list.contains("acme SOC"));
    assert_eq!(other.page(&format!("/webhooks/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(other.post_fragment(&format!("/webhooks/{id}/test"), json!({})).await.0, StatusCode::NOT_FOUND);
    assert!(rx.received().is_empty());
    // The owner still has it.
    let again = Browser::login(&s.base, crate::ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(again.page("/webhooks").await.1.contains("acme SOC"));
}
