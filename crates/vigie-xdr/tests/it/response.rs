//! Issue 8: the response side end to end — events posted to the intake raise alerts; the
//! responder carries out the rules' case and notify actions and starts the default playbook,
//! which opens a case, e-mails the person's manager (received by a real SMTP server on
//! loopback) and schedules a review task; runs are recorded, replayed and dry-run.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_xdr::mailsink::{Mailbox, Received};

const SCOPES: &[&str] = &[
    "events_write",
    "events_read",
    "alerts_read",
    "alerts_write",
    "cases_read",
    "cases_write",
    "rules_read",
    "rules_write",
    "playbooks_read",
    "playbooks_write",
    "admin",
];

struct Setup {
    x: TestXdr,
    port: u16,
    key: String,
    mail: Mailbox,
    stop: CancellationToken,
}

/// A server with the default content enabled, a mail sink on loopback, the space's e-mail
/// channel pointing at it, and a directory of four people.
async fn setup() -> Setup {
    let x = TestXdr::start_with(|o| {
        o.default_rules_enabled = true;
        o.allow_private_destinations = true;
    })
    .await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (mail, stop) = (Mailbox::default(), CancellationToken::new());
    tokio::spawn(vigie_xdr::mailsink::serve(listener, mail.clone(), stop.clone()));
    let (status, body) = x
        .call_json(
            "POST",
            "/api/v1/notifications/channels",
            &key,
            json!({"name": "mail", "kind": "email", "settings": {"host": "127.0.0.1", "port": port, "tls": "none",
                "from": "Vigie <vigie@corp.example>", "to": ["soc@corp.example"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let old = (chrono::Utc::now() - chrono::Duration::days(500)).format("%Y-%m-%d");
    let recent = (chrono::Utc::now() - chrono::Duration::days(30)).format("%Y-%m-%d");
    let csv = format!(
        "user_id,display_name,email,manager_email,department,training_date\n\
         dave,Dave Martin,dave@corp.example,erin@corp.example,Finance,{old}\n\
         frank,Frank Leroy,frank@corp.example,gina@corp.example,Sales,{recent}\n\
         hana,Hana Ito,hana@corp.example,ivan@corp.example,Legal,\n"
    );
    let (status, body) = x.post("/api/v1/people/import", Some(&key), csv, &[("content-type", "text/csv")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Setup { x, port, key, mail, stop }
}

/// A policy violation as the firewall's webhook sends it.
fn violation(id: &str, user: &str, platform: &str) -> Value {
    json!({
        "id": id, "type": "interaction.policy_violated", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
        "tenant_id": "t1",
        "data": {"interaction": {
            "id": format!("i-{id}"), "platform_id": platform, "user_id": user, "user_email": format!("{user}@corp.example"),
            "risk_score": 0.82, "risk_level": "high", "classification_count": 2,
            "classifications": [{"type": "IBAN", "confidence": 0.97}, {"type": "EMAIL_ADDRESS", "confidence": 0.9}],
            "direction": "outbound", "interaction_type": "prompt",
            "decision": {"action": "block", "policy_name": "Protect financial data", "risk_level": "high"}
        }}
    })
}

async fn post(x: &TestXdr, key: &str, events: Vec<Value>) {
    let (status, body) = x.post("/api/v1/events", Some(key), Value::Array(events).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Waits (bounded) until `done` holds over the database, re-checking after every finished run.
async fn until(x: &TestXdr, what: &str, done: impl Fn(&TestXdr) -> bool) {
    let mut runs = x.state.response.runs_finished.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(x) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), runs.changed()).await;
    }
}

/// Waits until the mail sink holds `n` messages.
async fn mails(mail: &Mailbox, n: u64) -> Vec<Received> {
    let mut w = mail.watch();
    tokio::time::timeout(Duration::from_secs(20), w.wait_for(|c| *c >= n)).await.expect("the e-mails arrived in time").expect("watch");
    mail.messages()
}

fn one(x: &TestXdr, sql: &str) -> String {
    let db = rusqlite::Connection::open_with_flags(x.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("db");
    db.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_by_someone_untrained_for_a_year_leads_to_an_alert_a_case_the_managers_email_and_a_review_task() {
    let Setup { x, key, mail, stop, .. } = setup().await;
    post(&x, &key, vec![violation("v1", "dave", "deepseek")]).await;
    until(&x, "the default playbook's run", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status IN ('succeeded', 'failed')") == 1)
        .await;

    // The alert of rule 1, with the person's name.
    let (_, alerts) = x.get("/api/v1/alerts?user_id=dave", &key).await;
    let alerts = alerts["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["rule"]["name"], "Policy violation on unvetted AI platform");
    assert_eq!(alert["user_name"], "Dave Martin");

    // The run, step by step.
    let run_id = one(&x, "SELECT id FROM playbook_runs");
    let (status, run) = x.get(&format!("/api/v1/playbook-runs/{run_id}"), &key).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let steps: Vec<&str> = run["steps"].as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["facts", "activity", "training_overdue", "case", "tell_manager", "review"], "{run:#}");
    assert_eq!(run["steps"][2]["branch"], "then", "{run:#}");
    assert_eq!(run["steps"][0]["output"]["person"]["training_days_ago"], 500);
    assert!(run["steps"][1]["output"]["count"].as_u64().is_some_and(|n| n >= 1), "the person's activity was queried: {run:#}");

    // The case from the template, holding the alert, with the review task due in 7 days.
    let (_, cases) = x.get("/api/v1/cases", &key).await;
    let cases = cases["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 1, "{cases:#?}");
    let (_, case) = x.get(&format!("/api/v1/cases/{}", cases[0]["id"].as_str().expect("id")), &key).await;
    assert_eq!(case["template"], "AI Platform Violation", "{case:#}");
    assert!(case["title"].as_str().is_some_and(|t| t.contains("Dave Martin") && t.contains("deepseek")), "{case:#}");
    assert!(case["description"].as_str().is_some_and(|d| d.contains("Protect financial data") && d.contains("IBAN")), "{case:#}");
    let attached: Vec<&str> = case["alerts"].as_array().expect("alerts").iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(attached, [alert["id"].as_str().expect("id")]);
    let review = case["tasks"].as_array().expect("tasks").iter().find(|t| t["title"] == "Security review with Dave Martin").cloned();
    let review = review.unwrap_or_else(|| panic!("a review task: {case:#}"));
    let due = chrono::DateTime::parse_from_rfc3339(review["due_at"].as_str().expect("due")).expect("rfc3339");
    let days = (due.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((6 * 24..=7 * 24).contains(&days), "due in 7 days: {review}");

    // The manager's e-mail, and the invitation with its iCalendar part.
    let got = mails(&mail, 2).await;
    let to_manager: Vec<&Received> = got.iter().filter(|m| m.to == ["erin@corp.example"]).collect();
    assert_eq!(to_manager.len(), 2, "{got:#?}");
    let notice = to_manager.iter().find(|m| m.header("subject").is_some_and(|s| s.contains("sent classified data"))).expect("the notice");
    assert!(notice.header("subject").is_some_and(|s| s.contains("Dave Martin") && s.contains("deepseek")), "{notice:?}");
    assert!(notice.data.contains(case["short_id"].as_str().expect("short id")), "the e-mail names the case: {}", notice.data);
    let invite = to_manager.iter().find(|m| m.data.contains("BEGIN:VCALENDAR")).expect("an invitation");
    assert!(invite.data.contains("METHOD:REQUEST") && invite.data.contains("text/calendar"), "{}", invite.data);

    // Nothing sent for rule 1's `notify soc` (no channel of that name): said in the alert's history.
    let (_, detail) = x.get(&format!("/api/v1/alerts/{}", alert["id"].as_str().expect("id")), &key).await;
    let said = detail["history"]
        .as_array()
        .expect("history")
        .iter()
        .any(|h| h["kind"] == "response" && h["comment"].as_str().is_some_and(|c| c.contains("\"soc\"")));
    assert!(said, "{detail:#}");
    stop.cancel();
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_trained_recently_or_unknown_to_the_directory_gets_no_case_and_no_email() {
    let Setup { x, key, mail, stop, .. } = setup().await;
    post(&x, &key, vec![violation("v1", "frank", "deepseek"), violation("v2", "zoe", "mistral")]).await;
    until(&x, "two runs", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 2).await;
    assert_eq!(x.count("SELECT COUNT(*) FROM cases"), 0);
    assert_eq!(x.count("SELECT COUNT(*) FROM playbook_steps WHERE branch = 'else'"), 2);
    assert!(mail.messages().is_empty(), "{:?}", mail.messages());
    stop.cancel();
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_actions_open_one_case_per_alert_assigned_to_the_analyst_on_duty_and_notify_the_named_channel() {
    let Setup { x, key, mail, stop, port } = setup().await;
    let (status, body) = x.call_json("PATCH", "/api/v1/space", &key, json!({"on_duty": "ana"})).await;
    assert_eq!((status, body["on_duty"].as_str()), (StatusCode::OK, Some("ana")), "{body}");
    // A "soc" e-mail channel: rule 1 notifies it.
    let (status, body) = x
        .call_json(
            "POST",
            "/api/v1/notifications/channels",
            &key,
            json!({"name": "soc", "kind": "email", "min_severity": "high", "settings": {"host": "127.0.0.1", "port": port,
                "tls": "none", "from": "vigie@corp.example", "to": ["soc@corp.example"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A critical firewall alert (rule 4: case from the template, on duty) twice for one person
    // and platform: one alert with two occurrences, one case.
    let critical = |id: &str| {
        json!({"id": id, "type": "alert.severity_critical", "timestamp": chrono::Utc::now().to_rfc3339(), "source": "noxys",
            "data": {"interaction": {"id": format!("i-{id}"), "user_id": "hana", "platform_id": "mistral", "risk_score": 0.99},
                     "alert": {"severity": "critical"}}})
    };
    post(&x, &key, vec![critical("c1")]).await;
    post(&x, &key, vec![critical("c2"), violation("v3", "hana", "deepseek")]).await;
    until(&x, "the responder", |x| {
        x.count("SELECT COUNT(*) FROM response_events")
            == x.count("SELECT COALESCE((SELECT seq FROM consumer_checkpoints WHERE name = 'response'), -1)")
            && x.count("SELECT COUNT(*) FROM playbook_runs WHERE status IN ('queued', 'running')") == 0
            && x.count("SELECT COUNT(*) FROM notifications WHERE status = 'pending'") == 0
    })
    .await;
    let rule4 = one(&x, "SELECT id FROM rules WHERE builtin = 'default-4'");
    let (_, alerts) = x.get(&format!("/api/v1/alerts?rule_id={rule4}"), &key).await;
    assert_eq!(alerts["items"].as_array().map(Vec::len), Some(1), "{alerts:#}");
    let (_, cases) = x.get("/api/v1/cases", &key).await;
    let cases = cases["items"].as_array().cloned().unwrap_or_default();
    let from_rule4: Vec<&Value> = cases.iter().filter(|c| c["template"] == "AI Platform Violation" && c["assignee"] == "ana").collect();
    assert_eq!(from_rule4.len(), 1, "{cases:#?}");
    // Rule 1 fired for hana on deepseek: its `notify soc` reached the soc channel's recipients.
    let got = mails(&mail, 1).await;
    assert!(got.iter().any(|m| m.to == ["soc@corp.example"] && m.data.contains("Hana Ito")), "{got:#?}");
    stop.cancel();
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_every_step_and_changes_nothing_and_a_run_can_be_replayed() {
    let Setup { x, key, mail, stop, .. } = setup().await;
    post(&x, &key, vec![violation("v1", "dave", "deepseek")]).await;
    until(&x, "the first run", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 1).await;
    let mails_before = mails(&mail, 2).await.len();
    let (cases, tasks, runs) =
        (x.count("SELECT COUNT(*) FROM cases"), x.count("SELECT COUNT(*) FROM case_tasks"), x.count("SELECT COUNT(*) FROM playbook_runs"));
    let playbook = one(&x, "SELECT id FROM playbooks WHERE builtin = 'default-5'");
    let alert = one(&x, "SELECT id FROM alerts");

    let (status, dry) = x.call_json("POST", &format!("/api/v1/playbooks/{playbook}/test"), &key, json!({"alert_id": alert})).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["status"], "succeeded", "{dry:#}");
    let kinds: Vec<(&str, &str)> = dry["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("facts", "succeeded"),
            ("activity", "succeeded"),
            ("training_overdue", "succeeded"),
            ("case", "dry_run"),
            ("tell_manager", "dry_run"),
            ("review", "dry_run")
        ],
        "{dry:#}"
    );
    assert_eq!(dry["steps"][4]["inputs"]["to"][0], "erin@corp.example", "what would be sent is shown: {dry:#}");
    // From a sample event too.
    let (status, sample) = x
        .call_json("POST", &format!("/api/v1/playbooks/{playbook}/test"), &key, json!({"event": violation("s1", "dave", "mistral")}))
        .await;
    assert_eq!((status, sample["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{sample:#}");
    assert_eq!(
        (x.count("SELECT COUNT(*) FROM cases"), x.count("SELECT COUNT(*) FROM case_tasks"), x.count("SELECT COUNT(*) FROM playbook_runs")),
        (cases, tasks, runs),
        "a dry run changes nothing"
    );
    assert_eq!(mail.messages().len(), mails_before, "a dry run sends nothing");

    // Replay: the same trigger, a new run marked as its replay.
    let first = one(&x, "SELECT id FROM playbook_runs");
    let (status, replay) = x.call_json("POST", &format!("/api/v1/playbook-runs/{first}/replay"), &key, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replay}");
    assert_eq!(replay["replay_of"], first.as_str());
    until(&x, "the replay", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 2).await;
    // The alert is already in an open case: the playbook's create_case opens a second one (a
    // replay does what the playbook says), and the manager hears again.
    assert_eq!(x.count("SELECT COUNT(*) FROM cases"), cases + 1);
    mails(&mail, mails_before as u64 + 2).await;
    stop.cancel();
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_that_names_an_unknown_step_or_variable_or_loops_is_refused_with_the_reason() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let bad = [
        ("name: a\ntrigger: {type: manual}\nsteps:\n  - {id: one, type: extract, set: {a: 1}, next: two}\n", "two"),
        ("name: b\ntrigger: {type: manual}\nsteps:\n  - {id: one, type: extract, set: {a: '{{ steps.nope.x }}'}}\n", "nope"),
        (
            "name: c\ntrigger: {type: manual}\nsteps:\n  - {id: one, type: extract, set: {a: 1}, next: two}\n  - {id: two, type: extract, set: {b: 1}, next: one}\n",
            "cycle",
        ),
    ];
    for (yaml, needle) in bad {
        let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains(needle), "{needle}: {body:#}");
    }
    assert_eq!(x.count("SELECT COUNT(*) FROM playbooks WHERE builtin IS NULL"), 0);
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_and_event_triggered_playbooks_run_and_record_their_steps() {
    let x = TestXdr::start_with(|o| o.allow_private_destinations = true).await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    // A local receiver for http_request.
    let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let h = h.clone();
            async move {
                h.lock().expect("lock").push(v);
                axum::Json(json!({"ok": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let manual = format!(
        "name: manual\ntrigger: {{type: manual}}\nsteps:\n  - id: call\n    type: http_request\n    method: POST\n    url: {hook}\n    body: {{who: '{{{{ trigger.input.who }}}}'}}\n  - id: ioc\n    type: add_ioc\n    ioc_type: domain\n    value: '{{{{ trigger.input.domain }}}}'\n    valid_for: 30d\n"
    );
    let event = "name: watch\ntrigger: {type: event, query: 'event_type == \"custom.login\" AND user == \"mallory\"'}\nsteps:\n  - {id: who, type: extract, set: {user: '{{ trigger.event.user }}'}}\n";
    let mut ids = Vec::new();
    for yaml in [manual.as_str(), event] {
        let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml, "enabled": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    let (status, run) = x
        .call_json("POST", &format!("/api/v1/playbooks/{}/run", ids[0]), &key, json!({"input": {"who": "ana", "domain": "evil.example"}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    post(
        &x,
        &key,
        vec![json!({"id": "l1", "type": "custom.login", "user": "mallory"}), json!({"id": "l2", "type": "custom.login", "user": "bob"})],
    )
    .await;
    until(&x, "the two triggers", |x| {
        x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded' AND trigger_type = 'manual'") == 1
            && x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded' AND trigger_type = 'event'") == 1
    })
    .await;
    assert_eq!(hits.lock().expect("lock").clone(), vec![json!({"who": "ana"})]);
    assert_eq!(x.count("SELECT COUNT(*) FROM iocs WHERE type = 'domain' AND value = 'evil.example'"), 1);
    assert_eq!(one(&x, "SELECT json_extract(output, '$.user') FROM playbook_steps WHERE step_id = 'who'"), "mallory");
    let (status, runs) = x.get(&format!("/api/v1/playbooks/{}/runs", ids[0]), &key).await;
    assert_eq!((status, runs["items"][0]["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{runs}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbooks_of_another_space_are_not_found_and_reading_needs_its_scope() {
    let x = TestXdr::start().await;
    let (mine, _) = x.key("soc", SCOPES, false).await;
    let (theirs, _) = x.key("other", SCOPES, false).await;
    let (reader, _) = x.key("soc", &["alerts_read"], false).await;
    let playbook = one(&x, "SELECT id FROM playbooks WHERE space_no = (SELECT no FROM spaces WHERE name = 'soc')");
    assert_eq!(x.get(&format!("/api/v1/playbooks/{playbook}"), &mine).await.0, StatusCode::OK);
    assert_eq!(x.get(&format!("/api/v1/playbooks/{playbook}"), &theirs).await.0, StatusCode::NOT_FOUND);
    assert_eq!(x.get(&format!("/api/v1/playbooks/{playbook}"), &reader).await.0, StatusCode::FORBIDDEN);
    let (status, _) = x.call_json("POST", &format!("/api/v1/playbooks/{playbook}/run"), &theirs, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    x.stop().await;
}

/// The wall clock moved by an offset the test sets.
struct Shifted(std::sync::atomic::AtomicI64);

impl vigie_core::clock::Clock for Shifted {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        vigie_core::clock::SystemClock.now() + chrono::Duration::seconds(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_playbook_runs_once_when_its_time_comes_and_then_waits_for_the_next() {
    use vigie_core::clock::Clock;
    let clock = std::sync::Arc::new(Shifted(std::sync::atomic::AtomicI64::new(0)));
    let x = TestXdr::start_clocked(tempfile::tempdir().expect("dir"), clock.clone(), |_| {}).await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let yaml = "name: hourly\ntrigger: {type: schedule, cron: '0 * * * *'}\nsteps:\n  - {id: at, type: extract, set: {at: '{{ trigger.scheduled_at }}'}}\n";
    let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml, "enabled": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(vigie_xdr::playbooks::triggers::schedules_once(&x.state).await.expect("round").is_some(), "a next time");
    assert_eq!(x.count("SELECT COUNT(*) FROM playbook_runs"), 0, "not before its time");
    // An hour later, then three hours later: one run each (missed hours make one run, not three).
    for (hours, runs) in [(1, 1), (4, 2)] {
        clock.0.store(hours * 3600, std::sync::atomic::Ordering::SeqCst);
        vigie_xdr::playbooks::triggers::schedules_once(&x.state).await.expect("round");
        vigie_xdr::playbooks::triggers::schedules_once(&x.state).await.expect("again: nothing more");
        assert_eq!(x.count("SELECT COUNT(*) FROM playbook_runs WHERE trigger_type = 'schedule'"), runs);
    }
    until(&x, "the scheduled runs", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 2).await;
    let next = x.count("SELECT next_fire_at FROM playbooks WHERE name = 'hourly'");
    let now = vigie_core::clock::to_micros(clock.now());
    assert!(next > now && next <= now + 3_600_000_000, "the next run is within the hour");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_commits_nothing() {
    let Setup { x, key, stop, .. } = setup().await;
    post(&x, &key, vec![violation("v1", "frank", "deepseek")]).await;
    until(&x, "the run", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 1).await;
    until(&x, "the responder", |x| {
        x.count("SELECT MAX(seq) FROM response_events") == x.count("SELECT seq FROM consumer_checkpoints WHERE name = 'response'")
    })
    .await;
    // Quiet now: over a second, the background workers (responder, runner, notify worker,
    // triggers, scheduler) find nothing to do and write nothing. (Before the fix, the
    // responder's empty transaction woke itself again, spinning a core.)
    let commits = x.state.store.commit_signal();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = *commits.borrow();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = *commits.borrow();
    assert!(after - before <= 1, "{} commits in a quiet second", after - before);
    stop.cancel();
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_created_playbook_that_opens_a_case_does_not_start_itself_again() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let yaml = "name: follow-up\ntrigger: {type: case_created}\nsteps:\n  - {id: again, type: create_case, title: 'Follow-up of {{ trigger.case.short_id }}', alerts: []}\n";
    let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml, "enabled": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, case) = x.call_json("POST", "/api/v1/cases", &key, json!({"title": "By hand"})).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    until(&x, "the follow-up", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 1).await;
    until(&x, "the responder", |x| {
        x.count("SELECT MAX(seq) FROM response_events") == x.count("SELECT seq FROM consumer_checkpoints WHERE name = 'response'")
    })
    .await;
    assert_eq!(x.count("SELECT COUNT(*) FROM cases"), 2, "the case by hand and its one follow-up");
    assert_eq!(x.count("SELECT COUNT(*) FROM playbook_runs"), 1);
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_request_to_a_name_of_a_private_address_is_refused_unless_private_destinations_are_allowed() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/x",
        axum::routing::post(move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "ok" }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let yaml = format!(
        "name: probe\ntrigger: {{type: manual}}\nsteps:\n  - {{id: call, type: http_request, method: POST, url: 'https://localhost:{port}/x', retries: 3, retry_delay: 1s}}\n"
    );
    let (status, body) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml, "enabled": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, run) = x.call_json("POST", &format!("/api/v1/playbooks/{}/run", body["id"].as_str().expect("id")), &key, json!({})).await;
    until(&x, "the run", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status IN ('succeeded', 'failed')") == 1).await;
    let (_, detail) = x.get(&format!("/api/v1/playbook-runs/{}", run["id"].as_str().expect("id")), &key).await;
    assert_eq!(detail["status"], "failed", "{detail:#}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the private address");
    // A refused destination is not tried again, and the error says why.
    let step = &detail["steps"][0];
    assert_eq!(step["attempts"], 1, "{detail:#}");
    assert!(step["error"].as_str().is_some_and(|e| e.contains("public") || e.contains("private")), "{detail:#}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_change_made_by_one_playbook_starts_another_in_the_same_space_only() {
    let x = TestXdr::start_with(|o| o.default_rules_enabled = true).await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let (other, _) = x.key("other", SCOPES, false).await;
    let ack = "name: ack\ntrigger: {type: alert_created, rules: ['Policy violation on unvetted AI platform'], severities: [high]}\nsteps:\n  - {id: ack, type: update_alert, status: acknowledged, comment: 'taken by the playbook'}\n";
    let noted = "name: noted\ntrigger: {type: alert_status_changed, to: [acknowledged]}\nsteps:\n  - {id: who, type: extract, set: {to: '{{ trigger.change.to }}'}}\n";
    let low_only = "name: low only\ntrigger: {type: alert_created, severities: [low]}\nsteps:\n  - {id: x, type: extract, set: {a: 1}}\n";
    for (k, yaml) in [(&key, ack), (&key, noted), (&key, low_only), (&other, noted)] {
        let (status, body) = x.call_json("POST", "/api/v1/playbooks", k, json!({"source": yaml, "enabled": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    post(&x, &key, vec![violation("v1", "dave", "deepseek")]).await;
    until(&x, "the three runs", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 3).await;
    until(&x, "the responder", |x| {
        x.count("SELECT MAX(seq) FROM response_events") == x.count("SELECT seq FROM consumer_checkpoints WHERE name = 'response'")
            && x.count("SELECT COUNT(*) FROM playbook_runs WHERE status IN ('queued', 'running')") == 0
    })
    .await;
    let (_, alerts) = x.get("/api/v1/alerts", &key).await;
    assert_eq!(alerts["items"][0]["status"], "acknowledged", "{alerts:#}");
    let names: Vec<String> = {
        let db =
            rusqlite::Connection::open_with_flags(x.dir.path().join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("db");
        let mut stmt = db.prepare("SELECT p.name || '@' || s.name FROM playbook_runs r JOIN playbooks p ON p.id = r.playbook_id JOIN spaces s ON s.no = r.space_no ORDER BY r.id").expect("sql");
        stmt.query_map([], |r| r.get(0)).expect("rows").collect::<Result<_, _>>().expect("names")
    };
    assert_eq!(
        names,
        ["AI platform violation response@soc", "ack@soc", "noted@soc"],
        "the high alert: the default playbook and ack, then noted; not the low-only playbook; not the other space's"
    );
    assert_eq!(one(&x, "SELECT json_extract(output, '$.to') FROM playbook_steps WHERE step_id = 'who'"), "acknowledged");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_playbook_cancels_what_it_had_queued_and_a_queued_run_can_be_cancelled() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    let space_no = x.count("SELECT no FROM spaces WHERE name = 'soc'");
    let yaml = "name: slow\ntrigger: {type: manual}\nsteps:\n  - {id: x, type: extract, set: {a: 1}}\n";
    let (_, pb) = x.call_json("POST", "/api/v1/playbooks", &key, json!({"source": yaml, "enabled": true})).await;
    let id = pb["id"].as_str().expect("id").to_owned();
    // Runs queued as a trigger would (origin set) and by hand (no origin), written straight to
    // the queue so the runner has not claimed them yet: the write and the disable are one.
    let (pid, now) = (id.clone(), vigie_core::clock::to_micros(chrono::Utc::now()));
    let ids = x.state.ids.clone();
    x.state
        .store
        .write(move |c| {
            for origin in [Some("event:1"), Some("event:2")] {
                vigie_xdr::playbooks::queue_run(c, &ids, space_no, &pid, "event", &json!({}), origin, None, "trigger", now)?;
            }
            c.execute("UPDATE playbooks SET enabled = 0 WHERE id = ?1", [&pid])?;
            Ok::<_, vigie_core::StoreError>(())
        })
        .await
        .expect("queued");
    x.state.response.runs_queued.notify_one();
    until(&x, "the cancellations", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'cancelled'") == 2).await;
    assert_eq!(x.count("SELECT COUNT(*) FROM playbook_steps"), 0, "nothing ran");
    // A finished run cannot be cancelled: 409.
    let (_, run) = x.call_json("POST", &format!("/api/v1/playbooks/{id}/run"), &key, json!({})).await;
    until(&x, "the manual run", |x| x.count("SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'") == 1).await;
    let (status, body) =
        x.call_json("POST", &format!("/api/v1/playbook-runs/{}/cancel", run["id"].as_str().expect("id")), &key, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    x.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbook_files_of_a_space_load_at_start_enabled_read_only_and_a_bad_file_is_skipped() {
    let dir = tempfile::tempdir().expect("dir");
    let files = dir.path().join("playbooks").join("soc");
    std::fs::create_dir_all(&files).expect("mkdir");
    std::fs::write(
        files.join("watch.yaml"),
        "name: from a file\ntrigger: {type: manual}\nsteps:\n  - {id: x, type: extract, set: {a: 1}}\n",
    )
    .expect("write");
    std::fs::write(
        files.join("broken.yaml"),
        "name: broken\ntrigger: {type: manual}\nsteps:\n  - {id: x, type: extract, next: nowhere, set: {a: 1}}\n",
    )
    .expect("write");
    std::fs::write(files.join("notes.txt"), "not a playbook").expect("write");
    let x = TestXdr::start_in(dir, |_| {}).await;
    let (key, _) = x.key("soc", SCOPES, false).await;
    // `serve` loads the files before it answers requests.
    let (_, page) = x.get("/api/v1/playbooks?trigger_type=manual", &key).await;
    let listed = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "the good file only: {listed:#?}");
    let pb = &listed[0];
    assert_eq!(
        (pb["name"].as_str(), pb["origin"].as_str(), pb["enabled"].as_bool()),
        (Some("from a file"), Some("file:watch.yaml"), Some(true))
    );
    let id = pb["id"].as_str().expect("id");
    let (status, body) = x.call_json("PATCH", &format!("/api/v1/playbooks/{id}"), &key, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("watch.yaml")), "{body}");
    let resp = x.http.delete(format!("{}/api/v1/playbooks/{id}", x.base)).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    x.stop().await;
}
