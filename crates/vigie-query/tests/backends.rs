//! One meaning, two back ends: random queries over random events give the same answers run in
//! memory (the streaming back end) and compiled to SQL over SQLite.
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::Instant;
use vigie_query::ast::*;
use vigie_query::sql::{FieldSql, Schema, dotted, plan};
use vigie_query::sqlite::{Budget, events, register, stats};
use vigie_query::table::{Row, rfc3339_micros, run};

struct TestSchema;

impl Schema for TestSchema {
    fn table(&self) -> &str {
        "ev"
    }
    fn time_column(&self) -> &str {
        "timestamp"
    }
    fn field(&self, name: &str) -> FieldSql {
        match name {
            "timestamp" => FieldSql::Time("timestamp".into()),
            "source" => FieldSql::Text("source".into()),
            "space_id" => FieldSql::Const("space-1".into()),
            other => FieldSql::Json(dotted("body", other)),
        }
    }
}

const T0: i64 = 1_795_824_000_000_000; // 2026-11-28T00:00:00Z
const SPAN: i64 = 3 * 86_400_000_000;

#[derive(Debug, Clone)]
struct Event {
    t: i64,
    source: Option<String>,
    body: Map<String, Value>,
}

fn flatten(prefix: &str, v: &Value, out: &mut Row) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), v.clone());
        }
    }
}

/// The event as the log shows it (the in-memory back end's input).
fn shown(e: &Event) -> Row {
    let mut r = Row::new();
    flatten("", &Value::Object(e.body.clone()), &mut r);
    r.insert("timestamp".into(), Value::String(rfc3339_micros(e.t)));
    r.insert("space_id".into(), Value::String("space-1".into()));
    match &e.source {
        Some(s) => r.insert("source".into(), Value::String(s.clone())),
        None => r.remove("source"),
    };
    r
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::from),
        (-6i64..7).prop_map(|h| json!(h as f64 / 2.0)),
        prop_oneof![Just("2"), Just(" 3"), Just("1.5"), Just("-1")].prop_map(Value::from),
        prop_oneof![Just("x"), Just("X"), Just("abc"), Just("Ab"), Just("10.1.2.3"), Just("été"), Just("")].prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
        1 => Just(json!({})),
        1 => scalar().prop_map(|v| json!({"k": v})),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let field = |name: &'static str| prop::option::of(value()).prop_map(move |v| (name, v));
    (0..SPAN, prop::option::of(prop_oneof![Just("noxys"), Just("edr")]), field("a"), field("b"), field("tags"), prop::option::of(value()))
        .prop_map(|(t, source, a, b, tags, nx)| {
            let mut body = Map::new();
            for (k, v) in [a, b, tags] {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            }
            if let Some(v) = nx {
                body.insert("n".into(), json!({"x": v}));
            }
            Event { t: T0 + t, source: source.map(str::to_owned), body }
        })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("a.k"), Just("b"), Just("tags"), Just("n.x"), Just("source"), Just("missing"), Just("timestamp")]
        .prop_map(str::to_owned)
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        (-3i64..4).prop_map(|n| Literal::Num(n as f64)),
        Just(Literal::Num(1.5)),
        prop_oneof![Just("x"), Just("abc"), Just("2"), Just("noxys"), Just("2026-11-29T00:00:00.000000Z")]
            .prop_map(|s| Literal::Str(s.into())),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn op() -> impl Strategy<Value = TestOp> {
    let cmp = prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le)];
    let text = prop_oneof![Just("A"), Just("x"), Just("b"), Just("ÉT"), Just("")].prop_map(str::to_owned);
    prop_oneof![
        4 => (cmp, literal()).prop_map(|(o, l)| TestOp::Cmp(o, l)),
        2 => (any::<bool>(), prop::collection::vec(literal(), 1..4)).prop_map(|(negated, values)| TestOp::In { negated, values }),
        1 => (any::<bool>(), text.clone()).prop_map(|(negated, text)| TestOp::Contains { negated, text }),
        1 => text.clone().prop_map(TestOp::StartsWith),
        1 => text.prop_map(TestOp::EndsWith),
        1 => prop_oneof![Just("^a"), Just("(?i)x$"), Just("\\d")].prop_map(|r| TestOp::Matches(r.into())),
        1 => Just(TestOp::Exists),
        1 => Just(TestOp::Cidr("10.0.0.0/8".into())),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    (field(), op()).prop_map(|(field, op)| Expr::Test(Test { field, op })).prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn stats_stage() -> impl Strategy<Value = Stage> {
    let func = prop_oneof![Just(AggFn::Count), Just(AggFn::Dc), Just(AggFn::Sum), Just(AggFn::Avg), Just(AggFn::Min), Just(AggFn::Max)];
    let agg = (func, field(), any::<bool>()).prop_map(|(func, f, bare)| Agg {
        func,
        field: if func == AggFn::Count && bare { None } else { Some(f) },
        alias: None,
    });
    let key = prop_oneof![
        3 => field().prop_map(Key::Field),
        1 => prop_oneof![Just(3600u64), Just(86_400)].prop_map(|s| Key::Bin { field: "timestamp".into(), span: vigie_query::ast::Duration(s) }),
    ];
    (prop::collection::vec(agg, 1..3), prop::collection::vec(key, 0..3)).prop_map(|(aggs, by)| Stage::Stats { aggs, by })
}

fn store(evs: &[Event]) -> Connection {
    let c = Connection::open_in_memory().expect("db");
    register(&c).expect("functions");
    c.execute_batch("CREATE TABLE ev (id INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, source TEXT, body TEXT NOT NULL)")
        .expect("table");
    for (i, e) in evs.iter().enumerate() {
        c.execute(
            "INSERT INTO ev (id, timestamp, source, body) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i as i64 + 1, e.t, e.source, Value::Object(e.body.clone()).to_string()],
        )
        .expect("insert");
    }
    c
}

fn budget() -> Budget {
    Budget { max_rows: 1_000_000, deadline: Instant::now() + std::time::Duration::from_secs(60) }
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_filter_matches_the_same_events_in_memory_and_in_sql(evs in prop::collection::vec(event(), 0..40), filter in prop::option::of(expr())) {
        let q = Query { filter, stages: vec![] };
        let rows: Vec<Row> = evs.iter().map(shown).collect();
        let memory: BTreeSet<i64> = {
            let t = run(&q, &rows).expect("run");
            // Events are told apart by their time and position: the shown row carries neither id.
            let mut ids = BTreeSet::new();
            let mut used = vec![false; rows.len()];
            for r in &t.rows {
                if let Some(i) = (0..rows.len()).find(|&i| !used[i] && &rows[i] == r) {
                    used[i] = true;
                    ids.insert(i as i64 + 1);
                }
            }
            ids
        };
        let c = store(&evs);
        let p = plan(&q, &TestSchema, "1").expect("plan");
        let got = events(&c, &p, T0, T0 + SPAN, budget()).expect("sql");
        let sql: BTreeSet<i64> = got.value.iter().map(|(seq, _)| *seq).collect();
        prop_assert!(!got.partial);
        prop_assert_eq!(&sql, &memory, "{}\n{}", q, p.sql);
    }

    #[test]
    fn an_aggregation_gives_the_same_table_in_memory_and_in_sql(
        evs in prop::collection::vec(event(), 0..40),
        filter in prop::option::of(expr()),
        stage in stats_stage(),
    ) {
        let q = Query { filter, stages: vec![stage] };
        let rows: Vec<Row> = evs.iter().map(shown).collect();
        let memory = run(&q, &rows).expect("run");
        let c = store(&evs);
        let p = plan(&q, &TestSchema, "1").expect("plan");
        // Slices of 7 hours, so groups merge across slices.
        let got = stats(&c, &p, T0, T0 + SPAN, 7 * 3_600_000_000, budget()).expect("sql");
        prop_assert_eq!(&got.value.columns, &memory.columns);
        prop_assert_eq!(got.value.rows.len(), memory.rows.len(), "{}\nsql {:?}\nmemory {:?}", q, got.value.rows, memory.rows);
        for (a, b) in got.value.rows.iter().zip(&memory.rows) {
            let same = a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| close(v, w)));
            prop_assert!(same, "{}\nsql {:?}\nmemory {:?}", q, got.value.rows, memory.rows);
        }
    }
}

#[test]
fn a_query_past_its_budget_stops_and_says_it_is_partial() {
    let evs: Vec<Event> = (0..500).map(|i| Event { t: T0 + i * 300_000_000, source: Some("noxys".into()), body: Map::new() }).collect();
    let c = store(&evs);
    let q = vigie_query::parse("source == \"noxys\"").expect("q");
    let p = plan(&q, &TestSchema, "1").expect("plan");
    let got = events(&c, &p, T0, T0 + SPAN, Budget { max_rows: 10, deadline: Instant::now() + std::time::Duration::from_secs(60) })
        .expect("rows");
    assert!(got.partial && got.value.len() == 10);
    assert_eq!(got.covered_from, got.value[9].1, "covered from the oldest event returned");
    let q = vigie_query::parse("| stats count by bin(timestamp, 1h)").expect("q");
    let p = plan(&q, &TestSchema, "1").expect("plan");
    let late = stats(&c, &p, T0, T0 + SPAN, 3_600_000_000, Budget { max_rows: 10, deadline: Instant::now() }).expect("stats");
    assert!(late.partial, "a deadline already passed stops after the first slice at most");
    let done = stats(&c, &p, T0, T0 + SPAN, 3_600_000_000, budget()).expect("stats");
    assert!(!done.partial && done.covered_from == T0);
    assert_eq!(done.value.rows.iter().map(|r| r["count"].as_u64().unwrap_or(0)).sum::<u64>(), 500);
}

#[test]
fn long_lists_and_long_chains_compile_to_sql_that_sqlite_takes() {
    let evs: Vec<Event> = (0..50i64)
        .map(|i| {
            let mut body = Map::new();
            body.insert("a".into(), json!(i));
            body.insert("b".into(), json!(format!("v{i}")));
            Event { t: T0 + i, source: Some("noxys".into()), body }
        })
        .collect();
    let c = store(&evs);
    let ins = (0..3000).map(|i| format!("\"v{}\"", i * 7)).collect::<Vec<_>>().join(", ");
    let nums = (0..3000).map(|i| (i * 5).to_string()).collect::<Vec<_>>().join(", ");
    let chain = (0..1500).map(|i| format!("a == {}", i * 3)).collect::<Vec<_>>().join(" OR ");
    for text in [
        format!("b IN [{ins}]"),
        format!("a NOT IN [{nums}]"),
        chain,
        (0..1500).map(|i| format!("b != \"x{i}\"")).collect::<Vec<_>>().join(" AND "),
    ] {
        let q = vigie_query::parse(&text).expect("parses");
        let rows: Vec<Row> = evs.iter().map(shown).collect();
        let want = run(&q, &rows).expect("run").rows.len();
        let p = plan(&q, &TestSchema, "1").expect("plan");
        let got = events(&c, &p, T0, T0 + SPAN, budget()).expect("sqlite takes it");
        assert_eq!(got.value.len(), want, "{}…", &text[..60]);
        assert!(want > 0, "the case selects events");
    }
}
