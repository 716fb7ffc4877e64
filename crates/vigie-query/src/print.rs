//! Printing: a [`Query`] as text that parses back to the same tree.
use crate::ast::*;
use crate::parse::needs_quoting;
use std::fmt;

struct Name<'a>(&'a str);

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if needs_quoting(self.0) { write!(f, "`{}`", self.0.replace('`', "``")) } else { f.write_str(self.0) }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Literal::Num(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn list(values: &[Literal]) -> String {
    let items: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = Name(&self.field);
        match &self.op {
            TestOp::Cmp(op, v) => write!(f, "{field} {} {v}", op.as_str()),
            TestOp::In { negated, values } => write!(f, "{field} {}IN {}", if *negated { "NOT " } else { "" }, list(values)),
            TestOp::Contains { negated, text } => write!(f, "{field} {}CONTAINS {}", if *negated { "NOT " } else { "" }, quoted(text)),
            TestOp::StartsWith(s) => write!(f, "{field} STARTSWITH {}", quoted(s)),
            TestOp::EndsWith(s) => write!(f, "{field} ENDSWITH {}", quoted(s)),
            TestOp::Matches(s) => write!(f, "{field} MATCHES {}", quoted(s)),
            TestOp::Exists => write!(f, "{field} EXISTS"),
            TestOp::Cidr(s) => write!(f, "{field} CIDR {}", quoted(s)),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Parentheses where the tree is not what the flat text would parse to: an OR inside
            // an AND or an OR, an AND inside an AND, and an AND or OR under NOT.
            Expr::Or(items) => join(f, items, " OR ", |e| matches!(e, Expr::Or(_))),
            Expr::And(items) => join(f, items, " AND ", |e| matches!(e, Expr::Or(_) | Expr::And(_))),
            Expr::Not(inner) => match inner.as_ref() {
                Expr::And(_) | Expr::Or(_) => write!(f, "NOT ({inner})"),
                _ => write!(f, "NOT {inner}"),
            },
            Expr::Test(t) => write!(f, "{t}"),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str, paren: impl Fn(&Expr) -> bool) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if paren(e) { write!(f, "({e})")? } else { write!(f, "{e}")? }
    }
    Ok(())
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.func.as_str())?;
        if let Some(field) = &self.field {
            write!(f, "({})", Name(field))?;
        }
        if let Some(a) = &self.alias {
            write!(f, " as {}", Name(a))?;
        }
        Ok(())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Field(name) => write!(f, "{}", Name(name)),
            Key::Bin { field, span } => write!(f, "bin({}, {span})", Name(field)),
        }
    }
}

fn comma<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Stats { aggs, by } => {
                write!(f, "stats {}", comma(aggs))?;
                if !by.is_empty() {
                    write!(f, " by {}", comma(by))?;
                }
                Ok(())
            }
            Stage::Where { cond, window } => {
                write!(f, "where {cond}")?;
                if let Some(d) = window {
                    write!(f, " in last {d}")?;
                }
                Ok(())
            }
            Stage::Sort(keys) => {
                let keys: Vec<String> = keys.iter().map(|k| format!("{}{}", if k.desc { "-" } else { "" }, Name(&k.name))).collect();
                write!(f, "sort {}", keys.join(", "))
            }
            Stage::Head(n) => write!(f, "head {n}"),
            Stage::Fields(names) => {
                let names: Vec<String> = names.iter().map(|n| Name(n).to_string()).collect();
                write!(f, "fields {}", names.join(", "))
            }
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(filter) = &self.filter {
            write!(f, "{filter}")?;
        }
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 || self.filter.is_some() {
                f.write_str(" ")?;
            }
            write!(f, "| {s}")?;
        }
        Ok(())
    }
}
