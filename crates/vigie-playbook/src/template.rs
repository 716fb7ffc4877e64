//! Jinja templating: the environment (strict undefined, bounded by fuel, the playbook filters),
//! values whose strings are templates compiled once, and their rendering — a string that is
//! exactly one `{{ expr }}` keeps the expression's type.
use crate::time::{parse_time, rfc3339};
use chrono::{DateTime, Utc};
use minijinja::value::{Kwargs, StringInput};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};
use std::collections::HashSet;
use std::io;

/// The work one rendering may do (minijinja instructions): a loop over 10 000 events with a
/// few operations each fits, a runaway loop does not.
pub const FUEL: u64 = 2_000_000;
/// The longest text one template may render, in bytes.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// Filters and functions that take a size (a width, a count, a format) and so can build text
/// far larger than their input.
const SIZED: [&str; 8] = ["indent", "center", "wordwrap", "format", "repeat", "batch", "slice", "ljust"];

/// Refuses the constructs that let a short template allocate without bound — fuel counts
/// instructions, not bytes, so `{{ "x" * 99999999 }}` or a few `{% set x = x ~ x %}` would
/// take gigabytes in a handful of instructions, and text captured in memory (a macro's output,
/// `{% filter %}`, `{% set x %}…{% endset %}`) escapes the cap on rendered output.
///
/// Inside `{{ … }}` and `{% … %}`, outside string literals, it refuses the `*`, `**` and `~`
/// operators, `+` unless one side is a number written out (`x + 1`; `+` also joins text and
/// lists), the filters and functions that take a size ([`SIZED`]), macros, `{% call %}`,
/// `{% filter %}` blocks and block `{% set %}`. Comments and `{% raw %}` are text. The message
/// names the line and says what to write instead. Every template Vigie stores goes through it
/// (playbooks, case templates, notification templates), and again before it is rendered.
pub fn check_template_source(src: &str) -> Result<(), String> {
    let b = src.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'{' {
            i += 1;
            continue;
        }
        match b[i + 1] {
            b'#' => i = src[i + 2..].find("#}").map_or(b.len(), |at| i + 2 + at + 2),
            open @ (b'{' | b'%') => {
                let close = if open == b'{' { b"}}" } else { b"%}" };
                let (tokens, end) = block_tokens(src, i + 2, close);
                let line = src[..i].matches('\n').count() + 1;
                check_block(&tokens, open == b'%').map_err(|m| format!("line {line}: {m}"))?;
                i = end;
                if open == b'%' && tokens.first().is_some_and(|t| t.text == "raw") {
                    i = raw_end(src, i);
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Where the text after `{% raw %}` ends: past its `{% endraw %}` (or the end of the source).
fn raw_end(src: &str, from: usize) -> usize {
    let mut at = from;
    while let Some(rel) = src[at..].find("{%") {
        let (tokens, end) = block_tokens(src, at + rel + 2, b"%}");
        if tokens.first().is_some_and(|t| t.text == "endraw") {
            return end;
        }
        at = at + rel + 2;
    }
    src.len()
}

#[derive(Debug, PartialEq)]
enum TokenKind {
    Name,
    Number,
    Text,
    Op,
}

#[derive(Debug)]
struct Token<'a> {
    kind: TokenKind,
    text: &'a str,
}

/// The tokens of a block starting at `from`, up to its closing delimiter (a `-` or `+`
/// whitespace marker next to a delimiter is dropped), and where the block ends.
fn block_tokens<'a>(src: &'a str, from: usize, close: &[u8; 2]) -> (Vec<Token<'a>>, usize) {
    let b = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = from;
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    while i < b.len() {
        let c = b[i];
        if c == close[0] && b.get(i + 1) == Some(&close[1]) {
            if matches!(tokens.last(), Some(Token { kind: TokenKind::Op, text: "-" | "+" }))
                && b.get(i.wrapping_sub(1)).is_some_and(|p| *p == b'-' || *p == b'+')
            {
                tokens.pop();
            }
            return (tokens, i + 2);
        }
        let start = i;
        let kind = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            TokenKind::Text
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            TokenKind::Number
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            TokenKind::Name
        } else {
            i += if c == b'*' && b.get(i + 1) == Some(&b'*') { 2 } else { 1 };
            TokenKind::Op
        };
        tokens.push(Token { kind, text: &src[start..i.min(src.len())] });
    }
    (tokens, b.len())
}

/// Checks the tokens of one block (`statement`: a `{% %}` block).
fn check_block(tokens: &[Token<'_>], statement: bool) -> Result<(), String> {
    if statement {
        match tokens.first().map(|t| t.text) {
            Some("macro" | "call") => {
                return Err("macros and {% call %} are not available in these templates (their output is built in memory, \
                            outside the limit on rendered text); write the text out"
                    .to_owned());
            }
            Some("filter") => {
                return Err("{% filter %} blocks are not available in these templates (they build their text in memory); \
                            apply the filter to each value instead: {{ value | upper }}"
                    .to_owned());
            }
            Some("set") if !tokens.iter().any(|t| t.kind == TokenKind::Op && t.text == "=") => {
                return Err("a block {% set x %}…{% endset %} builds its text in memory; write {% set x = value %} \
                            and print the parts where they are needed"
                    .to_owned());
            }
            _ => {}
        }
    }
    let number = |t: Option<&Token<'_>>| t.is_some_and(|t| t.kind == TokenKind::Number);
    for (k, t) in tokens.iter().enumerate() {
        let prev = k.checked_sub(1).and_then(|p| tokens.get(p));
        let next = tokens.get(k + 1);
        match (&t.kind, t.text) {
            (TokenKind::Op, "~") => {
                return Err("`~` joins text in memory without a bound on its size: write {{ a }}{{ b }} instead of {{ a ~ b }}".to_owned());
            }
            (TokenKind::Op, "*") => {
                return Err("`*` can repeat text or a list into gigabytes, so templates do not take it: write the text \
                            out, or loop with {% for i in range(n) %}…{% endfor %}"
                    .to_owned());
            }
            (TokenKind::Op, "**") => {
                return Err("`**` is not available in templates (powers and keyword splats can build huge values); \
                            compute the value before it reaches the template"
                    .to_owned());
            }
            (TokenKind::Op, "+") => {
                let signed = next.is_some_and(|n| n.text == "-") && number(tokens.get(k + 2));
                if !number(prev) && !number(next) && !signed {
                    return Err("`+` joins text and lists too, without a bound on their size, so it is only taken next to \
                                a number written out (`x + 1`): write {{ a }}{{ b }} instead of {{ a + b }}, and \
                                `[a, b] | sum` to add two numbers"
                        .to_owned());
                }
            }
            (TokenKind::Name, name) if SIZED.contains(&name) => {
                let called = prev.is_some_and(|p| p.text == "|" || p.text == "is") || next.is_some_and(|n| n.text == "(");
                let keyword = next.is_some_and(|n| n.text == "=");
                if called && !keyword {
                    return Err(format!(
                        "the `{name}` filter takes a size and can build text far larger than its input, so templates do \
                         not take it: write the spacing or the text out"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The most text one `replace`, `join` or `tojson` may build, in bytes: chained (`x | tojson |
/// tojson | …` doubles the backslashes each time) they would otherwise grow without bound.
pub const MAX_FILTER_OUTPUT: usize = MAX_RENDERED_BYTES;

/// Replaces the filters whose output can be much larger than their input (`replace`, `join`,
/// `tojson`) with versions that refuse to build more than [`MAX_FILTER_OUTPUT`] bytes — the
/// runtime half of [`check_template_source`]. `tojson` takes an indent of at most 8.
pub fn bound_growing_filters(env: &mut Environment<'_>) {
    env.add_filter("replace", bounded_replace);
    env.add_filter("join", bounded_join);
    env.add_filter("tojson", bounded_tojson);
}

fn too_large(filter: &str) -> Error {
    invalid(format!("{filter} would build more than {} KiB of text", MAX_FILTER_OUTPUT / 1024))
}

fn bounded_replace(state: &State, value: StringInput<'_>, from: StringInput<'_>, to: StringInput<'_>) -> Result<Value, Error> {
    let (s, pat) = (value.as_str(), from.as_str());
    let hits = if pat.is_empty() { s.chars().count() + 1 } else { s.matches(pat).count() };
    // Escaping the replacement (HTML auto-escape) can make it up to six times longer.
    let grown = hits.saturating_mul(to.as_str().len().saturating_mul(6));
    if s.len().saturating_add(grown) > MAX_FILTER_OUTPUT {
        return Err(too_large("replace"));
    }
    minijinja::filters::replace(state, value, from, to)
}

fn bounded_join(state: &State, value: &Value, joiner: Option<StringInput<'_>>) -> Result<Value, Error> {
    let sep = joiner.as_ref().map_or(0, |j| j.as_str().len() * 6);
    let mut size = 0usize;
    for item in value.try_iter().into_iter().flatten() {
        let mut w = CappedText { len: 0, limit: MAX_FILTER_OUTPUT.saturating_sub(size) };
        if std::fmt::Write::write_fmt(&mut w, format_args!("{item}")).is_err() {
            return Err(too_large("join"));
        }
        size = size.saturating_add(w.len.saturating_mul(6)).saturating_add(sep);
        if size > MAX_FILTER_OUTPUT.saturating_mul(6) {
            return Err(too_large("join"));
        }
    }
    minijinja::filters::join(state, value, joiner)
}

fn bounded_tojson(value: &Value, indent: Option<Value>, args: minijinja::value::Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => args.get::<Option<Value>>("indent")?,
    };
    args.assert_all_used()?;
    if let Some(i) = &indent
        && usize::try_from(i.clone()).is_ok_and(|n| n > 8)
    {
        return Err(invalid("tojson takes an indent of at most 8"));
    }
    let mut probe = Capped { buf: Vec::new(), overflow: false, limit: MAX_FILTER_OUTPUT };
    if serde_json::to_writer(&mut probe, value).is_err() {
        return Err(if probe.overflow { too_large("tojson") } else { invalid("tojson: this value has no JSON form") });
    }
    let kwargs = minijinja::value::Kwargs::from_iter(indent.map(|i| ("indent", i)));
    minijinja::filters::tojson(value, None, kwargs)
}

/// A `fmt::Write` that counts and gives up past `limit` bytes.
struct CappedText {
    len: usize,
    limit: usize,
}

impl std::fmt::Write for CappedText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.len += s.len();
        if self.len > self.limit { Err(std::fmt::Error) } else { Ok(()) }
    }
}

/// A value whose strings may be templates, compiled.
#[derive(Debug, Clone)]
pub(crate) enum Tpl {
    /// No template syntax: kept as written.
    Literal(serde_json::Value),
    /// A text template, registered in the environment under this name (its path).
    Text(String),
    /// Exactly one `{{ expr }}`: its path and the expression's source, evaluated keeping its
    /// type.
    Expr(String, String),
    /// A list whose items are compiled.
    List(Vec<Tpl>),
    /// A map whose values are compiled (keys are kept as written).
    Map(Vec<(String, Tpl)>),
}

/// A variable a template reads (dotted, as far as it can be known statically), and where.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    pub path: String,
    pub var: String,
}

/// The environment every playbook template runs in.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(100);
    bound_growing_filters(&mut env);
    env.add_filter("quote", quote);
    env.add_filter("days_ago", days_ago);
    env.add_filter("timestamp_to_iso8601", timestamp_to_iso8601);
    env.add_filter("iso8601_to_timestamp", iso8601_to_timestamp);
    env.add_filter("time_with_delta", time_with_delta);
    env
}

/// The names the environment provides itself (`range`, `namespace`, …): not context variables.
pub(crate) fn globals(env: &Environment<'_>) -> HashSet<String> {
    env.globals().map(|(name, _)| name.to_owned()).collect()
}

fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// minijinja's `compile_expression`, with a panic inside minijinja turned into an error: the
/// source is untrusted (a playbook's author), and one panic of its lexer was found by fuzzing.
fn compile_expression<'e, 's>(env: &'e Environment<'static>, src: &'s str) -> Result<minijinja::Expression<'e, 's>, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.compile_expression(src)))
        .unwrap_or_else(|_| Err(Error::new(minijinja::ErrorKind::SyntaxError, "the expression cannot be read")))
}

/// The expression inside a string that is exactly one `{{ … }}`.
pub(crate) fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"].iter().any(|t| inner.contains(t));
    (!nested && !inner.trim().is_empty()).then_some(inner)
}

/// Says what a minijinja error is, without the template name it carries.
pub(crate) fn describe(e: &Error) -> String {
    describe_in(e, None)
}

/// Like [`describe`], quoting the part of `source` the error is about (`undefined value at
/// `person.department``).
pub(crate) fn describe_in(e: &Error, source: Option<&str>) -> String {
    let mut s = e.kind().to_string();
    if let Some(detail) = e.detail() {
        s.push_str(": ");
        s.push_str(detail);
    }
    if let Some(part) = source.zip(e.range()).and_then(|(src, range)| quoted_part(src, range)) {
        s.push_str(&format!(" at `{part}`"));
    }
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line} of the template)"));
    }
    s
}

/// The source an error's span covers, widened back to the start of a dotted name (minijinja's
/// span of `a.b.c` starts at `.b`).
fn quoted_part(src: &str, range: std::ops::Range<usize>) -> Option<&str> {
    let head = src.get(..range.start)?;
    let start = head.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.').len();
    src.get(start..range.end).filter(|p| !p.is_empty() && p.len() <= 200)
}

/// Compiles the templates of a definition into one environment.
pub(crate) struct Compiler<'e> {
    pub env: &'e mut Environment<'static>,
}

impl Compiler<'_> {
    /// Compiles a value found at `path`, noting the variables it reads in `uses`. Syntax errors
    /// are returned as `(path, message)`.
    pub fn value(&mut self, v: &serde_json::Value, path: &str, uses: &mut Vec<Use>, errors: &mut Vec<(String, String)>) -> Tpl {
        match v {
            serde_json::Value::String(s) => self.string(s, path, uses, errors),
            serde_json::Value::Array(items) => {
                Tpl::List(items.iter().enumerate().map(|(i, item)| self.value(item, &format!("{path}[{i}]"), uses, errors)).collect())
            }
            serde_json::Value::Object(map) => {
                Tpl::Map(map.iter().map(|(k, item)| (k.clone(), self.value(item, &format!("{path}.{k}"), uses, errors))).collect())
            }
            other => Tpl::Literal(other.clone()),
        }
    }

    /// Compiles one string found at `path`.
    pub fn string(&mut self, s: &str, path: &str, uses: &mut Vec<Use>, errors: &mut Vec<(String, String)>) -> Tpl {
        if !has_syntax(s) {
            return Tpl::Literal(serde_json::Value::String(s.to_owned()));
        }
        if let Err(msg) = check_template_source(s) {
            errors.push((path.to_owned(), msg));
            return Tpl::Literal(serde_json::Value::Null);
        }
        if let Some(expr) = single_expression(s) {
            match compile_expression(self.env, expr) {
                Ok(compiled) => {
                    note(uses, path, compiled.undeclared_variables(true));
                    return Tpl::Expr(path.to_owned(), expr.to_owned());
                }
                Err(e) => {
                    errors.push((path.to_owned(), format!("this expression does not parse: {}", describe(&e))));
                    return Tpl::Literal(serde_json::Value::Null);
                }
            }
        }
        if let Err(e) = self.env.add_template_owned(path.to_owned(), s.to_owned()) {
            errors
                .push((path.to_owned(), format!("this template does not parse: {}; check the {{{{ }}}} and {{% %}} pairs", describe(&e))));
            return Tpl::Literal(serde_json::Value::Null);
        }
        if let Ok(t) = self.env.get_template(path) {
            note(uses, path, t.undeclared_variables(true));
        }
        Tpl::Text(path.to_owned())
    }

    /// Compiles a bare expression (a condition's `if`), noting its variables.
    pub fn expression(&mut self, src: &str, path: &str, uses: &mut Vec<Use>) -> Result<(), String> {
        // A closing marker too: minijinja's expression lexer panics on a stray `}}` (found by the
        // fuzz target `playbook`).
        if has_syntax(src) || ["}}", "%}", "#}"].iter().any(|t| src.contains(t)) {
            return Err("write the condition as a bare expression, without {{ }}: `steps.facts.score > 50`".to_owned());
        }
        check_template_source(&format!("{{{{ {src} }}}}")).map_err(|m| m.trim_start_matches("line 1: ").to_owned())?;
        match compile_expression(self.env, src) {
            Ok(compiled) => {
                note(uses, path, compiled.undeclared_variables(true));
                Ok(())
            }
            Err(e) => Err(format!("this expression does not parse: {}", describe(&e))),
        }
    }
}

fn note(uses: &mut Vec<Use>, path: &str, vars: HashSet<String>) {
    let mut vars: Vec<String> = vars.into_iter().collect();
    vars.sort();
    uses.extend(vars.into_iter().map(|var| Use { path: path.to_owned(), var }));
}

/// Renders a compiled value over `ctx` into JSON.
pub(crate) fn render(env: &Environment<'static>, tpl: &Tpl, ctx: &Value) -> Result<serde_json::Value, String> {
    match tpl {
        Tpl::Literal(v) => Ok(v.clone()),
        Tpl::Text(name) => render_text(env, name, ctx).map(serde_json::Value::String).map_err(|e| format!("{name}: {e}")),
        Tpl::Expr(path, src) => {
            let v = eval(env, src, ctx).map_err(|e| format!("{path}: {e}"))?;
            serde_json::to_value(&v).map_err(|e| format!("{path}: {e}"))
        }
        Tpl::List(items) => items.iter().map(|t| render(env, t, ctx)).collect::<Result<Vec<_>, _>>().map(serde_json::Value::Array),
        Tpl::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (k, t) in entries {
                map.insert(k.clone(), render(env, t, ctx)?);
            }
            Ok(serde_json::Value::Object(map))
        }
    }
}

/// Evaluates an expression. It is reparsed each time: 2.7 µs in a release build against 0.9 µs
/// for rendering a precompiled text template — far below any action's cost.
pub(crate) fn eval(env: &Environment<'static>, src: &str, ctx: &Value) -> Result<Value, String> {
    let expr = compile_expression(env, src).map_err(|e| describe(&e))?;
    let v = expr.eval(ctx).map_err(|e| describe_in(&e, Some(src)))?;
    if v.is_undefined() {
        return Err(format!("`{}` is undefined", src.trim()));
    }
    Ok(v)
}

fn render_text(env: &Environment<'static>, name: &str, ctx: &Value) -> Result<String, String> {
    let t = env.get_template(name).map_err(|e| describe(&e))?;
    let mut out = Capped { buf: Vec::new(), overflow: false, limit: MAX_RENDERED_BYTES };
    match t.render_captured_to(ctx, &mut out) {
        Ok(_) => String::from_utf8(out.buf).map_err(|e| e.to_string()),
        Err(_) if out.overflow => Err(format!("the rendered text is longer than {} KiB", MAX_RENDERED_BYTES / 1024)),
        Err(e) => Err(describe_in(&e, Some(t.source()))),
    }
}

/// A writer that refuses to grow past `limit` bytes.
struct Capped {
    buf: Vec<u8>,
    overflow: bool,
    limit: usize,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.overflow = true;
            return Err(io::Error::other("rendered text too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `quote`: a pipe-language string literal (`"` + escaped + `"`).
fn quote(v: Value) -> Result<String, Error> {
    if v.is_undefined() || v.is_none() {
        return Err(invalid("quote got nothing (none): check the value exists before quoting it"));
    }
    let text = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    Ok(serde_json::Value::String(text).to_string())
}

fn now_of(state: &State) -> Result<DateTime<Utc>, Error> {
    let now = state.lookup("now").ok_or_else(|| invalid("`now` is not set"))?;
    now.as_str().and_then(parse_time).ok_or_else(|| invalid("`now` is not an RFC 3339 time"))
}

/// A point in time from a string (RFC 3339 or a date) or a number (Unix seconds).
fn time_of(v: &Value, filter: &str) -> Result<DateTime<Utc>, Error> {
    if let Some(s) = v.as_str() {
        return parse_time(s).ok_or_else(|| invalid(format!("{filter}: \"{s}\" is neither RFC 3339 nor a date like 2025-01-31")));
    }
    let secs = f64::try_from(v.clone()).map_err(|_| invalid(format!("{filter} takes a time or a Unix timestamp, not {}", v.kind())))?;
    DateTime::from_timestamp_millis((secs * 1000.0) as i64).ok_or_else(|| invalid(format!("{filter}: {secs} is out of range")))
}

/// `days_ago`: whole days between a date or time and `now` (none stays none).
fn days_ago(state: &State, v: Value) -> Result<Value, Error> {
    if v.is_none() {
        return Ok(Value::from(()));
    }
    let at = time_of(&v, "days_ago")?;
    Ok(Value::from((now_of(state)? - at).num_days()))
}

/// `timestamp_to_iso8601`: Unix seconds → RFC 3339.
fn timestamp_to_iso8601(v: Value) -> Result<String, Error> {
    let secs = match v.as_str() {
        Some(s) => s.trim().parse::<f64>().map_err(|_| invalid(format!("timestamp_to_iso8601: \"{s}\" is not a number")))?,
        None => f64::try_from(v.clone()).map_err(|_| invalid(format!("timestamp_to_iso8601 takes a number, not {}", v.kind())))?,
    };
    let at = DateTime::from_timestamp_millis((secs * 1000.0) as i64).ok_or_else(|| invalid("timestamp_to_iso8601: out of range"))?;
    Ok(rfc3339(at))
}

/// `iso8601_to_timestamp`: RFC 3339 (or a date) → Unix seconds.
fn iso8601_to_timestamp(v: Value) -> Result<i64, Error> {
    let s = v.as_str().ok_or_else(|| invalid(format!("iso8601_to_timestamp takes a string, not {}", v.kind())))?;
    parse_time(s).map(|at| at.timestamp()).ok_or_else(|| invalid(format!("iso8601_to_timestamp: \"{s}\" is not RFC 3339")))
}

/// `time_with_delta(days=…, hours=…, minutes=…, seconds=…, weeks=…)`: a time (none or
/// `"now"` = now) moved by the delta, as RFC 3339.
fn time_with_delta(state: &State, v: Value, kwargs: Kwargs) -> Result<String, Error> {
    let base = if v.is_none() || v.as_str() == Some("now") { now_of(state)? } else { time_of(&v, "time_with_delta")? };
    let mut delta_secs: i64 = 0;
    for (unit, secs) in [("weeks", 604_800i64), ("days", 86_400), ("hours", 3_600), ("minutes", 60), ("seconds", 1)] {
        let n: Option<i64> = kwargs.get(unit)?;
        delta_secs = n.and_then(|n| n.checked_mul(secs)).and_then(|d| delta_secs.checked_add(d)).unwrap_or(delta_secs);
    }
    kwargs.assert_all_used()?;
    let at = chrono::Duration::try_seconds(delta_secs).and_then(|d| base.checked_add_signed(d));
    at.map(rfc3339).ok_or_else(|| invalid("time_with_delta: out of range"))
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
