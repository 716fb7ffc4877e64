//! Console pages: policies — the list in evaluation order (enable, disable, move up and down,
//! delete), and a policy's page (the form that creates or replaces it through the policy API,
//! or a read-only view for viewers). Reads go through the policy module with the logged-in
//! tenant; changes are calls to the policy API, except Move up / Move down, which is one
//! transaction of `policy::order` (it may renumber several policies).
use super::{Console, PageResult};
use crate::model::{Action, Direction, InteractionType, Source};
use crate::policy::engine::{ConditionSpec, MAX_CONDITIONS};
use crate::policy::order::{self, Step};
use crate::policy::{self, MAX_POLICIES, Policy};
use crate::state::FirewallState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use vigie_core::auth::Permission;
use vigie_core::http::{ApiError, ApiJson, path_id};
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/policies", get(list))
        .route("/policies/new", get(new_form))
        .route("/policies/{id}", get(detail))
        .route("/policies/{id}/move", post(move_policy))
}

/// Empty condition rows the form offers beyond the policy's own (at least this many rows in all).
const SPARE_ROWS: usize = 3;
/// The fewest condition rows the form shows.
const MIN_ROWS: usize = 5;

/// Condition fields: (API name, what the form calls it).
const FIELDS: &[(&str, &str)] = &[
    ("platform_id", "Platform id"),
    ("platform_vetted", "Platform vetted (true or false)"),
    ("risk_score", "Risk score (0 to 1)"),
    ("classification_count", "Number of findings"),
    ("classifications", "Types found"),
    ("source", "Source"),
    ("direction", "Direction"),
    ("user_id", "User id"),
    ("interaction_type", "Content type"),
];

/// Condition operators: (API name, what the form calls it).
const OPERATORS: &[(&str, &str)] = &[
    ("eq", "is"),
    ("ne", "is not"),
    ("in", "is one of"),
    ("nin", "is none of"),
    ("gte", "is at least (≥)"),
    ("gt", "is more than (>)"),
    ("lte", "is at most (≤)"),
    ("lt", "is less than (<)"),
    ("contains", "include"),
    ("not_contains", "do not include"),
];

/// An option of a select.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn choices(all: &[(&'static str, &'static str)], current: &str) -> Vec<Choice> {
    all.iter().map(|&(value, label)| Choice { value, label, selected: value == current }).collect()
}

/// The operator as the form's select names it (`NEQ` → `ne`, `not_in` → `nin`).
fn canonical_operator(op: &str) -> String {
    match op.trim().to_ascii_lowercase().as_str() {
        "neq" => "ne".to_owned(),
        "not_in" => "nin".to_owned(),
        other => other.to_owned(),
    }
}

/// The action's wire name (also its badge class): `Block` → `block`.
fn action_word(action: &str) -> String {
    let lower = action.trim().to_ascii_lowercase();
    Action::parse(&lower).map_or(lower, |a| a.as_str().to_owned())
}

/// A condition's value as one line of text (lists joined by commas, as the form takes them).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A condition in words: "risk score is at least 0.7", "types found include IBAN, EMAIL".
pub fn describe(c: &ConditionSpec) -> String {
    let field = c.field.trim().to_ascii_lowercase();
    let op = canonical_operator(&c.operator);
    let value = value_text(&c.value);
    let many = matches!(&c.value, Value::Array(items) if items.len() > 1);
    if field == "platform_vetted" {
        let want = matches!(&c.value, Value::Bool(true)) || matches!(&c.value, Value::String(s) if s.eq_ignore_ascii_case("true"));
        return if want == (op == "eq") { "platform is vetted".to_owned() } else { "platform is not vetted".to_owned() };
    }
    if field == "classifications" {
        let verb = match (op.as_str(), many) {
            ("contains" | "in", false) => "include",
            ("contains" | "in", true) => "include any of",
            (_, false) => "do not include",
            (_, true) => "include none of",
        };
        return format!("types found {verb} {value}");
    }
    let subject = match field.as_str() {
        "platform_id" => "platform",
        "risk_score" => "risk score",
        "classification_count" => "number of findings",
        "source" => "source",
        "direction" => "direction",
        "user_id" => "user",
        "interaction_type" => "content type",
        other => other,
    };
    let verb = match op.as_str() {
        "eq" => "is",
        "ne" => "is not",
        "in" if many => "is one of",
        "in" => "is",
        "nin" if many => "is none of",
        "nin" => "is not",
        "gte" => "≥",
        "gt" => ">",
        "lte" => "≤",
        "lt" => "<",
        "contains" => "contains",
        "not_contains" => "does not contain",
        other => other,
    };
    format!("{subject} {verb} {value}")
}

/// All of a policy's conditions in words, joined by "and".
fn summary(p: &Policy) -> String {
    p.rules.conditions.iter().map(describe).collect::<Vec<_>>().join(" and ")
}

/// A row of the list.
struct PolicyRow {
    /// Place in the evaluation order, from 1.
    position: usize,
    id: String,
    name: String,
    action: String,
    enabled: bool,
    priority: i64,
    summary: String,
    first: bool,
    last: bool,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct ListPage {
    shell: Shell,
    can_write: bool,
    rows: Vec<PolicyRow>,
    /// Policies in the tenant (before the filter).
    total: usize,
    enabled_count: usize,
    /// The filter: "" (all), "enabled" or "disabled".
    show: String,
}

#[derive(Deserialize)]
struct ListParams {
    show: Option<String>,
}

/// Every policy of the tenant, in evaluation order (a tenant has at most `MAX_POLICIES`).
async fn all_policies(st: &FirewallState, console: &Console) -> Result<Vec<Policy>, ApiError> {
    policy::list(st, console.principal.tenant_id, None, None, MAX_POLICIES as usize).await
}

async fn list(State(st): State<FirewallState>, console: Console, Query(q): Query<ListParams>) -> PageResult {
    console.require(Permission::ReadConfig)?;
    let policies = all_policies(&st, &console).await?;
    let show = match q.show.as_deref() {
        Some(s @ ("enabled" | "disabled")) => s.to_owned(),
        _ => String::new(),
    };
    let total = policies.len();
    let enabled_count = policies.iter().filter(|p| p.enabled).count();
    let rows = policies
        .iter()
        .enumerate()
        .filter(|(_, p)| match show.as_str() {
            "enabled" => p.enabled,
            "disabled" => !p.enabled,
            _ => true,
        })
        .map(|(i, p)| PolicyRow {
            position: i + 1,
            id: p.id.to_string(),
            name: p.name.clone(),
            action: action_word(&p.rules.action),
            enabled: p.enabled,
            priority: p.priority,
            summary: summary(p),
            first: i == 0,
            last: i + 1 == total,
        })
        .collect();
    let page = ListPage { shell: console.shell("Policies", "/policies"), can_write: console.can_write(), rows, total, enabled_count, show };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// One row of the conditions editor.
struct ConditionRow {
    index: usize,
    fields: Vec<Choice>,
    operators: Vec<Choice>,
    value: String,
}

/// What the form shows (a new policy's defaults, or a policy's values).
struct FormValues {
    name: String,
    description: String,
    enabled: bool,
    priority: i64,
    actions: Vec<Choice>,
    message: String,
    rows: Vec<ConditionRow>,
}

impl FormValues {
    fn new_policy() -> FormValues {
        FormValues::with(String::new(), String::new(), true, policy::DEFAULT_PRIORITY, "block", String::new(), &[])
    }

    fn of(p: &Policy) -> FormValues {
        FormValues::with(
            p.name.clone(),
            p.description.clone(),
            p.enabled,
            p.priority,
            &action_word(&p.rules.action),
            p.rules.message.clone().unwrap_or_default(),
            &p.rules.conditions,
        )
    }

    fn with(
        name: String,
        description: String,
        enabled: bool,
        priority: i64,
        action: &str,
        message: String,
        conditions: &[ConditionSpec],
    ) -> FormValues {
        let count = (conditions.len() + SPARE_ROWS).max(MIN_ROWS).min(MAX_CONDITIONS.max(conditions.len()));
        let rows = (0..count)
            .map(|index| {
                let c = conditions.get(index);
                let field = c.map(|c| c.field.trim().to_ascii_lowercase()).unwrap_or_default();
                let op = c.map(|c| canonical_operator(&c.operator)).unwrap_or_default();
                ConditionRow {
                    index,
                    fields: choices(FIELDS, &field),
                    operators: choices(OPERATORS, &op),
                    value: c.map(|c| value_text(&c.value)).unwrap_or_default(),
                }
            })
            .collect();
        let actions =
            Action::ALL.iter().map(|a| Choice { value: a.as_str(), label: action_label(*a), selected: a.as_str() == action }).collect();
        FormValues { name, description, enabled, priority, actions, message, rows }
    }
}

fn action_label(a: Action) -> &'static str {
    match a {
        Action::Block => "Block — stop it before it reaches the AI service",
        Action::Coach => "Coach — warn the person, who may go on",
        Action::Log => "Log — record it silently",
    }
}

/// A policy as the read-only view shows it.
struct PolicyView {
    id: String,
    name: String,
    description: String,
    action: String,
    message: Option<String>,
    enabled: bool,
    priority: i64,
    conditions: Vec<String>,
    created_by: Option<String>,
    created_at: Time,
    updated_at: Time,
    /// Place in the evaluation order and the number of policies.
    position: usize,
    total: usize,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct DetailPage {
    shell: Shell,
    can_write: bool,
    /// None: the form creates a policy.
    policy: Option<PolicyView>,
    form: FormValues,
    /// Values the value inputs suggest (platform ids, type codes, enum values).
    suggestions: Vec<String>,
    max_conditions: usize,
}

/// What a condition's value may be, for the value inputs' suggestions.
async fn suggestions(st: &FirewallState, console: &Console) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = crate::platforms::routes::all(st, console.principal.tenant_id).await?.into_iter().map(|p| p.id).collect();
    out.extend(vigie_pii::PiiType::ALL.iter().map(|t| t.code().to_owned()));
    out.extend(Source::ALL.iter().map(|s| s.as_str().to_owned()));
    out.extend(Direction::ALL.iter().map(|s| s.as_str().to_owned()));
    out.extend(InteractionType::ALL.iter().map(|s| s.as_str().to_owned()));
    out.extend(["true".to_owned(), "false".to_owned()]);
    Ok(out)
}

async fn new_form(State(st): State<FirewallState>, console: Console) -> PageResult {
    console.require(Permission::Write)?;
    let page = DetailPage {
        shell: console.shell("New policy", "/policies"),
        can_write: true,
        policy: None,
        form: FormValues::new_policy(),
        suggestions: suggestions(&st, &console).await?,
        max_conditions: MAX_CONDITIONS,
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

async fn detail(State(st): State<FirewallState>, console: Console, Path(id): Path<String>) -> PageResult {
    console.require(Permission::ReadConfig)?;
    let id = path_id(&id, "policy")?;
    let p = policy::get(&st, console.principal.tenant_id, id).await?;
    let all = all_policies(&st, &console).await?;
    let position = all.iter().position(|x| x.id == p.id).map_or(0, |i| i + 1);
    let view = PolicyView {
        id: p.id.to_string(),
        name: p.name.clone(),
        description: p.description.clone(),
        action: action_word(&p.rules.action),
        message: p.rules.message.clone().filter(|m| !m.trim().is_empty()),
        enabled: p.enabled,
        priority: p.priority,
        conditions: p.rules.conditions.iter().map(describe).collect(),
        created_by: p.created_by.clone(),
        created_at: Time(p.created_at),
        updated_at: Time(p.updated_at),
        position,
        total: all.len(),
    };
    let can_write = console.can_write();
    let page = DetailPage {
        shell: console.shell(p.name.clone(), "/policies"),
        can_write,
        policy: Some(view),
        form: FormValues::of(&p),
        suggestions: if can_write { suggestions(&st, &console).await? } else { Vec::new() },
        max_conditions: MAX_CONDITIONS,
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// The body of a move: `{"step": "up"}` or `{"step": "down"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    step: Step,
}

/// Moves a policy one place in the evaluation order (admins; the session's CSRF token is
/// checked by `Console`). Answers the moved policy as the API shows it.
async fn move_policy(
    State(st): State<FirewallState>,
    console: Console,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Json<Policy>, ApiError> {
    console.principal.require(Permission::Write)?;
    let id = path_id(&id, "policy")?;
    Ok(Json(order::move_policy(&st, &console.principal, id, body.step).await?))
}

#[cfg(test)]
mod tests {
    use super::describe;
    use crate::policy::engine::ConditionSpec;
    use serde_json::json;

    fn cond(field: &str, operator: &str, value: serde_json::Value) -> ConditionSpec {
        ConditionSpec { field: field.into(), operator: operator.into(), value }
    }

    #[test]
    fn conditions_read_as_words() {
        assert_eq!(describe(&cond("risk_score", "gte", json!(0.7))), "risk score ≥ 0.7");
        assert_eq!(describe(&cond("platform_id", "in", json!(["chatgpt", "claude"]))), "platform is one of chatgpt, claude");
        assert_eq!(describe(&cond("platform_id", "NEQ", json!("poe"))), "platform is not poe");
        assert_eq!(describe(&cond("classifications", "contains", json!(["IBAN"]))), "types found include IBAN");
        assert_eq!(describe(&cond("classifications", "not_in", json!(["IBAN", "EMAIL"]))), "types found include none of IBAN, EMAIL");
        assert_eq!(describe(&cond("platform_vetted", "eq", json!(false))), "platform is not vetted");
        assert_eq!(describe(&cond("platform_vetted", "ne", json!("false"))), "platform is vetted");
    }
}
