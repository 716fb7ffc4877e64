//! Normalisation: what an event becomes in the log. Every JSON object is flattened into dotted
//! paths (`data.interaction.platform_id`), arrays kept as values; a firewall event (a Noxys
//! envelope: `type` + `data.interaction`) also gets the flat fields the rules use
//! (`event_type`, `platform_id`, `user_id`, `risk_score`, `classification_type`, …). Every event
//! gets `id`, `received_at`, `space_id` and `source`.
use serde_json::{Map, Value};

/// The fields a firewall event is given, in the order the brief lists them.
pub const FIREWALL_FIELDS: &[&str] = &[
    "event_type",
    "source",
    "timestamp",
    "tenant_id",
    "interaction_id",
    "platform_id",
    "user_id",
    "user_email",
    "risk_score",
    "risk_level",
    "classification_count",
    "classification_type",
    "policy_name",
    "policy_action",
    "alert_severity",
    "direction",
    "interaction_type",
    "model",
];

/// The most bytes of dotted-path keys one event may flatten into: a long key over many leaves
/// would otherwise multiply (a 100 KiB key over 1,000 leaves is 100 MB of keys).
pub const KEY_BUDGET: usize = 1 << 20;

/// An event whose dotted paths would exceed [`KEY_BUDGET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooWide;

/// Flattens `value` into `out` under `prefix` (objects become dotted paths; arrays and scalars
/// are kept). Depth is bounded: past 16 levels a subtree is kept whole. A key that is already
/// taken (`{"a.b": 1, "a": {"b": 2}}`) keeps its first value; the later one goes under
/// `<key>#2`, so nothing is lost.
pub fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) -> Result<(), TooWide> {
    let mut budget = KEY_BUDGET;
    flatten_at(prefix, value, out, 0, &mut budget)
}

/// Flattens an object's fields into `out` (the top level of an event).
pub fn flatten_object(m: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), TooWide> {
    let mut budget = KEY_BUDGET;
    for (k, v) in m {
        flatten_at(k, v, out, 1, &mut budget)?;
    }
    Ok(())
}

fn flatten_at(prefix: &str, value: &Value, out: &mut Map<String, Value>, depth: usize, budget: &mut usize) -> Result<(), TooWide> {
    match value {
        Value::Object(m) if depth < 16 && !m.is_empty() => {
            for (k, v) in m {
                // Only the root's members are top-level names: a member named "" below it gives
                // `.name`, never a name that could pass for a top-level one (`space_id`).
                let key = if depth == 0 && prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_at(&key, v, out, depth + 1, budget)?;
            }
            Ok(())
        }
        _ => {
            *budget = budget.checked_sub(prefix.len()).ok_or(TooWide)?;
            if out.contains_key(prefix) {
                let mut n = 2;
                while out.contains_key(&format!("{prefix}#{n}")) {
                    n += 1;
                }
                out.insert(format!("{prefix}#{n}"), value.clone());
            } else {
                out.insert(prefix.to_owned(), value.clone());
            }
            Ok(())
        }
    }
}

/// The flat fields of a firewall event, if `event` is one.
pub fn firewall_fields(event: &Map<String, Value>) -> Option<Map<String, Value>> {
    let kind = event.get("type")?.as_str()?;
    let data = event.get("data")?.as_object()?;
    let interaction = data.get("interaction").and_then(Value::as_object);
    if interaction.is_none() && !kind.starts_with("alert.") && !kind.starts_with("policy.") && !kind.starts_with("webhook.") {
        return None;
    }
    let mut f = Map::new();
    f.insert("event_type".into(), kind.into());
    for k in ["timestamp", "tenant_id"] {
        if let Some(v) = event.get(k) {
            f.insert(k.into(), v.clone());
        }
    }
    if let Some(i) = interaction {
        let get = |k: &str| i.get(k).filter(|v| !v.is_null()).cloned();
        if let Some(v) = get("id") {
            f.insert("interaction_id".into(), v);
        }
        for k in
            ["platform_id", "user_id", "user_email", "risk_score", "risk_level", "classification_count", "direction", "interaction_type"]
        {
            if let Some(v) = get(k) {
                f.insert(k.into(), v);
            }
        }
        if let Some(Value::Array(cs)) = i.get("classifications") {
            let mut types: Vec<Value> = Vec::new();
            for c in cs {
                if let Some(t) = c.get("type").filter(|t| t.is_string())
                    && !types.contains(t)
                {
                    types.push(t.clone());
                }
            }
            f.insert("classification_type".into(), Value::Array(types));
        }
        if let Some(d) = i.get("decision") {
            if let Some(a) = d.get("action").filter(|v| !v.is_null()) {
                f.insert("policy_action".into(), a.clone());
            }
            if let Some(n) = d.get("policy_name").filter(|v| !v.is_null()) {
                f.insert("policy_name".into(), n.clone());
            }
            if !f.contains_key("risk_level")
                && let Some(l) = d.get("risk_level")
            {
                f.insert("risk_level".into(), l.clone());
            }
        }
        if let Some(m) = i.get("content_metadata").and_then(|m| m.get("model")).filter(|v| v.is_string()) {
            f.insert("model".into(), m.clone());
        }
    }
    if let Some(p) = data.get("policy").and_then(Value::as_object) {
        if let Some(n) = p.get("name") {
            f.entry("policy_name").or_insert(n.clone());
        }
        if let Some(a) = p.get("action") {
            f.entry("policy_action").or_insert(a.clone());
        }
    }
    if let Some(s) = data.get("alert").and_then(|a| a.get("severity")).filter(|v| !v.is_null()) {
        f.insert("alert_severity".into(), s.clone());
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_firewall_event_gets_the_flat_fields_and_keeps_everything_as_dotted_paths() {
        let e = json!({"id": "evt_1", "type": "interaction.policy_violated", "timestamp": "2026-11-28T09:00:00Z", "source": "noxys", "tenant_id": "t1",
            "data": {"interaction": {"id": "i1", "platform_id": "deepseek", "user_id": "u1", "risk_score": 0.97, "risk_level": "critical",
                "classification_count": 3, "direction": "outbound", "interaction_type": "prompt", "content_metadata": {"model": "r1"},
                "classifications": [{"type": "CREDIT_CARD"}, {"type": "IBAN"}, {"type": "CREDIT_CARD"}],
                "decision": {"action": "block", "policy_name": "Block DeepSeek", "policy_id": "p1", "risk_level": "critical"}},
              "policy": {"id": "p1", "name": "Block DeepSeek", "action": "block"}, "alert": {"severity": "critical", "reason": "x"}}});
        let f = firewall_fields(e.as_object().expect("object")).expect("a firewall event");
        assert_eq!(f["event_type"], "interaction.policy_violated");
        assert_eq!(f["classification_type"], json!(["CREDIT_CARD", "IBAN"]));
        assert_eq!(
            (f["policy_name"].as_str(), f["policy_action"].as_str(), f["alert_severity"].as_str()),
            (Some("Block DeepSeek"), Some("block"), Some("critical"))
        );
        assert_eq!((f["interaction_id"].as_str(), f["model"].as_str(), f["risk_score"].as_f64()), (Some("i1"), Some("r1"), Some(0.97)));
        let mut flat = Map::new();
        flatten("", &e, &mut flat).expect("small");
        assert_eq!(flat["data.interaction.platform_id"], "deepseek");
        assert!(flat["data.interaction.classifications"].is_array());
        assert!(firewall_fields(json!({"type": "login", "data": {"user": "x"}}).as_object().expect("object")).is_none());
    }

    #[test]
    fn a_member_named_empty_cannot_pass_its_members_off_as_top_level_fields() {
        let mut flat = Map::new();
        flatten_object(json!({"": {"space_id": "forged", "id": "x"}, "space_id": "real"}).as_object().expect("object"), &mut flat)
            .expect("flat");
        assert_eq!(
            (flat["space_id"].as_str(), flat[".space_id"].as_str(), flat[".id"].as_str()),
            (Some("real"), Some("forged"), Some("x"))
        );
        assert!(!flat.contains_key("space_id#2") && !flat.contains_key("id"));
    }

    #[test]
    fn colliding_paths_keep_both_values_and_a_key_multiplied_over_many_leaves_is_refused() {
        let mut flat = Map::new();
        flatten_object(json!({"a.b": 1, "a": {"b": 2}}).as_object().expect("object"), &mut flat).expect("flat");
        let mut both = [flat["a.b"].as_i64(), flat["a.b#2"].as_i64()];
        both.sort();
        assert_eq!(both, [Some(1), Some(2)]);
        let leaves: Map<String, Value> = (0..1000).map(|i| (format!("a{i}"), json!(0))).collect();
        let mut wide = Map::new();
        wide.insert("k".repeat(100 * 1024), Value::Object(leaves));
        assert_eq!(flatten_object(&wide, &mut Map::new()), Err(TooWide));
    }
}
