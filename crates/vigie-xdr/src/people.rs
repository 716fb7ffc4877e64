//! The people directory: who the events name (user_id → display name, e-mail, manager's e-mail,
//! department, last security-awareness training), through the API and CSV import; read with
//! `alerts_read`, changed with `admin`. Alerts, cases and events show the name it gives a user.
use crate::keys::{AdminScope, AlertsRead, Authorized};
use crate::state::XdrState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError, Page, bad_query, page_limit, present};

/// The longest user id, display name or department (characters).
pub const MAX_TEXT: usize = 200;
/// The longest e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// The largest CSV file an import takes (bytes).
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;
/// The most rows an import takes.
pub const MAX_IMPORT_ROWS: usize = 50_000;
/// The most bad cells an import's refusal lists (the count says how many more).
const SHOWN_IMPORT_ERRORS: usize = 200;

/// A person of the directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Person {
    /// The id the events give them (`user_id`).
    pub user_id: String,
    /// Their name, shown beside the user id on alerts, cases and events.
    pub display_name: Option<String>,
    /// Their e-mail address.
    pub email: Option<String>,
    /// Their manager's e-mail address.
    pub manager_email: Option<String>,
    /// Their department.
    pub department: Option<String>,
    /// The date of their last security-awareness training (`YYYY-MM-DD`).
    pub training_date: Option<String>,
    /// Whole days from that training to today (UTC), when known.
    pub training_days_ago: Option<i64>,
    /// When they were added.
    pub created_at: DateTime<Utc>,
    /// Their last change.
    pub updated_at: DateTime<Utc>,
}

impl Person {
    /// The person as templates and playbooks see them (`person` of the alert context): their
    /// fields and `training_days_ago` as of `now`.
    pub fn context(&self, now: DateTime<Utc>) -> Value {
        json!({
            "user_id": self.user_id,
            "display_name": self.display_name,
            "email": self.email,
            "manager_email": self.manager_email,
            "department": self.department,
            "training_date": self.training_date,
            "training_days_ago": days_ago(self.training_date.as_deref(), now),
        })
    }
}

/// Whole days from a `YYYY-MM-DD` date to `now`'s date.
pub fn days_ago(date: Option<&str>, now: DateTime<Utc>) -> Option<i64> {
    let d = NaiveDate::parse_from_str(date?, "%Y-%m-%d").ok()?;
    Some((now.date_naive() - d).num_days())
}

const PERSON_COLS: &str = "user_id, display_name, email, manager_email, department, training_date, created_at, updated_at";

fn person_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        user_id: r.get(0)?,
        display_name: r.get(1)?,
        email: r.get(2)?,
        manager_email: r.get(3)?,
        department: r.get(4)?,
        training_date: r.get(5)?,
        training_days_ago: None,
        created_at: from_micros(r.get(6)?),
        updated_at: from_micros(r.get(7)?),
    })
}

/// The person of `space_no` with this user id (`training_days_ago` is left unset: see
/// [`Person::context`]).
pub fn find(c: &Connection, space_no: i64, user_id: &str) -> Result<Option<Person>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {PERSON_COLS} FROM people WHERE space_no = ?1 AND user_id = ?2"))?
        .query_row(params![space_no, user_id], person_from_row)
        .optional()?)
}

/// The display names the directory of `space_no` gives these user ids (those it knows and
/// names), in one query.
pub fn names<'a>(
    c: &Connection,
    space_no: i64,
    user_ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, String>, StoreError> {
    let wanted: Vec<&str> = user_ids.into_iter().collect::<HashSet<_>>().into_iter().collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut out = HashMap::new();
    // SQLite takes at most 32,766 parameters; a page holds at most 500 users.
    for chunk in wanted.chunks(1_000) {
        let sql = format!(
            "SELECT user_id, display_name FROM people WHERE space_no = ? AND display_name IS NOT NULL AND user_id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut args: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Integer(space_no)];
        args.extend(chunk.iter().map(|u| rusqlite::types::Value::Text((*u).to_owned())));
        let mut stmt = c.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (u, n) = row?;
            out.insert(u, n);
        }
    }
    Ok(out)
}

/// Adds `user_name` to the events (JSON objects) whose `user_id` the directory of `space_no`
/// names: one query for the whole page.
pub fn add_names(c: &Connection, space_no: i64, events: &mut [Value]) -> Result<(), StoreError> {
    let known = names(c, space_no, events.iter().filter_map(|e| e.get("user_id").and_then(Value::as_str)))?;
    if known.is_empty() {
        return Ok(());
    }
    for e in events.iter_mut() {
        let name = e.get("user_id").and_then(Value::as_str).and_then(|u| known.get(u)).cloned();
        if let (Some(name), Some(m)) = (name, e.as_object_mut()) {
            m.insert("user_name".into(), Value::String(name));
        }
    }
    Ok(())
}

/// Whether `s` reads as an e-mail address (`local@domain.tld`, no spaces) that the mailer
/// (lettre) sends to: the directory keeps addresses to write to, so an obvious typo — or an
/// address the e-mail channel would refuse at send time, like `a(b)@x.y` — is refused rather
/// than kept.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    s.len() <= MAX_EMAIL
        && s.parse::<lettre::Address>().is_ok()
        && !local.is_empty()
        && local.len() <= 64
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@')
}

/// A training date: `YYYY-MM-DD`, not after `today`.
fn training_date(s: &str, today: NaiveDate) -> Result<String, String> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{:?} is not a date; write YYYY-MM-DD (2026-03-31)", s.chars().take(40).collect::<String>()))?;
    if d > today {
        return Err(format!("{d} is in the future; give the date the training took place"));
    }
    Ok(d.format("%Y-%m-%d").to_string())
}

fn valid_user_id(u: &str) -> Result<(), String> {
    if u.is_empty() || u.chars().count() > MAX_TEXT || u.chars().any(char::is_control) {
        return Err(format!("1 to {MAX_TEXT} characters, without control characters"));
    }
    // "." and ".." cannot be a path segment (/people/.. is /): nobody's id is either.
    if u == "." || u == ".." {
        return Err("\".\" and \"..\" are not user ids".to_owned());
    }
    Ok(())
}

/// The fields of a person a request gives (each trimmed; empty is none).
#[derive(Debug, Clone, Default, PartialEq)]
struct Fields {
    display_name: Option<String>,
    email: Option<String>,
    manager_email: Option<String>,
    department: Option<String>,
    training_date: Option<String>,
}

/// The directory's columns a request may set, in [`Fields`] order.
const FIELD_NAMES: [&str; 5] = ["display_name", "email", "manager_email", "department", "training_date"];

/// Checks one field's value; the value to store.
fn check_field(name: &str, raw: Option<&str>, today: NaiveDate) -> Result<Option<String>, String> {
    let Some(v) = raw.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    match name {
        "email" | "manager_email" => {
            if valid_email(v) {
                Ok(Some(v.to_owned()))
            } else {
                Err(format!("{:?} is not an e-mail address (name@example.com)", v.chars().take(60).collect::<String>()))
            }
        }
        "training_date" => training_date(v, today).map(Some),
        _ => {
            if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
                Err(format!("at most {MAX_TEXT} characters, without control characters"))
            } else {
                Ok(Some(v.to_owned()))
            }
        }
    }
}

fn slot<'a>(f: &'a mut Fields, name: &str) -> &'a mut Option<String> {
    match name {
        "display_name" => &mut f.display_name,
        "email" => &mut f.email,
        "manager_email" => &mut f.manager_email,
        "department" => &mut f.department,
        _ => &mut f.training_date,
    }
}

/// Writes a person: every field of `set` (a name of [`FIELD_NAMES`]) from `f`, the others kept
/// (or none for a new person). Whether the person is new.
fn upsert(c: &Connection, space_no: i64, user_id: &str, f: &Fields, set: &[&str], now_us: i64) -> Result<bool, StoreError> {
    let existed: bool = c
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM people WHERE space_no = ?1 AND user_id = ?2)")?
        .query_row(params![space_no, user_id], |r| r.get(0))?;
    let updates: Vec<String> =
        set.iter().map(|n| format!("{n} = excluded.{n}")).chain(["updated_at = excluded.updated_at".into()]).collect();
    let sql = format!(
        "INSERT INTO people (space_no, user_id, display_name, email, manager_email, department, training_date, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT (space_no, user_id) DO UPDATE SET {}",
        updates.join(", ")
    );
    c.prepare_cached(&sql)?.execute(params![
        space_no,
        user_id,
        f.display_name,
        f.email,
        f.manager_email,
        f.department,
        f.training_date,
        now_us
    ])?;
    Ok(!existed)
}

/// A person as `PUT` writes them: every field (an absent one is cleared).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    /// Their name, up to 200 characters.
    pub display_name: Option<String>,
    /// Their e-mail address.
    pub email: Option<String>,
    /// Their manager's e-mail address.
    pub manager_email: Option<String>,
    /// Their department, up to 200 characters.
    pub department: Option<String>,
    /// Their last security-awareness training, `YYYY-MM-DD`, not in the future.
    pub training_date: Option<String>,
    /// Ignored when it repeats the path's user id (so a GET's answer can be sent back).
    pub user_id: Option<String>,
    /// Ignored (read-only).
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub training_days_ago: Option<Value>,
    /// Ignored (read-only).
    #[schema(value_type = Option<String>)]
    pub created_at: Option<Value>,
    /// Ignored (read-only).
    #[schema(value_type = Option<String>)]
    pub updated_at: Option<Value>,
}

/// A change to a person; absent fields stay as they are, `null` clears one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    /// Their name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Their e-mail address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Their manager's e-mail address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub manager_email: Option<Option<String>>,
    /// Their department.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub department: Option<Option<String>>,
    /// Their last training, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub training_date: Option<Option<String>>,
}

/// Filters of the directory listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PeopleListParams {
    /// Only this department (exact).
    pub department: Option<String>,
    /// Only people whose user id, name or e-mail starts with this (any case).
    pub q: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportAnswer {
    /// Rows read.
    pub rows: usize,
    /// People added.
    pub created: usize,
    /// People already in the directory, updated.
    pub updated: usize,
}

fn user_ref(raw: &str) -> Result<String, ApiError> {
    let u = raw.trim();
    valid_user_id(u).map_err(|_| ApiError::not_found("person"))?;
    Ok(u.to_owned())
}

fn shown(mut p: Person, now: DateTime<Utc>) -> Person {
    p.training_days_ago = days_ago(p.training_date.as_deref(), now);
    p
}

/// LIKE's wildcards escaped (with `\`).
fn like_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// The directory, by user id.
#[utoipa::path(get, path = "/api/v1/people", tag = "people", security(("bearer" = [])), params(PeopleListParams),
    responses((status = 200, body = Page<Person>), (status = 400), (status = 403)))]
pub async fn people_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    ApiQuery(q): ApiQuery<PeopleListParams>,
) -> Result<Json<Page<Person>>, ApiError> {
    use rusqlite::types::Value as Sql;
    let limit = page_limit(q.limit);
    let mut sql = format!("SELECT {PERSON_COLS} FROM people WHERE space_no = ?1");
    let mut args = vec![Sql::Integer(caller.space_no)];
    if let Some(d) = q.department {
        args.push(Sql::Text(d));
        sql.push_str(&format!(" AND department = ?{}", args.len()));
    }
    if let Some(p) = q.q.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()) {
        if p.chars().count() > MAX_EMAIL {
            return Err(bad_query("q", format!("at most {MAX_EMAIL} characters")));
        }
        args.push(Sql::Text(like_prefix(&p)));
        let n = args.len();
        sql.push_str(&format!(r" AND (user_id LIKE ?{n} ESCAPE '\' OR display_name LIKE ?{n} ESCAPE '\' OR email LIKE ?{n} ESCAPE '\')"));
    }
    if let Some(cursor) = q.cursor {
        args.push(Sql::Text(cursor));
        sql.push_str(&format!(" AND user_id > ?{}", args.len()));
    }
    args.push(Sql::Integer(limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY user_id LIMIT ?{}", args.len()));
    let rows: Vec<Person> = st
        .store
        .read(move |c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), person_from_row)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await?;
    let now = st.clock.now();
    let page = Page::from_rows(rows, limit, |p| p.user_id.clone());
    Ok(Json(Page { items: page.items.into_iter().map(|p| shown(p, now)).collect(), next_cursor: page.next_cursor }))
}

/// One person, by user id.
#[utoipa::path(get, path = "/api/v1/people/{user_id}", tag = "people", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "the user id the events give")),
    responses((status = 200, body = Person), (status = 404)))]
pub async fn people_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    Path(user_id): Path<String>,
) -> Result<Json<Person>, ApiError> {
    let (user_id, space_no) = (user_ref(&user_id)?, caller.space_no);
    let p = st.store.read(move |c| find(c, space_no, &user_id)).await?.ok_or_else(|| ApiError::not_found("person"))?;
    Ok(Json(shown(p, st.clock.now())))
}

/// Add or replace a person (every field; an absent one is cleared).
#[utoipa::path(put, path = "/api/v1/people/{user_id}", tag = "people", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "the user id the events give")), request_body = PersonSpec,
    responses((status = 200, body = Person, description = "replaced"), (status = 201, body = Person, description = "added"), (status = 422)))]
pub async fn people_put(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(user_id): Path<String>,
    ApiJson(spec): ApiJson<PersonSpec>,
) -> Result<(StatusCode, Json<Person>), ApiError> {
    let user_id = user_id.trim().to_owned();
    let now = st.clock.now();
    let mut errors = Vec::new();
    if let Err(m) = valid_user_id(&user_id) {
        errors.push(FieldError::new("user_id", m));
    }
    if spec.user_id.as_deref().is_some_and(|u| u.trim() != user_id) {
        errors.push(FieldError::new("user_id", "differs from the path's; a person's user id does not change"));
    }
    let mut f = Fields::default();
    let given = [spec.display_name, spec.email, spec.manager_email, spec.department, spec.training_date];
    for (name, raw) in FIELD_NAMES.into_iter().zip(given) {
        match check_field(name, raw.as_deref(), now.date_naive()) {
            Ok(v) => *slot(&mut f, name) = v,
            Err(m) => errors.push(FieldError::new(name, m)),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let space_no = caller.space_no;
    let (created, p) = st
        .store
        .write(move |c| {
            let created = upsert(c, space_no, &user_id, &f, &FIELD_NAMES, to_micros(now))?;
            Ok::<_, StoreError>((created, find(c, space_no, &user_id)?.ok_or(StoreError::NotFound)?))
        })
        .await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(shown(p, now))))
}

/// Change some fields of a person.
#[utoipa::path(patch, path = "/api/v1/people/{user_id}", tag = "people", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "the user id the events give")), request_body = PersonPatch,
    responses((status = 200, body = Person), (status = 404), (status = 422)))]
pub async fn people_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(user_id): Path<String>,
    ApiJson(patch): ApiJson<PersonPatch>,
) -> Result<Json<Person>, ApiError> {
    let user_id = user_ref(&user_id)?;
    let now = st.clock.now();
    let mut errors = Vec::new();
    let mut f = Fields::default();
    let mut set = Vec::new();
    let given = [patch.display_name, patch.email, patch.manager_email, patch.department, patch.training_date];
    for (name, raw) in FIELD_NAMES.into_iter().zip(given) {
        let Some(raw) = raw else { continue };
        match check_field(name, raw.as_deref(), now.date_naive()) {
            Ok(v) => {
                *slot(&mut f, name) = v;
                set.push(name);
            }
            Err(m) => errors.push(FieldError::new(name, m)),
        }
    }
    if set.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("body", format!("give at least one of {}", FIELD_NAMES.join(", "))));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let space_no = caller.space_no;
    let p = st
        .store
        .write(move |c| {
            if find(c, space_no, &user_id)?.is_none() {
                return Err(ApiError::not_found("person"));
            }
            upsert(c, space_no, &user_id, &f, &set, to_micros(now))?;
            Ok(find(c, space_no, &user_id)?.ok_or(StoreError::NotFound)?)
        })
        .await?;
    Ok(Json(shown(p, now)))
}

/// Remove a person from the directory.
#[utoipa::path(delete, path = "/api/v1/people/{user_id}", tag = "people", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "the user id the events give")),
    responses((status = 204, description = "removed"), (status = 404)))]
pub async fn people_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (user_id, space_no) = (user_ref(&user_id)?, caller.space_no);
    let n = st
        .store
        .write(move |c| {
            Ok::<_, StoreError>(c.execute("DELETE FROM people WHERE space_no = ?1 AND user_id = ?2", params![space_no, user_id])?)
        })
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("person"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The column a CSV header names, by its name or an alias (any case; spaces and dashes read as
/// underscores).
fn column_of(header: &str) -> Option<&'static str> {
    let h: String =
        header.trim().trim_start_matches('\u{feff}').to_lowercase().chars().map(|c| if c == ' ' || c == '-' { '_' } else { c }).collect();
    Some(match h.as_str() {
        "user_id" | "userid" | "user" | "username" | "login" => "user_id",
        "display_name" | "displayname" | "name" | "full_name" => "display_name",
        "email" | "e_mail" | "mail" | "email_address" => "email",
        "manager_email" | "manager" | "manager_e_mail" | "manager_mail" => "manager_email",
        "department" | "dept" => "department",
        "training_date" | "last_training" | "last_training_date" | "training" => "training_date",
        _ => return None,
    })
}

/// Checks a CSV import as `POST /api/v1/people/import` would, writing nothing: the number of
/// people it holds, or every problem (the fuzz target `people_csv` drives this).
pub fn check_csv(body: &[u8], today: NaiveDate) -> Result<usize, Vec<FieldError>> {
    read_csv(body, today).map(|(rows, _)| rows.len())
}

/// The rows of a CSV file, each checked: `(user_id, fields)` and the columns the file has, or
/// every problem (line, column, what is wrong).
#[allow(clippy::type_complexity)]
fn read_csv(body: &[u8], today: NaiveDate) -> Result<(Vec<(String, Fields)>, Vec<&'static str>), Vec<FieldError>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(body);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![FieldError::new("line 1", format!("the header row cannot be read: {e}"))]),
    };
    let mut errors = Vec::new();
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        match column_of(h) {
            Some(c) if columns.contains(&Some(c)) => {
                errors.push(FieldError::new("line 1", format!("column {} ({h:?}) repeats {c}", i + 1)));
                columns.push(None);
            }
            Some(c) => columns.push(Some(c)),
            None => {
                errors.push(FieldError::new(
                    "line 1",
                    format!(
                        "column {} ({:?}) is not one the directory has; use user_id, display_name, email, manager_email, department, training_date",
                        i + 1,
                        h.chars().take(40).collect::<String>()
                    ),
                ));
                columns.push(None);
            }
        }
    }
    let Some(id_col) = columns.iter().position(|c| *c == Some("user_id")) else {
        errors.push(FieldError::new("line 1", "the header row has no user_id column (the first row names the columns)"));
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let present: Vec<&'static str> = columns.iter().flatten().copied().filter(|c| *c != "user_id").collect();
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(FieldError::new(format!("line {line}"), format!("cannot be read: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if rows.len() + errors.len() >= MAX_IMPORT_ROWS {
            errors.push(FieldError::new(format!("line {line}"), format!("an import takes at most {MAX_IMPORT_ROWS} rows; split the file")));
            break;
        }
        if record.len() != columns.len() {
            errors.push(FieldError::new(format!("line {line}"), format!("{} cells where the header has {}", record.len(), columns.len())));
            continue;
        }
        let user_id = record.get(id_col).unwrap_or_default().to_owned();
        let mut ok = true;
        if let Err(m) = valid_user_id(&user_id) {
            errors.push(FieldError::new(format!("line {line}, user_id"), m));
            ok = false;
        } else if let Some(first) = seen.insert(user_id.clone(), line) {
            errors.push(FieldError::new(format!("line {line}, user_id"), format!("{user_id:?} is already on line {first}")));
            ok = false;
        }
        let mut f = Fields::default();
        for (i, col) in columns.iter().enumerate() {
            let Some(col) = col.filter(|c| *c != "user_id") else { continue };
            match check_field(col, record.get(i), today) {
                Ok(v) => *slot(&mut f, col) = v,
                Err(m) => {
                    errors.push(FieldError::new(format!("line {line}, {col}"), m));
                    ok = false;
                }
            }
        }
        if ok {
            rows.push((user_id, f));
        }
    }
    if errors.is_empty() { Ok((rows, present)) } else { Err(errors) }
}

/// Import people from CSV (`text/csv`): a header row naming the columns (user_id, display_name,
/// email, manager_email, department, training_date `YYYY-MM-DD`; also name, manager,
/// last_training…), then one person a row. Every row is checked first: any bad row refuses the
/// whole file (422 listing each bad line and column) and nothing is imported; otherwise each
/// person is added or updated (the columns the file lacks are kept).
#[utoipa::path(post, path = "/api/v1/people/import", tag = "people", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportAnswer), (status = 413), (status = 415), (status = 422, description = "bad rows, each listed; nothing imported")))]
pub async fn people_import(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportAnswer>, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !matches!(mime.as_str(), "text/csv" | "application/csv" | "text/plain") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as text/csv (Content-Type: text/csv), a header row first",
        ));
    }
    if body.len() > MAX_IMPORT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("an import takes at most {} MiB; split the file", MAX_IMPORT_BYTES / (1024 * 1024)),
        ));
    }
    let now = st.clock.now();
    // Reading a few MiB of CSV takes milliseconds of CPU: not on an async thread.
    let today = now.date_naive();
    let read = tokio::task::spawn_blocking(move || read_csv(&body, today))
        .await
        .map_err(|e| ApiError::internal(format!("the CSV reader stopped: {e}")))?;
    let (rows, present) = match read {
        Ok(r) => r,
        Err(mut errors) => {
            let more = errors.len().saturating_sub(SHOWN_IMPORT_ERRORS);
            errors.truncate(SHOWN_IMPORT_ERRORS);
            let mut e = ApiError::validation(errors);
            e.message = if more > 0 {
                format!("nothing was imported; fix these rows ({more} more problems not listed): {}", e.message)
            } else {
                format!("nothing was imported; fix these rows: {}", e.message)
            };
            return Err(e);
        }
    };
    let space_no = caller.space_no;
    let answer = st
        .store
        .write(move |c| {
            let (mut created, mut updated) = (0, 0);
            for (user_id, f) in &rows {
                if upsert(c, space_no, user_id, f, &present, to_micros(now))? {
                    created += 1;
                } else {
                    updated += 1;
                }
            }
            Ok::<_, StoreError>(ImportAnswer { rows: rows.len(), created, updated })
        })
        .await?;
    Ok(Json(answer))
}

/// The directory routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(people_list)).routes(routes!(people_import)).routes(routes!(people_get, people_put, people_update, people_delete))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).expect("date")
    }

    #[test]
    fn e_mail_addresses_are_checked_for_their_shape() {
        for ok in ["alice@example.com", "a.b+c@sub.example.org"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in
            ["alice", "alice@", "@example.com", "alice@example", "a b@example.com", "alice@example..com", "alice@.example.com", "a(b)@x.y"]
        {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn a_csv_file_is_read_with_aliases_and_every_bad_cell_is_named() {
        let good = "User ID,Name,E-mail,Manager,Dept,Last Training\nalice,Alice A,alice@example.com,boss@example.com,Sales,2025-01-31\n\nbob,,,,,\n";
        let (rows, present) = read_csv(good.as_bytes(), today()).expect("good");
        assert_eq!(present, ["display_name", "email", "manager_email", "department", "training_date"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1.training_date.as_deref(), Some("2025-01-31"));
        assert_eq!(rows[1].1, Fields::default());
        let bad = "user_id,email,training_date\nalice,not-an-address,2025-13-01\n,a@example.com,\nalice,a@example.com,2030-01-01\ncarol\n";
        let errors = read_csv(bad.as_bytes(), today()).expect_err("bad");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["line 2, email", "line 2, training_date", "line 3, user_id", "line 4, user_id", "line 4, training_date", "line 5"]
        );
        let unknown = read_csv(b"user_id,shoe_size\nalice,42\n", today()).expect_err("unknown column");
        assert!(unknown[0].message.contains("shoe_size"), "{unknown:?}");
        assert!(read_csv(b"name\nAlice\n", today()).expect_err("no user id")[0].message.contains("user_id"));
    }

    #[test]
    fn training_is_counted_in_whole_days() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T23:00:00Z").expect("t").with_timezone(&Utc);
        assert_eq!(days_ago(Some("2025-06-01"), now), Some(365));
        assert_eq!(days_ago(None, now), None);
    }
}
