//! Case templates: data (a title pattern, a description, severity, priority, tags and default
//! tasks) rendered with minijinja over a context such as the alert context; checked when saved
//! (syntax errors refused with their position); the default template "AI Platform Violation"
//! (`content/case_templates.json`) installed in every space.
use super::model::{CaseTemplate, PRIORITIES, SEVERITIES, TEMPLATE_COLS, TemplateSpec, TemplateTask, one_of, template_from_row};
use super::store::check_tags;
use minijinja::{Environment, UndefinedBehavior};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::Value;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::http::FieldError;
use vigie_core::ids::IdGen;

/// The default case templates (ARCHITECTURE.md, "Default content" 4): a JSON array of templates
/// as `POST /api/v1/case-templates` takes them, each with a `key` kept in `builtin`.
pub const DEFAULT_TEMPLATES: &str = include_str!("../../../../content/case_templates.json");

/// The longest template name (characters).
pub const MAX_NAME: usize = 100;
/// The longest title pattern (bytes).
pub const MAX_PATTERN: usize = 1_000;
/// The longest description, as a template and once rendered (bytes).
pub const MAX_DESCRIPTION: usize = 64 * 1024;
/// The most tasks a template adds.
pub const MAX_TEMPLATE_TASKS: usize = 50;
/// The work one rendering may do (minijinja's fuel: roughly its instructions), so a template
/// looping over itself cannot hold the writer; the default template takes about 1,000.
const FUEL: u64 = 50_000;

/// The environment templates render in, built once (it holds no per-render state: minijinja
/// keeps fuel and the allocation budget per rendering).
fn env() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(build_env)
}

/// The environment templates render in: lenient (a missing value, or an attribute of one, is
/// empty; `none` prints as nothing), with bounded work.
fn build_env() -> Environment<'static> {
    // The allowlisted, capped filters shared by every tenant template.
    let mut env = vigie_playbook::safe_environment();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_formatter(
        |out, state, value| {
            if value.is_none() || value.is_undefined() { Ok(()) } else { minijinja::escape_formatter(out, state, value) }
        },
    );
    env
}

/// Where a template error is, as `line L, column C: …` when minijinja gives it.
fn located(source: &str, e: &minijinja::Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match (e.line(), e.range()) {
        (Some(line), Some(range)) => {
            let start = range.start.min(source.len());
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            let column = source.get(line_start..start).map_or(1, |s| s.chars().count() + 1);
            format!("line {line}, column {column}: {what}")
        }
        (Some(line), None) => format!("line {line}: {what}"),
        _ => what,
    }
}

/// Checks a template: what could allocate without bound
/// ([`vigie_playbook::check_template_source`]), its syntax, then a rendering over an empty
/// context (into the capped writer) for the mistakes that only show then (an unknown filter,
/// test or function, a wrong argument count, a loop that never ends); what fails only for want
/// of values (arithmetic on a missing one) is the context's business, not the template's. The
/// problem with its position, to show the person who wrote it.
pub fn check(source: &str) -> Result<(), String> {
    use minijinja::ErrorKind::*;
    vigie_playbook::check_template_source(source)?;
    let env = env();
    let t = env.template_from_str(source).map_err(|e| located(source, &e))?;
    let mut w = Capped { out: Vec::new(), cap: MAX_DESCRIPTION, cut: false };
    match t.render_captured_to(minijinja::context! {}, &mut w) {
        Err(_) if w.cut => Ok(()),
        Err(e) if matches!(e.kind(), UnknownFilter | UnknownTest | UnknownFunction | TooManyArguments | OutOfFuel | BadEscape) => {
            Err(located(source, &e))
        }
        _ => Ok(()),
    }
}

/// A writer keeping the first `cap` bytes; past them it fails, which stops the rendering.
struct Capped {
    out: Vec<u8>,
    cap: usize,
    cut: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.out.len());
        self.out.extend_from_slice(&buf[..buf.len().min(room)]);
        if buf.len() > room {
            self.cut = true;
            return Err(std::io::Error::other("the rendered text is too long"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `source` over `context` (an object; anything else renders as an empty context), at
/// most `cap` bytes (a longer output is cut at a character boundary and ends with `…`).
pub fn render(source: &str, context: &Value, cap: usize) -> Result<String, String> {
    vigie_playbook::check_template_source(source)?;
    let env = env();
    let t = env.template_from_str(source).map_err(|e| located(source, &e))?;
    let ctx = if context.is_object() {
        minijinja::Value::from_serialize(context)
    } else {
        minijinja::context! {}
    };
    let mut w = Capped { out: Vec::new(), cap, cut: false };
    match t.render_captured_to(ctx, &mut w) {
        Err(_) if w.cut => {}
        Err(e) => return Err(located(source, &e)),
        Ok(_) => {}
    }
    let mut out = match String::from_utf8(w.out) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    if w.cut {
        while out.len() + '…'.len_utf8() > cap && !out.is_empty() {
            out.pop();
        }
        out.push('…');
    }
    Ok(out)
}

/// Checks one template of a spec, its problem recorded under `field`.
fn check_source(errors: &mut Vec<FieldError>, field: String, source: &str, max: usize, required: bool) {
    if required && source.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if source.len() > max {
        errors.push(FieldError::new(field, format!("at most {max} bytes")));
    } else if let Err(m) = check(source) {
        errors.push(FieldError::new(field, m));
    }
}

/// A template spec checked: every problem with its field path (`tasks[1].title`).
pub fn check_spec(spec: &TemplateSpec) -> Result<CheckedTemplate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", format!("1 to {MAX_NAME} characters, without control characters")));
    }
    check_source(&mut errors, "title_pattern".into(), &spec.title_pattern, MAX_PATTERN, true);
    check_source(&mut errors, "description".into(), &spec.description, MAX_DESCRIPTION, false);
    if spec.tasks.len() > MAX_TEMPLATE_TASKS {
        errors.push(FieldError::new("tasks", format!("at most {MAX_TEMPLATE_TASKS} tasks")));
    }
    for (i, t) in spec.tasks.iter().enumerate().take(MAX_TEMPLATE_TASKS) {
        check_source(&mut errors, format!("tasks[{i}].title"), &t.title, MAX_PATTERN, true);
        check_source(&mut errors, format!("tasks[{i}].description"), &t.description, MAX_DESCRIPTION, false);
        if t.due_in_days.is_some_and(|d| !(0..=3650).contains(&d)) {
            errors.push(FieldError::new(format!("tasks[{i}].due_in_days"), "0 to 3650 days, or leave it out for no due date"));
        }
        if t.assignee.as_deref().is_some_and(|a| a.trim().is_empty() || a.chars().count() > 100) {
            errors.push(FieldError::new(format!("tasks[{i}].assignee"), "1 to 100 characters, or leave it out"));
        }
    }
    let severity = match spec.severity.as_deref() {
        None => "medium",
        Some(s) => one_of(s, &SEVERITIES).unwrap_or_else(|| {
            errors.push(FieldError::new("severity", "low, medium, high or critical"));
            "medium"
        }),
    };
    let priority = match spec.priority.as_deref() {
        None => "medium",
        Some(s) => one_of(s, &PRIORITIES).unwrap_or_else(|| {
            errors.push(FieldError::new("priority", "low, medium or high"));
            "medium"
        }),
    };
    let tags = check_tags("tags", &spec.tags, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let tasks = spec
        .tasks
        .iter()
        .map(|t| TemplateTask {
            title: t.title.clone(),
            description: t.description.clone(),
            due_in_days: t.due_in_days,
            assignee: t.assignee.as_ref().map(|a| a.trim().to_owned()),
        })
        .collect();
    Ok(CheckedTemplate {
        name,
        title_pattern: spec.title_pattern.clone(),
        description: spec.description.clone(),
        severity,
        priority,
        tags,
        tasks,
    })
}

/// A template ready to store.
#[derive(Debug, Clone)]
pub struct CheckedTemplate {
    /// Its name (trimmed).
    pub name: String,
    /// The title pattern.
    pub title_pattern: String,
    /// The description template.
    pub description: String,
    /// Severity.
    pub severity: &'static str,
    /// Priority.
    pub priority: &'static str,
    /// Tags.
    pub tags: Vec<String>,
    /// Default tasks.
    pub tasks: Vec<TemplateTask>,
}

/// The template of `space_no` with this id, else the one with this name (a template named
/// like another's id does not hide it).
pub fn find(c: &Connection, space_no: i64, key: &str) -> Result<Option<CaseTemplate>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {TEMPLATE_COLS} FROM case_templates WHERE space_no = ?1 AND (id = ?2 OR name = ?2) ORDER BY id = ?2 DESC LIMIT 1"
    ))?
    .query_row(params![space_no, key.trim()], template_from_row)
    .optional()?)
}

/// The templates of a space, by name.
pub fn list(c: &Connection, space_no: i64) -> Result<Vec<CaseTemplate>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {TEMPLATE_COLS} FROM case_templates WHERE space_no = ?1 ORDER BY name"))?;
    let rows = stmt.query_map([space_no], template_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores a new template; `Conflict` when the space has one of that name.
pub fn insert(
    c: &Connection,
    space_no: i64,
    id: &str,
    t: &CheckedTemplate,
    builtin: Option<&str>,
    by: &str,
    now_us: i64,
) -> Result<(), StoreError> {
    let done = c
        .prepare_cached(
            "INSERT INTO case_templates (id, space_no, name, title_pattern, description, severity, priority, tags, tasks, builtin, \
             created_at, updated_at, created_by, updated_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?12)",
        )?
        .execute(params![
            id,
            space_no,
            t.name,
            t.title_pattern,
            t.description,
            t.severity,
            t.priority,
            serde_json::to_string(&t.tags)?,
            serde_json::to_string(&t.tasks)?,
            builtin,
            now_us,
            by
        ]);
    match done {
        Ok(_) => Ok(()),
        Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict(format!("a case template named {:?}", t.name))),
        Err(e) => Err(e.into()),
    }
}

/// Replaces a template's content (by id); false when the space has no such template.
pub fn update(c: &Connection, space_no: i64, id: &str, t: &CheckedTemplate, by: &str, now_us: i64) -> Result<bool, StoreError> {
    let done = c
        .prepare_cached(
            "UPDATE case_templates SET name = ?3, title_pattern = ?4, description = ?5, severity = ?6, priority = ?7, tags = ?8, \
             tasks = ?9, updated_at = ?10, updated_by = ?11 WHERE id = ?1 AND space_no = ?2",
        )?
        .execute(params![
            id,
            space_no,
            t.name,
            t.title_pattern,
            t.description,
            t.severity,
            t.priority,
            serde_json::to_string(&t.tags)?,
            serde_json::to_string(&t.tasks)?,
            now_us,
            by
        ]);
    match done {
        Ok(n) => Ok(n == 1),
        Err(e) if StoreError::is_unique_violation(&e) => Err(StoreError::Conflict(format!("a case template named {:?}", t.name))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct DefaultTemplate {
    key: String,
    #[serde(flatten)]
    spec: TemplateSpec,
}

/// The default templates, each with its key, checked.
fn default_templates() -> Result<Vec<(String, CheckedTemplate)>, StoreError> {
    let items: Vec<DefaultTemplate> = serde_json::from_str(DEFAULT_TEMPLATES)?;
    items
        .into_iter()
        .map(|d| {
            let t = check_spec(&d.spec).map_err(|e| {
                let problems: Vec<String> = e.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
                StoreError::Invalid(format!(
                    "default case template {} (content/case_templates.json) is invalid: {}",
                    d.key,
                    problems.join("; ")
                ))
            })?;
            Ok((d.key, t))
        })
        .collect()
}

/// Installs the default case templates missing from a space (found by their `builtin` key, or a
/// template of the same name); the number installed. Idempotent.
pub fn install_defaults(c: &Connection, space_no: i64, now_us: i64, ids: &IdGen) -> Result<usize, StoreError> {
    let mut installed = 0;
    for (key, t) in default_templates()? {
        let present: bool = c
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM case_templates WHERE space_no = ?1 AND (builtin = ?2 OR name = ?3))")?
            .query_row(params![space_no, key, t.name], |r| r.get(0))?;
        if present {
            continue;
        }
        insert(c, space_no, &ids.at(from_micros(now_us)).to_string(), &t, Some(&key), "system", now_us)?;
        installed += 1;
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_values_render_empty_and_none_prints_nothing() {
        let ctx = json!({"alert": {"user_id": "u1", "platform_id": "deepseek"}, "person": null});
        let out = render(
            "{{ person.display_name or alert.user_id }} on {{ alert.platform_id }}{{ person.email }}{{ nope.deeper.still }}",
            &ctx,
            100,
        );
        assert_eq!(out.as_deref(), Ok("u1 on deepseek"));
        assert_eq!(render("[{{ alert.missing }}]", &json!({"alert": {"missing": null}}), 100).as_deref(), Ok("[]"));
    }

    #[test]
    fn a_syntax_error_is_refused_with_its_position() {
        let e = check("Title\n{{ alert.user_id ").expect_err("unclosed");
        assert!(e.starts_with("line 2, column "), "{e}");
        let e = check("{{ x | no_such_filter }}").expect_err("unknown filter");
        assert!(e.contains("no_such_filter") || e.contains("unknown filter"), "{e}");
        assert!(check("{% for t in event.classification_type %}{{ t }}{% endfor %}").is_ok());
        assert!(check("{{ person.training_days_ago + 1 }}").is_ok(), "arithmetic on a missing value fails only for want of a context");
    }

    #[test]
    fn output_and_work_are_bounded() {
        let out = render("{% for i in range(1000) %}é{% endfor %}", &json!({}), 11).expect("render");
        assert!(out.len() <= 11 && out.ends_with('…'), "{out:?}");
        let cut = render("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", &json!({}), 10);
        assert_eq!(cut.as_deref(), Ok("xxxxxxx…"), "the cap stops the rendering");
        let e = render("{% for i in range(100000) %}{% if i < 0 %}x{% endif %}{% endfor %}", &json!({}), 10);
        assert!(e.is_err_and(|e| e.contains("fuel")), "fuel stops a loop that prints nothing");
        let e = check("{% for i in range(100000) %}{% if i < 0 %}x{% endif %}{% endfor %}");
        assert!(e.is_err_and(|e| e.contains("fuel")), "and the check finds it");
        assert_eq!(check("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}"), Ok(()), "the check renders into the capped writer");
    }

    #[test]
    fn the_reviewed_bypasses_are_refused_or_stay_within_the_cap() {
        let ctx = json!({"alert": {"title": "a<b&c"}});
        for bomb in [
            "{{ {'a': {'b': 1}} ~ \"{#\" }}{% set x = x ~ x %}{{ \"#}\" }}",
            "{{ ['a\nb'] | map('indent', 2000000000) | list }}",
            "{% set x | tojson(indent=2) %}{% set y = 1 %}{% endset %}",
            "{% for i in [[1]] recursive %}{{ loop(i) }}{% endfor %}",
            "{% set x = 'ab' %}{{ x|pprint }}",
        ] {
            assert!(check(bomb).is_err(), "{bomb}");
            assert!(render(bomb, &ctx, 1000).is_err(), "{bomb}");
        }
        let growing = [
            "{% set l = [1] %}{% set l = l|chain(l)|list %}",
            "{% set x = alert.title %}{% set x = [x, x]|string %}",
            "{% set x = alert.title %}{% set x = x|escape|string|lower %}",
        ];
        for step in growing {
            let (head, body) = step.split_at(step.find("%}").unwrap_or(0) + 2);
            let src = format!("{head}{}{{{{ 1 }}}}", body.repeat(40));
            assert_eq!(check(&src), Ok(()), "{src}");
            let got = render(&src, &ctx, 1000);
            assert!(got.as_ref().is_err_and(|e| e.contains("KiB") || e.contains("MiB")) || got.as_deref() == Ok("1"), "{step}: {got:?}");
        }
        assert_eq!(render("{{ alert.score | float * 100 }}", &json!({"alert": {"score": 0.5}}), 100).as_deref(), Ok("50.0"));
    }

    #[test]
    fn templates_that_could_allocate_without_bound_are_refused() {
        for bomb in ["{% for i in range(9) %}{{ \"x\" * 99999999 }}{% endfor %}", "{% set x = 'a' %}{% set x = x ~ x %}{{ x }}"] {
            assert!(check(bomb).is_err(), "{bomb}");
            assert!(render(bomb, &json!({}), 100).is_err(), "{bomb}: refused before rendering too");
        }
        assert_eq!(check("{{ person.display_name | default('*') }} {# * ~ #}"), Ok(()));
    }

    #[test]
    fn the_default_template_renders_the_alert_context() {
        let defaults = default_templates().expect("defaults");
        let (key, t) = &defaults[0];
        assert_eq!((key.as_str(), t.name.as_str(), t.severity), ("default-case-1", "AI Platform Violation", "high"));
        let ctx = json!({
            "alert": {"short_id": "AL12345678", "user_id": "u-42", "platform_id": "deepseek", "title": "Policy violation", "severity": "high"},
            "rule": {"name": "Policy violation on unvetted AI platform"},
            "event": {"platform_id": "deepseek", "risk_score": 0.93, "risk_level": "high", "classification_type": ["CREDIT_CARD", "IBAN"],
                      "policy_name": "Unvetted platforms", "policy_action": "block", "interaction_id": "int-7", "timestamp": "2026-05-01T10:00:00Z"},
            "person": {"display_name": "Alice Martin", "email": "alice@example.com", "manager_email": "boss@example.com",
                       "department": "Finance", "training_date": "2024-01-15", "training_days_ago": 472}
        });
        assert_eq!(render(&t.title_pattern, &ctx, 200).expect("title"), "AI platform violation: Alice Martin on deepseek");
        let d = render(&t.description, &ctx, MAX_DESCRIPTION).expect("description");
        for want in [
            "deepseek",
            "0.93",
            "CREDIT_CARD, IBAN",
            "Unvetted platforms",
            "block",
            "int-7",
            "Alice Martin",
            "alice@example.com",
            "boss@example.com",
            "Finance",
            "2024-01-15",
            "472",
        ] {
            assert!(d.contains(want), "{want} missing from:\n{d}");
        }
        // Without a person or an event, it still renders.
        let bare = json!({"alert": {"user_id": "u-9", "platform_id": "x"}, "person": null, "event": null});
        assert_eq!(render(&t.title_pattern, &bare, 200).expect("title"), "AI platform violation: u-9 on x");
        assert!(render(&t.description, &bare, MAX_DESCRIPTION).expect("description").contains("not in the directory"));
    }
}
