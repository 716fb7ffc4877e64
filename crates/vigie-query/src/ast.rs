//! The syntax tree of a query (`../shared/QUERY.md`). Printing a tree (`Display`) gives a query
//! that parses back to the same tree.
use serde::{Deserialize, Serialize};

/// A whole query: a filter, then stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The filter; `None` matches every event.
    pub filter: Option<Expr>,
    /// The stages after the filter, in order.
    pub stages: Vec<Stage>,
}

/// A boolean expression over an event's fields (or, after `stats`, a row's columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// All hold (two or more).
    And(Vec<Expr>),
    /// Any holds (two or more).
    Or(Vec<Expr>),
    /// Does not hold.
    Not(Box<Expr>),
    /// One test on one field.
    Test(Test),
}

/// A test of one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Test {
    /// The field: a name or a dotted path.
    pub field: String,
    /// What is tested.
    pub op: TestOp,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `==` (also written `=`).
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

impl CmpOp {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// The test applied to a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TestOp {
    /// `field op value`.
    Cmp(CmpOp, Literal),
    /// `field [NOT] IN [values]`.
    In {
        /// `NOT IN`.
        negated: bool,
        /// The values.
        values: Vec<Literal>,
    },
    /// `field [NOT] CONTAINS "s"` (case-insensitive).
    Contains {
        /// `NOT CONTAINS`.
        negated: bool,
        /// The text looked for.
        text: String,
    },
    /// `field STARTSWITH "s"` (case-insensitive).
    StartsWith(String),
    /// `field ENDSWITH "s"` (case-insensitive).
    EndsWith(String),
    /// `field MATCHES "regex"`.
    Matches(String),
    /// `field EXISTS`.
    Exists,
    /// `field CIDR "10.0.0.0/8"`.
    Cidr(String),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// A string.
    Str(String),
    /// A finite number.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// A stage after `|`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stage {
    /// `stats agg, … [by key, …]`.
    Stats {
        /// The aggregations (at least one).
        aggs: Vec<Agg>,
        /// The group keys.
        by: Vec<Key>,
    },
    /// `where cond [in last D]`.
    Where {
        /// The condition.
        cond: Expr,
        /// The sliding window, after `stats` (`in last 1 hour`).
        window: Option<Duration>,
    },
    /// `sort [-]name, …` (`-` is descending).
    Sort(Vec<SortKey>),
    /// `head n`.
    Head(u64),
    /// `fields name, …`.
    Fields(Vec<String>),
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    /// The column or field.
    pub name: String,
    /// Descending.
    pub desc: bool,
}

/// Aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggFn {
    /// `count` or `count(field)` (events where the field exists).
    Count,
    /// `dc(field)`: distinct values.
    Dc,
    /// `sum(field)`.
    Sum,
    /// `avg(field)`.
    Avg,
    /// `min(field)`.
    Min,
    /// `max(field)`.
    Max,
}

impl AggFn {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Dc => "dc",
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::Min => "min",
            AggFn::Max => "max",
        }
    }
}

/// One aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// The function.
    pub func: AggFn,
    /// Its field (`None` only for a bare `count`).
    pub field: Option<String>,
    /// `as name`.
    pub alias: Option<String>,
}

impl Agg {
    /// The column it makes: its alias, else `count`, else `func(field)`.
    pub fn column(&self) -> String {
        match (&self.alias, &self.field) {
            (Some(a), _) => a.clone(),
            (None, None) => self.func.as_str().to_owned(),
            (None, Some(f)) => format!("{}({f})", self.func.as_str()),
        }
    }
}

/// A group key of `stats … by`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Key {
    /// A field's value.
    Field(String),
    /// `bin(field, D)`: the start of the D-long bucket holding the field's time.
    Bin {
        /// The time field (`timestamp`).
        field: String,
        /// The bucket width.
        span: Duration,
    },
}

impl Key {
    /// The column it makes: the field's name.
    pub fn column(&self) -> &str {
        match self {
            Key::Field(f) | Key::Bin { field: f, .. } => f,
        }
    }
}

/// A positive whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Duration(pub u64);

impl Duration {
    /// In microseconds (the event log's unit).
    pub fn micros(self) -> i64 {
        (self.0 as i64).saturating_mul(1_000_000)
    }
}
