//! The parser: text → [`Query`], with errors that give the line, the column and what was
//! expected (`1:27: expected a value after "==", found "AND"`).
use crate::ast::*;
use std::fmt;

/// The longest query text accepted.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// The deepest nesting of parentheses and `NOT`s accepted.
pub const MAX_DEPTH: usize = 64;
/// The most values an `IN` list may hold.
pub const MAX_LIST: usize = 10_000;
/// The largest compiled regular expression (`MATCHES`), in bytes.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// The longest duration: ten years.
pub const MAX_DURATION_SECS: u64 = 10 * 366 * 86_400;

/// A query that does not parse: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A name or dotted path; `quoted` when written in backticks.
    Ident(String, bool),
    Str(String),
    Num(f64),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Pipe,
    Minus,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
    /// The text as written (for messages).
    text: String,
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "startswith",
    "endswith",
    "matches",
    "exists",
    "cidr",
    "true",
    "false",
    "null",
    "by",
    "as",
    "last",
];

/// Whether `name` must be written in backticks to be read as a field.
pub fn needs_quoting(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == '@');
    !first_ok
        || !name.chars().all(is_ident_char)
        || name.ends_with('.')
        || name.contains("..")
        || KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name))
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '.' | '-' | '#')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    fn err(&self, line: usize, column: usize, message: impl Into<String>) -> ParseError {
        ParseError { line, column, message: message.into() }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn tokens(mut self) -> Result<Vec<Token>, ParseError> {
        let mut out = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            let (line, column, start) = (self.line, self.column, self.pos);
            let Some(c) = self.peek() else {
                out.push(Token { tok: Tok::Eof, line, column, text: "the end".into() });
                return Ok(out);
            };
            let tok = match c {
                '(' => self.single(Tok::LParen),
                ')' => self.single(Tok::RParen),
                '[' => self.single(Tok::LBracket),
                ']' => self.single(Tok::RBracket),
                ',' => self.single(Tok::Comma),
                '|' => self.single(Tok::Pipe),
                '=' => {
                    self.bump();
                    if self.peek() == Some('=') {
                        self.bump();
                    }
                    Tok::Op(CmpOp::Eq)
                }
                '!' => {
                    self.bump();
                    if self.bump() != Some('=') {
                        return Err(self.err(line, column, "expected \"!=\""));
                    }
                    Tok::Op(CmpOp::Ne)
                }
                '>' | '<' => {
                    self.bump();
                    let eq = self.peek() == Some('=');
                    if eq {
                        self.bump();
                    }
                    Tok::Op(match (c, eq) {
                        ('>', false) => CmpOp::Gt,
                        ('>', true) => CmpOp::Ge,
                        ('<', false) => CmpOp::Lt,
                        _ => CmpOp::Le,
                    })
                }
                '"' => self.string(line, column)?,
                '\'' => self.single_quoted(line, column)?,
                '`' => self.backticked(line, column)?,
                '-' => {
                    let next = self.src[self.pos + 1..].chars().next();
                    if next.is_some_and(|d| d.is_ascii_digit() || d == '.') { self.number(line, column)? } else { self.single(Tok::Minus) }
                }
                c if c.is_ascii_digit() || (c == '.' && self.src[self.pos + 1..].starts_with(|d: char| d.is_ascii_digit())) => {
                    self.number(line, column)?
                }
                c if c.is_alphabetic() || c == '_' || c == '@' => {
                    while self.peek().is_some_and(is_ident_char) {
                        self.bump();
                    }
                    let name = &self.src[start..self.pos];
                    if name.ends_with('.') || name.contains("..") {
                        return Err(self.err(line, column, format!("\"{name}\" is not a field name: a dot must separate two names")));
                    }
                    Tok::Ident(name.to_owned(), false)
                }
                other => return Err(self.err(line, column, format!("unexpected character {other:?}"))),
            };
            out.push(Token { tok, line, column, text: self.src[start..self.pos].to_owned() });
        }
    }

    fn single(&mut self, t: Tok) -> Tok {
        self.bump();
        t
    }

    fn number(&mut self, line: usize, column: usize) -> Result<Tok, ParseError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.bump();
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.bump();
        }
        // An exponent only when digits follow (`1e5`), so `1d` stays a number and a unit.
        let rest = &self.src[self.pos..];
        let exp = rest.strip_prefix(['e', 'E']).map(|r| r.strip_prefix(['+', '-']).unwrap_or(r));
        if exp.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
            self.bump();
            if self.peek().is_some_and(|c| c == '+' || c == '-') {
                self.bump();
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        let text = &self.src[start..self.pos];
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Tok::Num(n)),
            _ => Err(self.err(line, column, format!("\"{text}\" is not a number"))),
        }
    }

    fn string(&mut self, line: usize, column: usize) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.bump();
        loop {
            match self.bump() {
                None => return Err(self.err(line, column, "this string is not closed: expected a closing \"")),
                Some('\\') => {
                    self.bump();
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        serde_json::from_str::<String>(&self.src[start..self.pos])
            .map(Tok::Str)
            .map_err(|e| self.err(line, column, format!("bad string: {}", strip_position(&e.to_string()))))
    }

    fn single_quoted(&mut self, line: usize, column: usize) -> Result<Tok, ParseError> {
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err(line, column, "this string is not closed: expected a closing '")),
                Some('\\') => match self.bump() {
                    Some(c @ ('\'' | '\\' | '"')) => s.push(c),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some(c) => return Err(self.err(self.line, self.column - 1, format!("unknown escape \\{c} in a '…' string"))),
                    None => return Err(self.err(line, column, "this string is not closed: expected a closing '")),
                },
                Some('\'') => return Ok(Tok::Str(s)),
                Some(c) => s.push(c),
            }
        }
    }

    fn backticked(&mut self, line: usize, column: usize) -> Result<Tok, ParseError> {
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err(line, column, "this name is not closed: expected a closing `")),
                Some('`') if self.peek() == Some('`') => {
                    self.bump();
                    s.push('`');
                }
                Some('`') => break,
                Some(c) => s.push(c),
            }
        }
        if s.is_empty() {
            return Err(self.err(line, column, "a field name cannot be empty"));
        }
        Ok(Tok::Ident(s, true))
    }
}

fn strip_position(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
}

/// Parses a query.
pub fn parse(src: &str) -> Result<Query, ParseError> {
    if src.len() > MAX_QUERY_BYTES {
        return Err(ParseError { line: 1, column: 1, message: format!("a query has at most {} KiB", MAX_QUERY_BYTES / 1024) });
    }
    let tokens = Lexer { src, pos: 0, line: 1, column: 1 }.tokens()?;
    let mut p = Parser { tokens, at: 0, depth: 0 };
    p.query()
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

fn kw(t: &Tok, word: &str) -> bool {
    matches!(t, Tok::Ident(name, false) if name.eq_ignore_ascii_case(word))
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.at + n).min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    /// `expected {what}, found {token}` at the next token.
    fn expected<T>(&self, what: &str) -> Result<T, ParseError> {
        let t = self.peek();
        let found = if t.tok == Tok::Eof { "the end".to_owned() } else { format!("\"{}\"", t.text) };
        Err(ParseError { line: t.line, column: t.column, message: format!("expected {what}, found {found}") })
    }

    fn error_at<T>(&self, t: &Token, message: String) -> Result<T, ParseError> {
        Err(ParseError { line: t.line, column: t.column, message })
    }

    fn eat_kw(&mut self, word: &str) -> bool {
        if kw(&self.peek().tok, word) {
            self.next();
            true
        } else {
            false
        }
    }

    fn query(&mut self) -> Result<Query, ParseError> {
        let filter = match self.peek().tok {
            Tok::Pipe | Tok::Eof => None,
            _ => Some(self.or()?),
        };
        let mut stages = Vec::new();
        loop {
            match self.peek().tok {
                Tok::Eof => break,
                Tok::Pipe => {
                    self.next();
                    let stats_before = stages.iter().any(|s| matches!(s, Stage::Stats { .. }));
                    stages.push(self.stage(stats_before)?);
                }
                _ => return self.expected(if stages.is_empty() { "AND, OR, \"|\" or the end" } else { "\"|\" or the end" }),
            }
        }
        Ok(Query { filter, stages })
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek().clone();
            return self.error_at(&t, format!("the query is nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut items = vec![self.and()?];
        while self.eat_kw("or") {
            items.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    /// Whether the next token starts a term (so adjacent terms mean AND).
    fn starts_term(&self) -> bool {
        match &self.peek().tok {
            Tok::LParen => true,
            Tok::Ident(_, true) => true,
            Tok::Ident(name, false) => name.eq_ignore_ascii_case("not") || !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)),
            _ => false,
        }
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.not()?];
        loop {
            if self.eat_kw("and") || self.starts_term() {
                items.push(self.not()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_kw("not") {
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek().tok == Tok::LParen {
            self.next();
            let inner = self.or()?;
            if self.peek().tok != Tok::RParen {
                return self.expected("\")\"");
            }
            self.next();
            return Ok(inner);
        }
        self.test()
    }

    /// An aggregation's column written as it is made, `dc(user_id)`, when the next tokens are one.
    fn agg_column(&mut self) -> Result<Option<String>, ParseError> {
        let is_agg = matches!(&self.peek().tok, Tok::Ident(w, false)
            if ["count", "dc", "sum", "avg", "min", "max"].iter().any(|f| f.eq_ignore_ascii_case(w)))
            && self.peek_at(1).tok == Tok::LParen;
        if !is_agg {
            return Ok(None);
        }
        let Tok::Ident(func, _) = self.next().tok else { return Ok(None) };
        self.next();
        // A plain name inside: `dc(dc(x))` is not a column, and must not recurse.
        let inner = match &self.peek().tok {
            Tok::Ident(name, quoted) if *quoted || !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) => {
                let name = name.clone();
                self.next();
                name
            }
            _ => return self.expected("a field name in the aggregation"),
        };
        if self.peek().tok != Tok::RParen {
            return self.expected("\")\"");
        }
        self.next();
        Ok(Some(format!("{}({inner})", func.to_ascii_lowercase())))
    }

    fn field(&mut self, what: &str) -> Result<String, ParseError> {
        if let Some(column) = self.agg_column()? {
            return Ok(column);
        }
        match &self.peek().tok {
            Tok::Ident(name, quoted) if *quoted || !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) => {
                let name = name.clone();
                self.next();
                Ok(name)
            }
            _ => self.expected(what),
        }
    }

    fn string_arg(&mut self, after: &str) -> Result<(String, Token), ParseError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Str(ref s) => {
                let s = s.clone();
                self.next();
                Ok((s, t))
            }
            _ => self.expected(&format!("a string after {after}")),
        }
    }

    fn test(&mut self) -> Result<Expr, ParseError> {
        let field = self.field("a field name, NOT or \"(\"")?;
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Op(op) => {
                let op = *op;
                self.next();
                TestOp::Cmp(op, self.literal(&format!("\"{}\"", t.text))?)
            }
            Tok::Ident(w, false) => {
                let w = w.to_ascii_lowercase();
                self.next();
                match w.as_str() {
                    "not" => {
                        if self.eat_kw("in") {
                            TestOp::In { negated: true, values: self.list()? }
                        } else if self.eat_kw("contains") {
                            TestOp::Contains { negated: true, text: self.string_arg("NOT CONTAINS")?.0 }
                        } else {
                            return self.expected("IN or CONTAINS after NOT");
                        }
                    }
                    "in" => TestOp::In { negated: false, values: self.list()? },
                    "contains" => TestOp::Contains { negated: false, text: self.string_arg("CONTAINS")?.0 },
                    "startswith" => TestOp::StartsWith(self.string_arg("STARTSWITH")?.0),
                    "endswith" => TestOp::EndsWith(self.string_arg("ENDSWITH")?.0),
                    "matches" => {
                        let (re, at) = self.string_arg("MATCHES")?;
                        if let Err(e) = regex::RegexBuilder::new(&re).size_limit(MAX_REGEX_BYTES).build() {
                            let last = e.to_string().lines().last().unwrap_or("invalid").trim().to_owned();
                            let first = last.strip_prefix("error: ").unwrap_or(&last).to_owned();
                            return self.error_at(&at, format!("bad regular expression: {first}"));
                        }
                        TestOp::Matches(re)
                    }
                    "exists" => TestOp::Exists,
                    "cidr" => {
                        let (net, at) = self.string_arg("CIDR")?;
                        if crate::value::Cidr::parse(&net).is_none() {
                            return self
                                .error_at(&at, format!("\"{net}\" is not a network; write it like \"10.0.0.0/8\" or \"2001:db8::/32\""));
                        }
                        TestOp::Cidr(net)
                    }
                    _ => {
                        self.at -= 1;
                        return self.expected(&format!(
                            "an operator after \"{field}\" (==, !=, >, >=, <, <=, IN, NOT IN, CONTAINS, STARTSWITH, ENDSWITH, MATCHES, EXISTS, CIDR)"
                        ));
                    }
                }
            }
            _ => {
                return self.expected(&format!(
                    "an operator after \"{field}\" (==, !=, >, >=, <, <=, IN, NOT IN, CONTAINS, STARTSWITH, ENDSWITH, MATCHES, EXISTS, CIDR)"
                ));
            }
        };
        Ok(Expr::Test(Test { field, op }))
    }

    fn literal(&mut self, after: &str) -> Result<Literal, ParseError> {
        let t = self.peek().clone();
        let lit = match &t.tok {
            Tok::Str(s) => Literal::Str(s.clone()),
            Tok::Num(n) => Literal::Num(*n),
            Tok::Ident(w, false) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Ident(w, false) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Ident(w, false) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return self.expected(&format!("a value after {after}")),
        };
        self.next();
        Ok(lit)
    }

    fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
        if self.peek().tok != Tok::LBracket {
            return self.expected("a list like [\"a\", \"b\"]");
        }
        self.next();
        let mut values = Vec::new();
        loop {
            values.push(self.literal(if values.is_empty() { "\"[\"" } else { "\",\"" })?);
            if values.len() > MAX_LIST {
                let t = self.peek().clone();
                return self.error_at(&t, format!("a list has at most {MAX_LIST} values"));
            }
            match self.peek().tok {
                Tok::Comma => {
                    self.next();
                }
                Tok::RBracket => {
                    self.next();
                    return Ok(values);
                }
                _ => return self.expected("\",\" or \"]\""),
            }
        }
    }

    fn stage(&mut self, stats_before: bool) -> Result<Stage, ParseError> {
        let t = self.peek().clone();
        let Tok::Ident(word, false) = &t.tok else { return self.expected("a stage (stats, where, sort, head or fields) after \"|\"") };
        let word = word.to_ascii_lowercase();
        self.next();
        match word.as_str() {
            "stats" => self.stats(),
            "where" => {
                let cond = self.or()?;
                let window = if kw(&self.peek().tok, "in") {
                    let at = self.next();
                    if !self.eat_kw("last") {
                        return self.expected("LAST after IN (\"in last 1 hour\")");
                    }
                    if !stats_before {
                        return self.error_at(&at, "\"in last\" needs a stats stage before this where".into());
                    }
                    Some(self.duration()?)
                } else {
                    None
                };
                Ok(Stage::Where { cond, window })
            }
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let desc = self.peek().tok == Tok::Minus;
                    if desc {
                        self.next();
                    }
                    keys.push(SortKey { name: self.name("a column to sort by")?, desc });
                    if self.peek().tok != Tok::Comma {
                        break;
                    }
                    self.next();
                }
                Ok(Stage::Sort(keys))
            }
            "head" => {
                let t = self.peek().clone();
                match t.tok {
                    Tok::Num(n) if n >= 0.0 && n.fract() == 0.0 && n <= 1e9 => {
                        self.next();
                        Ok(Stage::Head(n as u64))
                    }
                    _ => self.expected("a whole number after head"),
                }
            }
            "fields" => {
                let mut names = vec![self.name("a field name after fields")?];
                while self.peek().tok == Tok::Comma {
                    self.next();
                    names.push(self.name("a field name after \",\"")?);
                }
                Ok(Stage::Fields(names))
            }
            other => self.error_at(&t, format!("unknown stage \"{other}\"; expected stats, where, sort, head or fields")),
        }
    }

    /// A column or field name (keywords allowed: `count` is one).
    fn name(&mut self, what: &str) -> Result<String, ParseError> {
        if let Some(column) = self.agg_column()? {
            return Ok(column);
        }
        match &self.peek().tok {
            Tok::Ident(name, _) => {
                let name = name.clone();
                self.next();
                Ok(name)
            }
            _ => self.expected(what),
        }
    }

    fn stats(&mut self) -> Result<Stage, ParseError> {
        let mut aggs = vec![self.agg()?];
        while self.peek().tok == Tok::Comma {
            self.next();
            aggs.push(self.agg()?);
        }
        let mut by = Vec::new();
        if self.eat_kw("by") {
            by.push(self.key()?);
            while self.peek().tok == Tok::Comma {
                self.next();
                by.push(self.key()?);
            }
        }
        Ok(Stage::Stats { aggs, by })
    }

    fn agg(&mut self) -> Result<Agg, ParseError> {
        let t = self.peek().clone();
        let Tok::Ident(word, false) = &t.tok else { return self.expected("an aggregation (count, dc, sum, avg, min or max)") };
        let func = match word.to_ascii_lowercase().as_str() {
            "count" => AggFn::Count,
            "dc" => AggFn::Dc,
            "sum" => AggFn::Sum,
            "avg" => AggFn::Avg,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            other => return self.error_at(&t, format!("unknown aggregation \"{other}\"; expected count, dc, sum, avg, min or max")),
        };
        self.next();
        let field = if self.peek().tok == Tok::LParen {
            self.next();
            let f = self.field(&format!("a field name in {}(…)", func.as_str()))?;
            if self.peek().tok != Tok::RParen {
                return self.expected("\")\"");
            }
            self.next();
            Some(f)
        } else if func == AggFn::Count {
            None
        } else {
            return self.expected(&format!("\"(\" and a field after {}", func.as_str()));
        };
        let alias = if self.eat_kw("as") { Some(self.name("a name after AS")?) } else { None };
        Ok(Agg { func, field, alias })
    }

    fn key(&mut self) -> Result<Key, ParseError> {
        if matches!(&self.peek().tok, Tok::Ident(w, false) if w.eq_ignore_ascii_case("bin")) && self.peek_at(1).tok == Tok::LParen {
            self.next();
            self.next();
            let field = self.field("a time field in bin(…)")?;
            if self.peek().tok != Tok::Comma {
                return self.expected("\",\" and a bucket width, as in bin(timestamp, 1h)");
            }
            self.next();
            let span = self.duration()?;
            if self.peek().tok != Tok::RParen {
                return self.expected("\")\"");
            }
            self.next();
            return Ok(Key::Bin { field, span });
        }
        Ok(Key::Field(self.field("a field to group by")?))
    }

    fn duration(&mut self) -> Result<Duration, ParseError> {
        let t = self.peek().clone();
        let Tok::Num(n) = t.tok else { return self.expected("a duration such as 1h, 30 minutes or 7d") };
        self.next();
        let u = self.peek().clone();
        let Tok::Ident(unit, false) = &u.tok else { return self.expected("a unit (s, m, h, d, w) after the number") };
        let secs = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            other => return self.error_at(&u, format!("unknown unit \"{other}\"; expected s, m, h, d or w (or their words)")),
        };
        self.next();
        if n <= 0.0 || n.fract() != 0.0 {
            return self.error_at(&t, format!("bad duration \"{}{}\": expected a positive whole number", t.text, u.text));
        }
        let total = (n as u64).saturating_mul(secs);
        if total > MAX_DURATION_SECS {
            return self.error_at(&t, format!("bad duration \"{}{}\": at most ten years", t.text, u.text));
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, secs) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if self.0.is_multiple_of(secs) {
                return write!(f, "{}{unit}", self.0 / secs);
            }
        }
        write!(f, "{}s", self.0)
    }
}
