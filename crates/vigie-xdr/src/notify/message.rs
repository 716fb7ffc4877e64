//! The message a channel sends, rendered once when it is queued (so retries send the same
//! thing): the subject and text from the channel's templates (or the defaults) over the
//! context, and the payload of its kind — Slack blocks, a Teams MessageCard, the generic
//! webhook's JSON, or an e-mail's parts.
use super::channel::{ChannelKind, ChannelRow};
use super::template::{self, DEFAULT_BODY, DEFAULT_SUBJECT, MAX_BODY, MAX_SUBJECT, Part};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A rendered message, stored with its notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// E-mail: the HTML alternative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Slack, Teams, webhook: the JSON posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// E-mail: recipients instead of the channel's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// E-mail: an iCalendar invitation attached (`invite.ics`, method REQUEST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ical: Option<String>,
}

/// Slack's limits: a header's text and a section's text.
const SLACK_HEADER: usize = 150;
const SLACK_SECTION: usize = 3000;

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack reads `<…>` as links and mentions (`<!channel>`): values are escaped as Slack asks.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Teams reads Markdown (and autolinks bare URLs): in a value taken from an event or the
/// directory, the characters that make links, images, code, bold, headings, tables or HTML
/// are escaped, and `://` and `www.` broken, so `[x](https://…)` in a user's name stays text
/// (`_` is left alone: `source_code` and `john_doe` are common and italics harmless).
fn teams_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(c, '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out.replace("://", ":\\/\\/").replace("www.", "www\\.")
}

/// The context with every string [`teams_escape`]d: what a Teams message renders over.
fn teams_context(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(teams_escape(s)),
        Value::Array(items) => Value::Array(items.iter().map(teams_context).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), teams_context(v))).collect()),
        other => other.clone(),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Teams' card colour for a severity.
fn colour(severity: Option<&str>) -> &'static str {
    match severity {
        Some("critical") => "8B0000",
        Some("high") => "D83B01",
        Some("medium") => "FFB900",
        Some("low") => "0078D7",
        _ => "605E5C",
    }
}

/// Renders the subject and text of `ch` over `context` (its overrides, else the defaults), or
/// takes them as given (a playbook's, already rendered: never rendered again, so text from
/// events cannot inject template code).
///
/// For Teams, the values of the context (and a given subject and text, which came from events
/// too) are escaped for Markdown; the template's own Markdown is kept.
pub(crate) fn render(ch: &ChannelRow, context: &Value, subject: Option<String>, text: Option<String>) -> Message {
    let t = &ch.templates;
    let escaped;
    let (context, subject, text) = if ch.kind == ChannelKind::Teams {
        escaped = teams_context(context);
        (&escaped, subject.map(|s| teams_escape(&s)), text.map(|s| teams_escape(&s)))
    } else {
        (context, subject, text)
    };
    let subject =
        subject.unwrap_or_else(|| template::render_or_default(Part::Subject, t.subject.as_deref(), DEFAULT_SUBJECT, context, MAX_SUBJECT));
    // A subject is one line.
    let subject = subject.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    let text = text.unwrap_or_else(|| template::render_or_default(Part::Body, t.body.as_deref(), DEFAULT_BODY, context, MAX_BODY));
    let html = match (ch.kind, &t.html) {
        (ChannelKind::Email, Some(src)) => template::render(Part::Html, src, context, MAX_BODY).ok(),
        _ => None,
    };
    let mut m = Message { subject, text, html, ..Message::default() };
    m.body = payload(ch.kind, &m, context);
    m
}

/// The JSON an HTTP channel posts.
fn payload(kind: ChannelKind, m: &Message, context: &Value) -> Option<Value> {
    let severity = str_at(context, &["alert", "severity"]);
    let short_id = str_at(context, &["alert", "short_id"]);
    let rule = str_at(context, &["rule", "name"]).or_else(|| str_at(context, &["alert", "rule_name"]));
    match kind {
        ChannelKind::Slack => {
            let mut facts = Vec::new();
            if let Some(id) = short_id {
                facts.push(format!("Alert *{}*", slack_escape(id)));
            }
            if let Some(s) = severity {
                facts.push(format!("severity *{}*", slack_escape(s)));
            }
            if let Some(r) = rule {
                facts.push(format!("rule *{}*", slack_escape(r)));
            }
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": cut(&m.subject, SLACK_HEADER), "emoji": false}}),
                json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&slack_escape(&m.text), SLACK_SECTION)}}),
            ];
            if !facts.is_empty() {
                blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": facts.join(" · ")}]}));
            }
            Some(json!({"text": cut(&format!("{}\n{}", slack_escape(&m.subject), slack_escape(&m.text)), 40_000), "blocks": blocks}))
        }
        ChannelKind::Teams => {
            let event = context.get("event").unwrap_or(&Value::Null);
            let person = str_at(context, &["person", "display_name"])
                .or_else(|| str_at(context, &["alert", "user_name"]))
                .or_else(|| str_at(context, &["alert", "user_id"]));
            let classification = match event.get("classification_type") {
                Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            let risk = event.get("risk_score").filter(|v| v.is_number()).map(|v| match str_at(event, &["risk_level"]) {
                Some(l) => format!("{v} ({l})"),
                None => v.to_string(),
            });
            let policy =
                str_at(event, &["policy_action"]).map(|a| str_at(event, &["policy_name"]).map_or(a.to_owned(), |n| format!("{a} ({n})")));
            let platform = str_at(context, &["alert", "platform_id"]).or_else(|| str_at(event, &["platform_id"]));
            let facts: Vec<Value> = [
                ("Alert", short_id.map(str::to_owned)),
                ("Severity", severity.map(str::to_owned)),
                ("Rule", rule.map(str::to_owned)),
                ("Person", person.map(str::to_owned)),
                ("Platform", platform.map(str::to_owned)),
                ("Risk", risk),
                ("Classification", classification.filter(|c| !c.is_empty())),
                ("Policy", policy),
            ]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| json!({"name": name, "value": v})))
            .collect();
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": cut(&m.subject, 200),
                "themeColor": colour(severity),
                "title": m.subject,
                // Teams' Markdown joins single line breaks.
                "text": m.text.replace('\n', "\n\n"),
            });
            if !facts.is_empty() {
                card["sections"] = json!([{"facts": facts}]);
            }
            Some(card)
        }
        ChannelKind::Webhook => {
            let part = |k: &str| context.get(k).cloned().unwrap_or(Value::Null);
            let kind = if context.get("alert").is_some_and(Value::is_object) { "alert.notification" } else { "notification" };
            Some(json!({
                "type": kind,
                "subject": m.subject,
                "text": m.text,
                "alert": part("alert"),
                "rule": part("rule"),
                "event": part("event"),
                "person": part("person"),
            }))
        }
        ChannelKind::Email => None,
    }
}

/// The context of a channel's test message: a sample alert with every field the templates use.
pub fn sample_context(now: chrono::DateTime<chrono::Utc>) -> Value {
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "alert": {"id": "00000000-0000-7000-8000-000000000000", "short_id": "ALTEST0000", "title": "Test notification from Vigie",
                  "severity": "high", "urgency": 70, "status": "pending", "rule_id": "test", "rule_name": "Channel test",
                  "user_id": "test.user", "user_name": "Test User", "platform_id": "example-ai", "occurrences": 1,
                  "first_seen": at, "last_seen": at, "event_ids": [], "details": {}},
        "rule": {"id": "test", "name": "Channel test", "severity": 70},
        "event": {"event_type": "interaction.policy_violated", "platform_id": "example-ai", "user_id": "test.user",
                  "risk_score": 0.9, "risk_level": "high", "classification_type": ["test"], "policy_name": "Test policy",
                  "policy_action": "block", "timestamp": at},
        "person": {"user_id": "test.user", "display_name": "Test User", "email": null, "manager_email": null,
                   "department": null, "training_date": null, "training_days_ago": null},
        "test": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_values_cannot_make_links_or_html() {
        let e = teams_escape("[click](https://evil.example/x) <b>*hi*</b> www.evil.example");
        assert!(!e.contains("](") || e.contains("\\]("), "{e}");
        assert!(!e.contains("https://") && !e.contains("www.e") && !e.contains("<b>"), "{e}");
        assert_eq!(teams_escape("0.93 (high), Ada Lovelace, source_code"), "0.93 (high), Ada Lovelace, source_code");
    }
}
