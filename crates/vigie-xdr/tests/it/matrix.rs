//! Issue 5, security: the matrix of scopes and spaces. Every endpoint refuses a request without
//! a key (401), with an unknown key (401) and with a key lacking its scope (403) — and a refused
//! request changes nothing — and serves a key holding its scope. No read, listing or revocation
//! through one space's key ever reaches another space's data.
use crate::TestXdr;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use vigie_xdr::keys::{NewKey, Scope};

/// Where a request carries its key: each form the way its senders do.
#[derive(Debug, Clone, Copy)]
enum KeyIn {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `X-SEKOIAIO-INTAKE-KEY: <key>`.
    IntakeHeader,
    /// `Authorization: Basic` with the key as the password.
    Basic,
    /// `?intake_key=<key>`.
    Query,
    /// `Authorization: Splunk <key>`.
    Splunk,
    /// `"intake_key"` in the JSON body (the body builder puts it there).
    Body,
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Delete,
}

/// What a served request does, checked after it (and checked not done after a refused one).
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// Stores one event whose `message` is the request's marker, in the key's space.
    StoresEvent,
    /// Reads: the answer is a page of events.
    ListsEvents,
    /// Reads: the answer is the seed event.
    ReadsSeed,
    /// Searches: the answer's items are the seed event alone.
    FindsSeed,
    /// Creates a key named with the marker in the key's space.
    CreatesKey,
    /// Reads: the answer is a page of the space's keys.
    ListsKeys,
    /// Revokes the victim key named in the path.
    RevokesVictim,
}

/// One row of the matrix. `path` may hold `{seed}` (an event of the space) or `{victim}` (a
/// fresh key of the space, one per request); `body` gets the key when it travels in the body
/// (`None`: no key) and the request's marker.
struct Endpoint {
    method: Method,
    path: &'static str,
    key_in: KeyIn,
    needs: Scope,
    ok: StatusCode,
    effect: Effect,
    body: fn(Option<&str>, &str) -> String,
}

fn no_body(_: Option<&str>, _: &str) -> String {
    String::new()
}

fn event(marker: &str) -> Value {
    json!({"id": marker, "message": marker})
}

/// `"intake_key": key,` when there is one.
fn with_key(key: Option<&str>, mut v: Value) -> String {
    if let (Some(k), Some(o)) = (key, v.as_object_mut()) {
        o.insert("intake_key".into(), json!(k));
    }
    v.to_string()
}

fn row(
    method: Method,
    path: &'static str,
    key_in: KeyIn,
    needs: Scope,
    ok: StatusCode,
    effect: Effect,
    body: fn(Option<&str>, &str) -> String,
) -> Endpoint {
    Endpoint { method, path, key_in, needs, ok, effect, body }
}

/// Every endpoint holding space data, the scope it needs and what it does when served.
fn endpoints() -> Vec<Endpoint> {
    use Effect::*;
    use KeyIn::*;
    use Method::*;
    vec![
        // Native intake and the event log.
        row(Post, "/api/v1/events", Bearer, Scope::EventsWrite, StatusCode::OK, StoresEvent, |_, m| event(m).to_string()),
        row(Get, "/api/v1/events", Bearer, Scope::EventsRead, StatusCode::OK, ListsEvents, no_body),
        row(Get, "/api/v1/events/{seed}", Bearer, Scope::EventsRead, StatusCode::OK, ReadsSeed, no_body),
        row(Get, "/api/v1/events/search?q=id%20%3D%3D%20%22{seed}%22", Bearer, Scope::EventsRead, StatusCode::OK, FindsSeed, no_body),
        row(Post, "/api/v1/events/search", Bearer, Scope::EventsRead, StatusCode::OK, FindsSeed, |_, _| {
            json!({"q": "id == \"seed-event\""}).to_string()
        }),
        // Keys.
        row(Post, "/api/v1/keys", Bearer, Scope::Admin, StatusCode::CREATED, CreatesKey, |_, m| {
            json!({"name": m, "scopes": ["events_read"]}).to_string()
        }),
        row(Get, "/api/v1/keys", Bearer, Scope::Admin, StatusCode::OK, ListsKeys, no_body),
        row(Delete, "/api/v1/keys/{victim}", Bearer, Scope::Admin, StatusCode::OK, RevokesVictim, no_body),
        // Sekoia.io's intake forms.
        row(Post, "/plain", IntakeHeader, Scope::EventsWrite, StatusCode::OK, StoresEvent, |_, m| event(m).to_string()),
        row(Post, "/plain/batch", Basic, Scope::EventsWrite, StatusCode::OK, StoresEvent, |_, m| format!("{}\n", event(m))),
        row(Post, "/jsons", Query, Scope::EventsWrite, StatusCode::OK, StoresEvent, |_, m| json!([event(m)]).to_string()),
        row(Post, "/batch", Body, Scope::EventsWrite, StatusCode::OK, StoresEvent, |k, m| {
            with_key(k, json!({"jsons": [event(m).to_string()]}))
        }),
        row(Post, "/", Body, Scope::EventsWrite, StatusCode::OK, StoresEvent, |k, m| with_key(k, json!({"json": event(m).to_string()}))),
        row(Post, "/array", Body, Scope::EventsWrite, StatusCode::OK, StoresEvent, |k, m| {
            format!("[{}]", with_key(k, json!({"json": event(m).to_string()})))
        }),
        // Splunk HEC.
        row(Post, "/services/collector/event", Splunk, Scope::EventsWrite, StatusCode::OK, StoresEvent, |_, m| {
            json!({"event": event(m)}).to_string()
        }),
        row(Post, "/services/collector/raw", Splunk, Scope::EventsWrite, StatusCode::OK, StoresEvent, |_, m| format!("{m}\n")),
    ]
}

/// The keys the matrix tries on every endpoint.
#[derive(Debug, Clone, Copy)]
enum Credential {
    /// No key at all: 401.
    None,
    /// A well-formed key that does not exist: 401.
    Unknown,
    /// A key holding exactly this one scope: served when it is the endpoint's, else 403.
    Only(Scope),
    /// A key holding every scope but this one: 403 on the endpoints that need it.
    AllBut(Scope),
}

/// The single scopes tried: the three the endpoints need and one unrelated.
const SINGLE_SCOPES: [Scope; 4] = [Scope::EventsWrite, Scope::EventsRead, Scope::Admin, Scope::RulesRead];

impl Credential {
    fn scopes(self) -> Vec<Scope> {
        match self {
            Credential::None | Credential::Unknown => vec![],
            Credential::Only(s) => vec![s],
            Credential::AllBut(s) => Scope::ALL.into_iter().filter(|x| *x != s).collect(),
        }
    }

    /// The answer expected from `e`: the endpoint's success, or the refusal's status and code.
    fn expect(self, e: &Endpoint) -> Result<StatusCode, (StatusCode, &'static str)> {
        match self {
            Credential::None | Credential::Unknown => Err((StatusCode::UNAUTHORIZED, "unauthorized")),
            c if c.scopes().contains(&e.needs) => Ok(e.ok),
            _ => Err((StatusCode::FORBIDDEN, "forbidden")),
        }
    }
}

/// A space and what the matrix needs of it.
struct Space {
    id: Uuid,
    name: &'static str,
}

impl Space {
    async fn new(x: &TestXdr, name: &'static str) -> Space {
        Space { id: x.state.keys.ensure_space(name).await.expect("space").id, name }
    }

    /// A key of this space with `scopes`: its id and the key.
    async fn key(&self, x: &TestXdr, scopes: &[Scope], label: &str) -> (Uuid, String) {
        let new = NewKey {
            name: format!("{} {label}", self.name),
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            ..Default::default()
        };
        let k = x.state.keys.create(self.id, new, None).await.expect("key");
        (k.key.id, k.secret_key)
    }

    fn count(&self, x: &TestXdr, table: &str, filter: &str) -> i64 {
        // The log carries the space's number, the other tables its id.
        let space = match table {
            "events" => format!("space_no = (SELECT no FROM spaces WHERE id = '{}')", self.id),
            _ => format!("space_id = '{}'", self.id),
        };
        x.count(&format!("SELECT COUNT(*) FROM {table} WHERE {space} AND {filter}"))
    }
}

/// Whether `answer` carries refusal `code` in `e`'s error shape: Vigie's, or Splunk HEC's
/// numeric codes (2 token required or 4 invalid token for 401, 3 for 403).
fn refused_as(e: &Endpoint, code: &str, answer: &Value) -> bool {
    if !e.path.starts_with("/services/collector") {
        return answer["code"] == code;
    }
    match (code, answer["code"].as_u64()) {
        ("unauthorized", Some(c)) => c == 2 || c == 4,
        ("forbidden", Some(c)) => c == 3,
        _ => false,
    }
}

/// Sends `e`'s request with `key` (carried the endpoint's way) on `path`.
async fn send(x: &TestXdr, e: &Endpoint, path: &str, key: Option<&str>, marker: &str) -> (StatusCode, Value) {
    let url = format!("{}{path}", x.base);
    let mut req = match e.method {
        Method::Get => x.http.get(url),
        Method::Post => x.http.post(url),
        Method::Delete => x.http.delete(url),
    };
    if let Some(k) = key {
        req = match e.key_in {
            KeyIn::Bearer => req.bearer_auth(k),
            KeyIn::IntakeHeader => req.header("x-sekoiaio-intake-key", k),
            KeyIn::Basic => req.basic_auth("intake", Some(k)),
            KeyIn::Query => req.query(&[("intake_key", k)]),
            KeyIn::Splunk => req.header("authorization", format!("Splunk {k}")),
            KeyIn::Body => req,
        };
    }
    if matches!(e.method, Method::Post) {
        req = req.body((e.body)(key.filter(|_| matches!(e.key_in, KeyIn::Body)), marker));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Whether `e`'s effect is there after a request with `marker` (on `victim`, for a revocation);
/// for the reads, whether `answer` is what a served read answers.
fn done(x: &TestXdr, space: &Space, e: &Endpoint, marker: &str, victim: Option<Uuid>, seed: &str, answer: &Value) -> bool {
    match e.effect {
        Effect::StoresEvent => space.count(x, "events", &format!("json_extract(body, '$.message') = '{marker}'")) == 1,
        Effect::CreatesKey => space.count(x, "api_keys", &format!("name = '{marker}'")) == 1,
        Effect::RevokesVictim => {
            let victim = victim.expect("a victim");
            space.count(x, "api_keys", &format!("id = '{victim}' AND revoked_at IS NOT NULL")) == 1
        }
        Effect::ListsEvents | Effect::ListsKeys => answer["items"].is_array(),
        Effect::ReadsSeed => answer["id"] == seed && answer["space_id"] == space.id.to_string(),
        Effect::FindsSeed => answer["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1 && items[0]["id"] == seed && items[0]["space_id"] == space.id.to_string()),
    }
}

#[tokio::test]
async fn every_endpoint_refuses_keys_without_its_scope_and_serves_keys_with_it() {
    let x = TestXdr::start().await;
    let space = Space::new(&x, "matrix").await;
    let seed = "seed-event";
    let (_, writer) = space.key(&x, &[Scope::EventsWrite], "seed writer").await;
    let (status, r) = x.post("/api/v1/events", Some(&writer), json!({"id": seed, "message": "seed"}).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{r}");

    let mut credentials = vec![Credential::None, Credential::Unknown];
    credentials.extend(SINGLE_SCOPES.map(Credential::Only));
    credentials.extend([Scope::EventsWrite, Scope::EventsRead, Scope::Admin].map(Credential::AllBut));
    let mut keys = Vec::new();
    for c in &credentials {
        keys.push(match c {
            Credential::None => None,
            Credential::Unknown => Some("vxk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()),
            c => Some(space.key(&x, &c.scopes(), &format!("{c:?}")).await.1),
        });
    }

    let endpoints = endpoints();
    let (mut served, mut refused, mut failures) = (0, 0, Vec::new());
    for (n, e) in endpoints.iter().enumerate() {
        for (i, (c, key)) in credentials.iter().zip(&keys).enumerate() {
            let marker = format!("m-{n}-{i}");
            let victim = match e.effect {
                Effect::RevokesVictim => Some(space.key(&x, &[Scope::EventsWrite], &format!("victim {marker}")).await.0),
                _ => None,
            };
            let path = e.path.replace("{seed}", seed).replace("{victim}", &victim.map(|v| v.to_string()).unwrap_or_default());
            let (status, answer) = send(&x, e, &path, key.as_deref(), &marker).await;
            let did = done(&x, &space, e, &marker, victim, seed, &answer);
            let case = format!("{:?} {} (key in {:?}) with {c:?}", e.method, e.path, e.key_in);
            match c.expect(e) {
                Ok(ok) => {
                    served += 1;
                    if status != ok || !did {
                        failures.push(format!("{case}: want {ok} and its effect; got {status} {answer}, effect done: {did}"));
                    }
                }
                Err((want, code)) => {
                    refused += 1;
                    if status != want || !refused_as(e, code, &answer) || did {
                        failures.push(format!("{case}: want {want} {code:?} and no effect; got {status} {answer}, effect done: {did}"));
                    }
                }
            }
        }
    }
    // Only the served requests changed anything: one event per served intake request, one key
    // per served creation, one revocation per served revocation (beside the keys made here).
    let intake_rows = endpoints.iter().filter(|e| matches!(e.effect, Effect::StoresEvent)).count() as i64;
    let holding = |s: Scope| credentials.iter().filter(|c| c.scopes().contains(&s)).count() as i64;
    assert_eq!(
        space.count(&x, "events", "id <> 'seed-event'"),
        intake_rows * holding(Scope::EventsWrite),
        "events stored by refused requests"
    );
    assert_eq!(space.count(&x, "api_keys", "revoked_at IS NOT NULL"), holding(Scope::Admin), "a revocation by a refused request");
    assert_eq!(x.count("SELECT COUNT(*) FROM spaces"), 1, "a request made a space");
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), served + refused, failures.join("\n"));
    eprintln!(
        "scope matrix: {} endpoints × {} credentials = {} cases, {served} served, {refused} refused",
        endpoints.len(),
        credentials.len(),
        served + refused
    );
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("a page: {v}")).clone()
}

/// Every page of a listing.
async fn all_pages(x: &TestXdr, path: &str, key: &str) -> Vec<Value> {
    let (mut out, mut cursor) = (Vec::new(), String::new());
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, page) = x.get(&format!("{path}{sep}limit=2{cursor}"), key).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        out.extend(items(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test]
async fn one_space_never_reads_lists_or_revokes_another_space_s_data() {
    let x = TestXdr::start().await;
    let alpha = Space::new(&x, "alpha").await;
    let beta = Space::new(&x, "beta").await;
    let all = [Scope::EventsWrite, Scope::EventsRead, Scope::Admin];
    let (a_key_id, a) = alpha.key(&x, &all, "all").await;
    let (_, b) = beta.key(&x, &all, "all").await;
    let (a_reader_id, a_reader) = alpha.key(&x, &[Scope::EventsRead], "reader").await;

    // The same event id in both spaces, and events only alpha has, sent through every form.
    for (key, owner) in [(&a, "alpha"), (&b, "beta")] {
        let (status, r) =
            x.post("/api/v1/events", Some(key), json!({"id": "shared-1", "owner": owner, "type": "t"}).to_string(), &[]).await;
        assert_eq!(status, StatusCode::OK, "{r}");
    }
    let only_alpha = [
        ("/api/v1/events", json!({"id": "alpha-native", "owner": "alpha", "type": "t"}).to_string()),
        ("/plain", json!({"id": "alpha-plain", "owner": "alpha"}).to_string()),
        ("/jsons", json!([{"id": "alpha-jsons", "owner": "alpha"}]).to_string()),
        ("/batch", json!({"intake_key": a, "jsons": [json!({"id": "alpha-batch", "owner": "alpha"}).to_string()]}).to_string()),
        ("/services/collector/event", json!({"event": {"id": "alpha-hec", "owner": "alpha"}}).to_string()),
    ];
    for (path, body) in &only_alpha {
        let (status, r) = x.post(path, Some(&a), body.clone(), &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {r}");
    }
    // The same webhook-id in both spaces: beta gets its own answer, not alpha's remembered one.
    let (_, ra) =
        x.post("/api/v1/events", Some(&a), json!({"id": "alpha-msg", "owner": "alpha"}).to_string(), &[("webhook-id", "msg_same")]).await;
    let (status, rb) =
        x.post("/api/v1/events", Some(&b), json!({"id": "beta-msg", "owner": "beta"}).to_string(), &[("webhook-id", "msg_same")]).await;
    assert_eq!(ra["event_ids"], json!(["alpha-msg"]));
    assert_eq!((status, rb["event_ids"].clone()), (StatusCode::OK, json!(["beta-msg"])), "a webhook-id of alpha answered for beta");
    assert_eq!(beta.count(&x, "events", "id = 'beta-msg'"), 1, "beta's delivery was not stored");
    let alpha_ids = ["shared-1", "alpha-native", "alpha-plain", "alpha-jsons", "alpha-batch", "alpha-hec", "alpha-msg"];
    assert_eq!(alpha.count(&x, "events", "1"), alpha_ids.len() as i64);

    // Reads by id through beta's key: its own event under the shared id, nothing of alpha's.
    let (status, e) = x.get("/api/v1/events/shared-1", &b).await;
    assert_eq!(
        (status, e["owner"].as_str(), e["space_id"].as_str()),
        (StatusCode::OK, Some("beta"), Some(beta.id.to_string().as_str())),
        "{e}"
    );
    for id in &alpha_ids[1..] {
        let (status, e) = x.get(&format!("/api/v1/events/{id}"), &b).await;
        assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "beta read alpha's {id}: {e}");
    }
    let (_, e) = x.get("/api/v1/events/shared-1", &a_reader).await;
    assert_eq!(e["owner"], "alpha", "{e}");

    // Listings, every page, with and without a type filter: each space sees exactly its own.
    let wide = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    for (key, space, want) in [(&b, &beta, vec!["beta-msg", "shared-1"]), (&a_reader, &alpha, alpha_ids.to_vec())] {
        for path in [format!("/api/v1/events?{wide}"), "/api/v1/events".to_owned(), format!("/api/v1/events?{wide}&event_type=t")] {
            let listed = all_pages(&x, &path, key).await;
            let foreign: Vec<&Value> =
                listed.iter().filter(|e| e["space_id"] != space.id.to_string() || e["owner"] != space.name).collect();
            assert!(foreign.is_empty(), "{} listed another space's events on {path}: {foreign:?}", space.name);
            let mut ids: Vec<&str> = listed.iter().map(|e| e["id"].as_str().expect("id")).collect();
            ids.sort_unstable();
            let mut want: Vec<&str> =
                want.iter().copied().filter(|id| !path.contains("event_type") || ["shared-1", "alpha-native"].contains(id)).collect();
            want.sort_unstable();
            assert_eq!(ids, want, "{} on {path}", space.name);
        }
    }

    // Keys: beta's admin lists only beta's keys and cannot revoke alpha's (404, as if absent).
    let listed = all_pages(&x, "/api/v1/keys", &b).await;
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|k| k["space_id"] == beta.id.to_string()), "beta listed another space's keys: {listed:?}");
    for id in [a_key_id, a_reader_id] {
        let resp = x.http.delete(format!("{}/api/v1/keys/{id}", x.base)).bearer_auth(&b).send().await.expect("revoke");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "beta revoked alpha's key {id}: {body}");
    }
    assert_eq!(alpha.count(&x, "api_keys", "revoked_at IS NOT NULL"), 0);
    let (status, _) = x.post("/api/v1/events", Some(&a), json!({"id": "after"}).to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "alpha's key stopped working");
    // A key created through beta's admin belongs to beta; a body naming alpha's space is refused.
    let alpha_keys = alpha.count(&x, "api_keys", "1");
    let body = json!({"name": "into alpha", "scopes": ["admin"], "space_id": alpha.id}).to_string();
    let (status, r) = x.post("/api/v1/keys", Some(&b), body, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert_eq!(alpha.count(&x, "api_keys", "1"), alpha_keys);
    let (status, created) =
        x.post("/api/v1/keys", Some(&b), json!({"name": "made by beta", "scopes": ["events_read"]}).to_string(), &[]).await;
    assert_eq!((status, created["space_id"].as_str()), (StatusCode::CREATED, Some(beta.id.to_string().as_str())), "{created}");
    let made = created["secret_key"].as_str().expect("key");
    let (status, e) = x.get("/api/v1/events/alpha-native", made).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
}
