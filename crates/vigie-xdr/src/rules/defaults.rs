//! The default rules (`content/rules.json`): installed in every new space, enabled or not, and
//! switched on together by the demo.
use super::{RuleSpec, check, history, insert};
use crate::state::XdrState;
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::ids::IdGen;

/// The default rules (ARCHITECTURE.md, "Default content" 1–4): a JSON array of rules as
/// `POST /api/v1/rules` takes them, each with a `key` (`default-1` …) kept in `rules.builtin`.
pub const DEFAULT_RULES: &str = include_str!("../../../../content/rules.json");

/// The default rules, each with its key.
fn default_rules() -> Result<Vec<(String, RuleSpec)>, StoreError> {
    let items: Vec<serde_json::Map<String, Value>> = serde_json::from_str(DEFAULT_RULES)?;
    items
        .into_iter()
        .map(|mut m| {
            let key = m.remove("key").and_then(|k| k.as_str().map(str::to_owned));
            let key = key.ok_or_else(|| StoreError::Invalid("a default rule (content/rules.json) has no key".into()))?;
            let spec = RuleSpec::of(serde_json::from_value(Value::Object(m))?);
            check(&spec, true)
                .map_err(|e| StoreError::Invalid(format!("default rule {key} (content/rules.json) is invalid: {}", e.message)))?;
            Ok((key, spec))
        })
        .collect()
}

/// Installs the default rules missing from a space (found by their `builtin` key, or a rule of
/// the same name), enabled or not; the number installed. Idempotent. Each is compiled first: a
/// default that does not compile is a bug, reported as an error (nothing is installed).
pub fn install_defaults(c: &Connection, space_no: i64, enabled: bool, now_us: i64, ids: &IdGen) -> Result<usize, StoreError> {
    let mut installed = 0;
    for (key, mut spec) in default_rules()? {
        let present: bool = c
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM rules WHERE space_no = ?1 AND (builtin = ?2 OR name = ?3))")?
            .query_row(params![space_no, key, spec.name], |r| r.get(0))?;
        if present {
            continue;
        }
        spec.enabled = enabled;
        insert(c, space_no, ids.at(from_micros(now_us)), &spec, Some(&key), now_us, "system")?;
        installed += 1;
    }
    Ok(installed)
}

/// Enables (or disables) a space's default rules, as the demo does; the number changed. The
/// detection consumer is told after the commit.
pub async fn set_defaults_enabled(st: &XdrState, space_no: i64, enabled: bool) -> Result<usize, StoreError> {
    let now_us = to_micros(st.clock.now());
    let changed = st
        .store
        .write(move |c| {
            let ids: Vec<String> = c
                .prepare("SELECT id FROM rules WHERE space_no = ?1 AND builtin IS NOT NULL AND enabled != ?2")?
                .query_map(params![space_no, enabled], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                c.execute(
                    "UPDATE rules SET enabled = ?2, updated_at = MAX(?3, updated_at + 1), updated_by = 'system' WHERE id = ?1",
                    params![id, enabled, now_us],
                )?;
                let id = Uuid::parse_str(id).map_err(|e| StoreError::Invalid(e.to_string()))?;
                let kind = if enabled { "enabled" } else { "disabled" };
                history(c, id, now_us, "system", kind, &json!({"enabled": {"from": !enabled, "to": enabled}}))?;
            }
            Ok::<_, StoreError>(ids.len())
        })
        .await?;
    if changed > 0 {
        st.rules_did_change(space_no);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::severity_word;

    #[test]
    fn the_default_rules_are_the_four_of_the_architecture_and_compile() {
        let rules = default_rules().expect("defaults");
        let got: Vec<(&str, &str, &str)> = rules.iter().map(|(k, r)| (k.as_str(), r.name.as_str(), severity_word(r.severity))).collect();
        assert_eq!(
            got,
            [
                ("default-1", "Policy violation on unvetted AI platform", "high"),
                ("default-2", "Repeated high-risk interactions", "medium"),
                ("default-3", "Financial data exposure", "critical"),
                ("default-4", "Critical alert from the AI firewall", "critical"),
            ]
        );
        assert_eq!(rules[1].1.source, r#"event_type == "interaction.high_risk" | stats count by user_id | where count > 5 in last 1 hour"#);
        for (_, r) in &rules {
            assert!(!r.enabled);
            vigie_detect::compile(r.kind, &r.source).expect("compiles");
        }
    }
}
