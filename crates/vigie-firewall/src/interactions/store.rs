//! The SQL of interactions. Ids are UUIDv7 taken in commit order, so "newest first" and the
//! cursor are id comparisons, and a time range is an id range.
use super::{Alert, Classification, Decision, Interaction};
use crate::model::{Action, Direction, InteractionType, RiskLevel, Source};
use chrono::{DateTime, Utc};
use rusqlite::types::{ToSql, Type};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::ids::{max_v7_at, min_v7_at};

/// Filters of the interaction list; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this platform.
    pub platform_id: Option<String>,
    /// Only this person.
    pub user_id: Option<Uuid>,
    /// Only this decision.
    pub action: Option<Action>,
    /// Only risk at or above.
    pub min_risk: Option<f64>,
    /// Only interactions with a classification of this type code (normalised: `CREDIT_CARD`).
    pub kind: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
    /// Only ids below this one (the cursor).
    pub before: Option<Uuid>,
}

pub(super) fn insert(c: &Connection, i: &Interaction) -> Result<(), StoreError> {
    let mut buf = Uuid::encode_buffer();
    let mut tbuf = Uuid::encode_buffer();
    let mut ubuf = Uuid::encode_buffer();
    c.prepare_cached(
        "INSERT INTO interactions (id, tenant_id, created_at, platform_id, platform_vetted, interaction_type, direction, source, user_id,
         content_hash, content_length, content_metadata, classifications, classification_count, risk_score, risk_level, action,
         policy_id, policy_name, alert_severity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?
    .execute(params![
        i.id.hyphenated().encode_lower(&mut buf) as &str,
        i.tenant_id.hyphenated().encode_lower(&mut tbuf) as &str,
        i.created_at.timestamp_micros(),
        i.platform_id,
        i.platform_vetted,
        i.interaction_type.as_str(),
        i.direction.as_str(),
        i.source.as_str(),
        i.user_id.as_ref().map(|u| u.hyphenated().encode_lower(&mut ubuf) as &str),
        i.content_hash,
        i.content_length.map(|l| l as i64),
        i.content_metadata.as_ref().map(serde_json::to_string).transpose()?,
        serde_json::to_string(&i.classifications)?,
        i.classification_count as i64,
        i.risk_score,
        i.risk_level.as_str(),
        i.decision.action.as_str(),
        i.decision.policy_id.map(|p| p.to_string()),
        i.decision.policy_name,
        i.alert.as_ref().map(|a| a.severity.as_str()),
    ])?;
    Ok(())
}

const COLS: &str = "id, tenant_id, created_at, platform_id, platform_vetted, interaction_type, direction, source, user_id, content_hash,
    content_length, content_metadata, classifications, classification_count, risk_score, risk_level, action, policy_id, policy_name, alert_severity";

fn bad(i: usize, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, msg.into())
}

fn uuid_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = r.get(i)?;
    Uuid::parse_str(&s).map_err(|e| bad(i, e.to_string()))
}

fn enum_at<T>(r: &Row<'_>, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    parse(&s).ok_or_else(|| bad(i, format!("unknown stored value {s:?}")))
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Interaction> {
    let classifications: String = r.get(12)?;
    let metadata: Option<String> = r.get(11)?;
    let risk_score: f64 = r.get(14)?;
    let risk_level = enum_at(r, 15, RiskLevel::parse)?;
    let action = enum_at(r, 16, Action::parse)?;
    let policy_id: Option<String> = r.get(17)?;
    let policy_name: Option<String> = r.get(18)?;
    // The alert follows from the decision and the risk (column 19 keeps its severity for queries).
    let decision = Decision { action, policy_id: policy_id.and_then(|p| Uuid::parse_str(&p).ok()), policy_name, risk_level };
    let alert = Alert::raised_by(&decision, risk_score);
    Ok(Interaction {
        id: uuid_at(r, 0)?,
        tenant_id: uuid_at(r, 1)?,
        created_at: from_micros(r.get(2)?),
        platform_id: r.get(3)?,
        platform_vetted: r.get(4)?,
        interaction_type: enum_at(r, 5, InteractionType::parse)?,
        direction: enum_at(r, 6, Direction::parse)?,
        source: enum_at(r, 7, Source::parse)?,
        user_id: r.get::<_, Option<String>>(8)?.and_then(|s| Uuid::parse_str(&s).ok()),
        content_hash: r.get(9)?,
        content_length: r.get::<_, Option<i64>>(10)?.map(|l| l as u64),
        content_metadata: metadata.map(|m| serde_json::from_str(&m)).transpose().map_err(|e| bad(11, e.to_string()))?,
        classifications: serde_json::from_str::<Vec<Classification>>(&classifications).map_err(|e| bad(12, e.to_string()))?,
        classification_count: r.get::<_, i64>(13)? as usize,
        risk_score,
        risk_level,
        decision,
        alert,
    })
}

pub(super) fn get(c: &Connection, tenant: Uuid, id: Uuid) -> Result<Interaction, StoreError> {
    c.prepare_cached(&format!("SELECT {COLS} FROM interactions WHERE tenant_id = ?1 AND id = ?2"))?
        .query_row(params![tenant.to_string(), id.to_string()], from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub(super) fn list(c: &Connection, tenant: Uuid, f: &ListFilter, limit: usize) -> Result<Vec<Interaction>, StoreError> {
    let mut sql = format!("SELECT {COLS} FROM interactions WHERE tenant_id = ?");
    let mut args: Vec<Box<dyn ToSql>> = vec![Box::new(tenant.to_string())];
    let mut and = |clause: &str, v: Box<dyn ToSql>| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        args.push(v);
    };
    if let Some(p) = &f.platform_id {
        and("platform_id = ?", Box::new(p.clone()));
    }
    if let Some(u) = f.user_id {
        and("user_id = ?", Box::new(u.to_string()));
    }
    if let Some(a) = f.action {
        and("action = ?", Box::new(a.as_str()));
    }
    if let Some(r) = f.min_risk {
        and("risk_score >= ?", Box::new(r));
    }
    if let Some(k) = &f.kind {
        and(
            "classification_count > 0 AND EXISTS (SELECT 1 FROM json_each(classifications) WHERE json_extract(value, '$.type') = ?)",
            Box::new(k.clone()),
        );
    }
    // The exact bounds are on created_at (microseconds). The id bounds only narrow the index
    // scan: UUIDv7 ids start with their millisecond, never earlier than created_at, and later
    // only when the clock stepped back (the upper bound allows a minute of that).
    if let Some(from) = f.from {
        and("created_at >= ?", Box::new(from.timestamp_micros()));
        and("id >= ?", Box::new(min_v7_at(u64::try_from(from.timestamp_millis()).unwrap_or(0)).to_string()));
    }
    if let Some(to) = f.to {
        and("created_at < ?", Box::new(to.timestamp_micros()));
        let ms = u64::try_from(to.timestamp_millis()).unwrap_or(0);
        and("id <= ?", Box::new(max_v7_at(ms.saturating_add(60_000)).to_string()));
    }
    if let Some(b) = f.before {
        and("id < ?", Box::new(b.to_string()));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Box::new(limit as i64 + 1));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The events an interaction emitted (`evt_…` id and type), in the order they were written.
/// They were written in the interaction's transaction, at its time and with ids taken just after
/// its own, so the search is a short range of the outbox's id index; the payload confirms each.
pub(super) fn events_of(c: &Connection, tenant: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Vec<(String, String)>, StoreError> {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut stmt = c.prepare_cached(
        "SELECT id, event_type FROM outbox WHERE id > ?1 AND id <= ?2 AND tenant_id = ?3 AND created_at = ?4
         AND json_extract(payload, '$.data.interaction.id') = ?5 ORDER BY seq",
    )?;
    let rows = stmt.query_map(
        params![
            vigie_webhook::outbox::event_id(id),
            vigie_webhook::outbox::event_id(max_v7_at(ms.saturating_add(1000))),
            tenant.to_string(),
            at.timestamp_micros(),
            id.to_string()
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
