//! The space & keys, people and notification pages: keys created through the form's API call
//! listed without their secret, revoked, the page refused without admin; the space's form; the
//! people directory (CSV import, a bad line named, search, training highlighted, escaping); a
//! webhook channel's Test button delivering to a local receiver, secrets masked, Retry; and
//! spaces kept apart.
use crate::TestXdr;
use crate::console::{Browser, logged_in};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode as AxStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const ADMIN: &[&str] = &["events_read", "alerts_read", "alerts_write", "cases_read", "playbooks_read", "admin"];

/// The HTML a page route answered to a script's POST.
fn html(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("an HTML answer, not {v}"))
}

/// Whether `page` shows `raw` HTML-escaped (as askama writes it, or as `&lt;`), and never raw.
fn shows_escaped(page: &str, raw: &str) -> bool {
    let named = raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let numeric = raw.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;");
    !page.contains(raw) && (page.contains(&named) || page.contains(&numeric))
}

// ---------------------------------------------------------------------------------------------
// Space & keys

#[tokio::test]
async fn a_key_created_through_the_form_is_listed_and_its_secret_appears_in_no_page() {
    let (_x, b, _) = logged_in().await;
    let (status, page) = b.page("/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-api=\"/api/v1/keys\"") && page.contains("data-then=\"show:#created\""), "{page}");
    assert!(page.contains("name=\"scopes\" value=\"events_write\" data-type=\"list\""), "scopes as checkboxes: {page}");

    // The form's call, as the script makes it.
    let body = json!({"name": "Firewall <b>webhook</b>", "scopes": ["events_write"], "signed": true, "default_source": "noxys"});
    let (status, created) = b.api("POST", "/api/v1/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (secret, signing, prefix) = (
        created["secret_key"].as_str().expect("key").to_owned(),
        created["signing_secret"].as_str().expect("signing secret").to_owned(),
        created["prefix"].as_str().expect("prefix").to_owned(),
    );
    let (_, page) = b.page("/settings").await;
    assert!(shows_escaped(&page, "Firewall <b>webhook</b>"), "listed, escaped: {page}");
    assert!(page.contains(&format!("<code>{prefix}…</code>")), "{page}");
    assert!(page.contains("<span class=\"badge\">events_write</span>") && page.contains("badge active"), "{page}");
    for path in ["/settings", "/playbooks", "/people", "/notifications", "/alerts", "/"] {
        let (_, page) = b.page(path).await;
        assert!(!page.contains(&secret) && !page.contains(&signing), "{path} shows a secret");
    }

    // Without the CSRF token, the form's call is refused.
    let r =
        b.http.post(format!("{}/api/v1/keys", b.base)).json(&json!({"name": "x", "scopes": ["events_write"]})).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A validation error names a field the form has.
    let (status, err) = b.api("POST", "/api/v1/keys", Some(json!({"name": "x", "scopes": []}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["fields"][0]["field"], "scopes");
    assert!(page.contains("data-error-for=\"scopes\""), "the scopes' errors have a place");
}

#[tokio::test]
async fn revoking_a_key_from_the_page_stops_it_and_the_page_says_so() {
    let (x, b, _) = logged_in().await;
    let (victim, _) = x.key("acme", &["alerts_read"], false).await;
    let (_, keys) = b.api("GET", "/api/v1/keys", None).await;
    let id = keys["items"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| victim.starts_with(k["prefix"].as_str().unwrap_or("-")))
        .and_then(|k| k["id"].as_str())
        .expect("the key")
        .to_owned();
    let (_, page) = b.page("/settings").await;
    let button = format!("data-api=\"/api/v1/keys/{id}\" data-method=\"DELETE\"");
    assert!(page.contains(&button), "{page}");
    assert!(page.contains("badge\">this session"), "the session's own key is marked: {page}");

    let (status, _) = b.api("DELETE", &format!("/api/v1/keys/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(x.get("/api/v1/alerts", &victim).await.0, StatusCode::UNAUTHORIZED);
    let (_, page) = b.page("/settings").await;
    assert!(page.contains("badge rejected\">revoked"), "{page}");
    assert!(!page.contains(&button), "no Revoke for a revoked key");
}

#[tokio::test]
async fn the_space_form_changes_retention_and_the_analyst_on_duty() {
    let (_x, b, _) = logged_in().await;
    let (_, page) = b.page("/settings").await;
    assert!(page.contains("The console works inside one space"), "{page}");
    assert!(page.contains("<dd>acme</dd>"), "the space's name: {page}");
    let (status, space) = b.api("PATCH", "/api/v1/space", Some(json!({"retention_days": 30, "on_duty": "ana <ops>"}))).await;
    assert_eq!(status, StatusCode::OK, "{space}");
    let (_, page) = b.page("/settings").await;
    assert!(page.contains(&format!("<code>{}</code>", space["id"].as_str().expect("id"))), "the space's id: {page}");
    assert!(page.contains("value=\"30\""), "{page}");
    assert!(shows_escaped(&page, "value=\"ana <ops>\""), "{page}");
    // A bad value names the form's input.
    let (status, err) = b.api("PATCH", "/api/v1/space", Some(json!({"retention_days": 0}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["fields"][0]["field"], "retention_days");
    assert!(page.contains("name=\"retention_days\""));
    // Cleared with null (the field's data-empty).
    assert!(page.contains("name=\"on_duty\"") && page.contains("data-empty=\"null\""));
    let (_, space) = b.api("PATCH", "/api/v1/space", Some(json!({"on_duty": null}))).await;
    assert_eq!(space["on_duty"], Value::Null);
}

#[tokio::test]
async fn a_key_without_admin_has_no_settings_in_the_menu_and_the_page_is_refused() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["events_read", "alerts_read", "playbooks_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let (_, home) = b.page("/people").await;
    assert!(!home.contains("href=\"/settings\""), "{home}");
    assert!(home.contains("href=\"/people\"") && home.contains("href=\"/notifications\""), "{home}");
    let (status, page) = b.page("/settings").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("admin"), "the page says which scope is missing: {page}");
}

// ---------------------------------------------------------------------------------------------
// People

#[tokio::test]
async fn a_csv_import_lists_the_people_and_a_bad_line_is_named_with_nothing_imported() {
    let (_x, b, _) = logged_in().await;
    let (_, page) = b.page("/people").await;
    assert!(page.contains("No people yet.") && page.contains("user_id"), "the empty state explains the mapping: {page}");
    assert!(page.contains("data-api=\"/people/import\""), "{page}");

    let csv = "user_id,display_name,email,manager_email,department,training_date\n\
               alice,Alice Martin,alice@corp.example,erin@corp.example,Finance,2020-01-10\n\
               bob,Bob Stone,bob@corp.example,,Sales,\n";
    let (status, answer) = b.api("POST", "/people/import", Some(json!({"csv": csv}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(html(&answer).contains("Imported 2 people") && html(&answer).contains("2 added"), "{answer}");
    let (_, page) = b.page("/people").await;
    assert!(page.contains("Alice Martin") && page.contains("Bob Stone"), "{page}");
    assert!(page.contains("href=\"/people/alice\""), "{page}");
    assert!(page.contains("over a year"), "old training highlighted: {page}");
    assert!(page.contains("badge high\">never"), "no training highlighted: {page}");

    // A bad line: named, and nothing imported (carol is not added).
    let bad = "user_id,email\ncarol,carol@corp.example\ndave,not-an-address\n";
    let (status, answer) = b.api("POST", "/people/import", Some(json!({"csv": bad}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let frag = html(&answer);
    assert!(frag.contains("Nothing was imported.") && frag.contains("<strong>line 3, email</strong>"), "{frag}");
    assert!(!b.page("/people").await.1.contains("carol"));
    // Empty text names the field.
    let (status, err) = b.api("POST", "/people/import", Some(json!({"csv": " "}))).await;
    assert_eq!((status, err["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("csv")));

    // The search narrows the list.
    let (_, found) = b.page("/people?q=ali").await;
    assert!(found.contains("Alice Martin") && !found.contains("Bob Stone"), "{found}");
    let (_, none) = b.page("/people?q=zed").await;
    assert!(none.contains("Nobody matches."), "{none}");

    // A person's page with the edit form (PUT to the API) and their alerts.
    let (status, person) = b.page("/people/alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(person.contains("data-api=\"/api/v1/people/alice\" data-method=\"PUT\""), "{person}");
    assert!(person.contains("href=\"/alerts?user_id=alice\""), "{person}");
}

#[tokio::test]
async fn a_persons_name_is_escaped_and_a_reader_gets_no_forms() {
    let x = TestXdr::start().await;
    let (admin, _) = x.key("acme", ADMIN, false).await;
    let b = Browser::login(&x.base, &admin).await;
    let (status, _) = b.api("PUT", "/api/v1/people/mallory", Some(json!({"display_name": "<script>x</script>"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    for path in ["/people", "/people/mallory"] {
        let (_, page) = b.page(path).await;
        assert!(shows_escaped(&page, "<script>x</script>"), "{path}: {page}");
    }

    let (reader, _) = x.key("acme", &["alerts_read"], false).await;
    let r = Browser::login(&x.base, &reader).await;
    let (_, page) = r.page("/people").await;
    assert!(page.contains("mallory") && !page.contains("data-api=\"/people/import\"") && !page.contains("data-method=\"PUT\""), "{page}");
    let (_, person) = r.page("/people/mallory").await;
    assert!(!person.contains("data-method=\"PUT\"") && !person.contains("data-method=\"DELETE\""), "{person}");
    let (status, _) = r.api("POST", "/people/import", Some(json!({"csv": "user_id\neve\n"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// A local HTTP receiver: `/ok/…` answers 200, `/gone/…` 410; it keeps the paths it got.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new().route("/{kind}/{*rest}", axum::routing::post(receive)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, base)
    }

    fn got(&self) -> Vec<String> {
        self.got.lock().expect("lock").clone()
    }
}

async fn receive(State(r): State<Receiver>, UrlPath((kind, rest)): UrlPath<(String, String)>) -> AxStatus {
    r.got.lock().expect("lock").push(format!("/{kind}/{rest}"));
    if kind == "gone" { AxStatus::GONE } else { AxStatus::OK }
}

/// A server that may post to loopback, and a browser logged in with an admin key.
async fn private_server() -> (TestXdr, Browser) {
    let x = TestXdr::start_with(|o| o.allow_private_destinations = true).await;
    let (key, _) = x.key("acme", ADMIN, false).await;
    let b = Browser::login(&x.base, &key).await;
    (x, b)
}

#[tokio::test]
async fn a_webhook_channels_test_button_delivers_and_its_secrets_stay_masked() {
    let (_x, b) = private_server().await;
    let (rx, base) = Receiver::start().await;
    let (_, page) = b.page("/notifications").await;
    assert!(page.contains("No channels yet.") && page.contains("No deliveries yet."), "{page}");
    assert!(page.contains("name=\"kind\" value=\"webhook\""), "a form per kind: {page}");

    // The webhook form's call.
    let url = format!("{base}/ok/hooks/SeCrEtPaThToKeN9z");
    let body = json!({"kind": "webhook", "name": "automation", "min_severity": "high", "rules": [], "settings": {"url": url}});
    let (status, created) = b.api("POST", "/api/v1/notifications/channels", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (id, signing) = (created["id"].as_str().expect("id").to_owned(), created["signing_secret"].as_str().expect("secret").to_owned());

    let (_, page) = b.page("/notifications").await;
    assert!(page.contains(&format!("href=\"/notifications/channels/{id}\"")) && page.contains("automation"), "{page}");
    assert!(page.contains("badge high\">high</span> and up"), "routing shown: {page}");
    assert!(page.contains("/…/eN9z"), "the URL masked: {page}");
    assert!(page.contains("signing secret set (never shown)"), "{page}");
    let test_button = format!("data-api=\"/notifications/channels/{id}/test\"");
    assert!(page.contains(&test_button), "{page}");

    // The Test button's call: delivered now, the answer shown beside it, logged.
    let (status, answer) = b.api("POST", &format!("/notifications/channels/{id}/test"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(html(&answer).contains("badge succeeded") && html(&answer).contains("HTTP 200"), "{answer}");
    assert_eq!(rx.got(), ["/ok/hooks/SeCrEtPaThToKeN9z"]);

    for path in ["/notifications".to_owned(), format!("/notifications/channels/{id}")] {
        let (_, page) = b.page(&path).await;
        assert!(!page.contains("SeCrEtPaThToKeN9z") && !page.contains(&signing), "{path} shows a secret: {page}");
        assert!(page.contains("badge succeeded\">succeeded") && page.contains("webhook · test"), "the test in the log: {page}");
    }
    let (_, channel) = b.page(&format!("/notifications/channels/{id}")).await;
    assert!(channel.contains(&format!("data-api=\"/api/v1/notifications/channels/{id}\" data-method=\"PATCH\"")), "{channel}");
    assert!(channel.contains("name=\"settings.url\"") && channel.contains("unchanged when empty"), "write-only URL: {channel}");

    // Without the CSRF token the Test call is refused.
    let r = b.http.post(format!("{}/notifications/channels/{id}/test", b.base)).json(&json!({})).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test]
async fn a_failed_delivery_has_a_retry_button_and_the_log_filters_by_status() {
    let (_x, b) = private_server().await;
    let (_rx, base) = Receiver::start().await;
    let body = json!({"kind": "slack", "name": "gone-slack", "settings": {"url": format!("{base}/gone/T0/B0/tok")}});
    let (status, created) = b.api("POST", "/api/v1/notifications/channels", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    let (_, answer) = b.api("POST", &format!("/notifications/channels/{id}/test"), Some(json!({}))).await;
    assert!(html(&answer).contains("badge failed") && html(&answer).contains("HTTP 410"), "{answer}");

    let (_, log) = b.api("GET", "/api/v1/notifications?status=failed", None).await;
    let note = log["items"][0]["id"].as_str().expect("a failed notification").to_owned();
    let (_, page) = b.page("/notifications?status=failed").await;
    assert!(page.contains(&format!("data-api=\"/api/v1/notifications/{note}/retry\"")), "{page}");
    let (_, ok) = b.page("/notifications?status=succeeded").await;
    assert!(ok.contains("No deliveries match.") && !ok.contains("/retry\""), "{ok}");
    let (status, retried) = b.api("POST", &format!("/api/v1/notifications/{note}/retry"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
}

#[tokio::test]
async fn another_spaces_keys_people_and_channels_are_not_shown_or_reachable() {
    let (x, b) = private_server().await;
    let (_rx, base) = Receiver::start().await;
    assert_eq!(b.api("PUT", "/api/v1/people/alice", Some(json!({"display_name": "Alice Acme"}))).await.0, StatusCode::CREATED);
    let body = json!({"kind": "webhook", "name": "acme-hook", "settings": {"url": format!("{base}/ok/acme")}});
    let (_, channel) = b.api("POST", "/api/v1/notifications/channels", Some(body)).await;
    let channel = channel["id"].as_str().expect("id").to_owned();

    let (other, _) = x.key("globex", ADMIN, false).await;
    let g = Browser::login(&x.base, &other).await;
    let (_, settings) = g.page("/settings").await;
    assert!(settings.contains("<dd>globex</dd>") && !settings.contains("acme"), "{settings}");
    let (_, people) = g.page("/people").await;
    assert!(!people.contains("Alice Acme") && people.contains("No people yet."), "{people}");
    let (_, notifications) = g.page("/notifications").await;
    assert!(!notifications.contains("acme-hook"), "{notifications}");
    assert_eq!(g.page("/people/alice").await.0, StatusCode::NOT_FOUND);
    assert_eq!(g.page(&format!("/notifications/channels/{channel}")).await.0, StatusCode::NOT_FOUND);
    let (status, _) = g.api("POST", &format!("/notifications/channels/{channel}/test"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
