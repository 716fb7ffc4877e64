//! The durable queue of notifications: one row per message and channel (rendered when queued,
//! never changed after), one row per attempt, and the worker's claims (a due row is leased by
//! pushing its `next_attempt_at` past the send's timeout, so a crash mid-send only delays it).
use super::channel::{self, ChannelRow};
use super::message::Message;
use super::send::Attempt;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::ids::IdGen;

/// Where a notification came from.
pub(crate) const SOURCE_ALERT: &str = "alert";
/// A channel's test call.
pub(crate) const SOURCE_TEST: &str = "test";
/// A direct message (a playbook step).
pub(crate) const SOURCE_DIRECT: &str = "direct";

/// A claimed notification, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub id: String,
    pub space_no: i64,
    pub channel_id: String,
    pub kind: String,
    pub source: String,
    pub message: Message,
    pub attempts: i64,
    pub round_start: i64,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Next {
    /// Delivered.
    Succeeded,
    /// Try again at this time (µs).
    Retry(i64),
    /// Given up.
    Failed,
}

impl Next {
    pub fn status(self) -> &'static str {
        match self {
            Next::Succeeded => "succeeded",
            Next::Retry(_) => "pending",
            Next::Failed => "failed",
        }
    }
}

/// Inserts a notification.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert(
    c: &Connection,
    id: &str,
    ch: &ChannelRow,
    source: &str,
    alert_id: Option<&str>,
    msg: &Message,
    status: &str,
    next_at: Option<i64>,
    now_us: i64,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO notifications (id, space_no, channel_id, channel_name, kind, source, alert_id, status, message, attempts, \
         next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?11)",
    )?
    .execute(params![
        id,
        ch.space_no,
        ch.id,
        ch.name,
        ch.kind.as_str(),
        source,
        alert_id,
        status,
        serde_json::to_string(msg)?,
        next_at,
        now_us
    ])?;
    Ok(())
}

/// Records attempt `n` of notification `id` and what follows it. False when the row moved on
/// meanwhile: another attempt was recorded first, or it is no longer pending (deleting its
/// channel failed it — a delivery in flight then must not bring it back).
pub(crate) fn record(c: &Connection, id: &str, n: i64, at_us: i64, a: &Attempt, next: Next, now_us: i64) -> Result<bool, StoreError> {
    let changed = c
        .prepare_cached(
            "UPDATE notifications SET attempts = ?2, status = ?3, next_attempt_at = ?4, last_error = ?5, updated_at = ?6, \
             delivered_at = CASE WHEN ?3 = 'succeeded' THEN ?6 ELSE delivered_at END WHERE id = ?1 AND attempts = ?2 - 1 \
             AND status = 'pending'",
        )?
        .execute(params![
            id,
            n,
            next.status(),
            match next {
                Next::Retry(at) => Some(at),
                _ => None,
            },
            if a.ok { None } else { Some(a.summary()) },
            now_us,
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    c.prepare_cached(
        "INSERT INTO notification_attempts (notification_id, n, at, duration_ms, outcome, http_status, smtp_reply, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        n,
        at_us,
        i64::try_from(a.duration.as_millis()).unwrap_or(i64::MAX),
        if a.ok { "succeeded" } else { "failed" },
        a.http_status,
        a.smtp_reply,
        a.error,
    ])?;
    Ok(true)
}

/// Deletes up to `limit` notifications finished (succeeded or failed) before `cutoff_us`, and
/// their attempts, in the caller's transaction; how many notifications went.
pub(crate) fn prune_finished(c: &Connection, cutoff_us: i64, limit: i64) -> Result<usize, StoreError> {
    let ids = c
        .prepare_cached("SELECT id FROM notifications WHERE status != 'pending' AND updated_at < ?1 LIMIT ?2")?
        .query_map(params![cutoff_us, limit], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let mut attempts = c.prepare_cached("DELETE FROM notification_attempts WHERE notification_id = ?1")?;
    let mut notification = c.prepare_cached("DELETE FROM notifications WHERE id = ?1")?;
    for id in &ids {
        attempts.execute([id])?;
        notification.execute([id])?;
    }
    Ok(ids.len())
}

/// Up to `limit` due notifications' ids, and when the next one not yet due is.
pub(crate) fn due(c: &Connection, now_us: i64, limit: usize) -> Result<(Vec<String>, Option<i64>), StoreError> {
    let ids = c
        .prepare_cached("SELECT id FROM notifications WHERE next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2")?
        .query_map(params![now_us, limit as i64], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let next = c
        .prepare_cached("SELECT MIN(next_attempt_at) FROM notifications WHERE next_attempt_at > ?1")?
        .query_row([now_us], |r| r.get::<_, Option<i64>>(0))?;
    Ok((ids, next))
}

/// Leases the due ones of `ids` until `lease_until` and returns them.
pub(crate) fn claim(c: &Connection, ids: &[String], now_us: i64, lease_until: i64) -> Result<Vec<Queued>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        let n = c
            .prepare_cached("UPDATE notifications SET next_attempt_at = ?3 WHERE id = ?1 AND next_attempt_at <= ?2 AND status = 'pending'")?
            .execute(params![id, now_us, lease_until])?;
        if n == 0 {
            continue;
        }
        let q = c
            .prepare_cached(
                "SELECT id, space_no, channel_id, kind, source, message, attempts, round_start FROM notifications WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let message: String = r.get(5)?;
                Ok(Queued {
                    id: r.get(0)?,
                    space_no: r.get(1)?,
                    channel_id: r.get(2)?,
                    kind: r.get(3)?,
                    source: r.get(4)?,
                    message: serde_json::from_str(&message).unwrap_or_default(),
                    attempts: r.get(6)?,
                    round_start: r.get(7)?,
                })
            })
            .optional()?;
        out.extend(q);
    }
    Ok(out)
}

/// Queues the notification of an alert for every enabled channel of space `space_no` whose
/// route matches the alert's severity and rule — or only for the channel named `channel`
/// (then its route is not applied: the rule chose it). Runs inside the caller's write
/// transaction (it opens none), so the notification commits with what caused it; the worker
/// delivers it. `context` is the alert context (`crate::response::alert_context`). Returns how
/// many were queued (0 when no channel matches, or the named one is absent or disabled).
pub fn enqueue_for_alert(
    c: &Connection,
    ids: &IdGen,
    space_no: i64,
    context: &Value,
    channel: Option<&str>,
    now_us: i64,
) -> Result<usize, StoreError> {
    let s = |path: &[&str]| {
        let mut v = context;
        for p in path {
            v = v.get(p).unwrap_or(&Value::Null);
        }
        v.as_str().unwrap_or_default().to_owned()
    };
    let severity = s(&["alert", "severity"]);
    let rule_id = Some(s(&["alert", "rule_id"])).filter(|r| !r.is_empty()).unwrap_or_else(|| s(&["rule", "id"]));
    let rule_name = Some(s(&["alert", "rule_name"])).filter(|r| !r.is_empty()).unwrap_or_else(|| s(&["rule", "name"]));
    let alert_id = Some(s(&["alert", "id"])).filter(|a| !a.is_empty());
    let targets: Vec<ChannelRow> = match channel {
        Some(name) => channel::by_name(c, space_no, name)?.filter(|ch| ch.enabled).into_iter().collect(),
        None => channel::enabled(c, space_no)?.into_iter().filter(|ch| ch.routes(&severity, &rule_id, &rule_name)).collect(),
    };
    if targets.is_empty() && channel.is_some() {
        // Said in the alert's history by the responder; at debug level here, or a rule naming a
        // channel nobody made would log a warning per alert.
        tracing::debug!(space_no, channel = channel.unwrap_or_default(), "no enabled notification channel of this name; nothing queued");
    }
    for ch in &targets {
        let msg = super::message::render(ch, context, None, None);
        let id = ids.at(from_micros(now_us)).to_string();
        insert(c, &id, ch, SOURCE_ALERT, alert_id.as_deref(), &msg, "pending", Some(now_us), now_us)?;
    }
    Ok(targets.len())
}
