//! Intake: events in, acknowledged only once durably committed. Native `POST /api/v1/events`
//! takes one JSON object, an array of them, or NDJSON (gzip accepted). A key with a signing
//! secret must sign its deliveries (Standard Webhooks); a repeated event id, or a repeated
//! `webhook-id`, is acknowledged and stored once.
use crate::keys::{Authorized, Caller, EventsWrite};
use crate::state::XdrState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rusqlite::params;

use serde::Serialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::Read;
use utoipa::ToSchema;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;
use vigie_core::http::ApiError;

/// The largest request body, compressed or not, and the largest once decompressed.
pub const MAX_REQUEST: usize = 10 * 1024 * 1024;
/// The largest event, as stored.
pub const MAX_EVENT: usize = 250 * 1024;

/// The answer to an accepted delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accepted {
    /// The id of each event, in the order sent (a repeat has its first id).
    pub event_ids: Vec<String>,
}

/// An event ready for the log.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Its id.
    pub id: String,
    /// Its own time, else the time received (µs).
    pub timestamp: i64,
    /// `event_type`, if it has one.
    pub event_type: Option<String>,
    /// `source`.
    pub source: String,
    /// The event as sent.
    pub body: String,
}

fn too_large(msg: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", msg)
}

/// The body as sent, gunzipped when it says so, at most [`MAX_REQUEST`] either way.
pub fn decode_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Cow<'a, [u8]>, ApiError> {
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(Cow::Borrowed(body));
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(1 << 20));
    // Every member of a multi-member stream (concatenated gzip files), not only the first.
    flate2::read::MultiGzDecoder::new(body)
        .take(MAX_REQUEST as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request("bad_gzip", format!("the body is not valid gzip: {e}")))?;
    if out.len() > MAX_REQUEST {
        return Err(too_large("the body is larger than 10 MiB once decompressed; send fewer events per request".into()));
    }
    Ok(Cow::Owned(out))
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request("malformed_json", format!("the body is not valid JSON at line {}, column {}", e.line(), e.column()))
}

/// The events of a request, each the text of one JSON object: borrowed from the body when it
/// was sent as JSON, built when a compatible form wraps what was sent.
pub type Events<'a> = Vec<Cow<'a, str>>;

/// The events of a body: one object, an array of objects, or objects one per line (NDJSON).
/// Each event is kept as the text sent (validated, not rebuilt).
pub fn parse_events(bytes: &[u8]) -> Result<Events<'_>, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let values: Vec<&RawValue> = match first {
        None => return Err(ApiError::bad_request("malformed_json", "the body is empty; send a JSON object, an array or NDJSON")),
        Some(b'[') => serde_json::from_slice(bytes).map_err(|e| malformed(&e))?,
        Some(_) => {
            serde_json::Deserializer::from_slice(bytes).into_iter::<&RawValue>().collect::<Result<_, _>>().map_err(|e| malformed(&e))?
        }
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v.get().starts_with('{') {
            true => Ok(Cow::Borrowed(v.get())),
            false => Err(ApiError::bad_request("not_an_object", format!("event {i} is not a JSON object"))),
        })
        .collect()
}

/// Built events (the compatible forms) as texts.
pub fn texts(events: Vec<Map<String, Value>>) -> Events<'static> {
    events.into_iter().map(|m| Cow::Owned(Value::Object(m).to_string())).collect()
}

/// The top-level members the log reads from an event, each as its raw JSON, and whether
/// `data` is an object holding an `interaction` object — found in the same single pass that
/// checks the whole event ([`Checked`]); nothing is built.
#[derive(Default)]
struct Head<'a> {
    id: Option<&'a RawValue>,
    timestamp: Option<&'a RawValue>,
    at_timestamp: Option<&'a RawValue>,
    source: Option<&'a RawValue>,
    event_type: Option<&'a RawValue>,
    kind: Option<&'a RawValue>,
    /// `data` is an object.
    data_object: bool,
    /// `data.interaction` is an object.
    interaction_object: bool,
}

/// Reads a [`Head`] while checking the whole event, in one pass.
struct HeadSeed<'s, 'de> {
    names: &'s mut Vec<Cow<'de, str>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for HeadSeed<'_, 'de> {
    type Value = Head<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Head<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

/// Checks a captured value (a few bytes: an id, a time, a type) as [`Checked`] does.
fn check_raw<E: serde::de::Error>(raw: &RawValue) -> Result<(), E> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let mut names = Vec::new();
    serde::de::DeserializeSeed::deserialize(Checked { names: &mut names }, &mut de).map_err(E::custom)
}

impl<'de> Visitor<'de> for HeadSeed<'_, 'de> {
    type Value = Head<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Head<'de>, M::Error> {
        let mut h = Head::default();
        let mut seen = Seen::default();
        while let Some(k) = m.next_key_seed(Name)? {
            seen.add::<M::Error>(self.names, &k)?;
            let slot = match k.as_ref() {
                "id" => &mut h.id,
                "timestamp" => &mut h.timestamp,
                "@timestamp" => &mut h.at_timestamp,
                "source" => &mut h.source,
                "event_type" => &mut h.event_type,
                "type" => &mut h.kind,
                "data" => {
                    let (object, interaction) = m.next_value_seed(DataProbe { names: &mut *self.names })?;
                    (h.data_object, h.interaction_object) = (object, interaction);
                    continue;
                }
                _ => {
                    m.next_value_seed(Checked { names: &mut *self.names })?;
                    continue;
                }
            };
            let raw: &'de RawValue = m.next_value()?;
            check_raw::<M::Error>(raw)?;
            *slot = Some(raw);
        }
        seen.done(self.names);
        Ok(h)
    }
}

/// The member names of one object being read: on the shared stack while few, in a set beyond.
#[derive(Default)]
struct Seen<'de> {
    base: Option<usize>,
    many: Option<std::collections::HashSet<Cow<'de, str>>>,
}

impl<'de> Seen<'de> {
    /// Adds a name; an error when the object already has it.
    #[allow(clippy::ptr_arg)] // the name is kept (borrowed from the text when it can be), not just read
    fn add<E: serde::de::Error>(&mut self, names: &mut Vec<Cow<'de, str>>, k: &Cow<'de, str>) -> Result<(), E> {
        let base = *self.base.get_or_insert(names.len());
        let repeated = match &mut self.many {
            None if names.len() - base < 32 => {
                let r = names[base..].contains(k);
                names.push(k.clone());
                r
            }
            None => {
                let mut set: std::collections::HashSet<Cow<'de, str>> = names.drain(base..).collect();
                let r = !set.insert(k.clone());
                self.many = Some(set);
                r
            }
            Some(set) => !set.insert(k.clone()),
        };
        if repeated {
            return Err(E::custom(format!("the member {:?} appears twice in one object", k.as_ref())));
        }
        Ok(())
    }

    /// The object is read: its names leave the stack.
    fn done(self, names: &mut Vec<Cow<'de, str>>) {
        if let Some(base) = self.base {
            names.truncate(base);
        }
    }
}

/// Checks `data` and tells whether it is an object, and whether its `interaction` is one.
struct DataProbe<'s, 'de> {
    names: &'s mut Vec<Cow<'de, str>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DataProbe<'_, 'de> {
    type Value = (bool, bool);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(bool, bool), D::Error> {
        d.deserialize_any(self)
    }
}

/// Checks a value and tells whether it is an object.
struct IsObject<'s, 'de> {
    names: &'s mut Vec<Cow<'de, str>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for IsObject<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let before = self.names.len();
        let mut object = false;
        d.deserialize_any(Probe { names: &mut *self.names, object: &mut object })?;
        debug_assert_eq!(before, self.names.len());
        Ok(object)
    }
}

/// [`Checked`], noting whether the value was an object.
struct Probe<'s, 'o, 'de> {
    names: &'s mut Vec<Cow<'de, str>>,
    object: &'o mut bool,
}

macro_rules! scalars_ok {
    ($v:ty) => {
        fn visit_bool<E>(self, _: bool) -> Result<$v, E> {
            Ok(Default::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<$v, E> {
            Ok(Default::default())
        }
        fn visit_u64<E>(self, _: u64) -> Result<$v, E> {
            Ok(Default::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<$v, E> {
            Ok(Default::default())
        }
        fn visit_str<E>(self, _: &str) -> Result<$v, E> {
            Ok(Default::default())
        }
        fn visit_unit<E>(self) -> Result<$v, E> {
            Ok(Default::default())
        }
    };
}

impl<'de> Visitor<'de> for Probe<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    scalars_ok!(());
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Checked { names: self.names }.visit_seq(seq)
    }
    fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<(), M::Error> {
        *self.object = true;
        Checked { names: self.names }.visit_map(m)
    }
}

impl<'de> Visitor<'de> for DataProbe<'_, 'de> {
    type Value = (bool, bool);
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    scalars_ok!((bool, bool));
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(bool, bool), A::Error> {
        Checked { names: self.names }.visit_seq(seq)?;
        Ok((false, false))
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(bool, bool), M::Error> {
        let mut interaction = false;
        let mut seen = Seen::default();
        while let Some(k) = m.next_key_seed(Name)? {
            seen.add::<M::Error>(self.names, &k)?;
            if k == "interaction" {
                interaction = m.next_value_seed(IsObject { names: &mut *self.names })?;
            } else {
                m.next_value_seed(Checked { names: &mut *self.names })?;
            }
        }
        seen.done(self.names);
        Ok((true, interaction))
    }
}

/// A raw JSON value as a string, if it is one.
fn string(v: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = v?.get();
    if !raw.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(raw) {
        Ok(s) => Some(Cow::Borrowed(s)),
        // With escapes: unescaped into a new string.
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// What the log reads from one event, before defaults: its own id, time (µs), source and type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFields {
    /// `id`: a non-empty string of at most 200 characters (trimmed), or a number as written.
    pub id: Option<String>,
    /// `timestamp`, else `@timestamp`, when an RFC 3339 time.
    pub timestamp: Option<i64>,
    /// `source`, when a non-blank string.
    pub source: Option<String>,
    /// A firewall event's `type` (`normalize::firewall_fields`); another's `event_type`, else
    /// its `type`.
    pub event_type: Option<String>,
}

/// Checks a JSON value as a full parse would — string escapes, number range, nesting (128
/// levels) — and refuses a member name repeated in one object (readers disagree on which one
/// counts: SQLite takes the first, serde the last), without building anything. The names of
/// the objects being read share one stack (`names`), so an object costs no allocation.
struct Checked<'s, 'de> {
    names: &'s mut Vec<Cow<'de, str>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Checked<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// A member name, borrowed from the text when it has no escapes.
struct Name;

impl<'de> serde::de::DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(Name)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

impl<'de> Visitor<'de> for Checked<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked { names: &mut *self.names })?.is_some() {}
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        let mut seen = Seen::default();
        while let Some(k) = m.next_key_seed(Name)? {
            seen.add::<M::Error>(self.names, &k)?;
            m.next_value_seed(Checked { names: &mut *self.names })?;
        }
        seen.done(self.names);
        Ok(())
    }
}

/// Reads [`LogFields`] from the text of one JSON object while checking it as a full parse
/// would (`Checked`): one pass, nothing built.
pub fn log_fields(text: &str) -> Result<LogFields, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut names = Vec::new();
    let head = serde::de::DeserializeSeed::deserialize(HeadSeed { names: &mut names }, &mut de)?;
    de.end()?;
    let id = match head.id {
        Some(raw) if raw.get().starts_with('"') => {
            string(Some(raw)).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s.len() <= 200)
        }
        // A number is kept as written.
        Some(raw) if raw.get().starts_with(|c: char| c == '-' || c.is_ascii_digit()) => Some(raw.get().to_owned()),
        _ => None,
    };
    let source = string(head.source).filter(|s| !s.trim().is_empty()).map(Cow::into_owned);
    let timestamp = string(head.timestamp.or(head.at_timestamp))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.timestamp_micros());
    let event_type = match (string(head.event_type), string(head.kind)) {
        (Some(e), Some(k)) if e != k => {
            let firewall =
                head.data_object && (head.interaction_object || ["alert.", "policy.", "webhook."].iter().any(|p| k.starts_with(p)));
            Some(if firewall { k } else { e })
        }
        (e, k) => e.or(k),
    }
    .map(Cow::into_owned);
    Ok(LogFields { id, timestamp, source, event_type })
}

/// Reads what the log needs from `events` for `caller`'s space ([`log_fields`], with defaults:
/// a new UUIDv7, the time received, the key's default source or `api`); the event itself is
/// stored as sent.
pub fn prepare(st: &XdrState, caller: &Caller, events: Events<'_>, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Prepared>, ApiError> {
    let received = to_micros(now);
    let mut out = Vec::with_capacity(events.len());
    for (i, text) in events.into_iter().enumerate() {
        if text.len() > MAX_EVENT {
            return Err(too_large(format!("event {i} is {} KiB; an event has at most 250 KiB", text.len() / 1024)));
        }
        let f = log_fields(&text).map_err(|e| {
            let what = e.to_string();
            let what = what.split(" at line ").next().unwrap_or(&what).to_owned();
            ApiError::bad_request(
                "malformed_json",
                format!("event {i} is not valid JSON at line {}, column {} of the event: {what}", e.line(), e.column()),
            )
        })?;
        out.push(Prepared {
            id: f.id.unwrap_or_else(|| st.ids.at(now).to_string()),
            // A time far in the future (a wrong clock) is indexed at a day ahead at most; the
            // event keeps what it said.
            timestamp: f.timestamp.unwrap_or(received).min(received + 86_400_000_000),
            event_type: f.event_type,
            source: f.source.or_else(|| caller.default_source.clone()).unwrap_or_else(|| "api".into()),
            body: text.into_owned(),
        });
    }
    Ok(out)
}

/// Appends `events` to space `space_no`'s log, on the caller's transaction; an id the space
/// already holds is skipped. Returns how many were stored.
pub fn insert_events(c: &rusqlite::Connection, space_no: i64, received: i64, events: &[Prepared]) -> Result<usize, StoreError> {
    let mut insert = c.prepare_cached(
        "INSERT INTO events (space_no, id, received_at, timestamp, event_type, source, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (space_no, id) DO NOTHING",
    )?;
    let mut stored = 0;
    for e in events {
        stored += insert.execute(params![space_no, e.id, received, e.timestamp, e.event_type, e.source, e.body])?;
    }
    Ok(stored)
}

/// Stores the events of every group (a space and its events) in one group-committed write and
/// returns each group's ids once committed. With a `message_id` (the delivery's `webhook-id`),
/// a group whose space already took that message stores nothing and gets the first answer:
/// checked inside the transaction, so concurrent repeats cannot both store.
pub async fn store_groups(
    st: &XdrState,
    groups: Vec<(Caller, Vec<Prepared>)>,
    message_id: Option<String>,
) -> Result<Vec<Vec<String>>, ApiError> {
    let received = to_micros(st.clock.now());
    let answers = st
        .store
        .write(move |c| {
            let mut answers: Vec<Vec<String>> = groups.iter().map(|(_, events)| events.iter().map(|e| e.id.clone()).collect()).collect();
            // Groups of one space (two keys of it in one /array) share its message record.
            let mut spaces: Vec<(String, i64, Vec<usize>)> = Vec::new();
            for (g, (caller, _)) in groups.iter().enumerate() {
                match spaces.iter_mut().find(|(_, no, _)| *no == caller.space_no) {
                    Some((_, _, gs)) => gs.push(g),
                    None => spaces.push((caller.space_id.to_string(), caller.space_no, vec![g])),
                }
            }
            for (space, space_no, gs) in &spaces {
                if let Some(m) = &message_id {
                    let all: Vec<&String> = gs.iter().flat_map(|g| answers[*g].iter()).collect();
                    let taken = c
                        .prepare_cached("INSERT INTO intake_messages (space_id, message_id, event_ids, received_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")?
                        .execute(params![space, m, serde_json::to_string(&all)?, received])?;
                    if taken == 0 {
                        // A redelivery: the first answer, split back over the same groups.
                        let first: String = c
                            .prepare_cached("SELECT event_ids FROM intake_messages WHERE space_id = ?1 AND message_id = ?2")?
                            .query_row(params![space, m], |r| r.get(0))?;
                        let mut first: std::collections::VecDeque<String> = serde_json::from_str::<Vec<String>>(&first)?.into();
                        for g in gs {
                            let n = answers[*g].len();
                            answers[*g] = (0..n).map(|_| first.pop_front().unwrap_or_default()).collect();
                        }
                        continue;
                    }
                }
                for g in gs {
                    insert_events(c, *space_no, received, &groups[*g].1)?;
                }
            }
            Ok::<_, StoreError>(answers)
        })
        .await
        .map_err(ApiError::from)?;
    st.appended.send_modify(|n| *n += 1);
    Ok(answers)
}

/// Checks the Standard Webhooks signature when the key has a secret; returns the delivery's
/// `webhook-id`, if any.
pub fn check_signature(caller: &Caller, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Option<String>, ApiError> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(secret) = &caller.signing_secret {
        vigie_webhook::verify(header, body, &[secret], now, vigie_webhook::signature::DEFAULT_TOLERANCE_SECS).map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                format!("this key takes only signed deliveries (Standard Webhooks): {e}"),
            )
        })?;
    }
    Ok(header("webhook-id").map(str::trim).filter(|m| !m.is_empty() && m.len() <= 200).map(str::to_owned))
}

/// The whole intake path of a body of events for one key.
pub async fn accept(
    st: &XdrState,
    caller: &Caller,
    headers: &HeaderMap,
    raw: &[u8],
    events: impl for<'b> FnOnce(&'b [u8]) -> Result<Events<'b>, ApiError>,
) -> Result<Accepted, ApiError> {
    let body = decode_body(headers, raw)?;
    let parsed = events(&body)?;
    let mut answers = accept_groups(st, headers, raw, vec![(caller.clone(), parsed)]).await?;
    Ok(Accepted { event_ids: answers.pop().unwrap_or_default() })
}

/// Several keys' events from one request (Sekoia's `/array`), all or nothing: signatures
/// checked for every key, then one transaction.
pub async fn accept_groups(
    st: &XdrState,
    headers: &HeaderMap,
    raw: &[u8],
    groups: Vec<(Caller, Events<'_>)>,
) -> Result<Vec<Vec<String>>, ApiError> {
    let now = st.clock.now();
    let mut message_id = None;
    let mut prepared = Vec::with_capacity(groups.len());
    for (caller, events) in groups {
        message_id = check_signature(&caller, headers, raw, now.timestamp())?;
        let p = prepare(st, &caller, events, now)?;
        prepared.push((caller, p));
    }
    store_groups(st, prepared, message_id).await
}

/// Send events (scope `events_write`): one JSON object, an array of objects or NDJSON, gzip
/// accepted; answered after the events are durably committed. At most 10 MiB per request and
/// 250 KiB per event.
#[utoipa::path(post, path = "/api/v1/events", tag = "intake", security(("bearer" = [])),
    request_body(content = String, description = "a JSON object, an array of objects, or NDJSON"),
    responses((status = 200, body = Accepted), (status = 400), (status = 401), (status = 403), (status = 413)))]
pub async fn events_post(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsWrite>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large("the request is larger than 10 MiB; send fewer events per request".into())
        } else {
            ApiError::bad_request("unreadable_body", format!("the request body could not be read: {r}"))
        }
    })?;
    Ok(Json(accept(&st, &caller, &headers, &body, parse_events).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_arrays_and_ndjson_are_read_and_errors_say_where() {
        assert_eq!(parse_events(br#"{"a": 1}"#).expect("object").len(), 1);
        assert_eq!(parse_events(br#" [{"a": 1}, {"b": 2}] "#).expect("array").len(), 2);
        assert_eq!(parse_events(b"{\"a\": 1}\n{\"b\": 2}\n\n{\"c\": 3}\n").expect("ndjson").len(), 3);
        let e = parse_events(b"{\"a\": 1}\n{\"b\": }\n").expect_err("malformed");
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert_eq!(parse_events(b"[1]").expect_err("not an object").code, "not_an_object");
        assert!(parse_events(b"  ").is_err());
    }
}
