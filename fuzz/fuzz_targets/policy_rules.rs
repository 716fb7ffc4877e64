//! Untrusted input: a policy's `rules` object, parsed and compiled as the server does, then
//! evaluated. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigie_firewall::model::{Direction, InteractionType, Source};
use vigie_firewall::policy::engine::{Facts, RulesSpec, compile};

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = vigie_core::http::parse_json::<RulesSpec>(data)
        && let Ok(rules) = compile(&spec)
    {
        let types = vec!["EMAIL".to_owned(), "CREDIT_CARD".to_owned()];
        let facts = Facts {
            platform_id: "deepseek",
            platform_vetted: false,
            risk_score: 0.5,
            classification_types: &types,
            classification_count: types.len(),
            source: Source::Proxy,
            direction: Direction::Outbound,
            user_id: None,
            interaction_type: InteractionType::Prompt,
        };
        let _ = rules.matches(&facts);
    }
});
