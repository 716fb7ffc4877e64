//! Account management on the auth service: tenants, invitations, users, passwords and API
//! tokens. Every change that alters who may do what goes through `write_access`, which clears
//! the token cache after the commit.
use super::service::{Auth, Bootstrap, Session, normalize_email, random_token, sha256};
use super::store::{self as sql, UserSecrets};
use super::{Actor, ApiToken, AuthError, Principal, Role, Tenant, User, UserStatus, password};
use crate::error::StoreError;
use crate::http::FieldError;
use crate::ids::new_id;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use std::net::IpAddr;
use uuid::Uuid;

impl Auth {
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
