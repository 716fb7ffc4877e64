//! Interactions: their text scanned and dropped (`text`), validated and masked (`prepare`),
//! scored and evaluated against the tenant's policies (`judge`), and stored with their decision
//! and their events in one transaction (`store`).
mod judge;
pub mod routes;
pub mod stats;
mod store;
pub mod text;

use crate::events;
use crate::model::{Action, Direction, InteractionType, RiskLevel, Severity, Source, normalize_platform, normalize_type};
use crate::state::{ActionLabel, EventLabel, FirewallState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::auth::{Permission, Principal};
use vigie_core::http::{ApiError, FieldError};
use vigie_pii::masking::{digit_count, mask};

pub(crate) use judge::{Judged, default_message, judge};
pub use store::ListFilter;
use text::{ScanOrigin, ScannedText};

/// The most classifications one interaction may carry.
pub const MAX_CLASSIFICATIONS: usize = 1000;
/// The `content_metadata` keys that are kept (with a string, number or boolean value of at most
/// [`MAX_METADATA_VALUE`] characters). Every other key is dropped before storage: a free-form
/// field can carry prompt text (`text`, `title`, a nested `context`), and only an allowlist keeps
/// "raw text is never stored" true whatever a client sends.
pub const METADATA_KEYS: &[&str] = &[
    "url",
    "model",
    "model_version",
    "browser",
    "browser_version",
    "extension_version",
    "os",
    "app",
    "app_version",
    "hostname",
    "conversation_id",
    "language",
    "client",
    "agent_version",
];
/// The longest metadata string kept.
pub const MAX_METADATA_VALUE: usize = 256;

/// A classification as a client reports it.
#[derive(Deserialize, ToSchema)]
pub struct ClassificationIn {
    /// Type code (`EMAIL`, `CREDIT_CARD`…; lower case and aliases such as `nir` accepted).
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_ -]{0,47}$")]
    pub kind: String,
    /// The matched text. Masked before anything is stored.
    pub value: Option<String>,
    /// Detection confidence, 0..1 (`confidence` accepted too).
    #[serde(alias = "confidence")]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score: Option<f64>,
    /// Start offset in the content, in Unicode code points.
    pub start: Option<u32>,
    /// End offset (exclusive), in Unicode code points.
    pub end: Option<u32>,
    /// How many matches of this type this entry stands for (the aggregated form some clients
    /// send); default 1. `classification_count` is the sum.
    #[schema(minimum = 1, maximum = 100000)]
    pub count: Option<u32>,
}

/// A request to record one AI interaction.
#[derive(Deserialize, ToSchema)]
pub struct NewInteraction {
    /// The AI platform (`chatgpt`, `claude`…; unknown ids are accepted as unvetted).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub platform_id: String,
    /// SHA-256 of the content, 64 hex characters (a `sha256:` prefix is accepted). Required
    /// unless `text` is given.
    #[schema(pattern = "^(sha256:)?[0-9a-fA-F]{64}$")]
    pub content_hash: Option<String>,
    /// prompt (default), completion, tool_call or embedding.
    pub interaction_type: Option<InteractionType>,
    /// Free object. Only the keys of [`METADATA_KEYS`] with short scalar values are kept
    /// (`url` cut to its origin); `text`, when `text` itself is absent, is scanned like it.
    #[schema(value_type = Option<Object>)]
    pub content_metadata: Option<Map<String, Value>>,
    /// Detected sensitive data.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub classifications: Vec<ClassificationIn>,
    /// Risk seen by the client, 0..1 (default 0). The stored risk is the higher of this and the
    /// server's score of the classifications (its own findings included).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub risk_score: Option<f64>,
    /// outbound (default) or inbound.
    pub direction: Option<Direction>,
    /// browser_extension (default), proxy, endpoint_agent or api.
    pub source: Option<Source>,
    /// The person, as a UUID.
    pub user_id: Option<Uuid>,
    /// The content itself, for the server to scan and hash (at most `max_text_bytes` bytes of
    /// UTF-8, 1 MiB by default; 413 beyond). Its findings join the classifications, replacing a
    /// client classification of the same type on an overlapping span. Never stored.
    pub text: Option<String>,
}

/// Debug output never shows the raw value.
impl std::fmt::Debug for ClassificationIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassificationIn")
            .field("kind", &self.kind)
            .field("value", &self.value.as_ref().map(|v| format!("<{} bytes>", v.len())))
            .field("score", &self.score)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("count", &self.count)
            .finish()
    }
}

/// Debug output never shows the text or the metadata's values.
impl std::fmt::Debug for NewInteraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInteraction")
            .field("platform_id", &self.platform_id)
            .field("content_hash", &self.content_hash)
            .field("interaction_type", &self.interaction_type)
            .field("content_metadata", &self.content_metadata.as_ref().map(|m| m.keys().collect::<Vec<_>>()))
            .field("classifications", &self.classifications)
            .field("risk_score", &self.risk_score)
            .field("direction", &self.direction)
            .field("source", &self.source)
            .field("user_id", &self.user_id)
            .field("text", &self.text.as_ref().map(|t| format!("<{} bytes>", t.len())))
            .finish()
    }
}

/// A stored classification (value masked).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Classification {
    /// Type code, upper case.
    #[serde(rename = "type")]
    pub kind: String,
    /// The masked value (`****9010`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Confidence, 0..1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Start offset, Unicode code points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u32>,
    /// End offset, Unicode code points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u32>,
    /// Matches this entry stands for, when more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// The policy decision on an interaction.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Decision {
    /// block, coach or log (log when no policy matched).
    pub action: Action,
    /// The matching policy, if any.
    pub policy_id: Option<Uuid>,
    /// Its name.
    pub policy_name: Option<String>,
    /// The risk band of the interaction.
    pub risk_level: RiskLevel,
}

/// An alert the firewall raised on an interaction (a block, or critical risk).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Alert {
    /// From the risk band.
    pub severity: Severity,
    /// Why it was raised.
    pub reason: String,
}

impl Alert {
    /// The alert the firewall raises for a decision at a risk score: on a block (severity from
    /// the risk band) or at critical risk; none otherwise.
    pub fn raised_by(decision: &Decision, risk_score: f64) -> Option<Alert> {
        if decision.action == Action::Block {
            let policy = decision.policy_name.as_deref().unwrap_or_default();
            Some(Alert { severity: Severity::of(risk_score), reason: format!("blocked by policy {policy:?}") })
        } else if RiskLevel::of(risk_score) == RiskLevel::Critical {
            Some(Alert { severity: Severity::Critical, reason: format!("risk {risk_score:.2} is in the critical band") })
        } else {
            None
        }
    }
}

/// A recorded interaction, as stored and returned: no raw text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Interaction {
    /// Interaction id (UUIDv7).
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Platform id.
    pub platform_id: String,
    /// Whether the platform was vetted when recorded.
    pub platform_vetted: bool,
    /// Content kind.
    pub interaction_type: InteractionType,
    /// Direction.
    pub direction: Direction,
    /// Recorder.
    pub source: Source,
    /// Person.
    pub user_id: Option<Uuid>,
    /// SHA-256 of the content.
    pub content_hash: String,
    /// Length of the content in code points, when the text was sent.
    pub content_length: Option<u64>,
    /// Metadata without raw text.
    #[schema(value_type = Option<Object>)]
    pub content_metadata: Option<Map<String, Value>>,
    /// Classifications, values masked.
    pub classifications: Vec<Classification>,
    /// Number of matches (the sum of the classifications' `count`, 1 each by default).
    pub classification_count: usize,
    /// Risk score, 0..1.
    pub risk_score: f64,
    /// Risk band.
    pub risk_level: RiskLevel,
    /// The policy decision.
    pub decision: Decision,
    /// The alert raised, if any.
    pub alert: Option<Alert>,
}

/// A validated request: everything is masked and normalised; nothing raw remains.
pub(crate) struct Prepared {
    platform_id: String,
    interaction_type: InteractionType,
    direction: Direction,
    source: Source,
    user_id: Option<Uuid>,
    content_hash: String,
    content_length: Option<u64>,
    content_metadata: Option<Map<String, Value>>,
    classifications: Vec<Classification>,
    classification_count: usize,
    types: Vec<String>,
    /// The risk the client saw (0 when it sent none).
    client_risk: f64,
}

/// Takes the text to scan out of a request: `text`, or else a string `content_metadata.text`.
/// Returns it with the name of the field it came from.
pub(crate) fn take_text(req: &mut NewInteraction) -> Option<(String, &'static str)> {
    let in_metadata = req.content_metadata.as_mut().and_then(|m| m.remove("text"));
    match (req.text.take(), in_metadata) {
        (Some(t), _) => Some((t, "text")),
        (None, Some(Value::String(t))) => Some((t, "content_metadata.text")),
        (None, _) => None,
    }
}

/// Whether a request must name its platform: recording does; a scan alone may leave it out
/// (the platform then counts as unknown and unvetted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PlatformRule {
    /// `platform_id` must be a platform id.
    Required,
    /// An empty `platform_id` stands for an unknown platform.
    Optional,
}

/// Validates, masks and scrubs a request whose text (if any) was taken out and scanned.
pub(crate) fn prepare(req: NewInteraction, scanned: Option<ScannedText>, platform: PlatformRule) -> Result<Prepared, ApiError> {
    let mut errors = Vec::new();
    let platform_id = if platform == PlatformRule::Optional && req.platform_id.is_empty() {
        String::new()
    } else {
        normalize_platform(&req.platform_id).unwrap_or_else(|| {
            errors.push(FieldError::new("platform_id", format!("{:?} is not a platform id (letters, digits, - _ .)", req.platform_id)));
            String::new()
        })
    };
    let content_length = scanned.as_ref().map(|s| s.content_length);
    let content_hash = match (req.content_hash, &scanned) {
        (Some(h), scanned) => {
            let h = h.trim();
            let h = h.strip_prefix("sha256:").unwrap_or(h).to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                errors.push(FieldError::new("content_hash", "must be a SHA-256 digest: 64 hexadecimal characters"));
            } else if scanned.as_ref().is_some_and(|s| s.content_hash != h) {
                errors.push(FieldError::new(
                    "content_hash",
                    "does not match the SHA-256 of text; send the hex SHA-256 of the text's UTF-8 bytes, or leave content_hash out and the server computes it",
                ));
            }
            h
        }
        (None, Some(s)) => s.content_hash.clone(),
        (None, None) => {
            errors.push(FieldError::new("content_hash", "is required unless text is given"));
            String::new()
        }
    };
    let found: Vec<Classification> = scanned.map(|s| s.findings.iter().map(text::classification).collect()).unwrap_or_default();
    let risk_score = req.risk_score.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&risk_score) {
        errors.push(FieldError::new("risk_score", format!("{risk_score} is outside 0..1")));
    }
    if req.classifications.len() > MAX_CLASSIFICATIONS {
        errors.push(FieldError::new("classifications", format!("at most {MAX_CLASSIFICATIONS} per interaction")));
    }
    let mut classifications = Vec::with_capacity(req.classifications.len());
    for (i, c) in req.classifications.into_iter().enumerate() {
        let Some(kind) = normalize_type(&c.kind) else {
            errors.push(FieldError::new(
                format!("classifications[{i}].type"),
                format!("{:?} is not a type code (e.g. EMAIL, CREDIT_CARD, IBAN)", c.kind),
            ));
            continue;
        };
        if c.score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            errors.push(FieldError::new(format!("classifications[{i}].score"), "must be within 0..1"));
        }
        if let (Some(s), Some(e)) = (c.start, c.end)
            && s > e
        {
            errors.push(FieldError::new(format!("classifications[{i}].end"), "must not be before start"));
        }
        if c.count.is_some_and(|n| !(1..=100_000).contains(&n)) {
            errors.push(FieldError::new(format!("classifications[{i}].count"), "must be between 1 and 100000"));
        }
        let value = c.value.as_deref().map(|v| mask(&kind, v));
        classifications.push(Classification { kind, value, score: c.score, start: c.start, end: c.end, count: c.count.filter(|n| *n > 1) });
    }
    let content_metadata = req.content_metadata.map(scrub_metadata).filter(|m| !m.is_empty());
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let classifications = text::merge(found, classifications);
    let types = classifications.iter().map(|c| c.kind.clone()).collect();
    Ok(Prepared {
        platform_id,
        interaction_type: req.interaction_type.unwrap_or(InteractionType::Prompt),
        direction: req.direction.unwrap_or(Direction::Outbound),
        source: req.source.unwrap_or(Source::BrowserExtension),
        user_id: req.user_id,
        content_hash,
        content_length,
        content_metadata,
        classification_count: classifications.iter().map(|c| c.count.unwrap_or(1) as usize).sum(),
        classifications,
        types,
        client_risk: risk_score,
    })
}

/// Keeps the allowlisted keys with short scalar values, and cuts `url` to its origin (a path or
/// query can carry the prompt). A value that could carry personal data is dropped whatever its
/// key, since an allowlisted key can still be sent free text: a string holding an `@` or eight
/// digits in all (a card, an IBAN, a phone number, however separated; version strings may hold
/// twelve), a number of eight digits or more, an origin whose host holds thirteen digits.
fn scrub_metadata(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, v| {
        METADATA_KEYS.contains(&k.as_str())
            && match v {
                Value::String(_) if k == "url" => true,
                Value::String(s) => {
                    let max_digits = if k.ends_with("version") { 12 } else { 7 };
                    s.chars().count() <= MAX_METADATA_VALUE && !s.contains('@') && digit_count(s) <= max_digits
                }
                Value::Number(n) => digit_count(&n.to_string()) <= 7,
                Value::Bool(_) => true,
                _ => false,
            }
    });
    if let Some(Value::String(u)) = m.get("url") {
        let origin = url::Url::parse(u)
            .ok()
            .filter(|u| u.host_str().is_some_and(|h| digit_count(h) <= 12))
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null");
        match origin {
            Some(o) => {
                m.insert("url".into(), Value::String(o));
            }
            None => {
                m.remove("url");
            }
        }
    }
    m
}

#[derive(Serialize)]
struct PolicyRef<'a> {
    id: Uuid,
    name: &'a str,
    action: Action,
}

#[derive(Serialize)]
struct EventData<'a> {
    interaction: &'a Interaction,
    policy: Option<PolicyRef<'a>>,
    alert: Option<&'a Alert>,
}

/// Records an interaction: scans its text if it has one, evaluates the tenant's policies, then
/// stores the interaction and its events in one transaction, and returns it once committed.
pub async fn record(st: &FirewallState, by: &Principal, mut req: NewInteraction) -> Result<Interaction, ApiError> {
    by.require(Permission::Record)?;
    let scanned = match take_text(&mut req) {
        Some((t, field)) => Some(text::scan(st, t, field, ScanOrigin::Interactions).await?),
        None => None,
    };
    let prep = prepare(req, scanned, PlatformRule::Required)?;
    let judged = judge(&*st.policies.get(&st.store, by.tenant_id).await?, prep);
    store(st, by.tenant_id, judged).await
}

/// Stores a judged interaction and its events in one transaction; returns it once committed.
pub(crate) async fn store(st: &FirewallState, tenant: Uuid, judged: Judged) -> Result<Interaction, ApiError> {
    let Judged { prep, platform_vetted, risk_score, decision, alert, message: _ } = judged;
    let risk_level = decision.risk_level;
    let s = st.clone();
    let interaction = st
        .store
        .write(move |c| -> Result<(Interaction, Vec<&'static str>), StoreError> {
            // Id and time are taken inside the transaction so ids order like commits.
            let now = s.clock.now();
            let i = Interaction {
                id: s.ids.at(now),
                tenant_id: tenant,
                created_at: now,
                platform_id: prep.platform_id,
                platform_vetted,
                interaction_type: prep.interaction_type,
                direction: prep.direction,
                source: prep.source,
                user_id: prep.user_id,
                content_hash: prep.content_hash,
                content_length: prep.content_length,
                content_metadata: prep.content_metadata,
                classification_count: prep.classification_count,
                classifications: prep.classifications,
                risk_score,
                risk_level,
                decision,
                alert,
            };
            store::insert(c, &i)?;
            let data = EventData {
                interaction: &i,
                policy: i.decision.policy_id.map(|id| PolicyRef {
                    id,
                    name: i.decision.policy_name.as_deref().unwrap_or_default(),
                    action: i.decision.action,
                }),
                alert: i.alert.as_ref(),
            };
            let mut kinds = vec![events::INTERACTION_CREATED];
            if data.policy.is_some() {
                kinds.push(events::INTERACTION_POLICY_VIOLATED);
            }
            if i.risk_score >= 0.7 {
                kinds.push(events::INTERACTION_HIGH_RISK);
            }
            if let Some(a) = &i.alert {
                kinds.push(events::alert_event_type(a.severity));
            }
            for kind in &kinds {
                events::emit(c, s.ids.at(now), &s.settings.event_source, tenant, kind, now, &data)?;
            }
            Ok((i, kinds))
        })
        .await;
    let (interaction, kinds) = interaction?;
    st.stats.interactions.get_or_create(&ActionLabel { action: interaction.decision.action.as_str().to_owned() }).inc();
    for k in kinds {
        st.stats.events.get_or_create(&EventLabel { event_type: k.to_owned() }).inc();
    }
    Ok(interaction)
}

/// A page of the tenant's interactions, newest first.
pub async fn list(st: &FirewallState, tenant: Uuid, filter: ListFilter, limit: usize) -> Result<Vec<Interaction>, ApiError> {
    Ok(st.store.read(move |c| store::list(c, tenant, &filter, limit)).await?)
}

/// One interaction of the tenant.
pub async fn get(st: &FirewallState, tenant: Uuid, id: Uuid) -> Result<Interaction, ApiError> {
    st.store.read(move |c| store::get(c, tenant, id)).await.map_err(ApiError::from_store("interaction"))
}

/// The events an interaction of the tenant emitted, as (`evt_…` id, type), on the caller's
/// connection (inside its transaction, for the test-data sweep).
pub(crate) fn event_ids_of(
    c: &rusqlite::Connection,
    tenant: Uuid,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<(String, String)>, StoreError> {
    store::events_of(c, tenant, id, at)
}

/// The events an interaction of the tenant emitted, as (`evt_…` id, type), in writing order.
pub async fn events(st: &FirewallState, i: &Interaction) -> Result<Vec<(String, String)>, ApiError> {
    let (tenant, id, at) = (i.tenant_id, i.id, i.created_at);
    Ok(st.store.read(move |c| store::events_of(c, tenant, id, at)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_loses_raw_text_and_url_paths() {
        let m = json!({
            "url": "https://chatgpt.com/c/abc?q=my+card+4532", "model": "gpt-4o", "text": "secret", "Prompt": "x", "title": "my card",
            "context": {"text": "nested"}, "browser": ["a"], "os": "x".repeat(300), "extension_version": "0.2.1", "conversation_id": 42,
            "app": "card 4532 0151 1283 0366", "client": "jean@acme.fr", "browser_version": "124.0.6367.91",
            "hostname": "4532.0151.1283.0366", "language": "4532/0151/1283/0366", "agent_version": 4532015112830366_u64
        });
        let Value::Object(m) = m else { unreachable!() };
        let out = scrub_metadata(m);
        assert_eq!(
            Value::Object(out),
            json!({"url": "https://chatgpt.com", "model": "gpt-4o", "extension_version": "0.2.1", "conversation_id": 42, "browser_version": "124.0.6367.91"})
        );
        let Value::Object(m) = json!({"url": "https://4532015112830366.example.com/x"}) else { unreachable!() };
        assert!(scrub_metadata(m).is_empty(), "a number hidden in the host survives");
        let Value::Object(m) = json!({"url": "http://10.1.20.30:8080/chat"}) else { unreachable!() };
        assert_eq!(
            Value::Object(scrub_metadata(m)),
            json!({"url": "http://10.1.20.30:8080"}),
            "an internal tool on an IP address keeps its origin"
        );
    }

    fn prepared(body: Value) -> Result<Prepared, ApiError> {
        let mut req: NewInteraction = serde_json::from_value(body).expect("json");
        let scanned = take_text(&mut req).map(|(t, _)| text::analyse(&SCANNER, t));
        prepare(req, scanned, PlatformRule::Required)
    }

    #[test]
    fn text_is_hashed_when_no_hash_is_given_and_then_dropped() {
        for body in [
            json!({"platform_id": "ChatGPT", "text": "héllo"}),
            json!({"platform_id": "ChatGPT", "content_metadata": {"text": "héllo", "model": "gpt-4o"}}),
            json!({"platform_id": "ChatGPT", "text": "héllo", "content_hash": "sha256:3C48591D8D098A4538F5E013DFCF406E948EAC4D3277B10BF614E295D6068179"}),
        ] {
            let Ok(p) = prepared(body.clone()) else { panic!("a valid request: {body}") };
            assert_eq!(
                p.content_hash, "3c48591d8d098a4538f5e013dfcf406e948eac4d3277b10bf614e295d6068179",
                "SHA-256 of the UTF-8 text, as Python's hashlib computes it"
            );
            assert_eq!(p.content_length, Some(5));
            assert_eq!(p.platform_id, "chatgpt");
            assert!(p.content_metadata.as_ref().is_none_or(|m| !m.contains_key("text")));
        }
    }

    #[test]
    fn a_client_hash_that_is_not_the_texts_is_refused() {
        let Err(e) = prepared(json!({"platform_id": "claude", "text": "héllo", "content_hash": "a".repeat(64)})) else {
            panic!("accepted a hash of another text")
        };
        assert_eq!(e.fields[0].field, "content_hash");
        assert!(e.fields[0].message.contains("does not match the SHA-256 of text"), "{}", e.fields[0].message);
    }
}

#[cfg(test)]
static SCANNER: std::sync::LazyLock<vigie_pii::Scanner> = std::sync::LazyLock::new(vigie_pii::Scanner::default);

/// Validates, scans, masks and scrubs a request exactly as [`record`] does (without the size
/// limit), and stores nothing. For fuzzing and property tests of the untrusted-input path.
pub fn check(scanner: &vigie_pii::Scanner, mut req: NewInteraction) -> Result<(), ApiError> {
    let scanned = take_text(&mut req).map(|(t, _)| text::analyse(scanner, t));
    prepare(req, scanned, PlatformRule::Required).map(drop)
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_body_is_accepted_or_refused_cleanly_and_what_is_accepted_is_sane(
            fields in prop::collection::btree_map(
                prop::sample::select(vec!["platform_id", "content_hash", "interaction_type", "content_metadata", "classifications", "risk_score", "direction", "source", "user_id", "text"]).prop_map(str::to_owned),
                crate::test_support::json_value(&["type", "value", "score", "start", "end", "url", "text", "model"]),
                0..10,
            )
        ) {
            let body = serde_json::to_vec(&Value::Object(fields.into_iter().collect())).expect("serialise");
            if let Ok(mut req) = vigie_core::http::parse_json::<NewInteraction>(&body) {
                let scanned = take_text(&mut req).map(|(t, _)| text::analyse(&SCANNER, t));
                if let Ok(p) = prepare(req, scanned, PlatformRule::Required) {
                    let j = judge(&crate::policy::TenantRules::default(), p);
                    prop_assert!((0.0..=1.0).contains(&j.risk_score));
                    let p = j.prep;
                    prop_assert_eq!(p.content_hash.len(), 64);
                    prop_assert!(p.content_metadata.as_ref().is_none_or(|m| !m.contains_key("text")));
                    prop_assert!(p.classifications.iter().all(|c| c.value.as_deref().is_none_or(|v| v.starts_with("****") || v.contains("***@"))));
                }
            }
        }
    }
}
