//! Untrusted input: a detection rule as the rules API takes it — Sigma YAML (documents and
//! correlations) or a pipe query. Compiled (refused with a reason, never a panic), and an
//! accepted rule run over a few events, its windows saved and restored.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use vigie_detect::engine::RuleEntry;
use vigie_detect::{Engine, Kind, MapEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let kind = if first % 2 == 0 { Kind::Sigma } else { Kind::Pipe };
    let Ok(program) = vigie_detect::compile(kind, text) else { return };
    let _ = program.shape();
    let Ok(engine) = Engine::new(vec![RuleEntry { id: "r".into(), program }]) else { return };
    let events: Vec<_> = [
        json!({"event_type": "interaction.high_risk", "user_id": "u", "risk_score": 0.95, "classification_type": ["IBAN"], "a": {"b": 1}}),
        json!({"event_type": "login", "user.name": "bo", "CommandLine": "whoami", "n": null, "list": [1, "x"]}),
    ]
    .into_iter()
    .filter_map(|v| v.as_object().cloned())
    .collect();
    let mut states = engine.states();
    let mut hits = Vec::new();
    for round in 0..3i64 {
        for (i, e) in events.iter().enumerate() {
            let seq = round * 10 + i as i64;
            engine.evaluate(&mut states, &MapEvent(e), seq, seq * 60_000_000, &mut hits);
        }
    }
    let mut restored = engine.states();
    for (r, w, (h, saved)) in states.take_changes() {
        if let Some(s) = saved {
            engine.restore(&mut restored, r, w, h, &s.state).expect("a saved window restores");
        }
    }
});
