//! Sigma export, checked with the Sigma parser and evaluator detection uses: the exported rule
//! matches the same events as the query, a windowed query fires as its correlation does, and
//! what Sigma cannot say is refused with the reason.
use proptest::prelude::*;
use rsigma_eval::event::JsonEvent;
use rsigma_eval::{CorrelationConfig, CorrelationEngine, Engine};
use serde_json::{Map, Value, json};
use vigie_query::ast::*;
use vigie_query::matcher::{Fields, Matcher};
use vigie_query::parse;
use vigie_query::sigma::{SigmaMeta, export};
use vigie_query::window::{WindowRule, WindowState};

fn meta() -> SigmaMeta {
    SigmaMeta {
        title: "Policy violation on unvetted AI platform".into(),
        id: "0195a0a0-0000-7000-8000-000000000001".into(),
        description: Some("exported by Vigie".into()),
        level: "high".into(),
        tags: vec!["attack.exfiltration".into()],
    }
}

fn sigma_matches(yaml: &str, event: &Map<String, Value>) -> bool {
    let collection = rsigma_parser::parse_sigma_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(!collection.has_errors(), "{:?}\n{yaml}", collection.errors);
    let mut engine = Engine::new();
    engine.add_collection(&collection).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let v = Value::Object(event.clone());
    !engine.evaluate(&JsonEvent::borrow(&v)).is_empty()
}

fn ours(q: &Query, event: &Map<String, Value>) -> bool {
    let mut f = Fields::new();
    Matcher::compile(q.filter.as_ref(), &mut f).expect("compile").matches(&f.record(event))
}

fn events() -> Vec<Map<String, Value>> {
    [
        json!({"event_type": "interaction.policy_violated", "platform_id": "deepseek", "classification_count": 2, "classification_type": ["IBAN"], "risk_score": 0.95}),
        json!({"event_type": "interaction.policy_violated", "platform_id": "chatgpt", "classification_count": 2}),
        json!({"event_type": "interaction.policy_violated", "platform_id": "DeepSeek", "classification_count": 0}),
        json!({"event_type": "interaction.high_risk", "classification_type": ["EMAIL", "CREDIT_CARD"], "risk_score": 0.95}),
        json!({"event_type": "interaction.high_risk", "classification_type": ["CREDIT_CARD"], "risk_score": 0.9}),
        json!({"event_type": "interaction.high_risk", "classification_type": ["EMAIL"], "risk_score": 0.99}),
        json!({"event_type": "alert.severity_critical"}),
        json!({"event_type": "Interaction.High_Risk", "classification_type": ["IBAN"], "risk_score": 0.97}),
    ]
    .into_iter()
    .filter_map(|v| v.as_object().cloned())
    .collect()
}

#[test]
fn the_default_filter_rules_export_to_sigma_rules_that_match_the_same_events() {
    for rule in [
        "event_type == \"interaction.policy_violated\" AND platform_id NOT IN [\"chatgpt\", \"claude\", \"gemini\"] AND classification_count > 0",
        "event_type == \"interaction.high_risk\" AND classification_type IN [\"CREDIT_CARD\", \"IBAN\"] AND risk_score > 0.9",
        "event_type == \"alert.severity_critical\"",
    ] {
        let q = parse(rule).expect("rule");
        let yaml = export(&q, &meta()).expect("expressible");
        let mut matched = 0;
        for e in events() {
            let m = ours(&q, &e);
            matched += usize::from(m);
            assert_eq!(sigma_matches(&yaml, &e), m, "{rule}\n{e:?}\n{yaml}");
        }
        assert!((1..events().len()).contains(&matched), "{rule} matched {matched} of the sample events");
    }
    let yaml = export(
        &parse("event_type == \"interaction.policy_violated\" AND platform_id NOT IN [\"chatgpt\", \"claude\"]").expect("q"),
        &meta(),
    )
    .expect("sigma");
    assert!(
        yaml.contains("\"event_type|cased\": \"interaction.policy_violated\"") && yaml.contains("condition: (sel1 and not sel2)"),
        "{yaml}"
    );
}

#[test]
fn a_windowed_rule_exports_to_an_event_count_correlation_that_fires_alike() {
    let text = "event_type == \"interaction.high_risk\" | stats count by user_id | where count > 5 in last 1 hour";
    let q = parse(text).expect("rule");
    let yaml = export(&q, &meta()).expect("expressible");
    let collection = rsigma_parser::parse_sigma_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert!(!collection.has_errors(), "{:?}\n{yaml}", collection.errors);
    assert_eq!((collection.rules.len(), collection.correlations.len()), (1, 1), "{yaml}");
    let mut engine = CorrelationEngine::new(CorrelationConfig::default());
    engine.add_collection(&collection).expect("engine");
    let rule = WindowRule::compile(&q).expect("compile").expect("windowed");
    let mut state = WindowState::default();
    let t0 = 1_795_849_200i64;
    let (mut sigma_fired, mut ours_fired) = (Vec::new(), Vec::new());
    // Alice: six in an hour (fires); Bob: six over two hours (does not).
    for (i, (user, minute)) in [
        ("alice", 0),
        ("bob", 0),
        ("alice", 10),
        ("alice", 20),
        ("bob", 25),
        ("alice", 30),
        ("bob", 50),
        ("alice", 40),
        ("bob", 75),
        ("alice", 50),
        ("bob", 100),
        ("bob", 119),
    ]
    .iter()
    .enumerate()
    {
        let v = json!({"event_type": "interaction.high_risk", "user_id": user});
        let t = t0 + minute * 60;
        if engine.process_event_at(&JsonEvent::borrow(&v), t).iter().any(|r| r.is_correlation()) {
            sigma_fired.push(*user);
        }
        if rule.observe(&mut state, v.as_object().expect("object"), i as i64, t * 1_000_000).is_some() {
            ours_fired.push(*user);
        }
    }
    assert_eq!(ours_fired, ["alice"]);
    assert_eq!(sigma_fired, ours_fired, "{yaml}");
    let dc = export(
        &parse("source == \"noxys\" | stats dc(platform_id) by user_id | where dc(platform_id) >= 3 in last 1d").expect("q"),
        &meta(),
    )
    .expect("value_count");
    assert!(dc.contains("type: value_count") && dc.contains("field: \"platform_id\"") && dc.contains("timespan: 1d"), "{dc}");
    let c = rsigma_parser::parse_sigma_yaml(&dc).expect("parses");
    assert!(!c.has_errors() && c.correlations.len() == 1, "{:?}", c.errors);
}

#[test]
fn what_sigma_cannot_say_is_refused_with_every_reason() {
    for (q, reason) in [
        ("", "empty filter"),
        ("a == null", "null"),
        ("name > \"m\"", "compares only numbers"),
        ("a IN [\"x\", 1]", "mixing text"),
        ("a == 1 | stats count by b", "has a Sigma form"),
        ("a == 1 | sort -b", "has a Sigma form"),
        ("a == 1 | stats count by bin(timestamp, 1h) | where count > 1 in last 1h", "time buckets"),
        ("a == 1 | stats sum(x) by b | where sum(x) > 1 in last 1h", "no Sigma correlation"),
        ("a == 1 | stats count by b | where count != 2 in last 1h", "cannot be `!=`"),
        ("`a|b` == 1", "reads as a modifier"),
    ] {
        let e = export(&parse(q).expect(q), &meta()).expect_err(q);
        assert!(e.to_string().contains(reason), "{q}: {e}");
    }
    let mut odd = meta();
    odd.title = "watch {rule} here".into();
    let y = export(&parse("a == 1 | stats count by b | where count > 1 in last 1h").expect("q"), &odd).expect("sigma");
    assert!(y.contains("title: \"watch {rule} here\"") && y.contains("- vigie-"), "only the correlation's reference is filled in: {y}");
    let two = export(&parse("a == null AND b > \"x\"").expect("q"), &meta()).expect_err("two reasons");
    assert_eq!(two.0.len(), 2, "every reason is given: {two}");
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::from),
        (-6i64..7).prop_map(|h| json!(h as f64 / 2.0)),
        prop_oneof![Just("x"), Just("X"), Just("abc"), Just("Ab"), Just("10.1.2.3"), Just(""), Just("2"), Just("1.5")]
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}

/// Events with `a` and `b` of any kind and `c` text only: Sigma's text modifiers also match a
/// number or a boolean by its text, where the query's text tests read strings only (a
/// difference the export cannot remove), so text tests are drawn on `c`.
fn event() -> impl Strategy<Value = Map<String, Value>> {
    let v = prop_oneof![4 => scalar(), 1 => prop::collection::vec(scalar(), 1..3).prop_map(Value::Array)];
    let text = prop_oneof![Just("x"), Just("X"), Just("abc"), Just("Ab"), Just("10.1.2.3"), Just("")].prop_map(Value::from);
    (prop::option::of(v.clone()), prop::option::of(v), prop::option::of(text)).prop_map(|(a, b, c)| {
        let mut m = Map::new();
        for (k, v) in [("a", a), ("b", b), ("c", c)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        m
    })
}

fn filter() -> impl Strategy<Value = Expr> {
    let field = prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(str::to_owned);
    let text_field = Just("c".to_owned());
    let lit = prop_oneof![
        (-3i64..4).prop_map(|n| Literal::Num(n as f64)),
        prop_oneof![Just("x"), Just("abc")].prop_map(|s| Literal::Str(s.into())),
        any::<bool>().prop_map(Literal::Bool)
    ];
    let op = prop_oneof![
        (prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)], lit.clone()).prop_map(|(o, l)| TestOp::Cmp(o, l)),
        (prop_oneof![Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le)], -3i64..4)
            .prop_map(|(o, n)| TestOp::Cmp(o, Literal::Num(n as f64))),
        Just(TestOp::Exists),
    ];
    let text_op = prop_oneof![
        (any::<bool>(), prop_oneof![Just("A"), Just("x"), Just("b")]).prop_map(|(negated, t)| TestOp::Contains { negated, text: t.into() }),
        prop_oneof![Just("a"), Just("X")].prop_map(|s| TestOp::StartsWith(s.into())),
        prop_oneof![Just("C"), Just("3")].prop_map(|s| TestOp::EndsWith(s.into())),
        Just(TestOp::Cidr("10.0.0.0/8".into())),
        Just(TestOp::Matches("^a".into())),
    ];
    let test = prop_oneof![(field, op), (text_field, text_op)];
    test.prop_map(|(field, op)| Expr::Test(Test { field, op })).prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..3).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..3).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn an_exported_filter_matches_as_the_query_does(f in filter(), evs in prop::collection::vec(event(), 1..8)) {
        let q = Query { filter: Some(f), stages: vec![] };
        let yaml = export(&q, &meta()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for e in &evs {
            prop_assert_eq!(sigma_matches(&yaml, e), ours(&q, e), "{}\n{:?}\n{}", q, e, yaml);
        }
    }
}
