//! Message templates (minijinja): the defaults, the check made when a channel is saved (a
//! syntax error is refused with its line and column), and rendering with a cap on the output.
//!
//! Message templates are lenient (a missing value renders empty, a lookup through one is
//! empty too) so an alert without a person or an event still gets its message; only syntax is
//! strict, and it is checked before the template is stored.
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

/// The longest template a channel takes (characters).
pub const MAX_TEMPLATE: usize = 16 * 1024;
/// The most a rendered subject keeps (bytes).
pub const MAX_SUBJECT: usize = 400;
/// The most a rendered body keeps (bytes); rendering stops there.
pub const MAX_BODY: usize = 32 * 1024;
/// The work one rendering may do (minijinja's fuel: roughly its instructions), so a loop that
/// prints nothing cannot spin; the default body takes about 300.
const FUEL: u64 = 50_000;

/// The default subject of every kind.
pub const DEFAULT_SUBJECT: &str =
    "[Vigie] {{ (alert.severity or 'unknown') | upper }} {{ alert.short_id }}: {{ alert.title or rule.name or 'notification' }}";

/// The default body (plain text; Slack and Teams show it as Markdown).
pub const DEFAULT_BODY: &str = "\
{{ (alert.severity or 'unknown') | upper }} alert {{ alert.short_id }} raised by rule \"{{ rule.name or alert.rule_name }}\": {{ alert.title }}
Person: {{ person.display_name or alert.user_name or alert.user_id or event.user_id or 'unknown' }}\
{% if person.email or event.user_email %} <{{ person.email or event.user_email }}>{% endif %}\
{% if person.department %} ({{ person.department }}){% endif %}
Platform: {{ alert.platform_id or event.platform_id or 'unknown' }}
Risk: {% if event.risk_score is number %}{{ event.risk_score }}{% else %}n/a{% endif %}{% if event.risk_level %} ({{ event.risk_level }}){% endif %}
Classification: {% if event.classification_type is string %}{{ event.classification_type }}\
{% elif event.classification_type %}{{ event.classification_type | join(', ') }}{% else %}none{% endif %}
Policy: {{ event.policy_action or 'n/a' }}{% if event.policy_name %} ({{ event.policy_name }}){% endif %}
Occurrences: {{ alert.occurrences or 1 }}{% if alert.first_seen %}, first seen {{ alert.first_seen }}{% endif %}
Alert: {{ alert.short_id }} ({{ alert.status or 'pending' }})";

/// Which template of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The subject line (e-mail subject, Slack header, Teams title).
    Subject,
    /// The plain-text body.
    Body,
    /// The e-mail's HTML alternative (HTML-escaped values).
    Html,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Body => "body",
            Part::Html => "html.html",
        }
    }
}

/// The environment message templates render in, built once (fuel and the allocation budget are
/// per rendering).
fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(build_environment)
}

fn build_environment() -> Environment<'static> {
    // The allowlisted, capped filters shared by every tenant template.
    let mut env = vigie_playbook::safe_environment();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_recursion_limit(50);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

/// Why a template was refused: a sentence with its line and column (what could allocate
/// without bound is refused by [`vigie_playbook::check_template_source`]).
pub fn check(source: &str) -> Result<(), String> {
    if source.chars().count() > MAX_TEMPLATE {
        return Err(format!("at most {MAX_TEMPLATE} characters"));
    }
    vigie_playbook::check_template_source(source)?;
    let env = environment();
    match env.template_from_str(source) {
        Ok(_) => Ok(()),
        Err(e) => Err(describe(&e, source)),
    }
}

/// An error with its position (line and column from the error's byte range).
fn describe(e: &minijinja::Error, source: &str) -> String {
    let what = e.detail().map(str::to_owned).unwrap_or_else(|| e.kind().to_string());
    match (e.line(), e.range()) {
        (_, Some(r)) if r.start <= source.len() && source.is_char_boundary(r.start) => {
            let before = &source[..r.start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {what}")
        }
        (Some(line), _) => format!("line {line}: {what}"),
        _ => what,
    }
}

/// A writer that refuses to grow past `left` bytes (rendering then stops with an error).
struct Capped {
    out: Vec<u8>,
    left: usize,
    cut: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            let take = self.left;
            self.out.extend_from_slice(&buf[..take]);
            self.left = 0;
            self.cut = true;
            return Err(std::io::Error::other("the message is too long"));
        }
        self.out.extend_from_slice(buf);
        self.left -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `source` (checked when saved) over `context`, keeping at most `cap` bytes (a longer
/// output is cut at a character boundary and ends with `…`).
pub fn render(part: Part, source: &str, context: &Value, cap: usize) -> Result<String, String> {
    vigie_playbook::check_template_source(source)?;
    let env = environment();
    let tmpl = env.template_from_named_str(part.name(), source).map_err(|e| describe(&e, source))?;
    let mut w = Capped { out: Vec::new(), left: cap, cut: false };
    let result = tmpl.render_captured_to(context, &mut w).map(|_| ());
    let Capped { mut out, cut, .. } = w;
    if let Err(e) = result
        && !cut
    {
        return Err(describe(&e, source));
    }
    let mut text = match String::from_utf8(out.clone()) {
        Ok(s) => s,
        Err(e) => {
            // Cut inside a character: keep what is whole.
            let valid = e.utf8_error().valid_up_to();
            out.truncate(valid);
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    if cut {
        while text.len() + '…'.len_utf8() > cap && !text.is_empty() {
            text.pop();
        }
        text.push('…');
    }
    Ok(text)
}

/// Renders the override if there is one, else the default; an override that fails when
/// rendered (a filter over a value of the wrong type) falls back to the default, so the alert
/// is still told.
pub fn render_or_default(part: Part, custom: Option<&str>, default: &str, context: &Value, cap: usize) -> String {
    if let Some(src) = custom {
        match render(part, src, context, cap) {
            Ok(s) => return s,
            Err(e) => tracing::warn!(template = part.name(), error = %e, "a notification template failed; the default is used"),
        }
    }
    render(part, default, context, cap).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn syntax_errors_name_their_line_and_column() {
        let e = check("Hello\n{{ alert.title ").expect_err("unclosed");
        assert!(e.starts_with("line 2, column"), "{e}");
        assert!(check("{% if x %}no end").is_err());
        assert!(check("{{ alert.title }} {{ person.display_name | upper }}").is_ok());
    }

    #[test]
    fn work_is_bounded_even_when_nothing_is_printed() {
        let e = render(Part::Body, "{% for i in range(100000) %}{% if i < 0 %}x{% endif %}{% endfor %}", &json!({}), 100);
        assert!(e.is_err_and(|e| e.contains("fuel")), "a loop printing nothing runs out of fuel");
        assert!(render(Part::Body, "{{ 'x' * 99999999 }}", &json!({}), 100).is_err_and(|e| e.contains("`*`")));
    }

    #[test]
    fn the_reviewed_bypasses_are_refused_and_the_defaults_still_render() {
        for bomb in [
            "{{ {'a': {'b': 1}} ~ \"{#\" }}{% set x = x ~ x %}{{ \"#}\" }}",
            "{{ ['a\nb'] | map('indent', 2000000000) | list }}",
            "{% set x | tojson(indent=2) %}{% set y = 1 %}{% endset %}",
            "{{ super() }}",
            "{% set x = [x, x] %}{{ x | pprint }}",
        ] {
            assert!(check(bomb).is_err(), "{bomb}");
            assert!(render(Part::Body, bomb, &json!({}), 100).is_err(), "{bomb}");
        }
        let steps = format!("{{% set x = 'a&b' %}}{}{{{{ x | length }}}}", "{% set x = [x, x] | string %}".repeat(40));
        let got = render(Part::Html, &steps, &json!({}), 100);
        assert!(got.as_ref().is_err_and(|e| e.contains("KiB")), "{got:?}");
        let ctx = json!({"alert": {"short_id": "AL1", "title": "T", "severity": "high"}, "event": {"risk_score": 0.25, "classification_type": ["PII", "PCI"]}});
        for (part, src) in [(Part::Subject, DEFAULT_SUBJECT), (Part::Body, DEFAULT_BODY)] {
            assert_eq!(check(src), Ok(()));
            let out = render(part, src, &ctx, MAX_BODY).expect("renders");
            assert!(out.contains("AL1"), "{out}");
        }
        assert_eq!(render(Part::Body, "{{ event.risk_score | float * 100 }}", &ctx, 100).as_deref(), Ok("25.0"));
    }

    #[test]
    fn missing_values_render_empty_even_through_null() {
        let ctx = json!({"alert": {"title": "T"}, "person": null});
        let s = render(Part::Body, "[{{ person.display_name }}][{{ nothing.at.all }}][{{ alert.title }}]", &ctx, 100).expect("render");
        assert_eq!(s, "[][][T]");
    }

    #[test]
    fn the_default_body_names_platform_person_risk_classification_and_policy() {
        let ctx = json!({
            "alert": {"short_id": "AL12345678", "title": "Violation", "severity": "high", "rule_name": "R", "platform_id": "chatgpt"},
            "rule": {"name": "R"},
            "event": {"risk_score": 0.93, "risk_level": "high", "classification_type": ["pii", "secret"], "policy_action": "block",
                      "policy_name": "No PII"},
            "person": {"display_name": "Ada Lovelace", "email": "ada@example.com"}
        });
        let body = render(Part::Body, DEFAULT_BODY, &ctx, MAX_BODY).expect("render");
        for want in ["chatgpt", "Ada Lovelace", "0.93", "(high)", "pii, secret", "block (No PII)", "AL12345678", "rule \"R\""] {
            assert!(body.contains(want), "{want} missing from {body}");
        }
        let subject = render(Part::Subject, DEFAULT_SUBJECT, &ctx, MAX_SUBJECT).expect("render");
        assert_eq!(subject, "[Vigie] HIGH AL12345678: Violation");
        // Without a person, the user id names them.
        let ctx = json!({"alert": {"user_id": "u-7"}, "person": null, "event": null});
        assert!(render(Part::Body, DEFAULT_BODY, &ctx, MAX_BODY).expect("render").contains("Person: u-7"));
    }

    #[test]
    fn output_is_capped_and_html_is_escaped() {
        let s = render(Part::Body, "{% for i in range(10000) %}abcdef{% endfor %}", &json!({}), 100).expect("render");
        assert!(s.len() <= 100 && s.ends_with('…'), "{}", s.len());
        let h = render(Part::Html, "<p>{{ t }}</p>", &json!({"t": "<b>"}), 100).expect("render");
        assert_eq!(h, "<p>&lt;b&gt;</p>");
    }
}
