//! Sigma export: a filter-only query becomes a Sigma detection rule, and
//! `filter | stats count by keys | where count > N in last D` (or `dc(field)`) becomes that rule
//! plus a Sigma `event_count` (or `value_count`) correlation over it. What Sigma cannot say is
//! refused with every reason, never dropped.
//!
//! Each test becomes its own selection and the condition keeps the query's tree, so the rule
//! means what the query means: `==` is `|cased` (Sigma matches text without case by default),
//! `!=`, `NOT IN` and `NOT CONTAINS` are `not` of the positive selection (true on a missing
//! field, as in the query), list fields match on any element.
use crate::ast::{AggFn, CmpOp, Expr, Literal, Query, Stage, Test, TestOp};

/// What the exported rule says about itself.
#[derive(Debug, Clone)]
pub struct SigmaMeta {
    /// `title`.
    pub title: String,
    /// `id` (a UUID), which the correlation references.
    pub id: String,
    /// `description`.
    pub description: Option<String>,
    /// `level`: informational, low, medium, high or critical.
    pub level: String,
    /// `tags` (`attack.t1567` …).
    pub tags: Vec<String>,
}

/// Why a query has no Sigma form: one line per reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this query cannot be written in Sigma: {}", .0.join("; "))]
pub struct NotExpressible(pub Vec<String>);

fn q(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn scalar(l: &Literal) -> Option<String> {
    match l {
        Literal::Str(s) => Some(q(s)),
        Literal::Num(n) => Some(format!("{n}")),
        Literal::Bool(b) => Some(b.to_string()),
        Literal::Null => None,
    }
}

/// One selection: its modifiers and values (several values mean any of them).
struct Selection {
    field: String,
    modifiers: Vec<&'static str>,
    values: Vec<String>,
}

struct Builder {
    selections: Vec<Selection>,
    reasons: Vec<String>,
}

impl Builder {
    fn select(&mut self, field: &str, modifiers: Vec<&'static str>, values: Vec<String>) -> String {
        if field.contains('|') {
            self.reasons.push(format!("the field `{field}` holds a `|`, which Sigma reads as a modifier"));
        }
        self.selections.push(Selection { field: field.to_owned(), modifiers, values });
        format!("sel{}", self.selections.len())
    }

    fn cond(&mut self, e: &Expr) -> String {
        match e {
            Expr::And(items) => format!("({})", items.iter().map(|i| self.cond(i)).collect::<Vec<_>>().join(" and ")),
            Expr::Or(items) => format!("({})", items.iter().map(|i| self.cond(i)).collect::<Vec<_>>().join(" or ")),
            Expr::Not(inner) => format!("not {}", self.cond(inner)),
            Expr::Test(t) => self.test(t),
        }
    }

    fn values(&mut self, t: &Test, lits: &[Literal]) -> Option<(Vec<&'static str>, Vec<String>)> {
        let mut out = Vec::new();
        let mut text = false;
        for l in lits {
            match scalar(l) {
                Some(v) => {
                    text |= matches!(l, Literal::Str(_));
                    out.push(v);
                }
                None => {
                    self.reasons.push(format!("`{t}`: Sigma's null also matches a missing field; the query's `== null` does not"));
                    return None;
                }
            }
        }
        if text && lits.iter().any(|l| !matches!(l, Literal::Str(_))) {
            self.reasons.push(format!("`{t}`: a list mixing text and other values has no single Sigma form"));
            return None;
        }
        Some((if text { vec!["cased"] } else { vec![] }, out))
    }

    fn test(&mut self, t: &Test) -> String {
        let positive = |b: &mut Builder, modifiers: Vec<&'static str>, values: Vec<String>| b.select(&t.field, modifiers, values);
        match &t.op {
            TestOp::Cmp(op @ (CmpOp::Eq | CmpOp::Ne), lit) => match self.values(t, std::slice::from_ref(lit)) {
                Some((m, v)) => {
                    let s = positive(self, m, v);
                    if *op == CmpOp::Ne { format!("not {s}") } else { s }
                }
                None => "unexpressible".into(),
            },
            TestOp::Cmp(op, Literal::Num(n)) => {
                let m = match op {
                    CmpOp::Gt => "gt",
                    CmpOp::Ge => "gte",
                    CmpOp::Lt => "lt",
                    _ => "lte",
                };
                positive(self, vec![m], vec![format!("{n}")])
            }
            TestOp::Cmp(..) => {
                self.reasons.push(format!("`{t}`: Sigma compares only numbers with gt, gte, lt and lte"));
                "unexpressible".into()
            }
            TestOp::In { negated, values } => match self.values(t, values) {
                Some((m, v)) => {
                    let s = positive(self, m, v);
                    if *negated { format!("not {s}") } else { s }
                }
                None => "unexpressible".into(),
            },
            TestOp::Contains { negated, text } => {
                let s = positive(self, vec!["contains"], vec![q(text)]);
                if *negated { format!("not {s}") } else { s }
            }
            TestOp::StartsWith(s) => positive(self, vec!["startswith"], vec![q(s)]),
            TestOp::EndsWith(s) => positive(self, vec!["endswith"], vec![q(s)]),
            TestOp::Matches(re) => positive(self, vec!["re"], vec![q(re)]),
            TestOp::Exists => positive(self, vec!["exists"], vec!["true".into()]),
            TestOp::Cidr(net) => positive(self, vec!["cidr"], vec![q(net)]),
        }
    }
}

fn timespan(secs: u64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

/// The Sigma YAML of `query` (one document, or a rule and its correlation).
pub fn export(query: &Query, meta: &SigmaMeta) -> Result<String, NotExpressible> {
    let mut b = Builder { selections: Vec::new(), reasons: Vec::new() };
    let condition = match &query.filter {
        Some(f) => b.cond(f),
        None => {
            b.reasons.push("an empty filter (every event) has no Sigma detection".into());
            String::new()
        }
    };
    let correlation = match query.stages.as_slice() {
        [] => None,
        [Stage::Stats { aggs, by }, Stage::Where { cond, window: Some(span) }] => correlation(aggs, by, cond, span.0, &mut b.reasons),
        _ => {
            b.reasons.push("only a filter, or `filter | stats count (or dc(field)) by … | where … in last D`, has a Sigma form".into());
            None
        }
    };
    if !b.reasons.is_empty() {
        return Err(NotExpressible(b.reasons));
    }
    let mut y = format!("title: {}\nid: {}\nname: {}\nstatus: experimental\n", q(&meta.title), meta.id, q(&format!("vigie-{}", meta.id)));
    if let Some(d) = &meta.description {
        y.push_str(&format!("description: {}\n", q(d)));
    }
    y.push_str("logsource:\n    product: vigie\n    service: xdr\ndetection:\n");
    for (i, s) in b.selections.iter().enumerate() {
        let key = std::iter::once(s.field.as_str()).chain(s.modifiers.iter().copied()).collect::<Vec<_>>().join("|");
        y.push_str(&format!("    sel{}:\n        {}:", i + 1, q(&key)));
        if s.values.len() == 1 {
            y.push_str(&format!(" {}\n", s.values[0]));
        } else {
            y.push('\n');
            for v in &s.values {
                y.push_str(&format!("            - {v}\n"));
            }
        }
    }
    y.push_str(&format!("    condition: {condition}\n"));
    if !meta.tags.is_empty() {
        y.push_str("tags:\n");
        for t in &meta.tags {
            y.push_str(&format!("    - {}\n", q(t)));
        }
    }
    y.push_str(&format!("level: {}\n", meta.level));
    if let Some(c) = correlation {
        let c = c.replace("{rule}", &format!("vigie-{}", meta.id));
        y.push_str(&format!("---\ntitle: {}\nstatus: experimental\ncorrelation:\n{c}level: {}\n", q(&meta.title), meta.level));
    }
    Ok(y)
}

fn correlation(aggs: &[crate::ast::Agg], by: &[crate::ast::Key], cond: &Expr, span: u64, reasons: &mut Vec<String>) -> Option<String> {
    let [agg] = aggs else {
        reasons.push("a correlation has one aggregation".into());
        return None;
    };
    let mut group = Vec::new();
    for k in by {
        match k {
            crate::ast::Key::Field(f) => group.push(f.clone()),
            crate::ast::Key::Bin { .. } => reasons.push("a correlation groups by fields, not by time buckets".into()),
        }
    }
    let Expr::Test(Test { field, op: TestOp::Cmp(op, Literal::Num(n)) }) = cond else {
        reasons.push("a correlation's condition is one comparison of its aggregation with a number".into());
        return None;
    };
    if *field != agg.column() {
        reasons.push(format!("the condition tests `{field}`, not the aggregation `{}`", agg.column()));
        return None;
    }
    let op = match op {
        CmpOp::Gt => "gt",
        CmpOp::Ge => "gte",
        CmpOp::Lt => "lt",
        CmpOp::Le => "lte",
        CmpOp::Eq => "eq",
        CmpOp::Ne => {
            reasons.push("a correlation's condition cannot be `!=`".into());
            return None;
        }
    };
    if n.fract() != 0.0 || *n < 0.0 {
        reasons.push("a correlation compares with a whole number".into());
        return None;
    }
    let (kind, field_line) = match (agg.func, &agg.field) {
        (AggFn::Count, None) => ("event_count", String::new()),
        (AggFn::Dc, Some(f)) => ("value_count", format!("        field: {}\n", q(f))),
        _ => {
            reasons.push(format!("`{}` has no Sigma correlation (count and dc(field) have)", agg.column()));
            return None;
        }
    };
    let mut c = format!("    type: {kind}\n    rules:\n        - {{rule}}\n");
    if !group.is_empty() {
        c.push_str("    group-by:\n");
        for g in &group {
            c.push_str(&format!("        - {}\n", q(g)));
        }
    }
    c.push_str(&format!("    timespan: {}\n    condition:\n        {op}: {}\n{field_line}", timespan(span), *n as u64));
    Some(c)
}
