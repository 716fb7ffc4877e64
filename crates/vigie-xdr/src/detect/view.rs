//! A stored event as detection rules read it ([`View`]): parsed once, the firewall's flat fields
//! derived on first use, every other field found by name on demand — what `log::shown` shows,
//! without building the flattened map (~16 µs per event, 120× the matching).
use crate::log::Stored;
use serde_json::{Map, Value};
use std::cell::OnceCell;
use vigie_core::clock::from_micros;
use vigie_detect::EventSource;
use vigie_query::matcher::Lookup;

/// A stored event as rules read it: equal, field by field, to what `log::shown` shows. The body
/// is parsed once; the firewall's flat fields are read through it when asked for (nothing is
/// copied), the list of classification types built once if a rule asks for it.
pub struct View {
    stored: Stored,
    space_id: String,
    body: Map<String, Value>,
    /// A firewall event (`normalize::firewall_fields` would give it flat fields).
    firewall: bool,
    id: Value,
    source: Value,
    event_type: Option<Value>,
    space: OnceCell<Value>,
    timestamp: OnceCell<Value>,
    received_at: OnceCell<Value>,
    /// The firewall's flat fields read so far (by position in `normalize::FIREWALL_FIELDS`):
    /// each derived once, when a rule first asks for it.
    derived: [OnceCell<Option<Value>>; FIREWALL_FIELD_COUNT],
    /// The shown event itself, for the rare event whose names could collide once flattened
    /// (a member name holding `.` or `#`, or empty), that nests deeper than flattening goes, or
    /// whose paths would be too long to flatten: lookups then read it.
    shown: Option<Map<String, Value>>,
}

impl View {
    /// Reads a stored event (a body that does not parse shows only the log's fields, as
    /// `log::normalized` does).
    pub fn new(stored: Stored, space_id: String) -> View {
        let body = match serde_json::from_str::<Value>(&stored.body) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let firewall = is_firewall(&body);
        let shown = match irregular(&body) {
            true => match crate::log::shown(&stored, &space_id) {
                Value::Object(m) => Some(m),
                _ => None,
            },
            false => None,
        };
        View {
            shown,
            id: Value::String(stored.id.clone()),
            source: Value::String(stored.source.clone()),
            event_type: stored.event_type.clone().map(Value::String),
            stored,
            space_id,
            body,
            firewall,
            space: OnceCell::new(),
            timestamp: OnceCell::new(),
            received_at: OnceCell::new(),
            derived: Default::default(),
        }
    }

    /// The stored event.
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// A top-level field of the normalised event (the log's fields, then the firewall's flat
    /// fields, then the event's own), whatever its value.
    fn top(&self, name: &str) -> Option<&Value> {
        match name {
            "id" => Some(&self.id),
            "source" => Some(&self.source),
            "event_type" => self.event_type.as_ref(),
            "space_id" => Some(self.space.get_or_init(|| Value::String(self.space_id.clone()))),
            "timestamp" => Some(self.timestamp.get_or_init(|| rfc3339(self.stored.timestamp))),
            "received_at" => Some(self.received_at.get_or_init(|| rfc3339(self.stored.received_at))),
            _ => match self.firewall.then(|| self.derived(name)).flatten() {
                Some(v) => Some(v),
                None => self.body.get(name),
            },
        }
    }

    /// The firewall's flat field `name`, derived on first use.
    fn derived(&self, name: &str) -> Option<&Value> {
        let i = crate::normalize::FIREWALL_FIELDS.iter().position(|f| *f == name)?;
        self.derived[i]
            .get_or_init(|| match name {
                "classification_type" => self.classification_types(),
                _ => self.firewall_field(name).cloned(),
            })
            .as_ref()
    }

    /// The distinct classification types, as `normalize::firewall_fields` lists them.
    fn classification_types(&self) -> Option<Value> {
        let i = self.body.get("data")?.get("interaction")?.as_object()?;
        let Some(Value::Array(cs)) = i.get("classifications") else { return None };
        let mut types: Vec<Value> = Vec::new();
        for c in cs {
            if let Some(t) = c.get("type").filter(|t| t.is_string())
                && !types.contains(t)
            {
                types.push(t.clone());
            }
        }
        Some(Value::Array(types))
    }

    /// What `normalize::firewall_fields` gives `name`, read in place: `None` when it gives
    /// nothing (the event's own field then shows).
    fn firewall_field(&self, name: &str) -> Option<&Value> {
        let data = self.body.get("data").and_then(Value::as_object)?;
        let interaction = data.get("interaction").and_then(Value::as_object);
        let decision = || interaction.and_then(|i| i.get("decision"));
        let policy = || data.get("policy").and_then(Value::as_object);
        match name {
            "timestamp" | "tenant_id" => self.body.get(name),
            "interaction_id" => present(interaction?.get("id")),
            "platform_id" | "user_id" | "user_email" | "risk_score" | "classification_count" | "direction" | "interaction_type" => {
                present(interaction?.get(name))
            }
            "risk_level" => {
                let i = interaction?;
                present(i.get("risk_level")).or_else(|| decision().and_then(|d| d.get("risk_level")))
            }
            "policy_action" => present(decision().and_then(|d| d.get("action"))).or_else(|| policy().and_then(|p| p.get("action"))),
            "policy_name" => present(decision().and_then(|d| d.get("policy_name"))).or_else(|| policy().and_then(|p| p.get("name"))),
            "model" => interaction?.get("content_metadata").and_then(|m| m.get("model")).filter(|v| v.is_string()),
            "alert_severity" => present(data.get("alert").and_then(|a| a.get("severity"))),
            // Derived, not read: `derived` builds it (`classification_types`).
            "classification_type" => None,
            _ => None,
        }
    }
}

/// How many flat fields a firewall event gets.
const FIREWALL_FIELD_COUNT: usize = crate::normalize::FIREWALL_FIELDS.len();

/// `v`, unless it is null.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Whether `normalize::firewall_fields` gives `body` flat fields.
fn is_firewall(body: &Map<String, Value>) -> bool {
    let (Some(kind), Some(data)) = (body.get("type").and_then(Value::as_str), body.get("data").and_then(Value::as_object)) else {
        return false;
    };
    data.get("interaction").is_some_and(Value::is_object) || ["alert.", "policy.", "webhook."].iter().any(|p| kind.starts_with(p))
}

fn rfc3339(us: i64) -> Value {
    Value::String(from_micros(us).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn is_branch(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty())
}

/// `name` in an object whose non-empty objects are shown as dotted paths.
fn find<'a>(top: &dyn Fn(&str) -> Option<&'a Value>, name: &str, depth: usize) -> Option<&'a Value> {
    if let Some(v) = top(name)
        && !(is_branch(v) && depth < 16)
    {
        return Some(v);
    }
    for (i, _) in name.match_indices('.') {
        if let Some(Value::Object(m)) = top(&name[..i])
            && !m.is_empty()
            && depth < 16
            && let Some(v) = find(&|k| m.get(k), &name[i + 1..], depth + 1)
        {
            return Some(v);
        }
    }
    None
}

/// Whether flattening `body` could give a name two ways, keeps a subtree whole, or runs out of
/// its key budget — where reading paths in place might differ from the shown event.
fn irregular(body: &Map<String, Value>) -> bool {
    fn walk(m: &Map<String, Value>, depth: usize, prefix: usize, budget: &mut usize) -> bool {
        for (k, v) in m {
            if k.is_empty() || k.contains('.') || k.contains('#') {
                return true;
            }
            let len = prefix + k.len() + 1;
            match v {
                Value::Object(inner) if !inner.is_empty() => {
                    if depth >= 12 || walk(inner, depth + 1, len, budget) {
                        return true;
                    }
                }
                _ => match budget.checked_sub(len) {
                    Some(b) => *budget = b,
                    None => return true,
                },
            }
        }
        false
    }
    let mut budget = crate::normalize::KEY_BUDGET / 2;
    walk(body, 1, 0, &mut budget)
}

impl Lookup for View {
    fn lookup(&self, name: &str) -> Option<&Value> {
        match &self.shown {
            Some(m) => m.get(name),
            None => find(&|k| self.top(k), name, 1),
        }
    }
}

impl EventSource for View {
    fn visit_strings(&self, f: &mut dyn FnMut(&str)) {
        if let Some(m) = &self.shown {
            m.values().for_each(|v| vigie_detect::event::visit_value(v, f));
            return;
        }
        const LOG: [&str; 6] = ["id", "source", "event_type", "space_id", "timestamp", "received_at"];
        for k in LOG {
            if let Some(Value::String(s)) = self.top(k) {
                f(s);
            }
        }
        let derived = |k: &str| self.firewall && crate::normalize::FIREWALL_FIELDS.contains(&k) && self.derived(k).is_some();
        if self.firewall {
            for k in crate::normalize::FIREWALL_FIELDS {
                if !LOG.contains(k)
                    && let Some(v) = self.derived(k)
                {
                    vigie_detect::event::visit_value(v, f);
                }
            }
        }
        for (k, v) in &self.body {
            if !LOG.contains(&k.as_str()) && !derived(k) {
                vigie_detect::event::visit_value(v, f);
            }
        }
    }

    fn to_json(&self) -> Value {
        crate::log::shown(&self.stored, &self.space_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every field of the shown event reads the same through the view, and names the shown
    /// event lacks are absent from the view.
    fn same_as_shown(body: &Value) {
        let stored = crate::facts::tests::stored(body);
        let Value::Object(shown) = crate::log::shown(&stored, "space") else { panic!("an object") };
        let view = View::new(stored, "space".into());
        for (k, v) in &shown {
            assert_eq!(view.lookup(k), Some(v), "{k} of {body}");
        }
        let mut absent: Vec<String> =
            ["nope", "data", "data.nope", "data.interaction", "user", "a", "a.b#3", ".x"].map(String::from).to_vec();
        // Every prefix of a shown name is a name the view must not invent.
        for k in shown.keys() {
            for (i, _) in k.match_indices('.') {
                absent.push(k[..i].to_owned());
            }
        }
        for name in absent {
            if !shown.contains_key(&name) {
                assert_eq!(view.lookup(&name), None, "{name} of {body}");
            }
        }
        let mut from_view = Vec::new();
        view.visit_strings(&mut |s| from_view.push(s.to_owned()));
        let mut from_shown = Vec::new();
        shown.values().for_each(|v| vigie_detect::event::visit_value(v, &mut |s| from_shown.push(s.to_owned())));
        from_view.sort();
        from_shown.sort();
        assert_eq!(from_view, from_shown, "the strings of {body}");
    }

    #[test]
    fn the_view_reads_every_field_as_the_shown_event_has_it() {
        let mut bodies = crate::facts::tests::bodies();
        bodies.extend([
            // Names that could come two ways once flattened, or not at all.
            json!({"a": {"b": 2}, "a.b": 1, "x": 1}),
            json!({"": {"space_id": "forged", "id": "x"}}),
            json!({"k#2": 1, "k": {"": 3}}),
            json!({"deep": {"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": {"9": {"10": {"11": {"12": {"13": {"14": {"15": {"16": 1}}}}}}}}}}}}}}}}}),
            json!({"user": {"name": "bo", "roles": ["a", "b"], "empty": {}}, "n": null, "list": [{"a": 1}]}),
            json!({"type": "interaction.high_risk", "data": {"interaction": {"platform_id": {"n": 1, "m": {"o": "p"}}, "user_id": "u"}}}),
        ]);
        for b in &bodies {
            same_as_shown(b);
        }
    }
}
