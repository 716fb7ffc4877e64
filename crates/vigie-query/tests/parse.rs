//! The parser and the printer: QUERY.md's examples, errors with their position, limits, and
//! printing that parses back to the same tree (property-tested).
use proptest::prelude::*;
use vigie_query::ast::*;
use vigie_query::parse;

/// Every example of `../shared/QUERY.md`.
pub const EXAMPLES: &[&str] = &[
    "event_type == \"interaction.policy_violated\"\nAND platform_id NOT IN [\"chatgpt\", \"claude\", \"gemini\"]\nAND classification_count > 0",
    "event_type == \"interaction.high_risk\"\n| stats count by user_id\n| where count > 5 in last 1 hour",
    "event_type == \"interaction.high_risk\"\nAND classification_type IN [\"CREDIT_CARD\", \"IBAN\"]\nAND risk_score > 0.9",
    "source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)",
    "event_type == \"interaction.policy_violated\" | stats count by policy_name",
    "risk_score > 0.8 | stats count by bin(timestamp, 1d)",
    "event_type == \"interaction.policy_violated\" | stats count by user_id | sort -count | head 10",
];

fn test(field: &str, op: TestOp) -> Expr {
    Expr::Test(Test { field: field.into(), op })
}

fn s(v: &str) -> Literal {
    Literal::Str(v.into())
}

#[test]
fn every_example_of_the_specification_parses_to_what_it_means() {
    for q in EXAMPLES {
        let parsed = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(parse(&parsed.to_string()).expect("printed"), parsed, "{q}");
    }
    assert_eq!(
        parse(EXAMPLES[0]).expect("first"),
        Query {
            filter: Some(Expr::And(vec![
                test("event_type", TestOp::Cmp(CmpOp::Eq, s("interaction.policy_violated"))),
                test("platform_id", TestOp::In { negated: true, values: vec![s("chatgpt"), s("claude"), s("gemini")] }),
                test("classification_count", TestOp::Cmp(CmpOp::Gt, Literal::Num(0.0))),
            ])),
            stages: vec![],
        }
    );
    assert_eq!(
        parse(EXAMPLES[1]).expect("second").stages,
        vec![
            Stage::Stats { aggs: vec![Agg { func: AggFn::Count, field: None, alias: None }], by: vec![Key::Field("user_id".into())] },
            Stage::Where { cond: test("count", TestOp::Cmp(CmpOp::Gt, Literal::Num(5.0))), window: Some(Duration(3600)) },
        ]
    );
    assert_eq!(
        parse(EXAMPLES[3]).expect("fourth").stages,
        vec![Stage::Stats {
            aggs: vec![Agg { func: AggFn::Count, field: None, alias: None }],
            by: vec![Key::Field("platform_id".into()), Key::Bin { field: "timestamp".into(), span: Duration(3600) }],
        }]
    );
    assert_eq!(
        parse(EXAMPLES[6]).expect("last").stages[1..],
        [Stage::Sort(vec![SortKey { name: "count".into(), desc: true }]), Stage::Head(10)]
    );
}

#[test]
fn keywords_ignore_case_adjacent_terms_mean_and_and_an_empty_filter_matches_all() {
    let a = parse("a == 1 and B != 'x' Or not c exists").expect("mixed case");
    let b = parse("a == 1 AND B != \"x\" OR NOT c EXISTS").expect("upper");
    assert_eq!(a, b);
    assert_eq!(parse("a == 1 b == 2").expect("adjacent"), parse("a == 1 AND b == 2").expect("and"));
    assert_eq!(parse("").expect("empty"), Query { filter: None, stages: vec![] });
    assert_eq!(parse("| stats count").expect("no filter").filter, None);
    assert_eq!(parse("x = 1").expect("single ="), parse("x == 1").expect("double ="));
    let q =
        parse("user.name STARTSWITH \"adm\" | stats dc(user_id) as people, avg(risk_score) by platform_id | fields platform_id, people")
            .expect("dotted and aliases");
    assert_eq!(
        q.to_string(),
        "user.name STARTSWITH \"adm\" | stats dc(user_id) as people, avg(risk_score) by platform_id | fields platform_id, people"
    );
    let d = parse("| stats count by bin(timestamp, 90 minutes) | where count > 1 in last 2 weeks").expect("durations");
    assert_eq!(d.to_string(), "| stats count by bin(timestamp, 90m) | where count > 1 in last 2w");
    assert_eq!(parse("`not` == 1 AND `a b` EXISTS").expect("quoted").to_string(), "`not` == 1 AND `a b` EXISTS");
    assert_eq!(
        parse("ip CIDR \"10.0.0.0/8\" AND msg MATCHES \"^err(or)?\"").expect("cidr, regex").to_string(),
        "ip CIDR \"10.0.0.0/8\" AND msg MATCHES \"^err(or)?\""
    );
}

#[test]
fn errors_name_the_line_the_column_and_what_was_expected() {
    for (q, want) in [
        ("event_type == \"x\" AND user == AND b == 1", "1:31: expected a value after \"==\", found \"AND\""),
        ("a ==", "1:5: expected a value after \"==\", found the end"),
        ("a == 1\n  AND (b == 2", "2:14: expected \")\", found the end"),
        ("a == 1 | frobnicate", "1:10: unknown stage \"frobnicate\"; expected stats, where, sort, head or fields"),
        ("| stats median(x)", "1:9: unknown aggregation \"median\"; expected count, dc, sum, avg, min or max"),
        (
            "| stats count | where count > 1 in last 3 fortnights",
            "1:43: unknown unit \"fortnights\"; expected s, m, h, d or w (or their words)",
        ),
        ("| stats count | where count > 1 in last 1.5h", "1:41: bad duration \"1.5h\": expected a positive whole number"),
        ("| where count > 1 in last 1h", "1:19: \"in last\" needs a stats stage before this where"),
        ("a IN [1, 2", "1:11: expected \",\" or \"]\", found the end"),
        ("a ?? 1", "1:3: unexpected character '?'"),
        ("a == \"open", "1:6: this string is not closed: expected a closing \""),
        ("a MATCHES \"(\"", "1:11: bad regular expression: unclosed group"),
        ("a CIDR \"10.0.0.0/40\"", "1:8: \"10.0.0.0/40\" is not a network; write it like \"10.0.0.0/8\" or \"2001:db8::/32\""),
        (
            "a b",
            "1:3: expected an operator after \"a\" (==, !=, >, >=, <, <=, IN, NOT IN, CONTAINS, STARTSWITH, ENDSWITH, MATCHES, EXISTS, CIDR), found \"b\"",
        ),
        ("a == 1 )", "1:8: expected AND, OR, \"|\" or the end, found \")\""),
        ("| head -1", "1:8: expected a whole number after head, found \"-1\""),
        ("| sum(x)", "1:3: unknown stage \"sum\"; expected stats, where, sort, head or fields"),
        ("| stats sum", "1:12: expected \"(\" and a field after sum, found the end"),
    ] {
        let e = parse(q).expect_err(q);
        assert_eq!(e.to_string(), want, "{q}");
    }
}

#[test]
fn deep_nesting_and_long_input_are_refused_without_blowing_the_stack() {
    let deep = format!("{}a == 1{}", "(".repeat(30_000), ")".repeat(30_000));
    assert!(parse(&deep).expect_err("deep").message.contains("nested more than"));
    let aggs = format!("{}x{} == 1", "dc(".repeat(16_000), ")".repeat(16_000));
    assert!(parse(&aggs).is_err(), "nested aggregation columns are refused without recursing");
    let nots = format!("{}a == 1", "NOT ".repeat(10_000));
    assert!(parse(&nots).expect_err("nots").message.contains("nested more than"));
    let long = format!("a IN [{}]", vec!["1"; 40_000].join(","));
    assert!(parse(&long).expect_err("long").message.contains("at most 64 KiB"));
    let wide = (0..3000).map(|i| format!("f{i} == {i}")).collect::<Vec<_>>().join(" OR ");
    assert!(matches!(parse(&wide).expect("wide but shallow").filter, Some(Expr::Or(items)) if items.len() == 3000));
}

// ---------------------------------------------------------------------------------------------
// Printing parses back to the same tree.

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}(\\.[a-z_][a-z0-9_@-]{0,6}){0,2}",
        Just("count".to_owned()),
        Just("in".to_owned()),
        Just("@timestamp".to_owned()),
        "[ -~]{1,6}",
        "\\PC{1,5}",
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        "\\PC{0,8}".prop_map(Literal::Str),
        any::<String>().prop_map(Literal::Str),
        (-1e12f64..1e12).prop_map(Literal::Num),
        any::<i32>().prop_map(|n| Literal::Num(f64::from(n))),
        any::<f64>().prop_filter("finite", |n| n.is_finite()).prop_map(Literal::Num),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn op() -> impl Strategy<Value = TestOp> {
    let cmp = prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le)];
    prop_oneof![
        (cmp, literal()).prop_map(|(o, l)| TestOp::Cmp(o, l)),
        (any::<bool>(), prop::collection::vec(literal(), 1..4)).prop_map(|(negated, values)| TestOp::In { negated, values }),
        (any::<bool>(), any::<String>()).prop_map(|(negated, text)| TestOp::Contains { negated, text }),
        any::<String>().prop_map(TestOp::StartsWith),
        any::<String>().prop_map(TestOp::EndsWith),
        prop_oneof![Just("^a.*b$"), Just("x|y"), Just("\\d+")].prop_map(|r| TestOp::Matches(r.to_owned())),
        Just(TestOp::Exists),
        prop_oneof![Just("10.0.0.0/8"), Just("::1/128")].prop_map(|c| TestOp::Cidr(c.to_owned())),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = (name(), op()).prop_map(|(field, op)| Expr::Test(Test { field, op }));
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![1u64..100_000, Just(3600), Just(86_400), Just(604_800)].prop_map(Duration)
}

fn agg() -> impl Strategy<Value = Agg> {
    let func = prop_oneof![Just(AggFn::Count), Just(AggFn::Dc), Just(AggFn::Sum), Just(AggFn::Avg), Just(AggFn::Min), Just(AggFn::Max)];
    (func, name(), any::<bool>(), prop::option::of(name())).prop_map(|(func, field, bare, alias)| Agg {
        func,
        field: if func == AggFn::Count && bare { None } else { Some(field) },
        alias,
    })
}

fn stage() -> impl Strategy<Value = Stage> {
    let key = prop_oneof![name().prop_map(Key::Field), (name(), duration()).prop_map(|(field, span)| Key::Bin { field, span })];
    prop_oneof![
        (prop::collection::vec(agg(), 1..3), prop::collection::vec(key, 0..3)).prop_map(|(aggs, by)| Stage::Stats { aggs, by }),
        (expr(), prop::option::of(duration())).prop_map(|(cond, window)| Stage::Where { cond, window }),
        prop::collection::vec((name(), any::<bool>()).prop_map(|(name, desc)| SortKey { name, desc }), 1..3).prop_map(Stage::Sort),
        (0u64..1_000_000).prop_map(Stage::Head),
        prop::collection::vec(name(), 1..3).prop_map(Stage::Fields),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (prop::option::of(expr()), prop::collection::vec(stage(), 0..4)).prop_map(|(filter, mut stages)| {
        // A window needs a stats stage before it.
        let mut stats = false;
        for s in &mut stages {
            match s {
                Stage::Stats { .. } => stats = true,
                Stage::Where { window, .. } if !stats => *window = None,
                _ => {}
            }
        }
        Query { filter, stages }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn printing_a_query_gives_text_that_parses_to_the_same_tree(q in query()) {
        let text = q.to_string();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(back, q, "{}", text);
    }

    #[test]
    fn any_text_parses_or_fails_with_a_position_inside_it(text in "\\PC{0,60}") {
        if let Err(e) = parse(&text) {
            let lines = text.split('\n').count();
            prop_assert!(e.line >= 1 && e.line <= lines && e.column >= 1, "{:?} {}", text, e);
        }
    }
}
