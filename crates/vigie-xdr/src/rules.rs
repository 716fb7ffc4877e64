//! Detection rules: their HTTP API (create, read, list, update, delete, enable), the default
//! rules installed in every new space, statistics, history and Sigma export.
//!
//! A rule is checked and compiled by `vigie-detect` before it is stored: a rule that would not
//! run exactly as written is refused with the reason (and its line and column), never stored
//! in part. Every change writes a `rule_history` row in the same transaction and, once that
//! transaction has committed, tells the detection consumer ([`XdrState::rules_did_change`]).
use crate::alerts::{severity_number, severity_word};
use crate::keys::{Authorized, Caller, RulesRead, RulesWrite};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError, Page, bad_query, page_limit, path_id};
use vigie_core::ids::IdGen;
use vigie_detect::{Kind, Program};

/// The default rules (ARCHITECTURE.md, "Default content" 1–4): a JSON array of rules as
/// `POST /api/v1/rules` takes them, each with a `key` (`default-1` …) kept in `rules.builtin`.
pub const DEFAULT_RULES: &str = include_str!("../../../content/rules.json");

/// The largest rule source, in bytes.
pub const MAX_SOURCE: usize = 64 * 1024;
/// The most similarity fields of a rule.
pub const MAX_SIMILARITY: usize = 10;
/// The most tags of a rule.
const MAX_TAGS: usize = 50;
/// The most actions of a rule.
const MAX_ACTIONS: usize = 10;
/// How many times an update is re-applied when the rule changed while it was being checked.
const UPDATE_ATTEMPTS: usize = 3;

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

/// What a rule does when it fires. Only `alert` is carried out today: `notify` and `case` are
/// recorded with the rule and carried out by a later issue (notifications, cases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleAction {
    /// Raise an alert (or add an occurrence to the open alert with the same similarity key).
    Alert,
    /// Notify a channel (recorded; carried out by a later issue).
    Notify {
        /// The channel's name (`soc`).
        channel: String,
    },
    /// Open a case (recorded; carried out by a later issue).
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
    /// What it does when it fires (default `[{"type": "alert"}]`); `notify` and `case` are
    /// recorded now and carried out by a later issue.
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
    /// Bumped by every change of what it matches (source, kind, similarity).
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
struct RuleSpec {
    name: String,
    description: String,
    severity: u8,
    kind: Kind,
    source: String,
    enabled: bool,
    similarity: Vec<String>,
    tags: Vec<String>,
    actions: Vec<RuleAction>,
}

impl RuleSpec {
    fn of(n: NewRule) -> RuleSpec {
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
    fn detail(&self) -> Value {
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
fn sigma_tag(tag: &str) -> String {
    format!("attack.{}", tag.strip_prefix("attack.").unwrap_or(tag).to_ascii_lowercase())
}

/// Checks a rule; compiles it when `compile` (its source or kind changed, or it is enabled).
fn check(r: &RuleSpec, compile: bool) -> Result<Option<Program>, ApiError> {
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
            RuleAction::Notify { channel } if channel.trim().is_empty() || channel.chars().count() > 100 => {
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
    if errors.is_empty() { Ok(program) } else { Err(ApiError::validation(errors)) }
}

/// A rule row with its statistics.
struct RuleRow {
    id: Uuid,
    spec: RuleSpec,
    builtin: Option<String>,
    version: i64,
    paused_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
    created_by: Option<String>,
    updated_by: Option<String>,
    stats: RuleStats,
}

const RULE_SELECT: &str = "SELECT r.id, r.name, r.description, r.severity, r.kind, r.source, r.enabled, r.similarity, r.tags, r.actions, \
     r.builtin, r.version, r.paused_until, r.created_at, r.updated_at, r.created_by, r.updated_by, \
     COALESCE(s.matches, 0), COALESCE(s.alerts, 0), COALESCE(s.occurrences, 0), COALESCE(s.suppressed, 0), \
     s.last_match_at, s.last_fired_at, \
     (SELECT COUNT(*) FROM alerts a WHERE a.rule_id = r.id AND a.space_no = r.space_no AND a.status = 'rejected') \
     FROM rules r LEFT JOIN rule_stats s ON s.rule_id = r.id";

fn conversion(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn json_col<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| conversion(i, e))
}

fn rule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRow> {
    let id: String = r.get(0)?;
    let kind: String = r.get(4)?;
    let severity: i64 = r.get(3)?;
    let (alerts, rejected): (i64, i64) = (r.get(18)?, r.get(23)?);
    Ok(RuleRow {
        id: Uuid::parse_str(&id).map_err(|e| conversion(0, e))?,
        spec: RuleSpec {
            name: r.get(1)?,
            description: r.get(2)?,
            severity: severity.clamp(0, 100) as u8,
            kind: Kind::parse(&kind).ok_or_else(|| conversion(4, StoreError::Invalid(format!("unknown rule kind {kind:?}"))))?,
            source: r.get(5)?,
            enabled: r.get(6)?,
            similarity: json_col(r, 7)?,
            tags: json_col(r, 8)?,
            actions: json_col(r, 9)?,
        },
        builtin: r.get(10)?,
        version: r.get(11)?,
        paused_until: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        created_by: r.get(15)?,
        updated_by: r.get(16)?,
        stats: RuleStats {
            matches: r.get(17)?,
            alerts,
            occurrences: r.get(19)?,
            suppressed: r.get(20)?,
            rejected,
            false_positive_rate: (alerts > 0).then(|| (rejected as f64 / alerts as f64).min(1.0)),
            last_match_at: r.get::<_, Option<i64>>(21)?.map(from_micros),
            last_fired_at: r.get::<_, Option<i64>>(22)?.map(from_micros),
        },
    })
}

/// A rule of the space, or `NotFound`.
fn fetch(c: &Connection, space_no: i64, id: Uuid) -> Result<RuleRow, StoreError> {
    c.prepare_cached(&format!("{RULE_SELECT} WHERE r.space_no = ?1 AND r.id = ?2"))?
        .query_row(params![space_no, id.to_string()], rule_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The rule as the API shows it at `now_us` (compiled again for its shape).
fn shown(row: RuleRow, now_us: i64) -> Rule {
    let (shape, compile_error) = match vigie_detect::compile(row.spec.kind, &row.spec.source) {
        Ok(p) => (serde_json::to_value(p.shape()).ok(), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let s = row.spec;
    Rule {
        id: row.id,
        name: s.name,
        description: s.description,
        severity: s.severity,
        severity_label: severity_word(s.severity),
        kind: s.kind.as_str(),
        source: s.source,
        enabled: s.enabled,
        similarity: s.similarity,
        tags: s.tags,
        actions: s.actions,
        builtin: row.builtin,
        version: row.version,
        shape,
        compile_error,
        paused: row.paused_until.is_some_and(|t| t > now_us),
        paused_until: row.paused_until.map(from_micros),
        created_at: from_micros(row.created_at),
        updated_at: from_micros(row.updated_at),
        created_by: row.created_by,
        updated_by: row.updated_by,
        stats: row.stats,
    }
}

fn history(c: &Connection, rule: Uuid, at: i64, by: &str, kind: &str, detail: &Value) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO rule_history (rule_id, at, by, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![
        rule.to_string(),
        at,
        by,
        kind,
        detail.to_string()
    ])?;
    Ok(())
}

fn name_taken(name: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if StoreError::is_unique_violation(&e) { StoreError::Conflict(format!("a rule named {name:?}")) } else { StoreError::from(e) }
    }
}

/// Inserts a checked rule and its `created` history row.
fn insert(c: &Connection, space_no: i64, id: Uuid, r: &RuleSpec, builtin: Option<&str>, now_us: i64, by: &str) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO rules (id, space_no, name, description, severity, kind, source, enabled, similarity, tags, actions, builtin, \
         version, created_at, updated_at, created_by, updated_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?13, ?14, ?14)",
    )?
    .execute(params![
        id.to_string(),
        space_no,
        r.name,
        r.description,
        r.severity,
        r.kind.as_str(),
        r.source,
        r.enabled,
        serde_json::to_string(&r.similarity)?,
        serde_json::to_string(&r.tags)?,
        serde_json::to_string(&r.actions)?,
        builtin,
        now_us,
        by,
    ])
    .map_err(name_taken(&r.name))?;
    let mut detail = r.detail();
    if let Some(b) = builtin {
        detail["builtin"] = json!(b);
    }
    history(c, id, now_us, by, "created", &detail)
}

fn by_of(caller: &Caller) -> String {
    format!("key:{}", caller.key_id)
}

/// Create a rule in the caller's space. It is compiled first: a source the engine would not
/// carry out exactly is refused (422 on `source`, with its line and column). Actions `notify`
/// and `case` are recorded now and carried out by a later issue.
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", security(("bearer" = [])), request_body = NewRule,
    responses((status = 201, body = Rule), (status = 409, description = "a rule of this name exists"),
        (status = 422, description = "invalid, or the source does not compile (with its line and column)")))]
pub async fn rules_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    ApiJson(new): ApiJson<NewRule>,
) -> Result<(StatusCode, Json<Rule>), ApiError> {
    let spec = RuleSpec::of(new);
    check(&spec, true)?;
    let now_us = to_micros(st.clock.now());
    let id = st.ids.at(from_micros(now_us));
    let (space_no, by) = (caller.space_no, by_of(&caller));
    let row = st
        .store
        .write(move |c| {
            insert(c, space_no, id, &spec, None, now_us, &by)?;
            fetch(c, space_no, id)
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    st.rules_did_change();
    Ok((StatusCode::CREATED, Json(shown(row, now_us))))
}

/// Filters of the rule list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RuleListParams {
    /// Only enabled (true) or disabled (false) rules.
    pub enabled: Option<bool>,
    /// Only rules of this kind: `pipe` or `sigma`.
    pub kind: Option<String>,
    /// Only rules with this tag (`T1567` also finds `attack.t1567`).
    pub tag: Option<String>,
    /// Only rules whose name contains this (any case).
    pub q: Option<String>,
    /// `name` (default) or `created` (oldest first).
    pub sort: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The space's rules, by name (or creation), with their statistics.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", security(("bearer" = [])), params(RuleListParams),
    responses((status = 200, body = Page<Rule>), (status = 400)))]
pub async fn rules_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    ApiQuery(p): ApiQuery<RuleListParams>,
) -> Result<Json<Page<Rule>>, ApiError> {
    let limit = page_limit(p.limit);
    let kind = match p.kind.as_deref() {
        Some(k) => Some(Kind::parse(k).ok_or_else(|| bad_query("kind", "kind is pipe or sigma"))?.as_str()),
        None => None,
    };
    let by_name = match p.sort.as_deref() {
        None | Some("name") => true,
        Some("created") => false,
        Some(_) => return Err(bad_query("sort", "sort is name or created")),
    };
    let after = match (&p.cursor, by_name) {
        (Some(c), false) => {
            Some(Uuid::parse_str(c).map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?.to_string())
        }
        (c, _) => c.clone(),
    };
    // A tag is found in either of its forms (`T1567`, `attack.t1567`).
    let tags = p.tag.map(|t| {
        let t = t.trim().to_ascii_lowercase();
        if is_attack_id(&t) { (t.strip_prefix("attack.").unwrap_or(&t).to_owned(), sigma_tag(&t)) } else { (t.clone(), t) }
    });
    let (tag_a, tag_b) = tags.unzip();
    let (space_no, q, enabled) = (caller.space_no, p.q.filter(|q| !q.is_empty()), p.enabled);
    let now_us = to_micros(st.clock.now());
    let (order, cursor) = if by_name { ("r.name", "r.name > ?6") } else { ("r.id", "r.id > ?6") };
    let rules = st
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{RULE_SELECT} WHERE r.space_no = ?1 AND (?2 IS NULL OR r.enabled = ?2) AND (?3 IS NULL OR r.kind = ?3) \
                 AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(r.tags) t WHERE lower(t.value) IN (?4, ?5))) \
                 AND (?7 IS NULL OR instr(lower(r.name), lower(?7)) > 0) AND (?6 IS NULL OR {cursor}) ORDER BY {order} LIMIT ?8"
            ))?;
            let rows = stmt.query_map(params![space_no, enabled, kind, tag_a, tag_b, after, q, limit as i64 + 1], rule_row)?;
            let rows = rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)?;
            Ok::<_, StoreError>(rows.into_iter().map(|r| shown(r, now_us)).collect::<Vec<_>>())
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    Ok(Json(Page::from_rows(rules, limit, |r| if by_name { r.name.clone() } else { r.id.to_string() })))
}

/// A rule of the caller's space, with its statistics.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404)))]
pub async fn rules_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let (id, space_no) = (path_id(&id, "rule")?, caller.space_no);
    let row = st.store.read(move |c| fetch(c, space_no, id)).await.map_err(ApiError::from_store("rule"))?;
    Ok(Json(shown(row, to_micros(st.clock.now()))))
}

/// The fields that differ between two versions of a rule: `{field: {from, to}}`.
fn changes(old: &RuleSpec, new: &RuleSpec) -> serde_json::Map<String, Value> {
    let (a, b) = (old.detail(), new.detail());
    let mut out = serde_json::Map::new();
    if let (Value::Object(a), Value::Object(b)) = (a, b) {
        for (k, to) in b {
            let from = a.get(&k).cloned().unwrap_or(Value::Null);
            if from != to {
                out.insert(k, json!({"from": from, "to": to}));
            }
        }
    }
    out
}

/// Applies a change to a rule of `caller`'s space and records it; the rule as it now is.
async fn update(st: &XdrState, caller: &Caller, id: Uuid, patch: RulePatch) -> Result<Rule, ApiError> {
    let space_no = caller.space_no;
    for _ in 0..UPDATE_ATTEMPTS {
        let cur = st.store.read(move |c| fetch(c, space_no, id)).await.map_err(ApiError::from_store("rule"))?;
        let old = cur.spec.clone();
        let p = patch.clone();
        let new = RuleSpec {
            name: p.name.map_or(old.name.clone(), |s| s.trim().to_owned()),
            description: p.description.map_or(old.description.clone(), |s| s.trim().to_owned()),
            severity: p.severity.map_or(old.severity, |s| s.0),
            kind: p.kind.unwrap_or(old.kind),
            source: p.source.unwrap_or_else(|| old.source.clone()),
            enabled: p.enabled.unwrap_or(old.enabled),
            similarity: p.similarity.map_or(old.similarity.clone(), |v| v.iter().map(|s| s.trim().to_owned()).collect()),
            tags: p.tags.map_or(old.tags.clone(), |v| v.iter().map(|s| s.trim().to_owned()).collect()),
            actions: p.actions.unwrap_or_else(|| old.actions.clone()),
        };
        // What the rule matches (and so its windows' meaning); similarity only folds alerts.
        let matching_changed = new.kind != old.kind || new.source != old.source;
        check(&new, new.kind != old.kind || new.source != old.source || (new.enabled && !old.enabled))?;
        let diff = changes(&old, &new);
        let now_us = to_micros(st.clock.now());
        if diff.is_empty() {
            return Ok(shown(cur, now_us));
        }
        // Only `enabled` changed: recorded as enabled / disabled, as the toggles are.
        let kind = match (diff.len(), diff.contains_key("enabled"), new.enabled) {
            (1, true, true) => "enabled",
            (1, true, false) => "disabled",
            _ => "updated",
        };
        let version = cur.version + i64::from(matching_changed);
        let mut detail = Value::Object(diff);
        if matching_changed {
            detail["version"] = json!({"from": cur.version, "to": version});
        }
        let (seen_version, seen_at, by) = (cur.version, cur.updated_at, by_of(caller));
        // Strictly after the version read, so the check below sees any change made since.
        let at = now_us.max(seen_at + 1);
        let row = st
            .store
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE rules SET name = ?3, description = ?4, severity = ?5, kind = ?6, source = ?7, enabled = ?8, \
                         similarity = ?9, tags = ?10, actions = ?11, version = ?12, updated_at = ?13, updated_by = ?14 \
                         WHERE space_no = ?1 AND id = ?2 AND version = ?15 AND updated_at = ?16",
                    )?
                    .execute(params![
                        space_no,
                        id.to_string(),
                        new.name,
                        new.description,
                        new.severity,
                        new.kind.as_str(),
                        new.source,
                        new.enabled,
                        serde_json::to_string(&new.similarity)?,
                        serde_json::to_string(&new.tags)?,
                        serde_json::to_string(&new.actions)?,
                        version,
                        at,
                        by,
                        seen_version,
                        seen_at,
                    ])
                    .map_err(name_taken(&new.name))?;
                if n == 0 {
                    // Changed (or deleted) since it was read: read it again.
                    return Ok(None);
                }
                history(c, id, at, &by, kind, &detail)?;
                fetch(c, space_no, id).map(Some)
            })
            .await
            .map_err(ApiError::from_store("rule"))?;
        if let Some(row) = row {
            st.rules_did_change();
            return Ok(shown(row, now_us));
        }
    }
    Err(ApiError::conflict("the rule kept changing while this change was applied; read it again and retry"))
}

/// Change a rule: any subset of its fields. A change of `source`, `kind` or `similarity` bumps
/// its `version` (the detection consumer then starts its windows afresh).
#[utoipa::path(patch, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = RulePatch, responses((status = 200, body = Rule), (status = 404), (status = 409), (status = 422)))]
pub async fn rules_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<RulePatch>,
) -> Result<Json<Rule>, ApiError> {
    let id = path_id(&id, "rule")?;
    Ok(Json(update(&st, &caller, id, patch).await?))
}

/// Enable a rule (Sekoia's `PUT …/enabled`); a rule that no longer compiles is refused (422).
#[utoipa::path(put, path = "/api/v1/rules/{id}/enabled", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404), (status = 422)))]
pub async fn rules_enable(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let id = path_id(&id, "rule")?;
    Ok(Json(update(&st, &caller, id, RulePatch { enabled: Some(true), ..Default::default() }).await?))
}

/// Disable a rule (Sekoia's `PUT …/disabled`).
#[utoipa::path(put, path = "/api/v1/rules/{id}/disabled", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404)))]
pub async fn rules_disable(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let id = path_id(&id, "rule")?;
    Ok(Json(update(&st, &caller, id, RulePatch { enabled: Some(false), ..Default::default() }).await?))
}

/// Delete a rule and its correlation windows; its alerts stay (they keep the rule's name).
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404)))]
pub async fn rules_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, space_no, by) = (path_id(&id, "rule")?, caller.space_no, by_of(&caller));
    let now_us = to_micros(st.clock.now());
    st.store
        .write(move |c| {
            let (name, version): (String, i64) = c
                .query_row("SELECT name, version FROM rules WHERE space_no = ?1 AND id = ?2", params![space_no, id.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?
                .ok_or(StoreError::NotFound)?;
            let rid = id.to_string();
            c.execute("DELETE FROM rules WHERE space_no = ?1 AND id = ?2", params![space_no, rid])?;
            c.execute("DELETE FROM rule_windows WHERE rule_id = ?1", [&rid])?;
            c.execute("DELETE FROM rule_stats WHERE rule_id = ?1", [&rid])?;
            history(c, id, now_us, &by, "deleted", &json!({"name": name, "version": version}))
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    st.rules_did_change();
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of a rule's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RuleHistoryParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A rule's history, newest first: created, updated, enabled, disabled, and the pauses and
/// resumptions of the alert rate limit.
#[utoipa::path(get, path = "/api/v1/rules/{id}/history", tag = "rules", security(("bearer" = [])),
    params(("id" = String, Path), RuleHistoryParams), responses((status = 200, body = Page<RuleHistoryEntry>), (status = 404)))]
pub async fn rules_history(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<RuleHistoryParams>,
) -> Result<Json<Page<RuleHistoryEntry>>, ApiError> {
    let (id, space_no, limit) = (path_id(&id, "rule")?, caller.space_no, page_limit(p.limit));
    let before = match p.cursor {
        Some(c) => Some(c.parse::<i64>().map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?),
        None => None,
    };
    let rows = st
        .store
        .read(move |c| {
            let exists: bool = c.query_row(
                "SELECT EXISTS(SELECT 1 FROM rules WHERE space_no = ?1 AND id = ?2)",
                params![space_no, id.to_string()],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NotFound);
            }
            let mut stmt = c.prepare_cached(
                "SELECT id, at, by, kind, detail FROM rule_history WHERE rule_id = ?1 AND (?2 IS NULL OR id < ?2) \
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![id.to_string(), before, limit as i64 + 1], |r| {
                let detail: Option<String> = r.get(4)?;
                Ok(RuleHistoryEntry {
                    id: r.get(0)?,
                    at: from_micros(r.get(1)?),
                    by: r.get(2)?,
                    kind: r.get(3)?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or(Value::Null),
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id.to_string())))
}

/// A rule as Sigma YAML (`application/yaml`): a pipe rule translated (a filter, or a window as
/// a correlation; level from its severity, tags in Sigma's form), a Sigma rule as written. A
/// pipe rule with no Sigma form is refused (422) with every reason.
#[utoipa::path(get, path = "/api/v1/rules/{id}/sigma", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "application/yaml", body = String), (status = 404),
        (status = 422, description = "the rule has no Sigma form; each reason is listed")))]
pub async fn rules_sigma(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, space_no) = (path_id(&id, "rule")?, caller.space_no);
    let row = st.store.read(move |c| fetch(c, space_no, id)).await.map_err(ApiError::from_store("rule"))?;
    let yaml = match row.spec.kind {
        Kind::Sigma => row.spec.source,
        Kind::Pipe => {
            let meta = vigie_query::sigma::SigmaMeta {
                title: row.spec.name.clone(),
                id: row.id.to_string(),
                description: Some(row.spec.description.clone()).filter(|d| !d.is_empty()),
                level: severity_word(row.spec.severity).to_owned(),
                tags: row.spec.tags.iter().map(|t| sigma_tag(t)).collect(),
            };
            vigie_detect::export_sigma(&row.spec.source, &meta).map_err(|reasons| {
                let mut e = ApiError::validation(reasons.into_iter().map(|r| FieldError::new("source", r)).collect());
                e.message = format!("this rule has no Sigma form: {}", e.message);
                e
            })?
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}

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
        st.rules_did_change();
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

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
