//! The playbook pages: the list with the default playbook, the editor (a YAML error located,
//! Validate), the dry-run button's answer, a run's steps, what a key without playbooks_write
//! sees, and spaces kept apart.
use crate::TestXdr;
use crate::console::{Browser, logged_in};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// The id of the space's default playbook, through the API with the session.
async fn default_playbook(b: &Browser) -> String {
    let (status, list) = b.api("GET", "/api/v1/playbooks", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["builtin"] == "default-5")
        .and_then(|p| p["id"].as_str())
        .expect("the default playbook")
        .to_owned()
}

/// A firewall event as intake takes it: a policy violation by `user` on `platform`.
fn violation(user: &str, platform: &str) -> Value {
    json!({
        "id": "sample-1", "type": "interaction.policy_violated", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
        "data": {"interaction": {
            "id": "i-1", "platform_id": platform, "user_id": user, "user_email": format!("{user}@corp.example"),
            "risk_score": 0.82, "risk_level": "high", "classification_count": 1,
            "classifications": [{"type": "IBAN", "confidence": 0.97}],
            "direction": "outbound", "interaction_type": "prompt",
            "decision": {"action": "block", "policy_name": "Protect financial data", "risk_level": "high"}
        }}
    })
}

/// Whether `page` shows `raw` HTML-escaped (as askama writes it, or as `&lt;`), and never raw.
fn shows_escaped(page: &str, raw: &str) -> bool {
    let named = raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let numeric = raw.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;");
    !page.contains(raw) && (page.contains(&named) || page.contains(&numeric))
}

/// The HTML a page route answered to a script's POST.
fn html(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("an HTML answer, not {v}"))
}

/// Waits (bounded) until the run has finished; its detail.
async fn finished(b: &Browser, run: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, detail) = b.api("GET", &format!("/api/v1/playbook-runs/{run}"), None).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        if !["queued", "running"].contains(&detail["status"].as_str().unwrap_or("")) {
            return detail;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not finish: {detail}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_playbook_list_shows_the_default_playbook_installed_with_a_new_space() {
    let (_x, b, _) = logged_in().await;
    let (status, page) = b.page("/playbooks").await;
    assert_eq!(status, StatusCode::OK);
    let id = default_playbook(&b).await;
    assert!(page.contains(&format!("href=\"/playbooks/{id}\"")), "{page}");
    assert!(page.contains("AI platform violation response"), "{page}");
    assert!(page.contains("An alert is raised by Policy violation on unvetted AI platform"), "the trigger in a sentence: {page}");
    assert!(page.contains("default content"), "{page}");
    assert!(page.contains("href=\"/playbooks/new\""), "a key that may write sees New playbook");
    assert!(page.contains("never"), "no run yet");

    // The filter narrows the list.
    let (_, enabled) = b.page("/playbooks?enabled=true").await;
    let (_, disabled) = b.page("/playbooks?enabled=false").await;
    assert_ne!(
        enabled.contains("AI platform violation response"),
        disabled.contains("AI platform violation response"),
        "the playbook is in exactly one of the two lists"
    );
}

#[tokio::test]
async fn the_dry_run_button_shows_each_step_and_what_it_would_do_changing_nothing() {
    let (x, b, _) = logged_in().await;
    let id = default_playbook(&b).await;
    // A person whose training is old: the playbook goes all the way (case, mail, task).
    let person = json!({"display_name": "Dave Martin", "manager_email": "erin@corp.example", "training_date": "2020-01-10"});
    assert_eq!(b.api("PUT", "/api/v1/people/dave", Some(person)).await.0, StatusCode::CREATED);

    let (_, page) = b.page(&format!("/playbooks/{id}")).await;
    assert!(page.contains(&format!("data-api=\"/playbooks/{id}/dry-run\"")), "the dry-run form: {page}");
    assert!(page.contains("name=\"event\"") && page.contains("name=\"alert_id\""), "{page}");

    let (status, answer) = b.api("POST", &format!("/playbooks/{id}/dry-run"), Some(json!({"event": violation("dave", "mistral")}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let frag = html(&answer);
    for step in ["facts", "activity", "training_overdue", "case", "tell_manager", "review"] {
        assert!(frag.contains(&format!("<strong>{step}</strong>")), "step {step} shown: {frag}");
    }
    assert!(frag.contains("badge dry_run"), "{frag}");
    assert!(frag.contains("Not carried out: it would open a case"), "{frag}");
    assert!(frag.contains("erin@corp.example"), "what would be sent is shown: {frag}");
    assert_eq!(x.count("SELECT COUNT(*) FROM cases") + x.count("SELECT COUNT(*) FROM playbook_runs"), 0, "a dry run changes nothing");

    // Nothing to run on: the form's field is named.
    let (status, err) = b.api("POST", &format!("/playbooks/{id}/dry-run"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["fields"][0]["field"], "alert_id");
    // An unknown alert is the API's 404.
    let (status, _) = b.api("POST", &format!("/playbooks/{id}/dry-run"), Some(json!({"alert_ref": "ALNOTHERE"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without the session's CSRF token, refused.
    let r = b
        .http
        .post(format!("{}/playbooks/{id}/dry-run", b.base))
        .json(&json!({"event": violation("dave", "mistral")}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn run_now_on_a_manual_playbook_and_the_run_page_shows_each_steps_result() {
    let (_x, b, _) = logged_in().await;
    let yaml = "name: \"<script>x</script> check\"\ntrigger:\n  type: manual\nsteps:\n  - id: facts\n    type: extract\n    set:\n      note: started by hand\n";
    let (status, pb) = b.api("POST", "/api/v1/playbooks", Some(json!({"source": yaml, "enabled": true}))).await;
    assert_eq!(status, StatusCode::CREATED, "{pb}");
    let id = pb["id"].as_str().expect("id").to_owned();

    let (_, page) = b.page(&format!("/playbooks/{id}")).await;
    assert!(page.contains(&format!("data-api=\"/api/v1/playbooks/{id}/run\"")), "Run now for a manual playbook: {page}");
    assert!(page.contains("No runs yet."), "{page}");
    assert!(shows_escaped(&page, "<script>x</script> check"), "escaped: {page}");

    // The button's call, as the script makes it.
    let (status, run) = b.api("POST", &format!("/api/v1/playbooks/{id}/run"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    let run_id = run["id"].as_str().expect("run id").to_owned();
    let detail = finished(&b, &run_id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");

    let (status, page) = b.page(&format!("/playbooks/{id}/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<strong>facts</strong>") && page.contains("badge succeeded"), "{page}");
    assert!(
        page.contains("&#34;note&#34;: &#34;started by hand&#34;") || page.contains("&quot;note&quot;: &quot;started by hand&quot;"),
        "the output as pretty JSON: {page}"
    );
    assert!(page.contains("<time datetime="), "times for the browser to localise: {page}");
    assert!(page.contains(&format!("data-api=\"/api/v1/playbook-runs/{run_id}/replay\"")), "Replay: {page}");
    assert!(!page.contains("/cancel\""), "a finished run cannot be cancelled: {page}");

    // The playbook's page lists the run, linked, with its step count; the list shows it as last.
    let (_, page) = b.page(&format!("/playbooks/{id}")).await;
    assert!(page.contains(&format!("href=\"/playbooks/{id}/runs/{run_id}\"")), "{page}");
    let (_, list) = b.page("/playbooks").await;
    assert!(list.contains(&format!("href=\"/playbooks/{id}/runs/{run_id}\"")), "the last run on the list: {list}");

    // A run of another playbook is not found under this one.
    let other = default_playbook(&b).await;
    assert_eq!(b.page(&format!("/playbooks/{other}/runs/{run_id}")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_yaml_error_is_refused_with_its_line_and_column_and_validate_says_what_compiles() {
    let (_x, b, _) = logged_in().await;
    let good = "name: Triage\ntrigger:\n  type: manual\nsteps:\n  - id: facts\n    type: extract\n    set:\n      a: b\n";
    let (status, pb) = b.api("POST", "/api/v1/playbooks", Some(json!({"source": good}))).await;
    assert_eq!(status, StatusCode::CREATED, "{pb}");
    let id = pb["id"].as_str().expect("id");
    let (_, page) = b.page(&format!("/playbooks/{id}")).await;
    assert!(page.contains("name=\"source\"") && page.contains("data-method=\"PATCH\""), "the editor: {page}");
    assert!(page.contains("data-submit-api=\"/playbooks/validate\""), "Validate: {page}");

    // The Save button's call with a step of an unknown type.
    let bad = good.replace("type: extract", "type: teleport");
    let (status, err) = b.api("PATCH", &format!("/api/v1/playbooks/{id}"), Some(json!({"source": bad}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let field = &err["fields"][0];
    assert!(field["field"].as_str().expect("field").starts_with("source"), "{err}");
    assert!(field["message"].as_str().expect("message").contains("line 6"), "located: {err}");

    // Validate: the same problem, or a summary of what compiles; nothing saved either way.
    let (status, err) = b.api("POST", "/playbooks/validate", Some(json!({"source": bad}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err["fields"][0]["message"].as_str().expect("message").contains("line 6"), "{err}");
    let (status, ok) = b.api("POST", "/playbooks/validate", Some(json!({"source": good.replace("Triage", "Triage 2")}))).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert!(html(&ok).contains("The YAML compiles.") && html(&ok).contains("<code>facts</code>"), "{ok}");
    let (_, source) = b.api("GET", &format!("/api/v1/playbooks/{id}"), None).await;
    assert_eq!(source["source"], good, "neither the error nor Validate changed it");
}

#[tokio::test]
async fn a_key_without_playbooks_write_reads_playbooks_but_gets_no_editor_and_no_dry_run() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["playbooks_read", "events_read", "alerts_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let id = default_playbook(&b).await;
    let (_, list) = b.page("/playbooks").await;
    assert!(!list.contains("href=\"/playbooks/new\"") && !list.contains("data-method=\"PATCH\""), "{list}");
    let (status, page) = b.page(&format!("/playbooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("readonly") && !page.contains(">Save</button>"), "{page}");
    assert!(!page.contains("/dry-run\""), "{page}");
    assert_eq!(b.page("/playbooks/new").await.0, StatusCode::FORBIDDEN);
    let (status, _) = b.api("POST", &format!("/playbooks/{id}/dry-run"), Some(json!({"event": violation("dave", "mistral")}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another space's playbook is not found.
    let (other, _) = x.key("globex", &["playbooks_read"], false).await;
    let b2 = Browser::login(&x.base, &other).await;
    assert_eq!(b2.page(&format!("/playbooks/{id}")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_playbook_loaded_from_a_file_is_shown_read_only_with_its_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("playbooks/acme")).expect("dir");
    let yaml = "name: From a file\ntrigger:\n  type: manual\nsteps:\n  - id: facts\n    type: extract\n    set:\n      a: b\n";
    std::fs::write(dir.path().join("playbooks/acme/triage.yaml"), yaml).expect("write");
    let x = TestXdr::start_in(dir, |_| {}).await;
    let (key, _) = x.key("acme", &["playbooks_read", "playbooks_write", "events_read"], false).await;
    let b = Browser::login(&x.base, &key).await;
    // The files load as the server starts: wait (bounded) for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let id = loop {
        let (_, list) = b.api("GET", "/api/v1/playbooks", None).await;
        if let Some(id) =
            list["items"].as_array().and_then(|a| a.iter().find(|p| p["name"] == "From a file")).and_then(|p| p["id"].as_str())
        {
            break id.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "the file was not loaded: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, list) = b.page("/playbooks").await;
    assert!(list.contains("file triage.yaml") && list.contains("edit its file"), "{list}");
    assert!(!list.contains(&format!("data-api=\"/api/v1/playbooks/{id}\"")), "no Enable/Disable for a file's playbook: {list}");
    let (_, page) = b.page(&format!("/playbooks/{id}")).await;
    assert!(page.contains("readonly") && !page.contains(">Save</button>"), "{page}");
    assert!(page.contains("loaded from the file <code>triage.yaml</code>"), "{page}");
    // Run now and the dry run still work on it.
    assert!(page.contains(&format!("data-api=\"/api/v1/playbooks/{id}/run\"")) && page.contains("/dry-run\""), "{page}");
}
