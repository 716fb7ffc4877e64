//! Strategies shared by the crate's property tests.
use proptest::prelude::*;
use serde_json::{Value, json};

/// Arbitrary JSON: scalars (including numbers as strings and values the API knows), lists, and
/// objects whose keys come from `keys`.
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|i| json!(i)),
        "\\PC{0,20}".prop_map(Value::String),
        "[0-9a-f]{64}".prop_map(Value::String),
        prop::sample::select(vec!["0.8", "deepseek", "CREDIT_CARD", "true", "proxy", "1e308", "NaN", "-0"]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(keys).prop_map(str::to_owned), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
