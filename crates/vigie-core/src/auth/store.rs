//! The SQL of the auth tables. Every function that reads tenant data takes the tenant id.
use super::{ApiToken, Role, Tenant, User, UserStatus};
use crate::clock::from_micros;
use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

pub(super) const USER_COLS: &str = "id, tenant_id, email, display_name, role, status, invited_by, created_at, updated_at, last_login_at";

fn uuid_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = r.get(i)?;
    Uuid::parse_str(&s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

pub(super) fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_col(r, 0)?,
        tenant_id: uuid_col(r, 1)?,
        email: r.get(2)?,
        display_name: r.get(3)?,
        role: Role::parse(&r.get::<_, String>(4)?).unwrap_or(Role::Viewer),
        status: UserStatus::parse(&r.get::<_, String>(5)?),
        invited_by: r.get(6)?,
        created_at: from_micros(r.get(7)?),
        updated_at: from_micros(r.get(8)?),
        last_login_at: r.get::<_, Option<i64>>(9)?.map(from_micros),
    })
}

pub(super) const TOKEN_COLS: &str = "id, name, role, prefix, created_by, created_at, expires_at, revoked_at, last_used_at";

pub(super) fn token_from_row(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: uuid_col(r, 0)?,
        name: r.get(1)?,
        role: Role::parse(&r.get::<_, String>(2)?).unwrap_or(Role::Viewer),
        prefix: r.get(3)?,
        created_by: r.get(4)?,
        created_at: from_micros(r.get(5)?),
        expires_at: r.get::<_, Option<i64>>(6)?.map(from_micros),
        revoked_at: r.get::<_, Option<i64>>(7)?.map(from_micros),
        last_used_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
    })
}

/// A user row with the fields only the service needs.
pub(super) struct UserSecrets {
    pub user: User,
    pub password_hash: Option<String>,
    pub session_version: i64,
}

pub(super) fn user_secrets_by(conn: &Connection, column: &str, value: &dyn rusqlite::ToSql) -> Result<Option<UserSecrets>, StoreError> {
    let sql = format!("SELECT {USER_COLS}, password_hash, session_version FROM users WHERE {column} = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([value], |r| Ok(UserSecrets { user: user_from_row(r)?, password_hash: r.get(10)?, session_version: r.get(11)? }))
        .optional()?)
}

/// The users with this e-mail (one per tenant at most), in the named tenant only if given.
pub(super) fn users_by_email(conn: &Connection, email: &str, tenant: Option<&str>) -> Result<Vec<UserSecrets>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLS}, password_hash, session_version FROM users WHERE email = ?1
         AND (?2 IS NULL OR tenant_id = (SELECT id FROM tenants WHERE name = ?2)) ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![email, tenant], |r| {
        Ok(UserSecrets { user: user_from_row(r)?, password_hash: r.get(10)?, session_version: r.get(11)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn get_user(conn: &Connection, tenant: Uuid, id: Uuid) -> Result<User, StoreError> {
    conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE tenant_id = ?1 AND id = ?2"))?
        .query_row(params![tenant.to_string(), id.to_string()], user_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub(super) fn insert_tenant(conn: &Connection, t: &Tenant) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![t.id.to_string(), t.name, t.created_at.timestamp_micros()],
    )
    .map_err(|e| {
        if StoreError::is_unique_violation(&e) { StoreError::Conflict(format!("a tenant named {:?}", t.name)) } else { e.into() }
    })?;
    Ok(())
}

pub(super) fn get_tenant(conn: &Connection, id: Uuid) -> Result<Tenant, StoreError> {
    conn.query_row("SELECT id, name, created_at FROM tenants WHERE id = ?1", [id.to_string()], |r| {
        Ok(Tenant { id: uuid_col(r, 0)?, name: r.get(1)?, created_at: from_micros(r.get(2)?) })
    })
    .optional()?
    .ok_or(StoreError::NotFound)
}

pub(super) fn tenant_by_name(conn: &Connection, name: &str) -> Result<Tenant, StoreError> {
    conn.query_row("SELECT id, name, created_at FROM tenants WHERE name = ?1", [name], |r| {
        Ok(Tenant { id: uuid_col(r, 0)?, name: r.get(1)?, created_at: from_micros(r.get(2)?) })
    })
    .optional()?
    .ok_or(StoreError::NotFound)
}

pub(super) fn count_tenants(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM tenants", [], |r| r.get(0))?)
}

pub(super) fn insert_user(
    conn: &Connection,
    u: &User,
    password_hash: Option<&str>,
    invite_hash: Option<&[u8]>,
    invite_expires: Option<i64>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO users (id, tenant_id, email, display_name, role, status, password_hash, invite_hash, invite_expires_at, invited_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            u.id.to_string(), u.tenant_id.to_string(), u.email, u.display_name, u.role.as_str(), u.status.as_str(),
            password_hash, invite_hash, invite_expires, u.invited_by, u.created_at.timestamp_micros()
        ],
    )
    .map_err(|e| if StoreError::is_unique_violation(&e) { StoreError::Conflict(format!("a user with e-mail {} in this tenant", u.email)) } else { e.into() })?;
    Ok(())
}

/// Active admins of the tenant other than `except`.
pub(super) fn other_active_admins(conn: &Connection, tenant: Uuid, except: Uuid) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE tenant_id = ?1 AND id != ?2 AND role = 'admin' AND status = 'active'",
        params![tenant.to_string(), except.to_string()],
        |r| r.get(0),
    )?)
}

pub(super) fn list_users(
    conn: &Connection,
    tenant: Uuid,
    role: Option<Role>,
    status: Option<UserStatus>,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE tenant_id = ?1 AND (?2 IS NULL OR role = ?2) AND (?3 IS NULL OR status = ?3)
         AND (?4 IS NULL OR id > ?4) ORDER BY id LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![tenant.to_string(), role.map(Role::as_str), status.map(UserStatus::as_str), after.map(|u| u.to_string()), limit as i64 + 1],
        user_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_tokens(conn: &Connection, tenant: Uuid, after: Option<Uuid>, limit: usize) -> Result<Vec<ApiToken>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![tenant.to_string(), after.map(|u| u.to_string()), limit as i64 + 1], token_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn get_token(conn: &Connection, tenant: Uuid, id: Uuid) -> Result<ApiToken, StoreError> {
    conn.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = ?1 AND id = ?2"))?
        .query_row(params![tenant.to_string(), id.to_string()], token_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The token with this hash, with its tenant and the user who owns it.
pub(super) fn token_by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<(Uuid, Option<Uuid>, ApiToken)>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {TOKEN_COLS}, tenant_id, created_by_user FROM api_tokens WHERE token_hash = ?1"))?
        .query_row([&hash[..]], |r| {
            let owner = r.get::<_, Option<String>>(10)?.and_then(|s| Uuid::parse_str(&s).ok());
            Ok((uuid_col(r, 9)?, owner, token_from_row(r)?))
        })
        .optional()?)
}
