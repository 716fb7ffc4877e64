//! The engine over events as the log shows them: pipe filters and windows, Sigma documents and
//! correlations (event_count, value_count, temporal, aliases, `generate`), refusals with reasons,
//! and window state saved and restored.
use serde_json::{Map, Value, json};
use vigie_detect::engine::RuleEntry;
use vigie_detect::{Engine, Hit, Kind, MapEvent, States, compile};

fn engine(rules: &[(Kind, &str)]) -> Engine {
    let entries = rules
        .iter()
        .enumerate()
        .map(|(i, (k, s))| RuleEntry { id: format!("r{i}"), program: compile(*k, s).unwrap_or_else(|e| panic!("{e}\n{s}")) })
        .collect();
    Engine::new(entries).expect("engine")
}

fn ev(v: Value) -> Map<String, Value> {
    v.as_object().expect("object").clone()
}

/// Feeds `(event, minute)` pairs; returns the hits.
fn feed(e: &Engine, states: &mut States, events: &[(Value, i64)]) -> Vec<Hit> {
    let mut out = Vec::new();
    for (i, (v, minute)) in events.iter().enumerate() {
        let m = ev(v.clone());
        e.evaluate(states, &MapEvent(&m), i as i64 + 1, 1_795_849_200_000_000 + minute * 60_000_000, &mut out);
    }
    out
}

const LOGIN: &str = r#"
title: Failed login
id: 5f0c1d1e-0000-4000-8000-000000000001
name: failed_login
logsource: {product: vigie}
detection:
  sel:
    action: login
    outcome: failure
  condition: sel
"#;

#[test]
fn a_sigma_event_count_correlation_fires_on_the_sixth_event_of_a_group_and_its_document_alone_does_not_alert() {
    let yaml = format!(
        "{LOGIN}---\ntitle: Brute force\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [user]\n  timespan: 1h\n  condition: {{gt: 5}}\n"
    );
    let e = engine(&[(Kind::Sigma, &yaml)]);
    let mut s = e.states();
    let fail = |u: &str| json!({"action": "login", "outcome": "failure", "user": u});
    let five: Vec<(Value, i64)> = (0..5).map(|m| (fail("bob"), m * 10)).collect();
    assert!(feed(&e, &mut s, &five).is_empty(), "five failures, no document hit (generate is false), no correlation");
    let hits = feed(&e, &mut s, &[(fail("bob"), 55)]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].part, "Brute force");
    assert_eq!(hits[0].row.as_ref().and_then(|r| r.get("count")), Some(&json!(6)));
    assert_eq!(hits[0].row.as_ref().and_then(|r| r.get("user")), Some(&json!("bob")));
    assert_eq!(hits[0].seqs.len(), 6);
    // Spread over two hours: nothing.
    let spread: Vec<(Value, i64)> = (0..6).map(|m| (fail("eve"), m * 24)).collect();
    assert!(feed(&e, &mut s, &spread).is_empty());
}

#[test]
fn value_count_temporal_aliases_and_generate_behave_as_sigma_says() {
    let upload = "title: Upload\nname: upload\nlogsource: {product: vigie}\ndetection:\n  sel: {action: upload}\n  condition: sel\n";
    let paste = "title: Paste\nname: paste\nlogsource: {product: vigie}\ndetection:\n  sel: {action: paste}\n  condition: sel\n";
    // value_count: three distinct platforms for one person.
    let vc = format!(
        "{upload}---\ntitle: Many platforms\ncorrelation:\n  type: value_count\n  rules: [upload]\n  group-by: [user]\n  timespan: 1d\n  condition: {{gte: 3, field: platform}}\n"
    );
    let e = engine(&[(Kind::Sigma, &vc)]);
    let mut s = e.states();
    let up = |p: &str| json!({"action": "upload", "user": "ann", "platform": p});
    assert!(feed(&e, &mut s, &[(up("a"), 0), (up("a"), 1), (up("b"), 2)]).is_empty());
    let hits = feed(&e, &mut s, &[(up("c"), 3)]);
    assert_eq!(hits.iter().map(|h| h.part.as_str()).collect::<Vec<_>>(), ["Many platforms"]);
    assert_eq!(hits[0].row.as_ref().and_then(|r| r.get("value_count")), Some(&json!(3)));
    // temporal with an alias (the person is `user` in one rule, `actor` in the other) and
    // generate: true (each document also raises its own hits).
    let temporal = format!(
        "{upload}---\n{paste}---\ntitle: Paste then upload\ncorrelation:\n  type: temporal\n  rules: [paste, upload]\n  group-by: [who]\n  \
         aliases:\n    who:\n      paste: actor\n      upload: user\n  timespan: 10m\n  generate: true\n"
    );
    let e = engine(&[(Kind::Sigma, &temporal)]);
    let mut s = e.states();
    let hits = feed(
        &e,
        &mut s,
        &[
            (json!({"action": "paste", "actor": "ann"}), 0),
            (json!({"action": "upload", "user": "bob"}), 1),
            (json!({"action": "upload", "user": "ann"}), 2),
        ],
    );
    let parts: Vec<&str> = hits.iter().map(|h| h.part.as_str()).collect();
    assert_eq!(parts, ["Paste", "Upload", "Upload", "Paste then upload"]);
    assert_eq!(hits[3].row.as_ref().and_then(|r| r.get("who")), Some(&json!("ann")));
}

#[test]
fn what_the_engine_would_not_carry_out_is_refused_with_the_reason() {
    let cases: Vec<(Kind, String, &str)> = vec![
        (Kind::Pipe, "event_type == ".into(), "1:15: expected a value"),
        (Kind::Pipe, "a == 1 | stats count by b".into(), "a detection rule is a filter"),
        (Kind::Pipe, "a == 1 | head 3".into(), "a detection rule is a filter"),
        (Kind::Sigma, "title: x\n".into(), "Sigma"),
        (Kind::Sigma, "not: [yaml".into(), "2:1: the Sigma YAML has documents that do not parse"),
        (
            Kind::Sigma,
            format!("{LOGIN}---\ntitle: f\nfilter:\n  rules: [failed_login]\n  selection: {{user: admin}}\n  condition: not selection\n"),
            "filter",
        ),
        (
            Kind::Sigma,
            format!(
                "{LOGIN}---\ntitle: m\ncorrelation:\n  type: value_median\n  rules: [failed_login]\n  group-by: [user]\n  timespan: 1h\n  condition: {{gt: 5, field: n}}\n"
            ),
            "value_median",
        ),
        (
            Kind::Sigma,
            format!(
                "{LOGIN}---\ntitle: t\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [user]\n  timespan: 1h\n  window: tumbling\n  condition: {{gt: 5}}\n"
            ),
            "tumbling",
        ),
        (
            Kind::Sigma,
            format!(
                "{LOGIN}---\ntitle: u\ncorrelation:\n  type: event_count\n  rules: [nowhere]\n  group-by: [user]\n  timespan: 1h\n  condition: {{gt: 5}}\n"
            ),
            "nowhere",
        ),
        (
            Kind::Sigma,
            format!(
                "{LOGIN}---\ntitle: long\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [user]\n  timespan: 2d\n  condition: {{gt: 5}}\n"
            ),
            "24 h",
        ),
    ];
    for (kind, source, reason) in cases {
        match compile(kind, &source) {
            Ok(_) => panic!("accepted: {source}"),
            Err(e) => assert!(e.to_string().contains(reason), "{source}\n→ {e}\n(wanted {reason:?})"),
        }
    }
}

const HIGH_RISK: &str = "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour";

#[test]
fn pipe_windows_save_only_what_changed_and_a_restored_engine_goes_on_counting() {
    let e = engine(&[(Kind::Pipe, HIGH_RISK), (Kind::Pipe, "event_type == \"alert.severity_critical\"")]);
    let mut s = e.states();
    let hr = |u: &str| json!({"event_type": "interaction.high_risk", "user_id": u});
    assert!(feed(&e, &mut s, &[(hr("u1"), 0), (hr("u1"), 5), (hr("u2"), 6)]).is_empty());
    let changes = s.take_changes();
    assert_eq!(changes.len(), 2, "two groups changed");
    assert!(s.take_changes().is_empty(), "nothing new since");
    // A new engine (a restart) restores the saved groups and fires on the sixth.
    let again = engine(&[(Kind::Pipe, HIGH_RISK), (Kind::Pipe, "event_type == \"alert.severity_critical\"")]);
    let mut restored = again.states();
    for (r, w, (h, saved)) in &changes {
        again.restore(&mut restored, *r, *w, *h, &saved.as_ref().expect("live").state).expect("restore");
    }
    let more: Vec<(Value, i64)> = (0..4).map(|m| (hr("u1"), 10 + m)).collect();
    let hits = feed(&again, &mut restored, &more);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].row.as_ref().and_then(|r| r.get("user_id")), Some(&json!("u1")));
    // The per-event rule needs no state.
    let crit = feed(&again, &mut restored, &[(json!({"event_type": "alert.severity_critical"}), 20)]);
    assert_eq!((crit.len(), crit[0].rule, crit[0].row.is_none()), (1, 1, true));
}
