//! Untrusted input: a query of the pipe language (search boxes, rules, dashboards). Parsed,
//! printed and parsed again (the same tree), compiled and run over a few events. Must never
//! panic, and deep nesting or long input must be refused, not overflow the stack.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use vigie_query::matcher::{Fields, Matcher};
use vigie_query::table::run;
use vigie_query::window::{WindowRule, WindowState};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(q) = vigie_query::parse(text) else { return };
    let printed = q.to_string();
    let again = vigie_query::parse(&printed).expect("a printed query parses");
    assert_eq!(again, q, "printing changed the query: {printed}");
    let events: Vec<_> = [
        json!({"a": 1, "b": "x", "tags": ["p", "q"], "timestamp": "2026-11-28T09:00:00Z"}),
        json!({"a": "2", "c": null, "ip": "10.0.0.1", "timestamp": "2026-11-28T10:30:00Z"}),
    ]
    .into_iter()
    .filter_map(|v| v.as_object().cloned())
    .collect();
    let mut fields = Fields::new();
    if let Ok(m) = Matcher::compile(q.filter.as_ref(), &mut fields) {
        for e in &events {
            let _ = m.matches(&fields.record(e));
        }
    }
    let _ = run(&q, &events);
    if let Ok(Some(rule)) = WindowRule::compile(&q) {
        let mut state = WindowState::default();
        for (i, e) in events.iter().enumerate() {
            let _ = rule.observe(&mut state, e, i as i64, i as i64);
        }
    }
});
