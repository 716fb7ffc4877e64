use super::*;
use crate::compile::tests::DEFAULT_PLAYBOOK;
use crate::compile::{Playbook, compile};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;

/// Records every call; answers with canned outputs, queued errors, or never (a hang).
#[derive(Default)]
struct Fake {
    calls: Vec<(&'static str, Value)>,
    people: HashMap<String, Value>,
    errors: HashMap<&'static str, VecDeque<ActionError>>,
    hang: HashSet<&'static str>,
    finished: Vec<(String, StepStatus)>,
}

impl Fake {
    fn answer(
        &mut self,
        action: &'static str,
        req: Value,
        output: Value,
    ) -> impl Future<Output = Result<Value, ActionError>> + Send + use<> {
        self.calls.push((action, req));
        let error = self.errors.get_mut(action).and_then(VecDeque::pop_front);
        let hang = self.hang.contains(action);
        async move {
            if hang {
                tokio::time::sleep(Duration::from_secs(86_400)).await;
            }
            match error {
                Some(e) => Err(e),
                None => Ok(output),
            }
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.calls.iter().map(|(name, _)| *name).collect()
    }

    fn call(&self, name: &str) -> Value {
        self.calls.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or(Value::Null)
    }
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Actions for Fake {
    fn query_events(&mut self, req: QueryEvents) -> impl Future<Output = Result<Value, ActionError>> + Send {
        self.answer("query_events", to_json(&req), json!({"events": [{"id": "e1"}, {"id": "e2"}], "count": 2}))
    }
    fn lookup_person(&mut self, user_id: &str) -> impl Future<Output = Result<Option<Value>, ActionError>> + Send {
        self.calls.push(("lookup_person", json!(user_id)));
        let found = self.people.get(user_id).cloned();
        async move { Ok(found) }
    }
    fn create_case(&mut self, req: CreateCase) -> impl Future<Output = Result<Value, ActionError>> + Send {
        let context_alert = req.context.pointer("/alert/id").cloned();
        let mut v = to_json(&req);
        v["context_alert"] = context_alert.unwrap_or(Value::Null);
        self.answer("create_case", v, json!({"id": "case-1", "short_id": "CA-1"}))
    }
    fn update_alert(&mut self, req: UpdateAlert) -> impl Future<Output = Result<Value, ActionError>> + Send {
        let id = req.alert.clone();
        self.answer("update_alert", to_json(&req), json!({"id": id}))
    }
    fn notify(&mut self, req: Notify) -> impl Future<Output = Result<Value, ActionError>> + Send {
        self.answer("notify", to_json(&req), json!({"sent": 1}))
    }
    fn create_task(&mut self, req: CreateTask) -> impl Future<Output = Result<Value, ActionError>> + Send {
        self.answer("create_task", to_json(&req), json!({"id": "task-1"}))
    }
    fn http_request(&mut self, req: HttpRequest) -> impl Future<Output = Result<Value, ActionError>> + Send {
        self.answer("http_request", to_json(&req), json!({"status": 200}))
    }
    fn add_ioc(&mut self, req: AddIoc) -> impl Future<Output = Result<Value, ActionError>> + Send {
        self.answer("add_ioc", to_json(&req), json!({"id": "ioc-1"}))
    }
    fn step_finished(&mut self, record: &StepRecord) -> impl Future<Output = ()> + Send {
        self.finished.push((record.id.clone(), record.status));
        async {}
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn opts(dry_run: bool) -> RunOptions {
    RunOptions { run_id: "run-1".into(), dry_run, now: now() }
}

fn playbook(yaml: &str) -> Playbook {
    match compile(yaml) {
        Ok(pb) => pb,
        Err(e) => panic!("{e:#?}"),
    }
}

fn alert_trigger() -> Value {
    json!({
        "alert": {"id": "al-1", "short_id": "AL-1", "user_id": "u1", "platform_id": "chat.example"},
        "rule": {"id": "r1", "name": "Policy violation on unvetted AI platform", "severity": "high"},
        "event": {"event_type": "interaction.policy_violated"},
        "person": null,
    })
}

fn ada(training_days_ago: i64) -> Fake {
    let mut fake = Fake::default();
    // The directory entry as the XDR gives it: every key present, null when unknown.
    let person = json!({
        "user_id": "u1", "display_name": "Ada", "email": "ada@example.com", "manager_email": "boss@example.com",
        "department": null, "training_date": "2024-01-26", "training_days_ago": training_days_ago,
    });
    fake.people.insert("u1".into(), person);
    fake
}

fn record<'r>(report: &'r RunReport, id: &str) -> &'r StepRecord {
    report.steps.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no record of {id}"))
}

#[tokio::test(start_paused = true)]
async fn the_default_playbook_runs_every_action_in_order_with_rendered_inputs() {
    let pb = playbook(DEFAULT_PLAYBOOK);
    let mut fake = ada(400);
    let report = run(&pb, alert_trigger(), &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(
        fake.names(),
        ["lookup_person", "query_events", "create_case", "notify", "create_task", "http_request", "add_ioc", "update_alert"]
    );
    assert_eq!(fake.finished.len(), 9);
    assert_eq!(record(&report, "overdue").branch.as_deref(), Some("then"));
    let query = fake.call("query_events");
    assert_eq!(query["query"], r#"user_id == "u1""#);
    assert_eq!((query["from"].as_str(), query["limit"].as_u64()), (Some("2025-02-22T12:00:00Z"), Some(100)));
    let case = fake.call("create_case");
    assert_eq!(
        (case["template"].as_str(), &case["alerts"], &case["context_alert"]),
        (Some("AI Platform Violation"), &json!(["al-1"]), &json!("al-1"))
    );
    assert_eq!(fake.call("notify")["to"], json!(["boss@example.com"]));
    assert_eq!(fake.call("notify")["subject"], "AI platform violation by Ada");
    let task = fake.call("create_task");
    assert_eq!(task["case"], "case-1", "the task reads the case step's output");
    assert_eq!(task["due"], "2025-03-15T12:00:00Z");
    assert_eq!(task["invite"], json!(["ada@example.com", "boss@example.com"]));
    let http = fake.call("http_request");
    assert_eq!(
        http["headers"],
        json!([["Content-Type", "application/json"], ["X-Token", "secret-token"]]),
        "the action gets the real token"
    );
    assert_eq!(http["body"], json!({"alert": "AL-1", "events": 2}), "one expression keeps its number type");
    assert_eq!(record(&report, "hook").inputs["headers"], json!({"Content-Type": "application/json", "X-Token": "[redacted]"}));
    assert_eq!(fake.call("add_ioc")["valid_until"], "2025-03-31T12:00:00Z");
    assert_eq!(fake.call("update_alert"), json!({"alert": "al-1", "status": "acknowledged", "comment": null, "assignee": null}));
    let facts = record(&report, "facts");
    assert_eq!(facts.output["person"]["display_name"], "Ada");
    assert_eq!(facts.output["platform_id"], "chat.example");
    assert_eq!(record(&report, "case").output["id"], "case-1");
}

#[tokio::test(start_paused = true)]
async fn the_else_branch_ends_the_run_when_training_is_recent() {
    let pb = playbook(DEFAULT_PLAYBOOK);
    let mut fake = ada(30);
    let report = run(&pb, alert_trigger(), &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(fake.names(), ["lookup_person", "query_events"]);
    let ids: Vec<&str> = report.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["facts", "activity", "overdue"]);
    assert_eq!(record(&report, "overdue").branch.as_deref(), Some("else"));
    assert_eq!(record(&report, "overdue").output, json!({"result": false}));
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_calls_no_side_effecting_action_and_shows_what_it_would_do() {
    let pb = playbook(DEFAULT_PLAYBOOK);
    let mut fake = ada(400);
    let report = run(&pb, alert_trigger(), &mut fake, opts(true)).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert!(report.dry_run);
    assert_eq!(fake.names(), ["lookup_person", "query_events"], "only read-only steps are carried out");
    let case = record(&report, "case");
    assert_eq!((case.status, case.attempts), (StepStatus::DryRun, 0));
    assert_eq!(case.output, json!({"id": "dry-run:case", "short_id": "CA-DRYRUN", "dry_run": true}));
    let task = record(&report, "review");
    assert_eq!(task.status, StepStatus::DryRun);
    assert_eq!(task.inputs["case"], "dry-run:case", "later steps render over the placeholder");
    assert_eq!(task.inputs["title"], "Security review for Ada");
    assert_eq!(record(&report, "tell_manager").inputs["to"], json!(["boss@example.com"]));
    assert_eq!(record(&report, "activity").status, StepStatus::Succeeded);
    assert_eq!(fake.finished.iter().filter(|(_, s)| *s == StepStatus::DryRun).count(), 6);
}

const ONE_UPDATE: &str = "name: t
trigger: {type: manual}
steps:
  - id: ack
    type: update_alert
    alert: al-9
    status: acknowledged
    retries: 2
    retry_delay: 10s
  - id: after
    type: notify
    channel: soc
";

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_after_the_delay_and_permanent_ones_are_not() {
    let pb = playbook(ONE_UPDATE);
    let mut fake = Fake::default();
    fake.errors.insert("update_alert", VecDeque::from([ActionError::retryable("busy"), ActionError::retryable("busy")]));
    let started = tokio::time::Instant::now();
    let report = run(&pb, json!({}), &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(record(&report, "ack").attempts, 3);
    assert_eq!(started.elapsed(), Duration::from_secs(20), "two waits of retry_delay");
    assert_eq!(fake.names(), ["update_alert", "update_alert", "update_alert", "notify"]);

    let mut fake = Fake::default();
    fake.errors.insert("update_alert", VecDeque::from([ActionError::permanent("no such alert")]));
    let report = run(&pb, json!({}), &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error.as_deref(), Some("step `ack` failed: no such alert"));
    let ack = record(&report, "ack");
    assert_eq!((ack.attempts, ack.status, ack.error.as_deref()), (1, StepStatus::Failed, Some("no such alert")));
    assert_eq!(fake.names(), ["update_alert"], "a failed step stops the run");
    assert_eq!(fake.finished, [("ack".to_owned(), StepStatus::Failed)]);

    let mut fake = Fake::default();
    let errors = (0..3).map(|_| ActionError::retryable("busy")).collect();
    fake.errors.insert("update_alert", errors);
    let report = run(&pb, json!({}), &mut fake, opts(false)).await;
    assert_eq!((report.status, record(&report, "ack").attempts), (RunStatus::Failed, 3), "1 + retries attempts at most");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_action_times_out_and_on_error_continue_goes_on() {
    let yaml = "name: t
trigger: {type: manual}
steps:
  - id: hook
    type: http_request
    url: https://x.example
    timeout: 5s
    on_error: continue
  - id: after
    type: notify
    channel: soc
    message: '{{ steps.hook.error }}'
";
    let pb = playbook(yaml);
    let mut fake = Fake::default();
    fake.hang.insert("http_request");
    let started = tokio::time::Instant::now();
    let report = run(&pb, json!({}), &mut fake, opts(false)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(report.status, RunStatus::Succeeded);
    let hook = record(&report, "hook");
    assert_eq!((hook.status, hook.error.as_deref()), (StepStatus::Failed, Some("timed out after 5s")));
    assert_eq!(hook.output, json!({"error": "timed out after 5s"}));
    assert_eq!(fake.call("notify")["message"], "timed out after 5s");
}

#[tokio::test(start_paused = true)]
async fn a_template_reading_a_missing_value_fails_the_step_with_its_path() {
    let yaml = "name: t
trigger: {type: manual}
steps:
  - id: tell
    type: notify
    to: ['{{ trigger.input.email }}']
";
    let pb = playbook(yaml);
    let mut fake = Fake::default();
    let report = run(&pb, json!({"input": {}}), &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Failed);
    let tell = record(&report, "tell");
    assert!(tell.error.as_deref().is_some_and(|e| e.starts_with("steps[0].to[0]: `trigger.input.email` is undefined")), "{tell:?}");
    assert_eq!(tell.attempts, 0);
    assert!(fake.calls.is_empty());
}

#[tokio::test(start_paused = true)]
async fn expressions_keep_their_types_when_they_reach_an_action() {
    let yaml = "name: t
trigger: {type: manual}
vars: {n: 25, tags: [a, b]}
steps:
  - id: q
    type: query_events
    query: 'user_id == {{ trigger.input.user | quote }}'
    limit: '{{ vars.n + 25 }}'
    from: '{{ now | time_with_delta(hours=-3) }}'
  - id: case
    type: create_case
    tags: '{{ vars.tags | chain([trigger.input.user]) | list }}'
    alerts: []
    severity: '{{ \"high\" if steps.q.count > 1 else \"low\" }}'
";
    let pb = playbook(yaml);
    let mut fake = Fake::default();
    let report = run(&pb, json!({"input": {"user": "o'neil \"x\""}}), &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let q = fake.call("query_events");
    assert_eq!((q["limit"].as_u64(), q["from"].as_str()), (Some(50), Some("2025-03-01T09:00:00Z")));
    assert_eq!(q["query"], r#"user_id == "o'neil \"x\"""#);
    let case = fake.call("create_case");
    assert_eq!(case["tags"], json!(["a", "b", "o'neil \"x\""]));
    assert_eq!(case["alerts"], json!([]), "an explicit empty list is not replaced by the trigger's alert");
    assert_eq!(case["severity"], "high");
}

#[tokio::test(start_paused = true)]
async fn the_shipped_default_playbook_opens_a_case_tells_the_manager_and_schedules_a_review() {
    let pb = playbook(include_str!("../../../content/playbooks/ai-platform-violation.yaml"));
    let mut fake = ada(400);
    let mut trigger = alert_trigger();
    trigger["event"] = json!({"event_type": "interaction.policy_violated", "policy_name": "Unvetted AI", "policy_action": "warn", "risk_score": 0.9, "classification_type": ["IBAN", "EMAIL"]});
    let report = run(&pb, trigger, &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(fake.names(), ["lookup_person", "query_events", "create_case", "notify", "create_task"]);
    assert_eq!(fake.call("notify")["to"], json!(["boss@example.com"]));
    assert!(fake.call("notify")["message"].as_str().is_some_and(|m| m.contains("IBAN, EMAIL") && m.contains("case CA-1")));
    assert_eq!(fake.call("create_task")["case"], "case-1");
}

#[tokio::test(start_paused = true)]
async fn a_person_that_renders_empty_is_null_without_asking_the_directory() {
    let yaml = "name: t
trigger: {type: alert_created}
steps:
  - {id: facts, type: extract, person: '{{ trigger.alert.user_id }}'}
  - {id: unknown, type: condition, if: steps.facts.person is none, then: end}
  - {id: tell, type: notify, to: '{{ steps.facts.person.email }}'}
";
    let pb = playbook(yaml);
    let mut fake = ada(400);
    let mut trigger = alert_trigger();
    trigger["alert"]["user_id"] = Value::Null;
    let report = run(&pb, trigger, &mut fake, opts(false)).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(record(&report, "facts").output, json!({"person": null}));
    assert!(fake.calls.is_empty(), "{:?}", fake.names());
    assert_eq!(record(&report, "unknown").branch.as_deref(), Some("then"));

    let report = run(&pb, alert_trigger(), &mut fake, opts(false)).await;
    assert_eq!(fake.names(), ["lookup_person", "notify"]);
    assert_eq!(fake.call("notify")["to"], json!(["ada@example.com"]), "one string is a list of one");
    assert_eq!(record(&report, "unknown").branch.as_deref(), Some("else"));
}
