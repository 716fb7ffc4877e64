//! The evaluation table: every field, operator and alias, against one interaction.
use super::*;
use serde_json::json;

const USER: &str = "0190a3c1-0000-7000-8000-000000000010";

fn facts<'a>(types: &'a [String]) -> Facts<'a> {
    Facts {
        platform_id: "deepseek",
        platform_vetted: false,
        risk_score: 0.8,
        classification_types: types,
        classification_count: types.len(),
        source: Source::BrowserExtension,
        direction: Direction::Outbound,
        user_id: Some(Uuid::parse_str(USER).expect("uuid")),
        interaction_type: InteractionType::Prompt,
    }
}

fn rules(field: &str, op: &str, value: Value) -> Result<CompiledRules, Vec<FieldError>> {
    compile(&RulesSpec {
        message: None,
        action: "block".into(),
        conditions: vec![ConditionSpec { field: field.into(), operator: op.into(), value }],
    })
}

fn check(field: &str, op: &str, value: Value, expected: bool) {
    let types = vec!["EMAIL".to_owned(), "CREDIT_CARD".to_owned()];
    let r = rules(field, op, value.clone()).unwrap_or_else(|e| panic!("{field} {op} {value}: {e:?}"));
    assert_eq!(r.matches(&facts(&types)), expected, "{field} {op} {value}");
}

#[test]
fn every_operator_and_alias_evaluates_as_documented() {
    let table: &[(&str, &str, Value, bool)] = &[
        ("platform_id", "eq", json!("deepseek"), true),
        ("platform_id", "eq", json!("DeepSeek"), true),
        ("platform_id", "eq", json!("chatgpt"), false),
        ("platform_id", "ne", json!("chatgpt"), true),
        ("platform_id", "neq", json!("deepseek"), false),
        ("platform_id", "in", json!(["chatgpt", "deepseek"]), true),
        ("platform_id", "in", json!(["chatgpt", "claude"]), false),
        ("platform_id", "nin", json!(["chatgpt", "claude"]), true),
        ("platform_id", "not_in", json!(["deepseek"]), false),
        ("platform_id", "in", json!("deepseek"), true),
        ("platform_vetted", "eq", json!(false), true),
        ("platform_vetted", "eq", json!("true"), false),
        ("platform_vetted", "ne", json!(true), true),
        ("risk_score", "eq", json!(0.8), true),
        ("risk_score", "eq", json!("0.8"), true),
        ("risk_score", "ne", json!(0.8), false),
        ("risk_score", "gt", json!("0.7"), true),
        ("risk_score", "gt", json!(0.8), false),
        ("risk_score", "gte", json!(0.8), true),
        ("risk_score", "lt", json!(0.8), false),
        ("risk_score", "lt", json!("0.9"), true),
        ("risk_score", "lte", json!(0.8), true),
        ("classification_count", "eq", json!("2"), true),
        ("classification_count", "gt", json!(1), true),
        ("classification_count", "gte", json!(3), false),
        ("classification_count", "lt", json!("3"), true),
        ("classification_count", "lte", json!(1), false),
        ("classification_count", "ne", json!(0), true),
        ("classifications", "contains", json!("CREDIT_CARD"), true),
        ("classifications", "contains", json!("credit_card"), true),
        ("classifications", "contains", json!("IBAN"), false),
        ("classifications", "contains", json!(["IBAN", "EMAIL"]), true),
        ("classifications", "not_contains", json!("IBAN"), true),
        ("classifications", "not_contains", json!("EMAIL"), false),
        ("classifications", "in", json!(["IBAN"]), false),
        ("classifications", "nin", json!(["IBAN", "FR_NIR"]), true),
        ("source", "eq", json!("browser_extension"), true),
        ("source", "ne", json!("proxy"), true),
        ("source", "in", json!(["proxy", "api"]), false),
        ("source", "nin", json!(["proxy", "api"]), true),
        ("direction", "eq", json!("outbound"), true),
        ("direction", "eq", json!("inbound"), false),
        ("user_id", "eq", json!(USER), true),
        ("user_id", "eq", json!(USER.to_uppercase()), true),
        ("user_id", "ne", json!(USER), false),
        ("user_id", "in", json!(["0190a3c1-0000-7000-8000-000000000011"]), false),
        ("interaction_type", "eq", json!("prompt"), true),
        ("interaction_type", "nin", json!(["completion", "tool_call"]), true),
    ];
    for (field, op, value, expected) in table {
        check(field, op, value.clone(), *expected);
    }
}

#[test]
fn a_missing_user_id_fails_eq_and_in_and_passes_ne_and_nin() {
    let types = Vec::new();
    let mut f = facts(&types);
    f.user_id = None;
    for (op, value, expected) in
        [("eq", json!(USER), false), ("in", json!([USER]), false), ("ne", json!(USER), true), ("nin", json!([USER]), true)]
    {
        assert_eq!(rules("user_id", op, value).expect("valid").matches(&f), expected, "user_id {op}");
    }
}

#[test]
fn all_conditions_must_hold() {
    let spec = RulesSpec {
        message: None,
        action: "Coach".into(),
        conditions: vec![
            ConditionSpec { field: "platform_id".into(), operator: "eq".into(), value: json!("deepseek") },
            ConditionSpec { field: "risk_score".into(), operator: "gt".into(), value: json!("0.9") },
        ],
    };
    let r = compile(&spec).expect("valid");
    assert_eq!(r.action, Action::Coach);
    assert!(!r.matches(&facts(&[])));
}

#[test]
fn invalid_conditions_are_named_by_path_all_at_once() {
    let spec = RulesSpec {
        message: None,
        action: "deny".into(),
        conditions: vec![
            ConditionSpec { field: "platform_id".into(), operator: "eq".into(), value: json!("chatgpt") },
            ConditionSpec { field: "platform_id".into(), operator: "gt".into(), value: json!("chatgpt") },
            ConditionSpec { field: "risk_score".into(), operator: "gt".into(), value: json!("high") },
            ConditionSpec { field: "risk_score".into(), operator: "gt".into(), value: json!(1.5) },
            ConditionSpec { field: "colour".into(), operator: "eq".into(), value: json!("red") },
            ConditionSpec { field: "source".into(), operator: "eq".into(), value: json!("carrier_pigeon") },
            ConditionSpec { field: "user_id".into(), operator: "eq".into(), value: json!("bob") },
            ConditionSpec { field: "platform_id".into(), operator: "eq".into(), value: json!(["a", "b"]) },
            ConditionSpec { field: "classification_count".into(), operator: "gt".into(), value: json!(1.5) },
            ConditionSpec { field: "platform_id".into(), operator: "between".into(), value: json!(1) },
        ],
    };
    let errors = compile(&spec).expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "rules.action",
            "rules.conditions[1].operator",
            "rules.conditions[2].value",
            "rules.conditions[3].value",
            "rules.conditions[4].field",
            "rules.conditions[5].value",
            "rules.conditions[6].value",
            "rules.conditions[7].value",
            "rules.conditions[8].value",
            "rules.conditions[9].operator",
        ]
    );
    assert!(errors[1].message.contains("eq, ne, in or nin"), "{}", errors[1].message);
    assert!(compile(&RulesSpec { message: None, action: "log".into(), conditions: vec![] }).is_err());
}

#[test]
fn the_first_match_by_priority_then_creation_wins() {
    let mk = |id: u128, priority: i64, action: &str, platform: &str| CompiledPolicy {
        id: Uuid::from_u128(id),
        name: format!("p{id}"),
        priority,
        rules: compile(&RulesSpec {
            message: None,
            action: action.into(),
            conditions: vec![ConditionSpec { field: "platform_id".into(), operator: "eq".into(), value: json!(platform) }],
        })
        .expect("valid"),
    };
    let mut ps =
        vec![mk(3, 50, "log", "deepseek"), mk(2, 10, "coach", "deepseek"), mk(1, 10, "block", "deepseek"), mk(4, 1, "block", "chatgpt")];
    sort_for_evaluation(&mut ps);
    let types = Vec::new();
    let f = facts(&types);
    let m = first_match(&ps, &f).expect("a match");
    assert_eq!((m.name.as_str(), m.rules.action), ("p1", Action::Block));
    assert!(first_match(&ps[3..], &Facts { platform_id: "claude", ..f }).is_none());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_condition_compiles_or_is_refused_with_a_path_and_never_panics(
            field in prop::sample::select(vec!["platform_id", "platform_vetted", "risk_score", "classification_count", "classifications", "source", "direction", "user_id", "interaction_type", "other", ""]),
            operator in prop::sample::select(vec!["eq", "ne", "neq", "in", "nin", "not_in", "lt", "lte", "gt", "gte", "contains", "not_contains", "EQ", "between", ""]),
            value in crate::test_support::json_value(&["field", "value"]),
            risk in 0.0f64..=1.0,
        ) {
            let spec = RulesSpec { message: None, action: "log".into(), conditions: vec![ConditionSpec { field: field.into(), operator: operator.into(), value }] };
            match compile(&spec) {
                Ok(r) => {
                    let types = vec!["EMAIL".to_owned()];
                    let mut f = facts(&types);
                    f.risk_score = risk;
                    let _ = r.matches(&f);
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    prop_assert!(errors.iter().all(|e| e.field.starts_with("rules.conditions[0].") && !e.message.is_empty()), "{errors:?}");
                }
            }
        }
    }
}

#[test]
fn a_message_is_kept_trimmed_and_a_long_one_refused() {
    let with = |message: &str| {
        compile(&RulesSpec {
            action: "coach".into(),
            conditions: vec![ConditionSpec { field: "platform_id".into(), operator: "eq".into(), value: json!("grok") }],
            message: Some(message.into()),
        })
    };
    assert_eq!(with("  Remove the card number.  ").expect("valid").message.as_deref(), Some("Remove the card number."));
    assert_eq!(with("   ").expect("valid").message, None, "a blank message means the default one");
    assert_eq!(with(&"é".repeat(500)).expect("500 characters").message.map(|m| m.chars().count()), Some(500));
    let errors = with(&"x".repeat(501)).expect_err("too long");
    assert_eq!(errors[0].field, "rules.message");
}
