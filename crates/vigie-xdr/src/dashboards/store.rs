//! Dashboards in the XDR database (`dashboards`): every helper is scoped to a space; at most one
//! dashboard of a space is its default (a partial unique index), so making one the default
//! clears the previous one in the same transaction.
use super::model::{Dashboard, DashboardSpec, Range, Widget};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;

const SELECT: &str =
    "SELECT id, name, description, default_range, refresh_seconds, is_default, widgets, builtin, created_at, updated_at FROM dashboards";

fn conversion(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Dashboard> {
    let id: String = r.get(0)?;
    let range: String = r.get(3)?;
    let widgets: String = r.get(6)?;
    Ok(Dashboard {
        id: Uuid::parse_str(&id).map_err(|e| conversion(0, e))?,
        name: r.get(1)?,
        description: r.get(2)?,
        default_range: Range::parse(&range).unwrap_or_default(),
        refresh_seconds: r.get(4)?,
        is_default: r.get(5)?,
        widgets: serde_json::from_str::<Vec<Widget>>(&widgets).map_err(|e| conversion(6, e))?,
        builtin: r.get(7)?,
        created_at: from_micros(r.get(8)?),
        updated_at: from_micros(r.get(9)?),
    })
}

fn name_taken(name: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if StoreError::is_unique_violation(&e) { StoreError::Conflict(format!("a dashboard named {name:?}")) } else { StoreError::from(e) }
    }
}

/// A dashboard of the space, or `NotFound`.
pub fn fetch(c: &Connection, space_no: i64, id: Uuid) -> Result<Dashboard, StoreError> {
    c.prepare_cached(&format!("{SELECT} WHERE space_no = ?1 AND id = ?2"))?
        .query_row(params![space_no, id.to_string()], row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The space's dashboards by name, after `after` (a name), at most `limit + 1`.
pub fn list(c: &Connection, space_no: i64, after: Option<&str>, limit: usize) -> Result<Vec<Dashboard>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("{SELECT} WHERE space_no = ?1 AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3"))?;
    let rows = stmt.query_map(params![space_no, after, limit as i64 + 1], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The space's home dashboard: its default, else the first by name.
pub fn home(c: &Connection, space_no: i64) -> Result<Option<Dashboard>, StoreError> {
    Ok(c.prepare_cached(&format!("{SELECT} WHERE space_no = ?1 ORDER BY is_default DESC, name LIMIT 1"))?
        .query_row([space_no], row)
        .optional()?)
}

/// Makes `id` the only default of the space, or clears its flag.
fn set_default(c: &Connection, space_no: i64, id: Uuid, is_default: bool) -> Result<(), StoreError> {
    if is_default {
        c.prepare_cached("UPDATE dashboards SET is_default = 0 WHERE space_no = ?1 AND is_default = 1 AND id != ?2")?
            .execute(params![space_no, id.to_string()])?;
    }
    Ok(())
}

/// Inserts a checked dashboard.
pub fn insert(c: &Connection, space_no: i64, id: Uuid, d: &DashboardSpec, builtin: Option<&str>, now_us: i64) -> Result<(), StoreError> {
    set_default(c, space_no, id, d.is_default)?;
    c.prepare_cached(
        "INSERT INTO dashboards (id, space_no, name, description, default_range, refresh_seconds, is_default, widgets, builtin, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    )?
    .execute(params![
        id.to_string(),
        space_no,
        d.name,
        d.description,
        d.default_range.as_str(),
        d.refresh_seconds,
        d.is_default,
        serde_json::to_string(&d.widgets)?,
        builtin,
        now_us
    ])
    .map_err(name_taken(&d.name))?;
    Ok(())
}

/// Replaces a dashboard of the space with a checked one; `NotFound` if it is not there.
pub fn replace(c: &Connection, space_no: i64, id: Uuid, d: &DashboardSpec, now_us: i64) -> Result<(), StoreError> {
    set_default(c, space_no, id, d.is_default)?;
    let n = c
        .prepare_cached(
            "UPDATE dashboards SET name = ?3, description = ?4, default_range = ?5, refresh_seconds = ?6, is_default = ?7, \
             widgets = ?8, updated_at = MAX(?9, updated_at + 1) WHERE space_no = ?1 AND id = ?2",
        )?
        .execute(params![
            space_no,
            id.to_string(),
            d.name,
            d.description,
            d.default_range.as_str(),
            d.refresh_seconds,
            d.is_default,
            serde_json::to_string(&d.widgets)?,
            now_us
        ])
        .map_err(name_taken(&d.name))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes a dashboard of the space; `NotFound` if it is not there.
pub fn delete(c: &Connection, space_no: i64, id: Uuid) -> Result<(), StoreError> {
    let n = c.prepare_cached("DELETE FROM dashboards WHERE space_no = ?1 AND id = ?2")?.execute(params![space_no, id.to_string()])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
