//! The SQL back end: a query compiled to SQL over a store of events, so search, dashboards and
//! backtests run where the events are. What is dialect-specific (SQLite's JSON functions and the
//! `vq_*` functions this crate registers) is in this module and [`crate::sqlite`]; a PostgreSQL
//! or ClickHouse back end replaces those pieces.
//!
//! Meaning is the streaming back end's, exactly (a property test compares them): every test
//! gives 0 or 1, never NULL, so `NOT` and `!=` on a missing field hold; a list field matches
//! when an element does (`json_each`); numbers are read from numeric strings; text tests are
//! case-insensitive. The SQL does the filter and the first `stats` (as mergeable partial
//! states, so a range can be aggregated in slices and a slow query stop early); the stages
//! after it run in memory ([`crate::table`]).
use crate::ast::{AggFn, CmpOp, Expr, Key, Literal, Query, Stage, Test, TestOp};
use rusqlite::types::Value as SqlValue;

/// How a field of the normalised event is read from the store.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldSql {
    /// An integer column of µs since the epoch, shown as RFC 3339 with microseconds.
    Time(String),
    /// A text column, NULL when the event has none.
    Text(String),
    /// The same text for every event (the space's id).
    Const(String),
    /// JSON: the first alternative present and neither null nor an object wins; the last is
    /// taken as it is (null included).
    Json(Vec<Alt>),
}

/// One place a JSON field may be.
#[derive(Debug, Clone, PartialEq)]
pub struct Alt {
    /// Only for rows where this SQL condition holds.
    pub when: Option<String>,
    /// Whether a JSON null here is the field's value (a dotted path) or means "look further"
    /// (a derived field, which the normalised event omits when null).
    pub null_counts: bool,
    /// The column holding JSON.
    pub column: String,
    /// The path in it (`$."data"."interaction"."platform_id"`).
    pub path: String,
}

/// A JSON path of quoted labels (`a.b` → `$."a"."b"`); `None` when a label holds a `"`.
pub fn json_path<'a>(labels: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut p = String::from("$");
    for l in labels {
        // SQLite's path labels take no escapes: a label with a quote or a backslash cannot be
        // written, and the field reads as absent in SQL.
        if l.contains(['"', '\\']) {
            return None;
        }
        p.push_str(&format!(".\"{l}\""));
    }
    Some(p)
}

/// The ordinary reading of a dotted field in a JSON column: nested objects (`$."a"."b"`),
/// else one key holding the dots (`$."a.b"`).
pub fn dotted(column: &str, field: &str) -> Vec<Alt> {
    let mut alts: Vec<Alt> = json_path(field.split('.'))
        .map(|path| Alt { when: None, null_counts: true, column: column.to_owned(), path })
        .into_iter()
        .collect();
    if field.contains('.')
        && let Some(path) = json_path([field])
    {
        alts.push(Alt { when: None, null_counts: true, column: column.to_owned(), path });
    }
    alts
}

/// Where the events are and how their fields are read.
pub trait Schema {
    /// The table (or view) of events.
    fn table(&self) -> &str;
    /// The column of the events' time (µs), which the range bounds.
    fn time_column(&self) -> &str;
    /// How `field` is read.
    fn field(&self, name: &str) -> FieldSql;
}

/// A field's SQL: its JSON type (`'text'`, `'integer'`, `'real'`, `'true'`, `'false'`,
/// `'null'`, `'array'`, or NULL when absent), its SQL value, and its JSON text.
struct Resolved {
    t: String,
    v: String,
    j: String,
    /// The integer time column, when the field is one.
    time: Option<String>,
}

/// SQL with its parameters.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    params: Vec<SqlValue>,
}

impl Sql {
    fn param(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.param(SqlValue::Text(s.to_owned()))
    }

    fn num(&mut self, n: f64) -> String {
        self.param(SqlValue::Real(n))
    }
}

/// The first alternative that holds the field, as `f` reads it. A path holds it when present
/// and not a non-empty object (which the shown event has as dotted paths, not under this
/// name); a derived field (with a condition) holds it when present and, unless `null_counts`,
/// not null — an object it holds wins, as `normalize::firewall_fields` puts it over the
/// event's own field.
fn pick(alts: &[Alt], f: impl Fn(&Alt) -> String, t_of: impl Fn(&Alt) -> String, j_of: impl Fn(&Alt) -> String) -> String {
    let Some((tail, head)) = alts.split_last() else { return "NULL".into() };
    let holds = |a: &Alt| {
        let t = t_of(a);
        match &a.when {
            Some(w) if a.null_counts => format!("({w}) AND {t} IS NOT NULL"),
            Some(w) => format!("({w}) AND {t} IS NOT NULL AND {t} != 'null'"),
            None => format!("{t} IS NOT NULL AND ({t} != 'object' OR {} = '{{}}')", j_of(a)),
        }
    };
    let mut s = String::from("CASE");
    for a in head {
        s.push_str(&format!(" WHEN {} THEN {}", holds(a), f(a)));
    }
    let value = f(tail);
    match &tail.when {
        Some(w) => s.push_str(&format!(" WHEN ({w}) THEN {value} ELSE NULL END")),
        None => s.push_str(&format!(" ELSE {value} END")),
    }
    if head.is_empty() && tail.when.is_none() { value } else { s }
}

fn resolve(schema: &dyn Schema, field: &str) -> Resolved {
    match schema.field(field) {
        FieldSql::Time(c) => {
            Resolved { t: "'text'".into(), v: format!("vq_time({c})"), j: format!("json_quote(vq_time({c}))"), time: Some(c) }
        }
        FieldSql::Text(c) => Resolved {
            t: format!("CASE WHEN {c} IS NULL THEN NULL ELSE 'text' END"),
            v: c.clone(),
            j: format!("json_quote({c})"),
            time: None,
        },
        FieldSql::Const(s) => {
            let lit = format!("'{}'", s.replace('\'', "''"));
            Resolved { t: "'text'".into(), v: lit.clone(), j: format!("json_quote({lit})"), time: None }
        }
        FieldSql::Json(alts) => {
            let ty = |a: &Alt| format!("json_type({}, '{}')", a.column, a.path.replace('\'', "''"));
            let js = |a: &Alt| format!("({} -> '{}')", a.column, a.path.replace('\'', "''"));
            let t = pick(&alts, ty, ty, js);
            let v = pick(&alts, |a| format!("json_extract({}, '{}')", a.column, a.path.replace('\'', "''")), ty, js);
            let j = pick(&alts, js, ty, js);
            // A non-empty object is not a value of the field (the shown event has its leaves as
            // dotted paths); an empty one is.
            let t = format!("(CASE WHEN {t} = 'object' AND {j} != '{{}}' THEN NULL ELSE {t} END)");
            Resolved { t, v, j, time: None }
        }
    }
}

/// A positive test on one value of type `t` and SQL value `v` (an element, for a list).
fn scalar(sql: &mut Sql, op: &TestOp, t: &str, v: &str) -> String {
    let numeric = format!("(CASE WHEN {t} IN ('integer', 'real') THEN {v} WHEN {t} = 'text' THEN vq_num({v}) END)");
    let eq = |sql: &mut Sql, lit: &Literal| match lit {
        Literal::Str(s) => format!("({t} = 'text' AND {v} = {})", sql.text(s)),
        Literal::Num(n) => format!("({numeric} = {})", sql.num(*n)),
        Literal::Bool(true) => format!("({t} = 'true')"),
        Literal::Bool(false) => format!("({t} = 'false')"),
        Literal::Null => format!("({t} = 'null')"),
    };
    match op {
        TestOp::Cmp(CmpOp::Eq | CmpOp::Ne, lit) => eq(sql, lit),
        TestOp::Cmp(op, Literal::Num(n)) => format!("({numeric} {} {})", sql_op(*op), sql.num(*n)),
        TestOp::Cmp(op, Literal::Str(s)) => format!("({t} = 'text' AND {v} {} {})", sql_op(*op), sql.text(s)),
        TestOp::Cmp(_, _) => "0".into(),
        TestOp::In { values, .. } => {
            // One parameter per kind of value (a JSON array read with json_each), not one
            // comparison per value: a list of thousands stays one small expression.
            let strs: Vec<&str> = values.iter().filter_map(|l| if let Literal::Str(s) = l { Some(s.as_str()) } else { None }).collect();
            let nums: Vec<f64> = values.iter().filter_map(|l| if let Literal::Num(n) = l { Some(*n) } else { None }).collect();
            let mut parts = Vec::new();
            if !strs.is_empty() {
                let p = sql.text(&serde_json::Value::from(strs).to_string());
                parts.push(format!("({t} = 'text' AND {v} IN (SELECT value FROM json_each({p})))"));
            }
            if !nums.is_empty() {
                let p = sql.text(&serde_json::Value::from(nums).to_string());
                parts.push(format!("({numeric} IN (SELECT value FROM json_each({p})))"));
            }
            for l in values.iter().filter(|l| matches!(l, Literal::Bool(_) | Literal::Null)) {
                parts.push(eq(sql, l));
            }
            parts.dedup();
            format!("({})", parts.join(" OR "))
        }
        TestOp::Contains { text, .. } => format!("({t} = 'text' AND vq_contains({v}, {}))", sql.text(text)),
        TestOp::StartsWith(s) => format!("({t} = 'text' AND vq_starts({v}, {}))", sql.text(s)),
        TestOp::EndsWith(s) => format!("({t} = 'text' AND vq_ends({v}, {}))", sql.text(s)),
        TestOp::Matches(re) => format!("({t} = 'text' AND vq_matches({}, {v}))", sql.text(re)),
        TestOp::Cidr(net) => format!("({t} = 'text' AND vq_cidr({}, {v}))", sql.text(net)),
        TestOp::Exists => format!("({t} IS NOT NULL AND {t} != 'null')"),
    }
}

fn sql_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
    }
}

fn negated(op: &TestOp) -> bool {
    matches!(op, TestOp::Cmp(CmpOp::Ne, _) | TestOp::In { negated: true, .. } | TestOp::Contains { negated: true, .. })
}

fn test(sql: &mut Sql, schema: &dyn Schema, t: &Test) -> String {
    let r = resolve(schema, &t.field);
    let positive = match &t.op {
        TestOp::Exists => scalar(sql, &t.op, &r.t, &r.v),
        op => {
            let element = scalar(sql, op, "e.type", "e.value");
            let value = scalar(sql, op, &r.t, &r.v);
            format!("CASE WHEN {} = 'array' THEN EXISTS (SELECT 1 FROM json_each({}) AS e WHERE {element}) ELSE {value} END", r.t, r.j)
        }
    };
    let positive = format!("COALESCE({positive}, 0)");
    if negated(&t.op) { format!("NOT {positive}") } else { positive }
}

/// The SQL condition of a filter (0 or 1 for every row).
pub fn condition(sql: &mut Sql, schema: &dyn Schema, e: &Expr) -> String {
    match e {
        Expr::And(items) => balanced(&items.iter().map(|i| condition(sql, schema, i)).collect::<Vec<_>>(), " AND "),
        Expr::Or(items) => balanced(&items.iter().map(|i| condition(sql, schema, i)).collect::<Vec<_>>(), " OR "),
        Expr::Not(inner) => format!("(NOT {})", condition(sql, schema, inner)),
        Expr::Test(t) => format!("({})", test(sql, schema, t)),
    }
}

/// `parts` joined by `op` in groups of at most eight, nested: SQLite parses a flat chain as a
/// tree as deep as it is long, and refuses trees deeper than 1,000.
fn balanced(parts: &[String], op: &str) -> String {
    if parts.len() <= 8 {
        return format!("({})", parts.join(op));
    }
    let chunk = parts.len().div_ceil(8);
    let groups: Vec<String> = parts.chunks(chunk).map(|c| balanced(c, op)).collect();
    format!("({})", groups.join(op))
}

/// What the SQL of a query returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Matching events: `seq` (the rowid) and the time, newest first.
    Events,
    /// One row per group: the keys, then each aggregation's partial state.
    Stats {
        /// The group keys.
        by: Vec<Key>,
        /// The aggregations.
        aggs: Vec<crate::ast::Agg>,
    },
}

/// A query compiled for a store: the SQL (with `?1`/`?2` the range's start and end, µs, and
/// `{scope}` the condition the caller adds, e.g. the space), its parameters, its shape, and
/// the stages left to run in memory over its rows.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The SQL.
    pub sql: String,
    /// Its parameters after the range (`?3`…).
    pub params: Vec<SqlValue>,
    /// What it returns.
    pub shape: Shape,
    /// The stages run in memory afterwards.
    pub rest: Vec<Stage>,
}

/// Compiles `q` for `schema`. `scope` is SQL ANDed to the filter (the caller's space). The
/// filter and any `where` before the first `stats` go into the SQL; so does that `stats` when
/// nothing but `where` comes before it; the rest runs in memory.
pub fn plan(q: &Query, schema: &dyn Schema, scope: &str) -> Result<Plan, String> {
    if q.stages.iter().any(|s| matches!(s, Stage::Where { window: Some(_), .. })) {
        return Err("\"in last\" is a detection rule's sliding window; a search over a range runs without it".into());
    }
    let mut sql = Sql { params: vec![SqlValue::Null, SqlValue::Null] };
    let time = schema.time_column();
    let mut conds = vec![format!("{time} >= ?1"), format!("{time} < ?2"), format!("({scope})")];
    if let Some(f) = &q.filter {
        conds.push(condition(&mut sql, schema, f));
    }
    let mut at = 0;
    while let Some(Stage::Where { cond, window: None }) = q.stages.get(at) {
        conds.push(condition(&mut sql, schema, cond));
        at += 1;
    }
    let table = schema.table();
    let filter = conds.join(" AND ");
    let (text, shape) = match q.stages.get(at) {
        Some(Stage::Stats { aggs, by }) => {
            at += 1;
            let mut cols = Vec::new();
            for k in by {
                cols.push(match k {
                    Key::Field(f) => {
                        let r = resolve(schema, f);
                        format!("CASE WHEN {t} IS NULL OR {t} = 'null' THEN NULL ELSE {j} END", t = r.t, j = r.j)
                    }
                    Key::Bin { field, span } => {
                        let s = span.micros();
                        let r = resolve(schema, field);
                        let us = r.time.clone().unwrap_or_else(|| format!("(CASE WHEN {} = 'text' THEN vq_micros({}) END)", r.t, r.v));
                        format!("({us} - ((({us} % {s}) + {s}) % {s}))")
                    }
                });
            }
            for a in aggs {
                let r = a.field.as_ref().map(|f| resolve(schema, f));
                let present = r.as_ref().map(|r| format!("({t} IS NOT NULL AND {t} != 'null')", t = r.t));
                let num = r.as_ref().map(|r| {
                    format!("(CASE WHEN {t} IN ('integer', 'real') THEN {v} WHEN {t} = 'text' THEN vq_num({v}) END)", t = r.t, v = r.v)
                });
                match (a.func, &r, &present, &num) {
                    (AggFn::Count, None, _, _) => cols.push("COUNT(*)".into()),
                    (AggFn::Count, Some(_), Some(p), _) => cols.push(format!("SUM(CASE WHEN {p} THEN 1 ELSE 0 END)")),
                    // Distinct JSON texts, each after a U+001F (which JSON text never holds raw); a
                    // DISTINCT aggregate takes one argument, so the separator is the default ",".
                    (AggFn::Dc, Some(r), Some(p), _) => {
                        cols.push(format!("group_concat(DISTINCT CASE WHEN {p} THEN char(31) || {} END)", r.j))
                    }
                    // TOTAL, not SUM: SUM of integers fails on overflow where the in-memory sum is a float.
                    (AggFn::Sum | AggFn::Avg, _, _, Some(n)) => cols.push(format!("TOTAL({n}), COUNT({n})")),
                    (AggFn::Min, _, _, Some(n)) => cols.push(format!("MIN({n})")),
                    (AggFn::Max, _, _, Some(n)) => cols.push(format!("MAX({n})")),
                    _ => return Err(format!("{} needs a field", a.func.as_str())),
                }
            }
            let group = if by.is_empty() {
                String::new()
            } else {
                format!(" GROUP BY {}", (1..=by.len()).map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
            };
            (format!("SELECT {} FROM {table} WHERE {filter}{group}", cols.join(", ")), Shape::Stats { by: by.clone(), aggs: aggs.clone() })
        }
        _ => (format!("SELECT rowid, {time} FROM {table} WHERE {filter} ORDER BY {time} DESC, rowid DESC"), Shape::Events),
    };
    let params = sql.params.split_off(2);
    Ok(Plan { sql: text, params, shape, rest: q.stages[at..].to_vec() })
}
