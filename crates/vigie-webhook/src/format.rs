//! Destination formats: how a batch of event envelopes (`{id, type, timestamp, source,
//! tenant_id, data}`, as the firewall's outbox holds them) becomes the body a receiver expects.
//!
//! - `standard`: the envelope itself, one event per request, signed (Standard Webhooks).
//! - `splunk_hec`: HTTP Event Collector events, `{"time", "source", "sourcetype", "event"}`,
//!   one JSON object per line (HEC reads several from one body).
//! - `sekoia`: the Sekoia.io intake batch format, `{"intake_key", "jsons": ["<event>", …]}`,
//!   each event a JSON string (`POST /batch`).
//! - `slack`: an incoming-webhook message naming the platform, the person, the risk, the
//!   classification types and the policy action, coloured by the action.
use serde_json::{Value, json};

/// Why a batch could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format takes one event per request.
    #[error("the {0} format sends one event per request")]
    OneEventOnly(&'static str),
    /// Nothing to send.
    #[error("an empty batch")]
    Empty,
    /// The Sekoia format needs the intake key.
    #[error("the sekoia format needs an intake key")]
    MissingIntakeKey,
}

/// A destination format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The envelope, signed, one event per request.
    Standard,
    /// Splunk HTTP Event Collector events.
    SplunkHec,
    /// Sekoia.io intake batch.
    Sekoia,
    /// A Slack incoming-webhook message.
    Slack,
}

impl Format {
    /// Every format, as written in the API.
    pub const ALL: [Format; 4] = [Format::Standard, Format::SplunkHec, Format::Sekoia, Format::Slack];

    /// The name in the API (`standard`, `splunk_hec`, `sekoia`, `slack`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Standard => "standard",
            Format::SplunkHec => "splunk_hec",
            Format::Sekoia => "sekoia",
            Format::Slack => "slack",
        }
    }

    /// The format of a name, in any case.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether several events may share one request (SIEM formats batch; `standard` does not,
    /// so each event keeps its own `webhook-id` and signature).
    pub const fn batches(self) -> bool {
        !matches!(self, Format::Standard)
    }

    /// The request's content type (all JSON; HEC reads concatenated objects as JSON too).
    pub const fn content_type(self) -> &'static str {
        "application/json"
    }
}

/// Settings some formats need.
#[derive(Debug, Clone, Default)]
pub struct FormatOptions {
    /// Sekoia.io intake key (sent in the body, as the `/batch` endpoint wants it).
    pub intake_key: Option<String>,
    /// Splunk `sourcetype` (default `vigie:event`).
    pub sourcetype: Option<String>,
}

/// Renders `events` (envelopes) as one request body in `format`.
pub fn render(format: Format, events: &[Value], opts: &FormatOptions) -> Result<Vec<u8>, FormatError> {
    if events.is_empty() {
        return Err(FormatError::Empty);
    }
    let to_vec = |v: &Value| serde_json::to_vec(v).expect("a JSON value serialises");
    Ok(match format {
        Format::Standard => {
            let [event] = events else { return Err(FormatError::OneEventOnly("standard")) };
            to_vec(event)
        }
        Format::SplunkHec => {
            let sourcetype = opts.sourcetype.as_deref().unwrap_or("vigie:event");
            let mut out = Vec::new();
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                let hec = json!({
                    "time": epoch_seconds(e),
                    "source": e.get("source").and_then(Value::as_str).unwrap_or("vigie"),
                    "sourcetype": sourcetype,
                    "event": e,
                });
                out.extend(to_vec(&hec));
            }
            out
        }
        Format::Sekoia => {
            let key = opts.intake_key.as_deref().filter(|k| !k.is_empty()).ok_or(FormatError::MissingIntakeKey)?;
            let jsons: Vec<String> = events.iter().map(|e| String::from_utf8(to_vec(e)).expect("JSON is UTF-8")).collect();
            to_vec(&json!({"intake_key": key, "jsons": jsons}))
        }
        Format::Slack => {
            let attachments: Vec<Value> = events.iter().take(100).map(slack_attachment).collect();
            let text = match events.len() {
                1 => headline(&events[0]),
                n => format!("{n} Vigie events"),
            };
            to_vec(&json!({"text": text, "attachments": attachments}))
        }
    })
}

/// The event's `timestamp` (RFC 3339) as seconds since the epoch with milliseconds, as HEC
/// wants `time`; `null` lets Splunk use the arrival time.
fn epoch_seconds(e: &Value) -> Value {
    e.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339).map_or(Value::Null, |ms| json!(ms as f64 / 1000.0))
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// One line saying what happened.
fn headline(e: &Value) -> String {
    let kind = str_at(e, "/type").unwrap_or("event");
    match str_at(e, "/data/interaction/platform_id") {
        Some(platform) => {
            let action = str_at(e, "/data/interaction/decision/action").unwrap_or("log");
            format!("Vigie: {kind} on {platform} ({action})")
        }
        None => format!("Vigie: {kind}"),
    }
}

/// A Slack attachment for one event: coloured by the policy action (block red, coach amber,
/// log grey), with the platform, person, risk, classification types and policy.
fn slack_attachment(e: &Value) -> Value {
    let i = e.pointer("/data/interaction");
    let action = i.and_then(|i| str_at(i, "/decision/action")).unwrap_or("log");
    let color = match action {
        "block" => "#d00000",
        "coach" => "#f2a900",
        _ => "#8a8a8a",
    };
    let mut fields = Vec::new();
    if let Some(i) = i {
        let mut types: Vec<&str> =
            i.get("classifications").and_then(Value::as_array).into_iter().flatten().filter_map(|c| str_at(c, "/type")).collect();
        types.sort_unstable();
        types.dedup();
        let risk = i.get("risk_score").and_then(Value::as_f64).unwrap_or(0.0);
        let level = str_at(i, "/risk_level").unwrap_or("");
        fields.push(json!({"title": "Platform", "value": str_at(i, "/platform_id").unwrap_or("?"), "short": true}));
        fields.push(json!({"title": "Person", "value": str_at(i, "/user_id").unwrap_or("unknown"), "short": true}));
        fields.push(json!({"title": "Risk", "value": format!("{risk:.2} {level}").trim(), "short": true}));
        fields.push(json!({"title": "Action", "value": action, "short": true}));
        fields.push(json!({"title": "Classifications", "value": if types.is_empty() { "none".to_owned() } else { types.join(", ") }, "short": false}));
        if let Some(p) = str_at(i, "/decision/policy_name") {
            fields.push(json!({"title": "Policy", "value": p, "short": false}));
        }
    }
    json!({
        "color": color,
        "title": headline(e),
        "fields": fields,
        "footer": str_at(e, "/id").unwrap_or(""),
        "ts": epoch_seconds(e).as_f64().map(|t| t as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> Value {
        json!({
            "id": "evt_0194c1", "type": "interaction.policy_violated", "timestamp": "2026-11-28T10:15:30.250Z", "source": "noxys",
            "tenant_id": "t1",
            "data": {"interaction": {
                "platform_id": "deepseek", "user_id": "0194-person", "risk_score": 0.97, "risk_level": "critical",
                "classifications": [{"type": "IBAN", "value": "****0189"}, {"type": "CREDIT_CARD", "value": "****0366"}, {"type": "IBAN"}],
                "decision": {"action": action, "policy_name": "PII on unvetted platforms"}
            }}
        })
    }

    #[test]
    fn standard_sends_the_envelope_alone() {
        let e = event("block");
        let body = render(Format::Standard, std::slice::from_ref(&e), &FormatOptions::default()).expect("renders");
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), e);
        assert_eq!(render(Format::Standard, &[e.clone(), e], &FormatOptions::default()), Err(FormatError::OneEventOnly("standard")));
    }

    #[test]
    fn splunk_gets_one_hec_event_per_line_with_the_events_time() {
        let body = render(Format::SplunkHec, &[event("block"), event("log")], &FormatOptions::default()).expect("renders");
        let lines: Vec<Value> = String::from_utf8(body).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["time"], json!(1_795_860_930.25));
        assert_eq!(lines[0]["source"], "noxys");
        assert_eq!(lines[0]["sourcetype"], "vigie:event");
        assert_eq!(lines[1]["event"]["data"]["interaction"]["decision"]["action"], "log");
    }

    #[test]
    fn sekoia_gets_the_batch_format_with_events_as_strings() {
        let opts = FormatOptions { intake_key: Some("K-123".into()), ..Default::default() };
        let body: Value = serde_json::from_slice(&render(Format::Sekoia, &[event("coach")], &opts).expect("renders")).expect("json");
        assert_eq!(body["intake_key"], "K-123");
        let inner: Value = serde_json::from_str(body["jsons"][0].as_str().expect("a string")).expect("json inside");
        assert_eq!(inner["id"], "evt_0194c1");
        assert_eq!(render(Format::Sekoia, &[event("coach")], &FormatOptions::default()), Err(FormatError::MissingIntakeKey));
    }

    #[test]
    fn slack_reads_like_an_alert_and_is_coloured_by_action() {
        let body: Value =
            serde_json::from_slice(&render(Format::Slack, &[event("block")], &FormatOptions::default()).expect("renders")).expect("json");
        assert_eq!(body["text"], "Vigie: interaction.policy_violated on deepseek (block)");
        let a = &body["attachments"][0];
        assert_eq!(a["color"], "#d00000");
        let fields: Vec<(String, String)> = a["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| (f["title"].as_str().unwrap_or_default().to_owned(), f["value"].as_str().unwrap_or_default().to_owned()))
            .collect();
        assert!(fields.contains(&("Classifications".into(), "CREDIT_CARD, IBAN".into())), "{fields:?}");
        assert!(fields.contains(&("Risk".into(), "0.97 critical".into())), "{fields:?}");
        assert!(fields.contains(&("Policy".into(), "PII on unvetted platforms".into())), "{fields:?}");
        let coach: Value =
            serde_json::from_slice(&render(Format::Slack, &[event("coach"), event("log")], &FormatOptions::default()).expect("renders"))
                .expect("json");
        assert_eq!(coach["text"], "2 Vigie events");
        assert_eq!(coach["attachments"][0]["color"], "#f2a900");
        assert_eq!(coach["attachments"][1]["color"], "#8a8a8a");
    }

    #[test]
    fn formats_are_named_in_any_case_and_timestamps_read_exactly() {
        assert_eq!(Format::parse("Splunk_HEC"), Some(Format::SplunkHec));
        assert_eq!(Format::parse("syslog"), None);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:01.5Z"), Some(951_868_801_500));
        assert_eq!(parse_rfc3339("2026-11-28T10:15:30+02:00"), Some(1_795_853_730_000), "offsets are honoured");
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
