//! The streaming back end's filter: a query's filter compiled once into a matcher whose field
//! paths are resolved to slots, so matching an event reads each field once and parses no text.
//!
//! Fields are looked up in the event as read from the log, normalised and flattened
//! (`vigie_xdr::log::shown`): flat fields and dotted paths are keys of one JSON object. A
//! [`Fields`] registry is shared by every matcher of a consumer, so an event is turned into a
//! [`Record`] once for all its rules.
use crate::ast::{CmpOp, Expr, Literal, Test, TestOp};
use crate::value::{Cidr, Needle, number, text};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The fields the compiled matchers read, each given a slot.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Fields {
    /// An empty registry.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// The slot of `name`, added if new.
    pub fn slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// The names, by slot.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The event as the matchers read it: each field looked up when a test needs it (a rule
    /// that fails on its first test reads one field), by the name resolved at compile time.
    pub fn record<'a>(&'a self, event: &'a dyn Lookup) -> Record<'a> {
        Record { names: &self.names, event }
    }
}

/// Where the matchers read an event's fields: a map of field → value as the log shows events
/// (flat fields and dotted paths), or a view that derives only the fields asked for.
pub trait Lookup {
    /// The value of field `name` (a flat name or a dotted path), if the event has it.
    fn lookup(&self, name: &str) -> Option<&Value>;
}

impl Lookup for Map<String, Value> {
    fn lookup(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// An event as the matchers read it.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    names: &'a [String],
    event: &'a dyn Lookup,
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record").field("names", &self.names).finish_non_exhaustive()
    }
}

impl<'a> Record<'a> {
    /// The value of the field in `slot`.
    pub fn get(&self, slot: usize) -> Option<&'a Value> {
        self.event.lookup(self.names.get(slot)?)
    }
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Matcher {
    root: Option<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Test(usize, Check),
}

/// The strings of an `IN` list: a few compared in turn (faster than hashing), many hashed.
#[derive(Debug, Clone)]
enum Strs {
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl Strs {
    fn contains(&self, s: &str) -> bool {
        match self {
            Strs::Few(v) => v.iter().any(|x| x == s),
            Strs::Many(h) => h.contains(s),
        }
    }
}

/// A positive test on one value (negative forms are `Not` of these).
#[derive(Debug, Clone)]
enum Check {
    EqStr(String),
    EqNum(f64),
    EqBool(bool),
    EqNull,
    Num(CmpOp, f64),
    Str(CmpOp, String),
    In { strs: Strs, nums: Vec<f64>, bools: Vec<bool>, null: bool },
    Contains(Needle),
    StartsWith(Needle),
    EndsWith(Needle),
    Matches(regex::Regex),
    Exists,
    Cidr(Cidr),
    Never,
}

impl Matcher {
    /// Compiles `filter` (`None` matches everything), registering its fields in `fields`.
    /// Fails only on a regular expression or a network that does not compile (the parser
    /// checks both, so a parsed query compiles).
    pub fn compile(filter: Option<&Expr>, fields: &mut Fields) -> Result<Matcher, String> {
        Ok(Matcher { root: filter.map(|e| node(e, fields)).transpose()? })
    }

    /// Whether the event holds.
    pub fn matches(&self, r: &Record<'_>) -> bool {
        self.root.as_ref().is_none_or(|n| eval(n, r))
    }
}

fn node(e: &Expr, fields: &mut Fields) -> Result<Node, String> {
    Ok(match e {
        Expr::And(items) => Node::And(items.iter().map(|i| node(i, fields)).collect::<Result<_, _>>()?),
        Expr::Or(items) => Node::Or(items.iter().map(|i| node(i, fields)).collect::<Result<_, _>>()?),
        Expr::Not(inner) => Node::Not(Box::new(node(inner, fields)?)),
        Expr::Test(t) => test(t, fields)?,
    })
}

fn eq(lit: &Literal) -> Check {
    match lit {
        Literal::Str(s) => Check::EqStr(s.clone()),
        Literal::Num(n) => Check::EqNum(*n),
        Literal::Bool(b) => Check::EqBool(*b),
        Literal::Null => Check::EqNull,
    }
}

fn test(t: &Test, fields: &mut Fields) -> Result<Node, String> {
    let slot = fields.slot(&t.field);
    let positive = |c: Check| Node::Test(slot, c);
    let negative = |c: Check| Node::Not(Box::new(Node::Test(slot, c)));
    Ok(match &t.op {
        TestOp::Cmp(CmpOp::Eq, lit) => positive(eq(lit)),
        TestOp::Cmp(CmpOp::Ne, lit) => negative(eq(lit)),
        TestOp::Cmp(op, Literal::Num(n)) => positive(Check::Num(*op, *n)),
        TestOp::Cmp(op, Literal::Str(s)) => positive(Check::Str(*op, s.clone())),
        // `> true`, `< null`: nothing is ordered against them.
        TestOp::Cmp(_, _) => positive(Check::Never),
        TestOp::In { negated, values } => {
            let (mut strs, mut nums, mut bools, mut null) = (Vec::new(), Vec::new(), Vec::new(), false);
            for v in values {
                match v {
                    Literal::Str(s) => strs.push(s.clone()),
                    Literal::Num(n) => nums.push(*n),
                    Literal::Bool(b) => bools.push(*b),
                    Literal::Null => null = true,
                }
            }
            let strs = if strs.len() <= 8 { Strs::Few(strs) } else { Strs::Many(strs.into_iter().collect()) };
            let c = Check::In { strs, nums, bools, null };
            if *negated { negative(c) } else { positive(c) }
        }
        TestOp::Contains { negated, text } => {
            let c = Check::Contains(Needle::new(text));
            if *negated { negative(c) } else { positive(c) }
        }
        TestOp::StartsWith(s) => positive(Check::StartsWith(Needle::new(s))),
        TestOp::EndsWith(s) => positive(Check::EndsWith(Needle::new(s))),
        TestOp::Matches(re) => positive(Check::Matches(
            regex::RegexBuilder::new(re).size_limit(crate::parse::MAX_REGEX_BYTES).build().map_err(|e| e.to_string())?,
        )),
        TestOp::Exists => positive(Check::Exists),
        TestOp::Cidr(net) => positive(Check::Cidr(Cidr::parse(net).ok_or_else(|| format!("{net:?} is not a network"))?)),
    })
}

fn eval(n: &Node, r: &Record<'_>) -> bool {
    match n {
        Node::And(items) => items.iter().all(|i| eval(i, r)),
        Node::Or(items) => items.iter().any(|i| eval(i, r)),
        Node::Not(inner) => !eval(inner, r),
        Node::Test(slot, c) => match r.get(*slot) {
            None => false,
            Some(Value::Array(items)) => match c {
                Check::Exists => true,
                _ => items.iter().any(|v| check(c, v)),
            },
            Some(v) => check(c, v),
        },
    }
}

fn ordered(op: CmpOp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Gt => o == Greater,
        CmpOp::Ge => o != Less,
        CmpOp::Lt => o == Less,
        CmpOp::Le => o != Greater,
        CmpOp::Eq => o == Equal,
        CmpOp::Ne => o != Equal,
    }
}

fn check(c: &Check, v: &Value) -> bool {
    match c {
        Check::EqStr(s) => v.as_str() == Some(s.as_str()),
        Check::EqNum(n) => number(v) == Some(*n),
        Check::EqBool(b) => v.as_bool() == Some(*b),
        Check::EqNull => v.is_null(),
        Check::Num(op, n) => number(v).and_then(|x| x.partial_cmp(n)).is_some_and(|o| ordered(*op, o)),
        Check::Str(op, s) => v.as_str().is_some_and(|x| ordered(*op, x.cmp(s.as_str()))),
        Check::In { strs, nums, bools, null } => match v {
            Value::String(s) => strs.contains(s) || (!nums.is_empty() && number(v).is_some_and(|x| nums.contains(&x))),
            Value::Number(_) => number(v).is_some_and(|x| nums.contains(&x)),
            Value::Bool(b) => bools.contains(b),
            Value::Null => *null,
            _ => false,
        },
        Check::Contains(n) => text(v).is_some_and(|t| n.in_text(t)),
        Check::StartsWith(n) => text(v).is_some_and(|t| n.starts(t)),
        Check::EndsWith(n) => text(v).is_some_and(|t| n.ends(t)),
        Check::Matches(re) => text(v).is_some_and(|t| re.is_match(t)),
        Check::Exists => !v.is_null(),
        Check::Cidr(net) => net.holds(v),
        Check::Never => false,
    }
}
