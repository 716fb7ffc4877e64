//! The console's case pages: the list (filters, counts, the "New case" form, the empty state),
//! a case's page (the template's description rendered readably, tasks, comments, the timeline,
//! the workflow buttons), a closed case without forms, a key without cases_write, escaping,
//! and another space that sees nothing.
use crate::console::Browser;
use crate::console_alerts::{alert_of, esc, post, soc, violation};
use crate::until;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Opens a case through the API as the page's form does; its (id, short id).
async fn open(b: &Browser, body: Value) -> (String, String) {
    let (status, c) = b.api("POST", "/api/v1/cases", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    (c["id"].as_str().expect("id").to_owned(), c["short_id"].as_str().expect("short id").to_owned())
}

/// A critical alert from the firewall: default rule 4 opens a case from the template AI Platform
/// Violation.
fn critical(id: &str, user: &str) -> Value {
    json!({"id": id, "type": "alert.severity_critical", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
           "data": {"interaction": {"id": format!("i-{id}"), "user_id": user, "platform_id": "deepseek", "risk_score": 0.99,
                                    "classifications": [{"type": "CREDIT_CARD", "confidence": 0.99}]},
                    "alert": {"severity": "critical"}}})
}

fn rows(html: &str) -> usize {
    html.split("<tbody>").nth(1).map_or(0, |b| b.split("</tbody>").next().unwrap_or("").matches("<tr>").count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_list_shows_cases_with_their_counts_and_the_filters_narrow_it() {
    let (x, b, _) = soc().await;
    let (status, empty) = b.page("/cases").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No cases yet."), "{empty}");
    assert!(empty.contains("data-api=\"/api/v1/cases\" data-method=\"POST\""), "the New case form");
    assert!(empty.contains("<option value=\"AI Platform Violation\">"), "with the space's templates");

    let (id, high) = open(&b, json!({"title": "Leak to a chatbot", "severity": "high", "priority": "high", "tags": ["leak"]})).await;
    let (_, low) = open(&b, json!({"title": "Odd prompt", "severity": "low", "assignee": "ana"})).await;
    for (n, done) in [(1, true), (2, false)] {
        let (s, t) = b.api("POST", &format!("/api/v1/cases/{id}/tasks"), Some(json!({"title": format!("Step {n}")}))).await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        if done {
            let task = t["id"].as_str().expect("task id");
            let (s, _) = b.api("PATCH", &format!("/api/v1/cases/{id}/tasks/{task}"), Some(json!({"done": true}))).await;
            assert_eq!(s, StatusCode::OK);
        }
    }
    let (_, html) = b.page("/cases").await;
    assert_eq!(rows(&html), 2);
    assert!(html.contains(&format!("href=\"/cases/{high}\"")) && html.contains(&format!("href=\"/cases/{low}\"")));
    assert!(html.contains("Leak to a chatbot") && html.contains("1 / 2"), "tasks done of all: {html}");
    assert!(html.contains("href=\"/cases?tag=leak\""), "tags filter the list");

    let (_, only_high) = b.page("/cases?severity=high&status=&priority=").await;
    assert_eq!(rows(&only_high), 1);
    assert!(only_high.contains(&high) && !only_high.contains(&low));
    let (_, ana) = b.page("/cases?assignee=ana").await;
    assert!(ana.contains(&low) && !ana.contains(&high));
    let (_, tagged) = b.page("/cases?tag=leak").await;
    assert!(tagged.contains(&high) && !tagged.contains(&low));
    let (_, closed) = b.page("/cases?status=closed").await;
    assert!(closed.contains("No cases match these filters"));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_opened_by_a_rule_shows_its_description_tasks_alert_and_timeline() {
    let (x, b, key) = soc().await;
    let person = json!({"display_name": "Fay Durand", "email": "fay@corp.example", "department": "Finance"});
    assert!(b.api("PUT", "/api/v1/people/fay", Some(person)).await.0.is_success());
    post(&x, &key, vec![critical("crit-1", "fay")]).await;
    let (_, alert) = alert_of(&x, &key, "fay").await;
    // Rule 4's case action: the responder opens the case from the default template.
    let case = until("the case of rule 4", || async {
        let (_, page) = x.get("/api/v1/cases", &key).await;
        page["items"].as_array().and_then(|items| items.first()).and_then(|c| c["short_id"].as_str()).map(str::to_owned)
    })
    .await;
    let (status, html) = b.page(&format!("/cases/{case}")).await;
    assert_eq!(status, StatusCode::OK);
    // The template's Markdown, readable: headings, the table, the lists; no raw markup.
    assert!(html.contains("<h3>What happened</h3>") && html.contains("<h3>Recommended response</h3>"), "{html}");
    let shown = html.split("id=\"h-description\"").nth(1).and_then(|d| d.split("</section>").next()).expect("the description");
    assert!(!shown.contains("## What happened") && !shown.contains("|---|"), "{shown}");
    assert!(html.contains("## What happened"), "the raw Markdown is only in the edit form's textarea");
    assert!(html.contains("<td>Platform</td><td>deepseek</td>"), "{html}");
    assert!(html.contains("<li>E-mail: fay@corp.example</li>"), "{html}");
    assert!(html.contains("<ol><li>Confirm what data was sent"), "{html}");
    // The alert, the person, the tasks with their due dates, and the timeline.
    assert!(html.contains(&format!("href=\"/alerts/{alert}\"")));
    assert!(html.contains("Fay Durand") && html.contains("Finance"));
    assert!(html.contains("Confirm the data exposed on deepseek") && html.contains("Tasks (0 / 4 done)"), "{html}");
    assert!(html.contains("Opened from the template “AI Platform Violation”") && html.contains("Alert attached:"), "{html}");
    assert!(html.contains("Task added: Confirm the data exposed on deepseek"));
    assert!(html.contains("by rule:"), "who opened it: {html}");
    assert!(html.matches("<time datetime=").count() >= 8, "times for the browser's time zone");
    // The workflow: open → in progress or closed.
    assert!(html.contains(&esc(r#"{"status":"in_progress"}"#)));
    assert!(html.contains(&esc(r#"{"status":"closed"}"#)));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_comments_and_changes_made_through_the_api_appear_on_the_case_page_and_its_timeline() {
    let (x, b, _) = soc().await;
    let (id, short) = open(&b, json!({"title": "Leak", "description": "Line one\nLine two"})).await;
    let (_, html) = b.page(&format!("/cases/{short}")).await;
    assert!(html.contains("<p>Line one<br>Line two</p>"), "line breaks kept: {html}");
    for (action, field) in [("/tasks\" data-method=\"POST\"", "name=\"due_at\""), ("/comments\" data-method=\"POST\"", "name=\"content\"")]
    {
        assert!(html.contains(&format!("data-api=\"/api/v1/cases/{id}{action}")), "{action}");
        assert!(html.contains(field));
    }

    let due = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (s, task) = b
        .api("POST", &format!("/api/v1/cases/{id}/tasks"), Some(json!({"title": "Call the user", "assignee": "ana", "due_at": due})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{task}");
    let task = task["id"].as_str().expect("task id").to_owned();
    let (_, html) = b.page(&format!("/cases/{short}")).await;
    assert!(html.contains("Call the user") && html.contains(">Mark done</button>"), "{html}");
    assert!(
        html.contains(&format!(
            "data-api=\"/api/v1/cases/{id}/tasks/{task}\" data-method=\"PATCH\" data-body=\"{{&quot;done&quot;: true}}\""
        ))
    );

    let (s, _) = b.api("PATCH", &format!("/api/v1/cases/{id}/tasks/{task}"), Some(json!({"done": true}))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, c) = b.api("POST", &format!("/api/v1/cases/{id}/comments"), Some(json!({"content": "Spoke to them <b>today</b>"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, _) =
        b.api("PATCH", &format!("/api/v1/cases/{id}"), Some(json!({"status": "in_progress", "assignee": "bo", "priority": "high"}))).await;
    assert_eq!(s, StatusCode::OK);
    let (_, html) = b.page(&format!("/cases/{short}")).await;
    assert!(html.contains(">Reopen</button>") && html.contains("Tasks (1 / 1 done)"), "{html}");
    assert!(html.contains("Spoke to them &lt;b&gt;today&lt;/b&gt;") && html.contains("Comments (1)"));
    for line in [
        "Task added: Call the user",
        "Task done: Call the user",
        "Commented",
        "Status open → in_progress",
        "Assigned to bo",
        "Priority medium → high",
    ] {
        assert!(html.contains(line), "the timeline has {line:?}: {html}");
    }
    assert!(html.contains("<span class=\"badge in_progress\" id=\"case-status\">in_progress</span>"));
    assert!(!html.contains(&esc(r#"{"status":"in_progress"}"#)), "no button back to where it is");
    assert!(html.contains(&esc(r#"{"status":"closed"}"#)));

    // A validation error names a field the form has an input for.
    let (s, err) = b.api("POST", &format!("/api/v1/cases/{id}/tasks"), Some(json!({"title": ""}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["fields"][0]["field"], "title");
    assert!(html.contains("id=\"t-title\" name=\"title\""));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_case_is_shown_without_any_form_or_button() {
    let (x, b, key) = soc().await;
    post(&x, &key, vec![violation("pv-1", "dan")]).await;
    let (dan, _) = alert_of(&x, &key, "dan").await;
    let (id, short) = open(&b, json!({"title": "Done soon", "alerts": [dan]})).await;
    let (s, _) = b.api("POST", &format!("/api/v1/cases/{id}/comments"), Some(json!({"content": "Handled"}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, open_page) = b.page(&format!("/cases/{short}")).await;
    assert!(open_page.contains("data-api="));
    let (s, _) = b.api("PATCH", &format!("/api/v1/cases/{id}"), Some(json!({"status": "closed"}))).await;
    assert_eq!(s, StatusCode::OK);
    let (status, html) = b.page(&format!("/cases/{short}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("data-api=") && !html.contains("<form data-"), "read-only: {html}");
    assert!(html.contains("read-only") && html.contains("Handled") && html.contains("Status open → closed"), "{html}");
    // The API agrees.
    let (s, e) = b.api("POST", &format!("/api/v1/cases/{id}/comments"), Some(json!({"content": "more"}))).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::CONFLICT, Some("case_closed")));
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_only_reads_cases_sees_no_form_and_the_api_refuses_its_changes() {
    let (x, b, _) = soc().await;
    let (id, short) = open(&b, json!({"title": "Leak"})).await;
    let (reader, _) = x.key("soc", &["cases_read"], false).await;
    let r = Browser::login(&x.base, &reader).await;
    let (_, list) = r.page("/cases").await;
    assert!(list.contains(&short) && !list.contains("data-api="), "no New case form: {list}");
    let (status, html) = r.page(&format!("/cases/{short}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("data-api=") && html.contains("cases_write"), "{html}");
    let (s, _) = r.api("PATCH", &format!("/api/v1/cases/{id}"), Some(json!({"status": "closed"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_in_a_case_is_escaped_and_another_space_sees_nothing() {
    let (x, b, _) = soc().await;
    let evil = "<script>alert(1)</script>";
    let (id, short) =
        open(&b, json!({"title": evil, "description": format!("# {evil}\n- {evil}\n| a | {evil} |\n|---|---|"), "tags": ["<i>t</i>"]}))
            .await;
    let (s, _) = b.api("POST", &format!("/api/v1/cases/{id}/comments"), Some(json!({"content": evil}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = b.api("POST", &format!("/api/v1/cases/{id}/tasks"), Some(json!({"title": evil, "description": evil}))).await;
    assert_eq!(s, StatusCode::CREATED);
    for path in [format!("/cases/{short}"), "/cases".to_owned()] {
        let (_, html) = b.page(&path).await;
        assert!(!html.contains("<script>alert") && !html.contains("<i>t</i>"), "{path}: {html}");
        assert!(html.contains(&esc(evil)), "{path}");
    }

    let (other, _) = x.key("elsewhere", &["cases_read", "cases_write"], false).await;
    let o = Browser::login(&x.base, &other).await;
    let (_, list) = o.page("/cases").await;
    assert!(!list.contains(&short) && list.contains("No cases yet."));
    for path in [format!("/cases/{short}"), format!("/cases/{id}")] {
        assert_eq!(o.page(&path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (s, _) = o.api("POST", &format!("/api/v1/cases/{id}/comments"), Some(json!({"content": "hi"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    x.stop().await;
}
