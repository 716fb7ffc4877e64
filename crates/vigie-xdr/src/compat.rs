//! The intake forms of other products, so their senders point at Vigie unchanged:
//! Sekoia.io's HTTP intake (`/plain`, `/plain/batch`, `/jsons`, `/`, `/batch`, `/array`; the key
//! in `X-SEKOIAIO-INTAKE-KEY`, as a Basic password, as `?intake_key=`, or in the body of the
//! structured forms) and Splunk's HTTP Event Collector (`/services/collector/event`,
//! `/services/collector/raw`, `Authorization: Splunk <token>`). Every form goes through the same
//! path as the native intake: signature, idempotence, limits, the durable commit.
use crate::intake::{Accepted, Events, accept, texts};
use crate::keys::{Authorized, Caller, EventsWrite, Scope, presented_key};
use crate::state::XdrState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;
use serde_json::{Map, Value, json};
use vigie_core::http::ApiError;

/// An event sent as a string: a JSON object inside is read as the event; anything else is kept
/// as its `message`.
pub fn from_string(s: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => m,
        _ => {
            let mut m = Map::new();
            m.insert("message".into(), Value::String(s.to_owned()));
            m
        }
    }
}

fn from_value(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::String(s) => from_string(&s),
        other => {
            let mut m = Map::new();
            m.insert("message".into(), other);
            m
        }
    }
}

/// `X-SEKOIAIO-EVENT-TIMESTAMP` sets the time of events that carry none; the events as texts.
fn with_timestamp(headers: &HeaderMap, mut events: Vec<Map<String, Value>>) -> Events<'static> {
    if let Some(t) = headers
        .get("x-sekoiaio-event-timestamp")
        .and_then(|v| v.to_str().ok())
        .filter(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).is_ok())
    {
        for e in &mut events {
            e.entry("timestamp").or_insert_with(|| Value::String(t.trim().to_owned()));
        }
    }
    texts(events)
}

async fn caller_for(st: &XdrState, key: Option<String>) -> Result<Caller, ApiError> {
    let key = key.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the intake key (X-SEKOIAIO-INTAKE-KEY, a Basic password, ?intake_key= or in the body)",
        )
    })?;
    let caller = st.keys.authenticate(&key).await?;
    caller.require(Scope::EventsWrite)?;
    Ok(caller)
}

fn body_or_error(body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request is larger than 10 MiB; send fewer events per request",
            )
        } else {
            ApiError::bad_request("unreadable_body", format!("the request body could not be read: {r}"))
        }
    })
}

fn key_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let mut req = axum::http::Request::builder().uri(uri.clone()).body(()).ok()?;
    *req.headers_mut() = headers.clone();
    let (parts, _) = req.into_parts();
    presented_key(&parts)
}

/// One event's answer (`/plain`, `/`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptedOne {
    /// The event's id.
    pub event_id: String,
}

fn one(a: Accepted) -> Json<AcceptedOne> {
    Json(AcceptedOne { event_id: a.event_ids.into_iter().next().unwrap_or_default() })
}

/// Sekoia.io `/plain`: the body is one event.
#[utoipa::path(post, path = "/plain", tag = "intake", request_body(content = String), responses((status = 200, body = AcceptedOne)))]
pub async fn plain(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsWrite>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<AcceptedOne>, ApiError> {
    let raw = body_or_error(body)?;
    let h = headers.clone();
    let a = accept(&st, &caller, &headers, &raw, move |b| Ok(with_timestamp(&h, vec![from_string(&String::from_utf8_lossy(b))]))).await?;
    Ok(one(a))
}

/// Sekoia.io `/plain/batch`: one event per line.
#[utoipa::path(post, path = "/plain/batch", tag = "intake", request_body(content = String), responses((status = 200, body = Accepted)))]
pub async fn plain_batch(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsWrite>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let raw = body_or_error(body)?;
    let h = headers.clone();
    let a = accept(&st, &caller, &headers, &raw, move |b| {
        let text = String::from_utf8_lossy(b);
        Ok(with_timestamp(&h, text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()).map(from_string).collect()))
    })
    .await?;
    Ok(Json(a))
}

/// Follows a `$.a.b` path to the array of events inside a JSON object.
fn at_path<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let rest = path.trim().strip_prefix('$')?;
    let mut cur = v;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Sekoia.io `/jsons`: a JSON array of events (strings or objects), or with `?path=$.a.b` the
/// array inside a JSON object.
#[utoipa::path(post, path = "/jsons", tag = "intake", request_body(content = String), responses((status = 200, body = Accepted)))]
pub async fn jsons(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsWrite>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let raw = body_or_error(body)?;
    let path =
        uri.query().and_then(|q| q.split('&').find_map(|p| p.strip_prefix("path="))).map(|p| p.replace("%24", "$").replace("%2E", "."));
    let h = headers.clone();
    let a = accept(&st, &caller, &headers, &raw, move |b| {
        let v: Value = serde_json::from_slice(b).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON at line {}, column {}", e.line(), e.column()))
        })?;
        let list = match &path {
            Some(p) => {
                at_path(&v, p).ok_or_else(|| ApiError::bad_request("bad_path", format!("{p} points at nothing in the body")))?.clone()
            }
            None => v,
        };
        let Value::Array(items) = list else {
            return Err(ApiError::bad_request("not_an_array", "/jsons takes a JSON array of events (or ?path= to one)"));
        };
        Ok(with_timestamp(&h, items.into_iter().map(from_value).collect()))
    })
    .await?;
    Ok(Json(a))
}

/// The body of a structured form (`/batch`, `/`) and the caller its key names (in the request,
/// or as the body's `intake_key`).
async fn structured(st: &XdrState, uri: &Uri, headers: &HeaderMap, raw: &[u8]) -> Result<(Value, Caller), ApiError> {
    let decoded = crate::intake::decode_body(headers, raw)?;
    let doc = json_doc(&decoded)?;
    let key = key_of(headers, uri).or_else(|| doc.get("intake_key").and_then(Value::as_str).map(str::to_owned));
    let caller = caller_for(st, key).await?;
    Ok((doc, caller))
}

fn json_doc(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON at line {}, column {}", e.line(), e.column()))
    })
}

/// Sekoia.io `/batch`: `{"intake_key", "jsons": ["<event>", …]}`.
#[utoipa::path(post, path = "/batch", tag = "intake", request_body(content = String), responses((status = 200, body = Accepted)))]
pub async fn batch(
    State(st): State<XdrState>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let raw = body_or_error(body)?;
    let (doc, caller) = structured(&st, &uri, &headers, &raw).await?;
    let h = headers.clone();
    let a = accept(&st, &caller, &headers, &raw, move |_| {
        let mut doc = doc;
        let Some(Value::Array(items)) = doc.get_mut("jsons").map(Value::take) else {
            return Err(ApiError::bad_request("missing_jsons", "/batch takes {\"intake_key\", \"jsons\": [\"<event>\", …]}"));
        };
        Ok(with_timestamp(&h, items.into_iter().map(from_value).collect()))
    })
    .await?;
    Ok(Json(a))
}

/// Sekoia.io `/`: `{"intake_key", "json": "<event>", "@timestamp"}`.
#[utoipa::path(post, path = "/", tag = "intake", request_body(content = String), responses((status = 200, body = AcceptedOne)))]
pub async fn single(
    State(st): State<XdrState>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<AcceptedOne>, ApiError> {
    let raw = body_or_error(body)?;
    let (doc, caller) = structured(&st, &uri, &headers, &raw).await?;
    let h = headers.clone();
    let a = accept(&st, &caller, &headers, &raw, move |_| {
        let event = doc
            .get("json")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("missing_json", "/ takes {\"intake_key\", \"json\": \"<event>\"}"))?;
        let mut e = from_value(event);
        if let Some(t) = doc.get("@timestamp").and_then(Value::as_str) {
            e.entry("timestamp").or_insert_with(|| Value::String(t.to_owned()));
        }
        Ok(with_timestamp(&h, vec![e]))
    })
    .await?;
    Ok(one(a))
}

/// The most distinct intake keys one `/array` request may name.
pub const MAX_ARRAY_KEYS: usize = 16;

/// Sekoia.io `/array`: `[{"intake_key", "json": "<event>", "timestamp"}, …]`; each item may
/// name another intake (space). Every key must be valid (at most 16 distinct), and the whole
/// request is stored in one transaction: all or nothing.
#[utoipa::path(post, path = "/array", tag = "intake", request_body(content = String), responses((status = 200, body = Accepted)))]
pub async fn array(
    State(st): State<XdrState>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let raw = body_or_error(body)?;
    let decoded = crate::intake::decode_body(&headers, &raw)?;
    let doc: Value = serde_json::from_slice(&decoded).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON at line {}, column {}", e.line(), e.column()))
    })?;
    let Value::Array(items) = doc else {
        return Err(ApiError::bad_request("not_an_array", "/array takes [{\"intake_key\", \"json\"}, …]"));
    };
    let request_key = key_of(&headers, &uri);
    let mut by_key: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(String, Positioned)> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut item) = item else {
            return Err(ApiError::bad_request("not_an_object", format!("item {i} is not an object")));
        };
        let key = item.get("intake_key").and_then(Value::as_str).map(|k| k.trim().to_owned()).or_else(|| request_key.clone());
        let key = key.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", format!("item {i} names no intake_key")))?;
        let event = item.remove("json").ok_or_else(|| ApiError::bad_request("missing_json", format!("item {i} has no \"json\"")))?;
        let mut e = from_value(event);
        if let Some(t) = item.get("timestamp").and_then(Value::as_str) {
            e.entry("timestamp").or_insert_with(|| Value::String(t.to_owned()));
        }
        let slot = match by_key.get(&key) {
            Some(&g) => g,
            None => {
                if groups.len() == MAX_ARRAY_KEYS {
                    return Err(ApiError::bad_request(
                        "too_many_keys",
                        format!("one /array request names at most {MAX_ARRAY_KEYS} intake keys"),
                    ));
                }
                by_key.insert(key.clone(), groups.len());
                groups.push((key, Vec::new()));
                groups.len() - 1
            }
        };
        groups[slot].1.push((i, e));
    }
    let total: usize = groups.iter().map(|(_, g)| g.len()).sum();
    let mut callers = Vec::with_capacity(groups.len());
    let mut positions = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        let caller = caller_for(&st, Some(key)).await?;
        let (pos, events): (Vec<usize>, Vec<Map<String, Value>>) = group.into_iter().unzip();
        let events = with_timestamp(&headers, events);
        callers.push((caller, events));
        positions.push(pos);
    }
    let answers = crate::intake::accept_groups(&st, &headers, &raw, callers).await?;
    let mut ids = vec![String::new(); total];
    for (pos, answer) in positions.into_iter().zip(answers) {
        for (p, id) in pos.into_iter().zip(answer) {
            ids[p] = id;
        }
    }
    Ok(Json(Accepted { event_ids: ids }))
}

/// Events with their positions in the request.
type Positioned = Vec<(usize, Map<String, Value>)>;

/// Splunk HEC's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HecAnswer {
    /// `Success`.
    pub text: &'static str,
    /// 0.
    pub code: u8,
}

/// An error in the shape HEC clients read, `{"text", "code"}` with Splunk's codes (2 token
/// required, 3 invalid authorization, 4 invalid token, 5 no data, 6 invalid data format, 8
/// internal error, 9 busy, 12 event field required); the status stays Vigie's (401 missing or
/// bad key, 403 missing scope, 413, 429 with `Retry-After`).
#[derive(Debug)]
pub struct HecError(pub ApiError);

impl From<ApiError> for HecError {
    fn from(e: ApiError) -> HecError {
        HecError(e)
    }
}

impl HecError {
    /// Splunk's code for this error.
    pub fn code(&self) -> u8 {
        let e = &self.0;
        match (e.status, e.code.as_ref()) {
            (StatusCode::UNAUTHORIZED, "bad_signature") | (StatusCode::FORBIDDEN, _) => 3,
            (StatusCode::UNAUTHORIZED, _) if e.message.starts_with("send ") => 2,
            (StatusCode::UNAUTHORIZED, _) => 4,
            (_, "no_data") => 5,
            (_, "missing_event") => 12,
            (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE, _) => 9,
            (s, _) if s.is_server_error() => 8,
            _ => 6,
        }
    }
}

impl axum::response::IntoResponse for HecError {
    fn into_response(self) -> axum::response::Response {
        let code = self.code();
        let mut resp = (self.0.status, Json(json!({"text": self.0.message, "code": code}))).into_response();
        if let Some(secs) = self.0.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if self.0.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Splunk"));
        }
        resp
    }
}

/// A HEC event: `{"time", "host", "source", "sourcetype", "index", "event", "fields"}`.
fn from_hec(v: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut h) = v else { return Err(ApiError::bad_request("not_an_object", "each HEC event is a JSON object")) };
    let event = h.remove("event").ok_or_else(|| ApiError::bad_request("missing_event", "a HEC event needs an \"event\" field"))?;
    let mut e = from_value(event);
    if let Some(Value::Object(fields)) = h.remove("fields") {
        for (k, v) in fields {
            e.entry(k).or_insert(v);
        }
    }
    if let Some(t) = h.get("time").and_then(|t| t.as_f64().or_else(|| t.as_str().and_then(|s| s.parse().ok())))
        && let Some(dt) = chrono::DateTime::from_timestamp_micros((t * 1e6) as i64)
    {
        e.entry("timestamp").or_insert_with(|| json!(dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
    }
    for k in ["source", "host", "sourcetype", "index"] {
        if let Some(v) = h.remove(k) {
            e.entry(k).or_insert(v);
        }
    }
    Ok(e)
}

/// Splunk HEC `/services/collector/event` (and `/services/collector`): HEC events, concatenated
/// or one per line; `Authorization: Splunk <token>`.
#[utoipa::path(post, path = "/services/collector/event", tag = "intake", request_body(content = String), responses((status = 200, body = HecAnswer)))]
pub async fn hec_event(
    State(st): State<XdrState>,
    auth: Result<Authorized<EventsWrite>, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<HecAnswer>, HecError> {
    let Authorized(caller, _) = auth?;
    let raw = body_or_error(body)?;
    accept(&st, &caller, &headers, &raw, |b| {
        let values: Vec<Value> = serde_json::Deserializer::from_slice(b).into_iter::<Value>().collect::<Result<_, _>>().map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON at line {}, column {}", e.line(), e.column()))
        })?;
        if values.is_empty() {
            return Err(ApiError::bad_request("no_data", "no HEC event in the body"));
        }
        Ok(texts(values.into_iter().map(from_hec).collect::<Result<_, _>>()?))
    })
    .await?;
    Ok(Json(HecAnswer { text: "Success", code: 0 }))
}

/// Splunk HEC `/services/collector/raw`: raw text, one event per line.
#[utoipa::path(post, path = "/services/collector/raw", tag = "intake", request_body(content = String), responses((status = 200, body = HecAnswer)))]
pub async fn hec_raw(
    State(st): State<XdrState>,
    auth: Result<Authorized<EventsWrite>, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<HecAnswer>, HecError> {
    let Authorized(caller, _) = auth?;
    let raw = body_or_error(body)?;
    accept(&st, &caller, &headers, &raw, |b| {
        let text = String::from_utf8_lossy(b);
        let events: Vec<Map<String, Value>> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut m = Map::new();
                m.insert("message".into(), Value::String(l.trim_end_matches('\r').to_owned()));
                m
            })
            .collect();
        if events.is_empty() {
            return Err(ApiError::bad_request("no_data", "the body is empty"));
        }
        Ok(texts(events))
    })
    .await?;
    Ok(Json(HecAnswer { text: "Success", code: 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_holding_json_objects_are_read_as_events_and_others_kept_as_messages() {
        assert_eq!(from_string("{\"user\": \"bob\"}")["user"], "bob");
        assert_eq!(from_string("<13>Nov 28 sshd: failed")["message"], "<13>Nov 28 sshd: failed");
        assert_eq!(from_string("[1, 2]")["message"], "[1, 2]");
    }

    #[test]
    fn hec_events_keep_their_time_source_and_fields() {
        let e =
            from_hec(json!({"time": 1795856400.5, "source": "fw", "host": "h1", "event": {"a": 1}, "fields": {"dc": "par"}})).expect("hec");
        assert_eq!(
            (e["a"].as_i64(), e["source"].as_str(), e["host"].as_str(), e["dc"].as_str()),
            (Some(1), Some("fw"), Some("h1"), Some("par"))
        );
        assert_eq!(e["timestamp"], "2026-11-28T09:00:00.500000Z");
        assert!(from_hec(json!({"time": 1})).is_err());
    }

    #[test]
    fn a_json_path_finds_the_array() {
        let v = json!({"a": {"b": [1, 2]}});
        assert_eq!(at_path(&v, "$.a.b"), Some(&json!([1, 2])));
        assert_eq!(at_path(&v, "$.x"), None);
    }
}
