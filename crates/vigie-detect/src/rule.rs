//! A rule's source checked and compiled into a [`Program`]: a pipe query (a filter, or a
//! filter with a sliding window) or Sigma YAML (detection documents and the correlation
//! documents that reference them). Anything the engine would not carry out exactly as written
//! is refused with the reason; nothing is dropped.
use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationType, SigmaRule, WindowMode};
use serde::{Deserialize, Serialize};
use vigie_query::ast::{AggFn, Query};
use vigie_query::window::{WindowRule, WindowSpec};

/// The language a rule is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The pipe language (`../shared/QUERY.md`).
    Pipe,
    /// Sigma YAML: one or more detection documents, optionally correlation documents.
    Sigma,
}

impl Kind {
    /// Its name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pipe => "pipe",
            Kind::Sigma => "sigma",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "pipe" => Some(Kind::Pipe),
            "sigma" => Some(Kind::Sigma),
            _ => None,
        }
    }
}

/// Why a rule is refused, with its position in the source when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", position(*.line, *.column))]
pub struct RuleError {
    /// What is wrong, and what would be accepted.
    pub message: String,
    /// Line (from 1).
    pub line: Option<usize>,
    /// Column (from 1).
    pub column: Option<usize>,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{l}:{c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

impl RuleError {
    /// An error without a position.
    pub fn new(message: impl Into<String>) -> RuleError {
        RuleError { message: message.into(), line: None, column: None }
    }
}

/// What a rule matches: single events, or windows of events grouped by fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    /// Each matching event is a match.
    PerEvent,
    /// A group's window satisfying the condition is a match.
    Window {
        /// The group-by fields.
        by: Vec<String>,
        /// The window's length.
        span_secs: u64,
    },
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) body: Body,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// A pipe filter: every matching event is a match.
    Filter(Query),
    /// A pipe sliding window.
    Window(Query, Box<WindowRule>),
    /// Sigma documents.
    Sigma(Box<SigmaProgram>),
}

/// A Sigma rule: its detection documents and correlations.
#[derive(Debug, Clone)]
pub(crate) struct SigmaProgram {
    /// The detection documents, in order.
    pub docs: Vec<SigmaRule>,
    /// Whether each document's own matches are matches of the rule (documents a correlation
    /// references only feed it, unless it says `generate: true`).
    pub generates: Vec<bool>,
    /// The correlations.
    pub correlations: Vec<Correlation>,
}

/// A Sigma correlation compiled into a window over the matches of the documents it references.
#[derive(Debug, Clone)]
pub(crate) struct Correlation {
    /// Its title.
    pub title: String,
    /// Indices of the documents it counts.
    pub refs: Vec<usize>,
    /// Per referenced document (same order as `refs`), the event field of each group-by name
    /// (its alias mapping, else the name itself).
    pub fields: Vec<Vec<String>>,
    /// The group-by names (the window row's key columns).
    pub group_by: Vec<String>,
    /// The value field (`value_count`, `value_sum`, `value_avg`), per referenced document.
    pub value: Option<Vec<String>>,
    /// The window.
    pub window: WindowRule,
}

/// Column a correlation's window reads for the referenced document's name (`temporal`).
pub(crate) const DOC_COLUMN: &str = "__sigma_rule";
/// Column a correlation's window reads for its value field.
pub(crate) const VALUE_COLUMN: &str = "__sigma_value";

impl Program {
    /// What the rule matches.
    pub fn shape(&self) -> Shape {
        match &self.body {
            Body::Filter(_) => Shape::PerEvent,
            Body::Window(_, w) => Shape::Window { by: w.group_by(), span_secs: w.span_secs() },
            Body::Sigma(s) => match s.correlations.first() {
                Some(c) => Shape::Window { by: c.group_by.clone(), span_secs: c.window.span_secs() },
                None => Shape::PerEvent,
            },
        }
    }

    /// The pipe query, for a pipe rule.
    pub fn query(&self) -> Option<&Query> {
        match &self.body {
            Body::Filter(q) | Body::Window(q, _) => Some(q),
            Body::Sigma(_) => None,
        }
    }
}

/// Checks and compiles a rule.
pub fn compile(kind: Kind, source: &str) -> Result<Program, RuleError> {
    match kind {
        Kind::Pipe => compile_pipe(source),
        Kind::Sigma => compile_sigma(source),
    }
}

fn compile_pipe(source: &str) -> Result<Program, RuleError> {
    let q = vigie_query::parse(source).map_err(|e| RuleError { message: e.message.clone(), line: Some(e.line), column: Some(e.column) })?;
    if q.stages.is_empty() {
        // Compiled here so a rule that cannot run is refused when saved.
        vigie_query::matcher::Matcher::compile(q.filter.as_ref(), &mut vigie_query::matcher::Fields::new()).map_err(RuleError::new)?;
        return Ok(Program { body: Body::Filter(q) });
    }
    match WindowRule::compile(&q).map_err(RuleError::new)? {
        Some(w) => Ok(Program { body: Body::Window(q, Box::new(w)) }),
        None => Err(RuleError::new(
            "a detection rule is a filter (`event_type == \"…\" AND …`), or a filter with a sliding window \
             (`filter | stats count by user_id | where count > 5 in last 1h`); other stages only make sense in a search",
        )),
    }
}

fn compile_sigma(source: &str) -> Result<Program, RuleError> {
    let collection = rsigma_parser::parse_sigma_yaml(source).map_err(|e| RuleError::new(format!("the Sigma YAML does not parse: {e}")))?;
    if !collection.errors.is_empty() {
        let message = format!("the Sigma YAML has documents that do not parse: {}", collection.errors.join("; "));
        let (line, column) = yaml_position(&message);
        return Err(RuleError { message, line, column });
    }
    if !collection.filters.is_empty() {
        return Err(RuleError::new(
            "Sigma filter documents are not supported: write the exclusion in the detection's condition (`selection and not filter`)",
        ));
    }
    if collection.rules.is_empty() {
        return Err(RuleError::new("the Sigma YAML has no detection document (`detection:` with a `condition:`)"));
    }
    for (i, doc) in collection.rules.iter().enumerate() {
        rsigma_eval::compile_rule(doc)
            .map_err(|e| RuleError::new(format!("Sigma document {} ({:?}) cannot be evaluated: {e}", i + 1, doc.title)))?;
    }
    let docs = collection.rules;
    let find = |r: &str| docs.iter().position(|d| d.id.as_deref() == Some(r) || d.name.as_deref() == Some(r) || d.title == r);
    let mut generates = vec![true; docs.len()];
    let mut correlations = Vec::new();
    for c in &collection.correlations {
        let name = &c.title;
        let unsupported = |what: &str| RuleError::new(format!("correlation {name:?}: {what} is not supported"));
        if c.window != WindowMode::Sliding {
            return Err(unsupported(&format!("a {} window (only sliding windows are)", c.window.as_str())));
        }
        if c.timespan.seconds == 0 || c.timespan.seconds > 86_400 {
            return Err(RuleError::new(format!("correlation {name:?}: the timespan must be between 1 s and 24 h")));
        }
        let mut refs = Vec::new();
        for r in &c.rules {
            if collection.correlations.iter().any(|o| o.id.as_deref() == Some(r.as_str()) || o.name.as_deref() == Some(r.as_str())) {
                return Err(unsupported(&format!("referencing another correlation ({r:?})")));
            }
            let i = find(r).ok_or_else(|| {
                RuleError::new(format!(
                    "correlation {name:?} references {r:?}, which is not a detection document of this rule (by id, name or title)"
                ))
            })?;
            refs.push(i);
        }
        if refs.is_empty() {
            return Err(RuleError::new(format!("correlation {name:?} references no rule")));
        }
        let field_for = |alias_or_field: &str, doc: usize| -> String {
            c.aliases
                .iter()
                .find(|a| a.alias == alias_or_field)
                .and_then(|a| {
                    let d = &docs[doc];
                    [d.id.as_deref(), d.name.as_deref(), Some(d.title.as_str())]
                        .into_iter()
                        .flatten()
                        .find_map(|k| a.mapping.get(k))
                        .cloned()
                })
                .unwrap_or_else(|| alias_or_field.to_owned())
        };
        let fields: Vec<Vec<String>> = refs.iter().map(|&d| c.group_by.iter().map(|g| field_for(g, d)).collect()).collect();
        let CorrelationCondition::Threshold { predicates, field, .. } = &c.condition else {
            return Err(unsupported("this condition form"));
        };
        let value_field = field.as_ref().and_then(|f| f.first()).cloned();
        let (agg, value) = match c.correlation_type {
            CorrelationType::EventCount => (AggFn::Count, None),
            CorrelationType::ValueCount => (
                AggFn::Dc,
                Some(
                    value_field
                        .clone()
                        .ok_or_else(|| RuleError::new(format!("correlation {name:?}: value_count needs `condition: field:`")))?,
                ),
            ),
            CorrelationType::ValueSum => (
                AggFn::Sum,
                Some(
                    value_field
                        .clone()
                        .ok_or_else(|| RuleError::new(format!("correlation {name:?}: value_sum needs `condition: field:`")))?,
                ),
            ),
            CorrelationType::ValueAvg => (
                AggFn::Avg,
                Some(
                    value_field
                        .clone()
                        .ok_or_else(|| RuleError::new(format!("correlation {name:?}: value_avg needs `condition: field:`")))?,
                ),
            ),
            CorrelationType::Temporal => (AggFn::Dc, None),
            other => return Err(unsupported(&format!("the {} type", other.as_str()))),
        };
        let column = match c.correlation_type {
            CorrelationType::EventCount => None,
            CorrelationType::Temporal => Some(DOC_COLUMN.to_owned()),
            _ => Some(VALUE_COLUMN.to_owned()),
        };
        // A temporal correlation without a condition means "all the referenced rules" (the
        // parser writes it as `gte: 1`, which for temporal would mean any one of them: the
        // same as no correlation).
        let mut preds: Vec<(ConditionOperator, u64)> = predicates.clone();
        let temporal = c.correlation_type == CorrelationType::Temporal;
        if preds.is_empty() || (temporal && preds == [(ConditionOperator::Gte, 1)]) {
            preds = vec![(ConditionOperator::Gte, if temporal { refs.len() as u64 } else { 1 })];
        }
        let alias = match c.correlation_type {
            CorrelationType::EventCount => "count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "rules",
            CorrelationType::ValueSum => "sum",
            _ => "avg",
        };
        let window = WindowRule::from_spec(WindowSpec {
            aggs: vec![vigie_query::ast::Agg { func: agg, field: column, alias: Some(alias.into()) }],
            by: c.group_by.clone(),
            cond: preds.iter().map(|(op, n)| (cmp(*op), *n as f64)).collect(),
            span_secs: c.timespan.seconds,
        });
        let value = value.map(|v| refs.iter().map(|&d| field_for(&v, d)).collect());
        if !c.generate {
            for &r in &refs {
                generates[r] = false;
            }
        }
        correlations.push(Correlation { title: c.title.clone(), refs, fields, group_by: c.group_by.clone(), value, window });
    }
    // A document referenced by a correlation with `generate: true` keeps raising its own matches.
    for c in &collection.correlations {
        if c.generate {
            for r in &c.rules {
                if let Some(i) = find(r) {
                    generates[i] = true;
                }
            }
        }
    }
    Ok(Program { body: Body::Sigma(Box::new(SigmaProgram { docs, generates, correlations })) })
}

/// The first `at line L column C` of a YAML error.
fn yaml_position(message: &str) -> (Option<usize>, Option<usize>) {
    let Some(at) = message.find(" at line ") else { return (None, None) };
    let mut words = message[at + 9..].split(|c: char| !c.is_ascii_alphanumeric());
    let line = words.next().and_then(|w| w.parse().ok());
    let column = match (words.next(), words.next()) {
        (Some("column"), Some(c)) => c.parse().ok(),
        _ => None,
    };
    (line, column)
}

fn cmp(op: ConditionOperator) -> vigie_query::ast::CmpOp {
    use vigie_query::ast::CmpOp;
    match op {
        ConditionOperator::Lt => CmpOp::Lt,
        ConditionOperator::Lte => CmpOp::Le,
        ConditionOperator::Gt => CmpOp::Gt,
        ConditionOperator::Gte => CmpOp::Ge,
        ConditionOperator::Eq => CmpOp::Eq,
        ConditionOperator::Neq => CmpOp::Ne,
    }
}

/// A pipe rule as Sigma YAML (the expressible subset); otherwise every reason it is not.
pub fn export_sigma(source: &str, meta: &vigie_query::sigma::SigmaMeta) -> Result<String, Vec<String>> {
    let q = vigie_query::parse(source).map_err(|e| vec![e.to_string()])?;
    vigie_query::sigma::export(&q, meta).map_err(|e| e.0)
}
