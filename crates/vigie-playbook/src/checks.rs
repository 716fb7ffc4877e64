//! The checks on single parts of a definition — the name, the trigger, each step's own keys —
//! each problem a path and a sentence that teaches the fix. Cross-step checks (graph,
//! variables) live in `compile.rs`.
use crate::compile::{Schedule, Trigger};
use crate::model::{Definition, StepDef, StepKind, StepSpec, TriggerDef, TriggerKind};
use crate::time::{parse_duration, parse_time};
use crate::{MAX_QUERY_LIMIT, PlaybookError};
use serde_json::Value;
use std::time::Duration;

/// The severities of alerts and cases.
pub(crate) const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];
/// The statuses of an alert.
pub(crate) const ALERT_STATUSES: &[&str] = &["pending", "acknowledged", "ongoing", "closed", "rejected"];
/// The kinds of indicator `add_ioc` records.
pub(crate) const IOC_TYPES: &[&str] = &["platform", "domain", "url", "ip", "hash"];
/// The HTTP methods `http_request` sends.
pub(crate) const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
/// The longest step timeout.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The most retries of a step.
pub(crate) const MAX_RETRIES: u32 = 5;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The problems found so far.
#[derive(Default)]
pub(crate) struct Problems(pub Vec<PlaybookError>);

impl Problems {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(PlaybookError::new(path, message));
    }
}

/// "a" or "an" before a word.
pub(crate) fn a(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// `[a-z][a-z0-9_]{0,39}`.
pub(crate) fn is_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn one_of(path: &str, value: &str, allowed: &[&str], what: &str, p: &mut Problems) {
    if !is_template(value) && !allowed.contains(&value) {
        p.add(path, format!("\"{value}\" is not {what}; use one of {}", allowed.join(", ")));
    }
}

pub(crate) fn name_and_vars(def: &Definition, p: &mut Problems) {
    let len = def.name.trim().chars().count();
    if len == 0 || len > 100 {
        p.add("name", format!("a playbook's name has 1 to 100 characters; this one has {len}"));
    }
    if def.description.as_ref().is_some_and(|d| d.chars().count() > 4000) {
        p.add("description", "the description has at most 4000 characters");
    }
    for k in def.vars.keys() {
        if !is_name(k) {
            p.add(format!("vars.{k}"), format!("\"{k}\" cannot be read as `vars.{k}`: use letters, digits and _"));
        }
    }
}

/// Checks the trigger: the keys its type takes, and their values.
pub(crate) fn trigger(t: &TriggerDef, p: &mut Problems) -> Option<Trigger> {
    let kind = t.kind.as_str();
    let keys: [(&str, bool, &[TriggerKind]); 5] = [
        ("rules", t.rules.is_some(), &[TriggerKind::AlertCreated, TriggerKind::AlertStatusChanged]),
        ("severities", t.severities.is_some(), &[TriggerKind::AlertCreated]),
        ("to", t.to.is_some(), &[TriggerKind::AlertStatusChanged]),
        ("query", t.query.is_some(), &[TriggerKind::Event]),
        ("cron", t.cron.is_some(), &[TriggerKind::Schedule]),
    ];
    let before = p.0.len();
    for (key, present, kinds) in keys {
        if present && !kinds.contains(&t.kind) {
            let owners: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            p.add(
                format!("trigger.{key}"),
                format!("{} {kind} trigger has no `{key}` (it belongs to {}); remove it", a(kind), owners.join(" and ")),
            );
        }
    }
    for (i, s) in t.severities.iter().flatten().enumerate() {
        one_of(&format!("trigger.severities[{i}]"), s, SEVERITIES, "a severity", p);
    }
    for (i, s) in t.to.iter().flatten().enumerate() {
        one_of(&format!("trigger.to[{i}]"), s, ALERT_STATUSES, "an alert status", p);
    }
    let trigger = match t.kind {
        TriggerKind::AlertCreated => {
            Trigger::AlertCreated { rules: t.rules.clone().unwrap_or_default(), severities: t.severities.clone().unwrap_or_default() }
        }
        TriggerKind::AlertStatusChanged => {
            Trigger::AlertStatusChanged { rules: t.rules.clone().unwrap_or_default(), to: t.to.clone().unwrap_or_default() }
        }
        TriggerKind::CaseCreated => Trigger::CaseCreated,
        TriggerKind::Manual => Trigger::Manual,
        TriggerKind::Event => match &t.query {
            None => {
                p.add(
                    "trigger",
                    "an event trigger needs `query`: a pipe-language filter like 'event_type == \"interaction.policy_violated\"'",
                );
                return None;
            }
            Some(q) => match vigie_query::parse(q) {
                Ok(parsed) if !parsed.stages.is_empty() => {
                    p.add("trigger.query", "an event trigger takes a filter only; remove the `| …` stages");
                    return None;
                }
                Ok(_) => Trigger::Event { query: q.clone() },
                Err(e) => {
                    p.add("trigger.query", format!("this query does not parse: {e}"));
                    return None;
                }
            },
        },
        TriggerKind::Schedule => match &t.cron {
            None => {
                p.add("trigger", "a schedule trigger needs `cron`, like \"0 8 * * 1-5\" (minute hour day month weekday, UTC)");
                return None;
            }
            Some(c) => match Schedule::parse(c) {
                Ok(s) => Trigger::Schedule(s),
                Err(msg) => {
                    p.add("trigger.cron", format!("{msg}; write five fields: minute hour day month weekday, like \"0 8 * * 1-5\""));
                    return None;
                }
            },
        },
    };
    (p.0.len() == before).then_some(trigger)
}

/// Reports a step whose own keys do not deserialize.
pub(crate) fn spec_problem(path: &str, kind: StepKind, serde_msg: &str, p: &mut Problems) {
    let kind = kind.as_str();
    if let Some(rest) = serde_msg.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, ")
    {
        let expected = expected.replace('`', "");
        p.add(format!("{path}.{field}"), format!("`{field}` is not a key of {} {kind} step ({expected}, and the common id, type, next, timeout, retries, retry_delay, on_error)", a(kind)));
    } else if let Some(rest) = serde_msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        p.add(path, format!("{} {kind} step needs `{field}`", a(kind)));
    } else {
        p.add(path, format!("in this {kind} step: {serde_msg}"));
    }
}

/// Checks the common keys; returns timeout, retries and retry delay.
pub(crate) fn common(path: &str, s: &StepDef, p: &mut Problems) -> (Duration, u32, Duration) {
    let mut duration = |key: &str, text: &Option<String>, default: Duration| match text.as_deref().map(parse_duration) {
        None => default,
        Some(Ok(d)) if !d.is_zero() && d <= MAX_TIMEOUT => d,
        Some(Ok(_)) => {
            p.add(format!("{path}.{key}"), format!("`{key}` is more than 0 and at most 10m"));
            default
        }
        Some(Err(msg)) => {
            p.add(format!("{path}.{key}"), msg);
            default
        }
    };
    let timeout = duration("timeout", &s.timeout, DEFAULT_TIMEOUT);
    let retry_delay = duration("retry_delay", &s.retry_delay, DEFAULT_RETRY_DELAY);
    let retries = s.retries.unwrap_or(0);
    if retries > MAX_RETRIES {
        p.add(format!("{path}.retries"), format!("a step is retried at most {MAX_RETRIES} times"));
    }
    (timeout, retries.min(MAX_RETRIES), retry_delay)
}

fn literal_duration(path: String, text: &Option<String>, p: &mut Problems) {
    if let Some(t) = text
        && !is_template(t)
        && let Err(msg) = parse_duration(t)
    {
        p.add(path, msg);
    }
}

fn string_or_list(path: String, v: &Option<Value>, what: &str, p: &mut Problems) {
    match v {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !matches!(item, Value::String(_)) {
                    p.add(format!("{path}[{i}]"), format!("each of {what} is a string (a template)"));
                }
            }
        }
        Some(_) => p.add(path, format!("{what}: write a list of strings, or one template giving a list")),
    }
}

/// Checks a step's own keys.
pub(crate) fn step_spec(path: &str, spec: &StepSpec, p: &mut Problems) {
    let at = |key: &str| format!("{path}.{key}");
    match spec {
        StepSpec::Extract(x) => {
            if x.set.is_empty() && x.person.is_none() {
                p.add(path, "an extract step needs `set` (name: template) or `person` (a user id)");
            }
            for k in x.set.keys() {
                if !is_name(k) {
                    p.add(at(&format!("set.{k}")), format!("\"{k}\" cannot be read as `steps.<id>.{k}`: use letters, digits and _"));
                }
            }
            if x.person.is_some() && x.set.contains_key("person") {
                p.add(at("set.person"), "`person` is the output of the `person` key; call this value something else");
            }
        }
        StepSpec::QueryEvents(q) => {
            if q.query.trim().is_empty() {
                p.add(at("query"), "the query is empty; write a pipe-language filter");
            } else if !is_template(&q.query)
                && let Err(e) = vigie_query::parse(&q.query)
            {
                p.add(at("query"), format!("this query does not parse: {e}"));
            }
            if q.range.is_some() && (q.from.is_some() || q.to.is_some()) {
                p.add(at("range"), "give either `range` (like 7d) or `from`/`to`, not both");
            }
            if q.to.is_some() && q.from.is_none() {
                p.add(at("to"), "`to` needs `from`; or use `range`");
            }
            literal_duration(at("range"), &q.range, p);
            for (key, v) in [("from", &q.from), ("to", &q.to)] {
                if let Some(t) = v
                    && !is_template(t)
                    && parse_time(t).is_none()
                {
                    p.add(at(key), format!("\"{t}\" is not an RFC 3339 time like 2025-01-31T08:00:00Z"));
                }
            }
            match &q.limit {
                None | Some(Value::String(_)) => {}
                Some(v) if v.as_u64().is_some_and(|n| (1..=MAX_QUERY_LIMIT).contains(&n)) => {}
                Some(_) => p.add(at("limit"), format!("`limit` is a whole number from 1 to {MAX_QUERY_LIMIT}")),
            }
        }
        StepSpec::Condition(_) => {}
        StepSpec::CreateCase(c) => {
            if let Some(s) = &c.severity {
                one_of(&at("severity"), s, SEVERITIES, "a severity", p);
            }
            string_or_list(at("tags"), &c.tags, "tags", p);
            string_or_list(at("alerts"), &c.alerts, "alerts", p);
            string_or_list(at("events"), &c.events, "events", p);
        }
        StepSpec::UpdateAlert(u) => {
            if u.status.is_none() && u.comment.is_none() && u.assignee.is_none() {
                p.add(path, "an update_alert step needs `status`, `comment` or `assignee`");
            }
            if let Some(s) = &u.status {
                one_of(&at("status"), s, ALERT_STATUSES, "an alert status", p);
            }
        }
        StepSpec::Notify(n) => {
            if n.channel.is_none() && n.to.is_none() {
                p.add(path, "a notify step needs `channel` (a channel's name) or `to` (e-mail addresses)");
            }
            string_or_list(at("to"), &n.to, "to", p);
        }
        StepSpec::CreateTask(t) => {
            if t.title.trim().is_empty() {
                p.add(at("title"), "a task needs a title");
            }
            if let Some(d) = &t.due
                && !is_template(d)
                && parse_time(d).is_none()
                && parse_duration(d).is_err()
            {
                p.add(at("due"), format!("\"{d}\" is neither a duration from now (like 14d) nor a date (2025-01-31) or RFC 3339 time"));
            }
            string_or_list(at("invite"), &t.invite, "invite", p);
        }
        StepSpec::HttpRequest(h) => {
            if let Some(m) = &h.method {
                one_of(&at("method"), m, METHODS, "an HTTP method", p);
            }
            let web = h.url.starts_with("http://") || h.url.starts_with("https://");
            if !is_template(&h.url) && !web {
                p.add(at("url"), format!("\"{}\" is not an http:// or https:// URL", h.url));
            }
            for (k, v) in &h.headers {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                    p.add(at(&format!("headers.{k}")), format!("\"{k}\" is not a header name: use letters, digits, - and _"));
                }
                if !v.is_string() {
                    p.add(at(&format!("headers.{k}")), "a header value is a string (a template)");
                }
            }
        }
        StepSpec::AddIoc(i) => {
            one_of(&at("ioc_type"), &i.ioc_type, IOC_TYPES, "an indicator type", p);
            literal_duration(at("valid_for"), &i.valid_for, p);
            if i.value.trim().is_empty() {
                p.add(at("value"), "an indicator needs a value");
            }
        }
    }
}
