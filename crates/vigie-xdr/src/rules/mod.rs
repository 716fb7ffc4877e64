//! Detection rules: their HTTP API (create, read, list, update, delete, enable), the default
//! rules installed in every new space, statistics, history and Sigma export.
//!
//! A rule is checked and compiled by `vigie-detect` before it is stored: a rule that would not
//! run exactly as written is refused with the reason (and its line and column), never stored
//! in part. Every change writes a `rule_history` row in the same transaction and, once that
//! transaction has committed, tells the detection consumer ([`XdrState::rules_did_change`]).
use crate::alerts::severity_word;
use crate::keys::{Authorized, Caller, RulesRead, RulesWrite};
use crate::state::XdrState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::http::{ApiError, ApiJson, ApiQuery, FieldError, Page, bad_query, page_limit, path_id};
use vigie_detect::Kind;

mod defaults;
mod model;

pub use defaults::{DEFAULT_RULES, install_defaults, set_defaults_enabled};
pub use model::{MAX_SIMILARITY, MAX_SOURCE, NewRule, Rule, RuleAction, RuleHistoryEntry, RulePatch, RuleStats, Severity, is_attack_id};
use model::{RuleSpec, check, sigma_tag};

/// How many times an update is re-applied when the rule changed while it was being checked.
const UPDATE_ATTEMPTS: usize = 3;

/// A rule row with its statistics.
struct RuleRow {
    id: Uuid,
    spec: RuleSpec,
    builtin: Option<String>,
    version: i64,
    paused_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
    created_by: Option<String>,
    updated_by: Option<String>,
    stats: RuleStats,
}

const RULE_SELECT: &str = "SELECT r.id, r.name, r.description, r.severity, r.kind, r.source, r.enabled, r.similarity, r.tags, r.actions, \
     r.builtin, r.version, r.paused_until, r.created_at, r.updated_at, r.created_by, r.updated_by, \
     COALESCE(s.matches, 0), COALESCE(s.alerts, 0), COALESCE(s.occurrences, 0), COALESCE(s.suppressed, 0), \
     s.last_match_at, s.last_fired_at, \
     (SELECT COUNT(*) FROM alerts a WHERE a.rule_id = r.id AND a.space_no = r.space_no AND a.status = 'rejected'), \
     (SELECT COUNT(*) FROM alerts a WHERE a.rule_id = r.id AND a.space_no = r.space_no) \
     FROM rules r LEFT JOIN rule_stats s ON s.rule_id = r.id";

fn conversion(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn json_col<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| conversion(i, e))
}

fn rule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRow> {
    let id: String = r.get(0)?;
    let kind: String = r.get(4)?;
    let severity: i64 = r.get(3)?;
    let (alerts, rejected, kept): (i64, i64, i64) = (r.get(18)?, r.get(23)?, r.get(24)?);
    Ok(RuleRow {
        id: Uuid::parse_str(&id).map_err(|e| conversion(0, e))?,
        spec: RuleSpec {
            name: r.get(1)?,
            description: r.get(2)?,
            severity: severity.clamp(0, 100) as u8,
            kind: Kind::parse(&kind).ok_or_else(|| conversion(4, StoreError::Invalid(format!("unknown rule kind {kind:?}"))))?,
            source: r.get(5)?,
            enabled: r.get(6)?,
            similarity: json_col(r, 7)?,
            tags: json_col(r, 8)?,
            actions: json_col(r, 9)?,
        },
        builtin: r.get(10)?,
        version: r.get(11)?,
        paused_until: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        created_by: r.get(15)?,
        updated_by: r.get(16)?,
        stats: RuleStats {
            matches: r.get(17)?,
            alerts,
            occurrences: r.get(19)?,
            suppressed: r.get(20)?,
            rejected,
            // Over the alerts still kept (retention deletes old ones), like the rejected count.
            false_positive_rate: (kept > 0).then(|| (rejected as f64 / kept as f64).min(1.0)),
            last_match_at: r.get::<_, Option<i64>>(21)?.map(from_micros),
            last_fired_at: r.get::<_, Option<i64>>(22)?.map(from_micros),
        },
    })
}

/// A rule of the space, or `NotFound`.
fn fetch(c: &Connection, space_no: i64, id: Uuid) -> Result<RuleRow, StoreError> {
    c.prepare_cached(&format!("{RULE_SELECT} WHERE r.space_no = ?1 AND r.id = ?2"))?
        .query_row(params![space_no, id.to_string()], rule_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// What compiling a source gave: its shape, or why it does not compile.
type Compiled = (Option<Value>, Option<String>);

/// The shape (or the compile error) of a rule's source, compiled once per distinct source and
/// kind in this process: listing 500 rules of 64 KiB of Sigma each must not compile them all
/// on every read. Bounded: past 10,000 sources it starts again.
fn compiled(kind: Kind, source: &str) -> Compiled {
    use std::hash::{Hash, Hasher};
    static SEEN: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<(u64, usize), Compiled>>> =
        std::sync::LazyLock::new(Default::default);
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    (kind.as_str(), source).hash(&mut h);
    let key = (h.finish(), source.len());
    if let Some(c) = SEEN.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return c;
    }
    let c = match vigie_detect::compile(kind, source) {
        Ok(p) => (serde_json::to_value(p.shape()).ok(), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Ok(mut m) = SEEN.lock() {
        if m.len() >= 10_000 {
            m.clear();
        }
        m.insert(key, c.clone());
    }
    c
}

/// The rule as the API shows it at `now_us` (its shape from [`compiled`]).
fn shown(row: RuleRow, now_us: i64) -> Rule {
    let (shape, compile_error) = compiled(row.spec.kind, &row.spec.source);
    let s = row.spec;
    Rule {
        id: row.id,
        name: s.name,
        description: s.description,
        severity: s.severity,
        severity_label: severity_word(s.severity),
        kind: s.kind.as_str(),
        source: s.source,
        enabled: s.enabled,
        similarity: s.similarity,
        tags: s.tags,
        actions: s.actions,
        builtin: row.builtin,
        version: row.version,
        shape,
        compile_error,
        paused: row.paused_until.is_some_and(|t| t > now_us),
        paused_until: row.paused_until.map(from_micros),
        created_at: from_micros(row.created_at),
        updated_at: from_micros(row.updated_at),
        created_by: row.created_by,
        updated_by: row.updated_by,
        stats: row.stats,
    }
}

fn history(c: &Connection, rule: Uuid, at: i64, by: &str, kind: &str, detail: &Value) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO rule_history (rule_id, at, by, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![
        rule.to_string(),
        at,
        by,
        kind,
        detail.to_string()
    ])?;
    Ok(())
}

fn name_taken(name: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if StoreError::is_unique_violation(&e) { StoreError::Conflict(format!("a rule named {name:?}")) } else { StoreError::from(e) }
    }
}

/// Inserts a checked rule and its `created` history row.
fn insert(c: &Connection, space_no: i64, id: Uuid, r: &RuleSpec, builtin: Option<&str>, now_us: i64, by: &str) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO rules (id, space_no, name, description, severity, kind, source, enabled, similarity, tags, actions, builtin, \
         version, created_at, updated_at, created_by, updated_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?13, ?14, ?14)",
    )?
    .execute(params![
        id.to_string(),
        space_no,
        r.name,
        r.description,
        r.severity,
        r.kind.as_str(),
        r.source,
        r.enabled,
        serde_json::to_string(&r.similarity)?,
        serde_json::to_string(&r.tags)?,
        serde_json::to_string(&r.actions)?,
        builtin,
        now_us,
        by,
    ])
    .map_err(name_taken(&r.name))?;
    let mut detail = r.detail();
    if let Some(b) = builtin {
        detail["builtin"] = json!(b);
    }
    history(c, id, now_us, by, "created", &detail)
}

fn by_of(caller: &Caller) -> String {
    format!("key:{}", caller.key_id)
}

/// Create a rule in the caller's space. It is compiled first: a source the engine would not
/// carry out exactly is refused (422 on `source`, with its line and column). Actions `notify`
/// and `case` act on each new alert the rule raises.
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", security(("bearer" = [])), request_body = NewRule,
    responses((status = 201, body = Rule), (status = 409, description = "a rule of this name exists"),
        (status = 422, description = "invalid, or the source does not compile (with its line and column)")))]
pub async fn rules_create(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    ApiJson(new): ApiJson<NewRule>,
) -> Result<(StatusCode, Json<Rule>), ApiError> {
    let spec = RuleSpec::of(new);
    check(&spec, true)?;
    let now_us = to_micros(st.clock.now());
    let id = st.ids.at(from_micros(now_us));
    let (space_no, by) = (caller.space_no, by_of(&caller));
    let row = st
        .store
        .write(move |c| {
            insert(c, space_no, id, &spec, None, now_us, &by)?;
            fetch(c, space_no, id)
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    st.rules_did_change(caller.space_no);
    Ok((StatusCode::CREATED, Json(shown(row, now_us))))
}

/// Filters of the rule list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RuleListParams {
    /// Only enabled (true) or disabled (false) rules.
    pub enabled: Option<bool>,
    /// Only rules of this kind: `pipe` or `sigma`.
    pub kind: Option<String>,
    /// Only rules with this tag (`T1567` also finds `attack.t1567`).
    pub tag: Option<String>,
    /// Only rules whose name contains this (any case).
    pub q: Option<String>,
    /// `name` (default) or `created` (oldest first).
    pub sort: Option<String>,
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The space's rules, by name (or creation), with their statistics.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", security(("bearer" = [])), params(RuleListParams),
    responses((status = 200, body = Page<Rule>), (status = 400)))]
pub async fn rules_list(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    ApiQuery(p): ApiQuery<RuleListParams>,
) -> Result<Json<Page<Rule>>, ApiError> {
    let limit = page_limit(p.limit);
    let kind = match p.kind.as_deref() {
        Some(k) => Some(Kind::parse(k).ok_or_else(|| bad_query("kind", "kind is pipe or sigma"))?.as_str()),
        None => None,
    };
    let by_name = match p.sort.as_deref() {
        None | Some("name") => true,
        Some("created") => false,
        Some(_) => return Err(bad_query("sort", "sort is name or created")),
    };
    let after = match (&p.cursor, by_name) {
        (Some(c), false) => {
            Some(Uuid::parse_str(c).map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?.to_string())
        }
        (c, _) => c.clone(),
    };
    // A tag is found in either of its forms (`T1567`, `attack.t1567`).
    let tags = p.tag.map(|t| {
        let t = t.trim().to_ascii_lowercase();
        if is_attack_id(&t) { (t.strip_prefix("attack.").unwrap_or(&t).to_owned(), sigma_tag(&t)) } else { (t.clone(), t) }
    });
    let (tag_a, tag_b) = tags.unzip();
    let (space_no, q, enabled) = (caller.space_no, p.q.filter(|q| !q.is_empty()), p.enabled);
    let now_us = to_micros(st.clock.now());
    let (order, cursor) = if by_name { ("r.name", "r.name > ?6") } else { ("r.id", "r.id > ?6") };
    let rules = st
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{RULE_SELECT} WHERE r.space_no = ?1 AND (?2 IS NULL OR r.enabled = ?2) AND (?3 IS NULL OR r.kind = ?3) \
                 AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(r.tags) t WHERE lower(t.value) IN (?4, ?5))) \
                 AND (?7 IS NULL OR instr(lower(r.name), lower(?7)) > 0) AND (?6 IS NULL OR {cursor}) ORDER BY {order} LIMIT ?8"
            ))?;
            let rows = stmt.query_map(params![space_no, enabled, kind, tag_a, tag_b, after, q, limit as i64 + 1], rule_row)?;
            let rows = rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)?;
            Ok::<_, StoreError>(rows.into_iter().map(|r| shown(r, now_us)).collect::<Vec<_>>())
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    Ok(Json(Page::from_rows(rules, limit, |r| if by_name { r.name.clone() } else { r.id.to_string() })))
}

/// A rule of the caller's space, with its statistics.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404)))]
pub async fn rules_get(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let (id, space_no) = (path_id(&id, "rule")?, caller.space_no);
    let row = st.store.read(move |c| fetch(c, space_no, id)).await.map_err(ApiError::from_store("rule"))?;
    Ok(Json(shown(row, to_micros(st.clock.now()))))
}

/// The fields that differ between two versions of a rule: `{field: {from, to}}`.
fn changes(old: &RuleSpec, new: &RuleSpec) -> serde_json::Map<String, Value> {
    let (a, b) = (old.detail(), new.detail());
    let mut out = serde_json::Map::new();
    if let (Value::Object(a), Value::Object(b)) = (a, b) {
        for (k, to) in b {
            let from = a.get(&k).cloned().unwrap_or(Value::Null);
            if from != to {
                out.insert(k, json!({"from": from, "to": to}));
            }
        }
    }
    out
}

/// Applies a change to a rule of `caller`'s space and records it; the rule as it now is.
async fn update(st: &XdrState, caller: &Caller, id: Uuid, patch: RulePatch) -> Result<Rule, ApiError> {
    let space_no = caller.space_no;
    for _ in 0..UPDATE_ATTEMPTS {
        let cur = st.store.read(move |c| fetch(c, space_no, id)).await.map_err(ApiError::from_store("rule"))?;
        let old = cur.spec.clone();
        let p = patch.clone();
        let new = RuleSpec {
            name: p.name.map_or(old.name.clone(), |s| s.trim().to_owned()),
            description: p.description.map_or(old.description.clone(), |s| s.trim().to_owned()),
            severity: p.severity.map_or(old.severity, |s| s.0),
            kind: p.kind.unwrap_or(old.kind),
            source: p.source.unwrap_or_else(|| old.source.clone()),
            enabled: p.enabled.unwrap_or(old.enabled),
            similarity: p.similarity.map_or(old.similarity.clone(), |v| v.iter().map(|s| s.trim().to_owned()).collect()),
            tags: p.tags.map_or(old.tags.clone(), |v| v.iter().map(|s| s.trim().to_owned()).collect()),
            actions: p.actions.unwrap_or_else(|| old.actions.clone()),
        };
        // What the rule matches (and so its windows' meaning); similarity only folds alerts.
        let matching_changed = new.kind != old.kind || new.source != old.source;
        check(&new, new.kind != old.kind || new.source != old.source || new.similarity != old.similarity || (new.enabled && !old.enabled))?;
        let diff = changes(&old, &new);
        let now_us = to_micros(st.clock.now());
        if diff.is_empty() {
            return Ok(shown(cur, now_us));
        }
        // Only `enabled` changed: recorded as enabled / disabled, as the toggles are.
        let kind = match (diff.len(), diff.contains_key("enabled"), new.enabled) {
            (1, true, true) => "enabled",
            (1, true, false) => "disabled",
            _ => "updated",
        };
        let version = cur.version + i64::from(matching_changed);
        let mut detail = Value::Object(diff);
        if matching_changed {
            detail["version"] = json!({"from": cur.version, "to": version});
        }
        let (seen_version, seen_at, by) = (cur.version, cur.updated_at, by_of(caller));
        // Strictly after the version read, so the check below sees any change made since.
        let at = now_us.max(seen_at + 1);
        let row = st
            .store
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE rules SET name = ?3, description = ?4, severity = ?5, kind = ?6, source = ?7, enabled = ?8, \
                         similarity = ?9, tags = ?10, actions = ?11, version = ?12, updated_at = ?13, updated_by = ?14 \
                         WHERE space_no = ?1 AND id = ?2 AND version = ?15 AND updated_at = ?16",
                    )?
                    .execute(params![
                        space_no,
                        id.to_string(),
                        new.name,
                        new.description,
                        new.severity,
                        new.kind.as_str(),
                        new.source,
                        new.enabled,
                        serde_json::to_string(&new.similarity)?,
                        serde_json::to_string(&new.tags)?,
                        serde_json::to_string(&new.actions)?,
                        version,
                        at,
                        by,
                        seen_version,
                        seen_at,
                    ])
                    .map_err(name_taken(&new.name))?;
                if n == 0 {
                    // Changed (or deleted) since it was read: read it again.
                    return Ok(None);
                }
                history(c, id, at, &by, kind, &detail)?;
                fetch(c, space_no, id).map(Some)
            })
            .await
            .map_err(ApiError::from_store("rule"))?;
        if let Some(row) = row {
            st.rules_did_change(caller.space_no);
            return Ok(shown(row, now_us));
        }
    }
    Err(ApiError::conflict("the rule kept changing while this change was applied; read it again and retry"))
}

/// Change a rule: any subset of its fields. A change of `source`, `kind` or `similarity` bumps
/// its `version` (the detection consumer then starts its windows afresh).
#[utoipa::path(patch, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = RulePatch, responses((status = 200, body = Rule), (status = 404), (status = 409), (status = 422)))]
pub async fn rules_update(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<RulePatch>,
) -> Result<Json<Rule>, ApiError> {
    let id = path_id(&id, "rule")?;
    Ok(Json(update(&st, &caller, id, patch).await?))
}

/// Enable a rule (Sekoia's `PUT …/enabled`); a rule that no longer compiles is refused (422).
#[utoipa::path(put, path = "/api/v1/rules/{id}/enabled", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404), (status = 422)))]
pub async fn rules_enable(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let id = path_id(&id, "rule")?;
    Ok(Json(update(&st, &caller, id, RulePatch { enabled: Some(true), ..Default::default() }).await?))
}

/// Disable a rule (Sekoia's `PUT …/disabled`).
#[utoipa::path(put, path = "/api/v1/rules/{id}/disabled", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Rule), (status = 404)))]
pub async fn rules_disable(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    let id = path_id(&id, "rule")?;
    Ok(Json(update(&st, &caller, id, RulePatch { enabled: Some(false), ..Default::default() }).await?))
}

/// Delete a rule and its correlation windows; its alerts stay (they keep the rule's name).
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404)))]
pub async fn rules_delete(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, space_no, by) = (path_id(&id, "rule")?, caller.space_no, by_of(&caller));
    let now_us = to_micros(st.clock.now());
    st.store
        .write(move |c| {
            let (name, version): (String, i64) = c
                .query_row("SELECT name, version FROM rules WHERE space_no = ?1 AND id = ?2", params![space_no, id.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?
                .ok_or(StoreError::NotFound)?;
            let rid = id.to_string();
            c.execute("DELETE FROM rules WHERE space_no = ?1 AND id = ?2", params![space_no, rid])?;
            c.execute("DELETE FROM rule_windows WHERE rule_id = ?1", [&rid])?;
            c.execute("DELETE FROM rule_stats WHERE rule_id = ?1", [&rid])?;
            history(c, id, now_us, &by, "deleted", &json!({"name": name, "version": version}))
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    st.rules_did_change(caller.space_no);
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of a rule's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RuleHistoryParams {
    /// Items per page, 1–500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A rule's history, newest first: created, updated, enabled, disabled, and the pauses and
/// resumptions of the alert rate limit.
#[utoipa::path(get, path = "/api/v1/rules/{id}/history", tag = "rules", security(("bearer" = [])),
    params(("id" = String, Path), RuleHistoryParams), responses((status = 200, body = Page<RuleHistoryEntry>), (status = 404)))]
pub async fn rules_history(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<RuleHistoryParams>,
) -> Result<Json<Page<RuleHistoryEntry>>, ApiError> {
    let (id, space_no, limit) = (path_id(&id, "rule")?, caller.space_no, page_limit(p.limit));
    let before = match p.cursor {
        Some(c) => Some(c.parse::<i64>().map_err(|_| bad_query("cursor", "pass the next_cursor of the previous page unchanged"))?),
        None => None,
    };
    let rows = st
        .store
        .read(move |c| {
            let exists: bool = c.query_row(
                "SELECT EXISTS(SELECT 1 FROM rules WHERE space_no = ?1 AND id = ?2)",
                params![space_no, id.to_string()],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NotFound);
            }
            let mut stmt = c.prepare_cached(
                "SELECT id, at, by, kind, detail FROM rule_history WHERE rule_id = ?1 AND (?2 IS NULL OR id < ?2) \
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![id.to_string(), before, limit as i64 + 1], |r| {
                let detail: Option<String> = r.get(4)?;
                Ok(RuleHistoryEntry {
                    id: r.get(0)?,
                    at: from_micros(r.get(1)?),
                    by: r.get(2)?,
                    kind: r.get(3)?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or(Value::Null),
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await
        .map_err(ApiError::from_store("rule"))?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id.to_string())))
}

/// A rule as Sigma YAML (`application/yaml`): a pipe rule translated (a filter, or a window as
/// a correlation; level from its severity, tags in Sigma's form), a Sigma rule as written. A
/// pipe rule with no Sigma form is refused (422) with every reason.
#[utoipa::path(get, path = "/api/v1/rules/{id}/sigma", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, content_type = "application/yaml", body = String), (status = 404),
        (status = 422, description = "the rule has no Sigma form; each reason is listed")))]
pub async fn rules_sigma(
    State(st): State<XdrState>,
    Authorized(caller, _): Authorized<RulesRead>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, space_no) = (path_id(&id, "rule")?, caller.space_no);
    let row = st.store.read(move |c| fetch(c, space_no, id)).await.map_err(ApiError::from_store("rule"))?;
    let yaml = match row.spec.kind {
        Kind::Sigma => row.spec.source,
        Kind::Pipe => {
            let meta = vigie_query::sigma::SigmaMeta {
                title: row.spec.name.clone(),
                id: row.id.to_string(),
                description: Some(row.spec.description.clone()).filter(|d| !d.is_empty()),
                level: severity_word(row.spec.severity).to_owned(),
                tags: row.spec.tags.iter().map(|t| sigma_tag(t)).collect(),
            };
            vigie_detect::export_sigma(&row.spec.source, &meta).map_err(|reasons| {
                let mut e = ApiError::validation(reasons.into_iter().map(|r| FieldError::new("source", r)).collect());
                e.message = format!("this rule has no Sigma form: {}", e.message);
                e
            })?
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}
