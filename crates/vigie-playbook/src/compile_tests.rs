use super::*;
use crate::MAX_YAML_BYTES;

/// The plan's example playbook ("AI platform violation response").
pub(crate) const DEFAULT_PLAYBOOK: &str = r#"
name: AI platform violation response
description: A policy violation on an unvetted AI platform by someone whose training is old.
trigger:
  type: alert_created
  rules: ["Policy violation on unvetted AI platform"]
  severities: [high, critical]
vars: {review_days: 14}
steps:
  - id: facts
    type: extract
    set: {user_id: "{{ trigger.alert.user_id }}", platform_id: "{{ trigger.alert.platform_id }}"}
    person: "{{ trigger.alert.user_id }}"
  - id: activity
    type: query_events
    query: 'user_id == {{ steps.facts.user_id | quote }}'
    range: 7d
  - id: overdue
    type: condition
    if: "steps.facts.person is none or steps.facts.person.training_days_ago is none or steps.facts.person.training_days_ago > 365"
    then: case
    else: end
  - id: case
    type: create_case
    template: AI Platform Violation
  - id: tell_manager
    type: notify
    to: ["{{ steps.facts.person.manager_email }}"]
    subject: "AI platform violation by {{ steps.facts.person.display_name }}"
  - id: review
    type: create_task
    case: "{{ steps.case.id }}"
    title: "Security review for {{ steps.facts.person.display_name }}"
    due: "{{ vars.review_days }}d"
    assignee: on-duty
    invite: ["{{ steps.facts.person.email }}", "{{ steps.facts.person.manager_email }}"]
  - id: hook
    type: http_request
    method: POST
    url: https://hooks.example.com/vigie
    headers: {X-Token: "secret-token", Content-Type: application/json}
    body: {alert: "{{ trigger.alert.short_id }}", events: "{{ steps.activity.count }}"}
    on_error: continue
  - id: ioc
    type: add_ioc
    ioc_type: platform
    value: "{{ trigger.alert.platform_id }}"
    valid_for: 30d
  - id: ack
    type: update_alert
    alert: "{{ trigger.alert.id }}"
    status: acknowledged
    retries: 2
"#;

fn errors(yaml: &str) -> Vec<PlaybookError> {
    match compile(yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// A playbook with a manual trigger and the given steps (YAML, indented under `steps:`).
fn with_steps(steps: &str) -> String {
    format!("name: t\ntrigger:\n  type: manual\nvars: {{days: 3}}\nsteps:\n{steps}")
}

#[test]
fn the_default_playbook_compiles_into_its_graph() {
    let pb = match compile(DEFAULT_PLAYBOOK) {
        Ok(pb) => pb,
        Err(e) => panic!("{e:#?}"),
    };
    assert_eq!(pb.name, "AI platform violation response");
    assert_eq!(pb.steps.len(), 9);
    match &pb.trigger {
        Trigger::AlertCreated { rules, severities } => {
            assert_eq!(rules, &["Policy violation on unvetted AI platform"]);
            assert_eq!(severities, &["high", "critical"]);
        }
        other => panic!("{other:?}"),
    }
    let overdue = &pb.steps[2];
    assert_eq!((overdue.then, overdue.next), (Some(Next::Step(3)), Next::End));
    assert_eq!(pb.steps[8].next, Next::End);
    assert_eq!(pb.steps[8].retries, 2);
    assert_eq!(pb.steps[6].on_error, OnError::Continue);
    let json = pb.to_json();
    assert_eq!(json["name"], "AI platform violation response");
    assert_eq!(json["steps"][3]["template"], "AI Platform Violation");
    let edges = json["edges"].as_array().map(Vec::len);
    assert_eq!(edges, Some(10), "one edge per step, two for the condition");
    assert!(json["edges"].as_array().is_some_and(|e| e.contains(&serde_json::json!({"from": "overdue", "to": null, "when": "else"}))));
}

#[test]
fn a_schedule_trigger_gives_the_next_firing_time() {
    let yaml = "name: s\ntrigger: {type: schedule, cron: '0 8 * * 1-5'}\nsteps:\n  - {id: a, type: extract, set: {at: '{{ trigger.scheduled_at }}'}}\n";
    let pb = compile(yaml).map_err(|e| format!("{e:?}"));
    let Ok(Playbook { trigger: Trigger::Schedule(s), .. }) = pb else { panic!("{pb:?}") };
    let friday_noon = chrono::DateTime::parse_from_rfc3339("2025-02-28T12:00:00Z").map(|t| t.with_timezone(&Utc));
    let next = friday_noon.ok().and_then(|t| s.next_after(t)).map(crate::time::rfc3339);
    assert_eq!(next.as_deref(), Some("2025-03-03T08:00:00Z"));
}

#[test]
fn every_kind_of_mistake_is_named_with_its_path_and_a_fix() {
    let extract = "  - id: a\n    type: extract\n    set: {x: 1}\n";
    let cases: Vec<(String, &str, &str)> = vec![
        ("nme: x\n".into(), "", "unknown field `nme`"),
        (with_steps("  - id: a\n    type: querry_events\n"), "steps[0].type", "unknown variant `querry_events`"),
        (
            with_steps("  - id: a\n    type: query_events\n    querry: x\n"),
            "steps[0].querry",
            "`querry` is not a key of a query_events step",
        ),
        (with_steps("  - id: a\n    type: condition\n    if: 'true'\n"), "steps[0]", "a condition step needs `then`"),
        (with_steps(&format!("{extract}    next: nowhere\n")), "steps[0].next", "there is no step `nowhere`; name one of a or `end`"),
        (
            with_steps(&format!("{extract}    next: b\n  - id: b\n    type: extract\n    set: {{y: 1}}\n    next: a\n")),
            "steps[1]",
            "these steps form a cycle: a → b → a",
        ),
        (
            with_steps(&format!("{extract}    next: end\n  - id: b\n    type: extract\n    set: {{y: 1}}\n")),
            "steps[1]",
            "step `b` is never reached",
        ),
        (
            with_steps(&format!("{extract}  - id: a\n    type: extract\n    set: {{y: 1}}\n")),
            "steps[1].id",
            "the id `a` is already used by steps[0]",
        ),
        (with_steps("  - id: Facts\n    type: extract\n    set: {x: 1}\n"), "steps[0].id", "is not a step id"),
        (with_steps("  - id: a\n    type: extract\n    set: {x: '{{ trigger.input | }}'}\n"), "steps[0].set.x", "does not parse"),
        (
            with_steps("  - id: a\n    type: extract\n    set: {x: '{{ alert.id }}'}\n"),
            "steps[0].set.x",
            "`alert` is not a variable here (did you mean `trigger.alert`?)",
        ),
        (with_steps("  - id: a\n    type: extract\n    set: {x: '{{ vars.weeks }}'}\n"), "steps[0].set.x", "`vars.weeks` is not declared"),
        (with_steps("  - id: a\n    type: extract\n    set: {x: '{{ run.user }}'}\n"), "steps[0].set.x", "`run.user` does not exist"),
        (
            with_steps("  - id: a\n    type: extract\n    set: {x: '{{ trigger.change }}'}\n"),
            "steps[0].set.x",
            "`trigger.change` is not given by a manual trigger",
        ),
        (with_steps("  - id: a\n    type: extract\n    set: {x: '{{ steps.zz.id }}'}\n"), "steps[0].set.x", "`steps.zz` names no step"),
        (with_steps("  - id: a\n    type: extract\n    set: {x: '{{ steps.a.x }}'}\n"), "steps[0].set.x", "cannot read its own output"),
        (
            with_steps(&format!("{extract}  - id: b\n    type: notify\n    channel: '{{{{ steps.a.y }}}}'\n")),
            "steps[1].channel",
            "`steps.a.y` is not set by step `a`; it sets x",
        ),
        (with_steps(&format!("{extract}    timeout: 5x\n")), "steps[0].timeout", "is not a duration"),
        (with_steps(&format!("{extract}    timeout: 11m\n")), "steps[0].timeout", "at most 10m"),
        (with_steps(&format!("{extract}    retries: 6\n")), "steps[0].retries", "at most 5 times"),
        (with_steps("  - id: a\n    type: query_events\n    query: 'user_id == '\n"), "steps[0].query", "this query does not parse: 1:"),
        (with_steps("  - id: a\n    type: query_events\n    query: 'x == 1'\n    limit: 20000\n"), "steps[0].limit", "from 1 to 10000"),
        (with_steps("  - id: a\n    type: condition\n    if: '{{ trigger.input }}'\n    then: end\n"), "steps[0].if", "without {{ }}"),
        (with_steps("  - id: a\n    type: update_alert\n    status: done\n"), "steps[0].status", "\"done\" is not an alert status"),
        (with_steps("  - id: a\n    type: notify\n    subject: hi\n"), "steps[0]", "needs `channel`"),
        (with_steps("  - id: a\n    type: create_task\n    case: c\n    title: t\n    due: soon\n"), "steps[0].due", "neither a duration"),
        (with_steps("  - id: a\n    type: add_ioc\n    ioc_type: email\n    value: x\n"), "steps[0].ioc_type", "not an indicator type"),
        (with_steps("  - id: a\n    type: http_request\n    url: ftp://x\n"), "steps[0].url", "not an http:// or https:// URL"),
        (
            "name: t\ntrigger: {type: alert_created, cron: '* * * * *'}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(),
            "trigger.cron",
            "an alert_created trigger has no `cron`",
        ),
        (
            "name: t\ntrigger: {type: alert_created, severities: [urgent]}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(),
            "trigger.severities[0]",
            "\"urgent\" is not a severity",
        ),
        (
            "name: t\ntrigger: {type: schedule, cron: 'every day'}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(),
            "trigger.cron",
            "is not a cron expression",
        ),
        ("name: t\ntrigger: {type: schedule}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(), "trigger", "needs `cron`"),
        (
            "name: t\ntrigger: {type: event, query: 'event_type =='}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(),
            "trigger.query",
            "this query does not parse",
        ),
        (
            "name: t\ntrigger: {type: event, query: 'x == 1 | stats count by y'}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(),
            "trigger.query",
            "a filter only",
        ),
        (
            "name: t\ntrigger: {type: alert_status_changed, to: [done]}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(),
            "trigger.to[0]",
            "\"done\" is not an alert status",
        ),
        ("name: t\ntrigger: {type: manual}\nsteps: []\n".into(), "steps", "1 to 100 steps"),
        ("name: ''\ntrigger: {type: manual}\nsteps:\n  - {id: a, type: extract, set: {x: 1}}\n".into(), "name", "1 to 100 characters"),
    ];
    for (yaml, path, fragment) in cases {
        let errs = errors(&yaml);
        assert!(
            errs.iter().any(|e| e.path == path && e.message.contains(fragment)),
            "wanted {path}: …{fragment}… in\n{yaml}\ngot {errs:#?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once_with_its_line() {
    let yaml = with_steps(
        "  - id: a\n    type: extract\n    set: {x: '{{ vars.nope }}'}\n    next: nowhere\n  - id: b\n    type: notify\n    channel: soc\n    timeout: forever\n",
    );
    let errs = errors(&yaml);
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["steps[0].set.x", "steps[0].next", "steps[1]", "steps[1].timeout"], "{errs:#?}");
    let next = &errs[1];
    assert_eq!((next.line, next.column), (Some(9), Some(5)));
    assert_eq!(next.to_string(), "9:5: steps[0].next: there is no step `nowhere`; name one of a, b or `end`");
}

#[test]
fn a_yaml_syntax_error_gives_its_line_and_column() {
    let errs = errors("name: t\ntrigger: {type: manual\nsteps: []\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].line.is_some() && errs[0].column.is_some(), "{errs:?}");
}

#[test]
fn an_oversized_definition_is_refused_before_parsing() {
    let yaml = format!("name: t\n#{}\n", "x".repeat(MAX_YAML_BYTES));
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("at most 256 KiB"), "{errs:?}");
}

const BRANCHES: &str = "  - id: facts
    type: extract
    set: {a: 1}
  - id: check
    type: condition
    if: steps.facts.a > 0
    then: left
    else: right
  - id: left
    type: extract
    set: {v: 1}
    next: join
  - id: right
    type: extract
    set: {v: 2}
  - id: join
    type: notify
    channel: soc
";

#[test]
fn a_step_read_after_the_join_is_accepted_only_when_it_runs_on_every_branch() {
    let ok = with_steps(&format!("{BRANCHES}    message: '{{{{ steps.facts.a }}}}'\n"));
    assert_eq!(errors(&ok), Vec::new());
    let skipped = with_steps(&format!("{BRANCHES}    message: '{{{{ steps.left.v }}}}'\n"));
    let errs = errors(&skipped);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].path, "steps[4].message");
    assert!(errs[0].message.contains("step `left` may not have run: condition `check` can lead to step `join` without it"), "{errs:?}");
}

#[test]
fn a_step_read_before_it_runs_is_refused() {
    let yaml = with_steps("  - id: a\n    type: extract\n    set: {x: '{{ steps.b.y }}'}\n  - id: b\n    type: extract\n    set: {y: 1}\n");
    let errs = errors(&yaml);
    assert!(errs.iter().any(|e| e.message.contains("step `b` runs after step `a`")), "{errs:#?}");
}

#[test]
fn the_example_condition_skipping_the_case_refuses_a_task_reading_it_from_the_else_branch() {
    let yaml = DEFAULT_PLAYBOOK.replace("else: end", "else: review");
    let errs = errors(&yaml);
    assert!(
        errs.iter().any(|e| e.path == "steps[5].case" && e.message.contains("condition `overdue` can lead to step `review` without it")),
        "{errs:#?}"
    );
}

/// Found by the fuzz target `playbook`: minijinja's expression lexer panicked ("empty lexer
/// stack") on a condition holding a stray `}}`.
#[test]
fn a_condition_with_a_stray_closing_marker_is_refused_not_a_panic() {
    for yaml in [
        "name: rm\ntrigger:\n  type: alert_created \nsteps:\n  - id:\n    type: condition\n    if:  ct}}\"]\n",
        "name: rm\ntrigger: {type: manual}\nsteps:\n  - {id: c, type: condition, if: 'a %} b'}\n",
    ] {
        let errs = errors(yaml);
        assert!(!errs.is_empty(), "{yaml}");
    }
}
