//! Playbooks as stored: the trigger's filters kept beside the YAML (so the responder matches
//! without compiling), and the run queue.
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::ids::IdGen;

/// A trigger's filters, as `playbooks.trigger_spec` keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerSpec {
    /// Alert triggers: rule names (any case) or ids; empty: any rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// `alert_created`: severities (`high`…); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<String>,
    /// `alert_status_changed`: the statuses moved to; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// `event`: the pipe-language filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `schedule`: the cron expression (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
}

impl TriggerSpec {
    /// Whether an alert (as the alert context shows it) passes the rule and severity filters,
    /// and, for a status change, the status filter. A rule is named by its id, or by its name
    /// exactly (as it is now, or as it was when it raised the alert).
    pub fn takes_alert(&self, alert: &Value, rule_now: Option<&str>, to: Option<&str>) -> bool {
        let s = |k: &str| alert.get(k).and_then(Value::as_str).unwrap_or_default();
        let rule_ok =
            self.rules.is_empty() || self.rules.iter().any(|r| r == s("rule_id") || r == s("rule_name") || Some(r.as_str()) == rule_now);
        let severity_ok = self.severities.is_empty() || self.severities.iter().any(|v| v.eq_ignore_ascii_case(s("severity")));
        let to_ok = match to {
            Some(to) => self.to.is_empty() || self.to.iter().any(|v| v.eq_ignore_ascii_case(to)),
            None => true,
        };
        rule_ok && severity_ok && to_ok
    }
}

/// Queues a run of playbook `playbook_id` of `space_no` (its current source and version) with
/// `trigger` as what its templates see; `origin` makes it once only (a second queueing with the
/// same origin is ignored: `None`). The run's id otherwise.
#[allow(clippy::too_many_arguments)]
pub fn queue_run(
    c: &Connection,
    ids: &IdGen,
    space_no: i64,
    playbook_id: &str,
    trigger_type: &str,
    trigger: &Value,
    origin: Option<&str>,
    replay_of: Option<&str>,
    by: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let found: Option<(i64, String)> = c
        .prepare_cached("SELECT version, source FROM playbooks WHERE id = ?1 AND space_no = ?2")?
        .query_row(params![playbook_id, space_no], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((version, source)) = found else { return Ok(None) };
    let id = ids.at(from_micros(now)).to_string();
    let inserted = c
        .prepare_cached(
            "INSERT INTO playbook_runs (id, space_no, playbook_id, version, source, trigger_type, trigger, origin, replay_of, status, queued_at, by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', ?10, ?11) ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, space_no, playbook_id, version, source, trigger_type, trigger.to_string(), origin, replay_of, now, by])?;
    Ok((inserted == 1).then_some(id))
}
