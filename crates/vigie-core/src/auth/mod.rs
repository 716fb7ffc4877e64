//! Authentication and authorisation: tenants, users (roles `admin` and `viewer`, argon2id
//! passwords, invitations), long-lived API tokens (stored as SHA-256 hashes, shown once,
//! revocable, last use recorded), 24-hour login tokens, and the permission check every handler
//! makes. Every query here is scoped to the caller's tenant.
mod accounts;
pub mod jwt;
pub mod password;
pub mod routes;
mod service;
mod store;

pub use service::{Auth, AuthSettings, Bootstrap, Session, normalize_email};

use crate::http::FieldError;
use crate::store_error_from;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The migrations of the auth tables, to run before a half's own.
pub const MIGRATIONS: &[crate::db::Migration] = &[
    crate::db::Migration { name: "core_001_auth", sql: include_str!("../../migrations/core_001_auth.sql") },
    crate::db::Migration { name: "core_002_logouts", sql: include_str!("../../migrations/core_002_logouts.sql") },
];

/// What a caller may do. Users are `admin` or `viewer`; API tokens may also be `ingest`, the
/// least privilege a browser extension or proxy needs (record interactions, read policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and changes everything in the tenant.
    Admin,
    /// Reads everything in the tenant, changes nothing.
    Viewer,
    /// Records interactions and reads the configuration it enforces (tokens only).
    Ingest,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }

    /// Whether this role grants `p`.
    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Viewer => matches!(p, Permission::ReadConfig | Permission::ReadData),
            Role::Ingest => matches!(p, Permission::ReadConfig | Permission::Record),
        }
    }
}

/// The role of a user account, as requests give it: `admin` or `viewer` (`ingest` is for API
/// tokens only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Reads and changes everything in the tenant.
    Admin,
    /// Reads everything in the tenant.
    Viewer,
}

impl From<UserRole> for Role {
    fn from(r: UserRole) -> Role {
        match r {
            UserRole::Admin => Role::Admin,
            UserRole::Viewer => Role::Viewer,
        }
    }
}

/// A kind of operation, checked against the caller's [`Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read configuration: policies, platforms.
    ReadConfig,
    /// Read recorded data: interactions, users, tokens.
    ReadData,
    /// Record interactions.
    Record,
    /// Change configuration, users and tokens.
    Write,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Permission::ReadConfig => "read the configuration",
            Permission::ReadData => "read recorded data",
            Permission::Record => "record interactions",
            Permission::Write => "do this (admins only)",
        })
    }
}

/// Who is calling: a user with a login token, or an API token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The caller's tenant; every query is scoped to it.
    pub tenant_id: Uuid,
    /// The caller's current role.
    pub role: Role,
    /// The user or token behind the call.
    pub actor: Actor,
}

/// The identity behind a [`Principal`].
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    /// A person who logged in.
    User {
        /// User id.
        id: Uuid,
        /// E-mail.
        email: String,
    },
    /// A long-lived API token.
    Token {
        /// Token id.
        id: Uuid,
        /// Its label.
        name: String,
        /// The user who owns it (made it, or made the token that made it), if any.
        owner: Option<Uuid>,
    },
}

impl Principal {
    /// A label for records of who did something (`alice@acme.fr`, `token:extension`).
    pub fn label(&self) -> String {
        match &self.actor {
            Actor::User { email, .. } => email.clone(),
            Actor::Token { name, .. } => format!("token:{name}"),
        }
    }
}

/// The state of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Invited, has not set a password yet.
    Pending,
    /// Can log in.
    Active,
    /// Deactivated: cannot log in, earlier tokens are revoked.
    Inactive,
}

impl UserStatus {
    fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
        }
    }
    fn parse(s: &str) -> UserStatus {
        match s {
            "active" => UserStatus::Active,
            "pending" => UserStatus::Pending,
            _ => UserStatus::Inactive,
        }
    }
}

/// A user account as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Tenant id.
    pub tenant_id: Uuid,
    /// E-mail (lower case), unique in the tenant.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// `admin` or `viewer`.
    #[schema(value_type = UserRole)]
    pub role: Role,
    /// `pending`, `active` or `inactive`.
    pub status: UserStatus,
    /// Who invited this user.
    pub invited_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// An API token as the API lists it (the secret itself is shown once, at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiToken {
    /// Token id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// `admin`, `viewer` or `ingest`.
    pub role: Role,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last use, recorded at most about once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A tenant: an organisation whose data is isolated from every other.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tenant {
    /// Tenant id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Why an authentication or account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("this endpoint needs a token: send Authorization: Bearer <token> (from POST /api/v1/auth/login or an API token)")]
    MissingCredentials,
    /// Wrong e-mail or password, or an inactive account.
    #[error("wrong e-mail or password, or the account is not active")]
    InvalidCredentials,
    /// The token is unknown, revoked, malformed, or was issued before a role or password change.
    #[error("the token is not valid (unknown, revoked, or issued before a role or password change); log in again or create a new token")]
    InvalidToken,
    /// The token has expired.
    #[error("the token has expired; log in again, or ask an admin for a new API token")]
    Expired,
    /// The invitation is unknown, used or expired.
    #[error("this invitation is unknown, already used or expired; ask an admin to invite you again")]
    InvalidInvitation,
    /// The role does not grant the operation.
    #[error("your role does not allow you to {0}")]
    Forbidden(Permission),
    /// Too many failed logins from this address.
    #[error("too many failed logins from this address; try again in {retry_after} seconds")]
    RateLimited {
        /// Seconds until the next attempt is allowed.
        retry_after: u64,
    },
    /// The change would leave the tenant without an active admin.
    #[error("this would leave the tenant without an active admin; make another user admin first")]
    LastAdmin,
    /// Invalid input.
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
}

store_error_from!(AuthError);
