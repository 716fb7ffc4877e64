//! Reading the event log: one event by id, and a listing by time range with a cursor (search
//! with the query language comes with its own issue). Every query is scoped to the caller's
//! space.
use crate::keys::{Authorized, EventsRead};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiQuery, Page, bad_query, page_limit};

/// One event, as stored (normalised).
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "the event"), (status = 404)))]
pub async fn events_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let space_no = caller.space_no;
    let row: Option<Stored> = st
        .store
        .read(move |c| {
            c.prepare_cached(&format!("SELECT {STORED} FROM events WHERE space_no = ?1 AND id = ?2"))?
                .query_row(params![space_no, id], Stored::from_row)
                .optional()
                .map_err(StoreError::from)
        })
        .await?;
    let row = row.ok_or_else(|| ApiError::not_found("event"))?;
    let events = with_user_names(&st, space_no, vec![shown(&row, &caller.space_id.to_string())]).await?;
    Ok(Json(events.into_iter().next().unwrap_or_default()))
}

/// Adds the directory's `user_name` to the events naming a known `user_id`: one query for the
/// page, none when no event names a user.
async fn with_user_names(st: &XdrState, space_no: i64, mut events: Vec<Value>) -> Result<Vec<Value>, StoreError> {
    if !events.iter().any(|e| e.get("user_id").is_some_and(Value::is_string)) {
        return Ok(events);
    }
    st.store.read(move |c| crate::people::add_names(c, space_no, &mut events).map(|()| events)).await
}

/// The events of `space_no` with these ids, in the order given; ids the space's log does not
/// hold are left out (the pages of alerts and cases list their events with it).
pub fn by_ids(c: &rusqlite::Connection, space_no: i64, ids: &[String]) -> Result<Vec<Stored>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {STORED} FROM events WHERE space_no = ?1 AND id = ?2"))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(e) = stmt.query_row(params![space_no, id], Stored::from_row).optional()? {
            out.push(e);
        }
    }
    Ok(out)
}

/// The columns [`Stored::from_row`] reads.
pub const STORED: &str = "id, received_at, timestamp, event_type, source, body";

/// An event as the log keeps it: the event as sent, and what the log read from it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its id.
    pub id: String,
    /// When it was received (µs).
    pub received_at: i64,
    /// Its time (µs): its own, else when received.
    pub timestamp: i64,
    /// Its type.
    pub event_type: Option<String>,
    /// Its source.
    pub source: String,
    /// The event as sent (a JSON object).
    pub body: String,
}

impl Stored {
    /// An empty event (a placeholder while its parts are moved elsewhere).
    pub fn empty() -> Stored {
        Stored { id: String::new(), received_at: 0, timestamp: 0, event_type: None, source: String::new(), body: String::new() }
    }

    /// Reads the columns of [`STORED`], from the first.
    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
        Stored::from_row_at(r, 0)
    }

    /// Reads the columns of [`STORED`], from column `at`.
    pub fn from_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Stored> {
        Ok(Stored {
            id: r.get(at)?,
            received_at: r.get(at + 1)?,
            timestamp: r.get(at + 2)?,
            event_type: r.get(at + 3)?,
            source: r.get(at + 4)?,
            body: r.get(at + 5)?,
        })
    }
}

/// An event normalised (ARCHITECTURE.md): the event as sent with, for a firewall event, the
/// flat fields the rules use (`event_type`, `platform_id`, `risk_score`, `classification_type`,
/// …) and the log's own fields (`id`, `received_at`, `timestamp`, `space_id`, `source`,
/// `event_type`); the log's win over what the event said (`timestamp` is the time the log
/// indexes, RFC 3339 with microseconds). Derived when read, so the log stores each event once.
pub fn normalized(e: &Stored, space_id: &str) -> serde_json::Map<String, Value> {
    let mut m = match serde_json::from_str::<Value>(&e.body) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(fields) = crate::normalize::firewall_fields(&m) {
        m.extend(fields);
    }
    m.insert("id".into(), Value::String(e.id.clone()));
    let time = |us| Value::String(from_micros(us).to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    m.insert("received_at".into(), time(e.received_at));
    m.insert("timestamp".into(), time(e.timestamp));
    m.insert("space_id".into(), Value::String(space_id.to_owned()));
    m.insert("source".into(), Value::String(e.source.clone()));
    // The log's fields win: an `event_type` that is not a string is not the event's type.
    match &e.event_type {
        Some(t) => m.insert("event_type".into(), Value::String(t.clone())),
        None => m.remove("event_type"),
    };
    m
}

/// An event as the API shows it: [`normalized`], every nested object as dotted paths
/// (`data.interaction.platform_id`). One too wide to flatten (more than 1 MiB of path names) is
/// shown without flattening.
pub fn shown(e: &Stored, space_id: &str) -> Value {
    let m = normalized(e, space_id);
    let mut flat = serde_json::Map::new();
    match crate::normalize::flatten_object(&m, &mut flat) {
        Ok(()) => Value::Object(flat),
        Err(_) => Value::Object(m),
    }
}

/// Filters of the event listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventListParams {
    /// Start of the range (RFC 3339, inclusive); default 24 hours before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End of the range (RFC 3339, exclusive); default now.
    pub to: Option<DateTime<Utc>>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Events of a time range, newest first (by the events' own time).
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])), params(EventListParams),
    responses((status = 200, description = "a page of events: {items, next_cursor}")))]
pub async fn events_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<EventsRead>,
    ApiQuery(q): ApiQuery<EventListParams>,
) -> Result<Json<Page<Value>>, ApiError> {
    let to = q.to.unwrap_or_else(|| st.clock.now());
    let from = q.from.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(bad_query("from", "from must be before to"));
    }
    let limit = page_limit(q.limit);
    let (mut ts_before, mut seq_before) = (to_micros(to) - 1, i64::MAX);
    if let Some(c) = q.cursor {
        let (t, s) = c
            .split_once(':')
            .and_then(|(t, s)| Some((t.parse::<i64>().ok()?, s.parse::<i64>().ok()?)))
            .ok_or_else(|| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?;
        (ts_before, seq_before) = (t, s);
    }
    let (space_no, from_us, event_type) = (caller.space_no, to_micros(from), q.event_type);
    let rows: Vec<(i64, i64, Stored)> = st
        .store
        .read(move |c| {
            // Two statements, so each uses its own index: (space, time) or (space, type, time).
            const RANGE: &str =
                "timestamp >= ?2 AND (timestamp < ?3 OR (timestamp = ?3 AND seq < ?4)) ORDER BY timestamp DESC, seq DESC LIMIT ?5";
            let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, Stored::from_row_at(r, 2)?));
            let rows = match &event_type {
                None => c
                    .prepare_cached(&format!("SELECT timestamp, seq, {STORED} FROM events WHERE space_no = ?1 AND {RANGE}"))?
                    .query_map(params![space_no, from_us, ts_before, seq_before, limit as i64 + 1], row)?
                    .collect::<Result<Vec<_>, _>>(),
                Some(t) => c
                    .prepare_cached(&format!(
                        "SELECT timestamp, seq, {STORED} FROM events WHERE space_no = ?1 AND event_type = ?6 AND {RANGE}"
                    ))?
                    .query_map(params![space_no, from_us, ts_before, seq_before, limit as i64 + 1, t], row)?
                    .collect::<Result<Vec<_>, _>>(),
            };
            rows.map_err(StoreError::from)
        })
        .await?;
    let page = Page::from_rows(rows, limit, |(t, s, _)| format!("{t}:{s}"));
    let space_id = caller.space_id.to_string();
    let items = page.items.into_iter().map(|(_, _, e)| shown(&e, &space_id)).collect();
    let items = with_user_names(&st, space_no, items).await?;
    Ok(Json(Page { items, next_cursor: page.next_cursor }))
}

/// One event as a consumer reads the log.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Position in the log.
    pub seq: i64,
    /// The event's space.
    pub space_id: String,
    /// The event's id.
    pub id: String,
    /// The event, [`normalized`].
    pub event: serde_json::Map<String, Value>,
}

/// Where consumer `name` has got to (0 before its first event).
pub fn checkpoint(c: &rusqlite::Connection, name: &str) -> Result<i64, StoreError> {
    Ok(c.prepare_cached("SELECT seq FROM consumer_checkpoints WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// Moves consumer `name` to `seq`, on the caller's transaction (with whatever the consumer
/// wrote for the events it read, so a restart neither skips nor repeats them).
pub fn advance(c: &rusqlite::Connection, name: &str, seq: i64, now: i64) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO consumer_checkpoints (name, seq, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq), updated_at = excluded.updated_at",
    )?
    .execute(params![name, seq, now])?;
    Ok(())
}

/// Up to `limit` events after `seq`, in log order, across spaces.
pub fn read_after(c: &rusqlite::Connection, seq: i64, limit: usize) -> Result<Vec<Logged>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT e.seq, s.id, e.id, e.received_at, e.timestamp, e.event_type, e.source, e.body FROM events e JOIN spaces s ON s.no = e.space_no \
         WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
    )?;
    let rows =
        stmt.query_map(params![seq, limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, Stored::from_row_at(r, 2)?)))?;
    rows.map(|r| {
        let (seq, space_id, stored) = r?;
        Ok(Logged { seq, event: normalized(&stored, &space_id), space_id, id: stored.id })
    })
    .collect()
}
