//! Console pages: the people directory — the list with its search, a person (edit, remove), and
//! the CSV import. Read with `alerts_read`, changed with `admin`, through the directory API.
//!
//! The import API takes `text/csv`; the page's script sends JSON, so `POST /people/import`
//! takes `{csv}` and hands the text to the same handler, answering HTML: what was imported, or
//! every bad line (nothing is imported then).
use super::{Console, PageError, PageResult};
use crate::keys::{AdminScope, AlertsRead, Scope};
use crate::people::{self as api, PeopleListParams, Person};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use vigie_core::http::{ApiError, ApiJson, ApiQuery};
use vigie_web::Shell;

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/people", get(list))
        // A person whose user id is "import" is still reachable at /people/import.
        .route("/people/import", get(|st, console| person(st, console, Path("import".to_owned()))).post(import))
        .route("/people/{user_id}", get(person))
}

/// Security-awareness training older than this many days is overdue.
const TRAINING_MAX_DAYS: i64 = 365;

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    department: Option<String>,
    cursor: Option<String>,
}

/// A person as a row shows them.
struct PersonRow {
    user_id: String,
    /// The person's page.
    href: String,
    display_name: String,
    email: String,
    manager_email: String,
    department: String,
    training_date: String,
    /// `never`, `overdue` or empty (up to date).
    training: &'static str,
}

impl From<Person> for PersonRow {
    fn from(p: Person) -> PersonRow {
        let training = match p.training_days_ago {
            None => "never",
            Some(d) if d > TRAINING_MAX_DAYS => "overdue",
            Some(_) => "",
        };
        PersonRow {
            href: format!("/people/{}", vigie_web::form::encode(&p.user_id)),
            user_id: p.user_id,
            display_name: p.display_name.unwrap_or_default(),
            email: p.email.unwrap_or_default(),
            manager_email: p.manager_email.unwrap_or_default(),
            department: p.department.unwrap_or_default(),
            training_date: p.training_date.unwrap_or_default(),
            training,
        }
    }
}

#[derive(Template)]
#[template(path = "people.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<PersonRow>,
    q: String,
    department: String,
    filtered: bool,
    next: Option<String>,
    can_write: bool,
}

async fn list(State(st): State<XdrState>, console: Console, Query(q): Query<ListQuery>) -> PageResult {
    let auth = console.authorized::<AlertsRead>()?;
    let search = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let department = q.department.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let params = PeopleListParams { department: department.clone(), q: search.clone(), limit: Some(50), cursor: cursor.clone() };
    let page = api::people_list(State(st), auth, ApiQuery(params)).await?.0;
    let next = page.next_cursor.map(|c| {
        let mut url = format!("/people?cursor={}", vigie_web::form::encode(&c));
        for (k, v) in [("q", &search), ("department", &department)] {
            if let Some(v) = v {
                url.push_str(&format!("&{k}={}", vigie_web::form::encode(v)));
            }
        }
        url
    });
    let shell = console.shell("People", "/people");
    Ok(vigie_web::page(
        StatusCode::OK,
        &ListPage {
            shell,
            rows: page.items.into_iter().map(PersonRow::from).collect(),
            filtered: search.is_some() || department.is_some() || cursor.is_some(),
            q: search.unwrap_or_default(),
            department: department.unwrap_or_default(),
            next,
            can_write: console.can(Scope::Admin),
        },
    ))
}

#[derive(Template)]
#[template(path = "people_person.html")]
struct PersonPage {
    shell: Shell,
    p: PersonRow,
    /// The person's id as the API's path takes it.
    api_path: String,
    days: Option<i64>,
    created: vigie_web::Time,
    updated: vigie_web::Time,
    can_write: bool,
    alerts_href: String,
}

async fn person(State(st): State<XdrState>, console: Console, Path(user_id): Path<String>) -> PageResult {
    let auth = console.authorized::<AlertsRead>()?;
    let p = api::people_get(State(st), auth, Path(user_id)).await?.0;
    let (days, created, updated) = (p.training_days_ago, vigie_web::Time(p.created_at), vigie_web::Time(p.updated_at));
    let row = PersonRow::from(p);
    let shell = console.shell(if row.display_name.is_empty() { row.user_id.clone() } else { row.display_name.clone() }, "/people");
    Ok(vigie_web::page(
        StatusCode::OK,
        &PersonPage {
            shell,
            api_path: format!("/api/v1/people/{}", vigie_web::form::encode(&row.user_id)),
            alerts_href: format!("/alerts?user_id={}", vigie_web::form::encode(&row.user_id)),
            days,
            created,
            updated,
            can_write: console.can(Scope::Admin),
            p: row,
        },
    ))
}

/// The import form: the CSV's text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportForm {
    #[serde(default)]
    csv: String,
}

/// A problem of an import, as the import API names it (`line 3, email`).
struct ImportProblem {
    at: String,
    message: String,
}

#[derive(Template)]
#[template(path = "people_import.html")]
struct ImportResult {
    rows: usize,
    created: usize,
    updated: usize,
    problems: Vec<ImportProblem>,
    summary: String,
}

/// Imports the CSV text through the import API's handler (scope `admin`; all or nothing): an
/// HTML answer saying what it did, or listing each bad line. Other refusals (403, 413) are the
/// API's JSON errors, which the form shows.
async fn import(State(st): State<XdrState>, console: Console, ApiJson(form): ApiJson<ImportForm>) -> Result<Response, ApiError> {
    let auth = console.authorized::<AdminScope>().map_err(|PageError::Api(e)| e)?;
    if form.csv.trim().is_empty() {
        return Err(ApiError::validation(vec![vigie_core::http::FieldError::new(
            "csv",
            "paste the CSV: a header row naming the columns, then one person a line",
        )]));
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    let page = match api::people_import(State(st), auth, headers, Bytes::from(form.csv)).await {
        Ok(answer) => {
            let a = answer.0;
            ImportResult { rows: a.rows, created: a.created, updated: a.updated, problems: Vec::new(), summary: String::new() }
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => ImportResult {
            rows: 0,
            created: 0,
            updated: 0,
            problems: e.fields.into_iter().map(|f| ImportProblem { at: f.field, message: f.message }).collect(),
            summary: e.message,
        },
        Err(e) => return Ok(e.into_response()),
    };
    Ok(vigie_web::fragment(&page))
}
