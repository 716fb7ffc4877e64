//! What a rule is: the request and response types of the rules API, the severities and MITRE
//! ATT&CK tags they accept, and the checks (compilation included) a rule passes before it is stored.
use crate::alerts::severity_number;
use chrono::{DateTime, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::http::{ApiError, FieldError};
use vigie_detect::{Kind, Program};

/// The largest rule source, in bytes.
pub const MAX_SOURCE: usize = 64 * 1024;
/// The most similarity fields of a rule.
pub const MAX_SIMILARITY: usize = 10;
/// The most tags of a rule.
const MAX_TAGS: usize = 50;
/// The most actions of a rule.
const MAX_ACTIONS: usize = 10;

/// A rule's severity, 0–100, read from a word (`low` 25, `medium` 50, `high` 70, `critical` 90)
/// or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Severity(pub u8);

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
        struct Read;
        impl Visitor<'_> for Read {
            type Value = Severity;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("low, medium, high, critical, or a whole number 0–100")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Severity, E> {
                u8::try_from(n).ok().filter(|n| *n <= 100).map(Severity).ok_or_else(|| E::custom("a severity is a whole number 0–100"))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Severity, E> {
                u64::try_from(n).map_err(|_| E::custom("a severity is a whole number 0–100")).and_then(|n| self.visit_u64(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Severity, E> {
                if n.fract() == 0.0 && (0.0..=100.0).contains(&n) {
                    Ok(Severity(n as u8))
                } else {
                    Err(E::custom("a severity is a whole number 0–100"))
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Severity, E> {
                severity_number(s).map(Severity).ok_or_else(|| E::custom("a severity is low, medium, high, critical, or a number 0–100"))
            }
        }
        d.deserialize_any(Read)
    }
}

/// How a severity may be written (documentation only).
#[derive(ToSchema)]
#[allow(dead_code)]
enum SeverityInput {
    /// `low`, `medium`, `high` or `critical`.
    Word(String),
    /// 0–100.
    Number(u8),
}

/// What a rule does when it fires. Every match raises an alert (or adds an occurrence to the open
/// one); for a NEW alert, the responder then carries out `case` and `notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleAction {
    /// Raise an alert (or add an occurrence to the open alert with the same similarity key).
    Alert,
    /// Queue a notification of each new alert (sent with retries; recorded in the delivery log).
    Notify {
        /// The channel's name (`soc`); absent: every enabled channel whose routes (minimum
        /// severity, rules) take the alert.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Open a case for each new alert, from a case template (none: a case titled as the alert),
    /// unless the alert is already in an open case.
    Case {
        /// The case template's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
        /// Who the case is assigned to (`on-duty`: the analyst on duty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
    },
}

fn default_actions() -> Vec<RuleAction> {
    vec![RuleAction::Alert]
}

/// A new rule. Sekoia's names `payload` (for `source`) and `type` (for `kind`) are accepted.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    /// 1–100 characters, unique in the space.
    pub name: String,
    /// Up to 1,000 characters.
    #[serde(default)]
    pub description: String,
    /// `low`, `medium`, `high`, `critical`, or a number 0–100 (stored as the number).
    #[schema(value_type = SeverityInput)]
    pub severity: Severity,
    /// `pipe` (the query language) or `sigma` (Sigma YAML, correlations included).
    #[serde(alias = "type")]
    #[schema(value_type = String, example = "pipe")]
    pub kind: Kind,
    /// The query, or the Sigma YAML; up to 64 KiB.
    #[serde(alias = "payload")]
    pub source: String,
    /// Whether it runs (default false).
    #[serde(default)]
    pub enabled: bool,
    /// Fields whose values make the similarity key (matches with the same key fold into one
    /// open alert); at most 10.
    #[serde(default)]
    pub similarity: Vec<String>,
    /// MITRE ATT&CK ids: `T1567`, `T1567.002`, `TA0010`, or Sigma's `attack.t1567`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// What it does when it fires (default `[{"type": "alert"}]`): `notify` and `case` act on
    /// each new alert.
    #[serde(default = "default_actions")]
    pub actions: Vec<RuleAction>,
}

/// A change to a rule: any subset of its fields. A change of `source` or `kind` bumps its
/// `version` (its windows start again).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    /// 1–100 characters, unique in the space.
    pub name: Option<String>,
    /// Up to 1,000 characters.
    pub description: Option<String>,
    /// `low`, `medium`, `high`, `critical`, or a number 0–100.
    #[schema(value_type = Option<SeverityInput>)]
    pub severity: Option<Severity>,
    /// `pipe` or `sigma`.
    #[serde(alias = "type")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<Kind>,
    /// The query, or the Sigma YAML.
    #[serde(alias = "payload")]
    pub source: Option<String>,
    /// Whether it runs.
    pub enabled: Option<bool>,
    /// Similarity fields.
    pub similarity: Option<Vec<String>>,
    /// MITRE ATT&CK ids.
    pub tags: Option<Vec<String>>,
    /// What it does when it fires.
    pub actions: Option<Vec<RuleAction>>,
}

/// What a rule has done.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RuleStats {
    /// Events (or windows) that matched.
    pub matches: i64,
    /// Alerts raised.
    pub alerts: i64,
    /// Matches folded into an open alert.
    pub occurrences: i64,
    /// Matches while the rule was paused by the alert rate limit.
    pub suppressed: i64,
    /// Its alerts an analyst rejected (status `rejected`).
    pub rejected: i64,
    /// `rejected / alerts`; null while it has raised no alert.
    pub false_positive_rate: Option<f64>,
    /// Its last match.
    pub last_match_at: Option<DateTime<Utc>>,
    /// The last alert it raised or added an occurrence to.
    pub last_fired_at: Option<DateTime<Utc>>,
}

/// A rule as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    /// Rule id.
    pub id: Uuid,
    /// Unique name in the space.
    pub name: String,
    /// What it detects.
    pub description: String,
    /// 0–100.
    pub severity: u8,
    /// The severity's word: low, medium, high or critical.
    pub severity_label: &'static str,
    /// `pipe` or `sigma`.
    pub kind: &'static str,
    /// The query, or the Sigma YAML.
    pub source: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Similarity fields.
    pub similarity: Vec<String>,
    /// MITRE ATT&CK ids.
    pub tags: Vec<String>,
    /// What it does when it fires.
    pub actions: Vec<RuleAction>,
    /// The default content's key (`default-1` …) for a default rule, else null.
    pub builtin: Option<String>,
    /// Bumped by every change of what it matches (source, kind).
    pub version: i64,
    /// What it matches: `{"type": "per_event"}` or `{"type": "window", "by": [...], "span_secs": n}`;
    /// null when it no longer compiles (see `compile_error`).
    #[schema(value_type = Option<Object>)]
    pub shape: Option<Value>,
    /// Why a stored rule no longer compiles (the engine changed since it was saved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile_error: Option<String>,
    /// True while the alert rate limit pauses it (no new alerts before `paused_until`).
    pub paused: bool,
    /// The end of the pause.
    pub paused_until: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who created it (`key:<id>`, `system`).
    pub created_by: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
    /// What it has done.
    pub stats: RuleStats,
}

/// One change in a rule's life.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleHistoryEntry {
    /// Entry id (increasing).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: `key:<id>`, `detection`, `system`.
    pub by: Option<String>,
    /// `created`, `updated`, `enabled`, `disabled`, `deleted`, `paused`, `resumed`.
    pub kind: String,
    /// What changed (for `updated`: each field's `from` and `to`).
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// A rule's fields, checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RuleSpec {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) severity: u8,
    pub(super) kind: Kind,
    pub(super) source: String,
    pub(super) enabled: bool,
    pub(super) similarity: Vec<String>,
    pub(super) tags: Vec<String>,
    pub(super) actions: Vec<RuleAction>,
}

impl RuleSpec {
    pub(super) fn of(n: NewRule) -> RuleSpec {
        RuleSpec {
            name: n.name.trim().to_owned(),
            description: n.description.trim().to_owned(),
            severity: n.severity.0,
            kind: n.kind,
            source: n.source,
            enabled: n.enabled,
            similarity: n.similarity.iter().map(|s| s.trim().to_owned()).collect(),
            tags: n.tags.iter().map(|s| s.trim().to_owned()).collect(),
            actions: n.actions,
        }
    }

    /// The fields as history records them.
    pub(super) fn detail(&self) -> Value {
        json!({"name": self.name, "description": self.description, "severity": self.severity, "kind": self.kind.as_str(),
            "source": self.source, "enabled": self.enabled, "similarity": self.similarity, "tags": self.tags, "actions": self.actions})
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Whether `tag` is a MITRE ATT&CK technique (`T1567`, `T1567.002`) or tactic (`TA0010`), bare
/// or in Sigma's form (`attack.t1567`).
pub fn is_attack_id(tag: &str) -> bool {
    let bare = tag.strip_prefix("attack.").unwrap_or(tag).to_ascii_uppercase();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = bare.strip_prefix("TA") {
        return digits(rest, 4);
    }
    let Some(rest) = bare.strip_prefix('T') else { return false };
    match rest.split_once('.') {
        Some((t, sub)) => digits(t, 4) && digits(sub, 3),
        None => digits(rest, 4),
    }
}

/// A tag in Sigma's form (`attack.t1567.002`).
pub(super) fn sigma_tag(tag: &str) -> String {
    format!("attack.{}", tag.strip_prefix("attack.").unwrap_or(tag).to_ascii_lowercase())
}

/// Checks a rule; compiles it when `compile` (its source or kind changed, or it is enabled).
pub(super) fn check(r: &RuleSpec, compile: bool) -> Result<Option<Program>, ApiError> {
    let mut errors = Vec::new();
    if r.name.is_empty() || r.name.chars().count() > 100 {
        errors.push(FieldError::new("name", "a rule name has 1 to 100 characters"));
    }
    if r.description.chars().count() > 1000 {
        errors.push(FieldError::new("description", "a description has at most 1,000 characters"));
    }
    if r.severity > 100 {
        errors.push(FieldError::new("severity", "a severity is 0–100"));
    }
    if r.source.len() > MAX_SOURCE {
        errors.push(FieldError::new("source", format!("a rule's source has at most {} KiB", MAX_SOURCE / 1024)));
    } else if r.source.trim().is_empty() {
        errors.push(FieldError::new("source", "write the rule: a query, or Sigma YAML"));
    }
    if r.similarity.len() > MAX_SIMILARITY {
        errors.push(FieldError::new("similarity", format!("at most {MAX_SIMILARITY} fields")));
    }
    for (i, f) in r.similarity.iter().enumerate() {
        if f.is_empty() || f.chars().count() > 100 || f.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(format!("similarity[{i}]"), "a field name has 1 to 100 characters and no spaces"));
        } else if r.similarity[..i].contains(f) {
            errors.push(FieldError::new(format!("similarity[{i}]"), format!("{f:?} is listed twice")));
        }
    }
    if r.tags.len() > MAX_TAGS {
        errors.push(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
    }
    for (i, t) in r.tags.iter().enumerate() {
        if !is_attack_id(t) {
            errors.push(FieldError::new(
                format!("tags[{i}]"),
                format!(
                    "{:?} is not a MITRE ATT&CK id: write a technique (T1567, T1567.002), a tactic (TA0010) or Sigma's form (attack.t1567)",
                    shorten(t)
                ),
            ));
        }
    }
    if r.actions.is_empty() {
        let hint = "give at least one action ([{\"type\": \"alert\"}] raises alerts); to stop a rule, disable it";
        errors.push(FieldError::new("actions", hint));
    }
    if r.actions.len() > MAX_ACTIONS {
        errors.push(FieldError::new("actions", format!("at most {MAX_ACTIONS} actions")));
    }
    for (i, a) in r.actions.iter().enumerate() {
        let bad = |s: &Option<String>| s.as_ref().is_some_and(|s| s.trim().is_empty() || s.chars().count() > 100);
        match a {
            RuleAction::Alert => {}
            RuleAction::Notify { channel } if bad(channel) => {
                errors.push(FieldError::new(format!("actions[{i}].channel"), "a channel name has 1 to 100 characters"));
            }
            RuleAction::Notify { .. } => {}
            RuleAction::Case { template, assignee } => {
                if bad(template) {
                    errors.push(FieldError::new(format!("actions[{i}].template"), "a template name has 1 to 100 characters"));
                }
                if bad(assignee) {
                    errors.push(FieldError::new(format!("actions[{i}].assignee"), "an assignee has 1 to 100 characters"));
                }
            }
        }
    }
    let source_ok = !errors.iter().any(|e| e.field == "source");
    let program = if compile && source_ok {
        match vigie_detect::compile(r.kind, &r.source) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(FieldError::new("source", e.to_string()));
                None
            }
        }
    } else {
        None
    };
    // A window's matches carry its group keys only: similarity fields are chosen among them (a
    // field it does not have would be null in every key, folding everyone's matches into one).
    if let Some(vigie_detect::Shape::Window { by, .. }) = program.as_ref().map(Program::shape) {
        for (i, f) in r.similarity.iter().enumerate() {
            if !by.contains(f) {
                let msg = format!("{f:?} is not a group-by field of the rule's window ({}): its alerts carry only those", by.join(", "));
                errors.push(FieldError::new(format!("similarity[{i}]"), msg));
            }
        }
    }
    if errors.is_empty() { Ok(program) } else { Err(ApiError::validation(errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::severity_word;

    #[test]
    fn attack_ids_are_techniques_subtechniques_and_tactics_in_either_form() {
        for ok in ["T1567", "T1567.002", "TA0010", "attack.t1567", "attack.t1567.002", "attack.ta0010", "t1567"] {
            assert!(is_attack_id(ok), "{ok}");
        }
        for bad in ["", "T156", "T15678", "T1567.02", "T1567.", "attack.execution", "exfil", "TA001", "attack.", "T1567.002.1"] {
            assert!(!is_attack_id(bad), "{bad}");
        }
        assert_eq!(sigma_tag("T1567.002"), "attack.t1567.002");
        assert_eq!(sigma_tag("attack.t1567"), "attack.t1567");
    }

    #[test]
    fn severities_read_as_words_or_numbers() {
        let read = |v: Value| serde_json::from_value::<Severity>(v).map(|s| s.0).map_err(|e| e.to_string());
        assert_eq!(read(json!("high")), Ok(70));
        assert_eq!(read(json!("Critical")), Ok(90));
        assert_eq!(read(json!(0)), Ok(0));
        assert_eq!(read(json!(100)), Ok(100));
        assert_eq!(read(json!(55.0)), Ok(55));
        for bad in [json!(101), json!(-1), json!(5.5), json!("severe"), json!(true)] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
        let bands = [(0, "low"), (39, "low"), (40, "medium"), (59, "medium"), (60, "high"), (79, "high"), (80, "critical")];
        for (n, w) in bands {
            assert_eq!(severity_word(n), w);
        }
        for w in ["low", "medium", "high", "critical"] {
            assert_eq!(severity_word(severity_number(w).expect("word")), w);
        }
    }
}
