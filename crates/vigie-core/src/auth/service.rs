//! The auth service: resolves bearer tokens to a [`Principal`] (with a short-lived cache so the
//! hot path does not touch the database) and logs users in; account management is in `accounts`.
use super::store::{self as sql, UserSecrets};
use super::{Actor, AuthError, Principal, Tenant, User, UserStatus, jwt, password};
use crate::clock::SharedClock;
use crate::db::Store;
use crate::error::StoreError;
use crate::http::FieldError;
use crate::secrets::MasterKey;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use rusqlite::params;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;
use uuid::Uuid;

/// Tunables of the auth service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetime of a login token (24 h).
    pub session_ttl: Duration,
    /// How long a resolved token is trusted before the database is asked again. Changes made
    /// through this process apply at once; changes made by another process within this delay.
    pub cache_ttl: Duration,
    /// Failed logins allowed per client address per minute.
    pub login_failures_per_minute: u32,
    /// Lifetime of an invitation (7 days).
    pub invite_ttl: Duration,
    /// Whether the console's cookies are marked `Secure` (served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_ttl: Duration::hours(24),
            cache_ttl: Duration::seconds(30),
            login_failures_per_minute: 5,
            invite_ttl: Duration::days(7),
            secure_cookies: false,
        }
    }
}

/// A login token and the user it belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The user.
    pub user: User,
}

/// What the first start (or a new tenant) created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first admin.
    pub admin: User,
    /// The admin's password when it was generated (show it once, then forget it).
    pub generated_password: Option<String>,
}

struct Cached {
    principal: Principal,
    valid_until: DateTime<Utc>,
}

const CACHE_CAP: usize = 50_000;

/// A client address and the SHA-256 of the account it tries (all zeros: every account).
type AttemptKey = (IpAddr, [u8; 32]);

/// The most accounts one login checks a password against (one per tenant sharing the e-mail);
/// beyond it the caller must name the tenant. Each check is one argon2 hash.
const MAX_ACCOUNTS_PER_EMAIL: usize = 5;

/// The auth service; cheap to clone.
#[derive(Clone)]
pub struct Auth(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub(super) store: Store,
    clock: SharedClock,
    jwt_key: [u8; 32],
    csrf: crate::console::CsrfKey,
    pub(super) settings: AuthSettings,
    /// Resolved tokens, and a generation bumped by every invalidation: a resolution that raced
    /// with a revocation is not cached.
    cache: Mutex<(u64, HashMap<[u8; 32], Cached>)>,
    /// Attempts in the current minute, per (address, SHA-256 of the account) and per address
    /// (the all-zero hash). Fixed-size keys: an attacker's long e-mails cost nothing to keep.
    failures: Mutex<HashMap<AttemptKey, (i64, u32)>>,
    hashing: tokio::sync::Semaphore,
}

pub(super) fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The e-mail in the form accounts store it (trimmed, lower case), or why it is not one.
pub fn normalize_email(email: &str) -> Result<String, FieldError> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'))
        && !e.chars().any(char::is_whitespace);
    if valid { Ok(e) } else { Err(FieldError::new("email", format!("{email:?} is not an e-mail address"))) }
}

impl Auth {
    /// The service over `store`, signing login tokens with a key derived from `key`.
    pub fn new(store: Store, clock: SharedClock, key: &MasterKey, settings: AuthSettings) -> Auth {
        Auth(Arc::new(Inner {
            store,
            clock,
            jwt_key: key.derive("vigie/login-token/v1"),
            csrf: crate::console::CsrfKey::new(key.derive("vigie/console-csrf/v1")),
            settings,
            cache: Mutex::new((0, HashMap::new())),
            failures: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8)),
        }))
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    /// Forgets every resolved token, so a revocation or role change applies to the next request.
    pub(super) fn invalidate(&self) {
        let mut c = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        c.0 += 1;
        c.1.clear();
    }

    /// Runs a write that changes who may do what, then forgets every resolved token. Both run in
    /// their own task, so a caller that goes away cannot leave a revocation unapplied.
    pub(super) async fn write_access<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let result = this.0.store.write(f).await;
            this.invalidate();
            result
        });
        task.await.map_err(|e| E::from(StoreError::Commit(format!("the write task failed: {e}"))))?
    }

    /// Runs argon2 work off the async threads, a few at a time: each hash takes ~19 MiB and
    /// tens of milliseconds, and login is reachable without credentials.
    pub(super) async fn argon<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let _permit = self.0.hashing.acquire().await.map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(work).await.map_err(|e| AuthError::Store(StoreError::Commit(format!("password hashing failed: {e}"))))
    }

    /// The key of the console's CSRF tokens (a login token in the session cookie is the session).
    pub fn csrf(&self) -> &crate::console::CsrfKey {
        &self.0.csrf
    }

    /// Whether the console's cookies are marked `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.0.settings.secure_cookies
    }

    /// How long a login token lasts (the console's cookie lasts as long).
    pub fn session_ttl(&self) -> Duration {
        self.0.settings.session_ttl
    }

    /// Ends a login token before its expiry (logging out of the console): it is refused from
    /// now on, by this process at once and by others within the cache's delay. Tokens that are
    /// not valid login tokens are ignored.
    pub async fn end_session(&self, token: &str) -> Result<(), AuthError> {
        let Some(claims) = jwt::verify(token, &self.0.jwt_key) else { return Ok(()) };
        // An expired token is refused anyway: nothing to write.
        if claims.exp <= self.now().timestamp() {
            return Ok(());
        }
        let (h, exp, now) = (hex(&sha256(token)), claims.exp * 1_000_000, self.now().timestamp() * 1_000_000);
        self.write_access(move |c| {
            // Ended sessions past their own expiry are no longer needed: pruned as others end.
            c.execute("DELETE FROM ended_sessions WHERE expires_at <= ?1", [now]).map_err(crate::StoreError::from)?;
            c.execute(
                "INSERT INTO ended_sessions (hash, expires_at) VALUES (?1, ?2) ON CONFLICT (hash) DO NOTHING",
                rusqlite::params![h, exp],
            )
            .map_err(crate::StoreError::from)?;
            Ok::<_, AuthError>(())
        })
        .await
    }

    /// Resolves a bearer token (an API token `vgt_…` or a login token) to its principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let key = sha256(token);
        let now = self.now();
        let generation = {
            let c = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(hit) = c.1.get(&key)
                && hit.valid_until > now
            {
                return Ok(hit.principal.clone());
            }
            c.0
        };
        let (principal, expires) =
            if token.starts_with("vgt_") { self.resolve_api_token(key, now).await? } else { self.resolve_login_token(token, now).await? };
        let valid_until = expires.map_or(now + self.0.settings.cache_ttl, |e| e.min(now + self.0.settings.cache_ttl));
        let mut c = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.0 == generation {
            if c.1.len() >= CACHE_CAP {
                c.1.clear();
            }
            c.1.insert(key, Cached { principal: principal.clone(), valid_until });
        }
        Ok(principal)
    }

    async fn resolve_api_token(&self, hash: [u8; 32], now: DateTime<Utc>) -> Result<(Principal, Option<DateTime<Utc>>), AuthError> {
        let found = self.0.store.read(move |c| sql::token_by_hash(c, &hash)).await?;
        let (tenant_id, owner, tok) = found.ok_or(AuthError::InvalidToken)?;
        if tok.revoked_at.is_some() {
            return Err(AuthError::InvalidToken);
        }
        if tok.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Expired);
        }
        // Last use is recorded on each cache miss, i.e. at most about once per cache lifetime.
        let store = self.0.store.clone();
        let id = tok.id;
        tokio::spawn(async move {
            let r = store
                .write(move |c| {
                    c.execute("UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2", params![now.timestamp_micros(), id.to_string()])
                        .map_err(StoreError::from)
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, token_id = %id, "could not record the last use of an API token");
            }
        });
        Ok((Principal { tenant_id, role: tok.role, actor: Actor::Token { id: tok.id, name: tok.name, owner } }, tok.expires_at))
    }

    async fn resolve_login_token(&self, token: &str, now: DateTime<Utc>) -> Result<(Principal, Option<DateTime<Utc>>), AuthError> {
        let claims = jwt::verify(token, &self.0.jwt_key).ok_or(AuthError::InvalidToken)?;
        if claims.exp <= now.timestamp() {
            return Err(AuthError::Expired);
        }
        let id = Uuid::parse_str(&claims.sub).map_err(|_| AuthError::InvalidToken)?;
        let ended = hex(&sha256(token));
        let (found, logged_out) = self
            .0
            .store
            .read(move |c| {
                let u = sql::user_secrets_by(c, "id", &id.to_string())?;
                let out =
                    c.prepare_cached("SELECT 1 FROM ended_sessions WHERE hash = ?1")?.exists([ended]).map_err(crate::StoreError::from)?;
                Ok::<_, crate::StoreError>((u, out))
            })
            .await?;
        if logged_out {
            return Err(AuthError::InvalidToken);
        }
        let u = found.ok_or(AuthError::InvalidToken)?;
        if u.user.status != UserStatus::Active || u.session_version != claims.ver {
            return Err(AuthError::InvalidToken);
        }
        let expires = DateTime::from_timestamp(claims.exp, 0);
        Ok((
            Principal { tenant_id: u.user.tenant_id, role: u.user.role, actor: Actor::User { id: u.user.id, email: u.user.email } },
            expires,
        ))
    }

    pub(super) fn issue(&self, u: &UserSecrets) -> Session {
        let now = self.now();
        let expires_at = now + self.0.settings.session_ttl;
        let claims = jwt::Claims {
            sub: u.user.id.to_string(),
            email: u.user.email.clone(),
            tenant_id: u.user.tenant_id.to_string(),
            role: u.user.role.as_str().to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            ver: u.session_version,
            jti: random_token(""),
        };
        Session { token: jwt::sign(&claims, &self.0.jwt_key), expires_at, user: u.user.clone() }
    }

    /// Counts an attempt on `account` from `ip` before any password is checked, so parallel
    /// attempts cannot all slip under the limit. An address gets the configured number of
    /// attempts per account per minute, and twenty times that in all: behind a proxy one person's
    /// typos do not lock the whole organisation out, and spraying many accounts is still capped.
    pub(super) fn begin_attempt(&self, ip: IpAddr, account: &str) -> Result<(), AuthError> {
        const MAX_TRACKED: usize = 100_000;
        let now = self.now().timestamp();
        let per_account = self.0.settings.login_failures_per_minute;
        let mut f = self.0.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if f.len() >= MAX_TRACKED {
            f.retain(|_, (start, _)| now - *start < 60);
            if f.len() >= MAX_TRACKED {
                // Under a flood from many addresses: forget rather than grow without bound.
                f.clear();
            }
        }
        // The address is checked first, so refused attempts add no per-account entries.
        let keys = [((ip, [0u8; 32]), per_account.saturating_mul(20)), ((ip, sha256(account)), per_account)];
        for (key, limit) in &keys {
            if let Some(e) = f.get_mut(key) {
                if now - e.0 >= 60 {
                    *e = (now, 0);
                }
                if e.1 >= *limit {
                    return Err(AuthError::RateLimited { retry_after: (60 - (now - e.0)).max(1) as u64 });
                }
            }
        }
        for (key, _) in keys {
            f.entry(key).or_insert((now, 0)).1 += 1;
        }
        Ok(())
    }

    /// A successful attempt does not count against the address.
    pub(super) fn forgive_attempt(&self, ip: IpAddr, account: &str) {
        let mut f = self.0.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in [(ip, sha256(account)), (ip, [0u8; 32])] {
            if let Some(e) = f.get_mut(&key) {
                e.1 = e.1.saturating_sub(1);
            }
        }
    }

    /// Checks an e-mail and password and issues a 24-hour login token. Failed attempts are
    /// limited per client address.
    ///
    /// An e-mail is unique within a tenant; when it has accounts in several tenants, the one whose
    /// password matches is used, and `tenant` (a tenant name) settles the rare case where the
    /// same password matches more than one.
    pub async fn login(&self, ip: IpAddr, email: &str, pass: &str, tenant: Option<&str>) -> Result<Session, AuthError> {
        // An e-mail that cannot be an account's is refused before anything is kept about it.
        let email = normalize_email(email).map_err(|_| AuthError::InvalidCredentials)?;
        self.begin_attempt(ip, &email)?;
        let pass = pass.to_owned();
        let (e, t) = (email.clone(), tenant.map(str::to_owned));
        let mut candidates = self.0.store.read(move |c| sql::users_by_email(c, &e, t.as_deref())).await?;
        candidates.retain(|u| u.user.status == UserStatus::Active);
        if candidates.len() > MAX_ACCOUNTS_PER_EMAIL {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "tenant",
                "this e-mail has accounts in several tenants; name the tenant to log in to",
            )]));
        }
        let mut matched = self
            .argon(move || {
                if candidates.is_empty() {
                    // Same work whether or not the account exists.
                    let _ = password::verify(&pass, password::decoy_hash());
                    return Vec::new();
                }
                candidates
                    .into_iter()
                    .filter(|u| u.password_hash.as_deref().is_some_and(|h| password::verify(&pass, h)))
                    .collect::<Vec<_>>()
            })
            .await?;
        if matched.len() > 1 {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "tenant",
                "this e-mail has accounts in several tenants; name the tenant to log in to",
            )]));
        }
        let Some(mut u) = matched.pop() else {
            return Err(AuthError::InvalidCredentials);
        };
        self.forgive_attempt(ip, &email);
        let now = self.now();
        let id = u.user.id;
        self.0
            .store
            .write(move |c| {
                c.execute("UPDATE users SET last_login_at = ?1 WHERE id = ?2", params![now.timestamp_micros(), id.to_string()])
                    .map_err(StoreError::from)
            })
            .await?;
        u.user.last_login_at = Some(now);
        Ok(self.issue(&u))
    }
}
