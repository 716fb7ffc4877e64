//! The shape alerts and cases are listed in: filters from the query string, then newest first
//! by creation time over a range, with a `time:id` cursor. One place, so both lists page, filter
//! and refuse bad input alike.
use crate::state::XdrState;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as Sql;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;
use vigie_core::http::{ApiError, Page, bad_query, page_limit};

/// The values of a comma-separated filter, each made canonical by `valid` (None: not one of
/// `expected`); repeats dropped. Absent: no filter (empty).
pub fn list_of(param: &str, raw: Option<&str>, valid: impl Fn(&str) -> Option<String>, expected: &str) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for v in raw.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let Some(v) = valid(v) else {
            return Err(bad_query(param, format!("{:?} is not one; use {expected}", v.chars().take(40).collect::<String>())));
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(bad_query(param, format!("give at least one of {expected}, comma-separated")));
    }
    Ok(out)
}

/// A listing's query being built: `SELECT … WHERE space_no = ?` and the filters added.
pub struct Listing {
    sql: String,
    args: Vec<Sql>,
}

impl Listing {
    /// `SELECT {columns} FROM {table}` of one space (names from the caller's module, never
    /// from input).
    pub fn of(columns: &str, table: &'static str, space_no: i64) -> Listing {
        Listing { sql: format!("SELECT {columns} FROM {table} WHERE space_no = ?"), args: vec![Sql::Integer(space_no)] }
    }

    /// `column IN (values)`, unless `values` is empty.
    pub fn any_of(mut self, column: &'static str, values: Vec<String>) -> Listing {
        if !values.is_empty() {
            self.sql.push_str(&format!(" AND {column} IN ({})", vec!["?"; values.len()].join(", ")));
            self.args.extend(values.into_iter().map(Sql::Text));
        }
        self
    }

    /// A condition with one `?` bound to `value`, when there is a value.
    pub fn when(mut self, condition: &'static str, value: Option<String>) -> Listing {
        if let Some(v) = value {
            self.sql.push_str(" AND ");
            self.sql.push_str(condition);
            self.args.push(Sql::Text(v));
        }
        self
    }

    /// The page of rows created in `[from, to)` after `cursor` (the previous page's
    /// `next_cursor`), newest first; `created` gives a row's creation time and id.
    #[allow(clippy::too_many_arguments)]
    pub async fn newest_first<T: Send + 'static>(
        mut self,
        st: &XdrState,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: Option<u32>,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        created: fn(&T) -> (DateTime<Utc>, &str),
    ) -> Result<Page<T>, ApiError> {
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(bad_query("from", "from must be before to"));
        }
        let cursor = match cursor {
            Some(c) => Some(
                c.split_once(':')
                    .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())).filter(|(_, id)| !id.is_empty()))
                    .ok_or_else(|| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?,
            ),
            None => None,
        };
        let limit = page_limit(limit);
        if let Some(from) = from {
            self.sql.push_str(" AND created_at >= ?");
            self.args.push(Sql::Integer(to_micros(from)));
        }
        if let Some(to) = to {
            self.sql.push_str(" AND created_at < ?");
            self.args.push(Sql::Integer(to_micros(to)));
        }
        if let Some((t, id)) = cursor {
            self.sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
            self.args.extend([Sql::Integer(t), Sql::Integer(t), Sql::Text(id)]);
        }
        self.sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        self.args.push(Sql::Integer(limit as i64 + 1));
        let Listing { sql, args } = self;
        let rows: Vec<T> = st
            .store
            .read(move |c| {
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(args), row)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
            })
            .await?;
        Ok(Page::from_rows(rows, limit, |r| {
            let (at, id) = created(r);
            format!("{}:{id}", to_micros(at))
        }))
    }
}
