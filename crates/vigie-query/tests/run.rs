//! What queries mean, run in memory (the streaming back end and the reference for SQL):
//! QUERY.md's examples over events, the rules for missing and list fields, numeric strings and
//! case, and the sliding window of a detection rule.
use serde_json::{Value, json};
use vigie_query::matcher::{Fields, Matcher};
use vigie_query::parse;
use vigie_query::table::{Row, run};
use vigie_query::window::{MAX_GROUPS, WindowRule, WindowState};

fn row(v: Value) -> Row {
    v.as_object().expect("object").clone()
}

fn matches(q: &str, event: &Value) -> bool {
    let q = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut fields = Fields::new();
    let m = Matcher::compile(q.filter.as_ref(), &mut fields).expect("compile");
    m.matches(&fields.record(&row(event.clone())))
}

fn violation(platform: &str, count: u64) -> Value {
    json!({"event_type": "interaction.policy_violated", "platform_id": platform, "classification_count": count})
}

#[test]
fn the_filters_of_the_specification_match_what_they_say() {
    let q = "event_type == \"interaction.policy_violated\"\nAND platform_id NOT IN [\"chatgpt\", \"claude\", \"gemini\"]\nAND classification_count > 0";
    assert!(matches(q, &violation("deepseek", 2)));
    assert!(!matches(q, &violation("chatgpt", 2)));
    assert!(!matches(q, &violation("deepseek", 0)));
    let card = "event_type == \"interaction.high_risk\"\nAND classification_type IN [\"CREDIT_CARD\", \"IBAN\"]\nAND risk_score > 0.9";
    let high = |types: Value, risk: Value| json!({"event_type": "interaction.high_risk", "classification_type": types, "risk_score": risk});
    assert!(matches(card, &high(json!(["EMAIL", "CREDIT_CARD"]), json!(0.95))));
    assert!(!matches(card, &high(json!(["CREDIT_CARD"]), json!(0.9))));
    assert!(!matches(card, &high(json!(["EMAIL"]), json!(0.99))));
    assert!(matches(card, &high(json!(["IBAN"]), json!("0.95"))), "a numeric string compares as a number");
}

#[test]
fn missing_fields_lists_case_and_numbers_follow_the_rules() {
    let e = json!({"a": 1, "name": "Alice", "tags": ["x", "y"], "n": "42", "ip": "10.1.2.3", "nothing": null});
    for (q, want) in [
        ("missing == 1", false),
        ("missing != 1", true),
        ("NOT (missing == 1)", true),
        ("missing NOT IN [1]", true),
        ("missing > 0 OR missing <= 0", false),
        ("missing EXISTS", false),
        ("nothing EXISTS", false),
        ("nothing == null", true),
        ("a EXISTS", true),
        ("name == \"Alice\"", true),
        ("name == \"alice\"", false),
        ("name CONTAINS \"LIC\"", true),
        ("name STARTSWITH \"al\" AND name ENDSWITH \"CE\"", true),
        ("name NOT CONTAINS \"bob\"", true),
        ("name MATCHES \"^A.i\"", true),
        ("name > \"Aaron\" AND name < \"Bob\"", true),
        ("tags == \"y\"", true),
        ("tags IN [\"z\", \"x\"]", true),
        ("tags NOT IN [\"x\"]", false),
        ("tags != \"x\"", false),
        ("n > 41 AND n <= 42 AND n == 42", true),
        ("n == \"42\"", true),
        ("a == \"1\"", false),
        ("ip CIDR \"10.0.0.0/8\" AND NOT ip CIDR \"10.2.0.0/16\"", true),
        ("a == 1 name == \"Alice\"", true),
        ("a == 2 OR (name == \"Alice\" AND NOT tags IN [\"q\"])", true),
        ("", true),
    ] {
        assert_eq!(matches(q, &e), want, "{q}");
    }
}

fn at(t: &str, user: &str, platform: &str) -> Row {
    row(
        json!({"event_type": "interaction.high_risk", "source": "noxys", "user_id": user, "platform_id": platform, "timestamp": t, "risk_score": 0.85}),
    )
}

#[test]
fn the_aggregations_of_the_specification_give_their_tables() {
    let events: Vec<Row> = vec![
        at("2026-11-28T09:05:00Z", "u1", "chatgpt"),
        at("2026-11-28T09:55:00Z", "u1", "chatgpt"),
        at("2026-11-28T10:10:00Z", "u2", "chatgpt"),
        at("2026-11-28T10:20:00Z", "u2", "deepseek"),
        at("2026-11-28T10:30:00Z", "u2", "deepseek"),
        row(json!({"source": "edr", "timestamp": "2026-11-28T10:30:00Z", "platform_id": "x"})),
    ];
    let t = run(&parse("source = \"noxys\" | stats count by platform_id, bin(timestamp, 1h)").expect("q"), &events).expect("run");
    assert_eq!(t.columns, ["platform_id", "timestamp", "count"]);
    let got: Vec<(String, String, u64)> = t
        .rows
        .iter()
        .map(|r| {
            (r["platform_id"].as_str().unwrap_or("").into(), r["timestamp"].as_str().unwrap_or("").into(), r["count"].as_u64().unwrap_or(0))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("chatgpt".into(), "2026-11-28T09:00:00Z".into(), 2),
            ("chatgpt".into(), "2026-11-28T10:00:00Z".into(), 1),
            ("deepseek".into(), "2026-11-28T10:00:00Z".into(), 2)
        ]
    );
    let top = run(&parse("event_type == \"interaction.high_risk\" | stats count by user_id | sort -count | head 1").expect("q"), &events)
        .expect("run");
    assert_eq!(top.rows, [row(json!({"user_id": "u2", "count": 3}))]);
    let aggs = run(
        &parse("| stats count, count(user_id) as with_user, dc(user_id), avg(risk_score) as r, min(risk_score), max(missing)").expect("q"),
        &events,
    )
    .expect("run");
    assert_eq!(
        aggs.rows,
        [row(json!({"count": 6, "with_user": 5, "dc(user_id)": 2, "r": 0.85, "min(risk_score)": 0.85, "max(missing)": null}))]
    );
    let nothing = run(&parse("source == \"none\" | stats count").expect("q"), &events).expect("run");
    assert_eq!(nothing.rows, [row(json!({"count": 0}))]);
    let projected = run(&parse("user_id == \"u1\" | sort -timestamp | fields timestamp, nope").expect("q"), &events).expect("run");
    assert_eq!(
        projected.rows,
        [row(json!({"timestamp": "2026-11-28T09:55:00Z", "nope": null})), row(json!({"timestamp": "2026-11-28T09:05:00Z", "nope": null}))]
    );
    assert!(run(&parse("| stats count by user_id | where count > 1 in last 1h").expect("q"), &events).is_err());
}

const SIX_IN_AN_HOUR: &str = "event_type == \"interaction.high_risk\"\n| stats count by user_id\n| where count > 5 in last 1 hour";

fn feed(rule: &WindowRule, state: &mut WindowState, user: &str, minutes: &[i64]) -> Vec<Vec<i64>> {
    let base = 1_795_849_200_000_000i64;
    minutes
        .iter()
        .filter_map(|m| {
            rule.observe(state, &at("2026-11-28T08:00:00Z", user, "chatgpt"), seq_of(user, *m), base + m * 60_000_000).map(|f| f.seqs)
        })
        .collect()
}

/// A log position per (user, minute), so a firing's events can be named.
fn seq_of(user: &str, minute: i64) -> i64 {
    let u = user.bytes().fold(0i64, |a, b| a * 31 + b as i64) % 1_000;
    u * 10_000 + minute
}

#[test]
fn a_sliding_window_fires_once_per_group_and_window_with_its_events() {
    let rule = WindowRule::compile(&parse(SIX_IN_AN_HOUR).expect("q")).expect("compile").expect("windowed");
    let mut state = WindowState::default();
    // Six in an hour: one firing carrying the six.
    let fired = feed(&rule, &mut state, "alice", &[0, 10, 20, 30, 40, 50]);
    assert_eq!(fired, [[0, 10, 20, 30, 40, 50].map(|m| seq_of("alice", m)).to_vec()]);
    // Five more right after: the window started again, so nothing yet.
    assert!(feed(&rule, &mut state, "alice", &[51, 52, 53, 54, 55]).is_empty());
    // Five: none. Six over two hours: none.
    assert!(feed(&rule, &mut state, "bob", &[0, 10, 20, 30, 40]).is_empty());
    assert!(feed(&rule, &mut state, "carol", &[0, 20, 40, 60, 80, 100]).is_empty());
    // Another type does not count.
    let other = row(json!({"event_type": "interaction.created", "user_id": "dave"}));
    assert!((0..10).all(|i| rule.observe(&mut state, &other, i, i).is_none()));
}

#[test]
fn the_window_state_survives_a_restart_and_stays_bounded() {
    let rule = WindowRule::compile(&parse(SIX_IN_AN_HOUR).expect("q")).expect("compile").expect("windowed");
    let mut state = WindowState::default();
    assert!(feed(&rule, &mut state, "alice", &[0, 10, 20]).is_empty());
    assert!(feed(&rule, &mut state, "bob", &[0]).is_empty());
    // What changed is saved per group; a restart restores it.
    let changes = state.take_changes();
    assert_eq!(changes.len(), 2);
    assert!(!state.has_changes());
    let mut restored = WindowState::default();
    for (h, saved) in &changes {
        let saved = saved.as_ref().expect("a live group");
        rule.restore(&mut restored, *h, &saved.state).expect("restore");
    }
    assert_eq!(rule.current(&restored), rule.current(&state));
    assert_eq!(feed(&rule, &mut restored, "alice", &[30, 40, 50]).len(), 1, "the three before the restart count");
    // The fired group is gone: saving deletes it.
    let after = restored.take_changes();
    assert_eq!(after.len(), 1);
    assert_eq!((after[0].0, after[0].1.is_none()), (vigie_query::window::group_id(&[json!("alice")]), true));
    let mut many = WindowState::default();
    for i in 0..(MAX_GROUPS as i64 + 50) {
        rule.observe(&mut many, &at("2026-11-28T08:00:00Z", &format!("u{i}"), "p"), i, i);
    }
    assert!(many.groups() <= MAX_GROUPS);
    // Groups gone quiet for longer than the window are dropped.
    // The evicted are deleted where they were saved.
    let changes = many.take_changes();
    assert_eq!(changes.iter().filter(|(_, s)| s.is_none()).count(), MAX_GROUPS + 50 - many.groups());
    assert_eq!(changes.iter().filter(|(_, s)| s.is_some()).count(), many.groups());
    let held = many.groups();
    assert_eq!(rule.expire(&mut many, MAX_GROUPS as i64 + 50 + 3_600_000_000), held);
    assert_eq!(many.groups(), 0);
    assert_eq!(many.take_changes().len(), held, "expired groups are deleted where they were saved");
    assert!(WindowRule::compile(&parse("| stats count | where count > 1 in last 1h | head 1").expect("q")).is_err());
    assert!(WindowRule::compile(&parse("a == 1 | stats count").expect("q")).expect("plain").is_none());
}

mod running {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-5i64..6).prop_map(Value::from),
            (-8i64..9).prop_map(|h| json!(h as f64 / 4.0)),
            prop_oneof![Just("2.5"), Just("x"), Just("y")].prop_map(Value::from),
            Just(Value::Null),
            Just(json!([1, 2])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The aggregations kept up to date as events join and leave a window equal those
        /// recomputed over the events the window holds.
        #[test]
        fn running_aggregations_equal_a_recount_of_the_window(
            events in prop::collection::vec((0i64..40, prop::option::of(value()), 0u8..2), 1..80),
        ) {
            let q = parse("| stats count, count(x), dc(x), sum(x), avg(x), min(x), max(x) by g | where count > 1000000 in last 10m").expect("q");
            let rule = WindowRule::compile(&q).expect("compile").expect("windowed");
            let mut state = WindowState::default();
            let span = 600_000_000i64;
            let mut held: Vec<(i64, Row)> = Vec::new();
            let mut t = 0i64;
            for (i, (step, x, late)) in events.iter().enumerate() {
                t += step * 30_000_000;
                // Some events arrive late, a few minutes behind.
                let at = if *late == 1 { t - 180_000_000 } else { t };
                let mut e = Row::new();
                e.insert("g".into(), json!("one"));
                if let Some(x) = x {
                    e.insert("x".into(), x.clone());
                }
                prop_assert!(rule.observe(&mut state, &e, i as i64, at).is_none());
                let pos = held.partition_point(|(u, _)| *u <= at);
                held.insert(pos, (at, e));
                let newest = held.last().map_or(at, |(u, _)| *u);
                held.retain(|(u, _)| *u > newest - span);
            }
            let rows: Vec<Row> = held.iter().map(|(_, e)| e.clone()).collect();
            let mut want = run(&parse("| stats count, count(x), dc(x), sum(x), avg(x), min(x), max(x) by g").expect("q"), &rows).expect("run").rows;
            // The window keeps a group's aggregations, not its keys.
            for w in &mut want {
                w.remove("g");
            }
            let got = rule.current(&state);
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                for (k, a) in g {
                    let b = &w[k];
                    let same = match (a.as_f64(), b.as_f64()) {
                        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                        _ => a == b,
                    };
                    prop_assert!(same, "{}: {} vs {}", k, a, b);
                }
            }
        }
    }
}
