//! Policy evaluation, pure: a policy's rules are compiled once (values parsed, aliases
//! resolved, type codes normalised) and evaluated per interaction without allocating.
//!
//! Semantics (the compatible API's): enabled policies are tried by ascending priority, ties by
//! creation time (UUIDv7 ids order by creation); a policy matches when all its conditions hold;
//! the first match wins; no match means the interaction is only logged.
use crate::model::{Action, Direction, InteractionType, Source, normalize_platform, normalize_type};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::http::FieldError;

/// The most conditions one policy may have.
pub const MAX_CONDITIONS: usize = 50;

/// A policy's rules as written: an action and the conditions that must all hold.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    /// `block`, `coach` or `log` (case-insensitive).
    #[schema(pattern = "^([Bb]lock|[Cc]oach|[Ll]og|BLOCK|COACH|LOG)$")]
    pub action: String,
    /// Conditions; all must hold.
    #[schema(min_items = 1, max_items = 50)]
    pub conditions: Vec<ConditionSpec>,
    /// What the person is told on a block or coach decision (up to 500 characters). Without
    /// it, the message names the policy and the types found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub message: Option<String>,
}

/// The longest policy message.
pub const MAX_MESSAGE: usize = 500;

/// One condition as written: `{field, operator, value}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// platform_id, platform_vetted, risk_score, classification_count, classifications, source,
    /// direction, user_id or interaction_type.
    #[schema(
        pattern = "^(platform_id|platform_vetted|risk_score|classification_count|classifications|source|direction|user_id|interaction_type)$"
    )]
    pub field: String,
    /// eq, ne (neq), in, nin (not_in), lt, lte, gt, gte, contains, not_contains.
    #[schema(pattern = "^([Ee][Qq]|[Nn][Ee][Qq]?|[Ii][Nn]|[Nn][Ii][Nn]|not_in|[Ll][Tt][Ee]?|[Gg][Tt][Ee]?|contains|not_contains)$")]
    pub operator: String,
    /// A string, number, boolean or list; numbers may be given as strings ("0.8").
    #[schema(value_type = ConditionValue)]
    pub value: Value,
}

/// The shapes a condition's value takes, for the API document.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ConditionValue {
    /// A string (or a number written as a string).
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean (`platform_vetted`).
    Flag(bool),
    /// A list of strings (`in`, `nin`, `contains`).
    List(Vec<String>),
}

/// The facts of one interaction that conditions test.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Normalised platform id.
    pub platform_id: &'a str,
    /// Whether the tenant vetted the platform (unknown platforms are not vetted).
    pub platform_vetted: bool,
    /// Risk score, 0..1.
    pub risk_score: f64,
    /// Normalised type codes of the classifications, one per classification.
    pub classification_types: &'a [String],
    /// Number of matches (classifications weighted by their `count`).
    pub classification_count: usize,
    /// What recorded it.
    pub source: Source,
    /// Which way it went.
    pub direction: Direction,
    /// Who did it, if known.
    pub user_id: Option<Uuid>,
    /// What kind of content.
    pub interaction_type: InteractionType,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TextField {
    PlatformId,
    Source,
    Direction,
    InteractionType,
    UserId,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumField {
    RiskScore,
    ClassificationCount,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// Holds when the field is one of `values` (or, negated, when it is none of them or absent).
    Text {
        field: TextField,
        negate: bool,
        values: Vec<String>,
    },
    Vetted {
        want: bool,
    },
    Number {
        field: NumField,
        cmp: Cmp,
        value: f64,
    },
    /// Holds when some classification has one of `types` (or, negated, when none has).
    Types {
        negate: bool,
        types: Vec<String>,
    },
}

/// Compiled rules: ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRules {
    /// The action of a match.
    pub action: Action,
    /// The message shown on a match, if the policy has one (trimmed, never empty).
    pub message: Option<String>,
    conditions: Vec<Cond>,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    In,
    Nin,
    Lt,
    Lte,
    Gt,
    Gte,
    Contains,
    NotContains,
}

fn parse_op(s: &str) -> Option<Op> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" | "neq" => Op::Ne,
        "in" => Op::In,
        "nin" | "not_in" => Op::Nin,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "contains" => Op::Contains,
        "not_contains" => Op::NotContains,
        _ => return None,
    })
}

const FIELDS: &str =
    "platform_id, platform_vetted, risk_score, classification_count, classifications, source, direction, user_id, interaction_type";

/// Parses and checks `spec`, reporting every offending condition by its path
/// (`rules.conditions[2].value`).
pub fn compile(spec: &RulesSpec) -> Result<CompiledRules, Vec<FieldError>> {
    let mut errors = Vec::new();
    let action = Action::parse(&spec.action.trim().to_ascii_lowercase());
    if action.is_none() {
        errors.push(FieldError::new("rules.action", format!("{:?} is not an action; use one of {}", spec.action, Action::expected())));
    }
    if spec.conditions.is_empty() {
        errors.push(FieldError::new("rules.conditions", "a policy needs at least one condition"));
    }
    if spec.conditions.len() > MAX_CONDITIONS {
        errors.push(FieldError::new("rules.conditions", format!("at most {MAX_CONDITIONS} conditions per policy")));
    }
    let message = spec.message.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned);
    if message.as_ref().is_some_and(|m| m.chars().count() > MAX_MESSAGE) {
        errors.push(FieldError::new("rules.message", format!("at most {MAX_MESSAGE} characters")));
    }
    let mut conditions = Vec::with_capacity(spec.conditions.len());
    for (i, c) in spec.conditions.iter().enumerate() {
        match compile_condition(c) {
            Ok(cond) => conditions.push(cond),
            Err((part, msg)) => errors.push(FieldError::new(format!("rules.conditions[{i}].{part}"), msg)),
        }
    }
    match action {
        Some(action) if errors.is_empty() => Ok(CompiledRules { action, message, conditions }),
        _ => Err(errors),
    }
}

type CondError = (&'static str, String);

fn compile_condition(c: &ConditionSpec) -> Result<Cond, CondError> {
    let field = c.field.trim().to_ascii_lowercase();
    let op = parse_op(&c.operator).ok_or_else(|| {
        (
            "operator",
            format!("{:?} is not an operator; use eq, ne (neq), in, nin (not_in), lt, lte, gt, gte, contains or not_contains", c.operator),
        )
    })?;
    let wrong_op = |allowed: &str| Err(("operator", format!("{:?} does not apply to {field}; use {allowed}", c.operator)));
    let text = |f: TextField, norm: &dyn Fn(&str) -> Result<String, String>| -> Result<Cond, CondError> {
        let (negate, list) = match op {
            Op::Eq => (false, false),
            Op::Ne => (true, false),
            Op::In => (false, true),
            Op::Nin => (true, true),
            _ => return wrong_op("eq, ne, in or nin"),
        };
        let raw = strings(&c.value, list)?;
        let values = raw.iter().map(|s| norm(s)).collect::<Result<Vec<_>, _>>().map_err(|m| ("value", m))?;
        Ok(Cond::Text { field: f, negate, values })
    };
    match field.as_str() {
        "platform_id" => text(TextField::PlatformId, &|s| normalize_platform(s).ok_or_else(|| format!("{s:?} is not a platform id"))),
        "source" => text(TextField::Source, &|s| enum_value(s, Source::parse, Source::expected).map(|v| v.as_str().to_owned())),
        "direction" => text(TextField::Direction, &|s| enum_value(s, Direction::parse, Direction::expected).map(|v| v.as_str().to_owned())),
        "interaction_type" => text(TextField::InteractionType, &|s| {
            enum_value(s, InteractionType::parse, InteractionType::expected).map(|v| v.as_str().to_owned())
        }),
        "user_id" => {
            text(TextField::UserId, &|s| Uuid::parse_str(s.trim()).map(|u| u.to_string()).map_err(|_| format!("{s:?} is not a UUID")))
        }
        "platform_vetted" => {
            let want = boolean(&c.value)?;
            match op {
                Op::Eq => Ok(Cond::Vetted { want }),
                Op::Ne => Ok(Cond::Vetted { want: !want }),
                _ => wrong_op("eq or ne"),
            }
        }
        "risk_score" | "classification_count" => {
            let cmp = match op {
                Op::Eq => Cmp::Eq,
                Op::Ne => Cmp::Ne,
                Op::Lt => Cmp::Lt,
                Op::Lte => Cmp::Lte,
                Op::Gt => Cmp::Gt,
                Op::Gte => Cmp::Gte,
                _ => return wrong_op("eq, ne, lt, lte, gt or gte"),
            };
            let value = number(&c.value)?;
            if field == "risk_score" {
                if !(0.0..=1.0).contains(&value) {
                    return Err(("value", format!("{value} is outside 0..1; risk scores run from 0 to 1")));
                }
                Ok(Cond::Number { field: NumField::RiskScore, cmp, value })
            } else {
                if value < 0.0 || value.fract() != 0.0 {
                    return Err(("value", format!("{value} is not a count; use a whole number ≥ 0")));
                }
                Ok(Cond::Number { field: NumField::ClassificationCount, cmp, value })
            }
        }
        "classifications" => {
            let negate = match op {
                Op::Contains | Op::In => false,
                Op::NotContains | Op::Nin => true,
                _ => return wrong_op("contains, not_contains, in or nin"),
            };
            let raw = strings(&c.value, true)?;
            let types = raw
                .iter()
                .map(|s| normalize_type(s).ok_or_else(|| format!("{s:?} is not a classification type code")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| ("value", m))?;
            Ok(Cond::Types { negate, types })
        }
        _ => Err(("field", format!("{:?} is not a condition field; use one of {FIELDS}", c.field))),
    }
}

fn enum_value<T>(s: &str, parse: fn(&str) -> Option<T>, expected: fn() -> String) -> Result<T, String> {
    parse(&s.trim().to_ascii_lowercase()).ok_or_else(|| format!("{s:?} is not one of {}", expected()))
}

/// A string, or (when `list`) a non-empty list of strings; a lone string counts as a list of one.
fn strings(v: &Value, list: bool) -> Result<Vec<String>, CondError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if list => {
            if items.is_empty() {
                return Err(("value", "the list is empty; give at least one value".into()));
            }
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| ("value", format!("the list holds {i}, which is not a string"))))
                .collect()
        }
        Value::Array(_) => Err(("value", "a list needs the operator in or nin".into())),
        other => Err(("value", format!("{other} is not a string"))),
    }
}

fn number(v: &Value) -> Result<f64, CondError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite()).ok_or_else(|| ("value", format!("{v} is not a number")))
}

fn boolean(v: &Value) -> Result<bool, CondError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(("value", format!("{other} is not true or false"))),
    }
}

impl CompiledRules {
    /// Whether every condition holds for `f`.
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        self.conditions.iter().all(|c| holds(c, f))
    }
}

fn holds(c: &Cond, f: &Facts<'_>) -> bool {
    match c {
        Cond::Text { field, negate, values } => {
            let mut buf = Uuid::encode_buffer();
            let actual: Option<&str> = match field {
                TextField::PlatformId => Some(f.platform_id),
                TextField::Source => Some(f.source.as_str()),
                TextField::Direction => Some(f.direction.as_str()),
                TextField::InteractionType => Some(f.interaction_type.as_str()),
                TextField::UserId => f.user_id.map(|u| &*u.hyphenated().encode_lower(&mut buf)),
            };
            let found = actual.is_some_and(|a| values.iter().any(|v| v == a));
            found != *negate
        }
        Cond::Vetted { want } => f.platform_vetted == *want,
        Cond::Number { field, cmp, value } => {
            let actual = match field {
                NumField::RiskScore => f.risk_score,
                NumField::ClassificationCount => f.classification_count as f64,
            };
            match cmp {
                Cmp::Eq => actual == *value,
                Cmp::Ne => actual != *value,
                Cmp::Lt => actual < *value,
                Cmp::Lte => actual <= *value,
                Cmp::Gt => actual > *value,
                Cmp::Gte => actual >= *value,
            }
        }
        Cond::Types { negate, types } => {
            let found = f.classification_types.iter().any(|t| types.iter().any(|w| w == t));
            found != *negate
        }
    }
}

/// An enabled policy, compiled, as the evaluator holds it.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Policy id (UUIDv7: orders by creation).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Priority; lower first.
    pub priority: i64,
    /// The rules.
    pub rules: CompiledRules,
}

/// The first policy of `sorted` (ascending priority, then id) whose rules hold.
pub fn first_match<'p>(sorted: &'p [CompiledPolicy], f: &Facts<'_>) -> Option<&'p CompiledPolicy> {
    sorted.iter().find(|p| p.rules.matches(f))
}

/// Sorts policies into evaluation order: ascending priority, ties by creation.
pub fn sort_for_evaluation(policies: &mut [CompiledPolicy]) {
    policies.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.id.cmp(&b.id)));
}

#[cfg(test)]
mod tests;
