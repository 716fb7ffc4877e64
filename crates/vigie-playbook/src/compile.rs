//! YAML → [`Playbook`]: parse, check everything (reporting every problem at once, each with its
//! path and, when it can be found, its line), compile the templates and build the step graph.
use crate::checks::{self, Problems};
use crate::graph::{Graph, Next};
use crate::locate::locate;
use crate::model::{Definition, OnError, StepKind, StepSpec, TriggerKind};
use crate::template::{self, Compiler, Tpl, Use};
use crate::{MAX_STEPS, MAX_YAML_BYTES, PlaybookError};
use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// What starts a run, with its filters.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// A new alert.
    AlertCreated {
        /// Rule names or ids; empty = any rule.
        rules: Vec<String>,
        /// Severities; empty = any.
        severities: Vec<String>,
    },
    /// An alert moved to another status.
    AlertStatusChanged {
        /// Rule names or ids; empty = any rule.
        rules: Vec<String>,
        /// The statuses moved to; empty = any.
        to: Vec<String>,
    },
    /// A new case.
    CaseCreated,
    /// An event matching a pipe query.
    Event {
        /// The pipe-language filter (it parses, and has no stages).
        query: String,
    },
    /// A cron schedule, in UTC.
    Schedule(Schedule),
    /// Started by hand.
    Manual,
}

impl Trigger {
    /// The trigger's type as written in YAML.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::AlertCreated { .. } => TriggerKind::AlertCreated,
            Trigger::AlertStatusChanged { .. } => TriggerKind::AlertStatusChanged,
            Trigger::CaseCreated => TriggerKind::CaseCreated,
            Trigger::Event { .. } => TriggerKind::Event,
            Trigger::Schedule(_) => TriggerKind::Schedule,
            Trigger::Manual => TriggerKind::Manual,
        }
    }
}

/// A parsed cron schedule.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// The expression as written.
    pub cron: String,
    #[serde(skip)]
    parsed: croner::Cron,
}

impl Schedule {
    /// Parses a cron expression (five fields, UTC).
    pub fn parse(cron: &str) -> Result<Schedule, String> {
        let parsed = croner::Cron::new(cron).parse().map_err(|e| format!("\"{cron}\" is not a cron expression: {e}"))?;
        Ok(Schedule { cron: cron.to_owned(), parsed })
    }

    /// The first time strictly after `after` the schedule fires, if any.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parsed.find_next_occurrence(&after, false).ok()
    }
}

/// One compiled step: where it goes and how it is run; its inputs are compiled templates.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's id.
    pub id: String,
    /// Its kind.
    pub kind: StepKind,
    /// Where the run goes after it (for a condition: when the expression is false).
    pub next: Next,
    /// A condition's target when the expression is true.
    pub then: Option<Next>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Extra attempts after a retryable failure.
    pub retries: u32,
    /// The wait between attempts.
    pub retry_delay: Duration,
    /// What a failure does to the run.
    pub on_error: OnError,
    /// The step's own keys, compiled (a map).
    pub(crate) inputs: Tpl,
    /// A condition's expression.
    pub(crate) condition: Option<String>,
}

/// A checked playbook, ready to run. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// What starts a run.
    pub trigger: Trigger,
    /// The constants (`vars.*`).
    pub vars: Map<String, Value>,
    /// The steps, the first runs first.
    pub steps: Vec<Step>,
    definition: Arc<Definition>,
    pub(crate) env: Arc<Environment<'static>>,
}

impl Playbook {
    /// The definition as written (after YAML parsing).
    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// The playbook for display: the definition plus the graph's edges
    /// (`{"from", "to", "when"}`, `to` = null for the end, `when` = then/else for conditions).
    pub fn to_json(&self) -> Value {
        let target = |n: Next| match n {
            Next::Step(i) => self.steps.get(i).map(|s| Value::String(s.id.clone())).unwrap_or(Value::Null),
            Next::End => Value::Null,
        };
        let mut edges = Vec::new();
        for s in &self.steps {
            if let Some(then) = s.then {
                edges.push(json!({"from": s.id, "to": target(then), "when": "then"}));
                edges.push(json!({"from": s.id, "to": target(s.next), "when": "else"}));
            } else {
                edges.push(json!({"from": s.id, "to": target(s.next)}));
            }
        }
        let mut out = serde_json::to_value(&*self.definition).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut out {
            map.insert("edges".into(), Value::Array(edges));
        }
        out
    }
}

impl Serialize for Playbook {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// Turns a yaml_serde error into a problem: `steps[0]: message at line 3 column 5`.
fn yaml_problem(e: &yaml_serde::Error) -> PlaybookError {
    let text = e.to_string();
    let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m);
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') && p != "." => (p, m),
        _ => ("", text),
    };
    let location = e.location();
    PlaybookError {
        path: path.to_owned(),
        message: message.to_owned(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
    }
}

/// Compiles a playbook definition, or says everything wrong with it.
pub fn compile(yaml: &str) -> Result<Playbook, Vec<PlaybookError>> {
    if yaml.len() > MAX_YAML_BYTES {
        let msg = format!("the definition is {} KiB; a playbook has at most {} KiB", yaml.len() / 1024, MAX_YAML_BYTES / 1024);
        return Err(vec![PlaybookError::new("", msg)]);
    }
    let def: Definition = yaml_serde::from_str(yaml).map_err(|e| vec![yaml_problem(&e)])?;
    let mut p = Problems::default();
    let compiled = build(&def, &mut p);
    if p.0.is_empty()
        && let Some((trigger, steps, env)) = compiled
    {
        return Ok(Playbook {
            name: def.name.trim().to_owned(),
            description: def.description.clone(),
            trigger,
            vars: def.vars.clone(),
            steps,
            definition: Arc::new(def),
            env: Arc::new(env),
        });
    }
    let mut errors = p.0;
    for e in &mut errors {
        if e.line.is_none()
            && let Some((line, column)) = locate(yaml, &e.path)
        {
            (e.line, e.column) = (Some(line), Some(column));
        }
    }
    errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    Err(errors)
}

fn build(def: &Definition, p: &mut Problems) -> Option<(Trigger, Vec<Step>, Environment<'static>)> {
    checks::name_and_vars(def, p);
    let trigger = checks::trigger(&def.trigger, p);
    if def.steps.is_empty() || def.steps.len() > MAX_STEPS {
        p.add("steps", format!("a playbook has 1 to {MAX_STEPS} steps; it has {}", def.steps.len()));
        return None;
    }
    let index = step_index(def, p);
    let resolve = |target: &str, path: String, p: &mut Problems| -> Next {
        if target == "end" {
            return Next::End;
        }
        index.get(target).map(|&i| Next::Step(i)).unwrap_or_else(|| {
            let known: Vec<&str> = def.steps.iter().map(|s| s.id.as_str()).collect();
            p.add(path, format!("there is no step `{target}`; name one of {} or `end`", known.join(", ")));
            Next::End
        })
    };

    let mut env = template::environment();
    let globals = template::globals(&env);
    let mut steps = Vec::with_capacity(def.steps.len());
    let mut uses: Vec<Use> = Vec::new();
    let mut extract_outputs: HashMap<usize, HashSet<String>> = HashMap::new();
    for (i, s) in def.steps.iter().enumerate() {
        let path = format!("steps[{i}]");
        let following = if i + 1 < def.steps.len() { Next::Step(i + 1) } else { Next::End };
        let mut next = s.next.as_deref().map_or(following, |t| resolve(t, format!("{path}.next"), p));
        let mut then = None;
        let spec = match StepSpec::parse(s.kind, &s.fields) {
            Ok(spec) => Some(spec),
            Err(e) => {
                checks::spec_problem(&path, s.kind, &e.to_string(), p);
                None
            }
        };
        let mut condition = None;
        let mut fields = s.fields.clone();
        if s.kind == StepKind::Condition {
            if s.next.is_some() {
                p.add(format!("{path}.next"), "a condition goes on through `then` and `else`; remove `next`");
            }
            if let Some(t) = fields.remove("then").as_ref().and_then(Value::as_str) {
                then = Some(resolve(t, format!("{path}.then"), p));
            }
            if let Some(t) = fields.remove("else").as_ref().and_then(Value::as_str) {
                next = resolve(t, format!("{path}.else"), p);
            }
            if let Some(src) = fields.remove("if").as_ref().and_then(Value::as_str) {
                match (Compiler { env: &mut env }).expression(src, &format!("{path}.if"), &mut uses) {
                    Ok(()) => condition = Some(src.to_owned()),
                    Err(msg) => p.add(format!("{path}.if"), msg),
                }
            }
        }
        if let Some(spec) = &spec {
            checks::step_spec(&path, spec, p);
            if let StepSpec::Extract(x) = spec {
                let mut out: HashSet<String> = x.set.keys().cloned().collect();
                if x.person.is_some() {
                    out.insert("person".into());
                }
                extract_outputs.insert(i, out);
            }
        }
        let mut syntax = Vec::new();
        let inputs = (Compiler { env: &mut env }).value(&Value::Object(fields), &path, &mut uses, &mut syntax);
        for (at, msg) in syntax {
            p.add(at, msg);
        }
        let (timeout, retries, retry_delay) = checks::common(&path, s, p);
        steps.push(Step {
            id: s.id.clone(),
            kind: s.kind,
            next,
            then,
            timeout,
            retries,
            retry_delay,
            on_error: s.on_error.unwrap_or_default(),
            inputs,
            condition,
        });
    }

    let graph = Graph {
        succ: steps.iter().map(|s| [s.then, Some(s.next)].into_iter().flatten().filter_map(step_of).collect()).collect(),
        is_condition: steps.iter().map(|s| s.kind == StepKind::Condition).collect(),
    };
    let has_cycle = check_graph(&graph, &steps, p);
    let cx = VarCheck { def, steps: &steps, index: &index, graph: &graph, extract_outputs: &extract_outputs, globals: &globals };
    let dominators = if has_cycle { None } else { Some(graph.dominators()) };
    for u in &uses {
        cx.check(u, dominators.as_deref(), p);
    }
    Some((trigger?, steps, env))
}

fn step_of(n: Next) -> Option<usize> {
    match n {
        Next::Step(i) => Some(i),
        Next::End => None,
    }
}

fn step_index<'d>(def: &'d Definition, p: &mut Problems) -> HashMap<&'d str, usize> {
    let mut index = HashMap::new();
    for (i, s) in def.steps.iter().enumerate() {
        let path = format!("steps[{i}].id");
        if !checks::is_step_id(&s.id) {
            p.add(&path, format!("\"{}\" is not a step id: use a lowercase letter then up to 39 lowercase letters, digits or _", s.id));
        } else if s.id == "end" {
            p.add(&path, "`end` means the end of the run; call the step something else");
        } else if let Some(first) = index.insert(s.id.as_str(), i) {
            index.insert(s.id.as_str(), first);
            p.add(&path, format!("the id `{}` is already used by steps[{first}]; step ids are unique", s.id));
        }
    }
    index
}

/// Reports a cycle (and returns true) and the steps no path reaches.
fn check_graph(graph: &Graph, steps: &[Step], p: &mut Problems) -> bool {
    let cycle = graph.find_cycle();
    if let Some(cycle) = &cycle {
        let mut names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
        names.push(names[0]);
        let last = cycle[cycle.len() - 1];
        p.add(
            format!("steps[{last}]"),
            format!(
                "these steps form a cycle: {}; a run goes through each step at most once, so end one of them with `next: end` or point it further down",
                names.join(" → ")
            ),
        );
    }
    let reachable = graph.reachable(0, None);
    for (i, s) in steps.iter().enumerate() {
        if !Graph::contains(reachable, i) {
            p.add(
                format!("steps[{i}]"),
                format!("step `{}` is never reached: no `next`, `then` or `else` leads to it; point a step at it or remove it", s.id),
            );
        }
    }
    cycle.is_some()
}

/// The fields each trigger type gives its runs (`trigger.<field>`).
pub(crate) fn trigger_fields(kind: TriggerKind) -> &'static [&'static str] {
    match kind {
        TriggerKind::AlertCreated => &["alert", "rule", "event", "person"],
        TriggerKind::AlertStatusChanged => &["alert", "rule", "event", "person", "change"],
        TriggerKind::CaseCreated => &["case", "person"],
        TriggerKind::Event => &["event", "person"],
        TriggerKind::Schedule => &["scheduled_at"],
        TriggerKind::Manual => &["input", "alert", "case", "event", "person"],
    }
}

const ROOTS: &[&str] = &["trigger", "steps", "vars", "run", "now"];
const RUN_FIELDS: &[&str] = &["id", "playbook", "dry_run", "started_at"];

/// Checks the variables templates read.
struct VarCheck<'a> {
    def: &'a Definition,
    steps: &'a [Step],
    index: &'a HashMap<&'a str, usize>,
    graph: &'a Graph,
    extract_outputs: &'a HashMap<usize, HashSet<String>>,
    globals: &'a HashSet<String>,
}

impl VarCheck<'_> {
    fn check(&self, u: &Use, dominators: Option<&[u128]>, p: &mut Problems) {
        let mut parts = u.var.split('.');
        let root = parts.next().unwrap_or_default();
        let field = parts.next();
        match (root, field) {
            (r, _) if self.globals.contains(r) => {}
            (r, _) if !ROOTS.contains(&r) => {
                let hint = if trigger_fields(self.def.trigger.kind).contains(&r) {
                    format!(" (did you mean `trigger.{r}`?)")
                } else {
                    String::new()
                };
                p.add(&u.path, format!("`{r}` is not a variable here{hint}; templates read trigger, steps, vars, run and now"));
            }
            ("trigger", Some(f)) => {
                let fields = trigger_fields(self.def.trigger.kind);
                if !fields.contains(&f) {
                    let kind = self.def.trigger.kind.as_str();
                    p.add(
                        &u.path,
                        format!("`trigger.{f}` is not given by {} {kind} trigger; it gives {}", checks::a(kind), fields.join(", ")),
                    );
                }
            }
            ("vars", Some(f)) if !self.def.vars.contains_key(f) => {
                p.add(&u.path, format!("`vars.{f}` is not declared; add `{f}` under `vars:` or fix the name"));
            }
            ("run", Some(f)) if !RUN_FIELDS.contains(&f) => {
                p.add(&u.path, format!("`run.{f}` does not exist; a run gives {}", RUN_FIELDS.join(", ")));
            }
            ("steps", Some(x)) => self.check_step_use(u, x, parts.next(), dominators, p),
            _ => {}
        }
    }

    fn check_step_use(&self, u: &Use, x: &str, field: Option<&str>, dominators: Option<&[u128]>, p: &mut Problems) {
        let Some(&xi) = self.index.get(x) else {
            p.add(
                &u.path,
                format!(
                    "`steps.{x}` names no step; step ids are {}",
                    self.def.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
            return;
        };
        let Some(si) = user_step(&u.path) else { return };
        if xi == si {
            p.add(&u.path, format!("step `{x}` cannot read its own output; use the value directly"));
            return;
        }
        if let (Some(f), Some(outputs)) = (field, self.extract_outputs.get(&xi))
            && !outputs.contains(f)
        {
            let mut known: Vec<&str> = outputs.iter().map(String::as_str).collect();
            known.sort();
            p.add(&u.path, format!("`steps.{x}.{f}` is not set by step `{x}`; it sets {}", known.join(", ")));
        }
        let Some(dom) = dominators else { return };
        if dom[si] == 0 || Graph::contains(dom[si], xi) {
            return;
        }
        let user = &self.steps[si].id;
        let msg = if self.graph.leads_to(si, xi) {
            format!("`steps.{x}` is read here but step `{x}` runs after step `{user}`; move `{x}` before it")
        } else if let Some(c) = self.graph.condition_skipping(xi, si) {
            let c = &self.steps[c].id;
            format!(
                "`steps.{x}` is read here but step `{x}` may not have run: condition `{c}` can lead to step `{user}` without it; read it only on the branch where `{x}` runs, or move `{x}` before `{c}`"
            )
        } else {
            format!("`steps.{x}` is read here but step `{x}` does not run before step `{user}` on every path; move `{x}` earlier")
        };
        p.add(&u.path, msg);
    }
}

/// The step index in a path like `steps[3].to[0]`.
fn user_step(path: &str) -> Option<usize> {
    path.strip_prefix("steps[")?.split(']').next()?.parse().ok()
}

#[cfg(test)]
#[path = "compile_tests.rs"]
pub(crate) mod tests;
