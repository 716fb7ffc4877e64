//! The auth service: resolves bearer tokens to a [`Principal`] (with a short-lived cache so the
//! hot path does not touch the database), logs users in, and manages tenants, users and tokens.
use super::store::{self as sql, UserSecrets};
use super::{Actor, ApiToken, AuthError, Principal, Role, Tenant, User, UserStatus, jwt, password};
use crate::clock::SharedClock;
use crate::db::Store;
use crate::error::StoreError;
use crate::http::FieldError;
use crate::ids::new_id;
use crate::secrets::MasterKey;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
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
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_ttl: Duration::hours(24),
            cache_ttl: Duration::seconds(30),
            login_failures_per_minute: 5,
            invite_ttl: Duration::days(7),
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

/// The auth service; cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    store: Store,
    clock: SharedClock,
    jwt_key: [u8; 32],
    settings: AuthSettings,
    /// Resolved tokens, and a generation bumped by every invalidation: a resolution that raced
    /// with a revocation is not cached.
    cache: Mutex<(u64, HashMap<[u8; 32], Cached>)>,
    /// Attempts in the current minute, per (address, account) and per address (account "*").
    failures: Mutex<HashMap<(IpAddr, String), (i64, u32)>>,
    hashing: tokio::sync::Semaphore,
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn random_token(prefix: &str) -> String {
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
            settings,
            cache: Mutex::new((0, HashMap::new())),
            failures: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8)),
        }))
    }

    fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    /// Forgets every resolved token, so a revocation or role change applies to the next request.
    fn invalidate(&self) {
        let mut c = self.0.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        c.0 += 1;
        c.1.clear();
    }

    /// Runs a write that changes who may do what, then forgets every resolved token. Both run in
    /// their own task, so a caller that goes away cannot leave a revocation unapplied.
    async fn write_access<T, E, F>(&self, f: F) -> Result<T, E>
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
    async fn argon<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let _permit = self.0.hashing.acquire().await.map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(work).await.map_err(|e| AuthError::Store(StoreError::Commit(format!("password hashing failed: {e}"))))
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
        let found = self.0.store.read(move |c| sql::user_secrets_by(c, "id", &id.to_string())).await?;
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

    fn issue(&self, u: &UserSecrets) -> Session {
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
        };
        Session { token: jwt::sign(&claims, &self.0.jwt_key), expires_at, user: u.user.clone() }
    }

    /// Counts an attempt on `account` from `ip` before any password is checked, so parallel
    /// attempts cannot all slip under the limit. An address gets the configured number of
    /// attempts per account per minute, and twenty times that in all: behind a proxy one person's
    /// typos do not lock the whole organisation out, and spraying many accounts is still capped.
    fn begin_attempt(&self, ip: IpAddr, account: &str) -> Result<(), AuthError> {
        let now = self.now().timestamp();
        let per_account = self.0.settings.login_failures_per_minute;
        let mut f = self.0.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if f.len() > 100_000 {
            f.retain(|_, (start, _)| now - *start < 60);
        }
        let keys = [((ip, account.to_owned()), per_account), ((ip, "*".to_owned()), per_account.saturating_mul(20))];
        for (key, limit) in &keys {
            let e = f.entry(key.clone()).or_insert((now, 0));
            if now - e.0 >= 60 {
                *e = (now, 0);
            }
            if e.1 >= *limit {
                return Err(AuthError::RateLimited { retry_after: (60 - (now - e.0)).max(1) as u64 });
            }
        }
        for (key, _) in keys {
            if let Some(e) = f.get_mut(&key) {
                e.1 += 1;
            }
        }
        Ok(())
    }

    /// A successful attempt does not count against the address.
    fn forgive_attempt(&self, ip: IpAddr, account: &str) {
        let mut f = self.0.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in [(ip, account.to_owned()), (ip, "*".to_owned())] {
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
        let email = email.trim().to_lowercase();
        self.begin_attempt(ip, &email)?;
        let pass = pass.to_owned();
        let (e, t) = (email.clone(), tenant.map(str::to_owned));
        let mut candidates = self.0.store.read(move |c| sql::users_by_email(c, &e, t.as_deref())).await?;
        candidates.retain(|u| u.user.status == UserStatus::Active);
        candidates.truncate(5);
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

    /// On the first start (no tenant yet), creates tenant `tenant_name` and its admin. Returns
    /// `None` when a tenant already exists.
    pub async fn bootstrap(
        &self,
        tenant_name: &str,
        admin_email: &str,
        admin_password: Option<&str>,
    ) -> Result<Option<Bootstrap>, AuthError> {
        let exists = self.0.store.read(sql::count_tenants).await? > 0;
        if exists {
            return Ok(None);
        }
        self.create_tenant(tenant_name, admin_email, admin_password).await.map(Some)
    }

    /// Creates a tenant and its first admin, generating the password when none is given.
    pub async fn create_tenant(&self, name: &str, admin_email: &str, admin_password: Option<&str>) -> Result<Bootstrap, AuthError> {
        let mut problems = Vec::new();
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 100 {
            problems.push(FieldError::new("name", "a tenant name has 1 to 100 characters"));
        }
        let email = normalize_email(admin_email).map_err(|e| problems.push(e)).unwrap_or_default();
        let generated = admin_password.is_none().then(password::generate);
        let pass = admin_password.map(str::to_owned).or_else(|| generated.clone()).unwrap_or_default();
        if let Some(msg) = password::check_strength(&pass) {
            problems.push(FieldError::new("admin_password", msg));
        }
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        let hash = self.argon(move || password::hash(&pass)).await?.map_err(StoreError::Invalid)?;
        let now = self.now();
        let tenant = Tenant { id: new_id(), name, created_at: now };
        let admin = User {
            id: new_id(),
            tenant_id: tenant.id,
            email,
            display_name: "Administrator".into(),
            role: Role::Admin,
            status: UserStatus::Active,
            invited_by: None,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let (t, a) = (tenant.clone(), admin.clone());
        self.0
            .store
            .write(move |c| -> Result<(), StoreError> {
                sql::insert_tenant(c, &t)?;
                sql::insert_user(c, &a, Some(&hash), None, None)
            })
            .await?;
        Ok(Bootstrap { tenant, admin, generated_password: generated })
    }

    /// The tenant named `name`.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant, AuthError> {
        let name = name.to_owned();
        Ok(self.0.store.read(move |c| sql::tenant_by_name(c, &name)).await?)
    }

    /// The caller's tenant.
    pub async fn tenant(&self, id: Uuid) -> Result<Tenant, AuthError> {
        Ok(self.0.store.read(move |c| sql::get_tenant(c, id)).await?)
    }

    /// Invites a user: the account is `pending` until the invitation token (returned once,
    /// valid 7 days) is accepted with a password.
    pub async fn invite(
        &self,
        by: &Principal,
        email: &str,
        role: Role,
        display_name: Option<String>,
    ) -> Result<(User, String, DateTime<Utc>), AuthError> {
        let mut problems = Vec::new();
        let email = normalize_email(email).map_err(|e| problems.push(e)).unwrap_or_default();
        if role == Role::Ingest {
            problems.push(FieldError::new("role", "users are admin or viewer; ingest is for API tokens"));
        }
        let display_name = display_name.unwrap_or_default().trim().to_owned();
        if display_name.chars().count() > 200 {
            problems.push(FieldError::new("display_name", "at most 200 characters"));
        }
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        let now = self.now();
        let token = random_token("vgi_");
        let expires = now + self.0.settings.invite_ttl;
        let user = User {
            id: new_id(),
            tenant_id: by.tenant_id,
            email,
            display_name,
            role,
            status: UserStatus::Pending,
            invited_by: Some(by.label()),
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        let (u, hash) = (user.clone(), sha256(&token));
        self.0.store.write(move |c| sql::insert_user(c, &u, None, Some(&hash), Some(expires.timestamp_micros()))).await?;
        Ok((user, token, expires))
    }

    /// Accepts an invitation: sets the password, activates the account and logs in.
    pub async fn accept_invite(&self, ip: IpAddr, token: &str, pass: &str, display_name: Option<String>) -> Result<Session, AuthError> {
        if let Some(msg) = password::check_strength(pass) {
            return Err(AuthError::Invalid(vec![FieldError::new("password", msg)]));
        }
        self.begin_attempt(ip, "invitation")?;
        // The invitation is checked before any hashing: a made-up token costs a lookup, not argon2.
        let invite = sha256(token);
        let now = self.now();
        let pending = self
            .0
            .store
            .read(move |c| -> Result<Option<String>, StoreError> {
                Ok(c.query_row(
                    "SELECT id FROM users WHERE invite_hash = ?1 AND status = 'pending' AND invite_expires_at > ?2",
                    params![&invite[..], now.timestamp_micros()],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await?;
        if pending.is_none() {
            return Err(AuthError::InvalidInvitation);
        }
        self.forgive_attempt(ip, "invitation");
        let p = pass.to_owned();
        let hash = self.argon(move || password::hash(&p)).await?.map_err(StoreError::Invalid)?;
        let u = self
            .0
            .store
            .write(move |c| -> Result<UserSecrets, AuthError> {
                // Checked again in the transaction: the invitation may have been used meanwhile.
                let changed = c.execute(
                    "UPDATE users SET password_hash = ?1, status = 'active', invite_hash = NULL, invite_expires_at = NULL, updated_at = ?2,
                     display_name = coalesce(?3, display_name) WHERE invite_hash = ?4 AND status = 'pending' AND invite_expires_at > ?2",
                    params![hash, now.timestamp_micros(), display_name, &invite[..]],
                )?;
                let id = pending.filter(|_| changed == 1).ok_or(AuthError::InvalidInvitation)?;
                sql::user_secrets_by(c, "id", &id)?.ok_or(AuthError::InvalidInvitation)
            })
            .await?;
        Ok(self.issue(&u))
    }

    /// Changes the caller's own password and revokes their other login tokens.
    pub async fn change_password(&self, who: &Principal, current: &str, new: &str) -> Result<Session, AuthError> {
        let Actor::User { id, .. } = who.actor else {
            return Err(AuthError::Invalid(vec![FieldError::new("token", "API tokens have no password; log in as a user")]));
        };
        if let Some(msg) = password::check_strength(new) {
            return Err(AuthError::Invalid(vec![FieldError::new("new_password", msg)]));
        }
        let found = self.0.store.read(move |c| sql::user_secrets_by(c, "id", &id.to_string())).await?.ok_or(AuthError::InvalidToken)?;
        let (cur, new) = (current.to_owned(), new.to_owned());
        let old_hash = found.password_hash.clone().unwrap_or_default();
        let hash = self
            .argon(move || password::verify(&cur, &old_hash).then(|| password::hash(&new)))
            .await?
            .ok_or_else(|| AuthError::Invalid(vec![FieldError::new("current_password", "the current password is wrong")]))?
            .map_err(StoreError::Invalid)?;
        let now = self.now();
        let u = self
            .write_access(move |c| -> Result<Option<UserSecrets>, StoreError> {
                c.execute(
                    "UPDATE users SET password_hash = ?1, session_version = session_version + 1, updated_at = ?2 WHERE id = ?3",
                    params![hash, now.timestamp_micros(), id.to_string()],
                )?;
                sql::user_secrets_by(c, "id", &id.to_string())
            })
            .await?
            .ok_or(AuthError::InvalidToken)?;
        Ok(self.issue(&u))
    }

    /// A page of the tenant's users, in creation order.
    pub async fn list_users(
        &self,
        tenant: Uuid,
        role: Option<Role>,
        status: Option<UserStatus>,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<User>, AuthError> {
        Ok(self.0.store.read(move |c| sql::list_users(c, tenant, role, status, after, limit)).await?)
    }

    /// One user of the tenant.
    pub async fn get_user(&self, tenant: Uuid, id: Uuid) -> Result<User, AuthError> {
        Ok(self.0.store.read(move |c| sql::get_user(c, tenant, id)).await?)
    }

    /// Changes a user's role or name. Demoting the last active admin is refused. A role change
    /// revokes the user's login tokens.
    pub async fn update_user(&self, by: &Principal, id: Uuid, role: Option<Role>, display_name: Option<String>) -> Result<User, AuthError> {
        if role == Some(Role::Ingest) {
            return Err(AuthError::Invalid(vec![FieldError::new("role", "users are admin or viewer; ingest is for API tokens")]));
        }
        if display_name.as_ref().is_some_and(|d| d.chars().count() > 200) {
            return Err(AuthError::Invalid(vec![FieldError::new("display_name", "at most 200 characters")]));
        }
        let tenant = by.tenant_id;
        let now = self.now().timestamp_micros();
        let user = self
            .write_access(move |c| -> Result<User, AuthError> {
                let u = sql::get_user(c, tenant, id)?;
                if let Some(r) = role
                    && r != u.role
                {
                    if u.role == Role::Admin && u.status == UserStatus::Active && sql::other_active_admins(c, tenant, id)? == 0 {
                        return Err(AuthError::LastAdmin);
                    }
                    c.execute(
                        "UPDATE users SET role = ?1, session_version = session_version + 1, updated_at = ?2 WHERE id = ?3",
                        params![r.as_str(), now, id.to_string()],
                    )?;
                    if r != Role::Admin {
                        // Admin tokens this user created must not outlive their admin rights.
                        c.execute(
                            "UPDATE api_tokens SET revoked_at = ?1 WHERE created_by_user = ?2 AND role = 'admin' AND revoked_at IS NULL",
                            params![now, id.to_string()],
                        )?;
                    }
                }
                if let Some(d) = &display_name {
                    c.execute("UPDATE users SET display_name = ?1, updated_at = ?2 WHERE id = ?3", params![d.trim(), now, id.to_string()])?;
                }
                Ok(sql::get_user(c, tenant, id)?)
            })
            .await?;
        Ok(user)
    }

    /// Deactivates (revoking every login token) or reactivates a user. Deactivating the last
    /// active admin is refused.
    pub async fn set_active(&self, by: &Principal, id: Uuid, active: bool) -> Result<User, AuthError> {
        let tenant = by.tenant_id;
        let now = self.now().timestamp_micros();
        let user = self
            .write_access(move |c| -> Result<User, AuthError> {
                let u = sql::get_user(c, tenant, id)?;
                if !active && u.role == Role::Admin && u.status == UserStatus::Active && sql::other_active_admins(c, tenant, id)? == 0 {
                    return Err(AuthError::LastAdmin);
                }
                match (active, u.status) {
                    // Reactivation restores the right to log in; there is nothing to revoke.
                    (true, UserStatus::Inactive) => {
                        c.execute("UPDATE users SET status = 'active', updated_at = ?1 WHERE id = ?2", params![now, id.to_string()])?;
                    }
                    (true, _) | (false, UserStatus::Inactive) => {}
                    (false, _) => {
                        c.execute(
                            "UPDATE users SET status = 'inactive', session_version = session_version + 1, updated_at = ?1 WHERE id = ?2",
                            params![now, id.to_string()],
                        )?;
                    }
                }
                if !active {
                    // A person who leaves takes their API tokens with them.
                    c.execute(
                        "UPDATE api_tokens SET revoked_at = ?1 WHERE created_by_user = ?2 AND revoked_at IS NULL",
                        params![now, id.to_string()],
                    )?;
                }
                Ok(sql::get_user(c, tenant, id)?)
            })
            .await?;
        Ok(user)
    }

    /// Creates an API token; the secret is returned here and never again.
    pub async fn create_token(
        &self,
        by: &Principal,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(ApiToken, String), AuthError> {
        let mut problems = Vec::new();
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            problems.push(FieldError::new("name", "a token name has 1 to 200 characters"));
        }
        let now = self.now();
        if expires_at.is_some_and(|e| e <= now) {
            problems.push(FieldError::new("expires_at", "must be in the future"));
        }
        if !problems.is_empty() {
            return Err(AuthError::Invalid(problems));
        }
        let secret = random_token("vgt_");
        let tok = ApiToken {
            id: new_id(),
            name,
            role,
            prefix: secret.chars().take(10).collect(),
            created_by: Some(by.label()),
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        let (t, tenant, hash) = (tok.clone(), by.tenant_id, sha256(&secret));
        // A token made by a token belongs to the person who owns the one that made it, so it goes
        // when they do.
        let creator = match &by.actor {
            Actor::User { id, .. } => Some(id.to_string()),
            Actor::Token { owner, .. } => owner.map(|o| o.to_string()),
        };
        self.0
            .store
            .write(move |c| {
                c.execute(
                    "INSERT INTO api_tokens (id, tenant_id, name, role, token_hash, prefix, created_by, created_at, expires_at, created_by_user)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        t.id.to_string(),
                        tenant.to_string(),
                        t.name,
                        t.role.as_str(),
                        &hash[..],
                        t.prefix,
                        t.created_by,
                        t.created_at.timestamp_micros(),
                        t.expires_at.map(|e| e.timestamp_micros()),
                        creator
                    ],
                )
                .map_err(StoreError::from)
            })
            .await?;
        Ok((tok, secret))
    }

    /// A page of the tenant's API tokens, in creation order.
    pub async fn list_tokens(&self, tenant: Uuid, after: Option<Uuid>, limit: usize) -> Result<Vec<ApiToken>, AuthError> {
        Ok(self.0.store.read(move |c| sql::list_tokens(c, tenant, after, limit)).await?)
    }

    /// Revokes an API token; it stops working at once.
    pub async fn revoke_token(&self, tenant: Uuid, id: Uuid) -> Result<ApiToken, AuthError> {
        let now = self.now().timestamp_micros();
        let tok = self
            .write_access(move |c| -> Result<ApiToken, StoreError> {
                c.execute(
                    "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?1) WHERE tenant_id = ?2 AND id = ?3",
                    params![now, tenant.to_string(), id.to_string()],
                )?;
                sql::get_token(c, tenant, id)
            })
            .await?;
        Ok(tok)
    }
}
