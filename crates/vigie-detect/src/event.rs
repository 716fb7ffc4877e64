//! What the engine reads of an event: its fields by name (flat fields and dotted paths, as the
//! log shows events), and its strings (Sigma keywords search every string value).
use serde_json::{Map, Value};
use vigie_query::matcher::Lookup;

/// An event the engine can evaluate.
pub trait EventSource: Lookup {
    /// Calls `f` on every string value of the event (Sigma keyword detection).
    fn visit_strings(&self, f: &mut dyn FnMut(&str));
    /// The whole event as JSON (what a Sigma engine may keep; not on the hot path).
    fn to_json(&self) -> Value;
}

/// An event already shown as a map of field → value (`log::shown`), e.g. from an NDJSON file.
#[derive(Debug, Clone, Copy)]
pub struct MapEvent<'a>(pub &'a Map<String, Value>);

impl Lookup for MapEvent<'_> {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

impl EventSource for MapEvent<'_> {
    fn visit_strings(&self, f: &mut dyn FnMut(&str)) {
        for v in self.0.values() {
            visit_value(v, f);
        }
    }

    fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Calls `f` on every string inside `v`.
pub fn visit_value(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| visit_value(i, f)),
        Value::Object(m) => m.values().for_each(|i| visit_value(i, f)),
        _ => {}
    }
}
