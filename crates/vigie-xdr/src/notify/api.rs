//! The notification API: channels (create, list, read, change, delete, test) and the delivery
//! log (list, read with its attempts, retry).
use super::channel::{self, Channel, ChannelPatch, CreatedChannel, NewChannel};
use super::{message, queue, time};
use crate::keys::{AdminScope, AlertsRead, Authorized, Caller};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, Page, bad_query, page_limit, path_id};

fn by_of(caller: &Caller) -> String {
    format!("key:{}", caller.key_id)
}

/// Create a notification channel. A webhook channel's signing secret is shown in this answer
/// only; Slack and Teams URLs and SMTP passwords are stored sealed and never shown again.
#[utoipa::path(post, path = "/api/v1/notifications/channels", tag = "notifications", security(("bearer" = [])),
    request_body = NewChannel, responses((status = 201, body = CreatedChannel), (status = 403), (status = 409, description = "a channel of this name exists"),
        (status = 422, description = "invalid settings, or a template that does not parse (with its line and column)")))]
pub async fn channels_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    ApiJson(new): ApiJson<NewChannel>,
) -> Result<(StatusCode, Json<CreatedChannel>), ApiError> {
    let now = st.clock.now();
    let id = st.ids.at(now).to_string();
    let checked = channel::create(new, id, caller.space_no, &st.notify.sealer, st.notify.allow_private, to_micros(now), &by_of(&caller))
        .map_err(ApiError::validation)?;
    let row = checked.row.clone();
    st.store.write(move |c| channel::save(c, &row, true)).await.map_err(ApiError::from_store("channel"))?;
    Ok((StatusCode::CREATED, Json(CreatedChannel { channel: checked.row.shown(), signing_secret: checked.new_secret })))
}

/// Paging of the channel list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChannelListParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The space's notification channels, by name.
#[utoipa::path(get, path = "/api/v1/notifications/channels", tag = "notifications", security(("bearer" = [])),
    params(ChannelListParams), responses((status = 200, body = Page<Channel>)))]
pub async fn channels_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    ApiQuery(q): ApiQuery<ChannelListParams>,
) -> Result<Json<Page<Channel>>, ApiError> {
    let (space_no, limit, after) = (caller.space_no, page_limit(q.limit), q.cursor);
    let rows = st.store.read(move |c| channel::list(c, space_no, after.as_deref(), limit as i64 + 1)).await?;
    let shown: Vec<Channel> = rows.iter().map(channel::ChannelRow::shown).collect();
    Ok(Json(Page::from_rows(shown, limit, |c| c.name.clone())))
}

/// A notification channel of the space.
#[utoipa::path(get, path = "/api/v1/notifications/channels/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Channel), (status = 404)))]
pub async fn channels_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    Path(id): Path<String>,
) -> Result<Json<Channel>, ApiError> {
    let (id, space_no) = (path_id(&id, "channel")?.to_string(), caller.space_no);
    let row = st.store.read(move |c| channel::fetch(c, space_no, &id)).await.map_err(ApiError::from_store("channel"))?;
    Ok(Json(row.shown()))
}

/// Change a channel: any subset of its fields (not its kind). Secrets not given are kept.
#[utoipa::path(patch, path = "/api/v1/notifications/channels/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ChannelPatch,
    responses((status = 200, body = Channel), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn channels_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ChannelPatch>,
) -> Result<Json<Channel>, ApiError> {
    let (id, space_no) = (path_id(&id, "channel")?.to_string(), caller.space_no);
    let by = by_of(&caller);
    let (sealer, allow_private, now) = (st.notify.sealer.clone(), st.notify.allow_private, to_micros(st.clock.now()));
    let row = st
        .store
        .write(move |c| {
            let cur = channel::fetch(c, space_no, &id).map_err(ApiError::from_store("channel"))?;
            let checked = channel::update(cur, patch, &sealer, allow_private, now, &by).map_err(ApiError::validation)?;
            channel::save(c, &checked.row, false).map_err(ApiError::from_store("channel"))?;
            Ok::<_, ApiError>(checked.row)
        })
        .await?;
    Ok(Json(row.shown()))
}

/// Delete a channel. Its notifications still queued fail ("the channel was deleted"); the log
/// keeps them.
#[utoipa::path(delete, path = "/api/v1/notifications/channels/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204, description = "deleted"), (status = 403), (status = 404)))]
pub async fn channels_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, space_no, now) = (path_id(&id, "channel")?.to_string(), caller.space_no, to_micros(st.clock.now()));
    st.store
        .write(move |c| {
            let n = c.execute("DELETE FROM notify_channels WHERE space_no = ?1 AND id = ?2", params![space_no, id])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            c.execute(
                "UPDATE notifications SET status = 'failed', next_attempt_at = NULL, last_error = 'the channel was deleted', updated_at = ?2 \
                 WHERE channel_id = ?1 AND status = 'pending'",
                params![id, now],
            )?;
            Ok(())
        })
        .await
        .map_err(ApiError::from_store("channel"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a channel's test call gave.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// The test notification in the delivery log.
    pub notification_id: String,
    /// succeeded | failed.
    pub status: String,
    /// How long the call took.
    pub duration_ms: u64,
    /// The receiver's HTTP status.
    pub http_status: Option<u16>,
    /// The SMTP server's reply.
    pub smtp_reply: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// Send a test message through a channel now (a sample alert rendered with its templates) and
/// say how it went. The call is recorded in the delivery log.
#[utoipa::path(post, path = "/api/v1/notifications/channels/{id}/test", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = TestResult), (status = 403), (status = 404)))]
pub async fn channels_test(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<Json<TestResult>, ApiError> {
    let (id, space_no) = (path_id(&id, "channel")?.to_string(), caller.space_no);
    let ch = st.store.read(move |c| channel::fetch(c, space_no, &id)).await.map_err(ApiError::from_store("channel"))?;
    let m = message::render(&ch, &message::sample_context(st.clock.now()), None, None);
    let (nid, a) = super::deliver_once(&st, &ch, m, queue::SOURCE_TEST, None).await?;
    Ok(Json(TestResult {
        notification_id: nid,
        status: if a.ok { "succeeded" } else { "failed" }.into(),
        duration_ms: a.duration.as_millis() as u64,
        http_status: a.http_status,
        smtp_reply: a.smtp_reply,
        error: a.error,
    }))
}

/// A notification in the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    /// Its id (also the `webhook-id` of a webhook channel's deliveries).
    pub id: String,
    /// The channel's id.
    pub channel_id: String,
    /// The channel's name when it was queued.
    pub channel: String,
    /// slack | teams | email | webhook.
    pub kind: String,
    /// alert | test | direct.
    pub source: String,
    /// The alert it tells of.
    pub alert_id: Option<String>,
    /// pending | succeeded | failed.
    pub status: String,
    /// The subject line.
    pub subject: String,
    /// Attempts made.
    pub attempt_count: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Queued at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Delivered at.
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// 1, 2, …
    pub n: i64,
    /// When it started.
    pub at: chrono::DateTime<chrono::Utc>,
    /// How long it took.
    pub duration_ms: i64,
    /// succeeded | failed.
    pub outcome: String,
    /// The receiver's HTTP status.
    pub http_status: Option<i64>,
    /// The SMTP server's reply.
    pub smtp_reply: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A notification with its message and attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDetail {
    /// The notification.
    #[serde(flatten)]
    pub notification: Notification,
    /// What was (or is to be) sent: subject, text, and the JSON posted or the e-mail's
    /// recipients.
    #[schema(value_type = Object)]
    pub message: Value,
    /// Every attempt, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

const NOTE_COLS: &str = "id, channel_id, channel_name, kind, source, alert_id, status, message, attempts, next_attempt_at, last_error, \
                         created_at, updated_at, delivered_at";

fn note(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Notification, Value)> {
    let message: String = r.get(7)?;
    let message: Value = serde_json::from_str(&message).unwrap_or(Value::Null);
    let status: String = r.get(6)?;
    Ok((
        Notification {
            id: r.get(0)?,
            channel_id: r.get(1)?,
            channel: r.get(2)?,
            kind: r.get(3)?,
            source: r.get(4)?,
            alert_id: r.get(5)?,
            subject: message.get("subject").and_then(Value::as_str).unwrap_or_default().to_owned(),
            attempt_count: r.get(8)?,
            // A leased row's time is the lease's, not a due time: shown only while pending.
            next_attempt_at: time(r.get(9)?).filter(|_| status == "pending"),
            status,
            last_error: r.get(10)?,
            created_at: from_micros(r.get(11)?),
            updated_at: from_micros(r.get(12)?),
            delivered_at: time(r.get(13)?),
        },
        message,
    ))
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationListParams {
    /// Only this channel (its id or name).
    pub channel: Option<String>,
    /// Only this status: pending, succeeded or failed.
    pub status: Option<String>,
    /// Only notifications of this alert.
    pub alert_id: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(NotificationListParams), responses((status = 200, body = Page<Notification>), (status = 400)))]
pub async fn notifications_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    ApiQuery(q): ApiQuery<NotificationListParams>,
) -> Result<Json<Page<Notification>>, ApiError> {
    if let Some(s) = &q.status
        && !["pending", "succeeded", "failed"].contains(&s.as_str())
    {
        return Err(bad_query("status", "status is pending, succeeded or failed"));
    }
    let before = match &q.cursor {
        Some(c) => {
            Some(path_id(c, "cursor").map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?.to_string())
        }
        None => None,
    };
    let (space_no, limit) = (caller.space_no, page_limit(q.limit));
    let rows = st
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {NOTE_COLS} FROM notifications WHERE space_no = ?1 AND (?2 IS NULL OR channel_id = ?2 OR channel_name = ?2) \
                 AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR alert_id = ?4) AND (?5 IS NULL OR id < ?5) ORDER BY id DESC LIMIT ?6"
            ))?;
            let rows = stmt.query_map(params![space_no, q.channel, q.status, q.alert_id, before, limit as i64 + 1], note)?;
            rows.map(|r| r.map(|(n, _)| n)).collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |n| n.id.clone())))
}

fn fetch_detail(c: &rusqlite::Connection, space_no: i64, id: &str) -> Result<NotificationDetail, StoreError> {
    let (notification, message) = c
        .prepare_cached(&format!("SELECT {NOTE_COLS} FROM notifications WHERE space_no = ?1 AND id = ?2"))?
        .query_row(params![space_no, id], note)
        .optional()?
        .ok_or(StoreError::NotFound)?;
    let attempts = c
        .prepare_cached(
            "SELECT n, at, duration_ms, outcome, http_status, smtp_reply, error FROM notification_attempts WHERE notification_id = ?1 ORDER BY n",
        )?
        .query_map([id], |r| {
            Ok(DeliveryAttempt {
                n: r.get(0)?,
                at: from_micros(r.get(1)?),
                duration_ms: r.get(2)?,
                outcome: r.get(3)?,
                http_status: r.get(4)?,
                smtp_reply: r.get(5)?,
                error: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(NotificationDetail { notification, message, attempts })
}

/// A notification of the log with its message and every attempt.
#[utoipa::path(get, path = "/api/v1/notifications/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = NotificationDetail), (status = 404)))]
pub async fn notifications_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AlertsRead>,
    Path(id): Path<String>,
) -> Result<Json<NotificationDetail>, ApiError> {
    let (id, space_no) = (path_id(&id, "notification")?.to_string(), caller.space_no);
    let d = st.store.read(move |c| fetch_detail(c, space_no, &id)).await.map_err(ApiError::from_store("notification"))?;
    Ok(Json(d))
}

/// Send a failed notification again: it is queued now and gets the whole retry schedule anew.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/retry", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = NotificationDetail), (status = 403), (status = 404), (status = 409, description = "not failed")))]
pub async fn notifications_retry(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<AdminScope>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<NotificationDetail>), ApiError> {
    let (id, space_no, now) = (path_id(&id, "notification")?.to_string(), caller.space_no, to_micros(st.clock.now()));
    let d = st
        .store
        .write(move |c| {
            let status: String = c
                .query_row("SELECT status FROM notifications WHERE space_no = ?1 AND id = ?2", params![space_no, id], |r| r.get(0))
                .optional()
                .map_err(StoreError::from)?
                .ok_or_else(|| ApiError::not_found("notification"))?;
            if status != "failed" {
                return Err(ApiError::conflict(format!("the notification is {status}; only a failed one is sent again")));
            }
            c.execute(
                "UPDATE notifications SET status = 'pending', next_attempt_at = ?3, round_start = attempts, updated_at = ?3 \
                 WHERE space_no = ?1 AND id = ?2",
                params![space_no, id, now],
            )
            .map_err(StoreError::from)?;
            Ok(fetch_detail(c, space_no, &id)?)
        })
        .await?;
    st.response.queued();
    Ok((StatusCode::ACCEPTED, Json(d)))
}
