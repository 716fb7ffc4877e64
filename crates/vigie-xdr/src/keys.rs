//! Spaces and their API keys: scoped, shown once, stored as SHA-256, with an optional expiry, a
//! Standard Webhooks signing secret (sealed at rest) and a default `source` label; revocable.
//! A key is read from `Authorization: Bearer`, `Authorization: Splunk`, `X-SEKOIAIO-INTAKE-KEY`,
//! a Basic password or `?intake_key=`; a caller is checked for its scope before any body is read.
use crate::state::XdrState;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, FieldError};
use vigie_core::secrets::SecretBox;
use vigie_core::{Store, StoreError};
use vigie_webhook::SigningSecret;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Send events.
    EventsWrite,
    /// Read and search events.
    EventsRead,
    /// Read alerts.
    AlertsRead,
    /// Change alerts.
    AlertsWrite,
    /// Read cases.
    CasesRead,
    /// Change cases.
    CasesWrite,
    /// Read rules.
    RulesRead,
    /// Change rules.
    RulesWrite,
    /// Read playbooks and their runs.
    PlaybooksRead,
    /// Change and run playbooks.
    PlaybooksWrite,
    /// Read threat intelligence.
    IntelRead,
    /// Change threat intelligence.
    IntelWrite,
    /// Manage the space's keys.
    Admin,
}

impl Scope {
    /// Every scope, as written.
    pub const ALL: [Scope; 13] = [
        Scope::EventsWrite,
        Scope::EventsRead,
        Scope::AlertsRead,
        Scope::AlertsWrite,
        Scope::CasesRead,
        Scope::CasesWrite,
        Scope::RulesRead,
        Scope::RulesWrite,
        Scope::PlaybooksRead,
        Scope::PlaybooksWrite,
        Scope::IntelRead,
        Scope::IntelWrite,
        Scope::Admin,
    ];

    /// The name (`events_write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events_write",
            Scope::EventsRead => "events_read",
            Scope::AlertsRead => "alerts_read",
            Scope::AlertsWrite => "alerts_write",
            Scope::CasesRead => "cases_read",
            Scope::CasesWrite => "cases_write",
            Scope::RulesRead => "rules_read",
            Scope::RulesWrite => "rules_write",
            Scope::PlaybooksRead => "playbooks_read",
            Scope::PlaybooksWrite => "playbooks_write",
            Scope::IntelRead => "intel_read",
            Scope::IntelWrite => "intel_write",
            Scope::Admin => "admin",
        }
    }

    /// The scope of a name, in any case.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Reads scopes (`events_write,events_read`), refusing unknown ones with the list.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, FieldError> {
    let mut out = Vec::new();
    for n in names {
        match Scope::parse(n) {
            Some(s) if !out.contains(&s) => out.push(s),
            Some(_) => {}
            None => {
                let all: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                return Err(FieldError::new(
                    "scopes",
                    format!("{:?} is not a scope; use {}", n.chars().take(40).collect::<String>(), all.join(", ")),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(FieldError::new("scopes", "give at least one scope"));
    }
    Ok(out)
}

/// A space.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Space {
    /// Space id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Events older than this many days are deleted.
    pub retention_days: i64,
    /// The analyst on duty: what a rule's case action assigned to `on-duty` is assigned to.
    pub on_duty: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A key as the API shows it (never the key itself, except once at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    /// Key id.
    pub id: Uuid,
    /// The space it belongs to.
    pub space_id: Uuid,
    /// Label.
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// `source` given to events it sends that name none.
    pub default_source: Option<String>,
    /// Whether deliveries must be signed (Standard Webhooks).
    pub signed: bool,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last use, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A new key, as the API and `vigie keys create` take it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Label, 1–100 characters.
    pub name: String,
    /// Scopes (`events_write`, …).
    pub scopes: Vec<String>,
    /// Optional expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// `source` for events that name none.
    pub default_source: Option<String>,
    /// True: generate a signing secret; deliveries must then be signed with it.
    #[serde(default)]
    pub signed: bool,
}

/// A created key: the only time the key (and its signing secret) is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKey,
    /// Send as `Authorization: Bearer <key>` (or the intake key of the Sekoia and Splunk forms).
    pub secret_key: String,
    /// `whsec_…` when `signed`.
    pub signing_secret: Option<String>,
}

/// The authenticated caller: a key of a space.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's space.
    pub space_id: Uuid,
    /// The space's number, which the event log carries instead of its id.
    pub space_no: i64,
    /// The key.
    pub key_id: Uuid,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// Default `source`.
    pub default_source: Option<String>,
    /// Deliveries must be signed with this.
    pub signing_secret: Option<SigningSecret>,
    expires_at: Option<i64>,
}

impl Caller {
    /// The space itself acting (a playbook run): no key, only `scopes`.
    pub fn internal(space_id: Uuid, space_no: i64, scopes: Vec<Scope>) -> Caller {
        Caller { space_id, space_no, key_id: Uuid::nil(), scopes, default_source: None, signing_secret: None, expires_at: None }
    }

    /// Fails with 403 unless the key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("this key lacks the {} scope", scope.as_str())))
        }
    }
}

/// Keys: creation, listing, revocation, and authentication with a short cache.
#[derive(Clone)]
pub struct Keys {
    store: Store,
    sealer: Arc<SecretBox>,
    clock: vigie_core::clock::SharedClock,
    ids: Arc<vigie_core::ids::IdGen>,
    cache: Arc<Mutex<KeyCache>>,
    limiter: Arc<Mutex<HashMap<Uuid, Bucket>>>,
    rate: KeyRate,
    /// Whether the default rules installed in a new space are enabled.
    default_rules_enabled: bool,
    /// Told after a new space's default rules are committed ([`XdrState::rules_changed`]).
    rules_changed: Arc<crate::state::RulesSignal>,
}

/// The request rate each key is allowed: a token bucket.
#[derive(Debug, Clone, Copy)]
pub struct KeyRate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once above the rate.
    pub burst: f64,
}

impl Default for KeyRate {
    fn default() -> Self {
        KeyRate { per_second: 20_000.0, burst: 40_000.0 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Authenticated keys by the hash of the key, with when they were looked up. `generation`
/// changes at every revocation, so a lookup that read the key before a revocation committed is
/// not cached after it (it would otherwise keep a revoked key working for [`CACHE_FOR`]).
#[derive(Default)]
struct KeyCache {
    entries: HashMap<[u8; 32], (Caller, Instant)>,
    /// Console sessions by the hash of their token: a map of their own, so no key presented to
    /// `authenticate` can ever hit a session's entry.
    sessions: HashMap<[u8; 32], (Caller, Instant)>,
    generation: u64,
}

/// A key row as authentication reads it.
struct KeyRow {
    id: String,
    space: String,
    space_no: i64,
    scopes: String,
    default_source: Option<String>,
    sealed: Option<String>,
    expires_at: Option<i64>,
    last_used: Option<i64>,
}

/// How long an authenticated key is trusted without a database read.
const CACHE_FOR: Duration = Duration::from_secs(30);
/// The XDR console's session cookie.
pub const SESSION_COOKIE: &str = "vigie_xdr_session";
/// The key prefix.
pub const KEY_PREFIX: &str = "vxk_";

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let id: String = r.get(0)?;
    let space: String = r.get(1)?;
    let scopes: String = r.get(4)?;
    let conv =
        |i, e: Box<dyn std::error::Error + Send + Sync>| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e);
    Ok(ApiKey {
        id: Uuid::parse_str(&id).map_err(|e| conv(0, Box::new(e)))?,
        space_id: Uuid::parse_str(&space).map_err(|e| conv(1, Box::new(e)))?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        scopes: serde_json::from_str(&scopes).map_err(|e| conv(4, Box::new(e)))?,
        default_source: r.get(5)?,
        signed: r.get::<_, Option<String>>(6)?.is_some(),
        expires_at: r.get::<_, Option<i64>>(7)?.map(from_micros),
        revoked_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
        last_used_at: r.get::<_, Option<i64>>(9)?.map(from_micros),
        created_by: r.get(10)?,
        created_at: from_micros(r.get(11)?),
    })
}

const KEY_COLS: &str =
    "id, space_id, name, prefix, scopes, default_source, sealed_secret, expires_at, revoked_at, last_used_at, created_by, created_at";

impl Keys {
    /// The key service over the XDR store. A space it creates gets the default rules, enabled
    /// when `default_rules_enabled`; `rules_changed` is bumped once they are committed.
    pub fn new(
        store: Store,
        sealer: SecretBox,
        clock: vigie_core::clock::SharedClock,
        ids: Arc<vigie_core::ids::IdGen>,
        rate: KeyRate,
        default_rules_enabled: bool,
        rules_changed: Arc<crate::state::RulesSignal>,
    ) -> Keys {
        Keys {
            store,
            sealer: Arc::new(sealer),
            clock,
            ids,
            cache: Arc::new(Mutex::new(KeyCache::default())),
            limiter: Arc::new(Mutex::new(HashMap::new())),
            rate,
            default_rules_enabled,
            rules_changed,
        }
    }

    /// Takes one request from the key's bucket; 429 with `Retry-After` when it is empty.
    fn admit(&self, key: Uuid) -> Result<(), ApiError> {
        let Ok(mut buckets) = self.limiter.lock() else { return Ok(()) };
        let now = Instant::now();
        let KeyRate { per_second, burst } = self.rate;
        let b = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / per_second).ceil().max(1.0) as u64;
        Err(ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("this key sends more than {per_second} requests per second; slow down"),
            )
        })
    }

    /// The space named `name`, created if absent; a space created here gets the default rules
    /// (`content/rules.json`) in the same transaction.
    pub async fn ensure_space(&self, name: &str) -> Result<Space, StoreError> {
        let name = name.trim().to_owned();
        let now = self.clock.now();
        let id = self.ids.at(now);
        let (ids, enabled) = (self.ids.clone(), self.default_rules_enabled);
        let (space, installed) = self
            .store
            .write(move |c| {
                let created = c.execute(
                    "INSERT INTO spaces (id, name, created_at, no) VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(no), 0) + 1 FROM spaces)) \
                     ON CONFLICT (name) DO NOTHING",
                    params![id.to_string(), name, to_micros(now)],
                )?;
                let installed = if created == 1 {
                    let no: i64 = c.query_row("SELECT no FROM spaces WHERE id = ?1", [id.to_string()], |r| r.get(0))?;
                    Some((no, crate::content::install(c, no, enabled, to_micros(now), &ids)?))
                } else {
                    None
                };
                Ok::<_, StoreError>((space_by_name(c, &name)?, installed))
            })
            .await?;
        if let Some((no, n)) = installed
            && n > 0
        {
            self.rules_changed.changed(no);
        }
        Ok(space)
    }

    /// A space by id.
    pub async fn space(&self, id: Uuid) -> Result<Space, ApiError> {
        self.store
            .read(move |c| {
                let name: String = c
                    .query_row("SELECT name FROM spaces WHERE id = ?1", [id.to_string()], |r| r.get(0))
                    .optional()?
                    .ok_or(StoreError::NotFound)?;
                space_by_name(c, &name)
            })
            .await
            .map_err(ApiError::from_store("space"))
    }

    /// Sets how many days a space keeps its events.
    pub async fn set_retention(&self, id: Uuid, days: i64) -> Result<(), ApiError> {
        self.store
            .write(move |c| {
                c.execute("UPDATE spaces SET retention_days = ?2 WHERE id = ?1", params![id.to_string(), days]).map_err(StoreError::from)
            })
            .await
            .map_err(ApiError::from_store("space"))?;
        Ok(())
    }

    /// Sets (or clears) the analyst on duty of a space.
    pub async fn set_on_duty(&self, id: Uuid, who: Option<String>) -> Result<(), ApiError> {
        self.store
            .write(move |c| {
                c.execute("UPDATE spaces SET on_duty = ?2 WHERE id = ?1", params![id.to_string(), who]).map_err(StoreError::from)
            })
            .await
            .map_err(ApiError::from_store("space"))?;
        Ok(())
    }

    /// Creates a key in `space`.
    pub async fn create(&self, space: Uuid, new: NewKey, by: Option<String>) -> Result<CreatedKey, ApiError> {
        let mut errors = Vec::new();
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(FieldError::new("name", "a key name has 1 to 100 characters"));
        }
        let scopes = parse_scopes(&new.scopes).map_err(|e| errors.push(e)).unwrap_or_default();
        let now = self.clock.now();
        if new.expires_at.is_some_and(|t| t <= now) {
            errors.push(FieldError::new("expires_at", "is in the past"));
        }
        if new.default_source.as_ref().is_some_and(|s| s.trim().is_empty() || s.len() > 100) {
            errors.push(FieldError::new("default_source", "1 to 100 characters"));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let mut raw = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut raw[..]);
        let secret_key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let id = self.ids.at(now);
        let signing = new.signed.then(SigningSecret::generate);
        let sealed = signing.as_ref().map(|s| self.sealer.seal(s.expose().as_bytes(), id.as_bytes()));
        let key = ApiKey {
            id,
            space_id: space,
            name,
            prefix: secret_key[..KEY_PREFIX.len() + 6].to_owned(),
            scopes,
            default_source: new.default_source.map(|s| s.trim().to_owned()),
            signed: signing.is_some(),
            expires_at: new.expires_at,
            revoked_at: None,
            last_used_at: None,
            created_by: by,
            created_at: now,
        };
        let (k, h) = (key.clone(), hex(&hash(&secret_key)));
        self.store
            .write(move |c| {
                c.execute(
                    "INSERT INTO api_keys (id, space_id, name, hash, prefix, scopes, default_source, sealed_secret, expires_at, created_by, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        k.id.to_string(),
                        k.space_id.to_string(),
                        k.name,
                        h,
                        k.prefix,
                        serde_json::to_string(&k.scopes)?,
                        k.default_source,
                        sealed,
                        k.expires_at.map(to_micros),
                        k.created_by,
                        to_micros(k.created_at),
                    ],
                )?;
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(ApiError::from_store("key"))?;
        Ok(CreatedKey { key, secret_key, signing_secret: signing.map(|s| s.expose()) })
    }

    /// A space's keys, by id after `after`.
    pub async fn list(&self, space: Uuid, after: Option<Uuid>, limit: usize) -> Result<Vec<ApiKey>, ApiError> {
        self.store
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM api_keys WHERE space_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3"
                ))?;
                let rows = stmt.query_map(params![space.to_string(), after.map(|a| a.to_string()), limit as i64 + 1], key_from_row)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
            })
            .await
            .map_err(ApiError::from_store("key"))
    }

    /// Revokes a key of `space`; it stops working at once in this process.
    pub async fn revoke(&self, space: Uuid, id: Uuid) -> Result<ApiKey, ApiError> {
        let now = to_micros(self.clock.now());
        let key = self
            .store
            .write(move |c| {
                let n = c.execute(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE space_id = ?1 AND id = ?2",
                    params![space.to_string(), id.to_string(), now],
                )?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                c.query_row(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"), [id.to_string()], key_from_row)
                    .map_err(StoreError::from)
            })
            .await
            .map_err(ApiError::from_store("key"))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.entries.clear();
            cache.sessions.clear();
            cache.generation += 1;
        }
        Ok(key)
    }

    /// Opens a console session for `key` (the key itself is checked as `authenticate` does; a key
    /// that can only send events is refused): the token for the session cookie, valid `ttl`.
    pub async fn open_session(&self, key: &str, ttl: chrono::Duration) -> Result<(String, Caller), ApiError> {
        let caller = self.authenticate(key).await?;
        if caller.scopes.iter().all(|s| *s == Scope::EventsWrite) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this key can only send events; log in with a key that can read (alerts_read, events_read, admin…)",
            ));
        }
        let token = vigie_core::console::random_token();
        let (h, key_id, now) = (hex(&hash(&token)), caller.key_id.to_string(), self.clock.now());
        let (at, until) = (to_micros(now), to_micros(now + ttl));
        self.store
            .write(move |c| {
                // Expired sessions go when someone logs in: the table stays as small as its use.
                c.execute("DELETE FROM console_sessions WHERE expires_at <= ?1", [at])?;
                c.execute(
                    "INSERT INTO console_sessions (hash, key_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![h, key_id, at, until],
                )?;
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(ApiError::internal)?;
        Ok((token, caller))
    }

    /// The caller of a console session: 401 for an unknown, expired or logged-out session, or one
    /// whose key was revoked or expired.
    pub async fn session(&self, token: &str) -> Result<Caller, ApiError> {
        let h = hash(token);
        let now = self.clock.now();
        let (cached, generation) = self.cached(&h, true);
        let caller = match cached {
            Some(c) => c,
            None => {
                let (hx, sealer, now_us) = (hex(&hash(token)), self.sealer.clone(), to_micros(now));
                let found = self
                    .store
                    .read(move |c| {
                        let key_hash: Option<String> = c
                            .prepare_cached(
                                "SELECT k.hash FROM console_sessions s JOIN api_keys k ON k.id = s.key_id \
                                 WHERE s.hash = ?1 AND s.expires_at > ?2 AND k.revoked_at IS NULL",
                            )?
                            .query_row(params![hx, now_us], |r| r.get(0))
                            .optional()?;
                        match key_hash {
                            Some(kh) => lookup(c, &kh, &sealer),
                            None => Ok(None),
                        }
                    })
                    .await
                    .map_err(|e: StoreError| ApiError::internal(e))?;
                let Some((caller, _)) = found else {
                    return Err(unauthorized("your console session has ended; log in again"));
                };
                self.remember(h, &caller, generation, true);
                caller
            }
        };
        if caller.expires_at.is_some_and(|t| t <= to_micros(now)) {
            return Err(unauthorized("the key of this console session has expired; log in with another"));
        }
        self.admit(caller.key_id)?;
        Ok(caller)
    }

    /// Ends a console session (log out); its cookie stops working at once.
    pub async fn close_session(&self, token: &str) -> Result<(), ApiError> {
        let h = hash(token);
        let hx = hex(&h);
        self.store
            .write(move |c| c.execute("DELETE FROM console_sessions WHERE hash = ?1", [hx]).map_err(StoreError::from))
            .await
            .map_err(ApiError::internal)?;
        // Only this session is forgotten (the keys stay cached); the generation makes a lookup
        // that read the row before the delete not cache it after.
        if let Ok(mut cache) = self.cache.lock() {
            cache.sessions.remove(&h);
            cache.generation += 1;
        }
        Ok(())
    }

    /// The cached caller of a key hash (or, `session`, of a console session's token hash), if
    /// fresh, and the cache's generation now.
    fn cached(&self, h: &[u8; 32], session: bool) -> (Option<Caller>, Option<u64>) {
        match self.cache.lock() {
            Ok(c) => {
                let map = if session { &c.sessions } else { &c.entries };
                (map.get(h).filter(|(_, at)| at.elapsed() < CACHE_FOR).map(|(c, _)| c.clone()), Some(c.generation))
            }
            Err(_) => (None, None),
        }
    }

    /// Caches a caller looked up at cache generation `generation`, unless a revocation has
    /// happened since.
    fn remember(&self, h: [u8; 32], caller: &Caller, generation: Option<u64>, session: bool) {
        if let Ok(mut cache) = self.cache.lock()
            && Some(cache.generation) == generation
        {
            let map = if session { &mut cache.sessions } else { &mut cache.entries };
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(h, (caller.clone(), Instant::now()));
        }
    }

    /// The caller a key stands for: 401 for an unknown, revoked or expired key.
    pub async fn authenticate(&self, key: &str) -> Result<Caller, ApiError> {
        let h = hash(key.trim());
        let now = self.clock.now();
        let (cached, generation) = self.cached(&h, false);
        let caller = match cached {
            Some(c) => c,
            None => {
                let (hx, sealer) = (hex(&h), self.sealer.clone());
                let now_us = to_micros(now);
                let found: Option<(Caller, Option<i64>)> =
                    self.store.read(move |c| lookup(c, &hx, &sealer)).await.map_err(|e: StoreError| ApiError::internal(e))?;
                let Some((caller, last_used)) = found else { return Err(unauthorized("unknown or revoked API key")) };
                // Last use, to the minute: at most one write per key per minute.
                if last_used.is_none_or(|t| now_us - t > 60_000_000) {
                    let id = caller.key_id.to_string();
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        if let Err(e) = store
                            .write(move |c| {
                                c.execute("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1", params![id, now_us])
                                    .map_err(StoreError::from)
                            })
                            .await
                        {
                            tracing::debug!(error = %e, "the last use of a key could not be recorded");
                        }
                    });
                }
                self.remember(h, &caller, generation, false);
                caller
            }
        };
        if caller.expires_at.is_some_and(|t| t <= to_micros(now)) {
            return Err(unauthorized("this API key has expired"));
        }
        self.admit(caller.key_id)?;
        Ok(caller)
    }
}

fn lookup(c: &Connection, hash_hex: &str, sealer: &SecretBox) -> Result<Option<(Caller, Option<i64>)>, StoreError> {
    let row: Option<KeyRow> = c
        .prepare_cached(
            "SELECT k.id, k.space_id, s.no, k.scopes, k.default_source, k.sealed_secret, k.expires_at, k.last_used_at \
             FROM api_keys k JOIN spaces s ON s.id = k.space_id WHERE k.hash = ?1 AND k.revoked_at IS NULL",
        )?
        .query_row([hash_hex], |r| {
            Ok(KeyRow {
                id: r.get(0)?,
                space: r.get(1)?,
                space_no: r.get(2)?,
                scopes: r.get(3)?,
                default_source: r.get(4)?,
                sealed: r.get(5)?,
                expires_at: r.get(6)?,
                last_used: r.get(7)?,
            })
        })
        .optional()?;
    let Some(KeyRow { id, space, space_no, scopes, default_source, sealed, expires_at, last_used }) = row else { return Ok(None) };
    let key_id = Uuid::parse_str(&id).map_err(|e| StoreError::Commit(e.to_string()))?;
    let signing_secret = match sealed {
        Some(s) => {
            let plain = sealer
                .open(&s, key_id.as_bytes())
                .map_err(|e| StoreError::Commit(format!("the signing secret of key {id} cannot be opened: {e}")))?;
            let text = String::from_utf8(plain).map_err(|e| StoreError::Commit(e.to_string()))?;
            Some(SigningSecret::parse(&text).map_err(|e| StoreError::Commit(e.to_string()))?)
        }
        None => None,
    };
    Ok(Some((
        Caller {
            space_id: Uuid::parse_str(&space).map_err(|e| StoreError::Commit(e.to_string()))?,
            space_no,
            key_id,
            scopes: serde_json::from_str(&scopes)?,
            default_source,
            signing_secret,
            expires_at,
        },
        last_used,
    )))
}

pub(crate) fn space_by_name(c: &Connection, name: &str) -> Result<Space, StoreError> {
    c.query_row("SELECT id, name, retention_days, created_at, on_duty FROM spaces WHERE name = ?1", [name], |r| {
        let id: String = r.get(0)?;
        Ok(Space {
            id: Uuid::parse_str(&id).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?,
            name: r.get(1)?,
            retention_days: r.get(2)?,
            on_duty: r.get(4)?,
            created_at: from_micros(r.get(3)?),
        })
    })
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// The key of an `Authorization: Bearer <key>` header.
pub fn bearer_key(parts: &Parts) -> Option<String> {
    let auth = parts.headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, value) = auth.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !value.trim().is_empty()).then(|| value.trim().to_owned())
}

/// The key a request carries, in any of the places an intake accepts.
pub fn presented_key(parts: &Parts) -> Option<String> {
    let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(k) = h("x-sekoiaio-intake-key") {
        return Some(k.to_owned());
    }
    if let Some(auth) = h("authorization")
        && let Some((scheme, value)) = auth.split_once(' ')
    {
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("splunk") {
            return Some(value.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = STANDARD.decode(value)
            && let Ok(text) = String::from_utf8(decoded)
        {
            let password = text.split_once(':').map_or(text.as_str(), |(_, p)| p);
            return Some(password.to_owned());
        }
    }
    let query = parts.uri.query()?;
    form_pairs(query).find(|(k, _)| k == "intake_key").map(|(_, v)| v)
}

fn form_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        Some((k.to_owned(), percent_decode(v)))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A scope an endpoint needs, as a type (so the extractor checks it before the body is read).
pub trait NeedsScope {
    /// The scope.
    const SCOPE: Scope;
}

macro_rules! scope_marker {
    ($($name:ident => $scope:expr),* $(,)?) => {
        $(
            /// A scope marker for [`Authorized`].
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl NeedsScope for $name {
                const SCOPE: Scope = $scope;
            }
        )*
    };
}

scope_marker!(
    EventsWrite => Scope::EventsWrite,
    EventsRead => Scope::EventsRead,
    AdminScope => Scope::Admin,
    AlertsRead => Scope::AlertsRead,
    AlertsWrite => Scope::AlertsWrite,
    RulesRead => Scope::RulesRead,
    RulesWrite => Scope::RulesWrite,
    CasesRead => Scope::CasesRead,
    CasesWrite => Scope::CasesWrite,
    PlaybooksRead => Scope::PlaybooksRead,
    PlaybooksWrite => Scope::PlaybooksWrite
);

/// A caller whose key has the scope `S`: 401 without a valid key, 403 without the scope.
#[derive(Debug, Clone)]
pub struct Authorized<S: NeedsScope>(pub Caller, pub std::marker::PhantomData<S>);

impl<S, St> FromRequestParts<St> for Authorized<S>
where
    S: NeedsScope + Send + Sync,
    XdrState: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let st = XdrState::from_ref(state);
        // The other products' forms (a header of their own, a Basic password, the URL) are for
        // sending events only: a key in a URL ends up in proxy and access logs, so reading and
        // administration take a bearer token alone.
        // The console's cookie never stands for intake: a sender presents its key itself.
        if S::SCOPE != Scope::EventsWrite
            && bearer_key(parts).is_none()
            && !vigie_core::console::has_authorization(&parts.headers)
            && let Some(session) = vigie_core::console::cookie(&parts.headers, SESSION_COOKIE)
        {
            // The console: its session cookie, and for a change the session's CSRF token.
            if !vigie_core::console::is_safe(&parts.method)
                && !st.csrf.check(session, vigie_core::console::presented_csrf(&parts.headers).unwrap_or(""))
            {
                return Err(vigie_core::http::csrf_failed());
            }
            let caller = st.keys.session(session).await?;
            caller.require(S::SCOPE)?;
            return Ok(Authorized(caller, std::marker::PhantomData));
        }
        let key = if S::SCOPE == Scope::EventsWrite {
            presented_key(parts).ok_or_else(|| {
                unauthorized(
                    "send an API key: Authorization: Bearer <key> (or X-SEKOIAIO-INTAKE-KEY, Authorization: Splunk <key>, ?intake_key=)",
                )
            })?
        } else {
            bearer_key(parts).ok_or_else(|| unauthorized("send an API key: Authorization: Bearer <key>"))?
        };
        let caller = st.keys.authenticate(&key).await?;
        caller.require(S::SCOPE)?;
        Ok(Authorized(caller, std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lookup_that_began_before_a_revocation_is_not_cached_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = crate::XdrOptions {
            data_dir: dir.path().to_path_buf(),
            store: Default::default(),
            secret_key: None,
            key_rate: KeyRate::default(),
            retention_every: Duration::from_secs(3600),
            search: Default::default(),
            build_facts: false,
            default_rules_enabled: false,
            allow_private_destinations: false,
            notify: Default::default(),
        };
        let st = crate::open(opts, Arc::new(vigie_core::SystemClock)).expect("open");
        let space = st.keys.ensure_space("soc").await.expect("space");
        let new = NewKey { name: "k".into(), scopes: vec!["events_write".into()], ..Default::default() };
        let created = st.keys.create(space.id, new, None).await.expect("key");
        let caller = st.keys.authenticate(&created.secret_key).await.expect("valid");
        let h = hash(&created.secret_key);
        // A lookup reads the key (still valid) and the cache generation; the key is revoked
        // before that lookup stores its answer.
        st.keys.cache.lock().expect("cache").entries.clear();
        let (_, generation) = st.keys.cached(&h, false);
        st.keys.revoke(space.id, created.key.id).await.expect("revoke");
        st.keys.remember(h, &caller, generation, false);
        assert!(st.keys.cached(&h, false).0.is_none(), "a revoked key must not be cached");
        assert_eq!(st.keys.authenticate(&created.secret_key).await.expect_err("revoked").status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn scopes_read_in_any_case_and_unknown_ones_are_named() {
        let s = parse_scopes(&["EVENTS_WRITE".into(), "events_read".into(), "events_write".into()]).expect("scopes");
        assert_eq!(s, vec![Scope::EventsWrite, Scope::EventsRead]);
        assert!(parse_scopes(&["everything".into()]).expect_err("unknown").message.contains("events_write"));
        assert!(parse_scopes(&[]).is_err());
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Bb+c%zz%4"), "a+b c%zz%4");
    }
}
